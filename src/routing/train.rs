//! Training a routed set: every module in turn on one loaded model, then the router on the
//! modules' prompts, then routing.json.

use std::path::Path;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

use super::bundle::{write_manifest, ManifestModule, RoutingManifest, ROUTING_FORMAT_VERSION};
use super::config::RoutingConfig;
use super::router::{request_features, Router};
use crate::data::{self, LoadOptions};
use crate::model::loader::LoadedModel;
use crate::train::config::TrainConfig;
use crate::train::events::{Phase, RouterReport, RunSummary, TrainCommand, TrainEvent};
use crate::train::trainer::{
    load_model_reporting, run_with_model_sharing, spawn_job, PrefixCaches, TrainerHandle,
};

/// Starts a routed set's training on a background thread, like [`crate::train::trainer::spawn`].
pub fn spawn_routing(config: RoutingConfig) -> TrainerHandle {
    let threads = config
        .module_configs()
        .ok()
        .and_then(|configs| configs.first().map(TrainConfig::thread_count))
        .unwrap_or(1);
    spawn_job(threads, move |events, commands| {
        run_routing(&config, events, commands)
    })
}

/// Trains every module and the router, writes routing.json, and returns a summary whose
/// `adapter_path` is routing.json. A Stop or Discard ends the set after the module being
/// trained: the modules already trained stay on disk, but no router or routing.json is
/// written.
pub fn run_routing(
    config: &RoutingConfig,
    events: &Sender<TrainEvent>,
    commands: &Receiver<TrainCommand>,
) -> Result<RunSummary, String> {
    let started = Instant::now();
    config.validate().map_err(|e| e.to_string())?;
    let module_configs = config.module_configs().map_err(|e| e.to_string())?;

    let output_dir = config.output_dir();
    std::fs::create_dir_all(&output_dir).map_err(|e| {
        format!(
            "could not create the output folder {}: {e}",
            output_dir.display()
        )
    })?;
    let config_path = output_dir.join("routing.toml");
    std::fs::write(&config_path, config.resolved().to_toml())
        .map_err(|e| format!("could not write {}: {e}", config_path.display()))?;

    let _ = events.send(TrainEvent::Phase {
        phase: Phase::LoadingModel,
    });
    let mut emit = |event| {
        let _ = events.send(event);
    };
    let model = load_model_reporting(&config.model, config.base_dir.as_deref(), &mut emit)?;

    let mut caches = PrefixCaches::default();
    let mut steps = 0;
    let mut last_loss = None;
    for (index, module_config) in module_configs.iter().enumerate() {
        let _ = events.send(TrainEvent::Module {
            index,
            total: module_configs.len(),
            name: config.modules[index].name.clone(),
        });
        let outcome = run_with_model_sharing(module_config, &model, events, commands, &mut caches)
            .map_err(|error| format!("module {:?}: {error}", config.modules[index].name))?;
        steps += outcome.summary.steps;
        last_loss = outcome.summary.final_train_loss.or(last_loss);

        if outcome.summary.stopped_early {
            let _ = events.send(TrainEvent::Log {
                message: format!(
                    "stopped during module {:?}: the modules trained so far are in {}; no router was fitted",
                    config.modules[index].name,
                    output_dir.join("modules").display()
                ),
            });
            return Ok(RunSummary {
                adapter_path: None,
                output_dir,
                steps,
                stopped_early: true,
                final_train_loss: last_loss,
                final_eval: None,
                seconds: started.elapsed().as_secs_f64(),
            });
        }
    }

    let _ = events.send(TrainEvent::Phase {
        phase: Phase::Routing,
    });
    let (router, report) = fit_router(config, &module_configs, &model)?;
    let _ = events.send(TrainEvent::Log {
        message: router_summary(&report),
    });
    let _ = events.send(TrainEvent::Router(report.clone()));

    let modules = config
        .modules
        .iter()
        .map(|module| ManifestModule {
            name: module.name.clone(),
            title_en: module.title_en.clone(),
            title_zh_cn: module.title_zh_cn.clone(),
            adapter: format!("modules/{}/adapter.safetensors", module.name),
        })
        .collect();
    let manifest = RoutingManifest {
        format_version: ROUTING_FORMAT_VERSION,
        name: config.name.clone(),
        model_source: config.resolved().model.source,
        modules,
        router,
        report,
    };
    let manifest_path = write_manifest(&output_dir, &manifest)?;

    Ok(RunSummary {
        adapter_path: Some(manifest_path),
        output_dir,
        steps,
        stopped_early: false,
        final_train_loss: last_loss,
        final_eval: None,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// One line on the router's accuracy, for logs and the CLI.
pub fn router_summary(report: &RouterReport) -> String {
    let unseen = match report.eval_accuracy {
        Some(accuracy) => format!(
            "{:.1}% of {} unseen requests ({})",
            accuracy * 100.0,
            report.eval_count,
            report.eval_source
        ),
        None => "no unseen requests to measure".into(),
    };
    format!(
        "router: {:.1}% of {} training requests, {unseen}",
        report.train_accuracy * 100.0,
        report.train_count
    )
}

/// A request text and the index of the module that should serve it.
type LabelledRequest = (String, usize);

/// Fits the router on the modules' training prompts and measures it on the unseen requests:
/// the `router.eval` file, else the held-out share of each module's prompts.
pub fn fit_router(
    config: &RoutingConfig,
    module_configs: &[TrainConfig],
    model: &LoadedModel,
) -> Result<(Router, RouterReport), String> {
    let settings = &config.router;
    let names: Vec<String> = config.modules.iter().map(|m| m.name.clone()).collect();
    let layer = router_layer(config, module_configs, model)?;

    let mut train = Vec::new();
    let mut eval = Vec::new();
    for (index, module_config) in module_configs.iter().enumerate() {
        let prompts = module_prompts(module_config)?;
        let labelled: Vec<LabelledRequest> =
            prompts.into_iter().map(|text| (text, index)).collect();
        if settings.eval.is_some() {
            train.extend(labelled);
        } else {
            let (kept, held_out) = split_requests(labelled, settings.eval_ratio, settings.seed);
            train.extend(kept);
            eval.extend(held_out);
        }
    }
    let eval_source = match &settings.eval {
        Some(file) => {
            let path = config.resolve_path(file);
            eval = read_labelled_requests(&path, &names)?;
            path.display().to_string()
        }
        None => format!(
            "{:.0}% of each module's prompts, held out",
            settings.eval_ratio * 100.0
        ),
    };

    let features = |requests: &[LabelledRequest]| -> Result<Vec<Vec<f32>>, String> {
        requests
            .iter()
            .map(|(text, _)| request_features(model, text, layer, settings.pooling))
            .collect()
    };
    let train_features = features(&train)?;
    let train_labels: Vec<usize> = train.iter().map(|(_, label)| *label).collect();
    let router = Router::fit(
        &train_features,
        &train_labels,
        names.clone(),
        layer,
        settings,
    )?;

    let train_right = count_right(&router, &train_features, &train_labels);
    let eval_features = features(&eval)?;
    let eval_labels: Vec<usize> = eval.iter().map(|(_, label)| *label).collect();
    let per_module = names
        .iter()
        .enumerate()
        .map(|(index, name)| {
            let rows: Vec<usize> = (0..eval.len())
                .filter(|&row| eval_labels[row] == index)
                .collect();
            let right = rows
                .iter()
                .filter(|&&row| router.decide(&eval_features[row]).module == index)
                .count();
            (name.clone(), right, rows.len())
        })
        .collect();

    let eval_right = count_right(&router, &eval_features, &eval_labels);
    let report = RouterReport {
        train_accuracy: train_right as f64 / train.len() as f64,
        train_count: train.len(),
        eval_accuracy: (!eval.is_empty()).then(|| eval_right as f64 / eval.len() as f64),
        eval_count: eval.len(),
        per_module,
        eval_source,
    };
    Ok((router, report))
}

/// The router's block: `router.layer`, else the first module's first intervened block.
fn router_layer(
    config: &RoutingConfig,
    module_configs: &[TrainConfig],
    model: &LoadedModel,
) -> Result<usize, String> {
    let num_layers = model.config().num_layers;
    let layer = match config.router.layer {
        Some(layer) => layer,
        None => module_configs
            .first()
            .and_then(|c| c.interventions.first())
            .and_then(|i| i.resolved_layers(num_layers).into_iter().min())
            .unwrap_or(num_layers / 2),
    };
    if layer >= num_layers {
        return Err(format!(
            "router.layer {layer} is out of range: the model has blocks 0 to {}",
            num_layers - 1
        ));
    }
    Ok(layer)
}

/// The raw user text of every training row of a module, without its prompt template, which
/// is what a request looks like when it arrives.
fn module_prompts(config: &TrainConfig) -> Result<Vec<String>, String> {
    let path = config.resolve_path(&config.data.train);
    let loaded = data::load_file(&path, &LoadOptions::default()).map_err(|e| e.to_string())?;
    Ok(loaded
        .examples
        .iter()
        .filter_map(|example| example.user_text().map(str::to_string))
        .collect())
}

fn split_requests(
    requests: Vec<LabelledRequest>,
    ratio: f64,
    seed: u64,
) -> (Vec<LabelledRequest>, Vec<LabelledRequest>) {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;

    let mut requests = requests;
    let held_out = ((requests.len() as f64) * ratio).round() as usize;
    let held_out = held_out.min(requests.len().saturating_sub(1));
    requests.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    let eval = requests.split_off(requests.len() - held_out);
    (requests, eval)
}

/// Reads `text,label` rows whose labels are module names.
fn read_labelled_requests(path: &Path, names: &[String]) -> Result<Vec<LabelledRequest>, String> {
    let strict = LoadOptions {
        strict: true,
        ..LoadOptions::default()
    };
    let loaded = data::load_file(path, &strict).map_err(|e| format!("router.eval: {e}"))?;
    let mut requests = Vec::with_capacity(loaded.examples.len());
    for example in &loaded.examples {
        let Some(index) = names.iter().position(|name| *name == example.target) else {
            return Err(format!(
                "router.eval {} line {}: the label {:?} is not a module name; expected one of: {}",
                path.display(),
                example.source_line,
                example.target,
                names.join(", ")
            ));
        };
        let text = example.user_text().unwrap_or_default().to_string();
        requests.push((text, index));
    }
    Ok(requests)
}

fn count_right(router: &Router, features: &[Vec<f32>], labels: &[usize]) -> usize {
    features
        .iter()
        .zip(labels)
        .filter(|(row, label)| router.decide(row).module == **label)
        .count()
}

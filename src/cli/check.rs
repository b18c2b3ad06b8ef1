//! `reft-studio check`: validate a config, its model and its data without training.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use reft_studio::config_file::ConfigFile;
use reft_studio::data::{self, LoadOptions};
use reft_studio::model::device::open_device;
use reft_studio::model::hub::HubOptions;
use reft_studio::model::loader;
use reft_studio::model::loader::LoadedModel;
use reft_studio::routing::RoutingConfig;
use reft_studio::train::config::TrainConfig;
use reft_studio::train::run_data::load_run_data;

#[derive(Args)]
pub struct CheckArgs {
    /// The training config or routed set (TOML) to check.
    #[arg(long)]
    config: PathBuf,

    /// Check the config and data only; skip loading the model.
    #[arg(long)]
    skip_model: bool,
}

pub fn run(args: CheckArgs) -> Result<()> {
    let problems = match ConfigFile::load(&args.config)? {
        ConfigFile::Train(config) => {
            let mut problems = check_data(&config);
            if !args.skip_model && problems.is_empty() {
                match load_config_model(&config) {
                    Ok(model) => problems.extend(check_with_model(&config, &model)),
                    Err(error) => problems.push(error),
                }
            }
            problems
        }
        ConfigFile::Routing(config) => check_routing(&config, args.skip_model)?,
    };

    if problems.is_empty() {
        println!("ok: {}", args.config.display());
        return Ok(());
    }
    for problem in &problems {
        println!("problem: {problem}");
    }
    anyhow::bail!("{} problem(s) in {}", problems.len(), args.config.display())
}

/// Checks every module like a training config, and the router's unseen requests.
fn check_routing(config: &RoutingConfig, skip_model: bool) -> Result<Vec<String>> {
    let module_configs = config.module_configs()?;
    let mut problems = Vec::new();
    for (spec, module_config) in config.modules.iter().zip(&module_configs) {
        println!("module {}:", spec.name);
        problems.extend(
            check_data(module_config)
                .into_iter()
                .map(|p| format!("module {}: {p}", spec.name)),
        );
    }

    if let Some(file) = &config.router.eval {
        let path = config.resolve_path(file);
        let strict = LoadOptions {
            strict: true,
            ..LoadOptions::default()
        };
        match data::load_file(&path, &strict) {
            Ok(loaded) => {
                println!(
                    "router eval {}: {} requests",
                    path.display(),
                    loaded.examples.len()
                );
                for example in &loaded.examples {
                    if !config.modules.iter().any(|m| m.name == example.target) {
                        problems.push(format!(
                            "router.eval {} line {}: the label {:?} is not a module name",
                            path.display(),
                            example.source_line,
                            example.target
                        ));
                    }
                }
            }
            Err(e) => problems.push(format!("router.eval: {e}")),
        }
    }

    if !skip_model && problems.is_empty() {
        // Every module shares the set's model, so it loads once.
        match module_configs.first().map(load_config_model) {
            Some(Ok(model)) => {
                let layers = model.config().num_layers;
                if let Some(layer) = config.router.layer.filter(|&layer| layer >= layers) {
                    problems.push(format!(
                        "router.layer {layer} is out of range: the model has blocks 0 to {}",
                        layers - 1
                    ));
                }
                for (spec, module_config) in config.modules.iter().zip(&module_configs) {
                    let found = check_with_model(module_config, &model);
                    problems.extend(
                        found
                            .into_iter()
                            .map(|p| format!("module {}: {p}", spec.name)),
                    );
                }
            }
            Some(Err(error)) => problems.push(error),
            None => {}
        }
    }
    Ok(problems)
}

/// Reads the data files of `config` leniently, so every bad row is listed, not only the first.
fn check_data(config: &TrainConfig) -> Vec<String> {
    let mut problems = Vec::new();
    let lenient = LoadOptions {
        prompt_template: config.data.prompt_template.clone(),
        strict: false,
        max_rows: None,
    };
    let mut files = vec![config.data.train.clone()];
    files.extend(config.data.eval.clone());
    for file in files {
        let path = config.resolve_path(&file);
        match data::load_file(&path, &lenient) {
            Ok(loaded) => {
                println!(
                    "data {}: {} rows, {} format, {} problems",
                    path.display(),
                    loaded.examples.len(),
                    loaded.format,
                    loaded.problems.len()
                );
                problems.extend(loaded.problems.iter().map(|p| p.to_string()));
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    problems
}

fn load_config_model(config: &TrainConfig) -> Result<LoadedModel, String> {
    let device = open_device(config.model.device).map_err(|e| e.to_string())?;
    let mut options = HubOptions::from_env();
    options.offline |= config.model.offline;
    let model = loader::load_spec(
        &config.model.source,
        config.base_dir.as_deref(),
        &options,
        &device,
        &mut |_| {},
    )
    .map_err(|e| e.to_string())?;
    let (hidden, layers) = (model.config().hidden_size, model.config().num_layers);
    println!(
        "model {}: {layers} layers, hidden size {hidden}",
        config.model.source
    );
    Ok(model)
}

/// Checks the interventions against the model's shape and tokenizes the data.
fn check_with_model(config: &TrainConfig, model: &LoadedModel) -> Vec<String> {
    let mut problems = Vec::new();
    let (hidden, layers) = (model.config().hidden_size, model.config().num_layers);
    for (i, intervention) in config.interventions.iter().enumerate() {
        if let Err(reason) = intervention.validate_for_model(hidden, layers) {
            problems.push(format!("intervention {}: {reason}", i + 1));
        }
    }
    if let Err(reason) = load_run_data(config, model) {
        problems.push(reason);
    }
    problems
}

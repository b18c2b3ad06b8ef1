//! Trains several configs one after another on one loaded model and prints each run's
//! evaluation, one tab-separated line per config: name, accuracy, loss, seconds.
//!
//!   cargo run --example compare_settings -- A.toml B.toml ...
//!
//! The configs must share the model and the data. Runs whose first intervened layer is the
//! same share the prefix caches, so after the first run only the blocks above that layer
//! run: comparing ranks or intervention types at one layer costs a fraction of separate
//! `reft-studio train` runs.

use std::path::PathBuf;
use std::time::Instant;

use crossbeam_channel::unbounded;
use reft_studio::model::device::{open_device, DeviceChoice};
use reft_studio::model::hub::HubOptions;
use reft_studio::model::loader;
use reft_studio::train::config::TrainConfig;
use reft_studio::train::trainer::{run_with_model_sharing, PrefixCaches};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let paths: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    if paths.is_empty() {
        eprintln!("usage: compare_settings CONFIG.toml [CONFIG.toml ...]");
        std::process::exit(2);
    }
    let configs = paths
        .iter()
        .map(|path| TrainConfig::load(path).map_err(|e| format!("{}: {e}", path.display())))
        .collect::<Result<Vec<_>, _>>()?;
    let first = &configs[0];
    if let Some(other) = configs
        .iter()
        .find(|c| c.model.source != first.model.source)
    {
        return Err(format!(
            "every config must use the same model: {} and {}",
            first.model.source, other.model.source
        )
        .into());
    }

    let device = open_device(DeviceChoice::Cpu)?;
    let model = loader::load_spec(
        &first.model.source,
        first.base_dir.as_deref(),
        &HubOptions::from_env(),
        &device,
        &mut |_| {},
    )?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(first.thread_count())
        .build()?;

    let mut caches = PrefixCaches::default();
    for config in &configs {
        let started = Instant::now();
        let (events, _received) = unbounded();
        let (_commands, commands) = unbounded();
        let outcome = pool
            .install(|| run_with_model_sharing(config, &model, &events, &commands, &mut caches))?;
        let eval = outcome.summary.final_eval;
        let accuracy = eval
            .as_ref()
            .and_then(|e| e.accuracy)
            .map_or("-".to_string(), |a| format!("{a:.4}"));
        let loss = eval
            .as_ref()
            .map_or("-".to_string(), |e| format!("{:.4}", e.loss));
        println!(
            "{}\t{accuracy}\t{loss}\t{:.0}",
            config.run_name(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

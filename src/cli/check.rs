//! `reft-studio check`: validate a config, its model and its data without training.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use reft_studio::data::{self, LoadOptions};
use reft_studio::model::device::open_device;
use reft_studio::model::hub::HubOptions;
use reft_studio::model::loader;
use reft_studio::train::config::TrainConfig;
use reft_studio::train::run_data::load_run_data;

#[derive(Args)]
pub struct CheckArgs {
    /// The training config (TOML) to check.
    #[arg(long)]
    config: PathBuf,

    /// Check the config and data only; skip loading the model.
    #[arg(long)]
    skip_model: bool,
}

pub fn run(args: CheckArgs) -> Result<()> {
    let config = TrainConfig::load(&args.config)?;
    let mut problems: Vec<String> = Vec::new();

    // Every bad row is listed, not only the first.
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

    if !args.skip_model && problems.is_empty() {
        let device = open_device(config.model.device)?;
        let mut options = HubOptions::from_env();
        options.offline |= config.model.offline;
        match loader::load_spec(&config.model.source, config.base_dir.as_deref(), &options, &device, &mut |_| {}) {
            Ok(model) => {
                let (hidden, layers) = (model.config().hidden_size, model.config().num_layers);
                println!("model {}: {layers} layers, hidden size {hidden}", config.model.source);
                for (i, intervention) in config.interventions.iter().enumerate() {
                    if let Err(reason) = intervention.validate_for_model(hidden, layers) {
                        problems.push(format!("intervention {}: {reason}", i + 1));
                    }
                }
                if let Err(reason) = load_run_data(&config, &model) {
                    problems.push(reason);
                }
            }
            Err(e) => problems.push(e.to_string()),
        }
    }

    if problems.is_empty() {
        println!("ok: {}", args.config.display());
        return Ok(());
    }
    for problem in &problems {
        println!("problem: {problem}");
    }
    anyhow::bail!("{} problem(s) in {}", problems.len(), args.config.display())
}

//! `reft-studio train`: run a training config headless, printing progress.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use crossbeam_channel::unbounded;
use reft_studio::config_file::ConfigFile;
use reft_studio::routing::{self, RoutingConfig};
use reft_studio::train::config::TrainConfig;
use reft_studio::train::events::{RunSummary, TrainEvent};
use reft_studio::train::trainer;

#[derive(Args)]
pub struct TrainArgs {
    /// The training config (TOML), as presets and the app write it.
    #[arg(long)]
    config: PathBuf,

    /// Output folder for the adapter, checkpoints and metrics (overrides output.dir).
    #[arg(long)]
    output: Option<PathBuf>,

    /// Stop after this many optimizer steps (overrides training.max_steps; for a routed set,
    /// each module's).
    #[arg(long)]
    max_steps: Option<usize>,

    /// Continue from a checkpoint (OUTPUT/checkpoints/step-N.safetensors).
    #[arg(long)]
    resume: Option<PathBuf>,
}

pub fn run(args: TrainArgs) -> Result<()> {
    match ConfigFile::load(&args.config)? {
        ConfigFile::Train(config) => run_single(config, &args),
        ConfigFile::Routing(config) => run_routed(config, &args),
    }
}

fn run_single(mut config: TrainConfig, args: &TrainArgs) -> Result<()> {
    if let Some(output) = &args.output {
        config.output.dir = Some(absolute_output(output)?);
    }
    if let Some(steps) = args.max_steps {
        config.training.max_steps = steps;
    }
    config.resume_from = args.resume.clone();

    // The CLI has no UI thread to keep responsive, so it uses every core by default.
    if config.training.threads == 0 {
        config.training.threads = all_cores();
    }

    let summary = run_printing(move |events, commands| trainer::run(&config, events, commands))?;
    match &summary.adapter_path {
        Some(path) => println!("adapter: {}", path.display()),
        None => println!("no adapter saved"),
    }
    print_summary(&summary);
    Ok(())
}

fn run_routed(mut config: RoutingConfig, args: &TrainArgs) -> Result<()> {
    if args.resume.is_some() {
        anyhow::bail!(
            "--resume continues one training run, but {} is a routed set: train it again, or resume one module with its own config",
            args.config.display()
        );
    }
    if let Some(output) = &args.output {
        config.output.dir = Some(absolute_output(output)?);
    }
    // Module settings live in their own files, so overrides go through inline copies.
    let module_configs = config.module_configs()?;
    for (module, mut module_config) in config.modules.iter_mut().zip(module_configs) {
        if let Some(steps) = args.max_steps {
            module_config.training.max_steps = steps;
        }
        if module_config.training.threads == 0 {
            module_config.training.threads = all_cores();
        }
        module.config = None;
        module.data = Some(module_config.data.clone());
        module.interventions = module_config.interventions.clone();
        module.training = Some(module_config.training.clone());
        // Inline data paths resolve against the set's folder, so they become absolute.
        let absolute = |value: &str| {
            let path = module_config.resolve_path(value);
            std::path::absolute(&path)
                .unwrap_or(path)
                .to_string_lossy()
                .into_owned()
        };
        let data = module.data.as_mut().expect("set above");
        data.train = absolute(&module_config.data.train);
        data.eval = module_config.data.eval.as_deref().map(absolute);
    }

    let summary =
        run_printing(move |events, commands| routing::run_routing(&config, events, commands))?;
    match &summary.adapter_path {
        Some(path) => println!("routed set: {}", path.display()),
        None => println!("no routed set saved"),
    }
    print_summary(&summary);
    Ok(())
}

fn absolute_output(output: &std::path::Path) -> Result<String> {
    Ok(std::env::current_dir()?
        .join(output)
        .to_string_lossy()
        .into_owned())
}

fn all_cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Runs `job` on another thread and prints its events on this one as they arrive.
fn run_printing<F>(job: F) -> Result<RunSummary>
where
    F: FnOnce(
            &crossbeam_channel::Sender<TrainEvent>,
            &crossbeam_channel::Receiver<reft_studio::train::events::TrainCommand>,
        ) -> Result<RunSummary, String>
        + Send
        + 'static,
{
    let (events_tx, events_rx) = unbounded();
    let (_commands_tx, commands_rx) = unbounded();
    let worker = std::thread::spawn(move || job(&events_tx, &commands_rx));

    for event in events_rx {
        print_event(&event);
    }
    worker
        .join()
        .map_err(|_| anyhow::anyhow!("the training thread stopped unexpectedly"))?
        .map_err(|e| anyhow::anyhow!(e))
}

fn print_summary(summary: &RunSummary) {
    if let Some(eval) = &summary.final_eval {
        match eval.accuracy {
            Some(acc) => println!(
                "eval: loss {:.4}, accuracy {:.4} on {} examples",
                eval.loss, acc, eval.count
            ),
            None => println!("eval: loss {:.4} on {} examples", eval.loss, eval.count),
        }
    }
    println!("{} steps in {:.1} s", summary.steps, summary.seconds);
}

fn print_event(event: &TrainEvent) {
    match event {
        TrainEvent::Phase { phase } => eprintln!("== {phase:?}"),
        TrainEvent::Step(s) => eprintln!(
            "step {}/{}  epoch {:.2}  loss {:.4}  lr {:.2e}  grad {:.3}  {:.0} tok/s  eta {:.0} s",
            s.step,
            s.total_steps,
            s.epoch,
            s.loss,
            s.learning_rate,
            s.grad_norm,
            s.tokens_per_second,
            s.eta_seconds
        ),
        TrainEvent::Eval(e) => match e.accuracy {
            Some(acc) => eprintln!(
                "eval at step {}: loss {:.4}, accuracy {:.4}",
                e.step, e.loss, acc
            ),
            None => eprintln!("eval at step {}: loss {:.4}", e.step, e.loss),
        },
        TrainEvent::Shift(snapshot) => {
            let at: Vec<String> = snapshot
                .layers
                .iter()
                .filter(|l| snapshot.intervened_layers.contains(&l.layer))
                .map(|l| format!("layer {}: {:.3}", l.layer, l.relative_change_intervened))
                .collect();
            eprintln!("shift at step {}: {}", snapshot.step, at.join(", "));
        }
        TrainEvent::Log { message } => eprintln!("{message}"),
        TrainEvent::Checkpoint { path, .. } => eprintln!("checkpoint: {}", path.display()),
        TrainEvent::Download {
            detail,
            bytes,
            total_bytes,
        } => {
            if let (Some(b), Some(t)) = (bytes, total_bytes) {
                eprintln!("download {detail}: {b}/{t} bytes");
            }
        }
        TrainEvent::Module { index, total, name } => {
            eprintln!("== module {} of {total}: {name}", index + 1)
        }
        TrainEvent::Router(report) => {
            // The summary line itself arrives as a log event just before this one.
            for (name, right, total) in &report.per_module {
                println!("  {name}: {right} of {total} unseen requests routed here");
            }
        }
        TrainEvent::Finished(_) | TrainEvent::Failed { .. } => {}
    }
}

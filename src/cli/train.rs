//! `reft-studio train`: run a training config headless, printing progress.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use crossbeam_channel::unbounded;
use reft_studio::train::config::TrainConfig;
use reft_studio::train::events::TrainEvent;
use reft_studio::train::trainer;

#[derive(Args)]
pub struct TrainArgs {
    /// The training config (TOML), as presets and the app write it.
    #[arg(long)]
    config: PathBuf,

    /// Output folder for the adapter, checkpoints and metrics (overrides output.dir).
    #[arg(long)]
    output: Option<PathBuf>,

    /// Stop after this many optimizer steps (overrides training.max_steps).
    #[arg(long)]
    max_steps: Option<usize>,

    /// Continue from a checkpoint (OUTPUT/checkpoints/step-N.safetensors).
    #[arg(long)]
    resume: Option<PathBuf>,
}

pub fn run(args: TrainArgs) -> Result<()> {
    let mut config = TrainConfig::load(&args.config)?;
    if let Some(output) = &args.output {
        let absolute = std::env::current_dir()?.join(output);
        config.output.dir = Some(absolute.to_string_lossy().into_owned());
    }
    if let Some(steps) = args.max_steps {
        config.training.max_steps = steps;
    }
    config.resume_from = args.resume.clone();

    // The CLI has no UI thread to keep responsive, so it uses every core by default.
    if config.training.threads == 0 {
        config.training.threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    }

    // Events are printed as they arrive on this thread while the run goes on another.
    let (events_tx, events_rx) = unbounded();
    let (_commands_tx, commands_rx) = unbounded();
    let worker = std::thread::spawn(move || trainer::run(&config, &events_tx, &commands_rx));

    for event in events_rx {
        print_event(&event);
    }
    let summary = worker
        .join()
        .map_err(|_| anyhow::anyhow!("the training thread stopped unexpectedly"))?
        .map_err(|e| anyhow::anyhow!(e))?;

    match &summary.adapter_path {
        Some(path) => println!("adapter: {}", path.display()),
        None => println!("no adapter saved"),
    }
    if let Some(eval) = &summary.final_eval {
        match eval.accuracy {
            Some(acc) => println!("eval: loss {:.4}, accuracy {:.4} on {} examples", eval.loss, acc, eval.count),
            None => println!("eval: loss {:.4} on {} examples", eval.loss, eval.count),
        }
    }
    println!("{} steps in {:.1} s", summary.steps, summary.seconds);
    Ok(())
}

fn print_event(event: &TrainEvent) {
    match event {
        TrainEvent::Phase { phase } => eprintln!("== {phase:?}"),
        TrainEvent::Step(s) => eprintln!(
            "step {}/{}  epoch {:.2}  loss {:.4}  lr {:.2e}  grad {:.3}  {:.0} tok/s  eta {:.0} s",
            s.step, s.total_steps, s.epoch, s.loss, s.learning_rate, s.grad_norm, s.tokens_per_second, s.eta_seconds
        ),
        TrainEvent::Eval(e) => match e.accuracy {
            Some(acc) => eprintln!("eval at step {}: loss {:.4}, accuracy {:.4}", e.step, e.loss, acc),
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
        TrainEvent::Download { detail, bytes, total_bytes } => {
            if let (Some(b), Some(t)) = (bytes, total_bytes) {
                eprintln!("download {detail}: {b}/{t} bytes");
            }
        }
        TrainEvent::Finished(_) | TrainEvent::Failed { .. } => {}
    }
}

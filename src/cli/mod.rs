//! Command-line parsing and the code shared by the subcommands.

mod bench;
mod check;
mod eval;
mod generate;
mod get_model;
mod inspect;
mod screenshots;
mod train;

use std::io::IsTerminal;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use reft_studio::model::device::{open_device, DeviceChoice};
use reft_studio::model::hub::{DownloadEvent, HubOptions};
use reft_studio::model::loader::{self, LoadedModel};

#[derive(Parser)]
#[command(
    name = "reft-studio",
    version,
    about = "Representation fine-tuning (ReFT) for language models"
)]
pub struct Cli {
    /// CPU threads for tensor work, 1 to 1024 (default: all cores).
    #[arg(long, global = true, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,

    /// Log more (repeat for debug output). Logs go to stderr.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Open the app with this preset (its file name without .toml) in the setup form; used
    /// only without a subcommand.
    #[arg(long)]
    pub preset: Option<String>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Tokenize a prompt and show the top next-token logits and per-block hidden-state norms.
    Inspect(inspect::InspectArgs),
    /// Generate text from a prompt.
    Generate(generate::GenerateArgs),
    /// Train interventions from a config file and save the adapter.
    Train(train::TrainArgs),
    /// Check a training config, its model and its data without training.
    Check(check::CheckArgs),
    /// Measure loss (and accuracy for classification) on a dataset.
    Eval(eval::EvalArgs),
    /// Make a hub model available offline: download it, or install a local .gguf under its id.
    GetModel(get_model::GetModelArgs),
    /// Time the training replay: seconds per step, tokens/s, peak memory.
    Bench(bench::BenchArgs),
    /// Save a screenshot of each main screen of the app (for the README).
    Screenshots(screenshots::ScreenshotsArgs),
}

/// Options shared by every subcommand that loads a model.
#[derive(Args, Clone)]
pub struct ModelArgs {
    /// A .gguf file, a Hugging Face model folder, or a hub id such as
    /// HuggingFaceTB/SmolLM2-135M-Instruct (optionally @revision; prefix hf: to force the hub).
    #[arg(long)]
    pub model: String,

    /// Compute device: cpu, cuda, metal or auto. GPUs need a build with that feature.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceChoice,

    /// Never touch the network: use only local files and the Hugging Face cache.
    #[arg(long)]
    pub offline: bool,
}

/// Options shared by subcommands that take a prompt.
#[derive(Args, Clone)]
pub struct PromptArgs {
    /// The prompt text. Without --chat it is tokenized as it is, and no BOS is added unless
    /// the tokenizer config asks for it. In both modes special-token strings such as
    /// <|im_end|> in the text are matched as special tokens, as transformers does.
    #[arg(long)]
    pub prompt: String,

    /// Render the prompt as one user message with the model's chat template and the
    /// generation prompt.
    #[arg(long)]
    pub chat: bool,

    /// A system message placed before the user message (needs --chat).
    #[arg(long, requires = "chat")]
    pub system: Option<String>,
}

pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "reft_studio=info",
        1 => "reft_studio=debug",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("REFT_STUDIO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Some(Command::Inspect(args)) => inspect::run(args),
        Some(Command::Generate(args)) => generate::run(args),
        Some(Command::Train(args)) => train::run(args),
        Some(Command::Check(args)) => check::run(args),
        Some(Command::Eval(args)) => eval::run(args),
        Some(Command::GetModel(args)) => get_model::run(args),
        Some(Command::Bench(args)) => bench::run(args),
        Some(Command::Screenshots(args)) => screenshots::run(args),
        None => reft_studio::app::run_app(cli.preset),
    }
}

/// Loads the model named by `args`, reporting download progress on stderr.
pub fn load_model(args: &ModelArgs) -> Result<LoadedModel> {
    let device = open_device(args.device)?;
    let mut options = HubOptions::from_env();
    options.offline |= args.offline;

    let mut on_download = |event: DownloadEvent| match event {
        DownloadEvent::Started { file, total_bytes } => {
            tracing::info!(file, bytes = total_bytes, "download started")
        }
        DownloadEvent::Finished { file, .. } => tracing::info!(file, "download finished"),
        _ => {}
    };
    Ok(loader::load_spec(
        &args.model,
        None,
        &options,
        &device,
        &mut on_download,
    )?)
}

/// The prompt's token ids: the raw text, or the rendered chat.
pub fn prompt_ids(model: &LoadedModel, prompt: &PromptArgs) -> Result<Vec<u32>> {
    let text = if prompt.chat {
        model.render_chat(prompt.system.as_deref(), &prompt.prompt)?
    } else {
        prompt.prompt.clone()
    };
    let ids = model.tokenizer()?.encode(&text)?;
    if ids.is_empty() {
        anyhow::bail!("the prompt produced no tokens: give a non-empty --prompt");
    }
    Ok(ids)
}

//! `reft-studio screenshots`: opens the real window, trains a preset, and saves a
//! screenshot of each main screen (start, setup, training, try-it) in one language. Under
//! Xvfb this works on a machine without a display or GPU.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use reft_studio::app::i18n::Language;
use reft_studio::app::tour::{run_tour, TourOptions};

#[derive(Args)]
pub struct ScreenshotsArgs {
    /// The folder for the PNG files (<screen>-<language>.png).
    #[arg(long, default_value = "docs/screenshots")]
    out: PathBuf,

    /// The interface language: en or zh-CN.
    #[arg(long, default_value = "en")]
    language: String,

    /// The preset to train.
    #[arg(long, default_value = "presets/emoji-quickstart.toml")]
    preset: PathBuf,

    /// The model (default: REFT_STUDIO_TEST_MODEL, the SmolLM2 GGUF).
    #[arg(long)]
    model: Option<String>,

    /// The prompt typed into the try-it screen.
    #[arg(long, default_value = "Describe your favourite food.")]
    prompt: String,
}

pub fn run(args: ScreenshotsArgs) -> Result<()> {
    let language = Language::ALL
        .into_iter()
        .find(|language| language.code() == args.language)
        .with_context(|| {
            format!(
                "--language {:?} is not supported: use en or zh-CN",
                args.language
            )
        })?;
    let model = match args.model {
        Some(model) => model,
        None => std::env::var("REFT_STUDIO_TEST_MODEL").context(
            "give --model or set REFT_STUDIO_TEST_MODEL (scripts/fetch-test-assets prints it)",
        )?,
    };
    run_tour(TourOptions {
        out_dir: args.out,
        language,
        preset: args.preset,
        model,
        prompt: args.prompt,
    })
}

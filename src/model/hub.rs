//! Turns a [`ModelSpec`] into model files on disk: a local path as is, a hub id from the
//! app's model folder, the Hugging Face cache, or a download through `hf-hub`.
//!
//! Downloads land in the standard Hugging Face cache layout
//! (`models--owner--name/{refs,blobs,snapshots}`), so files fetched here are shared with
//! Python tools and the other way round.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hf_hub::api::sync::{ApiBuilder, ApiError, ApiRepo};
use hf_hub::api::Progress;
use hf_hub::{Cache, Repo, RepoType};

use super::source::{choose_gguf, classify_path, has_gguf_extension, ModelFiles, ModelSpec};
use super::ModelError;

/// The public Hugging Face hub, used when `HF_ENDPOINT` is not set.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

const SAFETENSORS_FILE: &str = "model.safetensors";
const SAFETENSORS_INDEX_FILE: &str = "model.safetensors.index.json";
const CONFIG_FILE: &str = "config.json";
const TOKENIZER_FILE: &str = "tokenizer.json";
/// Files downloaded next to the weights when the repository has them.
const OPTIONAL_FILES: [&str; 2] = ["tokenizer_config.json", "generation_config.json"];

/// Minimum time between two [`DownloadEvent::Progress`] events of one file, unless the
/// download has crossed another whole percent.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// Model locations and hub connection settings for [`resolve`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubOptions {
    /// Base URL of the hub, without a trailing slash.
    pub endpoint: String,
    /// When true, nothing is downloaded and a model must already be on disk.
    pub offline: bool,
    /// The Hugging Face cache folder, the one holding `models--owner--name` folders.
    pub cache_dir: PathBuf,
    /// The app's own model folder, holding `owner/name/` folders placed by hand.
    pub models_dir: PathBuf,
    /// Access token for private or gated repositories.
    pub token: Option<String>,
}

impl HubOptions {
    /// Reads the options from the process environment, as [`HubOptions::from_vars`]
    /// describes.
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Builds the options from environment variables looked up with `lookup`:
    ///
    /// - `endpoint`: `HF_ENDPOINT`, else `https://huggingface.co`, trailing `/` removed.
    /// - `offline`: `HF_HUB_OFFLINE` is `1`, `true`, `yes` or `on` (any case). hf-hub 0.4
    ///   does not read this variable itself.
    /// - `cache_dir`: `HF_HUB_CACHE`, else `$HF_HOME/hub`, else
    ///   `~/.cache/huggingface/hub`.
    /// - `models_dir`: `REFT_STUDIO_MODELS`, else `<data dir>/reft-studio/models`, where
    ///   the data dir is `dirs::data_dir()` (`~/.local/share` on Linux).
    /// - `token`: `HF_TOKEN`.
    ///
    /// Empty variables count as unset.
    pub fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());

        let endpoint = var("HF_ENDPOINT")
            .map(|endpoint| endpoint.trim().trim_end_matches('/').to_string())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());

        let offline = var("HF_HUB_OFFLINE").is_some_and(|value| {
            matches!(
                value.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            )
        });

        // NOTE: without a home folder the defaults fall back to the current folder.
        let cache_dir = var("HF_HUB_CACHE")
            .map(PathBuf::from)
            .or_else(|| var("HF_HOME").map(|home| PathBuf::from(home).join("hub")))
            .unwrap_or_else(|| {
                dirs::home_dir()
                    .unwrap_or_else(|| PathBuf::from("."))
                    .join(".cache")
                    .join("huggingface")
                    .join("hub")
            });

        let models_dir = var("REFT_STUDIO_MODELS")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                dirs::data_dir()
                    .unwrap_or_else(|| PathBuf::from("."))
                    .join("reft-studio")
                    .join("models")
            });

        HubOptions {
            endpoint,
            offline,
            cache_dir,
            models_dir,
            token: var("HF_TOKEN"),
        }
    }
}

/// A step of [`resolve`], for progress display.
#[derive(Clone, Debug, PartialEq)]
pub enum DownloadEvent {
    /// Looking for the hub model `repo` on disk and, if needed, on the hub.
    Resolving { repo: String },
    /// A file download began. `total_bytes` is the size the hub reported.
    Started {
        file: String,
        total_bytes: Option<u64>,
    },
    /// Bytes of `file` written so far. Sent when the download reaches a new whole
    /// percent or when 100 ms have passed since the previous event of the file.
    Progress {
        file: String,
        bytes: u64,
        total_bytes: Option<u64>,
    },
    /// `file` is complete at `path`, inside the cache's snapshot folder.
    Finished { file: String, path: PathBuf },
    /// The model `repo` was found on disk at `path`, so nothing is downloaded.
    UsingLocal { repo: String, path: PathBuf },
}

/// The location of a model found by [`list_local_models`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalOrigin {
    /// The Hugging Face cache ([`HubOptions::cache_dir`]).
    HfCache,
    /// The app's model folder ([`HubOptions::models_dir`]).
    ModelsFolder,
}

/// A model that is complete on this computer and can be loaded without the network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalModel {
    /// Hub id `owner/name`.
    pub repo: String,
    pub files: ModelFiles,
    pub origin: LocalOrigin,
}

/// Finds or downloads the files of `spec`.
///
/// A path goes through [`classify_path`]. A hub id is looked up, in order, in
/// `<models_dir>/owner/name/`, then in the Hugging Face cache for the requested revision
/// (default `main`), and is downloaded only when neither contains a complete model and
/// `options.offline` is false. The models folder has no revisions, so a copy there is
/// used for every revision of the repository.
///
/// # Errors
/// - [`ModelError::OfflineNotCached`]: offline, and the model is not on disk.
/// - [`ModelError::HubUnreachable`]: the connection failed, or the hub returned a 5xx
///   status or a response without the headers hf-hub needs.
/// - [`ModelError::HubNotFound`]: HTTP 401, 403 or 404 for the repository or a file.
/// - [`ModelError::HubNoWeights`]: the repository has no safetensors or GGUF weights.
/// - [`ModelError::InvalidSpec`]: the repository has safetensors weights but no
///   `config.json`, or an invalid safetensors index.
/// - [`ModelError::Io`]: the cache cannot be written.
/// - Any error of [`classify_path`] for a path.
pub fn resolve(
    spec: &ModelSpec,
    options: &HubOptions,
    on_event: &mut dyn FnMut(DownloadEvent),
) -> Result<ModelFiles, ModelError> {
    match spec {
        ModelSpec::Path(path) => classify_path(path),
        ModelSpec::Hub { repo, revision } => {
            resolve_hub(repo, revision.as_deref(), options, on_event)
        }
    }
}

fn resolve_hub(
    repo: &str,
    revision: Option<&str>,
    options: &HubOptions,
    on_event: &mut dyn FnMut(DownloadEvent),
) -> Result<ModelFiles, ModelError> {
    on_event(DownloadEvent::Resolving {
        repo: repo.to_string(),
    });

    let local = find_in_models_dir(&options.models_dir, repo)
        .or_else(|| find_in_cache(&options.cache_dir, repo, revision.unwrap_or("main")));
    if let Some(files) = local {
        tracing::info!(repo, path = %files.path().display(), "using model files already on disk");
        on_event(DownloadEvent::UsingLocal {
            repo: repo.to_string(),
            path: files.path().to_path_buf(),
        });
        return Ok(files);
    }

    if options.offline {
        return Err(ModelError::OfflineNotCached {
            repo: repo.to_string(),
            cache: options.cache_dir.clone(),
            models: options.models_dir.clone(),
        });
    }

    download(repo, revision.unwrap_or("main"), options, on_event)
}

/// Looks for `<models_dir>/owner/name/` holding a layout [`classify_path`] accepts.
fn find_in_models_dir(models_dir: &Path, repo: &str) -> Option<ModelFiles> {
    let folder = models_dir.join(repo);
    if !folder.is_dir() {
        return None;
    }
    match classify_path(&folder) {
        Ok(files) => Some(files),
        Err(error) => {
            tracing::warn!(folder = %folder.display(), %error, "ignoring incomplete model folder");
            None
        }
    }
}

/// Returns the cache folder of a model repository, `<cache_dir>/models--owner--name`.
fn cache_repo_dir(cache_dir: &Path, repo: &str) -> PathBuf {
    cache_dir.join(Repo::model(repo.to_string()).folder_name())
}

/// Looks in the Hugging Face cache for a complete snapshot of `repo` at `revision`.
fn find_in_cache(cache_dir: &Path, repo: &str, revision: &str) -> Option<ModelFiles> {
    let repo_dir = cache_repo_dir(cache_dir, repo);
    let commit = read_ref(&repo_dir, revision)?;
    complete_snapshot(&repo_dir.join("snapshots").join(commit))
}

/// Returns the commit that `refs/<revision>` names. A revision that is itself a commit
/// hash may have no ref file (Python's huggingface_hub writes none), so an existing
/// snapshot folder of that name also counts.
fn read_ref(repo_dir: &Path, revision: &str) -> Option<String> {
    if let Ok(commit) = std::fs::read_to_string(repo_dir.join("refs").join(revision)) {
        let commit = commit.trim();
        if !commit.is_empty() {
            return Some(commit.to_string());
        }
    }
    let is_commit_hash = revision.len() == 40 && revision.chars().all(|c| c.is_ascii_hexdigit());
    if is_commit_hash && repo_dir.join("snapshots").join(revision).is_dir() {
        return Some(revision.to_string());
    }
    None
}

/// Checks a snapshot folder for a model that loads without the network: `config.json`,
/// `tokenizer.json` and all safetensors weights, or else a `.gguf` file (searched up to
/// one subfolder deep, because some repositories keep each quantization in a folder).
fn complete_snapshot(snapshot: &Path) -> Option<ModelFiles> {
    let has_config = snapshot.join(CONFIG_FILE).is_file();
    let has_tokenizer = snapshot.join(TOKENIZER_FILE).is_file();
    if has_config && has_tokenizer && has_all_safetensors(snapshot) {
        return Some(ModelFiles::HfFolder(snapshot.to_path_buf()));
    }

    let gguf_files = find_gguf_files(snapshot, 1);
    choose_gguf(&gguf_files).cloned().map(ModelFiles::Gguf)
}

fn has_all_safetensors(snapshot: &Path) -> bool {
    if snapshot.join(SAFETENSORS_FILE).is_file() {
        return true;
    }
    let index = snapshot.join(SAFETENSORS_INDEX_FILE);
    if !index.is_file() {
        return false;
    }
    match read_shard_names(&index) {
        Ok(shards) => shards.iter().all(|shard| snapshot.join(shard).is_file()),
        Err(reason) => {
            tracing::warn!(index = %index.display(), %reason, "ignoring unreadable safetensors index");
            false
        }
    }
}

/// Lists `.gguf` files under `folder`, descending at most `max_depth` subfolders, sorted
/// by path. Unreadable folders are skipped.
fn find_gguf_files(folder: &Path, max_depth: usize) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).collect();
    paths.sort();

    let mut found = Vec::new();
    for path in paths {
        if path.is_dir() {
            if max_depth > 0 {
                found.extend(find_gguf_files(&path, max_depth - 1));
            }
        } else if path.is_file() && has_gguf_extension(&path) {
            found.push(path);
        }
    }
    found
}

/// Reads the shard file names from a `model.safetensors.index.json` (the values of its
/// `weight_map`), sorted and without duplicates.
fn read_shard_names(index: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(index).map_err(|error| error.to_string())?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|error| error.to_string())?;
    let weight_map = json
        .get("weight_map")
        .and_then(|map| map.as_object())
        .ok_or_else(|| "the index has no weight_map object".to_string())?;

    let mut shards = Vec::new();
    for (tensor, shard) in weight_map {
        let shard = shard
            .as_str()
            .ok_or_else(|| format!("the weight_map entry of {tensor} is not a file name"))?;
        shards.push(shard.to_string());
    }
    shards.sort();
    shards.dedup();
    Ok(shards)
}

/// Lists the models that are complete on this computer: every `owner/name` folder in the
/// models folder that [`classify_path`] accepts, then every cached repository with a
/// complete snapshot. For a cached repository the `main` ref is tried first, then the
/// other refs and finally any snapshot, by name. Sorted by repo, models folder first.
pub fn list_local_models(options: &HubOptions) -> Vec<LocalModel> {
    let mut models = Vec::new();

    for (repo, folder) in
        list_subfolders(&options.models_dir)
            .into_iter()
            .flat_map(|(owner, owner_dir)| {
                list_subfolders(&owner_dir)
                    .into_iter()
                    .map(move |(name, folder)| (format!("{owner}/{name}"), folder))
            })
    {
        if let Ok(files) = classify_path(&folder) {
            models.push(LocalModel {
                repo,
                files,
                origin: LocalOrigin::ModelsFolder,
            });
        }
    }

    for (folder_name, repo_dir) in list_subfolders(&options.cache_dir) {
        let Some(repo) = repo_from_cache_folder(&folder_name) else {
            continue;
        };
        if let Some(files) = find_cached_snapshot(&repo_dir) {
            models.push(LocalModel {
                repo,
                files,
                origin: LocalOrigin::HfCache,
            });
        }
    }

    let origin_rank = |origin: LocalOrigin| match origin {
        LocalOrigin::ModelsFolder => 0,
        LocalOrigin::HfCache => 1,
    };
    models.sort_by(|a, b| {
        (a.repo.as_str(), origin_rank(a.origin)).cmp(&(b.repo.as_str(), origin_rank(b.origin)))
    });
    models
}

/// Lists the subfolders of `folder` as (name, path), sorted by name. The list is empty
/// when the folder does not exist or cannot be read.
fn list_subfolders(folder: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut subfolders: Vec<(String, PathBuf)> = entries
        .flatten()
        .filter(|entry| entry.path().is_dir())
        .map(|entry| {
            (
                entry.file_name().to_string_lossy().into_owned(),
                entry.path(),
            )
        })
        .collect();
    subfolders.sort();
    subfolders
}

/// Turns a cache folder name `models--owner--name` into `owner/name`. The hub forbids
/// `--` inside owner and repository names, so the split is unambiguous.
fn repo_from_cache_folder(folder_name: &str) -> Option<String> {
    let rest = folder_name.strip_prefix("models--")?;
    let (owner, name) = rest.split_once("--")?;
    if owner.is_empty() || name.is_empty() {
        return None;
    }
    Some(format!("{owner}/{name}"))
}

fn find_cached_snapshot(repo_dir: &Path) -> Option<ModelFiles> {
    let mut commits = Vec::new();
    if let Some(commit) = read_ref(repo_dir, "main") {
        commits.push(commit);
    }
    for (name, _) in list_files(&repo_dir.join("refs")) {
        if let Some(commit) = read_ref(repo_dir, &name) {
            commits.push(commit);
        }
    }
    commits.extend(
        list_subfolders(&repo_dir.join("snapshots"))
            .into_iter()
            .map(|(name, _)| name),
    );

    commits
        .iter()
        .find_map(|commit| complete_snapshot(&repo_dir.join("snapshots").join(commit)))
}

fn list_files(folder: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut files: Vec<(String, PathBuf)> = entries
        .flatten()
        .filter(|entry| entry.path().is_file())
        .map(|entry| {
            (
                entry.file_name().to_string_lossy().into_owned(),
                entry.path(),
            )
        })
        .collect();
    files.sort();
    files
}

/// The files to fetch from a repository.
#[derive(Debug, PartialEq)]
enum DownloadPlan {
    /// `config.json`, the weights (or the index, whose shards are added once it is read)
    /// and the tokenizer and generation files the repository has.
    Safetensors {
        files: Vec<String>,
        index: Option<String>,
    },
    Gguf(String),
}

/// Chooses what to download from the repository's file list: a safetensors model when
/// the repository has `config.json` and weights, else one `.gguf` file (Q8_0 first, then
/// F16, then F32, else the first by name).
fn plan_download(repo_files: &[String]) -> Option<DownloadPlan> {
    let has = |name: &str| repo_files.iter().any(|file| file == name);

    if has(CONFIG_FILE) && (has(SAFETENSORS_FILE) || has(SAFETENSORS_INDEX_FILE)) {
        let mut files = vec![CONFIG_FILE.to_string()];
        let index = if has(SAFETENSORS_FILE) {
            files.push(SAFETENSORS_FILE.to_string());
            None
        } else {
            Some(SAFETENSORS_INDEX_FILE.to_string())
        };
        for optional in [TOKENIZER_FILE].iter().chain(OPTIONAL_FILES.iter()) {
            if has(optional) {
                files.push(optional.to_string());
            }
        }
        return Some(DownloadPlan::Safetensors { files, index });
    }

    let mut gguf_files: Vec<&String> = repo_files
        .iter()
        .filter(|file| has_gguf_extension(Path::new(file)))
        .collect();
    gguf_files.sort();
    let name_contains = |file: &&&String, tag: &str| file.to_ascii_uppercase().contains(tag);
    let chosen = ["Q8_0", "F16", "F32"]
        .iter()
        .find_map(|tag| gguf_files.iter().find(|file| name_contains(file, tag)))
        .or_else(|| gguf_files.first())?;
    Some(DownloadPlan::Gguf((*chosen).clone()))
}

/// The hub, repository and cache folder that error messages name.
struct HubTarget<'a> {
    endpoint: &'a str,
    repo: &'a str,
    cache_dir: &'a Path,
}

fn download(
    repo: &str,
    revision: &str,
    options: &HubOptions,
    on_event: &mut dyn FnMut(DownloadEvent),
) -> Result<ModelFiles, ModelError> {
    let target = HubTarget {
        endpoint: &options.endpoint,
        repo,
        cache_dir: &options.cache_dir,
    };

    let mut builder = ApiBuilder::from_cache(Cache::new(options.cache_dir.clone()))
        .with_endpoint(options.endpoint.clone())
        .with_progress(false)
        .with_user_agent("reft-studio", env!("CARGO_PKG_VERSION"));
    // Without an explicit token, keep the one `from_cache` read from the token file that
    // `huggingface-cli login` writes next to the cache folder.
    if options.token.is_some() {
        builder = builder.with_token(options.token.clone());
    }
    // NOTE: hf-hub 0.4.3 builds its own ureq agent, whose connect timeout is 30 s and
    // which has no read timeout, so a hub that accepts the connection and then stalls
    // blocks this call. A refused connection fails at once.
    let api = builder
        .build()
        .map_err(|error| map_api_error(error, &target, "could not set up the HTTP client"))?;
    let api_repo = api.repo(Repo::with_revision(
        repo.to_string(),
        RepoType::Model,
        revision.to_string(),
    ));

    tracing::info!(repo, revision, endpoint = %options.endpoint, "asking the hub for the repository's files");
    let info = api_repo.info().map_err(|error| match error {
        ApiError::IoError(error) => ModelError::HubUnreachable {
            endpoint: options.endpoint.clone(),
            repo: repo.to_string(),
            reason: format!("the repository info is not valid JSON: {error}"),
        },
        error => map_api_error(error, &target, "could not get the repository info"),
    })?;
    let repo_files: Vec<String> = info
        .siblings
        .into_iter()
        .map(|file| file.rfilename)
        .collect();

    let Some(plan) = plan_download(&repo_files) else {
        let has_weights = repo_files
            .iter()
            .any(|file| file == SAFETENSORS_FILE || file == SAFETENSORS_INDEX_FILE);
        if has_weights {
            return Err(ModelError::InvalidSpec {
                spec: repo.to_string(),
                reason: format!(
                    "the repository has safetensors weights but no {CONFIG_FILE}, which the loader needs. Files found: {}",
                    repo_files.join(", ")
                ),
            });
        }
        let files = if repo_files.is_empty() {
            "none".to_string()
        } else {
            repo_files.join(", ")
        };
        return Err(ModelError::HubNoWeights {
            repo: repo.to_string(),
            files,
        });
    };

    let mut fetcher = Fetcher {
        api_repo: &api_repo,
        target: &target,
        snapshot: cache_repo_dir(&options.cache_dir, repo)
            .join("snapshots")
            .join(&info.sha),
        on_event,
    };
    match plan {
        DownloadPlan::Gguf(file) => Ok(ModelFiles::Gguf(fetcher.fetch(&file)?)),
        DownloadPlan::Safetensors { files, index } => {
            let mut files = files;
            if let Some(index) = index {
                let index_path = fetcher.fetch(&index)?;
                let shards =
                    read_shard_names(&index_path).map_err(|reason| ModelError::InvalidSpec {
                        spec: repo.to_string(),
                        reason: format!("the hub's {SAFETENSORS_INDEX_FILE} is invalid: {reason}"),
                    })?;
                files.extend(shards);
            }

            let mut config_path = None;
            for file in &files {
                let path = fetcher.fetch(file)?;
                if file == CONFIG_FILE {
                    config_path = Some(path);
                }
            }
            // `plan_download` always puts config.json first, so the path is set.
            let snapshot = config_path
                .as_deref()
                .and_then(Path::parent)
                .map(Path::to_path_buf)
                .unwrap_or(fetcher.snapshot);
            Ok(ModelFiles::HfFolder(snapshot))
        }
    }
}

/// Downloads single files of one repository revision into the cache.
struct Fetcher<'a, 'e> {
    api_repo: &'a ApiRepo,
    target: &'a HubTarget<'a>,
    /// The snapshot folder of the commit the repository info named. A file already
    /// there (from an earlier, interrupted run) is not fetched again.
    snapshot: PathBuf,
    on_event: &'e mut dyn FnMut(DownloadEvent),
}

impl Fetcher<'_, '_> {
    fn fetch(&mut self, file: &str) -> Result<PathBuf, ModelError> {
        let existing = self.snapshot.join(file);
        if existing.is_file() {
            tracing::info!(repo = self.target.repo, file, "file already in the cache");
            (self.on_event)(DownloadEvent::Finished {
                file: file.to_string(),
                path: existing.clone(),
            });
            return Ok(existing);
        }

        tracing::info!(repo = self.target.repo, file, endpoint = %self.target.endpoint, "download started");
        let progress = EventProgress::new(file, &mut *self.on_event);
        let path = self
            .api_repo
            .download_with_progress(file, progress)
            .map_err(|error| {
                map_api_error(error, self.target, &format!("could not download {file}"))
            })?;
        tracing::info!(repo = self.target.repo, file, path = %path.display(), "download finished");

        (self.on_event)(DownloadEvent::Finished {
            file: file.to_string(),
            path: path.clone(),
        });
        Ok(path)
    }
}

/// Turns hf-hub's progress callbacks into [`DownloadEvent`]s.
struct EventProgress<'e> {
    file: String,
    total_bytes: Option<u64>,
    bytes: u64,
    started: bool,
    last_percent: u64,
    last_sent: Instant,
    on_event: &'e mut dyn FnMut(DownloadEvent),
}

impl<'e> EventProgress<'e> {
    fn new(file: &str, on_event: &'e mut dyn FnMut(DownloadEvent)) -> Self {
        EventProgress {
            file: file.to_string(),
            total_bytes: None,
            bytes: 0,
            started: false,
            last_percent: 0,
            last_sent: Instant::now(),
            on_event,
        }
    }
}

impl Progress for EventProgress<'_> {
    // hf-hub 0.4.3 calls `init` once before the request and again when the response
    // arrives, followed by `update` with the resumed offset, so only the first call
    // sends `Started` and every call resets the count.
    fn init(&mut self, size: usize, _filename: &str) {
        self.total_bytes = Some(size as u64);
        self.bytes = 0;
        if !self.started {
            self.started = true;
            self.last_sent = Instant::now();
            (self.on_event)(DownloadEvent::Started {
                file: self.file.clone(),
                total_bytes: self.total_bytes,
            });
        }
    }

    fn update(&mut self, size: usize) {
        if size == 0 {
            return;
        }
        self.bytes += size as u64;

        let percent = match self.total_bytes {
            Some(total) if total > 0 => self.bytes.saturating_mul(100) / total,
            _ => 0,
        };
        if percent > self.last_percent || self.last_sent.elapsed() >= PROGRESS_INTERVAL {
            self.last_percent = percent;
            self.last_sent = Instant::now();
            (self.on_event)(DownloadEvent::Progress {
                file: self.file.clone(),
                bytes: self.bytes,
                total_bytes: self.total_bytes,
            });
        }
    }

    fn finish(&mut self) {}
}

/// Maps an hf-hub error to a [`ModelError`]. `action` names the failed step and starts the
/// error's reason.
fn map_api_error(error: ApiError, target: &HubTarget, action: &str) -> ModelError {
    let unreachable = |reason: String| ModelError::HubUnreachable {
        endpoint: target.endpoint.to_string(),
        repo: target.repo.to_string(),
        reason,
    };
    let io_error = |path: PathBuf, source: std::io::Error| ModelError::Io { path, source };

    match error {
        ApiError::RequestError(request_error) => {
            let reason = format!("{action}: {request_error}");
            let status = (*request_error).into_response().map(|response| response.status());
            match status {
                Some(401 | 403) => ModelError::HubNotFound {
                    endpoint: target.endpoint.to_string(),
                    repo: target.repo.to_string(),
                    reason: format!(
                        "{reason}. The hub responds this way both for unknown repositories and for private or gated ones. For a private or gated repository, set HF_TOKEN to an access token that can read it"
                    ),
                },
                Some(404) => ModelError::HubNotFound {
                    endpoint: target.endpoint.to_string(),
                    repo: target.repo.to_string(),
                    reason,
                },
                // Other HTTP statuses (5xx, 429) and transport failures: connection
                // refused, DNS, TLS, timeouts.
                _ => unreachable(reason),
            }
        }
        ApiError::MissingHeader(_) | ApiError::InvalidHeader(_) | ApiError::ParseIntError(_) => {
            unreachable(format!(
                "{action}: {error}. The endpoint does not respond like a Hugging Face hub"
            ))
        }
        ApiError::TooManyRetries(inner) => map_api_error(*inner, target, action),
        ApiError::IoError(source) => io_error(target.cache_dir.to_path_buf(), source),
        ApiError::InvalidResume => io_error(
            cache_repo_dir(target.cache_dir, target.repo).join("blobs"),
            std::io::Error::other(format!(
                "{action}: a partial download (.part file) is larger than the file on the hub. Delete the .part file and retry"
            )),
        ),
        ApiError::LockAcquisition(lock_path) => io_error(
            lock_path,
            std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                format!("{action}: another process holds the download lock. Wait for it to finish, or delete the lock file"),
            ),
        ),
        #[allow(unreachable_patterns)]
        other => unreachable(format!("{action}: {other}")),
    }
}

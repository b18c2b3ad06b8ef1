//! The error type shared by model loading, tokenizing and running.

use std::path::PathBuf;

/// Everything that can go wrong between a model spec and a forward pass. Each variant
/// carries the offending value, and its message states what to do next.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model file or folder not found: {path}. Check the path, or give a hub id such as HuggingFaceTB/SmolLM2-135M-Instruct")]
    NotFound { path: PathBuf },

    #[error("invalid model spec {spec:?}: {reason}")]
    InvalidSpec { spec: String, reason: String },

    #[error("could not read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path} is not a valid GGUF file: {reason}. The file may be truncated or corrupt; download it again")]
    InvalidGguf { path: PathBuf, reason: String },

    #[error("invalid model config {path}: {reason}")]
    InvalidConfig { path: PathBuf, reason: String },

    #[error("unsupported architecture {found:?} in {path}. Supported architectures: {supported}")]
    UnsupportedArchitecture {
        found: String,
        path: PathBuf,
        supported: String,
    },

    #[error("tensor {name} is missing from {path}")]
    MissingTensor { name: String, path: PathBuf },

    #[error("tensor {name} in {path} has shape {found:?}, expected {expected:?}")]
    TensorShape {
        name: String,
        path: PathBuf,
        found: Vec<usize>,
        expected: Vec<usize>,
    },

    #[error("tokenizer error: {0}")]
    Tokenizer(String),

    #[error("chat template error: {0}")]
    ChatTemplate(String),

    #[error("{repo} is not in the Hugging Face cache ({cache}) or the model folder ({models}), and offline mode is on (--offline, HF_HUB_OFFLINE=1 or the offline setting). Turn it off to download the model, or give the path of a local .gguf file or model folder")]
    OfflineNotCached {
        repo: String,
        cache: PathBuf,
        models: PathBuf,
    },

    #[error("could not reach the model hub at {endpoint} to get {repo}: {reason}. Check the network or set HF_ENDPOINT to a mirror, or give the path of a local .gguf file or model folder")]
    HubUnreachable {
        endpoint: String,
        repo: String,
        reason: String,
    },

    #[error("the hub at {endpoint} has no model {repo}: {reason}. Check the spelling of the id and the revision")]
    HubNotFound {
        endpoint: String,
        repo: String,
        reason: String,
    },

    #[error("{repo} on the hub has no usable weights: expected model.safetensors, a safetensors index, or a .gguf file. Files found: {files}")]
    HubNoWeights { repo: String, files: String },

    #[error("layer {layer} is out of range: the model has {num_layers} layers (0-{last})", last = num_layers.saturating_sub(1))]
    LayerOutOfRange { layer: usize, num_layers: usize },

    #[error("token id {id} is out of range: the vocabulary has {vocab_size} tokens")]
    TokenOutOfRange { id: u32, vocab_size: usize },

    #[error("device {requested:?} is not available: {reason}")]
    Device { requested: String, reason: String },

    /// A tensor error. Not marked as the error's source: its message is already the
    /// whole text, and error reporters would otherwise print it twice.
    #[error("{}", candle_message(.0))]
    Candle(candle_core::Error),
}

impl From<candle_core::Error> for ModelError {
    fn from(error: candle_core::Error) -> Self {
        Self::Candle(error)
    }
}

/// The message of a candle error without the backtrace that candle attaches when
/// RUST_BACKTRACE is set: users need the cause, not candle's stack.
pub fn candle_message(error: &candle_core::Error) -> String {
    match error {
        candle_core::Error::WithBacktrace { inner, .. } => candle_message(inner),
        candle_core::Error::Context { inner, context } => {
            format!("{context}: {}", candle_message(inner))
        }
        other => other.to_string(),
    }
}

pub type Result<T> = std::result::Result<T, ModelError>;

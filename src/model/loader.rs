//! Turns model files into a runnable model: decoder, tokenizer and chat template.

use std::path::Path;
use std::time::Instant;

use candle_core::Device;

use super::chat_template::{ChatMessage, ChatTemplate};
use super::config::ModelConfig;
use super::decoder::Decoder;
use super::error::{ModelError, Result};
use super::hub::{self, DownloadEvent, HubOptions};
use super::source::{ModelFiles, ModelSpec};
use super::tokenizer::TextTokenizer;
use super::{gguf, safetensors};

/// A frozen base model ready to run.
pub struct LoadedModel {
    pub decoder: Decoder,
    /// Absent for checkpoints that ship no tokenizer (tiny test models); such models take
    /// token ids only.
    pub tokenizer: Option<TextTokenizer>,
    pub chat_template: Option<ChatTemplate>,
    pub files: ModelFiles,
    /// The storage format of the weights on disk, such as "GGUF Q4_1" or "safetensors BF16".
    pub weights_format: String,
    pub load_seconds: f64,
}

impl LoadedModel {
    pub fn config(&self) -> &ModelConfig {
        self.decoder.config()
    }

    /// The tokenizer, or an error for models loaded without one.
    pub fn tokenizer(&self) -> Result<&TextTokenizer> {
        self.tokenizer.as_ref().ok_or_else(|| {
            ModelError::Tokenizer(format!(
                "{} has no tokenizer: add tokenizer.json to the model folder",
                files_path(&self.files).display()
            ))
        })
    }

    /// Renders one user message (after an optional system message) with the model's chat
    /// template and the generation prompt.
    pub fn render_chat(&self, system: Option<&str>, user: &str) -> Result<String> {
        let template = self.chat_template.as_ref().ok_or_else(|| {
            ModelError::ChatTemplate(format!(
                "{} has no chat template: drop --chat, or use an instruction-tuned model",
                files_path(&self.files).display()
            ))
        })?;
        let mut messages = Vec::new();
        if let Some(system) = system {
            messages.push(ChatMessage {
                role: "system".into(),
                content: system.into(),
            });
        }
        messages.push(ChatMessage {
            role: "user".into(),
            content: user.into(),
        });
        template.render(&messages, true)
    }
}

fn files_path(files: &ModelFiles) -> &Path {
    match files {
        ModelFiles::Gguf(path) | ModelFiles::HfFolder(path) => path,
    }
}

/// Resolves `spec` (a path, or a hub id fetched when needed) and loads it.
pub fn load_spec(
    spec: &str,
    base_dir: Option<&Path>,
    options: &HubOptions,
    device: &Device,
    on_download: &mut dyn FnMut(DownloadEvent),
) -> Result<LoadedModel> {
    let spec = ModelSpec::parse(spec, base_dir)?;
    let files = hub::resolve(&spec, options, on_download)?;
    load_files(files, device)
}

/// Loads resolved model files onto `device`.
pub fn load_files(files: ModelFiles, device: &Device) -> Result<LoadedModel> {
    let started = Instant::now();
    tracing::info!(path = %files_path(&files).display(), "loading model");

    let (decoder, tokenizer, chat_template, weights_format) = match &files {
        ModelFiles::Gguf(path) => {
            let (config, weights, content) = gguf::load(path, device)?;
            let format = gguf::weights_format(&content);
            let decoder = Decoder::new(config, &weights, device)?;
            let tokenizer = TextTokenizer::from_gguf(&content, path)?;
            let template = ChatTemplate::from_gguf(&content)
                .map(|t| t.with_special_tokens(tokenizer.bos_token(), tokenizer.eos_token()));
            (decoder, Some(tokenizer), template, format)
        }
        ModelFiles::HfFolder(dir) => {
            let config_path = dir.join("config.json");
            if !config_path.is_file() {
                return Err(ModelError::NotFound { path: config_path });
            }
            let config = ModelConfig::from_hf_config(&config_path)?;
            let (weights, format) = safetensors::load(dir, device)?;
            let decoder = Decoder::new(config, &weights, device)?;

            let tokenizer = if dir.join("tokenizer.json").is_file() {
                Some(TextTokenizer::from_hf_folder(dir)?)
            } else {
                tracing::warn!(dir = %dir.display(), "model folder has no tokenizer.json; it takes token ids only");
                None
            };
            let config_file = dir.join("tokenizer_config.json");
            let template = if config_file.is_file() {
                ChatTemplate::from_tokenizer_config(&config_file)?
            } else {
                None
            };
            (decoder, tokenizer, template, format)
        }
    };

    let load_seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        seconds = format!("{load_seconds:.2}"),
        layers = decoder.num_layers(),
        hidden = decoder.config().hidden_size,
        "model loaded"
    );
    Ok(LoadedModel {
        decoder,
        tokenizer,
        chat_template,
        files,
        weights_format,
        load_seconds,
    })
}

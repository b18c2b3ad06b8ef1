//! Model hyper-parameters, read from a Hugging Face config.json or from GGUF metadata and
//! converted once into [`ModelConfig`], the struct the decoder uses.

use std::path::Path;

use candle_core::quantized::gguf_file;
use serde::{Deserialize, Serialize};

use super::error::{ModelError, Result};

/// Decoder families the engine can run. They share one forward pass; the differences
/// are flags on [`ModelConfig`] (biases on q/k/v, a sliding window, q/k norms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    Llama,
    Mistral,
    Qwen2,
}

impl Architecture {
    pub const SUPPORTED: &'static str = "llama (SmolLM2, Llama 2/3, TinyLlama), mistral, qwen2";

    /// Maps a config.json `model_type` or a GGUF `general.architecture` value.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "llama" => Some(Self::Llama),
            "mistral" => Some(Self::Mistral),
            "qwen2" => Some(Self::Qwen2),
            _ => None,
        }
    }

    /// Whether llama.cpp stores this family's Q and K weights permuted for its
    /// interleaved RoPE. Its converter permutes only the Llama-style families.
    pub fn gguf_permutes_qk(self) -> bool {
        matches!(self, Self::Llama | Self::Mistral)
    }
}

/// Llama 3.1-style RoPE frequency scaling (`rope_scaling.rope_type = "llama3"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Llama3RopeScaling {
    pub factor: f64,
    pub low_freq_factor: f64,
    pub high_freq_factor: f64,
    pub original_max_position_embeddings: usize,
}

/// The hyper-parameters of a decoder-only transformer, as the forward pass needs them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub architecture: Architecture,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: Option<Llama3RopeScaling>,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
    /// Biases on the q, k and v projections (Qwen2).
    pub attention_bias: bool,
    /// Keys further back than this many positions are masked (Mistral, when set).
    pub sliding_window: Option<usize>,
}

/// config.json as Hugging Face writes it for the supported families.
#[derive(Debug, Deserialize)]
struct HfConfig {
    model_type: Option<String>,
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    #[serde(default = "default_rms_norm_eps")]
    rms_norm_eps: f64,
    #[serde(default = "default_rope_theta")]
    rope_theta: f64,
    rope_scaling: Option<serde_json::Value>,
    #[serde(default = "default_max_position_embeddings")]
    max_position_embeddings: usize,
    #[serde(default)]
    tie_word_embeddings: bool,
    attention_bias: Option<bool>,
    sliding_window: Option<usize>,
    use_sliding_window: Option<bool>,
    hidden_act: Option<String>,
}

fn default_rms_norm_eps() -> f64 {
    1e-6
}

fn default_rope_theta() -> f64 {
    10_000.0
}

fn default_max_position_embeddings() -> usize {
    4096
}

impl ModelConfig {
    /// Reads a Hugging Face config.json.
    pub fn from_hf_config(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let invalid = |reason: String| ModelError::InvalidConfig {
            path: path.to_path_buf(),
            reason,
        };
        let raw: HfConfig = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;

        let model_type = raw.model_type.clone().unwrap_or_default();
        let architecture = Architecture::from_name(&model_type).ok_or_else(|| {
            ModelError::UnsupportedArchitecture {
                found: model_type.clone(),
                path: path.to_path_buf(),
                supported: Architecture::SUPPORTED.to_string(),
            }
        })?;

        if let Some(act) = raw.hidden_act.as_deref() {
            if act != "silu" {
                return Err(invalid(format!(
                    "hidden_act {act:?} is not supported: expected \"silu\""
                )));
            }
        }

        let sliding_window = match architecture {
            Architecture::Mistral => raw.sliding_window,
            Architecture::Qwen2 if raw.use_sliding_window == Some(true) => raw.sliding_window,
            _ => None,
        };

        let config = Self {
            architecture,
            vocab_size: raw.vocab_size,
            hidden_size: raw.hidden_size,
            intermediate_size: raw.intermediate_size,
            num_layers: raw.num_hidden_layers,
            num_heads: raw.num_attention_heads,
            num_kv_heads: raw.num_key_value_heads.unwrap_or(raw.num_attention_heads),
            head_dim: raw
                .head_dim
                .unwrap_or(raw.hidden_size / raw.num_attention_heads.max(1)),
            rms_norm_eps: raw.rms_norm_eps,
            rope_theta: raw.rope_theta,
            rope_scaling: parse_rope_scaling(raw.rope_scaling.as_ref()).map_err(invalid)?,
            max_position_embeddings: raw.max_position_embeddings,
            tie_word_embeddings: raw.tie_word_embeddings,
            attention_bias: raw
                .attention_bias
                .unwrap_or(architecture == Architecture::Qwen2),
            sliding_window,
        };
        config.validate().map_err(invalid)?;
        Ok(config)
    }

    /// Reads the `<arch>.*` metadata of a GGUF file. `tie_word_embeddings` is set by the
    /// loader, which knows whether the file has an `output.weight`.
    pub fn from_gguf(content: &gguf_file::Content, path: &Path) -> Result<Self> {
        let invalid = |reason: String| ModelError::InvalidGguf {
            path: path.to_path_buf(),
            reason,
        };
        let arch_name = metadata_string(content, "general.architecture").map_err(invalid)?;
        let architecture = Architecture::from_name(&arch_name).ok_or_else(|| {
            ModelError::UnsupportedArchitecture {
                found: arch_name.clone(),
                path: path.to_path_buf(),
                supported: Architecture::SUPPORTED.to_string(),
            }
        })?;

        let key = |name: &str| format!("{arch_name}.{name}");
        let usize_of = |name: &str| metadata_usize(content, &key(name)).map_err(invalid);
        let f64_of = |name: &str| metadata_f64(content, &key(name)).map_err(invalid);

        let hidden_size = usize_of("embedding_length")?;
        let num_heads = usize_of("attention.head_count")?;
        let num_kv_heads = usize_of("attention.head_count_kv").unwrap_or(num_heads);
        let head_dim = usize_of("attention.key_length").unwrap_or(hidden_size / num_heads.max(1));
        let vocab_size = match usize_of("vocab_size") {
            Ok(v) => v,
            Err(_) => content
                .tensor_infos
                .get("token_embd.weight")
                .map(|info| info.shape.dims()[0])
                .ok_or_else(|| invalid("token_embd.weight is missing".into()))?,
        };

        let config = Self {
            architecture,
            vocab_size,
            hidden_size,
            intermediate_size: usize_of("feed_forward_length")?,
            num_layers: usize_of("block_count")?,
            num_heads,
            num_kv_heads,
            head_dim,
            rms_norm_eps: f64_of("attention.layer_norm_rms_epsilon").unwrap_or(1e-5),
            rope_theta: f64_of("rope.freq_base").unwrap_or(10_000.0),
            rope_scaling: None,
            max_position_embeddings: usize_of("context_length").unwrap_or(4096),
            tie_word_embeddings: !content.tensor_infos.contains_key("output.weight"),
            attention_bias: content.tensor_infos.contains_key("blk.0.attn_q.bias"),
            sliding_window: None,
        };
        config.validate().map_err(invalid)?;
        Ok(config)
    }

    /// Rejects shapes the forward pass cannot run, before any weight is read.
    fn validate(&self) -> std::result::Result<(), String> {
        if self.num_layers == 0 || self.hidden_size == 0 || self.num_heads == 0 {
            return Err(format!(
                "num_layers {}, hidden_size {} and num_heads {} must all be positive",
                self.num_layers, self.hidden_size, self.num_heads
            ));
        }
        if self.num_kv_heads == 0 || self.num_heads % self.num_kv_heads != 0 {
            return Err(format!(
                "num_heads {} is not a multiple of num_kv_heads {}",
                self.num_heads, self.num_kv_heads
            ));
        }
        if self.head_dim % 2 != 0 {
            return Err(format!("head_dim {} must be even for RoPE", self.head_dim));
        }
        Ok(())
    }
}

fn parse_rope_scaling(
    value: Option<&serde_json::Value>,
) -> std::result::Result<Option<Llama3RopeScaling>, String> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let kind = value
        .get("rope_type")
        .or_else(|| value.get("type"))
        .and_then(|v| v.as_str())
        .unwrap_or("");
    match kind {
        "llama3" => serde_json::from_value(value.clone())
            .map(Some)
            .map_err(|e| format!("rope_scaling: {e}")),
        "default" => Ok(None),
        other => Err(format!(
            "rope_scaling type {other:?} is not supported: expected \"llama3\" or none"
        )),
    }
}

fn metadata_value<'a>(
    content: &'a gguf_file::Content,
    key: &str,
) -> std::result::Result<&'a gguf_file::Value, String> {
    content
        .metadata
        .get(key)
        .ok_or_else(|| format!("metadata key {key} is missing"))
}

pub(crate) fn metadata_string(
    content: &gguf_file::Content,
    key: &str,
) -> std::result::Result<String, String> {
    metadata_value(content, key)?
        .to_string()
        .map(|s| s.clone())
        .map_err(|e| format!("metadata key {key}: {e}"))
}

fn metadata_usize(content: &gguf_file::Content, key: &str) -> std::result::Result<usize, String> {
    let value = metadata_value(content, key)?;
    value
        .to_u64()
        .map(|v| v as usize)
        .or_else(|_| value.to_u32().map(|v| v as usize))
        .or_else(|_| value.to_i32().map(|v| v.max(0) as usize))
        .map_err(|e| format!("metadata key {key}: {e}"))
}

fn metadata_f64(content: &gguf_file::Content, key: &str) -> std::result::Result<f64, String> {
    let value = metadata_value(content, key)?;
    value
        .to_f32()
        .map(f64::from)
        .or_else(|_| value.to_f64())
        .map_err(|e| format!("metadata key {key}: {e}"))
}

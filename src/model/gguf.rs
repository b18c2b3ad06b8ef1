//! Reads a llama.cpp GGUF file: metadata, and every tensor dequantised to f32 under its
//! Hugging Face name, with the Q/K row permutation of llama.cpp's converter undone.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use candle_core::quantized::gguf_file;
use candle_core::{DType, Device, Tensor};

use super::config::ModelConfig;
use super::error::{candle_message, ModelError, Result};
use super::weights::Weights;

/// Reads the header and metadata of a GGUF file (no tensor data).
pub fn read_content(path: &Path) -> Result<gguf_file::Content> {
    let file = File::open(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => ModelError::NotFound {
            path: path.to_path_buf(),
        },
        _ => ModelError::Io {
            path: path.to_path_buf(),
            source,
        },
    })?;
    let mut reader = BufReader::new(file);
    gguf_file::Content::read(&mut reader).map_err(|e| ModelError::InvalidGguf {
        path: path.to_path_buf(),
        reason: candle_message(&e),
    })
}

/// Maps a llama.cpp tensor name to its Hugging Face name; None for tensors the decoder
/// does not use (such as precomputed RoPE frequencies).
pub fn hf_name(gguf_name: &str) -> Option<String> {
    let top = match gguf_name {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(name) = top {
        return Some(name.to_string());
    }

    let rest = gguf_name.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (module, kind) = rest.rsplit_once('.')?;
    let hf_module = match module {
        "attn_norm" => "input_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "attn_q_norm" => "self_attn.q_norm",
        "attn_k_norm" => "self_attn.k_norm",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf_module}.{kind}"))
}

/// Undoes llama.cpp's permutation of Q or K rows. Its converter reorders each head's rows
/// from [first half, second half] (rotate_half RoPE) to interleaved pairs (GPT-J RoPE):
/// `w.reshape(heads, 2, head_dim / 2, ...).swapaxes(1, 2)`. Applying Hugging Face RoPE to
/// the permuted rows runs without error but gives a much worse model.
pub fn unpermute_qk(weight: &Tensor, heads: usize) -> candle_core::Result<Tensor> {
    let dims = weight.dims().to_vec();
    let rows = dims[0];
    let head_dim = rows / heads;
    let mut split = vec![heads, head_dim / 2, 2];
    split.extend_from_slice(&dims[1..]);
    weight
        .reshape(split)?
        .transpose(1, 2)?
        .contiguous()?
        .reshape(dims)
}

/// Names the file's stored format by the tensor type holding the most values, as in
/// "GGUF Q4_1": small tensors such as norms are often kept in F32 beside quantised matrices.
pub fn weights_format(content: &gguf_file::Content) -> String {
    let mut values_by_type: HashMap<String, usize> = HashMap::new();
    for info in content.tensor_infos.values() {
        *values_by_type
            .entry(format!("{:?}", info.ggml_dtype))
            .or_default() += info.shape.elem_count();
    }
    let main_type = values_by_type
        .into_iter()
        .max_by_key(|(_, count)| *count)
        .map(|(name, _)| name.to_uppercase())
        .unwrap_or_default();
    format!("GGUF {main_type}")
}

/// Loads a GGUF model: its config and its weights dequantised to f32 on `device`.
pub fn load(path: &Path, device: &Device) -> Result<(ModelConfig, Weights, gguf_file::Content)> {
    let content = read_content(path)?;
    let config = ModelConfig::from_gguf(&content, path)?;

    let invalid = |reason: String| ModelError::InvalidGguf {
        path: path.to_path_buf(),
        reason,
    };
    let file = File::open(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let file_len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader = BufReader::new(file);

    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();

    let mut tensors = HashMap::new();
    for gguf_name in names {
        let Some(name) = hf_name(gguf_name) else {
            tracing::debug!(tensor = %gguf_name, "skipping GGUF tensor the decoder does not use");
            continue;
        };

        // candle's reader trusts the header; check the data lies inside the file first so
        // that a truncated download is reported as such instead of as an I/O error.
        let info = &content.tensor_infos[gguf_name];
        let start = content.tensor_data_offset + info.offset;
        let bytes =
            info.shape.elem_count() / info.ggml_dtype.block_size() * info.ggml_dtype.type_size();
        if start + bytes as u64 > file_len {
            return Err(invalid(format!(
                "tensor {gguf_name} needs bytes {start}..{} but the file has {file_len} bytes",
                start + bytes as u64
            )));
        }

        let qtensor = content
            .tensor(&mut reader, gguf_name, device)
            .map_err(|e| invalid(format!("tensor {gguf_name}: {}", candle_message(&e))))?;
        let mut tensor = qtensor.dequantize(device)?.to_dtype(DType::F32)?;

        if config.architecture.gguf_permutes_qk() {
            if gguf_name.ends_with("attn_q.weight") {
                tensor = unpermute_qk(&tensor, config.num_heads)?;
            } else if gguf_name.ends_with("attn_k.weight") {
                tensor = unpermute_qk(&tensor, config.num_kv_heads)?;
            }
        }
        tensors.insert(name, tensor);
    }

    Ok((config, Weights::new(tensors, path.to_path_buf()), content))
}

//! Identity checks for adapters: a fingerprint of a model's weights and of its tokenizer
//! and chat template, so that an adapter trained on one model is not silently applied to
//! another (including a differently quantised copy of the same model).

use sha2::{Digest, Sha256};

use super::decoder::Decoder;
use super::error::Result;
use super::loader::LoadedModel;

/// Rows of the embedding matrix sampled for the fingerprint: enough to tell quantisations
/// apart while keeping the hash cheap (a few hundred kilobytes are read).
const SAMPLED_EMBEDDING_ROWS: usize = 64;

/// A hex SHA-256 over the model's shape and a sample of its weights: the final norm, and
/// evenly spaced rows of the token embedding.
pub fn weights_fingerprint(decoder: &Decoder) -> Result<String> {
    let config = decoder.config();
    let mut hasher = Sha256::new();
    hasher.update(
        format!(
            "{:?} vocab={} hidden={} layers={} heads={}/{}",
            config.architecture,
            config.vocab_size,
            config.hidden_size,
            config.num_layers,
            config.num_heads,
            config.num_kv_heads
        )
        .as_bytes(),
    );

    for value in decoder
        .final_norm_weight()
        .flatten_all()?
        .to_vec1::<f32>()?
    {
        hasher.update(value.to_le_bytes());
    }

    let embedding = decoder.embedding_weight();
    let rows = embedding.dim(0)?;
    let step = (rows / SAMPLED_EMBEDDING_ROWS).max(1);
    for row in (0..rows).step_by(step) {
        for value in embedding.get(row)?.to_vec1::<f32>()? {
            hasher.update(value.to_le_bytes());
        }
    }
    Ok(hex(&hasher.finalize()))
}

/// A hex SHA-256 over the tokenizer's vocabulary (token text by id) and the chat template
/// source, so that adapters notice a different tokenization or prompt format.
pub fn tokenizer_fingerprint(model: &LoadedModel) -> String {
    let mut hasher = Sha256::new();
    if let Some(tokenizer) = &model.tokenizer {
        let vocab = tokenizer.inner().get_vocab(true);
        let mut entries: Vec<(&u32, &String)> = vocab.iter().map(|(t, id)| (id, t)).collect();
        entries.sort();
        for (id, token) in entries {
            hasher.update(id.to_le_bytes());
            hasher.update(token.as_bytes());
        }
    }
    if let Some(template) = &model.chat_template {
        hasher.update(b"\0template\0");
        hasher.update(template.source().as_bytes());
    }
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

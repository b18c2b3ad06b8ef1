//! Placeholder: replaced by the real tokenizer module.
use std::path::Path;
use candle_core::quantized::gguf_file;
use super::error::{ModelError, Result};
pub struct TextTokenizer { pub inner: tokenizers::Tokenizer }
impl TextTokenizer {
    pub fn from_gguf(_c: &gguf_file::Content, _p: &Path) -> Result<Self> { Ok(Self { inner: tokenizers::Tokenizer::new(tokenizers::models::bpe::BPE::default()) }) }
    pub fn from_hf_folder(_d: &Path) -> Result<Self> { Err(ModelError::Tokenizer("todo".into())) }
    pub fn encode(&self, _t: &str) -> Result<Vec<u32>> { todo!() }
    pub fn decode(&self, _ids: &[u32], _skip: bool) -> Result<String> { todo!() }
    pub fn token_text(&self, _id: u32) -> String { todo!() }
    pub fn eos_ids(&self) -> &[u32] { todo!() }
    pub fn bos_token(&self) -> Option<&str> { None }
    pub fn eos_token(&self) -> Option<&str> { None }
}

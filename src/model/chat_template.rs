//! Placeholder: replaced by the real chat template module.
use std::path::Path;
use candle_core::quantized::gguf_file;
use serde::{Deserialize, Serialize};
use super::error::Result;
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ChatMessage { pub role: String, pub content: String }
pub struct ChatTemplate;
impl ChatTemplate {
    pub fn from_gguf(_c: &gguf_file::Content) -> Option<Self> { None }
    pub fn from_tokenizer_config(_p: &Path) -> Result<Option<Self>> { Ok(None) }
    pub fn render(&self, _m: &[ChatMessage], _g: bool) -> Result<String> { todo!() }
}
impl ChatTemplate { pub fn with_special_tokens(self, _b: Option<&str>, _e: Option<&str>) -> Self { self } }

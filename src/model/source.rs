//! Placeholder: replaced by the real source module.
use std::path::{Path, PathBuf};
use super::error::Result;
pub enum ModelSpec { Path(PathBuf), Hub { repo: String, revision: Option<String> } }
impl ModelSpec { pub fn parse(value: &str, _b: Option<&Path>) -> Result<Self> { Ok(Self::Path(value.into())) } }
pub enum ModelFiles { Gguf(PathBuf), HfFolder(PathBuf) }
pub fn classify_path(p: &Path) -> Result<ModelFiles> { Ok(if p.is_dir() { ModelFiles::HfFolder(p.into()) } else { ModelFiles::Gguf(p.into()) }) }

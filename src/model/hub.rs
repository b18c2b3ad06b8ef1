//! Placeholder: replaced by the real hub module.
use std::path::PathBuf;
use super::error::Result;
use super::source::{ModelSpec, ModelFiles, classify_path};
pub struct HubOptions { pub offline: bool }
impl HubOptions { pub fn from_env() -> Self { Self { offline: false } } }
#[derive(Clone, Debug, PartialEq)]
pub enum DownloadEvent { Started { file: String, total_bytes: Option<u64> }, Progress { file: String, bytes: u64, total_bytes: Option<u64> }, Finished { file: String, path: PathBuf } }
pub fn resolve(spec: &ModelSpec, _o: &HubOptions, _e: &mut dyn FnMut(DownloadEvent)) -> Result<ModelFiles> { match spec { ModelSpec::Path(p) => classify_path(p), _ => todo!() } }

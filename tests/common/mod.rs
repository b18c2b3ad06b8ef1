//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use candle_core::Device;
use reft_studio::model::loader::{self, LoadedModel};
use reft_studio::model::source::ModelFiles;

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn read_json(name: &str) -> serde_json::Value {
    let path = fixture(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The SmolLM2 GGUF named by REFT_STUDIO_TEST_MODEL, or None (with a printed reason)
/// when it is not available. `.ci/run` fetches it, so under CI=true a missing model is a
/// failure rather than a skip.
pub fn test_model_path() -> Option<PathBuf> {
    let path = available_test_model();
    if path.is_none() && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but the test model is missing: .ci/run must fetch it with scripts/fetch-test-assets");
    }
    path
}

fn available_test_model() -> Option<PathBuf> {
    match std::env::var_os("REFT_STUDIO_TEST_MODEL") {
        Some(path) if PathBuf::from(&path).is_file() => Some(PathBuf::from(path)),
        Some(path) => {
            eprintln!(
                "skipping: REFT_STUDIO_TEST_MODEL={} is not a file; run scripts/fetch-test-assets",
                PathBuf::from(path).display()
            );
            None
        }
        None => {
            eprintln!("skipping: REFT_STUDIO_TEST_MODEL is not set; run `eval \"$(scripts/fetch-test-assets)\"`");
            None
        }
    }
}

/// SmolLM2 loaded once per test binary.
pub fn smollm2() -> Option<&'static LoadedModel> {
    static MODEL: OnceLock<Option<LoadedModel>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let path = test_model_path()?;
            Some(loader::load_files(ModelFiles::Gguf(path), &Device::Cpu).expect("SmolLM2 loads"))
        })
        .as_ref()
}

pub fn as_u32s(value: &serde_json::Value) -> Vec<u32> {
    value
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v.as_u64().expect("integer") as u32)
        .collect()
}

pub fn as_f32s(value: &serde_json::Value) -> Vec<f32> {
    value
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v.as_f64().expect("number") as f32)
        .collect()
}

/// |a - b| / max(|b|, 1e-12)
pub fn relative_error(a: f32, b: f32) -> f32 {
    (a - b).abs() / b.abs().max(1e-12)
}

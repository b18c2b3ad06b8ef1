//! Bad model input gives one clear error that names the value, never a panic.

mod common;

use std::path::PathBuf;

use candle_core::Device;
use common::{fixture, test_model_path};
use reft_studio::model::loader;
use reft_studio::model::source::ModelFiles;
use reft_studio::model::ModelError;

fn load_error(files: ModelFiles) -> ModelError {
    match loader::load_files(files, &Device::Cpu) {
        Ok(_) => panic!("loading was expected to fail"),
        Err(error) => error,
    }
}

#[test]
fn missing_gguf_is_not_found() {
    let path = PathBuf::from("/nonexistent/model.gguf");
    let error = load_error(ModelFiles::Gguf(path.clone()));
    assert!(matches!(error, ModelError::NotFound { .. }), "{error:?}");
    assert!(
        error.to_string().contains("/nonexistent/model.gguf"),
        "{error}"
    );
}

#[test]
fn truncated_gguf_is_reported_as_invalid() {
    let Some(model) = test_model_path() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(&model).unwrap();

    // Cut once inside the metadata and once inside the tensor data.
    for keep in [1_000_000usize, bytes.len() - 1_000_000] {
        let path = dir.path().join(format!("cut-{keep}.gguf"));
        std::fs::write(&path, &bytes[..keep]).unwrap();
        let error = load_error(ModelFiles::Gguf(path.clone()));
        assert!(
            matches!(error, ModelError::InvalidGguf { .. }),
            "cut at {keep}: {error:?}"
        );
        let message = error.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("truncated"), "{message}");
        assert!(!message.contains("backtrace"), "{message}");
        assert!(!message.contains("candle_core::"), "{message}");
    }
}

#[test]
fn not_a_gguf_is_reported_as_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.gguf");
    std::fs::write(&path, b"this is a text file, not a model").unwrap();
    let error = load_error(ModelFiles::Gguf(path));
    assert!(matches!(error, ModelError::InvalidGguf { .. }), "{error:?}");
}

#[test]
fn unknown_model_type_lists_supported() {
    let dir = tempfile::tempdir().unwrap();
    for file in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture("tiny-llama").join(file), dir.path().join(file)).unwrap();
    }
    let config_path = dir.path().join("config.json");
    let config = std::fs::read_to_string(&config_path).unwrap();
    std::fs::write(&config_path, config.replace("\"llama\"", "\"gpt_neox\"")).unwrap();

    let error = load_error(ModelFiles::HfFolder(dir.path().to_path_buf()));
    assert!(
        matches!(error, ModelError::UnsupportedArchitecture { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("gpt_neox"), "{message}");
    for supported in ["llama", "qwen2", "mistral"] {
        assert!(message.contains(supported), "{message}");
    }
}

#[test]
fn folder_without_weights_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture("tiny-llama/config.json"),
        dir.path().join("config.json"),
    )
    .unwrap();
    let error = load_error(ModelFiles::HfFolder(dir.path().to_path_buf()));
    assert!(matches!(error, ModelError::NotFound { .. }), "{error:?}");
    assert!(error.to_string().contains("model.safetensors"), "{error}");
}

#[test]
fn wrong_tensor_shape_names_tensor() {
    let dir = tempfile::tempdir().unwrap();
    for file in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture("tiny-llama").join(file), dir.path().join(file)).unwrap();
    }
    let config_path = dir.path().join("config.json");
    let config = std::fs::read_to_string(&config_path).unwrap();
    std::fs::write(
        &config_path,
        config.replace("\"intermediate_size\": 128", "\"intermediate_size\": 96"),
    )
    .unwrap();

    let error = load_error(ModelFiles::HfFolder(dir.path().to_path_buf()));
    assert!(matches!(error, ModelError::TensorShape { .. }), "{error:?}");
    assert!(
        error.to_string().contains("mlp.gate_proj.weight"),
        "{error}"
    );
}

#[test]
fn token_id_outside_vocabulary_is_rejected() {
    let model =
        loader::load_files(ModelFiles::HfFolder(fixture("tiny-llama")), &Device::Cpu).unwrap();
    let error = model.decoder.ids_tensor(&[vec![1, 320]]).unwrap_err();
    assert!(
        matches!(
            error,
            ModelError::TokenOutOfRange {
                id: 320,
                vocab_size: 320
            }
        ),
        "{error:?}"
    );
}

#[test]
fn layer_out_of_range_names_valid_range() {
    let model =
        loader::load_files(ModelFiles::HfFolder(fixture("tiny-llama")), &Device::Cpu).unwrap();
    let error = model.decoder.check_layer(3).unwrap_err();
    assert_eq!(
        error.to_string(),
        "layer 3 is out of range: the model has 3 layers (0-2)"
    );
}

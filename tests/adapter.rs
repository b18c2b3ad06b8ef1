//! Adapter files: saving and loading round-trips every tensor and the metadata, and
//! reading rejects incomplete, corrupt or foreign files and adapters of other models.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use candle_core::{Device, Tensor};
use common::fixture;
use reft_studio::data::Task;
use reft_studio::model::loader::{self, LoadedModel};
use reft_studio::model::source::ModelFiles;
use reft_studio::reft::adapter::{
    identity_of, load_adapter, read_adapter, save_adapter, AdapterError, AdapterMetadata,
    ModuleEntry, ADAPTER_FORMAT_VERSION,
};
use reft_studio::reft::{
    InterventionConfig, InterventionKind, InterventionSet, LayerSelection, Part, Positions,
};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde_json::{json, Value};

const HIDDEN: usize = 64;
const NUM_LAYERS: usize = 3;

fn load_tiny(name: &str) -> LoadedModel {
    loader::load_files(ModelFiles::HfFolder(fixture(name)), &Device::Cpu).expect("tiny model loads")
}

fn tiny_llama() -> &'static LoadedModel {
    static MODEL: OnceLock<LoadedModel> = OnceLock::new();
    MODEL.get_or_init(|| load_tiny("tiny-llama"))
}

fn loreft_at_layer_1() -> InterventionConfig {
    InterventionConfig {
        kind: InterventionKind::Loreft,
        layers: LayerSelection::List(vec![1]),
        rank: 4,
        ..InterventionConfig::default()
    }
}

fn untied_noreft() -> InterventionConfig {
    InterventionConfig {
        kind: InterventionKind::Noreft,
        layers: LayerSelection::List(vec![0, 2]),
        rank: 2,
        positions: Positions::parse("f2+l2").unwrap(),
        tied: false,
        dropout: 0.1,
        scale: 0.5,
        ..InterventionConfig::default()
    }
}

fn new_set(configs: Vec<InterventionConfig>, seed: u64) -> InterventionSet {
    InterventionSet::new(configs, HIDDEN, NUM_LAYERS, seed, &Device::Cpu).unwrap()
}

/// Metadata as a training run would pass it. `modules` and `format_version` are wrong on
/// purpose, because save_adapter must fill them from the set and this build.
fn run_metadata(name: &str) -> AdapterMetadata {
    AdapterMetadata {
        format_version: 0,
        name: name.to_string(),
        interventions: Vec::new(),
        modules: vec![ModuleEntry {
            key: "bogus.layer9".into(),
            config_index: 7,
            layer: 9,
            part: Part::Prefix,
        }],
        base_model: identity_of(tiny_llama(), "tests/fixtures/tiny-llama").unwrap(),
        task: Task::Classification,
        labels: vec!["negative".into(), "positive".into()],
        prompt_template: Some("Review: {text}\nSentiment:".into()),
        system_prompt: Some("You label reviews.".into()),
        training: Some(json!({ "training": { "learning_rate": 0.004, "seed": 42 } })),
        metrics: BTreeMap::from([
            ("eval_loss".to_string(), 0.625),
            ("eval_accuracy".to_string(), 0.875),
        ]),
        created_unix_seconds: 1_700_000_000,
    }
}

fn save_set(dir: &Path, file_name: &str, configs: Vec<InterventionConfig>) -> PathBuf {
    let path = dir.join(file_name);
    save_adapter(&path, &new_set(configs, 7), &run_metadata("test")).unwrap();
    path
}

fn bits(tensor: &Tensor) -> Vec<u32> {
    tensor
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

fn sample_rows() -> Tensor {
    Tensor::arange(0f32, (5 * HIDDEN) as f32, &Device::Cpu)
        .unwrap()
        .reshape((5, HIDDEN))
        .unwrap()
        .affine(0.01, -1.5)
        .unwrap()
}

/// One tensor of an adapter file as raw bytes, for rewriting the file in tests.
struct RawTensor {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

/// Rewrites the adapter at `path` after `edit` changes its metadata JSON and tensors.
fn rewrite_adapter(path: &Path, edit: impl FnOnce(&mut Value, &mut Vec<RawTensor>)) {
    let bytes = std::fs::read(path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let mut metadata: Value =
        serde_json::from_str(&header.metadata().as_ref().unwrap()["reft_studio"]).unwrap();
    let mut tensors: Vec<RawTensor> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| RawTensor {
            name,
            dtype: view.dtype(),
            shape: view.shape().to_vec(),
            data: view.data().to_vec(),
        })
        .collect();

    edit(&mut metadata, &mut tensors);

    write_raw(path, &tensors, Some(metadata.to_string()));
}

fn write_raw(path: &Path, tensors: &[RawTensor], metadata: Option<String>) {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                TensorView::new(t.dtype, t.shape.clone(), &t.data).unwrap(),
            )
        })
        .collect();
    let header = metadata.map(|json| HashMap::from([("reft_studio".to_string(), json)]));
    safetensors::serialize_to_file(views, header, path).unwrap();
}

fn read_error(path: &Path) -> AdapterError {
    match read_adapter(path) {
        Ok(_) => panic!("{} was read without error", path.display()),
        Err(e) => e,
    }
}

fn load_error(path: &Path, model: &LoadedModel) -> AdapterError {
    match load_adapter(path, model) {
        Ok(_) => panic!("{} was loaded without error", path.display()),
        Err(e) => e,
    }
}

/// Saves a fresh set, reads and loads it back, and compares everything.
fn assert_round_trip(configs: Vec<InterventionConfig>, expected_keys: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs/emoji/adapter.safetensors");
    let set = new_set(configs.clone(), 11);
    let caller_metadata = run_metadata("emoji");
    save_adapter(&path, &set, &caller_metadata).unwrap();

    let (metadata, tensors) = read_adapter(&path).unwrap();
    let expected_modules: Vec<ModuleEntry> = set
        .modules()
        .iter()
        .map(|m| ModuleEntry {
            key: m.key.clone(),
            config_index: m.config_index,
            layer: m.layer,
            part: m.part,
        })
        .collect();
    let stored_keys: Vec<&str> = metadata.modules.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(stored_keys, expected_keys);
    let expected_metadata = AdapterMetadata {
        format_version: ADAPTER_FORMAT_VERSION,
        interventions: configs.clone(),
        modules: expected_modules,
        ..caller_metadata
    };
    assert_eq!(metadata, expected_metadata);

    let param_count: usize = set
        .modules()
        .iter()
        .map(|m| m.intervention.params().len())
        .sum();
    assert_eq!(tensors.len(), param_count);
    for module in set.modules() {
        for (param, var) in module.intervention.params() {
            let name = format!("{}.{param}", module.key);
            let stored = tensors
                .get(&name)
                .unwrap_or_else(|| panic!("tensor {name} is missing"));
            assert_eq!(stored.dims(), var.dims(), "shape of {name}");
            assert_eq!(bits(stored), bits(var.as_tensor()), "values of {name}");
        }
    }

    let loaded = load_adapter(&path, tiny_llama()).unwrap();
    assert_eq!(loaded.metadata, expected_metadata);
    assert_eq!(loaded.set.configs(), configs.as_slice());
    assert_eq!(loaded.set.modules().len(), set.modules().len());
    let input = sample_rows();
    for (original, restored) in set.modules().iter().zip(loaded.set.modules()) {
        assert_eq!(restored.key, original.key);
        assert_eq!(restored.config_index, original.config_index);
        assert_eq!(restored.layer, original.layer);
        assert_eq!(restored.part, original.part);
        let expected = original.intervention.forward(&input, false).unwrap();
        let actual = restored.intervention.forward(&input, false).unwrap();
        assert_eq!(
            bits(&actual),
            bits(&expected),
            "output of module {}",
            original.key
        );
    }
}

#[test]
fn adapter_round_trips_tensors_and_metadata() {
    assert_round_trip(vec![loreft_at_layer_1()], &["loreft.layer1"]);
}

#[test]
fn adapter_round_trips_multiple_configs() {
    assert_round_trip(
        vec![loreft_at_layer_1(), untied_noreft()],
        &[
            "loreft.layer1",
            "noreft1.layer0.prefix",
            "noreft1.layer0.suffix",
            "noreft1.layer2.prefix",
            "noreft1.layer2.suffix",
        ],
    );
}

#[test]
fn adapter_rejects_rank_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let path = save_set(dir.path(), "adapter.safetensors", vec![loreft_at_layer_1()]);
    rewrite_adapter(&path, |metadata, _| {
        metadata["interventions"][0]["rank"] = json!(8);
    });

    let error = load_error(&path, tiny_llama());
    let message = error.to_string();
    assert!(
        matches!(error, AdapterError::InvalidTensors { .. }),
        "{message}"
    );
    assert!(message.contains("loreft.layer1.rotate"), "{message}");
    assert!(message.contains("[64, 4]"), "{message}");
    assert!(message.contains("[64, 8]"), "{message}");
}

#[test]
fn adapter_rejects_missing_hyperparameter() {
    let dir = tempfile::tempdir().unwrap();
    let path = save_set(
        dir.path(),
        "adapter.safetensors",
        vec![loreft_at_layer_1(), untied_noreft()],
    );
    rewrite_adapter(&path, |metadata, _| {
        metadata["interventions"][1]
            .as_object_mut()
            .unwrap()
            .remove("rank");
    });

    let error = read_error(&path);
    let message = error.to_string();
    assert!(
        matches!(&error, AdapterError::MissingHyperparameter { index: 1, field, .. } if field == "rank"),
        "{message}"
    );
    assert!(
        message.contains("interventions[1] has no \"rank\""),
        "{message}"
    );
}

#[test]
fn adapter_requires_every_hyperparameter_but_name() {
    let defaults = serde_json::to_value(InterventionConfig::default()).unwrap();
    let fields: Vec<String> = defaults.as_object().unwrap().keys().cloned().collect();
    assert!(fields.len() >= 12, "fields {fields:?}");
    let dir = tempfile::tempdir().unwrap();

    for field in fields {
        let path = save_set(
            dir.path(),
            &format!("{field}.safetensors"),
            vec![loreft_at_layer_1()],
        );
        rewrite_adapter(&path, |metadata, _| {
            metadata["interventions"][0]
                .as_object_mut()
                .unwrap()
                .remove(&field);
        });

        let result = read_adapter(&path);
        if field == "name" {
            assert!(
                result.is_ok(),
                "an adapter without \"name\" is rejected: {:?}",
                result.err()
            );
            continue;
        }
        let message = result.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains(&format!("has no \"{field}\"")),
            "without {field}: {message:?}"
        );
    }
}

#[test]
fn adapter_rejects_invalid_hyperparameter() {
    let dir = tempfile::tempdir().unwrap();
    let path = save_set(dir.path(), "adapter.safetensors", vec![loreft_at_layer_1()]);
    rewrite_adapter(&path, |metadata, _| {
        metadata["interventions"][0]["dropout"] = json!(1.5);
    });

    let error = read_error(&path);
    let message = error.to_string();
    assert!(
        matches!(error, AdapterError::InvalidIntervention { index: 0, .. }),
        "{message}"
    );
    assert!(message.contains("dropout 1.5"), "{message}");
}

#[test]
fn adapter_rejects_other_model_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "hidden_size",
            json!(576),
            "hidden size 576; the loaded model has 64",
        ),
        (
            "num_layers",
            json!(30),
            "number of layers 30; the loaded model has 3",
        ),
        (
            "vocab_size",
            json!(49152),
            "vocabulary size 49152; the loaded model has 320",
        ),
        (
            "architecture",
            json!("qwen2"),
            "architecture qwen2; the loaded model has llama",
        ),
    ];
    for (field, value, expected) in cases {
        let path = save_set(
            dir.path(),
            &format!("{field}.safetensors"),
            vec![loreft_at_layer_1()],
        );
        rewrite_adapter(&path, |metadata, _| {
            metadata["base_model"][field] = value.clone();
        });

        let error = load_error(&path, tiny_llama());
        let message = error.to_string();
        assert!(
            matches!(error, AdapterError::ModelMismatch { .. }),
            "{field}: {message}"
        );
        assert!(message.contains(expected), "{field}: {message}");
        assert!(
            message.contains("tests/fixtures/tiny-llama"),
            "{field}: {message}"
        );
    }
}

#[test]
fn adapter_rejects_other_architecture() {
    let dir = tempfile::tempdir().unwrap();
    let path = save_set(dir.path(), "adapter.safetensors", vec![loreft_at_layer_1()]);
    let mistral = load_tiny("tiny-mistral");

    let message = load_error(&path, &mistral).to_string();
    assert!(
        message.contains("architecture llama; the loaded model has mistral"),
        "{message}"
    );
}

/// Loads a copy of tiny-llama whose final norm weights differ in one value. It has the
/// same architecture and sizes but other weights, like a differently quantised copy.
fn perturbed_tiny_llama(dir: &Path) -> LoadedModel {
    let source = fixture("tiny-llama");
    let copy = dir.join("tiny-llama-perturbed");
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::copy(source.join("config.json"), copy.join("config.json")).unwrap();

    let bytes = std::fs::read(source.join("model.safetensors")).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<RawTensor> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| RawTensor {
            name,
            dtype: view.dtype(),
            shape: view.shape().to_vec(),
            data: view.data().to_vec(),
        })
        .collect();
    let norm = tensors
        .iter_mut()
        .find(|t| t.name == "model.norm.weight")
        .expect("tiny-llama has model.norm.weight");
    assert_eq!(norm.dtype, Dtype::F32);
    let first = f32::from_le_bytes(norm.data[..4].try_into().unwrap());
    norm.data[..4].copy_from_slice(&(first + 0.25).to_le_bytes());
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                TensorView::new(t.dtype, t.shape.clone(), &t.data).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &copy.join("model.safetensors")).unwrap();

    loader::load_files(ModelFiles::HfFolder(copy), &Device::Cpu).unwrap()
}

#[test]
fn adapter_rejects_other_weights() {
    let dir = tempfile::tempdir().unwrap();
    let path = save_set(dir.path(), "adapter.safetensors", vec![loreft_at_layer_1()]);
    let perturbed = perturbed_tiny_llama(dir.path());

    let error = load_error(&path, &perturbed);
    let message = error.to_string();
    assert!(
        matches!(error, AdapterError::WeightsMismatch { .. }),
        "{message}"
    );
    assert!(message.contains("other weights"), "{message}");
    assert!(message.contains("quantised copy"), "{message}");
}

#[test]
fn adapter_rejects_other_tokenizer() {
    let dir = tempfile::tempdir().unwrap();
    let path = save_set(dir.path(), "adapter.safetensors", vec![loreft_at_layer_1()]);
    rewrite_adapter(&path, |metadata, _| {
        metadata["base_model"]["tokenizer_fingerprint"] = json!("0123456789abcdef");
    });

    let error = load_error(&path, tiny_llama());
    let message = error.to_string();
    assert!(
        matches!(error, AdapterError::TokenizerMismatch { .. }),
        "{message}"
    );
    assert!(message.contains("0123456789ab"), "{message}");
}

#[test]
fn adapter_rejects_missing_or_extra_tensors() {
    let dir = tempfile::tempdir().unwrap();

    let missing = save_set(dir.path(), "missing.safetensors", vec![loreft_at_layer_1()]);
    rewrite_adapter(&missing, |_, tensors| {
        tensors.retain(|t| t.name != "loreft.layer1.bias");
    });
    let message = load_error(&missing, tiny_llama()).to_string();
    assert!(
        message.contains("tensor loreft.layer1.bias is missing"),
        "{message}"
    );

    let extra = save_set(dir.path(), "extra.safetensors", vec![loreft_at_layer_1()]);
    rewrite_adapter(&extra, |_, tensors| {
        tensors.push(RawTensor {
            name: "loreft.layer1.scale".into(),
            dtype: Dtype::F32,
            shape: vec![1],
            data: 1f32.to_le_bytes().to_vec(),
        });
    });
    let message = load_error(&extra, tiny_llama()).to_string();
    assert!(message.contains("loreft.layer1.scale"), "{message}");

    let stray = save_set(dir.path(), "stray.safetensors", vec![loreft_at_layer_1()]);
    rewrite_adapter(&stray, |_, tensors| {
        tensors.push(RawTensor {
            name: "other.layer0.bias".into(),
            dtype: Dtype::F32,
            shape: vec![1],
            data: 1f32.to_le_bytes().to_vec(),
        });
    });
    let message = load_error(&stray, tiny_llama()).to_string();
    assert!(message.contains("other.layer0.bias"), "{message}");
    assert!(message.contains("belong to no module"), "{message}");
}

#[test]
fn adapter_rejects_module_list_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let path = save_set(dir.path(), "adapter.safetensors", vec![loreft_at_layer_1()]);
    rewrite_adapter(&path, |metadata, _| {
        metadata["modules"][0]["layer"] = json!(2);
    });

    let error = load_error(&path, tiny_llama());
    let message = error.to_string();
    assert!(
        matches!(error, AdapterError::ModulesMismatch { .. }),
        "{message}"
    );
    assert!(
        message.contains("loreft.layer1 (config 0, layer 2, part Both)"),
        "{message}"
    );
    assert!(
        message.contains("loreft.layer1 (config 0, layer 1, part Both)"),
        "{message}"
    );
}

#[test]
fn adapter_rejects_unknown_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = save_set(dir.path(), "adapter.safetensors", vec![loreft_at_layer_1()]);
    rewrite_adapter(&path, |metadata, _| {
        metadata["format_version"] = json!(2);
    });

    let error = read_error(&path);
    let message = error.to_string();
    assert!(
        matches!(error, AdapterError::UnsupportedVersion { .. }),
        "{message}"
    );
    assert!(message.contains("format version 2"), "{message}");
    assert!(message.contains("reads only version 1"), "{message}");
}

#[test]
fn adapter_rejects_corrupt_file() {
    let dir = tempfile::tempdir().unwrap();
    let valid = save_set(dir.path(), "valid.safetensors", vec![loreft_at_layer_1()]);
    let valid_bytes = std::fs::read(&valid).unwrap();

    // A fixed xorshift sequence, so that a failure repeats.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let random: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let random_path = dir.path().join("random.safetensors");
    std::fs::write(&random_path, &random).unwrap();
    let error = read_error(&random_path);
    assert!(
        matches!(error, AdapterError::NotSafetensors { .. }),
        "random bytes: {error}"
    );

    let empty_path = dir.path().join("empty.safetensors");
    std::fs::write(&empty_path, b"").unwrap();
    let error = read_error(&empty_path);
    assert!(
        matches!(error, AdapterError::NotSafetensors { .. }),
        "empty file: {error}"
    );

    let truncated_path = dir.path().join("truncated.safetensors");
    std::fs::write(&truncated_path, &valid_bytes[..valid_bytes.len() - 100]).unwrap();
    let error = read_error(&truncated_path);
    assert!(
        matches!(error, AdapterError::NotSafetensors { .. }),
        "truncated file: {error}"
    );
    assert!(
        error.to_string().contains("truncated or corrupt"),
        "{error}"
    );

    let bare_path = dir.path().join("bare.safetensors");
    let bare_tensor = [RawTensor {
        name: "weight".into(),
        dtype: Dtype::F32,
        shape: vec![2],
        data: [1f32.to_le_bytes(), 2f32.to_le_bytes()].concat(),
    }];
    write_raw(&bare_path, &bare_tensor, None);
    let error = read_error(&bare_path);
    assert!(
        matches!(error, AdapterError::MissingMetadata { .. }),
        "no metadata: {error}"
    );

    let not_json_path = dir.path().join("not_json.safetensors");
    write_raw(&not_json_path, &bare_tensor, Some("{ not json".into()));
    let error = read_error(&not_json_path);
    assert!(
        matches!(error, AdapterError::InvalidMetadata { .. }),
        "metadata not JSON: {error}"
    );

    let missing_path = dir.path().join("absent.safetensors");
    let error = read_error(&missing_path);
    assert!(
        matches!(error, AdapterError::NotFound { .. }),
        "missing file: {error}"
    );
}

#[test]
fn adapter_name_defaults_to_file_stem() {
    let dir = tempfile::tempdir().unwrap();
    let set = new_set(vec![loreft_at_layer_1()], 3);

    let unnamed = dir.path().join("emoji.safetensors");
    save_adapter(&unnamed, &set, &run_metadata("")).unwrap();
    assert_eq!(read_adapter(&unnamed).unwrap().0.name, "emoji");

    let named = dir.path().join("other.safetensors");
    save_adapter(&named, &set, &run_metadata("sentiment")).unwrap();
    assert_eq!(read_adapter(&named).unwrap().0.name, "sentiment");
}

#[test]
fn save_is_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("adapter.safetensors");
    save_adapter(
        &path,
        &new_set(vec![loreft_at_layer_1()], 1),
        &run_metadata("first"),
    )
    .unwrap();

    // Saving over an adapter replaces it whole.
    let second = new_set(vec![loreft_at_layer_1()], 2);
    save_adapter(&path, &second, &run_metadata("second")).unwrap();
    let (metadata, tensors) = read_adapter(&path).unwrap();
    assert_eq!(metadata.name, "second");
    let rotate = &second.modules()[0].intervention.params()[0];
    assert_eq!(rotate.0, "rotate");
    assert_eq!(
        bits(&tensors["loreft.layer1.rotate"]),
        bits(rotate.1.as_tensor())
    );

    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["adapter.safetensors".to_string()]);

    // A failed save (the target is a folder) leaves no temporary file behind.
    let blocked = dir.path().join("blocked.safetensors");
    std::fs::create_dir(&blocked).unwrap();
    std::fs::write(blocked.join("keep.txt"), b"keep").unwrap();
    let error = save_adapter(&blocked, &second, &run_metadata("blocked")).unwrap_err();
    assert!(matches!(error, AdapterError::Write { .. }), "{error}");
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            "adapter.safetensors".to_string(),
            "blocked.safetensors".to_string()
        ]
    );
    assert_eq!(std::fs::read(blocked.join("keep.txt")).unwrap(), b"keep");
}

#[test]
fn save_rejects_non_finite_metric() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("adapter.safetensors");
    let mut metadata = run_metadata("nan");
    metadata.metrics.insert("eval_loss".into(), f64::NAN);

    let error = save_adapter(&path, &new_set(vec![loreft_at_layer_1()], 1), &metadata).unwrap_err();
    assert!(
        matches!(error, AdapterError::InvalidForSave { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("eval_loss"), "{error}");
    assert!(!path.exists());
}

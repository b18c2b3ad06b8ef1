//! Adapter files: a trained intervention set plus what is needed to apply it again.
//!
//! An adapter is one safetensors file. Each module's tensors are stored as
//! `<module key>.<param name>` (for example `loreft.layer15.rotate`), and the header
//! metadata key `reft_studio` contains [`AdapterMetadata`] as JSON: the intervention
//! configs, where each module sits, the identity of the base model, the task and the
//! training settings. Reading is strict, because a misread adapter silently edits the
//! model differently from how it was trained.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use safetensors::{Dtype, SafeTensors, View};
use serde::{Deserialize, Serialize};

use super::intervention::{Intervention, InterventionConfig};
use super::set::{placements, InterventionSet, Part, PlacedIntervention};
use crate::data::Task;
use crate::model::config::Architecture;
use crate::model::fingerprint::{tokenizer_fingerprint, weights_fingerprint};
use crate::model::loader::LoadedModel;
use crate::model::ModelError;

/// The adapter format this build writes. Reading accepts only this version.
pub const ADAPTER_FORMAT_VERSION: u32 = 1;

/// The safetensors header metadata key that contains the [`AdapterMetadata`] JSON.
pub const METADATA_KEY: &str = "reft_studio";

/// Everything an adapter file records besides its tensors.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdapterMetadata {
    pub format_version: u32,
    /// The adapter's name. [`save_adapter`] replaces an empty name with the file stem.
    pub name: String,
    pub interventions: Vec<InterventionConfig>,
    /// One entry per module, in the set's order. [`save_adapter`] fills it from the set.
    pub modules: Vec<ModuleEntry>,
    pub base_model: BaseModelIdentity,
    pub task: Task,
    /// The class labels of a classification task, in label-id order.
    pub labels: Vec<String>,
    pub prompt_template: Option<String>,
    pub system_prompt: Option<String>,
    /// The run's `TrainConfig` as JSON. This module stores it without interpreting it.
    pub training: Option<serde_json::Value>,
    /// Final metrics of the run by name, such as `eval_loss`. Values must be finite.
    pub metrics: BTreeMap<String, f64>,
    pub created_unix_seconds: u64,
}

/// The placement of one module: the key its tensor names start with, the config it
/// comes from, the layer it edits and which of the config's positions it edits.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ModuleEntry {
    pub key: String,
    pub config_index: usize,
    pub layer: usize,
    pub part: Part,
}

/// The base model an adapter was trained on: its shape, and fingerprints of its weights
/// and of its tokenizer and chat template (see `model::fingerprint`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BaseModelIdentity {
    /// The model spec the run was started with: a path or a hub id.
    pub source: String,
    pub architecture: Architecture,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub vocab_size: usize,
    pub weights_fingerprint: String,
    pub tokenizer_fingerprint: String,
    /// The storage format of the base model's weights, such as "GGUF Q4_1" or "safetensors
    /// BF16". It is empty in adapters written before it was recorded.
    #[serde(default)]
    pub weights_format: String,
}

/// An adapter applied to a loaded model: its metadata and its modules, ready to run.
pub struct LoadedAdapter {
    pub metadata: AdapterMetadata,
    pub set: InterventionSet,
}

/// Failures while saving, reading or loading an adapter. Each message names the file and
/// the next step.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    #[error("adapter file not found: {path}. Check the path; a training run writes <output folder>/adapter.safetensors")]
    NotFound { path: PathBuf },

    #[error("could not read adapter {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("could not write adapter {path}: {source}. Check that the folder is writable and the disk has space")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot save adapter {path}: {reason}")]
    InvalidForSave { path: PathBuf, reason: String },

    #[error("{path} is not a valid safetensors file: {reason}. The file may be truncated or corrupt; save or copy the adapter again")]
    NotSafetensors { path: PathBuf, reason: String },

    #[error("{path} has no \"{METADATA_KEY}\" metadata, so it is not a ReFT Studio adapter. Give an adapter.safetensors that ReFT Studio wrote")]
    MissingMetadata { path: PathBuf },

    #[error("adapter {path}: the \"{METADATA_KEY}\" metadata is invalid: {reason}. The file is incomplete or from another program")]
    InvalidMetadata { path: PathBuf, reason: String },

    #[error("adapter {path} has format version {found}, but this build reads only version {supported}. Use the ReFT Studio version that wrote it, or train the adapter again")]
    UnsupportedVersion {
        path: PathBuf,
        found: String,
        supported: u32,
    },

    #[error("adapter {path}: interventions[{index}] has no \"{field}\"; the file is incomplete or from another program")]
    MissingHyperparameter {
        path: PathBuf,
        index: usize,
        field: String,
    },

    #[error("adapter {path}: interventions[{index}] is invalid: {reason}. The file is corrupt or was edited by hand")]
    InvalidIntervention {
        path: PathBuf,
        index: usize,
        reason: String,
    },

    #[error("adapter {path} was trained on a model with {property} {trained}; the loaded model has {loaded}. Load the model it was trained on ({source_model})")]
    ModelMismatch {
        path: PathBuf,
        property: &'static str,
        trained: String,
        loaded: String,
        source_model: String,
    },

    #[error("adapter {path} was trained on other weights than the loaded model's: the architecture and sizes match, but the weights fingerprint differs (adapter {trained}, loaded model {loaded}). Load the exact model it was trained on ({source_model}); adapters trained on a quantised copy (e.g. a Q4_1 GGUF) do not carry over to the full-precision weights, or back")]
    WeightsMismatch {
        path: PathBuf,
        trained: String,
        loaded: String,
        source_model: String,
    },

    #[error("adapter {path} was trained on a copy of this model stored as {trained_format} ({source_model}), but the loaded copy is stored as {loaded_format}. A quantised copy computes slightly different hidden states than the full-precision weights, so an adapter trained on one does not work on the other. Load the {trained_format} copy, or train the adapter again on this one")]
    QuantisationMismatch {
        path: PathBuf,
        trained_format: String,
        loaded_format: String,
        source_model: String,
    },

    #[error("adapter {path} was trained with another tokenizer or chat template than the loaded model's (fingerprint {trained}, loaded model {loaded}), so token ids and prompts would not match. Load the model it was trained on ({source_model})")]
    TokenizerMismatch {
        path: PathBuf,
        trained: String,
        loaded: String,
        source_model: String,
    },

    #[error("adapter {path}: the module list does not match its intervention configs: {reason}. The file is corrupt or was edited by hand")]
    ModulesMismatch { path: PathBuf, reason: String },

    #[error("adapter {path}: {reason}. The file is incomplete, corrupt or was edited by hand")]
    InvalidTensors { path: PathBuf, reason: String },

    #[error("could not compute the fingerprint of the model: {0}")]
    Model(#[from] ModelError),
}

/// Reads the shape and fingerprints of `model`. `source` is the spec it was loaded from.
pub fn identity_of(model: &LoadedModel, source: &str) -> Result<BaseModelIdentity, AdapterError> {
    let config = model.config();
    Ok(BaseModelIdentity {
        source: source.to_string(),
        architecture: config.architecture,
        hidden_size: config.hidden_size,
        num_layers: config.num_layers,
        vocab_size: config.vocab_size,
        weights_fingerprint: weights_fingerprint(&model.decoder)?,
        tokenizer_fingerprint: tokenizer_fingerprint(model),
        weights_format: model.weights_format.clone(),
    })
}

/// Writes `set` and `metadata` to `path`, creating parent folders.
///
/// The stored `format_version`, `interventions` and `modules` come from this build and
/// from `set`, whatever `metadata` holds, and an empty name becomes the file stem. The
/// file is written to a temporary file in the same folder, flushed to disk and renamed
/// over `path`, so a crash leaves either the old file or the new one.
pub fn save_adapter(
    path: &Path,
    set: &InterventionSet,
    metadata: &AdapterMetadata,
) -> Result<(), AdapterError> {
    let invalid = |reason: String| AdapterError::InvalidForSave {
        path: path.to_path_buf(),
        reason,
    };

    let metadata = metadata_for_save(path, set, metadata).map_err(invalid)?;
    let json = serde_json::to_string(&metadata).map_err(|e| invalid(e.to_string()))?;
    let tensors = tensors_for_save(set).map_err(invalid)?;
    let header = HashMap::from([(METADATA_KEY.to_string(), json)]);
    let bytes =
        safetensors::serialize(tensors, Some(header)).map_err(|e| invalid(e.to_string()))?;

    write_atomically(path, &bytes).map_err(|source| AdapterError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The metadata as it is stored: the caller's, with the fields that must describe the
/// set and this build replaced.
fn metadata_for_save(
    path: &Path,
    set: &InterventionSet,
    metadata: &AdapterMetadata,
) -> Result<AdapterMetadata, String> {
    let mut stored = metadata.clone();
    stored.format_version = ADAPTER_FORMAT_VERSION;
    stored.interventions = set.configs().to_vec();
    stored.modules = set.modules().iter().map(module_entry).collect();

    if stored.name.is_empty() {
        stored.name = path
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default();
    }

    // Reject what read_adapter would reject, so that every saved file reads back.
    for (index, config) in stored.interventions.iter().enumerate() {
        config
            .validate()
            .map_err(|reason| format!("interventions[{index}] is invalid: {reason}"))?;
    }
    let mut keys = HashSet::new();
    for module in &stored.modules {
        if !keys.insert(module.key.as_str()) {
            return Err(format!(
                "two modules have the key {:?}: give the interventions distinct names",
                module.key
            ));
        }
    }
    // serde_json writes NaN and infinity as null, which would not read back as f64.
    for (name, value) in &stored.metrics {
        if !value.is_finite() {
            return Err(format!(
                "metric {name:?} is {value}; metrics must be finite numbers"
            ));
        }
    }
    Ok(stored)
}

fn module_entry(module: &PlacedIntervention) -> ModuleEntry {
    ModuleEntry {
        key: module.key.clone(),
        config_index: module.config_index,
        layer: module.layer,
        part: module.part,
    }
}

/// An f32 tensor copied to host memory, in the form the safetensors writer takes.
struct HostTensor {
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for HostTensor {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }

    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

fn tensors_for_save(set: &InterventionSet) -> Result<Vec<(String, HostTensor)>, String> {
    let mut tensors = Vec::new();
    for module in set.modules() {
        for (param, var) in module.intervention.params() {
            let name = format!("{}.{param}", module.key);
            let values = var
                .as_tensor()
                .to_dtype(DType::F32)
                .and_then(|t| t.flatten_all())
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(|e| format!("could not copy tensor {name} to host memory: {e}"))?;
            let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            tensors.push((
                name,
                HostTensor {
                    shape: var.dims().to_vec(),
                    bytes,
                },
            ));
        }
    }
    Ok(tensors)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&folder)?;

    let file_name = path.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the path has no file name",
        )
    })?;
    let temp_path = folder.join(format!(
        ".{}.{}.tmp",
        file_name.to_string_lossy(),
        std::process::id()
    ));

    let result = write_and_rename(&temp_path, path, bytes);
    if result.is_err() {
        // The temporary file may not exist, depending on where the write failed.
        let _ = std::fs::remove_file(&temp_path);
    }
    result?;

    // Persist the rename itself. Opening a folder for fsync works on Unix only.
    #[cfg(unix)]
    if let Ok(dir) = std::fs::File::open(&folder) {
        let _ = dir.sync_all();
    }
    Ok(())
}

fn write_and_rename(temp_path: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::File::create(temp_path)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(temp_path, path)
}

/// Reads an adapter's metadata and tensors (on the CPU, as f32) without a model, for
/// listing runs.
///
/// Checks, in order: the file is safetensors with the metadata key, the format version
/// is one this build reads, every intervention states every hyperparameter (only `name`
/// may be left out), and each config passes [`InterventionConfig::validate`]. It does not
/// check the tensors against the configs; [`load_adapter`] does.
pub fn read_adapter(
    path: &Path,
) -> Result<(AdapterMetadata, HashMap<String, Tensor>), AdapterError> {
    let bytes = std::fs::read(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => AdapterError::NotFound {
            path: path.to_path_buf(),
        },
        _ => AdapterError::Read {
            path: path.to_path_buf(),
            source,
        },
    })?;
    let not_safetensors = |reason: String| AdapterError::NotSafetensors {
        path: path.to_path_buf(),
        reason,
    };

    let (_, header) =
        SafeTensors::read_metadata(&bytes).map_err(|e| not_safetensors(e.to_string()))?;
    let json = header
        .metadata()
        .as_ref()
        .and_then(|map| map.get(METADATA_KEY))
        .ok_or_else(|| AdapterError::MissingMetadata {
            path: path.to_path_buf(),
        })?;
    let metadata = parse_metadata(path, json)?;

    let file = SafeTensors::deserialize(&bytes).map_err(|e| not_safetensors(e.to_string()))?;
    let mut tensors = HashMap::new();
    for (name, view) in file.tensors() {
        let tensor =
            tensor_from_view(&name, &view).map_err(|reason| AdapterError::InvalidTensors {
                path: path.to_path_buf(),
                reason,
            })?;
        tensors.insert(name, tensor);
    }
    Ok((metadata, tensors))
}

fn parse_metadata(path: &Path, json: &str) -> Result<AdapterMetadata, AdapterError> {
    let invalid = |reason: String| AdapterError::InvalidMetadata {
        path: path.to_path_buf(),
        reason,
    };
    let raw: serde_json::Value =
        serde_json::from_str(json).map_err(|e| invalid(format!("not JSON: {e}")))?;
    let object = raw
        .as_object()
        .ok_or_else(|| invalid("expected a JSON object".into()))?;

    let version = object
        .get("format_version")
        .ok_or_else(|| invalid("\"format_version\" is missing".into()))?;
    if version.as_u64() != Some(u64::from(ADAPTER_FORMAT_VERSION)) {
        return Err(AdapterError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: version.to_string(),
            supported: ADAPTER_FORMAT_VERSION,
        });
    }

    let interventions = object
        .get("interventions")
        .and_then(|v| v.as_array())
        .ok_or_else(|| invalid("\"interventions\" is missing or not a list".into()))?;
    check_hyperparameters_present(path, interventions)?;

    let metadata: AdapterMetadata =
        serde_json::from_value(raw).map_err(|e| invalid(e.to_string()))?;
    for (index, config) in metadata.interventions.iter().enumerate() {
        config
            .validate()
            .map_err(|reason| AdapterError::InvalidIntervention {
                path: path.to_path_buf(),
                index,
                reason,
            })?;
    }
    Ok(metadata)
}

/// Requires every field of `InterventionConfig` in each raw intervention object. The
/// config's serde defaults would otherwise fill a missing field silently, and a default
/// rank or layer that differs from the trained one makes a different adapter.
fn check_hyperparameters_present(
    path: &Path,
    interventions: &[serde_json::Value],
) -> Result<(), AdapterError> {
    let defaults =
        serde_json::to_value(InterventionConfig::default()).expect("the default config serializes");
    let required: Vec<&String> = defaults
        .as_object()
        .expect("InterventionConfig serializes as a JSON object")
        .keys()
        .filter(|key| key.as_str() != "name")
        .collect();

    for (index, intervention) in interventions.iter().enumerate() {
        let object = intervention
            .as_object()
            .ok_or_else(|| AdapterError::InvalidIntervention {
                path: path.to_path_buf(),
                index,
                reason: format!("expected a JSON object, found {intervention}"),
            })?;
        if let Some(field) = required
            .iter()
            .find(|key| !object.contains_key(key.as_str()))
        {
            return Err(AdapterError::MissingHyperparameter {
                path: path.to_path_buf(),
                index,
                field: field.to_string(),
            });
        }
    }
    Ok(())
}

fn tensor_from_view(
    name: &str,
    view: &safetensors::tensor::TensorView<'_>,
) -> Result<Tensor, String> {
    let dtype = match view.dtype() {
        Dtype::F32 => DType::F32,
        Dtype::F16 => DType::F16,
        Dtype::BF16 => DType::BF16,
        Dtype::F64 => DType::F64,
        other => {
            return Err(format!(
                "tensor {name} has dtype {other:?}; intervention parameters must be floating point (F32, F16, BF16 or F64)"
            ))
        }
    };
    Tensor::from_raw_buffer(view.data(), dtype, view.shape(), &Device::Cpu)
        .and_then(|t| t.to_dtype(DType::F32))
        .map_err(|e| format!("could not read tensor {name}: {e}"))
}

/// Reads the adapter at `path` and builds its modules on `model`'s device.
///
/// Checks, in order: everything [`read_adapter`] checks, then that the adapter was trained
/// on this model (architecture, hidden size, number of layers, vocabulary size, weights
/// fingerprint, tokenizer fingerprint). Last, the module list must be the one the configs
/// imply, and every module must have exactly its tensors, in the shapes its config implies.
pub fn load_adapter(path: &Path, model: &LoadedModel) -> Result<LoadedAdapter, AdapterError> {
    let (metadata, tensors) = read_adapter(path)?;

    let loaded = identity_of(model, &metadata.base_model.source)?;
    check_base_model(path, &metadata.base_model, &loaded)?;

    let set = build_set(path, &metadata, tensors, model.decoder.device())?;
    Ok(LoadedAdapter { metadata, set })
}

fn check_base_model(
    path: &Path,
    trained: &BaseModelIdentity,
    loaded: &BaseModelIdentity,
) -> Result<(), AdapterError> {
    let mismatch = |property: &'static str, trained_value: String, loaded_value: String| {
        AdapterError::ModelMismatch {
            path: path.to_path_buf(),
            property,
            trained: trained_value,
            loaded: loaded_value,
            source_model: trained.source.clone(),
        }
    };

    if trained.architecture != loaded.architecture {
        return Err(mismatch(
            "architecture",
            architecture_name(trained.architecture),
            architecture_name(loaded.architecture),
        ));
    }
    if trained.hidden_size != loaded.hidden_size {
        return Err(mismatch(
            "hidden size",
            trained.hidden_size.to_string(),
            loaded.hidden_size.to_string(),
        ));
    }
    if trained.num_layers != loaded.num_layers {
        return Err(mismatch(
            "number of layers",
            trained.num_layers.to_string(),
            loaded.num_layers.to_string(),
        ));
    }
    if trained.vocab_size != loaded.vocab_size {
        return Err(mismatch(
            "vocabulary size",
            trained.vocab_size.to_string(),
            loaded.vocab_size.to_string(),
        ));
    }

    let formats_known = !trained.weights_format.is_empty() && !loaded.weights_format.is_empty();
    if trained.weights_fingerprint != loaded.weights_fingerprint
        && formats_known
        && trained.weights_format != loaded.weights_format
    {
        return Err(AdapterError::QuantisationMismatch {
            path: path.to_path_buf(),
            trained_format: trained.weights_format.clone(),
            loaded_format: loaded.weights_format.clone(),
            source_model: trained.source.clone(),
        });
    }
    if trained.weights_fingerprint != loaded.weights_fingerprint {
        return Err(AdapterError::WeightsMismatch {
            path: path.to_path_buf(),
            trained: short_fingerprint(&trained.weights_fingerprint),
            loaded: short_fingerprint(&loaded.weights_fingerprint),
            source_model: trained.source.clone(),
        });
    }
    if trained.tokenizer_fingerprint != loaded.tokenizer_fingerprint {
        return Err(AdapterError::TokenizerMismatch {
            path: path.to_path_buf(),
            trained: short_fingerprint(&trained.tokenizer_fingerprint),
            loaded: short_fingerprint(&loaded.tokenizer_fingerprint),
            source_model: trained.source.clone(),
        });
    }
    Ok(())
}

fn architecture_name(architecture: Architecture) -> String {
    serde_json::to_value(architecture)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{architecture:?}"))
}

/// Shortens a fingerprint to its first 12 hex digits, enough to tell two apart in a message.
fn short_fingerprint(fingerprint: &str) -> String {
    fingerprint.chars().take(12).collect()
}

fn build_set(
    path: &Path,
    metadata: &AdapterMetadata,
    mut tensors: HashMap<String, Tensor>,
    device: &Device,
) -> Result<InterventionSet, AdapterError> {
    let hidden = metadata.base_model.hidden_size;
    let num_layers = metadata.base_model.num_layers;
    let invalid_tensors = |reason: String| AdapterError::InvalidTensors {
        path: path.to_path_buf(),
        reason,
    };

    for (index, config) in metadata.interventions.iter().enumerate() {
        config
            .validate_for_model(hidden, num_layers)
            .map_err(|reason| AdapterError::InvalidIntervention {
                path: path.to_path_buf(),
                index,
                reason,
            })?;
    }
    check_modules(path, metadata, num_layers)?;

    let module_tensors = split_by_module(&metadata.modules, &mut tensors);
    if !tensors.is_empty() {
        let mut names: Vec<&String> = tensors.keys().collect();
        names.sort();
        return Err(invalid_tensors(format!(
            "tensors {names:?} belong to no module in the metadata"
        )));
    }

    let mut modules = Vec::with_capacity(metadata.modules.len());
    for (position, (entry, own_tensors)) in metadata.modules.iter().zip(module_tensors).enumerate()
    {
        let own_tensors = own_tensors
            .into_iter()
            .map(|(param, tensor)| tensor.to_device(device).map(|t| (param, t)))
            .collect::<candle_core::Result<HashMap<_, _>>>()
            .map_err(|e| {
                invalid_tensors(format!(
                    "could not move module {} to {device:?}: {e}",
                    entry.key
                ))
            })?;

        let config = metadata.interventions[entry.config_index].clone();
        // NOTE: the dropout seed of a loaded module is its position in the set, not the
        // training run's seed, so resumed training draws other dropout masks.
        let intervention = Intervention::from_tensors(config, hidden, own_tensors, position as u64)
            .map_err(|reason| invalid_tensors(prefix_tensor_names(&reason, &entry.key)))?;
        modules.push(PlacedIntervention {
            key: entry.key.clone(),
            config_index: entry.config_index,
            layer: entry.layer,
            part: entry.part,
            intervention,
        });
    }
    Ok(InterventionSet::from_modules(
        metadata.interventions.clone(),
        modules,
    ))
}

/// Requires the stored module list to be the one `placements` derives from the configs,
/// so that each module edits the layer and positions it was trained on.
fn check_modules(
    path: &Path,
    metadata: &AdapterMetadata,
    num_layers: usize,
) -> Result<(), AdapterError> {
    let mismatch = |reason: String| AdapterError::ModulesMismatch {
        path: path.to_path_buf(),
        reason,
    };
    let expected: Vec<ModuleEntry> = placements(&metadata.interventions, num_layers)
        .into_iter()
        .map(|(config_index, layer, part, key)| ModuleEntry {
            key,
            config_index,
            layer,
            part,
        })
        .collect();

    if expected.len() != metadata.modules.len() {
        return Err(mismatch(format!(
            "the configs imply {} modules, but the metadata lists {}",
            expected.len(),
            metadata.modules.len()
        )));
    }
    for (position, (expected, stored)) in expected.iter().zip(&metadata.modules).enumerate() {
        if expected != stored {
            return Err(mismatch(format!(
                "module {position} is {}, but the configs imply {}",
                describe_module(stored),
                describe_module(expected)
            )));
        }
    }
    Ok(())
}

fn describe_module(module: &ModuleEntry) -> String {
    format!(
        "{} (config {}, layer {}, part {:?})",
        module.key, module.config_index, module.layer, module.part
    )
}

/// Moves each tensor named `<key>.<param>` into the map of its module, keyed by param
/// name. When one key is a prefix of another, the longest matching key wins. Tensors
/// that match no key stay in `tensors`.
fn split_by_module(
    modules: &[ModuleEntry],
    tensors: &mut HashMap<String, Tensor>,
) -> Vec<HashMap<String, Tensor>> {
    let mut by_module: Vec<HashMap<String, Tensor>> = vec![HashMap::new(); modules.len()];
    let names: Vec<String> = tensors.keys().cloned().collect();
    for name in names {
        let owner = modules
            .iter()
            .enumerate()
            .filter_map(|(index, module)| {
                let param = name.strip_prefix(module.key.as_str())?.strip_prefix('.')?;
                Some((index, module.key.len(), param.to_string()))
            })
            .max_by_key(|&(_, key_len, _)| key_len);
        if let Some((index, _, param)) = owner {
            let tensor = tensors
                .remove(&name)
                .expect("the name was listed from the map");
            by_module[index].insert(param, tensor);
        }
    }
    by_module
}

/// Rewrites "tensor rotate ..." in an `Intervention::from_tensors` message as
/// "tensor <key>.rotate ...", the name stored in the file, and names the module in any
/// other message.
fn prefix_tensor_names(reason: &str, key: &str) -> String {
    match reason.strip_prefix("tensor ") {
        Some(rest) => format!("tensor {key}.{rest}"),
        None => format!("module {key}: {reason}"),
    }
}

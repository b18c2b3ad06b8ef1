//! Reads the weights of a Hugging Face model folder: model.safetensors, or the shards
//! listed in model.safetensors.index.json.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device};

use super::error::{ModelError, Result};
use super::weights::Weights;

/// The safetensors files of a model folder, in load order.
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }

    let index_path = dir.join("model.safetensors.index.json");
    if !index_path.is_file() {
        return Err(ModelError::NotFound { path: single });
    }
    let text = std::fs::read_to_string(&index_path).map_err(|source| ModelError::Io {
        path: index_path.clone(),
        source,
    })?;
    let index: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| ModelError::InvalidConfig {
            path: index_path.clone(),
            reason: e.to_string(),
        })?;
    let map = index
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| ModelError::InvalidConfig {
            path: index_path.clone(),
            reason: "weight_map is missing".into(),
        })?;

    let shards: BTreeSet<&str> = map.values().filter_map(|v| v.as_str()).collect();
    let files: Vec<PathBuf> = shards.iter().map(|s| dir.join(s)).collect();
    for file in &files {
        if !file.is_file() {
            return Err(ModelError::NotFound { path: file.clone() });
        }
    }
    Ok(files)
}

/// Loads every tensor of the folder's safetensors files as f32 on `device`, and names the
/// stored format by the dtype holding the most values, as in "safetensors BF16".
pub fn load(dir: &Path, device: &Device) -> Result<(Weights, String)> {
    let mut tensors = HashMap::new();
    let mut values_by_dtype: HashMap<DType, usize> = HashMap::new();
    for file in weight_files(dir)? {
        let loaded = candle_core::safetensors::load(&file, device).map_err(|e| {
            ModelError::InvalidConfig {
                path: file.clone(),
                reason: format!("not a readable safetensors file: {e}"),
            }
        })?;
        for (name, tensor) in loaded {
            *values_by_dtype.entry(tensor.dtype()).or_default() += tensor.elem_count();
            tensors.insert(name, tensor.to_dtype(DType::F32)?);
        }
    }
    let main_dtype = values_by_dtype
        .into_iter()
        .max_by_key(|(_, count)| *count)
        .map(|(dtype, _)| format!("{dtype:?}").to_uppercase())
        .unwrap_or_default();
    Ok((
        Weights::new(tensors, dir.to_path_buf()),
        format!("safetensors {main_dtype}"),
    ))
}

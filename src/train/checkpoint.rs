//! Checkpoints: `checkpoints/step-N.safetensors` is a complete adapter (usable as it is),
//! and `step-N.state.safetensors` beside it contains the optimizer's moment estimates and the
//! step, so that a run can continue from it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::model::loader::LoadedModel;
use crate::reft::adapter::load_adapter;
use crate::reft::InterventionSet;

const STATE_KEY: &str = "reft_studio_optimizer";

/// A checkpoint read back for resuming.
pub struct Checkpoint {
    pub set: InterventionSet,
    pub step: usize,
    pub updates: usize,
    pub optimizer_tensors: HashMap<String, Tensor>,
}

/// The optimizer-state file that belongs to the checkpoint adapter `adapter_path`.
pub fn state_path(adapter_path: &Path) -> PathBuf {
    let stem = adapter_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    adapter_path.with_file_name(format!("{stem}.state.safetensors"))
}

/// Writes the optimizer state for the checkpoint adapter at `adapter_path`.
pub fn save_state(
    adapter_path: &Path,
    step: usize,
    updates: usize,
    tensors: &[(String, Tensor)],
) -> Result<(), String> {
    let path = state_path(adapter_path);
    let metadata = serde_json::json!({ "step": step, "updates": updates }).to_string();
    let mut data: Vec<(String, Vec<u8>, Vec<usize>)> = Vec::with_capacity(tensors.len());
    for (name, tensor) in tensors {
        let values = tensor
            .flatten_all()
            .and_then(|t| t.to_dtype(DType::F32))
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| e.to_string())?;
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        data.push((name.clone(), bytes, tensor.dims().to_vec()));
    }
    let views = data
        .iter()
        .map(|(name, bytes, shape)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                .map(|view| (name.clone(), view))
                .map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, String>>()?;
    let info = HashMap::from([(STATE_KEY.to_string(), metadata)]);
    safetensors::serialize_to_file(views, Some(info), &path).map_err(|e| {
        format!(
            "could not write the checkpoint state {}: {e}",
            path.display()
        )
    })
}

/// Reads a checkpoint adapter and its optimizer state, checking both against `model`.
pub fn load(adapter_path: &Path, model: &LoadedModel) -> Result<Checkpoint, String> {
    let adapter = load_adapter(adapter_path, model).map_err(|e| e.to_string())?;
    let path = state_path(adapter_path);
    let bytes = std::fs::read(&path).map_err(|e| {
        format!(
            "cannot resume from {}: its optimizer state {} could not be read ({e}); the adapter itself is usable, but a run can only resume from a checkpoint",
            adapter_path.display(),
            path.display()
        )
    })?;
    let invalid = |reason: String| format!("invalid checkpoint state {}: {reason}", path.display());
    let (_, header) =
        safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| invalid(e.to_string()))?;
    let info: serde_json::Value = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(STATE_KEY))
        .and_then(|s| serde_json::from_str(s).ok())
        .ok_or_else(|| invalid(format!("the {STATE_KEY} metadata is missing")))?;
    let step = info["step"]
        .as_u64()
        .ok_or_else(|| invalid("no step".into()))? as usize;
    let updates = info["updates"]
        .as_u64()
        .ok_or_else(|| invalid("no update count".into()))? as usize;

    let optimizer_tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
        .map_err(|e| invalid(e.to_string()))?;
    Ok(Checkpoint {
        set: adapter.set,
        step,
        updates,
        optimizer_tensors,
    })
}

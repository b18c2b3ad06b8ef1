//! A name -> tensor map in Hugging Face naming, whatever file format it was read from.

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::Tensor;

use super::error::{ModelError, Result};

/// Frozen weights keyed by their Hugging Face names (`model.layers.3.self_attn.q_proj.weight`).
pub struct Weights {
    tensors: HashMap<String, Tensor>,
    /// The file or folder the weights came from, for error messages.
    source: PathBuf,
}

impl Weights {
    pub fn new(tensors: HashMap<String, Tensor>, source: PathBuf) -> Self {
        Self { tensors, source }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// Returns the tensor `name`, checking that its shape is `expected`.
    pub fn get(&self, name: &str, expected: &[usize]) -> Result<Tensor> {
        let tensor = self
            .tensors
            .get(name)
            .ok_or_else(|| ModelError::MissingTensor {
                name: name.to_string(),
                path: self.source.clone(),
            })?;
        if tensor.dims() != expected {
            return Err(ModelError::TensorShape {
                name: name.to_string(),
                path: self.source.clone(),
                found: tensor.dims().to_vec(),
                expected: expected.to_vec(),
            });
        }
        Ok(tensor.clone())
    }

    /// Returns the tensor `name` when present, checking its shape.
    pub fn get_optional(&self, name: &str, expected: &[usize]) -> Result<Option<Tensor>> {
        if self.contains(name) {
            self.get(name, expected).map(Some)
        } else {
            Ok(None)
        }
    }
}

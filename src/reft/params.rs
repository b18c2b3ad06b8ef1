//! Parameter creation and lookup shared by the intervention types.

use std::collections::HashMap;

use candle_core::{DType, Device, Result, Tensor, Var};
use rand::rngs::StdRng;
use rand::Rng;

use super::orthonormal;

/// Named trainable parameters of one intervention module, in a fixed order.
#[derive(Default)]
pub struct ParamSet {
    entries: Vec<(String, Var)>,
}

impl ParamSet {
    pub fn push(&mut self, name: &str, var: Var) -> Var {
        self.entries.push((name.to_string(), var.clone()));
        var
    }

    pub fn entries(&self) -> &[(String, Var)] {
        &self.entries
    }
}

/// Draws a [rows, cols] tensor from U(-bound, bound), like PyTorch's default Linear init
/// (bound = 1 / sqrt(fan_in)).
pub fn uniform(rng: &mut StdRng, shape: &[usize], bound: f64, device: &Device) -> Result<Var> {
    let count: usize = shape.iter().product();
    let values: Vec<f32> = (0..count)
        .map(|_| rng.random_range(-bound..bound) as f32)
        .collect();
    Var::from_tensor(&Tensor::from_vec(values, shape, device)?)
}

/// Draws a [d, r] matrix with orthonormal columns (a random rotation's first r columns).
pub fn orthonormal_columns(rng: &mut StdRng, d: usize, r: usize, device: &Device) -> Result<Var> {
    let mut values: Vec<f64> = (0..d * r)
        .map(|_| {
            // Box-Muller: a standard normal from two uniforms.
            let u1: f64 = rng.random_range(f64::EPSILON..1.0);
            let u2: f64 = rng.random::<f64>();
            (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        })
        .collect();
    orthonormal::orthonormalize_columns(&mut values, d, r);
    let values: Vec<f32> = values.iter().map(|&v| v as f32).collect();
    Var::from_tensor(&Tensor::from_vec(values, (d, r), device)?)
}

/// Takes the tensor `name` from loaded adapter tensors as a trainable Var, checking its shape.
pub fn take(
    tensors: &mut HashMap<String, Tensor>,
    name: &str,
    shape: &[usize],
) -> std::result::Result<Var, String> {
    let tensor = tensors
        .remove(name)
        .ok_or_else(|| format!("tensor {name} is missing"))?;
    if tensor.dims() != shape {
        return Err(format!(
            "tensor {name} has shape {:?}, but the config implies {shape:?}",
            tensor.dims()
        ));
    }
    Var::from_tensor(&tensor.to_dtype(DType::F32).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())
}

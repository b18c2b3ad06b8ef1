//! LoReFT: h + R^T(act(W h + b) - R h), with R's rows orthonormal. In the row-vector
//! form used here R is stored as its [hidden, rank] transpose with orthonormal columns:
//! Δh = (act(h W^T + b) - h R) R^T.

use std::collections::HashMap;

use candle_core::{Device, Result, Tensor, Var};
use rand::rngs::StdRng;

use super::intervention::{Activation, EditModule};
use super::params::{self, ParamSet};

pub struct LoReft {
    rotate: Var,
    weight: Var,
    bias: Var,
    params: ParamSet,
}

impl LoReft {
    pub fn init(hidden: usize, rank: usize, rng: &mut StdRng, device: &Device) -> Result<Self> {
        let bound = 1.0 / (hidden as f64).sqrt();
        let rotate = params::orthonormal_columns(rng, hidden, rank, device)?;
        let weight = params::uniform(rng, &[rank, hidden], bound, device)?;
        let bias = params::uniform(rng, &[rank], bound, device)?;
        Ok(Self::from_vars(rotate, weight, bias))
    }

    pub fn load(
        hidden: usize,
        rank: usize,
        tensors: &mut HashMap<String, Tensor>,
    ) -> std::result::Result<Self, String> {
        Ok(Self::from_vars(
            params::take(tensors, "rotate", &[hidden, rank])?,
            params::take(tensors, "weight", &[rank, hidden])?,
            params::take(tensors, "bias", &[rank])?,
        ))
    }

    fn from_vars(rotate: Var, weight: Var, bias: Var) -> Self {
        let mut params = ParamSet::default();
        params.push("rotate", rotate.clone());
        params.push("weight", weight.clone());
        params.push("bias", bias.clone());
        Self {
            rotate,
            weight,
            bias,
            params,
        }
    }
}

impl EditModule for LoReft {
    fn edit(&self, h: &Tensor, activation: Activation) -> Result<Tensor> {
        let r = self.rotate.as_tensor();
        let source = activation.apply(&h.matmul(&self.weight.t()?)?.broadcast_add(&self.bias)?)?;
        let rotated = h.matmul(r)?;
        (source - rotated)?.matmul(&r.t()?)
    }

    fn params(&self) -> &ParamSet {
        &self.params
    }

    fn projection(&self) -> Option<&Var> {
        Some(&self.rotate)
    }
}

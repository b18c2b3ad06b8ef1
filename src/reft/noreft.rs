//! NoReFT: LoReFT without the orthogonality constraint,
//! h + W2^T(act(W1 h + b1) - (W2 h + b2)); the bias b2 is optional.
//! Row-vector form: Δh = (act(h W1^T + b1) - (h W2^T + b2)) W2.

use std::collections::HashMap;

use candle_core::{Device, Result, Tensor, Var};
use rand::rngs::StdRng;

use super::intervention::{Activation, EditModule};
use super::params::{self, ParamSet};

pub struct NoReft {
    source_weight: Var,
    source_bias: Var,
    proj_weight: Var,
    proj_bias: Option<Var>,
    params: ParamSet,
}

impl NoReft {
    pub fn init(
        hidden: usize,
        rank: usize,
        with_proj_bias: bool,
        rng: &mut StdRng,
        device: &Device,
    ) -> Result<Self> {
        let bound = 1.0 / (hidden as f64).sqrt();
        let source_weight = params::uniform(rng, &[rank, hidden], bound, device)?;
        let source_bias = params::uniform(rng, &[rank], bound, device)?;
        let proj_weight = params::uniform(rng, &[rank, hidden], bound, device)?;
        let proj_bias = if with_proj_bias {
            Some(params::uniform(rng, &[rank], bound, device)?)
        } else {
            None
        };
        Ok(Self::from_vars(
            source_weight,
            source_bias,
            proj_weight,
            proj_bias,
        ))
    }

    pub fn load(
        hidden: usize,
        rank: usize,
        with_proj_bias: bool,
        tensors: &mut HashMap<String, Tensor>,
    ) -> std::result::Result<Self, String> {
        let proj_bias = if with_proj_bias {
            Some(params::take(tensors, "proj.bias", &[rank])?)
        } else {
            None
        };
        Ok(Self::from_vars(
            params::take(tensors, "source.weight", &[rank, hidden])?,
            params::take(tensors, "source.bias", &[rank])?,
            params::take(tensors, "proj.weight", &[rank, hidden])?,
            proj_bias,
        ))
    }

    fn from_vars(
        source_weight: Var,
        source_bias: Var,
        proj_weight: Var,
        proj_bias: Option<Var>,
    ) -> Self {
        let mut params = ParamSet::default();
        params.push("source.weight", source_weight.clone());
        params.push("source.bias", source_bias.clone());
        params.push("proj.weight", proj_weight.clone());
        if let Some(b) = &proj_bias {
            params.push("proj.bias", b.clone());
        }
        Self {
            source_weight,
            source_bias,
            proj_weight,
            proj_bias,
            params,
        }
    }
}

impl EditModule for NoReft {
    fn edit(&self, h: &Tensor, activation: Activation) -> Result<Tensor> {
        let w2 = self.proj_weight.as_tensor();
        let source = h
            .matmul(&self.source_weight.t()?)?
            .broadcast_add(&self.source_bias)?;
        let source = activation.apply(&source)?;
        let mut projected = h.matmul(&w2.t()?)?;
        if let Some(b2) = &self.proj_bias {
            projected = projected.broadcast_add(b2)?;
        }
        (source - projected)?.matmul(w2)
    }

    fn params(&self) -> &ParamSet {
        &self.params
    }
}

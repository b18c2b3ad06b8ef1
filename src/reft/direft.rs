//! DiReFT as the ReFT paper defines it: h + W2^T act(W1 h + b), with no orthogonality and
//! no subtraction of the current projection. This is pyreft's NodireftIntervention
//! (pyreft's DireftIntervention is a different, orthogonal variant).
//! Row-vector form: Δh = act(h W1^T + b) W2.

use std::collections::HashMap;

use candle_core::{Device, Result, Tensor, Var};
use rand::rngs::StdRng;

use super::intervention::{Activation, EditModule};
use super::params::{self, ParamSet};

pub struct DiReft {
    source_weight: Var,
    source_bias: Var,
    proj_weight: Var,
    params: ParamSet,
}

impl DiReft {
    pub fn init(hidden: usize, rank: usize, rng: &mut StdRng, device: &Device) -> Result<Self> {
        let bound = 1.0 / (hidden as f64).sqrt();
        let source_weight = params::uniform(rng, &[rank, hidden], bound, device)?;
        let source_bias = params::uniform(rng, &[rank], bound, device)?;
        let proj_weight = params::uniform(rng, &[rank, hidden], bound, device)?;
        Ok(Self::from_vars(source_weight, source_bias, proj_weight))
    }

    pub fn load(
        hidden: usize,
        rank: usize,
        tensors: &mut HashMap<String, Tensor>,
    ) -> std::result::Result<Self, String> {
        Ok(Self::from_vars(
            params::take(tensors, "source.weight", &[rank, hidden])?,
            params::take(tensors, "source.bias", &[rank])?,
            params::take(tensors, "proj.weight", &[rank, hidden])?,
        ))
    }

    fn from_vars(source_weight: Var, source_bias: Var, proj_weight: Var) -> Self {
        let mut params = ParamSet::default();
        params.push("source.weight", source_weight.clone());
        params.push("source.bias", source_bias.clone());
        params.push("proj.weight", proj_weight.clone());
        Self {
            source_weight,
            source_bias,
            proj_weight,
            params,
        }
    }
}

impl EditModule for DiReft {
    fn edit(&self, h: &Tensor, activation: Activation) -> Result<Tensor> {
        let source = h
            .matmul(&self.source_weight.t()?)?
            .broadcast_add(&self.source_bias)?;
        activation
            .apply(&source)?
            .matmul(self.proj_weight.as_tensor())
    }

    fn params(&self) -> &ParamSet {
        &self.params
    }
}

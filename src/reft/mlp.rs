//! An MLP edit: h + up(act(down(h))), down hidden -> rank and up rank -> hidden, both with
//! bias. The activation is GELU unless the config sets another.

use std::collections::HashMap;

use candle_core::{Device, Result, Tensor, Var};
use rand::rngs::StdRng;

use super::intervention::{Activation, EditModule};
use super::params::{self, ParamSet};

pub struct MlpEdit {
    down_weight: Var,
    down_bias: Var,
    up_weight: Var,
    up_bias: Var,
    params: ParamSet,
}

impl MlpEdit {
    pub fn init(hidden: usize, rank: usize, rng: &mut StdRng, device: &Device) -> Result<Self> {
        let down_bound = 1.0 / (hidden as f64).sqrt();
        let up_bound = 1.0 / (rank as f64).sqrt();
        Ok(Self::from_vars(
            params::uniform(rng, &[rank, hidden], down_bound, device)?,
            params::uniform(rng, &[rank], down_bound, device)?,
            params::uniform(rng, &[hidden, rank], up_bound, device)?,
            params::uniform(rng, &[hidden], up_bound, device)?,
        ))
    }

    pub fn load(
        hidden: usize,
        rank: usize,
        tensors: &mut HashMap<String, Tensor>,
    ) -> std::result::Result<Self, String> {
        Ok(Self::from_vars(
            params::take(tensors, "down.weight", &[rank, hidden])?,
            params::take(tensors, "down.bias", &[rank])?,
            params::take(tensors, "up.weight", &[hidden, rank])?,
            params::take(tensors, "up.bias", &[hidden])?,
        ))
    }

    fn from_vars(down_weight: Var, down_bias: Var, up_weight: Var, up_bias: Var) -> Self {
        let mut params = ParamSet::default();
        params.push("down.weight", down_weight.clone());
        params.push("down.bias", down_bias.clone());
        params.push("up.weight", up_weight.clone());
        params.push("up.bias", up_bias.clone());
        Self {
            down_weight,
            down_bias,
            up_weight,
            up_bias,
            params,
        }
    }
}

impl EditModule for MlpEdit {
    fn edit(&self, h: &Tensor, activation: Activation) -> Result<Tensor> {
        let down = h
            .matmul(&self.down_weight.t()?)?
            .broadcast_add(&self.down_bias)?;
        activation
            .apply(&down)?
            .matmul(&self.up_weight.t()?)?
            .broadcast_add(&self.up_bias)
    }

    fn params(&self) -> &ParamSet {
        &self.params
    }
}

//! ConsReFT: h + R^T(b - R h), a constant target b in the rank-r subspace spanned by R's
//! orthonormal rows. Row-vector form: Δh = (b - h R) R^T with R stored as [hidden, rank].

use std::collections::HashMap;

use candle_core::{Device, Result, Tensor, Var};
use rand::rngs::StdRng;

use super::intervention::{Activation, EditModule};
use super::params::{self, ParamSet};

pub struct ConsReft {
    rotate: Var,
    bias: Var,
    params: ParamSet,
}

impl ConsReft {
    pub fn init(hidden: usize, rank: usize, rng: &mut StdRng, device: &Device) -> Result<Self> {
        let rotate = params::orthonormal_columns(rng, hidden, rank, device)?;
        let bias = params::uniform(rng, &[rank], 1.0 / (hidden as f64).sqrt(), device)?;
        Ok(Self::from_vars(rotate, bias))
    }

    pub fn load(
        hidden: usize,
        rank: usize,
        tensors: &mut HashMap<String, Tensor>,
    ) -> std::result::Result<Self, String> {
        Ok(Self::from_vars(
            params::take(tensors, "rotate", &[hidden, rank])?,
            params::take(tensors, "bias", &[rank])?,
        ))
    }

    fn from_vars(rotate: Var, bias: Var) -> Self {
        let mut params = ParamSet::default();
        params.push("rotate", rotate.clone());
        params.push("bias", bias.clone());
        Self {
            rotate,
            bias,
            params,
        }
    }
}

impl EditModule for ConsReft {
    /// The activation is applied to the constant target b.
    fn edit(&self, h: &Tensor, activation: Activation) -> Result<Tensor> {
        let r = self.rotate.as_tensor();
        let target = activation.apply(self.bias.as_tensor())?;
        let rotated = h.matmul(r)?;
        rotated.neg()?.broadcast_add(&target)?.matmul(&r.t()?)
    }

    fn params(&self) -> &ParamSet {
        &self.params
    }

    fn projection(&self) -> Option<&Var> {
        Some(&self.rotate)
    }
}

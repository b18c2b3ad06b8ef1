//! LobiReFT: h + R^T b, a learned constant offset inside the subspace spanned by R's
//! orthonormal rows. Row-vector form: Δh = b R^T with R stored as [hidden, rank].

use std::collections::HashMap;

use candle_core::{Device, Result, Tensor, Var};
use rand::rngs::StdRng;

use super::intervention::{Activation, EditModule};
use super::params::{self, ParamSet};

pub struct LobiReft {
    rotate: Var,
    bias: Var,
    params: ParamSet,
}

impl LobiReft {
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

impl EditModule for LobiReft {
    /// The activation is applied to the offset b.
    fn edit(&self, h: &Tensor, activation: Activation) -> Result<Tensor> {
        let offset = activation
            .apply(self.bias.as_tensor())?
            .unsqueeze(0)?
            .matmul(&self.rotate.as_tensor().t()?)?;
        offset.broadcast_as(h.shape())
    }

    fn params(&self) -> &ParamSet {
        &self.params
    }

    fn projection(&self) -> Option<&Var> {
        Some(&self.rotate)
    }
}

//! AdamW over the intervention parameters, with global gradient-norm clipping.

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};

/// AdamW (PyTorch's update rule, via candle-nn) plus clipping of the global L2 norm of the
/// gradients, as torch.nn.utils.clip_grad_norm_.
pub struct ClippedAdamW {
    inner: AdamW,
    vars: Vec<Var>,
    max_grad_norm: Option<f64>,
}

impl ClippedAdamW {
    pub fn new(vars: Vec<Var>, learning_rate: f64, weight_decay: f64, max_grad_norm: Option<f64>) -> Result<Self> {
        let params = ParamsAdamW {
            lr: learning_rate,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
        };
        Ok(Self {
            inner: AdamW::new(vars.clone(), params)?,
            vars,
            max_grad_norm,
        })
    }

    pub fn set_learning_rate(&mut self, learning_rate: f64) {
        self.inner.set_learning_rate(learning_rate);
    }

    /// The global L2 norm of the gradients of the optimised variables.
    pub fn grad_norm(&self, grads: &GradStore) -> Result<f64> {
        let mut total = 0f64;
        for var in &self.vars {
            if let Some(grad) = grads.get(var.as_tensor()) {
                total += grad.sqr()?.sum_all()?.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
            }
        }
        Ok(total.sqrt())
    }

    /// Clips the gradients and applies one update. Returns the gradient norm before
    /// clipping.
    pub fn step(&mut self, grads: &mut GradStore) -> Result<f64> {
        let norm = self.grad_norm(grads)?;
        if let Some(max_norm) = self.max_grad_norm {
            // torch's clip_grad_norm_ scales by max_norm / (norm + 1e-6) when it is below 1.
            let factor = max_norm / (norm + 1e-6);
            if factor < 1.0 {
                for var in &self.vars {
                    if let Some(grad) = grads.remove(var.as_tensor()) {
                        grads.insert(var.as_tensor(), (grad * factor)?);
                    }
                }
            }
        }
        self.inner.step(grads)?;
        Ok(norm)
    }

    /// Adds `other`'s gradients into `into` for gradient accumulation.
    pub fn accumulate(&self, into: &mut GradStore, other: &GradStore) -> Result<()> {
        for var in &self.vars {
            let tensor = var.as_tensor();
            if let Some(grad) = other.get(tensor) {
                let sum: Tensor = match into.get(tensor) {
                    Some(existing) => (existing + grad)?,
                    None => grad.clone(),
                };
                into.insert(tensor, sum);
            }
        }
        Ok(())
    }
}

//! AdamW over the intervention parameters, with global gradient-norm clipping. Written
//! here rather than taken from candle-nn because checkpoints must save and restore the
//! moment estimates, which candle-nn's AdamW keeps private.

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPSILON: f64 = 1e-8;

/// AdamW with PyTorch's update rule (decoupled weight decay, bias-corrected moments) and
/// clipping of the global L2 gradient norm, as torch.nn.utils.clip_grad_norm_.
pub struct ClippedAdamW {
    vars: Vec<Var>,
    /// First and second moment estimates, one pair per variable.
    moments: Vec<(Tensor, Tensor)>,
    /// Updates applied so far (PyTorch's `step`), for the bias correction.
    updates: usize,
    learning_rate: f64,
    weight_decay: f64,
    max_grad_norm: Option<f64>,
}

impl ClippedAdamW {
    pub fn new(
        vars: Vec<Var>,
        learning_rate: f64,
        weight_decay: f64,
        max_grad_norm: Option<f64>,
    ) -> Result<Self> {
        let moments = vars
            .iter()
            .map(|v| Ok((v.zeros_like()?, v.zeros_like()?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            vars,
            moments,
            updates: 0,
            learning_rate,
            weight_decay,
            max_grad_norm,
        })
    }

    pub fn set_learning_rate(&mut self, learning_rate: f64) {
        self.learning_rate = learning_rate;
    }

    /// The global L2 norm of the gradients of the optimised variables.
    pub fn grad_norm(&self, grads: &GradStore) -> Result<f64> {
        let mut total = 0f64;
        for var in &self.vars {
            if let Some(grad) = grads.get(var.as_tensor()) {
                total += grad
                    .sqr()?
                    .sum_all()?
                    .to_dtype(candle_core::DType::F64)?
                    .to_scalar::<f64>()?;
            }
        }
        Ok(total.sqrt())
    }

    /// Clips the gradients and applies one update. Returns the gradient norm before
    /// clipping.
    pub fn step(&mut self, grads: &mut GradStore) -> Result<f64> {
        let norm = self.grad_norm(grads)?;
        // torch's clip_grad_norm_ scales by max_norm / (norm + 1e-6) when that is below 1.
        let clip = match self.max_grad_norm {
            Some(max_norm) => (max_norm / (norm + 1e-6)).min(1.0),
            None => 1.0,
        };

        self.updates += 1;
        let t = self.updates as i32;
        let correction1 = 1.0 - BETA1.powi(t);
        let correction2 = 1.0 - BETA2.powi(t);
        for (var, (m, v)) in self.vars.iter().zip(self.moments.iter_mut()) {
            let Some(grad) = grads.get(var.as_tensor()) else {
                continue;
            };
            let grad = (grad * clip)?;
            *m = ((&*m * BETA1)? + (&grad * (1.0 - BETA1))?)?;
            *v = ((&*v * BETA2)? + (grad.sqr()? * (1.0 - BETA2))?)?;

            let m_hat = (&*m / correction1)?;
            let v_hat = (&*v / correction2)?;
            let decayed = (var.as_tensor() * (1.0 - self.learning_rate * self.weight_decay))?;
            let update = (m_hat / (v_hat.sqrt()? + EPSILON)?)?;
            var.set(&(decayed - (update * self.learning_rate)?)?)?;
        }
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

    /// The state a checkpoint needs: moment tensors named `<index>.m` and `<index>.v`, and
    /// the number of updates applied.
    pub fn state(&self) -> (Vec<(String, Tensor)>, usize) {
        let mut tensors = Vec::with_capacity(self.moments.len() * 2);
        for (index, (m, v)) in self.moments.iter().enumerate() {
            tensors.push((format!("{index}.m"), m.clone()));
            tensors.push((format!("{index}.v"), v.clone()));
        }
        (tensors, self.updates)
    }

    /// Restores a state saved by [`Self::state`], checking that it fits these variables.
    pub fn restore(
        &mut self,
        tensors: &std::collections::HashMap<String, Tensor>,
        updates: usize,
    ) -> std::result::Result<(), String> {
        for (index, (var, moments)) in self.vars.iter().zip(self.moments.iter_mut()).enumerate() {
            let get = |name: String| -> std::result::Result<Tensor, String> {
                let tensor = tensors
                    .get(&name)
                    .ok_or_else(|| format!("optimizer state {name} is missing"))?;
                if tensor.dims() != var.dims() {
                    return Err(format!(
                        "optimizer state {name} has shape {:?}, but the parameter has {:?}",
                        tensor.dims(),
                        var.dims()
                    ));
                }
                Ok(tensor.clone())
            };
            *moments = (get(format!("{index}.m"))?, get(format!("{index}.v"))?);
        }
        self.updates = updates;
        Ok(())
    }
}

//! Learning-rate schedules: linear warm-up, then linear or cosine decay to zero, as
//! Hugging Face's get_linear_schedule_with_warmup and get_cosine_schedule_with_warmup.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    #[default]
    Linear,
    Cosine,
    Constant,
}

/// The learning rate for optimizer step `step` (0-based) of `total`, after `warmup` steps
/// of linear warm-up from 0.
pub fn learning_rate(
    schedule: Schedule,
    base: f64,
    step: usize,
    total: usize,
    warmup: usize,
) -> f64 {
    if step < warmup {
        return base * (step + 1) as f64 / warmup as f64;
    }
    let decay_steps = total.saturating_sub(warmup).max(1) as f64;
    let progress = ((step - warmup) as f64 / decay_steps).min(1.0);
    match schedule {
        Schedule::Linear => base * (1.0 - progress),
        Schedule::Cosine => base * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
        Schedule::Constant => base,
    }
}

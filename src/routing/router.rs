//! The router: a softmax classifier that reads the frozen base model's hidden state for a
//! request and picks the task module to serve it.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use serde::{Deserialize, Serialize};

use super::config::{Pooling, RouterSettings};
use crate::model::chat_template::ChatMessage;
use crate::model::loader::LoadedModel;
use crate::train::prepare::{render_prompt, PromptSettings};

/// Requests longer than this many tokens keep their last tokens only.
const MAX_REQUEST_TOKENS: usize = 512;

/// Added to each feature's standard deviation, so constant features do not divide by zero.
const SCALE_EPSILON: f32 = 1e-5;

/// A trained router. Features are standardised with the training set's mean and standard
/// deviation, then `weight · x + bias` gives one logit per module.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Router {
    /// The block whose output is read.
    pub layer: usize,
    pub pooling: Pooling,
    /// Module names, in logit order.
    pub modules: Vec<String>,
    pub mean: Vec<f32>,
    pub scale: Vec<f32>,
    /// One row of hidden-size weights per module.
    pub weight: Vec<Vec<f32>>,
    pub bias: Vec<f32>,
}

/// The module a request goes to, with every module's probability (in module order).
#[derive(Debug, Clone, PartialEq)]
pub struct RouteDecision {
    pub module: usize,
    pub probabilities: Vec<f64>,
}

/// The router's input for one request: the base model's hidden state after block `layer`
/// for the request rendered as a user message with the chat template, pooled over the
/// prompt tokens.
pub fn request_features(
    model: &LoadedModel,
    text: &str,
    layer: usize,
    pooling: Pooling,
) -> Result<Vec<f32>, String> {
    let messages = [ChatMessage {
        role: "user".into(),
        content: text.to_string(),
    }];
    let settings = PromptSettings {
        system_prompt: None,
        max_length: MAX_REQUEST_TOKENS,
    };
    let rendered = render_prompt(model, &messages, &settings).map_err(|e| e.to_string())?;
    let mut ids = model
        .tokenizer()
        .map_err(|e| e.to_string())?
        .encode(&rendered)
        .map_err(|e| e.to_string())?;
    if ids.is_empty() {
        return Err(format!("the request {text:?} produced no tokens"));
    }
    if ids.len() > MAX_REQUEST_TOKENS {
        ids.drain(..ids.len() - MAX_REQUEST_TOKENS);
    }

    let input = model
        .decoder
        .ids_tensor(&[ids])
        .map_err(|e| e.to_string())?;
    let hidden = model
        .decoder
        .hidden_after(&input, None, layer)
        .map_err(|e| e.to_string())?;
    let pooled = (|| {
        let hidden = hidden.squeeze(0)?;
        match pooling {
            Pooling::Mean => hidden.mean(0),
            Pooling::Last => hidden.get(hidden.dim(0)? - 1),
        }?
        .to_dtype(DType::F32)?
        .to_vec1::<f32>()
    })();
    pooled.map_err(|e| e.to_string())
}

impl Router {
    /// Fits the router to `features` (one row per request) and `labels` (module indices) by
    /// full-batch AdamW on the cross-entropy, starting from zero weights so the result
    /// depends only on the data and the settings.
    pub fn fit(
        features: &[Vec<f32>],
        labels: &[usize],
        modules: Vec<String>,
        layer: usize,
        settings: &RouterSettings,
    ) -> Result<Router, String> {
        let count = features.len();
        let hidden = features
            .first()
            .map(Vec::len)
            .ok_or("the router has no training requests")?;
        if labels.len() != count || features.iter().any(|row| row.len() != hidden) {
            return Err("router features and labels do not line up".into());
        }
        if let Some(&label) = labels.iter().find(|&&label| label >= modules.len()) {
            return Err(format!(
                "router label {label} is out of range for {} modules",
                modules.len()
            ));
        }

        let (mean, scale) = standardisation(features, hidden);
        let fitted = fit_weights(features, labels, &mean, &scale, modules.len(), settings)
            .map_err(|e| e.to_string())?;
        Ok(Router {
            layer,
            pooling: settings.pooling,
            modules,
            mean,
            scale,
            weight: fitted.0,
            bias: fitted.1,
        })
    }

    /// The probability of each module for one request's features.
    pub fn probabilities(&self, features: &[f32]) -> Vec<f64> {
        let standardised: Vec<f64> = features
            .iter()
            .zip(self.mean.iter().zip(&self.scale))
            .map(|(x, (mean, scale))| f64::from((x - mean) / scale))
            .collect();
        let logits: Vec<f64> = self
            .weight
            .iter()
            .zip(&self.bias)
            .map(|(row, bias)| {
                row.iter()
                    .zip(&standardised)
                    .map(|(w, x)| f64::from(*w) * x)
                    .sum::<f64>()
                    + f64::from(*bias)
            })
            .collect();

        let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let exps: Vec<f64> = logits.iter().map(|logit| (logit - max).exp()).collect();
        let total: f64 = exps.iter().sum();
        exps.iter().map(|e| e / total).collect()
    }

    /// Picks the most probable module for one request's features.
    pub fn decide(&self, features: &[f32]) -> RouteDecision {
        let probabilities = self.probabilities(features);
        let module = probabilities
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(index, _)| index)
            .unwrap_or(0);
        RouteDecision {
            module,
            probabilities,
        }
    }

    /// Checks that the router fits a model with `hidden` features and `num_layers` blocks.
    pub fn check_shape(&self, hidden: usize, num_layers: usize) -> Result<(), String> {
        let rows_fit =
            self.weight.len() == self.modules.len() && self.bias.len() == self.modules.len();
        let widths_fit = self.mean.len() == hidden
            && self.scale.len() == hidden
            && self.weight.iter().all(|row| row.len() == hidden);
        if !rows_fit || !widths_fit {
            return Err(format!(
                "the router's weights do not fit {} modules and hidden size {hidden}",
                self.modules.len()
            ));
        }
        if self.layer >= num_layers {
            return Err(format!(
                "the router reads block {} but the model has {num_layers} blocks",
                self.layer
            ));
        }
        Ok(())
    }
}

/// The per-feature mean and standard deviation (plus a small epsilon) of `features`.
fn standardisation(features: &[Vec<f32>], hidden: usize) -> (Vec<f32>, Vec<f32>) {
    let count = features.len() as f64;
    let mut mean = vec![0f64; hidden];
    for row in features {
        for (sum, x) in mean.iter_mut().zip(row) {
            *sum += f64::from(*x);
        }
    }
    mean.iter_mut().for_each(|sum| *sum /= count);

    let mut variance = vec![0f64; hidden];
    for row in features {
        for ((sum, x), m) in variance.iter_mut().zip(row).zip(&mean) {
            *sum += (f64::from(*x) - m).powi(2);
        }
    }
    let scale = variance
        .iter()
        .map(|sum| (sum / count).sqrt() as f32 + SCALE_EPSILON)
        .collect();
    (mean.iter().map(|m| *m as f32).collect(), scale)
}

/// Returns the fitted weight rows and biases.
fn fit_weights(
    features: &[Vec<f32>],
    labels: &[usize],
    mean: &[f32],
    scale: &[f32],
    num_modules: usize,
    settings: &RouterSettings,
) -> candle_core::Result<(Vec<Vec<f32>>, Vec<f32>)> {
    let device = Device::Cpu;
    let hidden = mean.len();
    let flat: Vec<f32> = features
        .iter()
        .flat_map(|row| {
            row.iter()
                .zip(mean.iter().zip(scale))
                .map(|(x, (m, s))| (x - m) / s)
        })
        .collect();
    let inputs = Tensor::from_vec(flat, (features.len(), hidden), &device)?;
    let targets = Tensor::from_vec(
        labels.iter().map(|&l| l as u32).collect::<Vec<_>>(),
        labels.len(),
        &device,
    )?;

    let weight = Var::zeros((num_modules, hidden), DType::F32, &device)?;
    let bias = Var::zeros(num_modules, DType::F32, &device)?;
    let params = ParamsAdamW {
        lr: settings.learning_rate,
        weight_decay: settings.weight_decay,
        ..ParamsAdamW::default()
    };
    let mut optimizer = AdamW::new(vec![weight.clone(), bias.clone()], params)?;
    for _ in 0..settings.steps {
        let logits = inputs
            .matmul(&weight.as_tensor().t()?)?
            .broadcast_add(bias.as_tensor())?;
        let loss = candle_nn::loss::cross_entropy(&logits, &targets)?;
        optimizer.backward_step(&loss)?;
    }

    Ok((
        weight.as_tensor().to_vec2::<f32>()?,
        bias.as_tensor().to_vec1::<f32>()?,
    ))
}

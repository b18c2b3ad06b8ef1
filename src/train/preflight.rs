//! The pre-flight estimate: how much memory and time a run will need, from the model's
//! shape, the data's size and this computer's speed, before anything is loaded.

use std::sync::OnceLock;
use std::time::Instant;

use candle_core::{Device, Tensor};

use super::config::TrainConfig;
use crate::data::{Example, Task};
use crate::model::config::ModelConfig;
use crate::reft::Positions;

/// Bytes of one f32 value.
const F32_BYTES: f64 = 4.0;
/// UTF-8 bytes per token, roughly: a Chinese character is 3 bytes and about one token, and
/// English averages about 4 bytes per token, so this errs on the long side.
const BYTES_PER_TOKEN: f64 = 3.0;
/// Tokens the chat template adds around each prompt (SmolLM2's default system message and
/// role markers come to about 30).
const TEMPLATE_TOKENS: f64 = 32.0;
/// The memory and speed of one way of running a training step: the CPU suffix pass when
/// every module sits on one layer, else candle's autograd (the general pass).
#[derive(Debug, Clone, Copy)]
struct PassCosts {
    /// Values kept per token and layer for the backward pass, in units of the hidden size
    /// and of the MLP width, and attention probabilities per head and key.
    saved_hidden: f64,
    saved_intermediate: f64,
    saved_probs_per_head: f64,
    /// Memory the process uses besides weights and activations: code, tokenizer, allocator.
    runtime_bytes: f64,
    /// The share of the measured matmul speed a training step reaches.
    efficiency: f64,
}

/// The suffix pass keeps the normed inputs' sources, q, k, v, the MLP's gate and up, and
/// one probability per head and key. Fitted to the replay on this project's 2-core test
/// machine: peak RSS 0.79 GiB, and 0.81 s per step without the prefix cache with a
/// measured 290 GFLOP/s matmul.
const SUFFIX_PASS: PassCosts = PassCosts {
    saved_hidden: 4.0,
    saved_intermediate: 2.0,
    saved_probs_per_head: 1.0,
    runtime_bytes: 20.0 * 1024.0 * 1024.0,
    efficiency: 0.6,
};

/// Autograd keeps every op's inputs. Fitted to the replay through the general pass: peak
/// RSS 1.28 GiB, and 1.16 s per step with the prefix cache.
const GENERAL_PASS: PassCosts = PassCosts {
    saved_hidden: 12.0,
    saved_intermediate: 4.0,
    saved_probs_per_head: 2.0,
    runtime_bytes: 250.0 * 1024.0 * 1024.0,
    efficiency: 0.35,
};
/// A run fits when its estimate stays under this share of the available memory.
const MEMORY_HEADROOM: f64 = 0.9;

/// Sizes of the training data that the estimate needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DataStats {
    pub train_examples: usize,
    pub eval_examples: usize,
    /// Mean tokens per example (prompt, target and template), estimated from the text.
    pub mean_tokens: f64,
    /// Labels scored per evaluation example: the label count for classification, else 1.
    pub labels_per_eval: usize,
}

impl DataStats {
    /// Estimates token counts from the examples' text. With no separate evaluation file,
    /// `eval_ratio` of the examples are held out, as the trainer does.
    pub fn from_examples(
        examples: &[Example],
        eval_examples: Option<usize>,
        config: &TrainConfig,
    ) -> Self {
        let bytes: usize = examples
            .iter()
            .map(|e| e.target.len() + e.messages.iter().map(|m| m.content.len()).sum::<usize>())
            .sum();
        let mean_tokens =
            bytes as f64 / examples.len().max(1) as f64 / BYTES_PER_TOKEN + TEMPLATE_TOKENS;
        let mean_tokens = mean_tokens.min(config.data.max_length as f64);

        let (train_examples, eval_examples) = match eval_examples {
            Some(eval) => (examples.len(), eval),
            None => {
                let eval = (examples.len() as f64 * config.data.eval_ratio).round() as usize;
                (examples.len() - eval.min(examples.len()), eval)
            }
        };
        let labels_per_eval = match config.data.task {
            Some(Task::Classification) => config.data.labels.len().max(2),
            _ => 1,
        };
        Self {
            train_examples,
            eval_examples,
            mean_tokens,
            labels_per_eval,
        }
    }
}

/// This computer's memory and speed, as the estimate uses them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Machine {
    /// Memory free for a new process, in bytes.
    pub available_memory_bytes: u64,
    /// f32 matmul speed with the threads a run uses, in GFLOP/s.
    pub matmul_gflops: f64,
}

/// This computer, measured once per process.
static MEASURED: OnceLock<Machine> = OnceLock::new();

impl Machine {
    /// Measures this computer once (about a tenth of a second) and keeps the result.
    pub fn detect() -> Machine {
        *MEASURED.get_or_init(|| Machine {
            available_memory_bytes: available_memory_bytes(),
            matmul_gflops: measure_matmul_gflops(),
        })
    }

    /// Returns the measurement when [`Machine::detect`] has finished, without waiting.
    pub fn detected() -> Option<Machine> {
        MEASURED.get().copied()
    }
}

/// The estimate for one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub peak_memory_bytes: u64,
    pub seconds: f64,
    pub steps: usize,
    /// True when the peak stays under 90% of the available memory.
    pub fits: bool,
}

/// Estimates the peak memory and the duration of training `config` on a model of shape
/// `model` with data of size `data`, on `machine`.
pub fn estimate(
    model: &ModelConfig,
    config: &TrainConfig,
    data: &DataStats,
    machine: &Machine,
) -> Estimate {
    let training = &config.training;
    let hidden = model.hidden_size as f64;
    let intermediate = model.intermediate_size as f64;
    let first_layer = config
        .interventions
        .iter()
        .flat_map(|i| i.resolved_layers(model.num_layers))
        .min()
        .unwrap_or(0);
    let upper_layers = (model.num_layers - first_layer.min(model.num_layers)) as f64;
    let mut layers = config
        .interventions
        .iter()
        .flat_map(|i| i.resolved_layers(model.num_layers));
    // TODO: GPU builds run the general pass whatever the layers; the estimate assumes the CPU.
    let suffix_pass = layers
        .next()
        .is_some_and(|first| layers.all(|l| l == first));
    let costs = if suffix_pass {
        SUFFIX_PASS
    } else {
        GENERAL_PASS
    };

    // Memory: f32 weights, the activations one batch keeps for the backward pass above the
    // first intervened layer, the logits at the labelled positions, and the prefix cache.
    let batch_tokens = training.batch_size as f64 * data.mean_tokens;
    let weights = parameter_count(model) as f64 * F32_BYTES;
    let per_token_layer = costs.saved_hidden * hidden
        + costs.saved_intermediate * intermediate
        + costs.saved_probs_per_head * model.num_heads as f64 * data.mean_tokens;
    let activations = batch_tokens * upper_layers * per_token_layer * F32_BYTES;
    let label_tokens = training.batch_size as f64 * label_tokens_per_example(data);
    let logits = 3.0 * label_tokens * model.vocab_size as f64 * F32_BYTES;
    let all_tokens =
        (data.train_examples + data.eval_examples * data.labels_per_eval) as f64 * data.mean_tokens;
    let cache_budget = 2.0 * training.prefix_cache_mb as f64 * 1024.0 * 1024.0;
    // When no module edits the first prompt token, the suffix pass also caches the keys and
    // values of the prompt tokens before the edited ones, in every block above.
    let caches_frozen_rows = suffix_pass
        && config
            .interventions
            .iter()
            .all(|i| matches!(i.positions, Positions::FirstLast { first: 0, .. }));
    let prompt_tokens = (data.mean_tokens - label_tokens_per_example(data)).max(0.0);
    let kv_width = (model.num_kv_heads * model.head_dim) as f64;
    let frozen_kv = if caches_frozen_rows {
        data.train_examples as f64 * prompt_tokens * upper_layers * 2.0 * kv_width
    } else {
        0.0
    };
    let cache = ((all_tokens * hidden + frozen_kv) * F32_BYTES).min(cache_budget);
    // The suffix pass keeps transposed copies of the attention and down projections in each
    // block above the intervened layer, because gemm multiplies by them faster.
    let transposed = if suffix_pass {
        let blocks = (upper_layers - 1.0).max(0.0);
        blocks * (attention_parameters(model) as f64 + hidden * intermediate) * F32_BYTES
    } else {
        0.0
    };
    let peak = weights + transposed + activations + logits + cache + costs.runtime_bytes;

    // Time: matmul work per token, each layer's forward once per step (the layers below the
    // first intervened one only in the first epoch) and the backward through the layers above.
    let layer_flops = 2.0 * layer_parameters(model) as f64;
    let steps_per_epoch = (data.train_examples.div_ceil(training.batch_size.max(1)))
        .div_ceil(training.grad_accum.max(1))
        .max(1);
    let steps = if training.max_steps > 0 {
        training.max_steps
    } else {
        steps_per_epoch * training.epochs
    };
    let lower_layers = first_layer as f64;
    let cached = training.prefix_cache_mb > 0;
    let head_flops = 2.0 * 2.0 * hidden * model.vocab_size as f64 * label_tokens;
    let step_flops = |with_lower: bool| {
        let lower = if with_lower { lower_layers } else { 0.0 };
        batch_tokens * layer_flops * (lower + 2.0 * upper_layers) + head_flops
    };
    let first_epoch_steps = steps.min(steps_per_epoch) as f64;
    let later_steps = steps as f64 - first_epoch_steps;
    let train_flops = first_epoch_steps * step_flops(true) + later_steps * step_flops(!cached);
    let evaluations = if training.eval_every > 0 {
        steps / training.eval_every
    } else {
        training.epochs
    }
    .max(1);
    let eval_flops = evaluations as f64
        * (data.eval_examples * data.labels_per_eval) as f64
        * data.mean_tokens
        * layer_flops
        * model.num_layers as f64;
    let flops_per_second = machine.matmul_gflops * 1e9 * costs.efficiency;
    let seconds = (train_flops + eval_flops) / flops_per_second.max(1.0);

    Estimate {
        peak_memory_bytes: peak as u64,
        seconds,
        steps,
        fits: peak <= machine.available_memory_bytes as f64 * MEMORY_HEADROOM,
    }
}

/// Label tokens per example: a short label plus EOS for classification, else about a third
/// of the example.
fn label_tokens_per_example(data: &DataStats) -> f64 {
    if data.labels_per_eval > 1 {
        3.0
    } else {
        (data.mean_tokens - TEMPLATE_TOKENS).max(1.0) / 3.0
    }
}

/// Weights of one block: attention projections and the gated MLP.
fn layer_parameters(model: &ModelConfig) -> usize {
    let hidden = model.hidden_size;
    attention_parameters(model) + 3 * hidden * model.intermediate_size + 2 * hidden
}

/// Counts the weights of one block's q, k, v and o projections.
fn attention_parameters(model: &ModelConfig) -> usize {
    let hidden = model.hidden_size;
    let kv = model.num_kv_heads * model.head_dim;
    hidden * model.num_heads * model.head_dim * 2 + hidden * kv * 2
}

/// Returns the number of weights, with a head tied to the embedding counted once.
pub fn parameter_count(model: &ModelConfig) -> usize {
    let embedding = model.vocab_size * model.hidden_size;
    let head = if model.tie_word_embeddings {
        0
    } else {
        embedding
    };
    embedding + head + model.num_layers * layer_parameters(model) + model.hidden_size
}

/// MemAvailable from /proc/meminfo; elsewhere 8 GiB is assumed.
fn available_memory_bytes() -> u64 {
    // TODO: read the available memory on macOS and Windows too.
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("MemAvailable:"))
                .and_then(|value| {
                    value
                        .trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        })
        .map_or(8 << 30, |kib| kib * 1024)
}

/// Times a matmul shaped like a small model's MLP projection; 50 GFLOP/s when it fails.
fn measure_matmul_gflops() -> f64 {
    let measure = || -> candle_core::Result<f64> {
        let (m, k, n) = (512, 576, 1536);
        let a = Tensor::ones((m, k), candle_core::DType::F32, &Device::Cpu)?;
        let b = Tensor::ones((k, n), candle_core::DType::F32, &Device::Cpu)?;
        a.matmul(&b)?;
        let repeats = 8;
        let started = Instant::now();
        for _ in 0..repeats {
            a.matmul(&b)?;
        }
        let seconds = started.elapsed().as_secs_f64();
        Ok(2.0 * (m * k * n * repeats) as f64 / seconds / 1e9)
    };
    measure().unwrap_or(50.0)
}

//! Text generation with a KV cache: greedy or sampled (temperature, top-p, seed), stopping
//! at an end-of-sequence token or a token limit, with each token passed on as it is made.

use candle_transformers::generation::{LogitsProcessor, Sampling};
use serde::{Deserialize, Serialize};

use super::decoder::{BlockHook, Decoder, KvCache};
use super::error::Result;

/// Sampling settings. A temperature of 0 (the default) means greedy decoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationSettings {
    pub max_new_tokens: usize,
    pub temperature: f64,
    /// Nucleus sampling: sample from the smallest set of tokens whose probabilities sum
    /// to at least this value. Ignored when greedy.
    pub top_p: Option<f64>,
    pub seed: u64,
}

impl Default for GenerationSettings {
    fn default() -> Self {
        Self {
            max_new_tokens: 128,
            temperature: 0.0,
            top_p: None,
            seed: 299_792_458,
        }
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// An end-of-sequence token was produced; it is the last generated id.
    Eos,
    /// `max_new_tokens` were produced.
    MaxTokens,
    /// The token callback asked to stop.
    Cancelled,
    /// The model's context window is full.
    ContextFull,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    pub token_ids: Vec<u32>,
    pub stop_reason: StopReason,
}

/// Generates after `prompt_ids`. `on_token` receives each new id as soon as it is chosen
/// and returns false to stop early. `hook` sees every block output, including the prompt's.
pub fn generate(
    decoder: &Decoder,
    prompt_ids: &[u32],
    eos_ids: &[u32],
    settings: &GenerationSettings,
    hook: &mut dyn BlockHook,
    on_token: &mut dyn FnMut(u32) -> bool,
) -> Result<Generation> {
    let sampling = if settings.temperature <= 0.0 {
        Sampling::ArgMax
    } else {
        match settings.top_p {
            Some(p) if p > 0.0 && p < 1.0 => Sampling::TopP {
                p,
                temperature: settings.temperature,
            },
            _ => Sampling::All {
                temperature: settings.temperature,
            },
        }
    };
    let mut processor = LogitsProcessor::from_sampling(settings.seed, sampling);

    let mut cache = KvCache::new(decoder.num_layers());
    let mut generated = Vec::new();
    let mut next_input = decoder.ids_tensor(&[prompt_ids.to_vec()])?;

    let context = decoder.max_positions();
    if prompt_ids.len() > context {
        return Err(super::ModelError::Candle(candle_core::Error::Msg(format!(
            "the prompt has {} tokens but this model supports at most {context}; shorten the prompt",
            prompt_ids.len()
        ))));
    }

    while generated.len() < settings.max_new_tokens {
        // Every generated token but the last is fed back, so a full window ends the run
        // with what was produced so far.
        if prompt_ids.len() + generated.len() > context {
            return Ok(Generation {
                token_ids: generated,
                stop_reason: StopReason::ContextFull,
            });
        }
        let logits = decoder.forward_cached(&next_input, &mut cache, hook)?;
        let token = processor.sample(&logits.squeeze(0)?)?;
        generated.push(token);

        if eos_ids.contains(&token) {
            return Ok(Generation {
                token_ids: generated,
                stop_reason: StopReason::Eos,
            });
        }
        if !on_token(token) {
            return Ok(Generation {
                token_ids: generated,
                stop_reason: StopReason::Cancelled,
            });
        }
        next_input = decoder.ids_tensor(&[vec![token]])?;
    }

    Ok(Generation {
        token_ids: generated,
        stop_reason: StopReason::MaxTokens,
    })
}

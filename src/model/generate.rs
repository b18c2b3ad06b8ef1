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

/// The reason generation ended.
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
/// and returns false to stop early. `hook` receives every block output, including the prompt's.
pub fn generate(
    decoder: &Decoder,
    prompt_ids: &[u32],
    eos_ids: &[u32],
    settings: &GenerationSettings,
    hook: &mut dyn BlockHook,
    on_token: &mut dyn FnMut(u32) -> bool,
) -> Result<Generation> {
    let mut processor = LogitsProcessor::from_sampling(settings.seed, sampling_for(settings));

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

/// Generates after several prompts at once. Prompts are padded on the left with
/// `eos_ids[0]` (the padding is masked and each row keeps its own positions), and every
/// row is sampled with its own generator seeded with `settings.seed`, so each result
/// equals a separate [`generate`] call. The hook's positions must count the row's padding
/// (see [`KvCache::with_left_padding`]).
pub fn generate_batch(
    decoder: &Decoder,
    prompts: &[Vec<u32>],
    eos_ids: &[u32],
    settings: &GenerationSettings,
    hook: &mut dyn BlockHook,
) -> Result<Vec<Generation>> {
    let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
    let pad = eos_ids.first().copied().unwrap_or(0);
    let padding: Vec<usize> = prompts.iter().map(|p| longest - p.len()).collect();
    let rows: Vec<Vec<u32>> = prompts
        .iter()
        .zip(&padding)
        .map(|(prompt, &n)| {
            std::iter::repeat_n(pad, n)
                .chain(prompt.iter().copied())
                .collect()
        })
        .collect();

    let context = decoder.max_positions();
    if longest > context {
        return Err(super::ModelError::Candle(candle_core::Error::Msg(format!(
            "the longest prompt has {longest} tokens but this model supports at most {context}; shorten it"
        ))));
    }

    let mut processors: Vec<LogitsProcessor> = prompts
        .iter()
        .map(|_| LogitsProcessor::from_sampling(settings.seed, sampling_for(settings)))
        .collect();
    let mut results: Vec<Generation> = prompts
        .iter()
        .map(|_| Generation {
            token_ids: Vec::new(),
            stop_reason: StopReason::MaxTokens,
        })
        .collect();
    let mut finished = vec![false; prompts.len()];

    let mut cache = KvCache::with_left_padding(decoder.num_layers(), padding);
    let mut next_input = decoder.ids_tensor(&rows)?;
    for step in 0..settings.max_new_tokens {
        if longest + step > context {
            for (result, done) in results.iter_mut().zip(&finished) {
                if !done {
                    result.stop_reason = StopReason::ContextFull;
                }
            }
            break;
        }
        let logits = decoder.forward_cached(&next_input, &mut cache, hook)?;

        let mut next = Vec::with_capacity(prompts.len());
        for (row, processor) in processors.iter_mut().enumerate() {
            if finished[row] {
                next.push(pad);
                continue;
            }
            let token = processor.sample(&logits.get(row)?)?;
            results[row].token_ids.push(token);
            if eos_ids.contains(&token) {
                finished[row] = true;
                results[row].stop_reason = StopReason::Eos;
            }
            next.push(token);
        }
        if finished.iter().all(|&f| f) {
            break;
        }
        next_input = decoder.ids_tensor(&next.into_iter().map(|t| vec![t]).collect::<Vec<_>>())?;
    }
    Ok(results)
}

fn sampling_for(settings: &GenerationSettings) -> Sampling {
    if settings.temperature <= 0.0 {
        return Sampling::ArgMax;
    }
    match settings.top_p {
        Some(p) if p > 0.0 && p < 1.0 => Sampling::TopP {
            p,
            temperature: settings.temperature,
        },
        _ => Sampling::All {
            temperature: settings.temperature,
        },
    }
}

//! Comparing the base model and an adapted model on one prompt, with the same prompt, seed
//! and sampling settings on both sides.

use serde::{Deserialize, Serialize};

use crate::data::{Example, Task};
use crate::model::decoder::NoHook;
use crate::model::generate::{generate, GenerationSettings, StopReason};
use crate::model::loader::LoadedModel;
use crate::reft::adapter::LoadedAdapter;
use crate::reft::library::adapter_messages;
use crate::reft::{InterventionHook, InterventionSet};
use crate::train::evaluate::{classify, LabelScores};
use crate::train::prepare::{eos_id, render_prompt, PromptSettings};

/// Maximum prompt length in tokens for classification; longer prompts lose their start.
const MAX_PROMPT_TOKENS: usize = 1024;

/// One prompt to run through both models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareRequest {
    /// The user's text; the adapter's prompt template and system prompt wrap it, as in training.
    pub prompt: String,
    pub max_new_tokens: usize,
    /// 0 picks the most likely token each time (greedy).
    pub temperature: f64,
    pub seed: u64,
    /// For a routed set: the module to use; None lets the router choose.
    #[serde(default)]
    pub module: Option<String>,
}

impl Default for CompareRequest {
    fn default() -> Self {
        Self {
            prompt: String::new(),
            max_new_tokens: 64,
            temperature: 0.0,
            seed: 42,
            module: None,
        }
    }
}

/// One side's generated answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub text: String,
    pub token_count: usize,
    /// True when the answer ended because `max_new_tokens` ran out.
    pub truncated: bool,
}

/// The two sides of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Comparison {
    Generation {
        base: Answer,
        adapted: Answer,
    },
    /// Each side's scores for every label (the adapter's labels, in its order).
    Classification {
        labels: Vec<String>,
        base: LabelScores,
        adapted: LabelScores,
    },
}

/// Runs `request` through `model` without any intervention and with `adapter`'s.
pub fn compare(
    model: &LoadedModel,
    adapter: &LoadedAdapter,
    request: &CompareRequest,
) -> Result<Comparison, String> {
    if request.prompt.trim().is_empty() {
        return Err("the prompt is empty: type a prompt to compare".into());
    }
    let messages = adapter_messages(adapter, None, &request.prompt)?;
    let settings = PromptSettings {
        system_prompt: None,
        max_length: MAX_PROMPT_TOKENS,
    };

    if adapter.metadata.task == Task::Classification {
        let labels = adapter.metadata.labels.clone();
        let example = Example {
            messages,
            target: String::new(),
            source_line: 0,
        };
        let pad = eos_id(model).map_err(|e| e.to_string())?;
        let empty = InterventionSet::from_modules(Vec::new(), Vec::new());
        let examples = std::slice::from_ref(&example);
        let score = |set: &InterventionSet| {
            classify(
                model,
                set,
                examples,
                &labels,
                &settings,
                pad,
                labels.len(),
                None,
            )
            .map_err(|e| e.to_string())?
            .pop()
            .ok_or_else(|| "classification returned no scores".to_string())
        };
        let base = score(&empty)?;
        let adapted = score(&adapter.set)?;
        return Ok(Comparison::Classification {
            labels,
            base,
            adapted,
        });
    }

    let tokenizer = model.tokenizer().map_err(|e| e.to_string())?;
    let text = render_prompt(model, &messages, &settings).map_err(|e| e.to_string())?;
    let prompt_ids = tokenizer.encode(&text).map_err(|e| e.to_string())?;
    if prompt_ids.is_empty() {
        return Err("the prompt produced no tokens: type a longer prompt".into());
    }
    let generation = GenerationSettings {
        max_new_tokens: request.max_new_tokens,
        temperature: request.temperature,
        top_p: None,
        seed: request.seed,
    };

    let answer = |hook: &mut dyn crate::model::decoder::BlockHook| -> Result<Answer, String> {
        let result = generate(
            &model.decoder,
            &prompt_ids,
            tokenizer.eos_ids(),
            &generation,
            hook,
            &mut |_| true,
        )
        .map_err(|e| e.to_string())?;
        Ok(Answer {
            // A character cut off by max_new_tokens decodes to U+FFFD; it is dropped.
            text: tokenizer
                .decode(&result.token_ids, true)
                .map_err(|e| e.to_string())?
                .trim_end_matches('\u{fffd}')
                .to_string(),
            token_count: result.token_ids.len(),
            truncated: result.stop_reason == StopReason::MaxTokens,
        })
    };

    // The base side gets a hook that edits nothing, so no intervention can reach it.
    let base = answer(&mut NoHook)?;
    let len = prompt_ids.len();
    let rows = adapter.set.row_positions_with(&[(len, len)], true, false);
    let adapted = answer(&mut InterventionHook::new(&adapter.set, rows, false))?;
    Ok(Comparison::Generation { base, adapted })
}

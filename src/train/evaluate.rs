//! Evaluation: mean loss over held-out examples and, for classification, accuracy from
//! comparing the summed log-likelihood of each label's tokens (plus EOS) after the prompt.

use candle_core::{Device, Result, D};

use super::batch::{Batch, TokenizedExample};
use super::loss::labelled_logits;
use super::prefix_cache::PrefixCache;
use super::prepare::{join_within, tokenize_parts, PromptSettings};
use crate::data::Example;
use crate::model::loader::LoadedModel;
use crate::reft::InterventionSet;

/// Summed log-probability of each example's target tokens, one value per example.
pub fn target_log_likelihoods(
    model: &LoadedModel,
    set: &InterventionSet,
    examples: &[TokenizedExample],
    pad_id: u32,
    batch_size: usize,
    mut prefix: Option<&mut PrefixCache>,
) -> Result<Vec<f64>> {
    let device: &Device = model.decoder.device();

    // Batches of similar lengths waste little on padding; scores return in input order.
    let mut order: Vec<usize> = (0..examples.len()).collect();
    order.sort_by_key(|&i| examples[i].input_ids.len());

    let mut scores = vec![0.0; examples.len()];
    for chunk in order.chunks(batch_size.max(1)) {
        let refs: Vec<&TokenizedExample> = chunk.iter().map(|&i| &examples[i]).collect();
        let batch = Batch::from_examples(&refs, pad_id, device)?;
        let logits = labelled_logits(&model.decoder, set, &batch, false, prefix.as_deref_mut())?;
        let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
        let picked = log_probs
            .gather(&batch.label_ids.unsqueeze(1)?, 1)?
            .squeeze(1)?
            .to_vec1::<f32>()?;

        // label_rows run example by example, so each example's labels are contiguous.
        let mut offset = 0;
        for (&index, example) in chunk.iter().zip(&refs) {
            let count = example.input_ids.len() - example.prompt_len;
            scores[index] = picked[offset..offset + count]
                .iter()
                .map(|&v| f64::from(v))
                .sum();
            offset += count;
        }
    }
    Ok(scores)
}

/// Mean token-level loss over `examples` (a token-weighted mean, as in training).
pub fn mean_loss(
    model: &LoadedModel,
    set: &InterventionSet,
    examples: &[TokenizedExample],
    pad_id: u32,
    batch_size: usize,
    prefix: Option<&mut PrefixCache>,
) -> Result<f64> {
    let scores = target_log_likelihoods(model, set, examples, pad_id, batch_size, prefix)?;
    let tokens: usize = examples
        .iter()
        .map(|e| e.input_ids.len() - e.prompt_len)
        .sum();
    Ok(-scores.iter().sum::<f64>() / tokens.max(1) as f64)
}

/// The scores of one example against every label.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelScores {
    /// The index of the label with the highest summed log-likelihood.
    pub best: usize,
    /// Softmax over labels of the summed log-likelihoods.
    pub probabilities: Vec<f64>,
    /// Summed log-likelihood of each label's tokens plus EOS.
    pub log_likelihoods: Vec<f64>,
    /// Number of scored tokens of each label (its tokens plus EOS).
    pub token_counts: Vec<usize>,
}

/// Scores every label for every example: the summed log-likelihood of the label's tokens
/// plus EOS after the rendered prompt.
pub fn classify(
    model: &LoadedModel,
    set: &InterventionSet,
    examples: &[Example],
    labels: &[String],
    settings: &PromptSettings,
    pad_id: u32,
    batch_size: usize,
    prefix: Option<&mut PrefixCache>,
) -> std::result::Result<Vec<LabelScores>, crate::model::ModelError> {
    let mut candidates = Vec::with_capacity(examples.len() * labels.len());
    for example in examples {
        for label in labels {
            let (prompt, target) = tokenize_parts(model, &example.messages, label, settings)?;
            candidates.push(join_within(prompt, target, settings.max_length));
        }
    }
    let scores = target_log_likelihoods(model, set, &candidates, pad_id, batch_size, prefix)?;

    Ok(scores
        .chunks(labels.len())
        .zip(candidates.chunks(labels.len()))
        .map(|(per_label, tokenized)| {
            let best = per_label
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(i, _)| i)
                .unwrap_or(0);
            let max = per_label.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let exp: Vec<f64> = per_label.iter().map(|s| (s - max).exp()).collect();
            let total: f64 = exp.iter().sum();
            LabelScores {
                best,
                probabilities: exp.iter().map(|e| e / total).collect(),
                log_likelihoods: per_label.to_vec(),
                token_counts: tokenized
                    .iter()
                    .map(|t| t.input_ids.len() - t.prompt_len)
                    .collect(),
            }
        })
        .collect())
}

/// The token-weighted mean loss of each example's true label, from [`classify`]'s scores
/// (the same figure [`mean_loss`] gives, without another pass).
pub fn classification_loss(scores: &[LabelScores], examples: &[Example], labels: &[String]) -> f64 {
    let (mut total, mut tokens) = (0.0, 0usize);
    for (score, example) in scores.iter().zip(examples) {
        if let Some(index) = labels.iter().position(|l| *l == example.target) {
            total -= score.log_likelihoods[index];
            tokens += score.token_counts[index];
        }
    }
    total / tokens.max(1) as f64
}

/// Accuracy of `classify` against each example's target label.
pub fn accuracy(predictions: &[LabelScores], examples: &[Example], labels: &[String]) -> f64 {
    let correct = predictions
        .iter()
        .zip(examples)
        .filter(|(scores, example)| labels[scores.best] == example.target)
        .count();
    correct as f64 / examples.len().max(1) as f64
}

//! The training objective: mean cross-entropy over the label tokens of a batch, with the
//! interventions in place.

use candle_core::{Result, Tensor};

use super::batch::Batch;
use super::prefix_cache::PrefixCache;
use crate::model::decoder::{Decoder, LogitsAt};
use crate::reft::{InterventionHook, InterventionSet};

/// Mean cross-entropy over every label token in the batch (a token-weighted mean, as
/// Hugging Face's causal-LM loss). Logits are computed only at the labelled positions.
/// With a prefix cache, the blocks below the first intervened layer run only for examples
/// the cache has not seen.
pub fn batch_loss(
    decoder: &Decoder,
    set: &InterventionSet,
    batch: &Batch,
    training: bool,
    prefix: Option<&mut PrefixCache>,
) -> Result<Tensor> {
    let logits = labelled_logits(decoder, set, batch, training, prefix)?;
    candle_nn::loss::cross_entropy(&logits, &batch.label_ids)
}

/// The logits at the batch's labelled positions, [labels, vocab].
pub fn labelled_logits(
    decoder: &Decoder,
    set: &InterventionSet,
    batch: &Batch,
    training: bool,
    prefix: Option<&mut PrefixCache>,
) -> Result<Tensor> {
    if batch.label_count == 0 {
        candle_core::bail!("the batch has no label tokens: every example needs a non-empty target");
    }
    let rows = set.row_positions(&batch.lengths, false);
    let mut hook = InterventionHook::new(set, rows, training);
    let logits_at = LogitsAt::Rows(batch.label_rows.clone());

    // The cached output is unusable when a module edits a block below the cached one.
    let usable = prefix.filter(|cache| set.first_layer().is_none_or(|first| cache.layer() <= first));
    let output = match usable {
        Some(cache) => {
            let (hidden, _) = cache.block_output(decoder, batch)?;
            decoder.forward_from(hidden, cache.layer(), Some(&batch.attention_mask), &mut hook, logits_at)
        }
        None => decoder.forward(&batch.input_ids, Some(&batch.attention_mask), &mut hook, logits_at),
    }
    .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
    Ok(output.logits.expect("LogitsAt::Rows yields logits"))
}

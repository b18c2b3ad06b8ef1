//! The training objective: mean cross-entropy over the label tokens of a batch, with the
//! interventions in place.
//!
//! Two passes compute it. When every module sits on one layer and the model runs on the
//! CPU in f32, the blocks above that layer go through the decoder's hand-written suffix
//! pass (packed tokens, input gradients only). Otherwise candle's autograd runs the general
//! pass. Both give the same loss and gradients.

use std::time::Instant;

use candle_core::{Result, Tensor};

use super::batch::Batch;
use super::prefix_cache::PrefixCache;
use crate::model::decoder::{BlockHook, Decoder, LogitsAt};
use crate::model::suffix_pass::{PackedSequence, SuffixTimings};
use crate::reft::RowPositions;
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
    Ok(timed_batch_loss(decoder, set, batch, training, prefix)?.0)
}

/// Seconds spent in each part of a suffix-pass [`batch_loss`] (the benchmark reports them).
#[derive(Debug, Clone, Copy, Default)]
pub struct LossTimings {
    /// The blocks up to the intervened one, or reading their output from the cache.
    pub prefix: f64,
    /// The intervention's forward, and packing the batch's tokens.
    pub intervention: f64,
    pub suffix: SuffixTimings,
}

impl LossTimings {
    /// Adds `other`'s seconds to these.
    pub fn add(&mut self, other: &LossTimings) {
        self.prefix += other.prefix;
        self.intervention += other.intervention;
        self.suffix.blocks_forward += other.suffix.blocks_forward;
        self.suffix.head += other.suffix.head;
        self.suffix.blocks_backward += other.suffix.blocks_backward;
    }
}

/// [`batch_loss`], with the time of each part when the suffix pass ran (None for the
/// general pass).
pub fn timed_batch_loss(
    decoder: &Decoder,
    set: &InterventionSet,
    batch: &Batch,
    training: bool,
    prefix: Option<&mut PrefixCache>,
) -> Result<(Tensor, Option<LossTimings>)> {
    let longest = batch.lengths.iter().map(|&(_, len)| len).max().unwrap_or(0);
    match single_layer(set) {
        Some(layer) if decoder.supports_suffix_pass(longest) => {
            let (loss, timings) = suffix_batch_loss(decoder, set, batch, training, prefix, layer)?;
            Ok((loss, Some(timings)))
        }
        _ => Ok((
            general_batch_loss(decoder, set, batch, training, prefix)?,
            None,
        )),
    }
}

/// [`batch_loss`] through candle's autograd, whatever the model, device and layers.
pub fn general_batch_loss(
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
    let usable =
        prefix.filter(|cache| set.first_layer().is_none_or(|first| cache.layer() <= first));
    let output = match usable {
        Some(cache) => {
            let (hidden, _) = cache.block_output(decoder, batch)?;
            decoder.forward_from(
                hidden,
                cache.layer(),
                Some(&batch.attention_mask),
                &mut hook,
                logits_at,
            )
        }
        None => decoder.forward(
            &batch.input_ids,
            Some(&batch.attention_mask),
            &mut hook,
            logits_at,
        ),
    }
    .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
    Ok(output.logits.expect("LogitsAt::Rows yields logits"))
}

/// Returns the first position any module edits in `example`. Positions before it hold the same
/// hidden states with or without the modules, in every block.
fn first_edited_position(rows: &[Vec<RowPositions>], example: usize) -> Option<usize> {
    rows.iter()
        .filter_map(|module| module.get(example))
        .filter_map(|positions| {
            let fixed = positions.fixed.first().copied();
            match (fixed, positions.from) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        })
        .min()
}

/// Returns the layer every module of `set` sits on, if they share one.
fn single_layer(set: &InterventionSet) -> Option<usize> {
    let first = set.modules().first()?.layer;
    set.modules()
        .iter()
        .all(|m| m.layer == first)
        .then_some(first)
}

/// [`batch_loss`] with the blocks above `layer` run by [`Decoder::suffix_loss`]. Only the
/// intervention at `layer` goes through autograd.
fn suffix_batch_loss(
    decoder: &Decoder,
    set: &InterventionSet,
    batch: &Batch,
    training: bool,
    prefix: Option<&mut PrefixCache>,
    layer: usize,
) -> Result<(Tensor, LossTimings)> {
    if batch.label_count == 0 {
        candle_core::bail!("the batch has no label tokens: every example needs a non-empty target");
    }
    let mut timings = LossTimings::default();
    let started = Instant::now();
    let model_error = |e: crate::model::ModelError| candle_core::Error::Msg(e.to_string());
    let mut cache = prefix.filter(|cache| cache.layer() == layer);
    let hidden = match cache.as_deref_mut() {
        Some(cache) => cache.block_output(decoder, batch)?.0,
        None => decoder
            .hidden_after(&batch.input_ids, Some(&batch.attention_mask), layer)
            .map_err(model_error)?,
    };
    timings.prefix = started.elapsed().as_secs_f64();

    // Rows before an example's first edited position are frozen in every block above. When
    // none of them carries a loss, their keys and values can be cached across epochs.
    let started = Instant::now();
    let rows = set.row_positions(&batch.lengths, false);
    let ids = batch.input_ids.to_vec2::<u32>()?;
    let frozen: Vec<usize> = (0..batch.lengths.len())
        .map(|example| first_edited_position(&rows, example).unwrap_or(batch.lengths[example].1))
        .collect();
    let cacheable = |example: usize| {
        let (prompt_len, _) = batch.lengths[example];
        frozen[example] > 0 && frozen[example] < prompt_len
    };
    let tokens = |example: usize| &ids[example][..batch.lengths[example].1];
    let sequences: Vec<PackedSequence> = batch
        .lengths
        .iter()
        .enumerate()
        .map(|(example, &(_, len))| PackedSequence {
            len,
            frozen: frozen[example],
            cached: cache
                .as_deref()
                .filter(|_| cacheable(example))
                .and_then(|c| c.frozen_kv(tokens(example), frozen[example])),
        })
        .collect();
    let mut hook = InterventionHook::new(set, rows, training);
    let edited = hook.on_block_output(layer, &hidden, 0)?.unwrap_or(hidden);

    // Pack the rows the pass needs end to end: padding costs nothing above the
    // intervention, and neither do frozen rows whose keys and values are cached.
    let (examples, seq, dim) = edited.dims3()?;
    let mut starts = Vec::with_capacity(examples);
    let mut held_rows = Vec::with_capacity(batch.token_count);
    for (example, sequence) in sequences.iter().enumerate() {
        let first_held = if sequence.cached.is_some() {
            sequence.frozen
        } else {
            0
        };
        starts.push(held_rows.len() as isize - first_held as isize);
        held_rows.extend((first_held..sequence.len).map(|t| (example * seq + t) as u32));
    }
    let index = Tensor::new(held_rows.as_slice(), edited.device())?;
    let packed = edited
        .reshape((examples * seq, dim))?
        .index_select(&index, 0)?;
    let label_rows: Vec<usize> = batch
        .label_rows
        .to_vec1::<u32>()?
        .iter()
        .map(|&row| (starts[row as usize / seq] + (row as usize % seq) as isize) as usize)
        .collect();
    let label_ids = batch.label_ids.to_vec1::<u32>()?;

    let input = packed.detach().flatten_all()?.to_vec1::<f32>()?;
    timings.intervention = started.elapsed().as_secs_f64();
    let mut out = decoder
        .suffix_loss(&input, &sequences, layer + 1, &label_rows, &label_ids)
        .map_err(model_error)?;
    if let Some(cache) = cache {
        for (example, kv) in out.frozen_kv.drain(..).enumerate() {
            if let Some(kv) = kv.filter(|_| cacheable(example)) {
                cache.store_frozen_kv(tokens(example), frozen[example], kv);
            }
        }
    }

    // sum(packed * grad) has gradient `grad` with respect to `packed`. Subtracting its own
    // detached value and adding the loss gives a tensor worth exactly the loss, whose
    // backward reaches the intervention.
    let grad = Tensor::from_vec(out.input_grad, packed.shape(), packed.device())?;
    let linked = (&packed * &grad)?.sum_all()?;
    let loss = (&linked - linked.detach())?.affine(1.0, f64::from(out.loss))?;
    timings.suffix = out.timings;
    Ok((loss, timings))
}

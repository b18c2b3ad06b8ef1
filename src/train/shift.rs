//! Representation shift: how far the interventions move each layer's hidden state on a
//! fixed probe batch, measured against the plain (unintervened) forward pass.

use candle_core::{Result, Tensor, D};

use super::batch::Batch;
use super::events::{LayerShift, ShiftSnapshot};
use crate::model::decoder::{CaptureBlocks, Decoder, LogitsAt};
use crate::reft::{InterventionHook, InterventionSet};

/// A probe batch with its plain block outputs, computed once: the frozen model does not
/// change, so only the intervened pass is run at each measurement.
pub struct ShiftProbe {
    batch: Batch,
    plain: Vec<Tensor>,
    /// Flattened [batch * seq] rows edited by any module.
    intervened_rows: Tensor,
    /// Flattened rows that carry the loss.
    loss_rows: Tensor,
}

impl ShiftProbe {
    pub fn new(decoder: &Decoder, set: &InterventionSet, batch: Batch) -> Result<Self> {
        let mut capture = CaptureBlocks::default();
        decoder
            .forward(
                &batch.input_ids,
                Some(&batch.attention_mask),
                &mut capture,
                LogitsAt::None,
            )
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;

        let (_, seq) = batch.input_ids.dims2()?;
        let mut rows = Vec::new();
        for module_rows in set.row_positions(&batch.lengths, false) {
            for (example, positions) in module_rows.iter().enumerate() {
                rows.extend(positions.fixed.iter().map(|&p| (example * seq + p) as u32));
            }
        }
        rows.sort_unstable();
        rows.dedup();
        let intervened_rows = Tensor::new(rows.as_slice(), decoder.device())?;

        Ok(Self {
            loss_rows: batch.label_rows.clone(),
            plain: capture.outputs,
            intervened_rows,
            batch,
        })
    }

    /// Measures every layer from the first intervened one to the last.
    pub fn measure(
        &self,
        decoder: &Decoder,
        set: &InterventionSet,
        step: usize,
    ) -> Result<ShiftSnapshot> {
        let rows = set.row_positions(&self.batch.lengths, false);
        let mut hook = CaptureAfter {
            inner: InterventionHook::new(set, rows, false),
            outputs: Vec::new(),
        };
        decoder
            .forward(
                &self.batch.input_ids,
                Some(&self.batch.attention_mask),
                &mut hook,
                LogitsAt::None,
            )
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;

        let first = set.first_layer().unwrap_or(0);
        let mut layers = Vec::new();
        for layer in first..self.plain.len() {
            let (change_i, cosine_i) = compare(
                &self.plain[layer],
                &hook.outputs[layer],
                &self.intervened_rows,
            )?;
            let (change_l, cosine_l) =
                compare(&self.plain[layer], &hook.outputs[layer], &self.loss_rows)?;
            layers.push(LayerShift {
                layer,
                relative_change_intervened: change_i,
                cosine_intervened: cosine_i,
                relative_change_loss: change_l,
                cosine_loss: cosine_l,
            });
        }

        let mut intervened_layers: Vec<usize> = set.modules().iter().map(|m| m.layer).collect();
        intervened_layers.sort_unstable();
        intervened_layers.dedup();
        Ok(ShiftSnapshot {
            step,
            intervened_layers,
            layers,
        })
    }
}

/// Applies the interventions and keeps each block's output after them.
struct CaptureAfter<'a> {
    inner: InterventionHook<'a>,
    outputs: Vec<Tensor>,
}

impl crate::model::decoder::BlockHook for CaptureAfter<'_> {
    fn on_block_output(
        &mut self,
        layer: usize,
        hidden: &Tensor,
        offset: usize,
    ) -> Result<Option<Tensor>> {
        let replaced = self.inner.on_block_output(layer, hidden, offset)?;
        self.outputs
            .push(replaced.clone().unwrap_or_else(|| hidden.clone()));
        Ok(replaced)
    }
}

/// Mean relative change and mean cosine similarity over `rows` of two [batch, seq, d]
/// hidden states.
fn compare(plain: &Tensor, edited: &Tensor, rows: &Tensor) -> Result<(f64, f64)> {
    if rows.elem_count() == 0 {
        return Ok((0.0, 1.0));
    }
    let (batch, seq, dim) = plain.dims3()?;
    let h = plain.reshape((batch * seq, dim))?.index_select(rows, 0)?;
    let h2 = edited.reshape((batch * seq, dim))?.index_select(rows, 0)?;

    let norm = h.sqr()?.sum(D::Minus1)?.sqrt()?;
    let norm2 = h2.sqr()?.sum(D::Minus1)?.sqrt()?;
    let change = (&h2 - &h)?.sqr()?.sum(D::Minus1)?.sqrt()?;
    let relative = (change / (&norm + 1e-12)?)?
        .mean_all()?
        .to_scalar::<f32>()?;
    let cosine = ((&h * &h2)?.sum(D::Minus1)? / ((norm * norm2)? + 1e-12)?)?
        .mean_all()?
        .to_scalar::<f32>()?;
    Ok((f64::from(relative), f64::from(cosine)))
}

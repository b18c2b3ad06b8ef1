//! Applying placed interventions inside the forward pass, at chosen rows of a batch.

use candle_core::Tensor;

use super::set::InterventionSet;
use crate::model::decoder::BlockHook;

/// The positions one module edits in one example.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowPositions {
    /// Absolute token positions, sorted (0 = the first token of the example).
    pub fixed: Vec<usize>,
    /// Every position from this one on, for editing tokens produced while generating.
    pub from: Option<usize>,
}

impl RowPositions {
    fn contains(&self, position: usize) -> bool {
        self.from.is_some_and(|start| position >= start)
            || self.fixed.binary_search(&position).is_ok()
    }
}

/// Runs the modules of an [`InterventionSet`] at their layers. `rows[module][example]`
/// lists the positions each module edits in each example of the batch. Padding positions
/// must not be listed, so padding is never edited.
pub struct InterventionHook<'a> {
    set: &'a InterventionSet,
    rows: Vec<Vec<RowPositions>>,
    training: bool,
}

impl<'a> InterventionHook<'a> {
    pub fn new(set: &'a InterventionSet, rows: Vec<Vec<RowPositions>>, training: bool) -> Self {
        Self {
            set,
            rows,
            training,
        }
    }

    /// Indices into the flattened [batch * seq] chunk that module `module` edits.
    fn flat_rows(&self, module: usize, batch: usize, seq: usize, offset: usize) -> Vec<u32> {
        let mut flat = Vec::new();
        for (example, positions) in self.rows[module].iter().enumerate().take(batch) {
            for local in 0..seq {
                if positions.contains(offset + local) {
                    flat.push((example * seq + local) as u32);
                }
            }
        }
        flat
    }
}

impl BlockHook for InterventionHook<'_> {
    fn on_block_output(
        &mut self,
        layer: usize,
        hidden: &Tensor,
        position_offset: usize,
    ) -> candle_core::Result<Option<Tensor>> {
        let (batch, seq, dim) = hidden.dims3()?;
        let mut current: Option<Tensor> = None;

        for (module, placed) in self.set.modules().iter().enumerate() {
            if placed.layer != layer {
                continue;
            }
            let rows = self.flat_rows(module, batch, seq, position_offset);
            if rows.is_empty() {
                continue;
            }

            // Gather the selected rows, edit them, and add the change back in place.
            // Several modules on one layer apply in order, each to the previous result.
            let flat = current
                .as_ref()
                .unwrap_or(hidden)
                .reshape((batch * seq, dim))?;
            let index = Tensor::new(rows.as_slice(), hidden.device())?;
            let picked = flat.index_select(&index, 0)?;
            let edited = placed.intervention.forward(&picked, self.training)?;
            let delta = (edited - &picked)?;
            let updated = flat.index_add(&index, &delta, 0)?;
            current = Some(updated.reshape((batch, seq, dim))?);
        }
        Ok(current)
    }
}

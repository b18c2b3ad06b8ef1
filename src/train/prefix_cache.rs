//! The frozen-prefix cache. Blocks below the first intervened layer never change while
//! training, so their output for an example is the same every epoch and every evaluation:
//! it is computed once and reused, and each later pass runs only the blocks above. The
//! cache also keeps, for the suffix pass, the keys and values that the blocks above compute
//! for the positions before the first edited one, which do not change either.

use std::collections::HashMap;

use candle_core::{Result, Tensor};

use super::batch::Batch;
use crate::model::decoder::Decoder;
use crate::model::suffix_pass::FrozenKv;

/// Bytes of one f32 value.
const F32_BYTES: usize = 4;

/// Output of block `layer` for each example seen, keyed by its token ids (padding
/// excluded), within a memory budget. Examples that do not fit are computed every time.
pub struct PrefixCache {
    layer: usize,
    entries: HashMap<Vec<u32>, Tensor>,
    /// Keys and values of each example's frozen rows in the blocks above `layer`, keyed by
    /// its token ids and its count of frozen positions. They share the budget.
    frozen_kv: HashMap<(Vec<u32>, usize), FrozenKv>,
    bytes: usize,
    budget_bytes: usize,
    hits: usize,
    misses: usize,
}

/// Cache hits and misses for the rows of one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lookup {
    /// Rows whose prefix came from the cache.
    pub hits: usize,
    /// Rows whose prefix was computed.
    pub misses: usize,
}

impl PrefixCache {
    /// Creates a cache of the output of block `layer` that holds at most `budget_bytes`
    /// of hidden states.
    pub fn new(layer: usize, budget_bytes: usize) -> Self {
        Self {
            layer,
            entries: HashMap::new(),
            frozen_kv: HashMap::new(),
            bytes: 0,
            budget_bytes,
            hits: 0,
            misses: 0,
        }
    }

    /// Returns the block whose output is cached.
    pub fn layer(&self) -> usize {
        self.layer
    }

    /// Returns the bytes of hidden states held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Returns the rows served from the cache and the rows computed since it was made.
    pub fn totals(&self) -> Lookup {
        Lookup {
            hits: self.hits,
            misses: self.misses,
        }
    }

    /// Returns the output of block `layer` for `batch`, [batch, seq, hidden], computing
    /// only the rows not cached. Padding positions hold zeros: they are masked as keys and carry no
    /// loss, so what they hold never reaches a real token.
    pub fn block_output(&mut self, decoder: &Decoder, batch: &Batch) -> Result<(Tensor, Lookup)> {
        let ids = batch.input_ids.to_vec2::<u32>()?;
        let keys: Vec<&[u32]> = ids
            .iter()
            .zip(&batch.lengths)
            .map(|(row, &(_, len))| &row[..len])
            .collect();
        let missing: Vec<usize> = (0..keys.len())
            .filter(|&r| !self.entries.contains_key(keys[r]))
            .collect();
        let lookup = Lookup {
            hits: keys.len() - missing.len(),
            misses: missing.len(),
        };
        self.hits += lookup.hits;
        self.misses += lookup.misses;

        // The common first-epoch case: nothing cached, so the batch runs as it is.
        if missing.len() == keys.len() {
            let output = self.compute(decoder, &batch.input_ids, &batch.attention_mask)?;
            for (row, key) in keys.iter().enumerate() {
                self.store(key, &output, row)?;
            }
            return Ok((output, lookup));
        }

        let mut computed: HashMap<usize, Tensor> = HashMap::new();
        if !missing.is_empty() {
            let index = Tensor::new(
                missing.iter().map(|&r| r as u32).collect::<Vec<_>>(),
                batch.input_ids.device(),
            )?;
            let ids = batch.input_ids.index_select(&index, 0)?;
            let mask = batch.attention_mask.index_select(&index, 0)?;
            let output = self.compute(decoder, &ids, &mask)?;
            for (sub_row, &row) in missing.iter().enumerate() {
                let len = keys[row].len();
                computed.insert(row, output.get(sub_row)?.narrow(0, 0, len)?);
                self.store(keys[row], &output, sub_row)?;
            }
        }

        let seq = ids.first().map_or(0, Vec::len);
        let rows = keys
            .iter()
            .enumerate()
            .map(|(row, key)| {
                let hidden = match computed.remove(&row) {
                    Some(hidden) => hidden,
                    None => self.entries[*key].clone(),
                };
                hidden.pad_with_zeros(0, 0, seq - key.len())
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((Tensor::stack(&rows, 0)?, lookup))
    }

    fn compute(&self, decoder: &Decoder, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        decoder
            .hidden_after(ids, Some(mask), self.layer)
            .map_err(|e| candle_core::Error::Msg(e.to_string()))
    }

    /// Keeps row `row` of `output` (its real positions only) when the budget allows.
    fn store(&mut self, key: &[u32], output: &Tensor, row: usize) -> Result<()> {
        if self.entries.contains_key(key) {
            return Ok(());
        }
        let (_, _, hidden) = output.dims3()?;
        let bytes = key.len() * hidden * F32_BYTES;
        if self.bytes + bytes > self.budget_bytes {
            return Ok(());
        }
        // A copy of the row alone, so that the entry does not keep the whole batch's
        // storage alive.
        let entry = output
            .get(row)?
            .narrow(0, 0, key.len())?
            .force_contiguous()?;
        self.entries.insert(key.to_vec(), entry);
        self.bytes += bytes;
        Ok(())
    }

    /// Returns the frozen rows' keys and values kept for `tokens` with `frozen` frozen
    /// positions, if any.
    pub fn frozen_kv(&self, tokens: &[u32], frozen: usize) -> Option<&FrozenKv> {
        self.frozen_kv.get(&(tokens.to_vec(), frozen))
    }

    /// Keeps `kv` for `tokens` with `frozen` frozen positions when the budget allows.
    pub fn store_frozen_kv(&mut self, tokens: &[u32], frozen: usize, kv: FrozenKv) {
        let bytes = kv.bytes();
        if self.bytes + bytes > self.budget_bytes {
            return;
        }
        if self
            .frozen_kv
            .insert((tokens.to_vec(), frozen), kv)
            .is_none()
        {
            self.bytes += bytes;
        }
    }
}

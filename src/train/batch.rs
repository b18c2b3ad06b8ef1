//! Padded batches of tokenized examples, with the positions that carry a loss.

use candle_core::{Device, Result, Tensor};

/// Label value that marks a position without a loss (the Hugging Face convention).
pub const IGNORE_LABEL: i64 = -100;

/// One tokenized example: the prompt tokens followed by the target tokens (response or
/// label, then the end-of-sequence token). The loss covers the target tokens only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenizedExample {
    pub input_ids: Vec<u32>,
    pub prompt_len: usize,
}

/// A right-padded batch ready for the decoder.
pub struct Batch {
    /// [batch, seq] u32
    pub input_ids: Tensor,
    /// [batch, seq] u32: 1 for tokens, 0 for padding.
    pub attention_mask: Tensor,
    /// (prompt length, real length) of each example.
    pub lengths: Vec<(usize, usize)>,
    /// Indices into the flattened [batch * seq] positions whose next token is a label.
    pub label_rows: Tensor,
    /// The label at each of `label_rows` (the token that follows it).
    pub label_ids: Tensor,
    pub label_count: usize,
    /// Real (non-padding) tokens in the batch.
    pub token_count: usize,
}

impl Batch {
    /// Pads `examples` on the right with `pad_id`; the loss covers each example's tokens
    /// after its prompt.
    pub fn from_examples(
        examples: &[&TokenizedExample],
        pad_id: u32,
        device: &Device,
    ) -> Result<Self> {
        let seq = examples
            .iter()
            .map(|e| e.input_ids.len())
            .max()
            .unwrap_or(0);
        let mut ids = Vec::with_capacity(examples.len());
        let mut mask = Vec::with_capacity(examples.len());
        let mut labels = Vec::with_capacity(examples.len());
        let mut prompt_lens = Vec::with_capacity(examples.len());
        for example in examples {
            let len = example.input_ids.len();
            let mut row = example.input_ids.clone();
            row.resize(seq, pad_id);
            ids.push(row);
            mask.push((0..seq).map(|t| u32::from(t < len)).collect());
            labels.push(
                (0..seq)
                    .map(|t| {
                        if t >= example.prompt_len && t < len {
                            i64::from(example.input_ids[t])
                        } else {
                            IGNORE_LABEL
                        }
                    })
                    .collect(),
            );
            prompt_lens.push(example.prompt_len);
        }
        Self::from_labels(&ids, &mask, &labels, &prompt_lens, device)
    }

    /// Builds a batch from explicit rows: token ids, attention mask (1/0), labels
    /// (IGNORE_LABEL where no loss) and prompt lengths.
    pub fn from_labels(
        ids: &[Vec<u32>],
        mask: &[Vec<u32>],
        labels: &[Vec<i64>],
        prompt_lens: &[usize],
        device: &Device,
    ) -> Result<Self> {
        let batch = ids.len();
        let seq = ids.first().map_or(0, Vec::len);

        let mut label_rows = Vec::new();
        let mut label_ids = Vec::new();
        for (b, row) in labels.iter().enumerate() {
            // Position t is scored on predicting the label at t + 1.
            for t in 0..seq.saturating_sub(1) {
                let label = row[t + 1];
                if label != IGNORE_LABEL {
                    label_rows.push((b * seq + t) as u32);
                    label_ids.push(label as u32);
                }
            }
        }

        let lengths = mask
            .iter()
            .zip(prompt_lens)
            .map(|(m, &p)| (p, m.iter().filter(|&&v| v != 0).count()))
            .collect::<Vec<_>>();
        let token_count = lengths.iter().map(|(_, total)| total).sum();
        let label_count = label_rows.len();

        Ok(Self {
            input_ids: Tensor::from_vec(ids.concat(), (batch, seq), device)?,
            attention_mask: Tensor::from_vec(mask.concat(), (batch, seq), device)?,
            lengths,
            label_rows: Tensor::from_vec(label_rows, label_count, device)?,
            label_ids: Tensor::from_vec(label_ids, label_count, device)?,
            label_count,
            token_count,
        })
    }
}

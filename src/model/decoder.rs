//! A decoder-only transformer forward pass (Llama, Mistral, Qwen2), following Hugging Face
//! transformers' implementations, with a hook after every block that may replace the
//! hidden state. Every op on the path backpropagates to the hidden state; frozen weights
//! never receive a gradient.

use std::sync::OnceLock;

use candle_core::{DType, Device, IndexOp, Tensor, D};

use super::config::{Llama3RopeScaling, ModelConfig};
use super::error::{ModelError, Result};
use super::ops;
use super::suffix_pass::ForwardWeights;
use super::weights::Weights;

/// Positions beyond this are rejected; it bounds the RoPE tables' memory for models that
/// advertise very long contexts.
const MAX_ROPE_POSITIONS: usize = 32_768;

/// Called after each block with its output `hidden` ([batch, seq, hidden]). Returning a
/// tensor replaces the hidden state that the next block sees. `position_offset` is the
/// position of `hidden`'s first token (non-zero while generating with a KV cache).
pub trait BlockHook {
    fn on_block_output(
        &mut self,
        layer: usize,
        hidden: &Tensor,
        position_offset: usize,
    ) -> candle_core::Result<Option<Tensor>>;
}

/// A hook that changes nothing.
pub struct NoHook;

impl BlockHook for NoHook {
    fn on_block_output(
        &mut self,
        _: usize,
        _: &Tensor,
        _: usize,
    ) -> candle_core::Result<Option<Tensor>> {
        Ok(None)
    }
}

/// A hook that keeps every block's output (for inspection and representation-shift charts).
#[derive(Default)]
pub struct CaptureBlocks {
    pub outputs: Vec<Tensor>,
}

impl BlockHook for CaptureBlocks {
    fn on_block_output(
        &mut self,
        _: usize,
        hidden: &Tensor,
        _: usize,
    ) -> candle_core::Result<Option<Tensor>> {
        self.outputs.push(hidden.clone());
        Ok(None)
    }
}

/// Which positions get logits. The LM head is the largest matmul of a small model, so
/// training asks only for the positions that carry a loss.
pub enum LogitsAt {
    None,
    /// The last real (non-padding) token of each row: [batch, vocab].
    Last,
    /// Every position: [batch, seq, vocab].
    All,
    /// Rows of the flattened [batch * seq] positions, as a u32 index tensor: [n, vocab].
    Rows(Tensor),
}

/// The result of [`Decoder::forward`].
pub struct ForwardOutput {
    /// The hidden state after the final norm: [batch, seq, hidden].
    pub hidden: Tensor,
    pub logits: Option<Tensor>,
}

/// Keys and values of the positions already processed, per block, for generation.
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
    /// Padding tokens at the start of each row of a batch; empty when no row is padded.
    left_padding: Vec<usize>,
}

impl KvCache {
    pub fn new(num_layers: usize) -> Self {
        Self {
            layers: vec![None; num_layers],
            len: 0,
            left_padding: Vec::new(),
        }
    }

    /// A cache for a batch whose rows start with `left_padding[row]` padding tokens. Those
    /// positions are masked, and each row's positions count from its first real token.
    pub fn with_left_padding(num_layers: usize, left_padding: Vec<usize>) -> Self {
        Self {
            layers: vec![None; num_layers],
            len: 0,
            left_padding,
        }
    }

    /// Returns the number of positions cached.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

pub(super) struct RopeTables {
    /// [positions, head_dim / 2]
    pub(super) cos: Tensor,
    pub(super) sin: Tensor,
}

impl RopeTables {
    fn new(config: &ModelConfig, device: &Device) -> Result<Self> {
        let half = config.head_dim / 2;
        let mut inv_freq: Vec<f64> = (0..half)
            .map(|i| {
                1.0 / config
                    .rope_theta
                    .powf(2.0 * i as f64 / config.head_dim as f64)
            })
            .collect();
        if let Some(scaling) = &config.rope_scaling {
            apply_llama3_scaling(&mut inv_freq, scaling);
        }

        let positions = config.max_position_embeddings.clamp(1, MAX_ROPE_POSITIONS);
        let mut cos = Vec::with_capacity(positions * half);
        let mut sin = Vec::with_capacity(positions * half);
        for p in 0..positions {
            for f in &inv_freq {
                let angle = p as f64 * f;
                cos.push(angle.cos() as f32);
                sin.push(angle.sin() as f32);
            }
        }
        Ok(Self {
            cos: Tensor::from_vec(cos, (positions, half), device)?,
            sin: Tensor::from_vec(sin, (positions, half), device)?,
        })
    }

    fn max_positions(&self) -> usize {
        self.cos.dim(0).unwrap_or(0)
    }
}

/// Llama 3.1's frequency rescaling: long wavelengths are divided by `factor`, short ones
/// kept, and the band between is interpolated.
fn apply_llama3_scaling(inv_freq: &mut [f64], scaling: &Llama3RopeScaling) {
    let old_context = scaling.original_max_position_embeddings as f64;
    let low_wavelen = old_context / scaling.low_freq_factor;
    let high_wavelen = old_context / scaling.high_freq_factor;
    for f in inv_freq.iter_mut() {
        let wavelen = 2.0 * std::f64::consts::PI / *f;
        if wavelen > low_wavelen {
            *f /= scaling.factor;
        } else if wavelen >= high_wavelen {
            let smooth = (old_context / wavelen - scaling.low_freq_factor)
                / (scaling.high_freq_factor - scaling.low_freq_factor);
            *f = (1.0 - smooth) * *f / scaling.factor + smooth * *f;
        }
    }
}

pub(super) struct Attention {
    pub(super) q_proj: Tensor,
    pub(super) k_proj: Tensor,
    pub(super) v_proj: Tensor,
    pub(super) o_proj: Tensor,
    pub(super) q_bias: Option<Tensor>,
    pub(super) k_bias: Option<Tensor>,
    pub(super) v_bias: Option<Tensor>,
    /// Per-head RMSNorm weights on queries and keys before RoPE (Qwen3-style models).
    pub(super) q_norm: Option<Tensor>,
    pub(super) k_norm: Option<Tensor>,
    pub(super) rms_norm_eps: f64,
    pub(super) num_heads: usize,
    pub(super) num_kv_heads: usize,
    pub(super) head_dim: usize,
}

impl Attention {
    fn load(weights: &Weights, prefix: &str, config: &ModelConfig) -> Result<Self> {
        let hidden = config.hidden_size;
        let q_out = config.num_heads * config.head_dim;
        let kv_out = config.num_kv_heads * config.head_dim;
        let bias = |name: &str, len: usize| -> Result<Option<Tensor>> {
            if config.attention_bias {
                weights
                    .get(&format!("{prefix}.{name}.bias"), &[len])
                    .map(Some)
            } else {
                weights.get_optional(&format!("{prefix}.{name}.bias"), &[len])
            }
        };
        Ok(Self {
            q_proj: weights.get(&format!("{prefix}.q_proj.weight"), &[q_out, hidden])?,
            k_proj: weights.get(&format!("{prefix}.k_proj.weight"), &[kv_out, hidden])?,
            v_proj: weights.get(&format!("{prefix}.v_proj.weight"), &[kv_out, hidden])?,
            o_proj: weights.get(&format!("{prefix}.o_proj.weight"), &[hidden, q_out])?,
            q_bias: bias("q_proj", q_out)?,
            k_bias: bias("k_proj", kv_out)?,
            v_bias: bias("v_proj", kv_out)?,
            q_norm: weights.get_optional(&format!("{prefix}.q_norm.weight"), &[config.head_dim])?,
            k_norm: weights.get_optional(&format!("{prefix}.k_norm.weight"), &[config.head_dim])?,
            rms_norm_eps: config.rms_norm_eps,
            num_heads: config.num_heads,
            num_kv_heads: config.num_kv_heads,
            head_dim: config.head_dim,
        })
    }

    /// `x` is [batch, seq, hidden]; `mask` is additive, broadcastable to
    /// [batch, heads, seq, past + seq].
    /// `cos` and `sin` are [seq, head_dim / 2], or [batch, seq, head_dim / 2] when rows
    /// have their own positions.
    fn forward(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: Option<&Tensor>,
        cache: Option<&mut Option<(Tensor, Tensor)>>,
    ) -> candle_core::Result<Tensor> {
        let (batch, seq, _) = x.dims3()?;

        let split_heads = |t: Tensor, heads: usize| -> candle_core::Result<Tensor> {
            t.reshape((batch, seq, heads, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = split_heads(
            ops::frozen_linear(x, &self.q_proj, self.q_bias.as_ref())?,
            self.num_heads,
        )?;
        let k = split_heads(
            ops::frozen_linear(x, &self.k_proj, self.k_bias.as_ref())?,
            self.num_kv_heads,
        )?;
        let v = split_heads(
            ops::frozen_linear(x, &self.v_proj, self.v_bias.as_ref())?,
            self.num_kv_heads,
        )?;

        let q = match &self.q_norm {
            Some(w) => ops::rms_norm(&q, w, self.rms_norm_eps)?,
            None => q,
        };
        let k = match &self.k_norm {
            Some(w) => ops::rms_norm(&k, w, self.rms_norm_eps)?,
            None => k,
        };

        let q = ops::rope(&q, cos, sin)?;
        let k = ops::rope(&k, cos, sin)?;

        let (k, v) = match cache {
            Some(slot) => {
                let (k, v) = match slot.take() {
                    Some((past_k, past_v)) => (
                        Tensor::cat(&[&past_k, &k], 2)?,
                        Tensor::cat(&[&past_v, &v], 2)?,
                    ),
                    None => (k, v),
                };
                *slot = Some((k.clone(), v.clone()));
                (k, v)
            }
            None => (k, v),
        };

        let repeats = self.num_heads / self.num_kv_heads;
        let k = candle_transformers::utils::repeat_kv(k, repeats)?;
        let v = candle_transformers::utils::repeat_kv(v, repeats)?;

        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let mut scores = (q.matmul(&k.t()?)? * scale)?;
        if let Some(mask) = mask {
            scores = scores.broadcast_add(mask)?;
        }
        let probs = ops::softmax_last_dim(&scores)?;
        let context = probs.matmul(&v.contiguous()?)?;

        let context =
            context
                .transpose(1, 2)?
                .reshape((batch, seq, self.num_heads * self.head_dim))?;
        ops::frozen_linear(&context, &self.o_proj, None)
    }
}

pub(super) struct Mlp {
    pub(super) gate_proj: Tensor,
    pub(super) up_proj: Tensor,
    pub(super) down_proj: Tensor,
}

impl Mlp {
    fn load(weights: &Weights, prefix: &str, config: &ModelConfig) -> Result<Self> {
        let (hidden, inner) = (config.hidden_size, config.intermediate_size);
        Ok(Self {
            gate_proj: weights.get(&format!("{prefix}.gate_proj.weight"), &[inner, hidden])?,
            up_proj: weights.get(&format!("{prefix}.up_proj.weight"), &[inner, hidden])?,
            down_proj: weights.get(&format!("{prefix}.down_proj.weight"), &[hidden, inner])?,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let gate = ops::frozen_linear(x, &self.gate_proj, None)?.silu()?;
        let up = ops::frozen_linear(x, &self.up_proj, None)?;
        ops::frozen_linear(&(gate * up)?, &self.down_proj, None)
    }
}

pub(super) struct Block {
    pub(super) input_norm: Tensor,
    pub(super) post_attention_norm: Tensor,
    pub(super) attention: Attention,
    pub(super) mlp: Mlp,
}

impl Block {
    fn load(weights: &Weights, layer: usize, config: &ModelConfig) -> Result<Self> {
        let prefix = format!("model.layers.{layer}");
        let hidden = config.hidden_size;
        Ok(Self {
            input_norm: weights.get(&format!("{prefix}.input_layernorm.weight"), &[hidden])?,
            post_attention_norm: weights.get(
                &format!("{prefix}.post_attention_layernorm.weight"),
                &[hidden],
            )?,
            attention: Attention::load(weights, &format!("{prefix}.self_attn"), config)?,
            mlp: Mlp::load(weights, &format!("{prefix}.mlp"), config)?,
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        eps: f64,
        (cos, sin): (&Tensor, &Tensor),
        mask: Option<&Tensor>,
        cache: Option<&mut Option<(Tensor, Tensor)>>,
    ) -> candle_core::Result<Tensor> {
        let normed = ops::rms_norm(x, &self.input_norm, eps)?;
        let x = (x + self.attention.forward(&normed, cos, sin, mask, cache)?)?;

        let normed = ops::rms_norm(&x, &self.post_attention_norm, eps)?;
        x + self.mlp.forward(&normed)?
    }
}

/// A frozen decoder-only language model.
pub struct Decoder {
    pub(super) config: ModelConfig,
    pub(super) embed_tokens: Tensor,
    pub(super) blocks: Vec<Block>,
    pub(super) norm: Tensor,
    /// [vocab, hidden]; the embedding matrix itself when the head is tied.
    pub(super) lm_head: Tensor,
    pub(super) rope: RopeTables,
    pub(super) device: Device,
    /// Transposed weights for the CPU training pass, one slot per block. A slot stays
    /// empty until that pass first runs its block.
    pub(super) forward_weights: Vec<OnceLock<ForwardWeights>>,
}

impl Decoder {
    /// Builds the decoder from weights in Hugging Face naming.
    pub fn new(config: ModelConfig, weights: &Weights, device: &Device) -> Result<Self> {
        let (vocab, hidden) = (config.vocab_size, config.hidden_size);
        let embed_tokens = weights.get("model.embed_tokens.weight", &[vocab, hidden])?;

        let blocks = (0..config.num_layers)
            .map(|layer| Block::load(weights, layer, &config))
            .collect::<Result<Vec<_>>>()?;

        let lm_head = match weights.get_optional("lm_head.weight", &[vocab, hidden])? {
            Some(head) if !config.tie_word_embeddings => head,
            _ => embed_tokens.clone(),
        };

        let forward_weights = blocks.iter().map(|_| OnceLock::new()).collect();
        Ok(Self {
            norm: weights.get("model.norm.weight", &[hidden])?,
            rope: RopeTables::new(&config, device)?,
            config,
            embed_tokens,
            blocks,
            lm_head,
            device: device.clone(),
            forward_weights,
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The token embedding matrix, [vocab, hidden].
    pub fn embedding_weight(&self) -> &Tensor {
        &self.embed_tokens
    }

    /// The weight of the final RMSNorm, [hidden].
    pub fn final_norm_weight(&self) -> &Tensor {
        &self.norm
    }

    pub fn num_layers(&self) -> usize {
        self.blocks.len()
    }

    /// Checks that `layer` names a block of this model.
    pub fn check_layer(&self, layer: usize) -> Result<()> {
        if layer < self.blocks.len() {
            Ok(())
        } else {
            Err(ModelError::LayerOutOfRange {
                layer,
                num_layers: self.blocks.len(),
            })
        }
    }

    /// Converts token ids to a [rows, seq] u32 tensor, checking them against the vocabulary.
    pub fn ids_tensor(&self, rows: &[Vec<u32>]) -> Result<Tensor> {
        let seq = rows.first().map_or(0, Vec::len);
        let mut flat = Vec::with_capacity(rows.len() * seq);
        for row in rows {
            if row.len() != seq {
                return Err(ModelError::Candle(candle_core::Error::Msg(format!(
                    "rows of token ids must have equal lengths: found {} and {seq}",
                    row.len()
                ))));
            }
            for &id in row {
                if id as usize >= self.config.vocab_size {
                    return Err(ModelError::TokenOutOfRange {
                        id,
                        vocab_size: self.config.vocab_size,
                    });
                }
            }
            flat.extend_from_slice(row);
        }
        Ok(Tensor::from_vec(flat, (rows.len(), seq), &self.device)?)
    }

    /// Token embeddings of `input_ids` ([batch, seq] u32): [batch, seq, hidden].
    pub fn embed(&self, input_ids: &Tensor) -> candle_core::Result<Tensor> {
        let (batch, seq) = input_ids.dims2()?;
        self.embed_tokens
            .index_select(&input_ids.flatten_all()?, 0)?
            .reshape((batch, seq, self.config.hidden_size))
    }

    /// Runs the whole model on a batch. `attention_mask` ([batch, seq], 1 for tokens and 0
    /// for padding) must pad on the right, so that every row starts at position 0.
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        hook: &mut dyn BlockHook,
        logits_at: LogitsAt,
    ) -> Result<ForwardOutput> {
        let hidden = self.embed(input_ids)?;
        self.run_blocks(hidden, 0, attention_mask, hook, logits_at)
    }

    /// The output of block `layer` with no hook anywhere: [batch, seq, hidden]. Blocks
    /// below the first intervened layer never change while training, so their output can
    /// be computed once and handed to [`Decoder::forward_from`] afterwards. With f32
    /// weights on the CPU and padding on the right, the packed CPU pass computes it and the
    /// padding rows contain zeros. Callers read the real rows only.
    pub fn hidden_after(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        layer: usize,
    ) -> Result<Tensor> {
        self.check_layer(layer)?;
        let (_, seq) = input_ids.dims2()?;
        self.check_positions(0, seq)?;
        if let Some(hidden) = self.packed_hidden_after(input_ids, attention_mask, layer)? {
            return Ok(hidden);
        }

        let mask = self.attention_bias(attention_mask, seq, 0)?;
        let cos = self.rope.cos.narrow(0, 0, seq)?;
        let sin = self.rope.sin.narrow(0, 0, seq)?;
        let mut hidden = self.embed(input_ids)?;
        for block in &self.blocks[..=layer] {
            hidden = block.forward(
                &hidden,
                self.config.rms_norm_eps,
                (&cos, &sin),
                mask.as_ref(),
                None,
            )?;
        }
        Ok(hidden)
    }

    /// Continues a forward pass from `block_output`, the output of block `layer` as
    /// [`Decoder::hidden_after`] returns it: the hook runs on it first, then the blocks above
    /// run as in [`Decoder::forward`].
    pub fn forward_from(
        &self,
        block_output: Tensor,
        layer: usize,
        attention_mask: Option<&Tensor>,
        hook: &mut dyn BlockHook,
        logits_at: LogitsAt,
    ) -> Result<ForwardOutput> {
        self.check_layer(layer)?;
        let hidden = match hook.on_block_output(layer, &block_output, 0)? {
            Some(replaced) => replaced,
            None => block_output,
        };
        self.run_blocks(hidden, layer + 1, attention_mask, hook, logits_at)
    }

    /// Runs blocks `first..` on `hidden` (the input of block `first`), then the final norm
    /// and the head.
    fn run_blocks(
        &self,
        mut hidden: Tensor,
        first: usize,
        attention_mask: Option<&Tensor>,
        hook: &mut dyn BlockHook,
        logits_at: LogitsAt,
    ) -> Result<ForwardOutput> {
        let (_, seq, _) = hidden.dims3()?;
        self.check_positions(0, seq)?;

        let mask = self.attention_bias(attention_mask, seq, 0)?;
        let cos = self.rope.cos.narrow(0, 0, seq)?;
        let sin = self.rope.sin.narrow(0, 0, seq)?;
        for (layer, block) in self.blocks.iter().enumerate().skip(first) {
            hidden = block.forward(
                &hidden,
                self.config.rms_norm_eps,
                (&cos, &sin),
                mask.as_ref(),
                None,
            )?;
            if let Some(replaced) = hook.on_block_output(layer, &hidden, 0)? {
                hidden = replaced;
            }
        }
        let hidden = ops::rms_norm(&hidden, &self.norm, self.config.rms_norm_eps)?;

        let logits = match logits_at {
            LogitsAt::None => None,
            LogitsAt::All => Some(ops::frozen_linear(&hidden, &self.lm_head, None)?),
            LogitsAt::Last => {
                let rows = last_token_rows(attention_mask, &hidden)?;
                Some(self.logits_at_rows(&hidden, &rows)?)
            }
            LogitsAt::Rows(rows) => Some(self.logits_at_rows(&hidden, &rows)?),
        };
        Ok(ForwardOutput { hidden, logits })
    }

    /// Runs `input_ids` ([batch, seq]) after the positions already in `cache`, appends
    /// their keys and values to it, and returns each row's last-position logits:
    /// [batch, vocab]. Rows padded on the left are described by the cache.
    pub fn forward_cached(
        &self,
        input_ids: &Tensor,
        cache: &mut KvCache,
        hook: &mut dyn BlockHook,
    ) -> Result<Tensor> {
        let (batch, seq) = input_ids.dims2()?;
        let offset = cache.len;
        self.check_positions(offset, seq)?;

        let padded = cache.left_padding.iter().any(|&p| p > 0);
        let (mask, cos, sin) = if padded {
            if cache.left_padding.len() != batch {
                return Err(ModelError::Candle(candle_core::Error::Msg(format!(
                    "the cache describes {} rows but the input has {batch}",
                    cache.left_padding.len()
                ))));
            }
            let keys = offset + seq;
            let keep: Vec<u32> = cache
                .left_padding
                .iter()
                .flat_map(|&pad| (0..keys).map(move |j| u32::from(j >= pad)))
                .collect();
            let keep = Tensor::from_vec(keep, (batch, keys), &self.device)?;
            let positions: Vec<u32> = cache
                .left_padding
                .iter()
                .flat_map(|&pad| (offset..offset + seq).map(move |i| i.saturating_sub(pad) as u32))
                .collect();
            let positions = Tensor::from_vec(positions, batch * seq, &self.device)?;
            let half = self.config.head_dim / 2;
            let cos = self
                .rope
                .cos
                .index_select(&positions, 0)?
                .reshape((batch, seq, half))?;
            let sin = self
                .rope
                .sin
                .index_select(&positions, 0)?
                .reshape((batch, seq, half))?;
            (self.attention_bias(Some(&keep), seq, offset)?, cos, sin)
        } else {
            let cos = self.rope.cos.narrow(0, offset, seq)?;
            let sin = self.rope.sin.narrow(0, offset, seq)?;
            (self.attention_bias(None, seq, offset)?, cos, sin)
        };

        let mut hidden = self.embed(input_ids)?;
        for (layer, block) in self.blocks.iter().enumerate() {
            let slot = &mut cache.layers[layer];
            hidden = block.forward(
                &hidden,
                self.config.rms_norm_eps,
                (&cos, &sin),
                mask.as_ref(),
                Some(slot),
            )?;
            if let Some(replaced) = hook.on_block_output(layer, &hidden, offset)? {
                hidden = replaced;
            }
        }
        cache.len += seq;

        let last = hidden.i((.., seq - 1..seq, ..))?;
        let last = ops::rms_norm(&last, &self.norm, self.config.rms_norm_eps)?;
        Ok(ops::frozen_linear(&last, &self.lm_head, None)?.squeeze(1)?)
    }

    fn logits_at_rows(&self, hidden: &Tensor, rows: &Tensor) -> candle_core::Result<Tensor> {
        let (batch, seq, dim) = hidden.dims3()?;
        let picked = hidden.reshape((batch * seq, dim))?.index_select(rows, 0)?;
        ops::frozen_linear(&picked, &self.lm_head, None)
    }

    /// The longest sequence (prompt and generated tokens) this model runs.
    pub fn max_positions(&self) -> usize {
        self.rope.max_positions()
    }

    fn check_positions(&self, offset: usize, seq: usize) -> Result<()> {
        let max = self.rope.max_positions();
        if offset + seq > max {
            return Err(ModelError::Candle(candle_core::Error::Msg(format!(
                "the sequence needs {} positions but this model supports at most {max}; shorten the text",
                offset + seq
            ))));
        }
        Ok(())
    }

    /// The additive attention mask for `seq` new queries after `offset` cached positions:
    /// causal, sliding-window when the model has one, and padding keys masked.
    /// Shape [batch or 1, 1, seq, offset + seq]; None when nothing needs masking.
    fn attention_bias(
        &self,
        attention_mask: Option<&Tensor>,
        seq: usize,
        offset: usize,
    ) -> candle_core::Result<Option<Tensor>> {
        let keys = offset + seq;
        let window = self.config.sliding_window;
        let needs_causal = seq > 1 || window.is_some_and(|w| keys > w);

        let causal = if needs_causal {
            let mut values = vec![0f32; seq * keys];
            for i in 0..seq {
                let query_pos = offset + i;
                for j in 0..keys {
                    let outside_window = window.is_some_and(|w| query_pos >= w + j);
                    if j > query_pos || outside_window {
                        values[i * keys + j] = f32::NEG_INFINITY;
                    }
                }
            }
            Some(Tensor::from_vec(values, (1, 1, seq, keys), &self.device)?)
        } else {
            None
        };

        let padding = match attention_mask {
            Some(mask) => {
                let (batch, mask_len) = mask.dims2()?;
                if mask_len != keys {
                    candle_core::bail!(
                        "attention mask covers {mask_len} positions, expected {keys}"
                    );
                }
                let keep = mask.to_dtype(DType::F32)?;
                // Kept keys get 0 and padding keys -f32::MAX. A finite bias avoids the NaN that
                // (keep - 1) * inf gives for kept keys.
                let is_pad = keep.ones_like()?.sub(&keep)?;
                let bias = is_pad.affine(f32::MAX as f64, 0.0)?.neg()?;
                Some(bias.reshape((batch, 1, 1, keys))?)
            }
            None => None,
        };

        Ok(match (causal, padding) {
            (Some(c), Some(p)) => Some(c.broadcast_add(&p)?),
            (Some(c), None) => Some(c),
            (None, Some(p)) => Some(p),
            (None, None) => None,
        })
    }
}

/// Indices into the flattened [batch * seq] positions of each row's last real token.
fn last_token_rows(
    attention_mask: Option<&Tensor>,
    hidden: &Tensor,
) -> candle_core::Result<Tensor> {
    let (batch, seq, _) = hidden.dims3()?;
    let lengths: Vec<u32> = match attention_mask {
        Some(mask) => mask
            .to_dtype(DType::U32)?
            .sum(D::Minus1)?
            .to_vec1::<u32>()?,
        None => vec![seq as u32; batch],
    };
    let rows: Vec<u32> = lengths
        .iter()
        .enumerate()
        .map(|(b, &len)| (b * seq) as u32 + len.max(1) - 1)
        .collect();
    Tensor::from_vec(rows, batch, hidden.device())
}

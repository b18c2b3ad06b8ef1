//! The training pass through the frozen blocks above an intervention, on the CPU.
//!
//! Training needs two things from the blocks above the intervened layer: the loss, and its
//! gradient with respect to the hidden state the intervention wrote. Nothing up there
//! learns. So this pass runs those blocks forward on the real tokens only, with the
//! batch's sequences packed end to end and no padding. It keeps just what the input
//! gradient needs and then runs the blocks backward by hand, with no weight gradient and no
//! autograd graph. The final norm and the LM head run only at the positions that carry a
//! loss. Positions before the first edited one never change, so they get no backward, and
//! a caller may keep their keys and values to skip them entirely on later passes. Matrix
//! products go straight to the gemm crate, and the element-wise steps are fused loops over
//! rows. The same packed forward, without the backward, computes the blocks below an
//! intervention for [`Decoder::hidden_after`].

use std::time::Instant;

use candle_core::{DType, Storage, Tensor};
use gemm::Parallelism;
use rayon::prelude::*;

use super::decoder::{Block, Decoder};
use super::error::{ModelError, Result};

/// Label rows scored per pass of the LM head; bounds the logits buffer (256 x vocab).
const HEAD_CHUNK_ROWS: usize = 256;

/// One sequence of a batch given to [`Decoder::suffix_loss`].
#[derive(Debug, Clone, Copy)]
pub struct PackedSequence<'a> {
    /// Tokens, padding excluded.
    pub len: usize,
    /// Leading positions that no intervention edits, directly or through attention: the
    /// positions before the first edited one. They get no gradient.
    pub frozen: usize,
    /// The frozen rows' keys and values from an earlier pass over the same tokens. When
    /// given, the input holds only this sequence's rows from `frozen` on, and the frozen
    /// rows are not run at all.
    pub cached: Option<&'a FrozenKv>,
}

/// Keys (after RoPE) and values of one sequence's frozen rows in each block the pass runs,
/// [frozen, kv_width] each. They do not change while training.
#[derive(Debug, Clone, Default)]
pub struct FrozenKv {
    pub blocks: Vec<(Vec<f32>, Vec<f32>)>,
}

impl FrozenKv {
    pub fn bytes(&self) -> usize {
        self.blocks
            .iter()
            .map(|(k, v)| (k.len() + v.len()) * std::mem::size_of::<f32>())
            .sum()
    }
}

/// The loss and input gradient from [`Decoder::suffix_loss`].
pub struct SuffixLoss {
    /// Mean cross-entropy over the label positions.
    pub loss: f32,
    /// The gradient of `loss` with respect to the input hidden state, [tokens, hidden],
    /// packed like the input.
    pub input_grad: Vec<f32>,
    /// For each sequence that has frozen rows and came without `cached`, their keys and
    /// values, for the caller to keep.
    pub frozen_kv: Vec<Option<FrozenKv>>,
    pub timings: SuffixTimings,
}

/// Seconds spent in each part of [`Decoder::suffix_loss`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SuffixTimings {
    pub blocks_forward: f64,
    /// The final norm, the LM head and the loss, forward and backward.
    pub head: f64,
    pub blocks_backward: f64,
}

/// The row of each token of the batch in the pass's [tokens, width] buffers. Each sequence
/// starts with `frozen` positions that come before every edited one, which the
/// intervention cannot change in any block. They need a forward pass, because later tokens
/// attend to them, but no gradient, and no pass at all when their keys and values are
/// cached. All frozen rows come first, then all live rows, so that the backward runs on
/// one contiguous block of rows.
struct Packing {
    sequences: Vec<SequenceRows>,
    /// The position of each row within its sequence.
    positions: Vec<usize>,
    tokens: usize,
    /// The first live row; rows before it are frozen.
    live_from: usize,
}

#[derive(Clone, Copy)]
struct SequenceRows {
    len: usize,
    frozen: usize,
    /// The frozen rows' keys and values come from a cache, and the rows are not in the
    /// buffers.
    cached: bool,
    /// Rows of positions 0..frozen start here (unless cached).
    frozen_start: usize,
    /// Rows of positions frozen..len start here.
    live_start: usize,
}

impl SequenceRows {
    /// The row of position `pos`, which must be in the buffers (see `first_held`).
    fn row(&self, pos: usize) -> usize {
        if pos < self.frozen {
            self.frozen_start + pos
        } else {
            self.live_start + pos - self.frozen
        }
    }

    /// Returns the first position whose row is in the buffers.
    fn first_held(&self) -> usize {
        if self.cached {
            self.frozen
        } else {
            0
        }
    }

    fn live_len(&self) -> usize {
        self.len - self.frozen
    }
}

impl Packing {
    fn new(sequences: &[PackedSequence]) -> Self {
        let held_frozen = |s: &PackedSequence| {
            if s.cached.is_some() {
                0
            } else {
                s.frozen.min(s.len)
            }
        };
        let live_from: usize = sequences.iter().map(held_frozen).sum();
        let mut rows = Vec::with_capacity(sequences.len());
        let (mut frozen_start, mut live_start) = (0, live_from);
        for s in sequences {
            let frozen = s.frozen.min(s.len);
            rows.push(SequenceRows {
                len: s.len,
                frozen,
                cached: s.cached.is_some(),
                frozen_start,
                live_start,
            });
            frozen_start += held_frozen(s);
            live_start += s.len - frozen;
        }
        let tokens = live_start;
        let mut positions = vec![0; tokens];
        for seq in &rows {
            for pos in seq.first_held()..seq.len {
                positions[seq.row(pos)] = pos;
            }
        }
        Self {
            sequences: rows,
            positions,
            tokens,
            live_from,
        }
    }

    fn live_rows(&self) -> usize {
        self.tokens - self.live_from
    }

    /// Offset of each sequence's saved attention probabilities: [heads, live_len, len] each,
    /// the live queries' rows (the backward needs no others).
    fn prob_offsets(&self, heads: usize) -> (Vec<usize>, usize) {
        let mut offsets = Vec::with_capacity(self.sequences.len());
        let mut total = 0;
        for seq in &self.sequences {
            offsets.push(total);
            total += heads * seq.live_len() * seq.len;
        }
        (offsets, total)
    }
}

/// A read lock on a tensor's f32 host memory. Weights are contiguous f32 on the CPU when
/// [`Decoder::supports_suffix_pass`] holds.
struct HostSlice<'a> {
    storage: candle_core::StorageRef<'a>,
    start: usize,
    len: usize,
}

impl<'a> HostSlice<'a> {
    fn new(tensor: &'a Tensor) -> Result<Self> {
        let (storage, layout) = tensor.storage_and_layout();
        if !layout.is_contiguous() {
            return Err(unsupported("a weight is not contiguous in memory"));
        }
        let start = layout.start_offset();
        let len = tensor.elem_count();
        Ok(Self {
            storage,
            start,
            len,
        })
    }

    fn get(&self) -> Result<&[f32]> {
        match &*self.storage {
            Storage::Cpu(cpu) => Ok(&cpu.as_slice::<f32>()?[self.start..self.start + self.len]),
            _ => Err(unsupported("weights are not in CPU memory")),
        }
    }
}

fn unsupported(what: &str) -> ModelError {
    ModelError::Candle(candle_core::Error::Msg(format!(
        "the CPU training pass cannot run: {what}"
    )))
}

/// A raw pointer that parallel tasks write through, each to rows or columns no other task
/// touches.
#[derive(Clone, Copy)]
struct SharedMut(*mut f32);

// SAFETY: every use writes disjoint regions from different tasks (see each call site).
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

impl SharedMut {
    /// Returns the pointer. A method rather than the field, so that closures capture the
    /// whole (Send) wrapper rather than the bare pointer.
    fn ptr(self) -> *mut f32 {
        self.0
    }
}

/// A matrix operand: element (i, j) lives at `ptr[i * row_stride + j * col_stride]`.
#[derive(Clone, Copy)]
struct View {
    ptr: *const f32,
    row_stride: isize,
    col_stride: isize,
}

impl View {
    fn rows(data: &[f32], width: usize) -> Self {
        Self::strided(data.as_ptr(), width, 1)
    }

    /// Views a row-major [.., width] matrix as its transpose.
    fn transposed(data: &[f32], width: usize) -> Self {
        Self::strided(data.as_ptr(), 1, width)
    }

    fn strided(ptr: *const f32, row_stride: usize, col_stride: usize) -> Self {
        Self {
            ptr,
            row_stride: row_stride as isize,
            col_stride: col_stride as isize,
        }
    }
}

/// `dst[m, n] = (accumulate ? dst : 0) + scale * lhs[m, k] @ rhs[k, n]`, `dst` row-major
/// with row stride `dst_stride`.
///
/// SAFETY: the views and `dst` must cover the m x k, k x n and m x n elements they
/// describe, and no other thread may write `dst`'s elements meanwhile.
#[allow(clippy::too_many_arguments)]
unsafe fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    dst_stride: usize,
    accumulate: bool,
    lhs: View,
    rhs: View,
    scale: f32,
    parallelism: Parallelism,
) {
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_stride as isize,
            accumulate,
            lhs.ptr,
            lhs.col_stride,
            lhs.row_stride,
            rhs.ptr,
            rhs.col_stride,
            rhs.row_stride,
            1.0,
            scale,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Parallelism for one large product: every thread of the current rayon pool.
fn all_threads() -> Parallelism {
    match rayon::current_num_threads() {
        0 | 1 => Parallelism::None,
        n => Parallelism::Rayon(n),
    }
}

/// `x [rows, in] @ w^T` for a weight `w` stored [out, in]: [rows, out].
fn linear(x: &[f32], rows: usize, w: &[f32], out: usize) -> Vec<f32> {
    let inner = w.len() / out;
    // SAFETY: w is [out, inner], so its transposed view covers inner x out elements.
    unsafe { times_weight(x, rows, View::transposed(w, inner), inner, out) }
}

/// `x [rows, in] @ w_t` for a weight stored transposed, [in, out]: [rows, out].
fn linear_in_out(x: &[f32], rows: usize, w_t: &[f32], out: usize) -> Vec<f32> {
    let inner = w_t.len() / out;
    // SAFETY: w_t is [inner, out].
    unsafe { times_weight(x, rows, View::rows(w_t, out), inner, out) }
}

/// `x [rows, in] @ w^T` from the transposed copy `w_t` [in, out] when there is one, else
/// from `w` as loaded, [out, in].
fn project(x: &[f32], rows: usize, w_t: Option<&[f32]>, w: &[f32], out: usize) -> Vec<f32> {
    match w_t {
        Some(w_t) => linear_in_out(x, rows, w_t, out),
        None => linear(x, rows, w, out),
    }
}

/// `x [rows, inner] @ weight [inner, out]`: [rows, out].
///
/// SAFETY: `weight` must cover the inner x out elements it describes.
unsafe fn times_weight(x: &[f32], rows: usize, weight: View, inner: usize, out: usize) -> Vec<f32> {
    debug_assert_eq!(x.len(), rows * inner);
    let mut y = vec![0.0; rows * out];
    // SAFETY: x is [rows, inner], y is [rows, out], and the caller vouches for weight.
    unsafe {
        matmul(
            (rows, out, inner),
            y.as_mut_ptr(),
            out,
            false,
            View::rows(x, inner),
            weight,
            1.0,
            all_threads(),
        );
    }
    y
}

/// Computes the input gradient of [`linear`]: `dst [rows, in] (+)= dy [rows, out] @ w [out, in]`.
fn linear_input_grad(
    dy: &[f32],
    rows: usize,
    w: &[f32],
    out: usize,
    dst: &mut [f32],
    accumulate: bool,
) {
    let inner = w.len() / out;
    debug_assert_eq!(dst.len(), rows * inner);
    // SAFETY: dy is [rows, out], w is [out, inner], dst is [rows, inner].
    unsafe {
        matmul(
            (rows, inner, out),
            dst.as_mut_ptr(),
            inner,
            accumulate,
            View::rows(dy, out),
            View::rows(w, inner),
            1.0,
            all_threads(),
        );
    }
}

fn add_bias(y: &mut [f32], bias: Option<&[f32]>) {
    if let Some(bias) = bias {
        y.par_chunks_mut(bias.len()).for_each(|row| {
            row.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
        });
    }
}

/// RMSNorm of each row: returns the normed rows and each row's 1 / rms.
fn rms_norm_rows(x: &[f32], weight: &[f32], eps: f32) -> (Vec<f32>, Vec<f32>) {
    let width = weight.len();
    let mut normed = vec![0.0; x.len()];
    let mut inv = vec![0.0; x.len() / width];
    normed
        .par_chunks_mut(width)
        .zip(inv.par_iter_mut())
        .zip(x.par_chunks(width))
        .for_each(|((out, inv), row)| {
            let mean_square = row.iter().map(|v| v * v).sum::<f32>() / width as f32;
            *inv = 1.0 / (mean_square + eps).sqrt();
            for ((o, v), w) in out.iter_mut().zip(row).zip(weight) {
                *o = v * *inv * w;
            }
        });
    (normed, inv)
}

/// Adds the input gradient of one RMSNorm row to `dx`: `dy` is the gradient of its output.
fn rms_norm_row_grad(dx: &mut [f32], x: &[f32], inv: f32, weight: &[f32], dy: &[f32]) {
    let width = weight.len() as f32;
    let dot: f32 = dy
        .iter()
        .zip(weight)
        .zip(x)
        .map(|((g, w), v)| g * w * v)
        .sum();
    let coeff = dot * inv * inv * inv / width;
    for (((d, g), w), v) in dx.iter_mut().zip(dy).zip(weight).zip(x) {
        *d += inv * g * w - coeff * v;
    }
}

/// [`rms_norm_row_grad`] for every row.
fn rms_norm_grad(dx: &mut [f32], x: &[f32], inv: &[f32], weight: &[f32], dy: &[f32]) {
    let width = weight.len();
    dx.par_chunks_mut(width)
        .zip(x.par_chunks(width))
        .zip(dy.par_chunks(width))
        .zip(inv.par_iter())
        .for_each(|(((dx, x), dy), &inv)| rms_norm_row_grad(dx, x, inv, weight, dy));
}

/// Rotary position embedding (Hugging Face's rotate-half layout) of every head of every
/// row, in place. `inverse` applies the transposed rotation, which is also its backward.
fn rope_rows(
    x: &mut [f32],
    width: usize,
    head_dim: usize,
    positions: &[usize],
    tables: (&[f32], &[f32]),
    inverse: bool,
) {
    let half = head_dim / 2;
    let (cos, sin) = tables;
    let sign = if inverse { -1.0 } else { 1.0 };
    x.par_chunks_mut(width)
        .zip(positions.par_iter())
        .for_each(|(row, &pos)| {
            let (cos, sin) = (
                &cos[pos * half..(pos + 1) * half],
                &sin[pos * half..(pos + 1) * half],
            );
            for head in row.chunks_mut(head_dim) {
                let (a, b) = head.split_at_mut(half);
                for i in 0..half {
                    let (x1, x2) = (a[i], b[i]);
                    let s = sign * sin[i];
                    a[i] = x1 * cos[i] - x2 * s;
                    b[i] = x2 * cos[i] + x1 * s;
                }
            }
        });
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Shapes of one block's attention.
#[derive(Clone, Copy)]
struct Heads {
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
}

impl Heads {
    fn q_width(&self) -> usize {
        self.heads * self.head_dim
    }

    fn kv_width(&self) -> usize {
        self.kv_heads * self.head_dim
    }

    fn group(&self) -> usize {
        self.heads / self.kv_heads
    }

    fn scale(&self) -> f32 {
        1.0 / (self.head_dim as f32).sqrt()
    }
}

/// Writes `local` ([len - from, width], in position order) into columns
/// `column..column + width` of the rows of `seq` in a [tokens, stride] buffer, where row
/// `r` of the buffer is token row `r + row_offset`.
///
/// SAFETY: `dst` must cover those rows, and no other thread may write those elements.
unsafe fn scatter_rows(
    dst: SharedMut,
    stride: usize,
    row_offset: usize,
    column: usize,
    local: &[f32],
    seq: &SequenceRows,
    from: usize,
) {
    let width = local.len() / (seq.len - from).max(1);
    for (i, pos) in (from..seq.len).enumerate() {
        let start = (seq.row(pos) - row_offset) * stride + column;
        unsafe {
            std::ptr::copy_nonoverlapping(
                local.as_ptr().add(i * width),
                dst.ptr().add(start),
                width,
            );
        }
    }
}

/// Causal attention within each sequence. Returns the context [tokens, q_width] and the
/// attention probabilities, [heads, len, len] per sequence.
fn attention_forward(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    packing: &Packing,
    shape: Heads,
    cached: &[Option<(&[f32], &[f32])>],
) -> (Vec<f32>, Vec<f32>) {
    let (qw, kw, hd) = (shape.q_width(), shape.kv_width(), shape.head_dim);
    let (prob_offsets, prob_total) = packing.prob_offsets(shape.heads);
    let mut context = vec![0.0; packing.tokens * qw];
    let mut probs = vec![0.0; prob_total];
    let context_ptr = SharedMut(context.as_mut_ptr());
    let probs_ptr = SharedMut(probs.as_mut_ptr());

    let tasks: Vec<(usize, usize)> = (0..packing.sequences.len())
        .flat_map(|s| (0..shape.heads).map(move |h| (s, h)))
        .collect();
    tasks.par_iter().for_each(|&(s, h)| {
        let seq = &packing.sequences[s];
        let (len, first) = (seq.len, seq.first_held());
        let queries = len - first;
        let kv = h / shape.group();
        let q_local = gather_rows(q, qw, 0, h * hd, hd, seq, first);
        let (k_local, v_local) = sequence_keys_values((k, v), kw, kv, seq, cached[s], hd);

        // Scores and probabilities of the queries held, [queries, len]; query i is at
        // position first + i and attends to the keys up to it.
        let mut p = vec![0.0; queries * len];
        let mut context_local = vec![0.0; queries * hd];
        // SAFETY: the local buffers are sized for these products, and task (s, h) writes
        // only its own block of the probabilities and head h's columns of sequence s's rows
        // of the context.
        unsafe {
            matmul(
                (queries, len, hd),
                p.as_mut_ptr(),
                len,
                false,
                View::rows(&q_local, hd),
                View::transposed(&k_local, hd),
                shape.scale(),
                Parallelism::None,
            );
            for (i, row) in p.chunks_mut(len).enumerate() {
                let (visible, future) = row.split_at_mut(first + i + 1);
                let max = visible.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0.0;
                for s in visible.iter_mut() {
                    *s = (*s - max).exp();
                    sum += *s;
                }
                visible.iter_mut().for_each(|s| *s /= sum);
                future.fill(0.0);
            }
            matmul(
                (queries, hd, len),
                context_local.as_mut_ptr(),
                hd,
                false,
                View::rows(&p, len),
                View::rows(&v_local, hd),
                1.0,
                Parallelism::None,
            );
            scatter_rows(context_ptr, qw, 0, h * hd, &context_local, seq, first);

            // Keep the live queries' rows for the backward.
            let live = seq.live_len() * len;
            let kept = &p[(seq.frozen - first) * len..];
            std::ptr::copy_nonoverlapping(
                kept.as_ptr(),
                probs_ptr.ptr().add(prob_offsets[s] + h * live),
                live,
            );
        }
    });
    (context, probs)
}

/// Runs the backward of [`attention_forward`] for the live rows. Returns the gradients of
/// the (rotated) queries and keys and of the values, [live rows, width] each, given the live
/// rows' context gradient. Frozen rows get none because the intervention cannot change them.
fn attention_backward(
    saved: &Saved,
    d_context: &[f32],
    packing: &Packing,
    shape: Heads,
    cached: &[Option<(&[f32], &[f32])>],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (qw, kw, hd) = (shape.q_width(), shape.kv_width(), shape.head_dim);
    let (prob_offsets, _) = packing.prob_offsets(shape.heads);
    let live = packing.live_rows();
    let offset = packing.live_from;
    let mut dq = vec![0.0; live * qw];
    let mut dk = vec![0.0; live * kw];
    let mut dv = vec![0.0; live * kw];
    let (dq_ptr, dk_ptr, dv_ptr) = (
        SharedMut(dq.as_mut_ptr()),
        SharedMut(dk.as_mut_ptr()),
        SharedMut(dv.as_mut_ptr()),
    );
    let (q, k, v, probs) = (&saved.q, &saved.k, &saved.v, &saved.probs);

    let tasks: Vec<(usize, usize)> = (0..packing.sequences.len())
        .filter(|&s| packing.sequences[s].live_len() > 0)
        .flat_map(|s| (0..shape.kv_heads).map(move |g| (s, g)))
        .collect();
    tasks.par_iter().for_each(|&(s, kv)| {
        let seq = &packing.sequences[s];
        let (len, f) = (seq.len, seq.frozen);
        let n = seq.live_len();
        let (k_local, v_local) = sequence_keys_values((k, v), kw, kv, seq, cached[s], hd);
        let mut dk_local = vec![0.0; n * hd];
        let mut dv_local = vec![0.0; n * hd];
        let mut d_scores = vec![0.0; n * len];
        for h in kv * shape.group()..(kv + 1) * shape.group() {
            // The live queries' probabilities, [n, len].
            let p = &probs[prob_offsets[s] + h * n * len..][..n * len];
            let q_live = gather_rows(q, qw, 0, h * hd, hd, seq, f);
            let d_ctx = gather_rows(d_context, qw, offset, h * hd, hd, seq, f);
            let mut dq_local = vec![0.0; n * hd];
            // SAFETY: the local buffers are sized for these products, and task (s, kv)
            // writes only sequence s's live rows of dq's columns for the query heads of
            // group kv, and of dk's and dv's columns for head kv.
            unsafe {
                matmul(
                    (n, len, hd),
                    d_scores.as_mut_ptr(),
                    len,
                    false,
                    View::rows(&d_ctx, hd),
                    View::transposed(&v_local, hd),
                    1.0,
                    Parallelism::None,
                );
                // Softmax backward, with the score scale folded in.
                for (row_p, row_d) in p.chunks(len).zip(d_scores.chunks_mut(len)) {
                    let dot: f32 = row_p.iter().zip(row_d.iter()).map(|(a, b)| a * b).sum();
                    for (d, &pv) in row_d.iter_mut().zip(row_p) {
                        *d = pv * (*d - dot) * shape.scale();
                    }
                }
                matmul(
                    (n, hd, len),
                    dq_local.as_mut_ptr(),
                    hd,
                    false,
                    View::rows(&d_scores, len),
                    View::rows(&k_local, hd),
                    1.0,
                    Parallelism::None,
                );
                // Keys and values of the live positions: columns f.. of the scores.
                matmul(
                    (n, hd, n),
                    dk_local.as_mut_ptr(),
                    hd,
                    true,
                    View::strided(d_scores.as_ptr().add(f), 1, len),
                    View::rows(&q_live, hd),
                    1.0,
                    Parallelism::None,
                );
                matmul(
                    (n, hd, n),
                    dv_local.as_mut_ptr(),
                    hd,
                    true,
                    View::strided(p.as_ptr().add(f), 1, len),
                    View::rows(&d_ctx, hd),
                    1.0,
                    Parallelism::None,
                );
                scatter_rows(dq_ptr, qw, offset, h * hd, &dq_local, seq, f);
            }
        }
        // SAFETY: as above.
        unsafe {
            scatter_rows(dk_ptr, kw, offset, kv * hd, &dk_local, seq, f);
            scatter_rows(dv_ptr, kw, offset, kv * hd, &dv_local, seq, f);
        }
    });
    (dq, dk, dv)
}

/// Gathers kv head `kv`'s keys and values for every position of `seq`, [len, head_dim]
/// each, from the [tokens, kv_width] buffers and, for cached frozen rows, from `cached`.
fn sequence_keys_values(
    (k, v): (&[f32], &[f32]),
    kv_width: usize,
    kv: usize,
    seq: &SequenceRows,
    cached: Option<(&[f32], &[f32])>,
    head_dim: usize,
) -> (Vec<f32>, Vec<f32>) {
    let column = kv * head_dim;
    (
        sequence_heads(
            k,
            kv_width,
            column,
            seq,
            cached.map(|(k, _)| (k, column)),
            head_dim,
        ),
        sequence_heads(
            v,
            kv_width,
            column,
            seq,
            cached.map(|(_, v)| (v, column)),
            head_dim,
        ),
    )
}

/// Gathers one kv head's keys or values for every position of `seq`, [len, head_dim]: the frozen
/// positions from `cached` ([frozen, kv_width]) when the sequence has them there, the
/// rest from the [tokens, stride] buffer `data` at column `column`.
fn sequence_heads(
    data: &[f32],
    stride: usize,
    column: usize,
    seq: &SequenceRows,
    cached: Option<(&[f32], usize)>,
    head_dim: usize,
) -> Vec<f32> {
    match cached {
        Some((frozen, cached_column)) if seq.cached => {
            let kv_width = frozen.len() / seq.frozen.max(1);
            let mut out = Vec::with_capacity(seq.len * head_dim);
            for row in frozen.chunks(kv_width).take(seq.frozen) {
                out.extend_from_slice(&row[cached_column..cached_column + head_dim]);
            }
            out.extend(gather_rows(
                data, stride, 0, column, head_dim, seq, seq.frozen,
            ));
            out
        }
        _ => gather_rows(data, stride, 0, column, head_dim, seq, 0),
    }
}

/// Copies columns `column..column + width` of the rows of `seq`, in position order from
/// position `from` on, out of a [tokens, stride] buffer whose row `r` is token row
/// `r + row_offset`: [len - from, width].
fn gather_rows(
    data: &[f32],
    stride: usize,
    row_offset: usize,
    column: usize,
    width: usize,
    seq: &SequenceRows,
    from: usize,
) -> Vec<f32> {
    let mut out = Vec::with_capacity((seq.len - from) * width);
    for pos in from..seq.len {
        let start = (seq.row(pos) - row_offset) * stride + column;
        out.extend_from_slice(&data[start..start + width]);
    }
    out
}

/// The activations one block's backward needs from its forward (its input is kept by the caller).
struct Saved {
    inv_input: Vec<f32>,
    /// Queries and keys after RoPE.
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    probs: Vec<f32>,
    /// The residual stream after attention.
    mid: Vec<f32>,
    inv_mid: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
}

/// Read locks on one block's weights.
struct BlockWeights<'a> {
    input_norm: HostSlice<'a>,
    post_norm: HostSlice<'a>,
    q: HostSlice<'a>,
    k: HostSlice<'a>,
    v: HostSlice<'a>,
    o: HostSlice<'a>,
    q_bias: Option<HostSlice<'a>>,
    k_bias: Option<HostSlice<'a>>,
    v_bias: Option<HostSlice<'a>>,
    gate: HostSlice<'a>,
    up: HostSlice<'a>,
    down: HostSlice<'a>,
}

impl<'a> BlockWeights<'a> {
    fn new(block: &'a Block) -> Result<Self> {
        let a = &block.attention;
        let optional = |t: &'a Option<Tensor>| t.as_ref().map(HostSlice::new).transpose();
        Ok(Self {
            input_norm: HostSlice::new(&block.input_norm)?,
            post_norm: HostSlice::new(&block.post_attention_norm)?,
            q: HostSlice::new(&a.q_proj)?,
            k: HostSlice::new(&a.k_proj)?,
            v: HostSlice::new(&a.v_proj)?,
            o: HostSlice::new(&a.o_proj)?,
            q_bias: optional(&a.q_bias)?,
            k_bias: optional(&a.k_bias)?,
            v_bias: optional(&a.v_bias)?,
            gate: HostSlice::new(&block.mlp.gate_proj)?,
            up: HostSlice::new(&block.mlp.up_proj)?,
            down: HostSlice::new(&block.mlp.down_proj)?,
        })
    }
}

/// Transposed copies, [in, out], of one block's attention and down projections for the
/// forward products. gemm repacks a weight stored [out, in] on every forward call, but
/// reads one stored [in, out] as it is. With SmolLM2-135M's shapes and 357 rows, this
/// makes the down, k and v products about 1.8 times faster and q and o 1.25 times. Gate
/// and up gained about 3%, too little for 7 MB per block, so they stay as loaded. The
/// backward already multiplies the loaded weights in the fast orientation.
pub(super) struct ForwardWeights {
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    o: Vec<f32>,
    down: Vec<f32>,
}

impl ForwardWeights {
    fn new(block: &Block) -> Result<Self> {
        let transposed = |w: &Tensor| -> Result<Vec<f32>> {
            Ok(w.t()?.contiguous()?.flatten_all()?.to_vec1::<f32>()?)
        };
        let a = &block.attention;
        Ok(Self {
            q: transposed(&a.q_proj)?,
            k: transposed(&a.k_proj)?,
            v: transposed(&a.v_proj)?,
            o: transposed(&a.o_proj)?,
            down: transposed(&block.mlp.down_proj)?,
        })
    }
}

fn optional_slice<'a>(slice: &'a Option<HostSlice<'_>>) -> Result<Option<&'a [f32]>> {
    slice.as_ref().map(HostSlice::get).transpose()
}

impl Decoder {
    /// Returns whether [`Decoder::suffix_loss`] can run on this model for sequences up to
    /// `longest` tokens. It needs f32 weights on the CPU, no per-head query/key norms, and no
    /// sliding window shorter than the sequences.
    pub fn supports_suffix_pass(&self, longest: usize) -> bool {
        self.device.is_cpu()
            && self.embed_tokens.dtype() == DType::F32
            && self.blocks.iter().all(|b| {
                b.attention.q_norm.is_none()
                    && b.attention.k_norm.is_none()
                    && b.input_norm.dtype() == DType::F32
                    && b.attention.q_proj.dtype() == DType::F32
            })
            && self.config.sliding_window.is_none_or(|w| longest <= w)
            && longest <= self.max_positions()
    }

    /// Runs blocks `first..` on `input`, then the final norm and the head at `label_rows`.
    /// `input` is the input of block `first`, [tokens, hidden], with the rows of `sequences`
    /// end to end. Returns the mean cross-entropy against `label_ids` and its gradient with
    /// respect to `input`. That gradient is zero on each sequence's frozen rows, which the
    /// backward skips. `first` may equal the number of blocks (the
    /// intervention sits on the last one).
    pub fn suffix_loss(
        &self,
        input: &[f32],
        sequences: &[PackedSequence],
        first: usize,
        label_rows: &[usize],
        label_ids: &[u32],
    ) -> Result<SuffixLoss> {
        let hidden = self.config.hidden_size;
        let packing = Packing::new(sequences);
        let longest = sequences.iter().map(|s| s.len).max().unwrap_or(0);
        if !self.supports_suffix_pass(longest) {
            return Err(unsupported("this model or device needs the general pass"));
        }
        if input.len() != packing.tokens * hidden || first > self.blocks.len() {
            return Err(unsupported("the input does not match the packed sequences"));
        }
        if label_rows.is_empty()
            || label_rows.len() != label_ids.len()
            || label_rows.iter().any(|&r| r >= packing.tokens)
        {
            return Err(unsupported("the labels do not match their rows"));
        }
        let blocks = &self.blocks[first..];
        for (seq, given) in packing.sequences.iter().zip(sequences) {
            let fits = |kv: &FrozenKv| {
                kv.blocks.len() == blocks.len()
                    && kv.blocks.iter().zip(blocks).all(|((k, v), block)| {
                        let width = heads_of(block).kv_width() * seq.frozen;
                        k.len() == width && v.len() == width
                    })
            };
            if given.cached.is_some_and(|kv| !fits(kv)) {
                return Err(unsupported(
                    "cached keys and values do not match the sequence",
                ));
            }
        }

        // The caller's rows are the sequences end to end; the pass puts frozen rows first.
        let mut row_of_input = Vec::with_capacity(packing.tokens);
        for seq in &packing.sequences {
            row_of_input.extend((seq.first_held()..seq.len).map(|pos| seq.row(pos)));
        }
        let mut x = vec![0.0; input.len()];
        for (from, &to) in row_of_input.iter().enumerate() {
            x[to * hidden..(to + 1) * hidden]
                .copy_from_slice(&input[from * hidden..(from + 1) * hidden]);
        }
        let label_rows: Vec<usize> = label_rows.iter().map(|&r| row_of_input[r]).collect();

        let cos = HostSlice::new(&self.rope.cos)?;
        let sin = HostSlice::new(&self.rope.sin)?;
        let tables = (cos.get()?, sin.get()?);
        let eps = self.config.rms_norm_eps as f32;
        let cached_in = |b: usize| -> Vec<Option<(&[f32], &[f32])>> {
            sequences
                .iter()
                .map(|s| {
                    s.cached
                        .map(|kv| (kv.blocks[b].0.as_slice(), kv.blocks[b].1.as_slice()))
                })
                .collect()
        };

        // Forward, keeping each block's input and what its backward needs.
        let mut timings = SuffixTimings::default();
        let started = Instant::now();
        let mut inputs = vec![x];
        let mut saved = Vec::new();
        let mut frozen_kv: Vec<Option<FrozenKv>> = packing
            .sequences
            .iter()
            .map(|seq| (!seq.cached && seq.frozen > 0).then(FrozenKv::default))
            .collect();
        for (b, block) in blocks.iter().enumerate() {
            let x = inputs.last().expect("the input is first");
            let forward = self.forward_weights(first + b)?;
            let (y, s) = block_forward(
                block,
                Some(forward),
                x,
                &packing,
                tables,
                eps,
                &cached_in(b),
            )?;
            for (kv, seq) in frozen_kv.iter_mut().zip(&packing.sequences) {
                if let Some(kv) = kv {
                    let width = heads_of(block).kv_width();
                    let rows = seq.frozen_start * width..(seq.frozen_start + seq.frozen) * width;
                    kv.blocks
                        .push((s.k[rows.clone()].to_vec(), s.v[rows].to_vec()));
                }
            }
            inputs.push(y);
            saved.push(s);
        }
        timings.blocks_forward = started.elapsed().as_secs_f64();

        let started = Instant::now();
        let top = inputs.pop().expect("the input is first");
        let (loss, grad) = self.head_loss(&top, &label_rows, label_ids, eps)?;
        timings.head = started.elapsed().as_secs_f64();

        // Backward over the live rows only.
        let started = Instant::now();
        let mut grad = grad[packing.live_from * hidden..].to_vec();
        for (b, (block, (x, s))) in blocks
            .iter()
            .zip(inputs.iter().zip(&saved))
            .enumerate()
            .rev()
        {
            grad = block_backward(block, x, s, grad, &packing, tables, &cached_in(b))?;
        }
        timings.blocks_backward = started.elapsed().as_secs_f64();

        let mut input_grad = vec![0.0; input.len()];
        for (caller_row, &row) in row_of_input.iter().enumerate() {
            if row >= packing.live_from {
                let live_row = row - packing.live_from;
                input_grad[caller_row * hidden..(caller_row + 1) * hidden]
                    .copy_from_slice(&grad[live_row * hidden..(live_row + 1) * hidden]);
            }
        }
        Ok(SuffixLoss {
            loss,
            input_grad,
            frozen_kv,
            timings,
        })
    }

    /// Runs blocks `0..=layer` with this pass's packed forward and returns block `layer`'s
    /// output as [`Decoder::hidden_after`] does, [batch, seq, hidden], with zeros at padding.
    /// Returns `None` when candle's forward must run instead: another device or dtype, or a
    /// mask that does not pad on the right.
    pub(super) fn packed_hidden_after(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        layer: usize,
    ) -> Result<Option<Tensor>> {
        let (batch, seq) = input_ids.dims2()?;
        if !self.supports_suffix_pass(seq) || layer >= self.blocks.len() {
            return Ok(None);
        }
        let lengths = match attention_mask {
            Some(mask) => match right_padded_lengths(mask)? {
                Some(lengths) => lengths,
                None => return Ok(None),
            },
            None => vec![seq; batch],
        };

        // Embed the real tokens, end to end.
        let hidden = self.config.hidden_size;
        let vocab = self.config.vocab_size;
        let embedding = HostSlice::new(&self.embed_tokens)?;
        let embedding = embedding.get()?;
        let ids = input_ids.to_vec2::<u32>()?;
        let mut x = Vec::with_capacity(lengths.iter().sum::<usize>() * hidden);
        for (row, &len) in ids.iter().zip(&lengths) {
            for &id in &row[..len] {
                let id = id as usize;
                if id >= vocab {
                    return Err(unsupported(&format!(
                        "token id {id} is outside the vocabulary of {vocab}"
                    )));
                }
                x.extend_from_slice(&embedding[id * hidden..(id + 1) * hidden]);
            }
        }

        let sequences: Vec<PackedSequence> = lengths
            .iter()
            .map(|&len| PackedSequence {
                len,
                frozen: 0,
                cached: None,
            })
            .collect();
        let packing = Packing::new(&sequences);
        let cos = HostSlice::new(&self.rope.cos)?;
        let sin = HostSlice::new(&self.rope.sin)?;
        let tables = (cos.get()?, sin.get()?);
        let eps = self.config.rms_norm_eps as f32;
        let no_cache = vec![None; batch];
        // The blocks below an intervention run once per example while a prefix cache fills,
        // so they multiply by the weights as loaded rather than keep transposed copies.
        for block in &self.blocks[..=layer] {
            x = block_forward(block, None, &x, &packing, tables, eps, &no_cache)?.0;
        }

        let mut padded = vec![0.0; batch * seq * hidden];
        let mut from = 0;
        for (row, &len) in lengths.iter().enumerate() {
            padded[row * seq * hidden..(row * seq + len) * hidden]
                .copy_from_slice(&x[from * hidden..(from + len) * hidden]);
            from += len;
        }
        Ok(Some(Tensor::from_vec(
            padded,
            (batch, seq, hidden),
            &self.device,
        )?))
    }

    /// Returns block `index`'s transposed projections, building them on the first call. So
    /// only the blocks this pass runs get them.
    fn forward_weights(&self, index: usize) -> Result<&ForwardWeights> {
        let cell = &self.forward_weights[index];
        if let Some(weights) = cell.get() {
            return Ok(weights);
        }
        let built = ForwardWeights::new(&self.blocks[index])?;
        Ok(cell.get_or_init(|| built))
    }

    /// Runs the final norm and the LM head at `label_rows` of `top` ([tokens, hidden]) and
    /// returns the mean cross-entropy and its gradient with respect to `top`.
    fn head_loss(
        &self,
        top: &[f32],
        label_rows: &[usize],
        label_ids: &[u32],
        eps: f32,
    ) -> Result<(f32, Vec<f32>)> {
        let hidden = self.config.hidden_size;
        let vocab = self.config.vocab_size;
        let norm = HostSlice::new(&self.norm)?;
        let norm = norm.get()?;
        let head = HostSlice::new(&self.lm_head)?;
        let head = head.get()?;
        let count = label_rows.len() as f32;

        let mut grad = vec![0.0; top.len()];
        let mut loss_sum = 0.0f64;
        for (rows, ids) in label_rows
            .chunks(HEAD_CHUNK_ROWS)
            .zip(label_ids.chunks(HEAD_CHUNK_ROWS))
        {
            let picked: Vec<f32> = rows
                .iter()
                .flat_map(|&r| top[r * hidden..(r + 1) * hidden].iter().copied())
                .collect();
            let (normed, inv) = rms_norm_rows(&picked, norm, eps);
            let mut logits = linear(&normed, rows.len(), head, vocab);

            // Turn each row of logits into d loss / d logits: (softmax - one-hot) / count.
            let row_losses: Vec<f64> = logits
                .par_chunks_mut(vocab)
                .zip(ids.par_iter())
                .map(|(row, &id)| {
                    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let label_logit = row[id as usize];
                    // One exp per logit: the vocabulary is large. The sum is kept in f64
                    // because an f32 running sum over ~50k terms drops the small ones and
                    // lowered the loss by about 1e-4.
                    let mut sum = 0.0f64;
                    for l in row.iter_mut() {
                        *l = (*l - max).exp();
                        sum += f64::from(*l);
                    }
                    let loss = f64::from(max) + sum.ln() - f64::from(label_logit);
                    let factor = (1.0 / (sum * f64::from(count))) as f32;
                    row.iter_mut().for_each(|e| *e *= factor);
                    row[id as usize] -= 1.0 / count;
                    loss
                })
                .collect();
            loss_sum += row_losses.iter().sum::<f64>();

            let mut d_normed = vec![0.0; normed.len()];
            linear_input_grad(&logits, rows.len(), head, vocab, &mut d_normed, false);
            for (i, &r) in rows.iter().enumerate() {
                let span = i * hidden..(i + 1) * hidden;
                rms_norm_row_grad(
                    &mut grad[r * hidden..(r + 1) * hidden],
                    &picked[span.clone()],
                    inv[i],
                    norm,
                    &d_normed[span],
                );
            }
        }
        Ok(((loss_sum / f64::from(count)) as f32, grad))
    }
}

/// Returns each row's token count when `mask` ([batch, seq], nonzero for tokens) pads on
/// the right only, else `None`.
fn right_padded_lengths(mask: &Tensor) -> Result<Option<Vec<usize>>> {
    let rows = mask.to_dtype(DType::F32)?.to_vec2::<f32>()?;
    let mut lengths = Vec::with_capacity(rows.len());
    for row in &rows {
        let len = row.iter().take_while(|&&m| m != 0.0).count();
        if row[len..].iter().any(|&m| m != 0.0) {
            return Ok(None);
        }
        lengths.push(len);
    }
    Ok(Some(lengths))
}

fn heads_of(block: &Block) -> Heads {
    Heads {
        heads: block.attention.num_heads,
        kv_heads: block.attention.num_kv_heads,
        head_dim: block.attention.head_dim,
    }
}

fn block_forward(
    block: &Block,
    forward: Option<&ForwardWeights>,
    x: &[f32],
    packing: &Packing,
    tables: (&[f32], &[f32]),
    eps: f32,
    cached: &[Option<(&[f32], &[f32])>],
) -> Result<(Vec<f32>, Saved)> {
    let w = BlockWeights::new(block)?;
    let shape = heads_of(block);
    let rows = packing.tokens;
    let by_weight =
        |x: &[f32], transposed: fn(&ForwardWeights) -> &Vec<f32>, loaded: &HostSlice, out| {
            Ok::<_, ModelError>(project(
                x,
                rows,
                forward.map(transposed).map(Vec::as_slice),
                loaded.get()?,
                out,
            ))
        };

    // Attention.
    let (normed, inv_input) = rms_norm_rows(x, w.input_norm.get()?, eps);
    let mut q = by_weight(&normed, |f| &f.q, &w.q, shape.q_width())?;
    let mut k = by_weight(&normed, |f| &f.k, &w.k, shape.kv_width())?;
    let mut v = by_weight(&normed, |f| &f.v, &w.v, shape.kv_width())?;
    add_bias(&mut q, optional_slice(&w.q_bias)?);
    add_bias(&mut k, optional_slice(&w.k_bias)?);
    add_bias(&mut v, optional_slice(&w.v_bias)?);
    rope_rows(
        &mut q,
        shape.q_width(),
        shape.head_dim,
        &packing.positions,
        tables,
        false,
    );
    rope_rows(
        &mut k,
        shape.kv_width(),
        shape.head_dim,
        &packing.positions,
        tables,
        false,
    );

    let (context, probs) = attention_forward(&q, &k, &v, packing, shape, cached);
    let hidden = x.len() / rows.max(1);
    let mut mid = by_weight(&context, |f| &f.o, &w.o, hidden)?;
    mid.par_iter_mut()
        .zip(x.par_iter())
        .for_each(|(m, x)| *m += x);

    // MLP: down(silu(gate) * up).
    let (normed, inv_mid) = rms_norm_rows(&mid, w.post_norm.get()?, eps);
    let inner = w.gate.get()?.len() / hidden;
    let gate = linear(&normed, rows, w.gate.get()?, inner);
    let up = linear(&normed, rows, w.up.get()?, inner);
    let activated: Vec<f32> = gate
        .par_iter()
        .zip(up.par_iter())
        .map(|(&g, &u)| g * sigmoid(g) * u)
        .collect();
    let mut out = by_weight(&activated, |f| &f.down, &w.down, hidden)?;
    out.par_iter_mut()
        .zip(mid.par_iter())
        .for_each(|(o, m)| *o += m);

    let saved = Saved {
        inv_input,
        q,
        k,
        v,
        probs,
        mid,
        inv_mid,
        gate,
        up,
    };
    Ok((out, saved))
}

/// Computes the input gradient of one block from the gradient of its output `d_out`.
fn block_backward(
    block: &Block,
    x: &[f32],
    saved: &Saved,
    d_out: Vec<f32>,
    packing: &Packing,
    tables: (&[f32], &[f32]),
    cached: &[Option<(&[f32], &[f32])>],
) -> Result<Vec<f32>> {
    let w = BlockWeights::new(block)?;
    let shape = heads_of(block);
    let hidden = x.len() / packing.tokens.max(1);
    let inner = saved.gate.len() / packing.tokens.max(1);

    // Everything below works on the live rows, the last `rows` of each buffer.
    let rows = packing.live_rows();
    let from = packing.live_from;
    let (gate, up) = (&saved.gate[from * inner..], &saved.up[from * inner..]);
    let (mid, inv_mid) = (&saved.mid[from * hidden..], &saved.inv_mid[from..]);
    let (x, inv_input) = (&x[from * hidden..], &saved.inv_input[from..]);
    let positions = &packing.positions[from..];

    // MLP: d activated, then through silu(gate) * up to the gate and up projections.
    let mut d_gate = vec![0.0; rows * inner];
    linear_input_grad(&d_out, rows, w.down.get()?, hidden, &mut d_gate, false);
    let mut d_up = vec![0.0; rows * inner];
    d_gate
        .par_iter_mut()
        .zip(d_up.par_iter_mut())
        .zip(gate.par_iter().zip(up.par_iter()))
        .for_each(|((dg, du), (&g, &u))| {
            let s = sigmoid(g);
            let d_act = *dg;
            *du = d_act * g * s;
            *dg = d_act * u * s * (1.0 + g * (1.0 - s));
        });
    let mut d_normed = vec![0.0; rows * hidden];
    linear_input_grad(&d_gate, rows, w.gate.get()?, inner, &mut d_normed, false);
    linear_input_grad(&d_up, rows, w.up.get()?, inner, &mut d_normed, true);
    let mut d_mid = d_out;
    rms_norm_grad(&mut d_mid, mid, inv_mid, w.post_norm.get()?, &d_normed);

    // Attention.
    let mut d_context = vec![0.0; rows * shape.q_width()];
    linear_input_grad(&d_mid, rows, w.o.get()?, hidden, &mut d_context, false);
    let (mut dq, mut dk, dv) = attention_backward(saved, &d_context, packing, shape, cached);
    rope_rows(
        &mut dq,
        shape.q_width(),
        shape.head_dim,
        positions,
        tables,
        true,
    );
    rope_rows(
        &mut dk,
        shape.kv_width(),
        shape.head_dim,
        positions,
        tables,
        true,
    );

    let mut d_normed = vec![0.0; rows * hidden];
    linear_input_grad(&dq, rows, w.q.get()?, shape.q_width(), &mut d_normed, false);
    linear_input_grad(&dk, rows, w.k.get()?, shape.kv_width(), &mut d_normed, true);
    linear_input_grad(&dv, rows, w.v.get()?, shape.kv_width(), &mut d_normed, true);
    let mut d_x = d_mid;
    rms_norm_grad(&mut d_x, x, inv_input, w.input_norm.get()?, &d_normed);
    Ok(d_x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|t| a[i * k + t] * b[t * n + j]).sum();
            }
        }
        c
    }

    #[test]
    fn linear_products_match_naive() {
        let (rows, inner, out) = (5, 7, 3);
        let x: Vec<f32> = (0..rows * inner).map(|i| (i as f32 * 0.37).sin()).collect();
        let w: Vec<f32> = (0..out * inner).map(|i| (i as f32 * 0.11).cos()).collect();
        let w_t: Vec<f32> = (0..inner * out)
            .map(|i| w[(i % out) * inner + i / out])
            .collect();

        let y = linear(&x, rows, &w, out);
        let expected = naive(&x, &w_t, rows, inner, out);
        for (a, b) in y.iter().zip(&expected) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        let y_from_transposed = linear_in_out(&x, rows, &w_t, out);
        for (a, b) in y_from_transposed.iter().zip(&expected) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }

        let mut dx = vec![1.0; rows * inner];
        linear_input_grad(&y, rows, &w, out, &mut dx, true);
        for (a, b) in dx.iter().zip(naive(&y, &w, rows, out, inner)) {
            assert!((a - (b + 1.0)).abs() < 1e-4, "{a} vs {}", b + 1.0);
        }
    }

    #[test]
    fn inverse_rope_undoes_rope() {
        let (width, head_dim) = (8, 4);
        let positions = vec![0, 1, 2];
        let cos: Vec<f32> = (0..6).map(|i| (i as f32 * 0.3).cos()).collect();
        let sin: Vec<f32> = (0..6).map(|i| (i as f32 * 0.3).sin()).collect();
        let original: Vec<f32> = (0..3 * width).map(|i| i as f32 - 7.0).collect();
        let mut x = original.clone();
        rope_rows(&mut x, width, head_dim, &positions, (&cos, &sin), false);
        assert!((x[8] - original[8]).abs() > 0.1, "position 1 rotates");
        rope_rows(&mut x, width, head_dim, &positions, (&cos, &sin), true);
        for (a, b) in x.iter().zip(&original) {
            assert!((a - b).abs() < 1e-5);
        }
    }
}

//! Differentiable building blocks for the frozen forward pass.
//!
//! candle 0.11's fused kernels for softmax, RMSNorm and RoPE return no gradient, and its
//! matmul backward computes and keeps a gradient for the (frozen) weight as well as for the
//! input. The ops here run the fused kernels forward and supply their own backward, so a
//! gradient reaches an intervention through every later block while frozen weights never
//! get a gradient computed or stored.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor, D};

/// `x @ w^T` for a frozen weight `w` of shape [out, in]: backward returns the input
/// gradient only. `x` has shape [..., in]; the result has shape [..., out].
pub fn frozen_linear(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let mut dims = x.dims().to_vec();
    let in_features = dims.pop().unwrap_or(0);
    let out_features = weight.dim(0)?;
    let rows: usize = dims.iter().product();

    let x2 = x.contiguous()?.reshape((rows, in_features))?;
    let y2 = if x.track_op() {
        x2.apply_op2(&weight.t()?, InputGradMatmul)?
    } else {
        x2.matmul(&weight.t()?)?
    };

    dims.push(out_features);
    let y = y2.reshape(dims)?;
    match bias {
        Some(b) => y.broadcast_add(&b.detach()),
        None => Ok(y),
    }
}

/// `lhs [m, k] @ rhs [k, n]` whose backward yields a gradient for `lhs` only: `rhs` is a
/// view of a frozen weight.
struct InputGradMatmul;

impl InputGradMatmul {
    fn dims(l1: &Layout, l2: &Layout) -> Result<(usize, usize, usize)> {
        let (m, k) = l1.shape().dims2()?;
        let (k2, n) = l2.shape().dims2()?;
        if k != k2 {
            candle_core::bail!("frozen_linear: input has {k} features but the weight expects {k2}");
        }
        Ok((m, k, n))
    }
}

impl CustomOp2 for InputGradMatmul {
    fn name(&self) -> &'static str {
        "input-grad-matmul"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (m, k, n) = Self::dims(l1, l2)?;
        let out = s1.matmul(s2, (1, m, n, k), l1, l2)?;
        Ok((out, Shape::from((m, n))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        let (m, k, n) = Self::dims(l1, l2)?;
        let out = s1.matmul(s2, (1, m, n, k), l1, l2)?;
        Ok((out, Shape::from((m, n))))
    }

    #[cfg(feature = "metal")]
    fn metal_fwd(
        &self,
        s1: &candle_core::MetalStorage,
        l1: &Layout,
        s2: &candle_core::MetalStorage,
        l2: &Layout,
    ) -> Result<(candle_core::MetalStorage, Shape)> {
        let (m, k, n) = Self::dims(l1, l2)?;
        let out = s1.matmul(s2, (1, m, n, k), l1, l2)?;
        Ok((out, Shape::from((m, n))))
    }

    fn bwd(
        &self,
        _lhs: &Tensor,
        rhs: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad_lhs = grad_res.matmul(&rhs.t()?)?;
        Ok((Some(grad_lhs), None))
    }
}

/// Backward rule of an op whose forward was computed without a graph: receives the input,
/// the forward result and the gradient of the result, and returns the input's gradient.
type BackwardFn = Box<dyn Fn(&Tensor, &Tensor, &Tensor) -> Result<Tensor> + Send + Sync>;

/// Joins a result computed by a fused kernel without a graph (`output`) to its input `x`,
/// so that backpropagation through it uses `backward`. The forward copies `output` once,
/// which costs far less than the kernels it stands for.
struct AttachBackward {
    name: &'static str,
    backward: BackwardFn,
}

impl CustomOp2 for AttachBackward {
    fn name(&self) -> &'static str {
        self.name
    }

    fn cpu_fwd(
        &self,
        _s1: &CpuStorage,
        _l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        Ok((s2.try_clone(l2)?, l2.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        _s1: &candle_core::CudaStorage,
        _l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        Ok((s2.try_clone(l2)?, l2.shape().clone()))
    }

    #[cfg(feature = "metal")]
    fn metal_fwd(
        &self,
        _s1: &candle_core::MetalStorage,
        _l1: &Layout,
        s2: &candle_core::MetalStorage,
        l2: &Layout,
    ) -> Result<(candle_core::MetalStorage, Shape)> {
        Ok((s2.try_clone(l2)?, l2.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        _output: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((
            Some((self.backward)(&x.detach(), &res.detach(), grad_res)?),
            None,
        ))
    }
}

/// Runs `fused` on a detached `x` and, when `x` is part of a graph, attaches `backward`.
fn with_backward(
    name: &'static str,
    x: &Tensor,
    fused: impl FnOnce(&Tensor) -> Result<Tensor>,
    backward: BackwardFn,
) -> Result<Tensor> {
    if !x.track_op() {
        return fused(x);
    }
    let output = fused(&x.detach())?.contiguous()?;
    x.apply_op2(&output, AttachBackward { name, backward })
}

/// Softmax over the last dimension. Backward: dx = y * (g - sum(g * y)).
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    with_backward(
        "softmax-last-dim",
        x,
        |x| candle_nn::ops::softmax_last_dim(&x.contiguous()?),
        Box::new(|_x, y, g| {
            let dot = (g * y)?.sum_keepdim(D::Minus1)?;
            y * g.broadcast_sub(&dot)?
        }),
    )
}

/// RMSNorm over the last dimension with a frozen `weight`:
/// y = x / sqrt(mean(x^2) + eps) * weight.
/// Backward with gw = g * weight and r = 1 / sqrt(mean(x^2) + eps):
/// dx = r * (gw - x * r^2 * mean(gw * x)).
pub fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
    let weight = weight.detach();
    let weight_bwd = weight.clone();
    with_backward(
        "rms-norm",
        x,
        move |x| candle_nn::ops::rms_norm(&x.contiguous()?, &weight, eps as f32),
        Box::new(move |x, _y, g| {
            let r = (x.sqr()?.mean_keepdim(D::Minus1)? + eps)?.sqrt()?.recip()?;
            let gw = g.broadcast_mul(&weight_bwd)?;
            let mean_gwx = (&gw * x)?.mean_keepdim(D::Minus1)?;
            let correction = x.broadcast_mul(&(r.sqr()? * mean_gwx)?)?;
            (gw - correction)?.broadcast_mul(&r)
        }),
    )
}

/// Rotary position embedding in the Hugging Face layout (rotate_half): `x` is
/// [batch, heads, seq, head_dim], `cos` and `sin` are [seq, head_dim / 2].
/// RoPE is a rotation, so its backward is the same rotation with `-sin`.
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let cos = cos.detach();
    let sin = sin.detach();
    let cos_bwd = cos.clone();
    let neg_sin = sin.neg()?;
    with_backward(
        "rope",
        x,
        move |x| candle_nn::rotary_emb::rope(&x.contiguous()?, &cos, &sin),
        Box::new(move |_x, _y, g| {
            candle_nn::rotary_emb::rope(&g.contiguous()?, &cos_bwd, &neg_sin)
        }),
    )
}

//! Keeping a projection's columns orthonormal. candle has no QR decomposition, so this is
//! modified Gram-Schmidt in f64, which is exact enough for the few columns (the rank) an
//! intervention has.

use candle_core::{Result, Tensor, Var};

/// Orthonormalises the columns of the row-major [d, r] matrix `values` in place. A column
/// that is (numerically) dependent on the previous ones is replaced by a unit vector
/// orthogonal to them, so the result always has r orthonormal columns.
pub fn orthonormalize_columns(values: &mut [f64], d: usize, r: usize) {
    for j in 0..r {
        for _pass in 0..2 {
            // Two passes of projection removal keep the columns orthogonal to f64
            // precision even when they start nearly parallel.
            for k in 0..j {
                let dot: f64 = (0..d).map(|i| values[i * r + j] * values[i * r + k]).sum();
                for i in 0..d {
                    values[i * r + j] -= dot * values[i * r + k];
                }
            }
        }

        let norm: f64 = (0..d)
            .map(|i| values[i * r + j].powi(2))
            .sum::<f64>()
            .sqrt();
        if norm > 1e-10 {
            for i in 0..d {
                values[i * r + j] /= norm;
            }
        } else {
            replace_with_orthogonal_unit(values, d, r, j);
        }
    }
}

/// Sets column j to the first standard basis vector that is not in the span of columns
/// 0..j, made orthogonal to them.
fn replace_with_orthogonal_unit(values: &mut [f64], d: usize, r: usize, j: usize) {
    for basis in 0..d {
        for i in 0..d {
            values[i * r + j] = if i == basis { 1.0 } else { 0.0 };
        }
        for k in 0..j {
            let dot = values[basis * r + k];
            for i in 0..d {
                values[i * r + j] -= dot * values[i * r + k];
            }
        }
        let norm: f64 = (0..d)
            .map(|i| values[i * r + j].powi(2))
            .sum::<f64>()
            .sqrt();
        if norm > 1e-6 {
            for i in 0..d {
                values[i * r + j] /= norm;
            }
            return;
        }
    }
}

/// Retracts the [d, r] variable `projection` onto matrices with orthonormal columns (the
/// Q of its QR decomposition, with column signs kept).
pub fn retract(projection: &Var) -> Result<()> {
    let (d, r) = projection.dims2()?;
    let mut values: Vec<f64> = projection
        .as_tensor()
        .flatten_all()?
        .to_dtype(candle_core::DType::F64)?
        .to_vec1()?;
    orthonormalize_columns(&mut values, d, r);
    let values: Vec<f32> = values.iter().map(|&v| v as f32).collect();
    projection.set(&Tensor::from_vec(values, (d, r), projection.device())?)
}

/// The largest absolute entry of R^T R - I for a [d, r] matrix R: zero when its columns
/// are orthonormal.
pub fn orthonormality_error(projection: &Tensor) -> Result<f32> {
    let (_, r) = projection.dims2()?;
    let gram = projection.t()?.matmul(projection)?;
    let identity = Tensor::eye(r, gram.dtype(), gram.device())?;
    (gram - identity)?
        .abs()?
        .flatten_all()?
        .max(0)?
        .to_scalar::<f32>()
}

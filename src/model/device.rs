//! Choosing the compute device and the CPU thread count.

use candle_core::Device;
use serde::{Deserialize, Serialize};

use super::error::{ModelError, Result};

/// Where tensors live. GPUs need a build with the `cuda` or `metal` feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    #[default]
    Cpu,
    Cuda,
    Metal,
    /// The first GPU this build supports, else the CPU.
    Auto,
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda),
            "metal" => Ok(Self::Metal),
            "auto" => Ok(Self::Auto),
            other => Err(format!(
                "unknown device {other:?}: expected cpu, cuda, metal or auto"
            )),
        }
    }
}

/// Opens the device, explaining how to get GPU support when this build lacks it.
pub fn open_device(choice: DeviceChoice) -> Result<Device> {
    let unavailable = |name: &str, reason: String| ModelError::Device {
        requested: name.to_string(),
        reason,
    };
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Cuda => {
            if !candle_core::utils::cuda_is_available() {
                return Err(unavailable(
                    "cuda",
                    "this build has no CUDA support: rebuild with `cargo build --release --features cuda`".into(),
                ));
            }
            Device::new_cuda(0).map_err(|e| unavailable("cuda", e.to_string()))
        }
        DeviceChoice::Metal => {
            if !candle_core::utils::metal_is_available() {
                return Err(unavailable(
                    "metal",
                    "this build has no Metal support: rebuild with `cargo build --release --features metal`".into(),
                ));
            }
            Device::new_metal(0).map_err(|e| unavailable("metal", e.to_string()))
        }
        DeviceChoice::Auto => {
            if candle_core::utils::cuda_is_available() {
                if let Ok(device) = Device::new_cuda(0) {
                    return Ok(device);
                }
            }
            if candle_core::utils::metal_is_available() {
                if let Ok(device) = Device::new_metal(0) {
                    return Ok(device);
                }
            }
            Ok(Device::Cpu)
        }
    }
}

/// Sets the number of CPU threads candle uses. Call it once, before any tensor work:
/// candle sizes its matmuls from RAYON_NUM_THREADS, and rayon's global pool can only be
/// configured once per process.
pub fn configure_threads(threads: Option<usize>) {
    let Some(threads) = threads.filter(|&n| n > 0) else {
        return;
    };
    // SAFETY: called at start-up before other threads read the environment.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };
    if let Err(e) = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
    {
        tracing::warn!("could not set the thread count to {threads}: {e}");
    }
}

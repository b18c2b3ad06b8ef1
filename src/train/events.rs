//! What the trainer thread reports and the commands it takes. The GUI draws these events
//! and the CLI prints them; metrics.jsonl stores one per line.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::model::hub::DownloadEvent;

/// Commands sent to a running trainer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainCommand {
    /// Stop after the current step and save a usable adapter.
    Stop,
    /// Stop after the current step and save nothing.
    Discard,
}

/// The stage a run is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Downloading,
    LoadingModel,
    Tokenizing,
    Training,
    Evaluating,
    Saving,
    /// Fitting and measuring the router of a routed module set.
    Routing,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepInfo {
    /// 1-based optimizer step.
    pub step: usize,
    pub total_steps: usize,
    /// Fractional epoch: 1.5 is halfway through the second epoch.
    pub epoch: f64,
    pub loss: f64,
    pub learning_rate: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    pub tokens_per_second: f64,
    pub elapsed_seconds: f64,
    pub eta_seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalInfo {
    pub step: usize,
    pub loss: f64,
    /// Classification accuracy; None for instruction tuning.
    pub accuracy: Option<f64>,
    pub count: usize,
}

/// The representation shift at one layer, averaged over the probe batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerShift {
    pub layer: usize,
    /// Mean ||h' - h|| / ||h|| at the intervened positions.
    pub relative_change_intervened: f64,
    /// Mean cosine similarity of h' and h at the intervened positions.
    pub cosine_intervened: f64,
    /// The same two figures at the positions that carry the loss.
    pub relative_change_loss: f64,
    pub cosine_loss: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShiftSnapshot {
    pub step: usize,
    /// The layers that have modules.
    pub intervened_layers: Vec<usize>,
    /// From the first intervened layer to the model's last layer.
    pub layers: Vec<LayerShift>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// None when the run was discarded.
    pub adapter_path: Option<PathBuf>,
    pub output_dir: PathBuf,
    pub steps: usize,
    /// True when a Stop command ended the run early.
    pub stopped_early: bool,
    pub final_train_loss: Option<f64>,
    pub final_eval: Option<EvalInfo>,
    pub seconds: f64,
}

/// How often the router of a routed module set picked the right module.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouterReport {
    /// Accuracy on the requests it was fitted on.
    pub train_accuracy: f64,
    pub train_count: usize,
    /// Accuracy on requests it never saw; None when there were none.
    pub eval_accuracy: Option<f64>,
    pub eval_count: usize,
    /// Per module, on the unseen requests: (module name, right, total).
    pub per_module: Vec<(String, usize, usize)>,
    /// The source of the unseen requests: a file, or the held-out share.
    pub eval_source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TrainEvent {
    Phase {
        phase: Phase,
    },
    /// A routed set starts training its module `index` (0-based) of `total`.
    Module {
        index: usize,
        total: usize,
        name: String,
    },
    Router(RouterReport),
    Download {
        detail: String,
        bytes: Option<u64>,
        total_bytes: Option<u64>,
    },
    Step(StepInfo),
    Eval(EvalInfo),
    Shift(ShiftSnapshot),
    Log {
        message: String,
    },
    Checkpoint {
        path: PathBuf,
        step: usize,
    },
    Finished(RunSummary),
    Failed {
        error: String,
    },
}

impl TrainEvent {
    pub fn from_download(event: &DownloadEvent) -> Self {
        match event {
            DownloadEvent::Progress {
                file,
                bytes,
                total_bytes,
            } => Self::Download {
                detail: file.clone(),
                bytes: Some(*bytes),
                total_bytes: *total_bytes,
            },
            DownloadEvent::Started { file, total_bytes } => Self::Download {
                detail: file.clone(),
                bytes: Some(0),
                total_bytes: *total_bytes,
            },
            other => Self::Download {
                detail: format!("{other:?}"),
                bytes: None,
                total_bytes: None,
            },
        }
    }
}

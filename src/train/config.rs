//! The training config: one struct read from TOML files (presets, `--config`), written by
//! the GUI's forms, and stored inside adapters.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

use super::schedule::Schedule;
use crate::data::Task;
use crate::model::device::DeviceChoice;
use crate::reft::InterventionConfig;

pub const CONFIG_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file not found: {path}")]
    NotFound { path: PathBuf },

    #[error("could not read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("invalid config {path}: {reason}")]
    Parse { path: PathBuf, reason: String },

    #[error("invalid config: {field}: {reason}")]
    Invalid { field: String, reason: String },
}

/// Everything a training run needs. Every field has a default except `model.source` and
/// `data.train`; the defaults follow pyreft's quick start (LoReFT, rank 4, the middle
/// layer, positions "f1+l1", learning rate 4e-3). Without an `[intervention]` table and
/// with `data.task = "classification"`, the intervention defaults to
/// [`InterventionConfig::default_for`] classification instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    #[serde(default = "default_version")]
    pub version: u32,
    /// The run's name; the adapter and the output folder default to it.
    #[serde(default)]
    pub name: Option<String>,
    pub model: ModelSection,
    pub data: DataSection,
    /// Written `[intervention]` for one module or `[[intervention]]` for several.
    #[serde(rename = "intervention", default, deserialize_with = "one_or_many")]
    pub interventions: Vec<InterventionConfig>,
    #[serde(default)]
    pub training: TrainingSection,
    #[serde(default)]
    pub output: OutputSection,
    /// Gallery text for configs shipped as presets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<PresetInfo>,
    /// The folder relative paths resolve against: the config file's folder.
    #[serde(skip)]
    pub base_dir: Option<PathBuf>,
    /// A checkpoint (checkpoints/step-N.safetensors) to continue from; set by `--resume`.
    #[serde(skip)]
    pub resume_from: Option<PathBuf>,
}

/// A preset's name and one-line description in each interface language.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresetInfo {
    pub name_en: String,
    #[serde(rename = "name_zh-CN")]
    pub name_zh_cn: String,
    pub description_en: String,
    #[serde(rename = "description_zh-CN")]
    pub description_zh_cn: String,
    /// Expected training time on a laptop CPU, in minutes.
    #[serde(default)]
    pub expected_minutes: Option<f64>,
    /// Place in the gallery: lower comes first; presets without one follow, by file name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// A .gguf file, a model folder, or a hub id.
    pub source: String,
    #[serde(default)]
    pub device: DeviceChoice,
    /// Never download; use only local files and the Hugging Face cache.
    #[serde(default)]
    pub offline: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    pub train: String,
    /// A separate evaluation file; without one, `eval_ratio` of the training rows are held out.
    #[serde(default)]
    pub eval: Option<String>,
    #[serde(default = "default_eval_ratio")]
    pub eval_ratio: f64,
    /// Inferred from the rows when absent: text/label rows are classification.
    #[serde(default)]
    pub task: Option<Task>,
    /// Classification labels, in order; inferred from the rows when empty.
    #[serde(default)]
    pub labels: Vec<String>,
    /// The user message built from each row, with `{text}` (and `{instruction}`, `{input}`
    /// for alpaca rows); without one, the row's text is the user message.
    #[serde(default)]
    pub prompt_template: Option<String>,
    /// A system message placed before each prompt when the chat template has a system role.
    #[serde(default)]
    pub system_prompt: Option<String>,
    /// Examples longer than this many tokens are cut (from the prompt's start).
    #[serde(default = "default_max_length")]
    pub max_length: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainingSection {
    pub epochs: usize,
    /// Stop after this many optimizer steps; 0 runs every epoch.
    pub max_steps: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub schedule: Schedule,
    /// Fraction of the steps spent warming the learning rate up from 0.
    pub warmup_ratio: f64,
    /// Clip the global gradient norm to this; 0 turns clipping off.
    pub max_grad_norm: f64,
    /// Batches whose gradients are summed before each optimizer step.
    pub grad_accum: usize,
    pub weight_decay: f64,
    pub seed: u64,
    /// CPU threads for training; 0 uses all cores but one (at least one).
    pub threads: usize,
    /// Evaluate every this many steps; 0 evaluates after each epoch.
    pub eval_every: usize,
    /// Measure the representation shift every this many steps; 0 turns it off.
    pub shift_every: usize,
    /// Save a checkpoint every this many steps; 0 saves none until the end.
    pub checkpoint_every: usize,
    /// Memory for hidden states below the first intervened layer, which are computed once
    /// per example and reused (MiB, for training and for evaluation each); 0 turns it off.
    pub prefix_cache_mb: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutputSection {
    /// The folder for the adapter, checkpoints and metrics; defaults to runs/<name>.
    pub dir: Option<String>,
}

/// Reads a config file's text; a missing file is `ConfigError::NotFound`.
pub(crate) fn read_config_text(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => ConfigError::NotFound {
            path: path.to_path_buf(),
        },
        _ => ConfigError::Io {
            path: path.to_path_buf(),
            source,
        },
    })
}

/// Resolves a relative path written in a config against `base_dir`, the config's folder.
pub(crate) fn resolve_against(base_dir: Option<&Path>, value: &str) -> PathBuf {
    let path = PathBuf::from(value);
    match (base_dir, path.is_absolute()) {
        (Some(base), false) => base.join(path),
        _ => path,
    }
}

fn default_version() -> u32 {
    CONFIG_VERSION
}

fn default_eval_ratio() -> f64 {
    0.1
}

fn default_max_length() -> usize {
    512
}

impl Default for TrainingSection {
    fn default() -> Self {
        Self {
            epochs: 3,
            max_steps: 0,
            batch_size: 8,
            learning_rate: 4e-3,
            schedule: Schedule::Linear,
            warmup_ratio: 0.0,
            max_grad_norm: 1.0,
            grad_accum: 1,
            weight_decay: 0.0,
            seed: 42,
            threads: 0,
            eval_every: 0,
            shift_every: 10,
            checkpoint_every: 0,
            prefix_cache_mb: 512,
        }
    }
}

impl Default for OutputSection {
    fn default() -> Self {
        Self { dir: None }
    }
}

pub(crate) fn one_or_many<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<InterventionConfig>, D::Error> {
    // Going through a JSON value (rather than an untagged enum) keeps the inner error, such
    // as an invalid positions string, in the message.
    let value = serde_json::Value::deserialize(deserializer)?;
    let parsed = if value.is_array() {
        serde_json::from_value::<Vec<InterventionConfig>>(value)
    } else {
        serde_json::from_value::<InterventionConfig>(value).map(|one| vec![one])
    };
    parsed.map_err(|e| serde::de::Error::custom(format!("intervention: {e}")))
}

impl TrainConfig {
    /// Reads a TOML config; relative paths in it resolve against its folder.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = read_config_text(path)?;
        let mut config = Self::from_toml(&text).map_err(|reason| ConfigError::Parse {
            path: path.to_path_buf(),
            reason,
        })?;
        config.base_dir = path.parent().map(Path::to_path_buf);
        Ok(config)
    }

    pub fn from_toml(text: &str) -> Result<Self, String> {
        let mut config: Self = toml::from_str(text).map_err(|e| e.to_string())?;
        config.fill_default_interventions();
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }

    /// Adds the default intervention for the task when the config names none.
    pub fn fill_default_interventions(&mut self) {
        if self.interventions.is_empty() {
            let task = self.data.task.unwrap_or(Task::Instruction);
            self.interventions
                .push(InterventionConfig::default_for(task));
        }
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("the config serialises to TOML")
    }

    /// Checks what can be checked without the model or the data.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: &str, reason: String| ConfigError::Invalid {
            field: field.to_string(),
            reason,
        };
        if self.version != CONFIG_VERSION {
            return Err(invalid(
                "version",
                format!(
                    "version {} is not supported: this build reads version {CONFIG_VERSION}",
                    self.version
                ),
            ));
        }
        if self.model.source.trim().is_empty() {
            return Err(invalid(
                "model.source",
                "is empty: give a .gguf file, a model folder or a hub id".into(),
            ));
        }
        if self.data.train.trim().is_empty() {
            return Err(invalid(
                "data.train",
                "is empty: give the training data file".into(),
            ));
        }
        if !(0.0..1.0).contains(&self.data.eval_ratio) {
            return Err(invalid(
                "data.eval_ratio",
                format!("{} must be in [0, 1)", self.data.eval_ratio),
            ));
        }
        if self.interventions.is_empty() {
            return Err(invalid(
                "intervention",
                "no intervention is configured: add an [intervention] table".into(),
            ));
        }
        for (i, intervention) in self.interventions.iter().enumerate() {
            intervention
                .validate()
                .map_err(|reason| invalid(&format!("intervention {}", i + 1), reason))?;
        }
        let t = &self.training;
        if t.batch_size == 0 {
            return Err(invalid("training.batch_size", "must be at least 1".into()));
        }
        if t.grad_accum == 0 {
            return Err(invalid("training.grad_accum", "must be at least 1".into()));
        }
        if t.epochs == 0 && t.max_steps == 0 {
            return Err(invalid(
                "training.epochs",
                "epochs and max_steps are both 0: set at least one".into(),
            ));
        }
        if !(t.learning_rate > 0.0 && t.learning_rate.is_finite()) {
            return Err(invalid(
                "training.learning_rate",
                format!("{} must be a positive number", t.learning_rate),
            ));
        }
        if !(0.0..1.0).contains(&t.warmup_ratio) {
            return Err(invalid(
                "training.warmup_ratio",
                format!("{} must be in [0, 1)", t.warmup_ratio),
            ));
        }
        if t.max_grad_norm < 0.0 {
            return Err(invalid(
                "training.max_grad_norm",
                format!("{} must be 0 (off) or positive", t.max_grad_norm),
            ));
        }
        Ok(())
    }

    /// Resolves a path written in the config against the config's folder.
    pub fn resolve_path(&self, value: &str) -> PathBuf {
        resolve_against(self.base_dir.as_deref(), value)
    }

    /// A copy whose file paths are absolute, so it can be saved anywhere (the run's
    /// output folder) and still be read back.
    pub fn resolved(&self) -> Self {
        let mut copy = self.clone();
        let absolute = |value: &str| -> String {
            let path = self.resolve_path(value);
            std::path::absolute(&path)
                .unwrap_or(path)
                .to_string_lossy()
                .into_owned()
        };
        copy.data.train = absolute(&self.data.train);
        copy.data.eval = self.data.eval.as_deref().map(absolute);
        if self.resolve_path(&self.model.source).exists() {
            copy.model.source = absolute(&self.model.source);
        }
        copy.output.dir = Some(
            std::path::absolute(self.output_dir())
                .unwrap_or(self.output_dir())
                .to_string_lossy()
                .into_owned(),
        );
        copy.base_dir = None;
        copy
    }

    /// The run's name: `name`, else the training file's stem.
    pub fn run_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            Path::new(&self.data.train)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "run".into())
        })
    }

    /// The output folder: `output.dir`, else runs/<name> beside the config.
    pub fn output_dir(&self) -> PathBuf {
        match &self.output.dir {
            Some(dir) => self.resolve_path(dir),
            None => self.resolve_path(&format!("runs/{}", self.run_name())),
        }
    }

    /// The number of training threads: `threads`, or all cores but one.
    pub fn thread_count(&self) -> usize {
        if self.training.threads > 0 {
            return self.training.threads;
        }
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        cores.saturating_sub(1).max(1)
    }
}

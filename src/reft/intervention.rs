//! The intervention config and the module that applies one intervention type with the
//! options shared by all types (activation, dropout, scale, edit normalisation).

use std::collections::HashMap;
use std::sync::Mutex;

use candle_core::{DType, Device, Result, Tensor, Var, D};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::params::ParamSet;
use super::positions::Positions;
use super::{consreft, direft, lobireft, loreft, mlp, noreft};
use crate::data::Task;

/// The intervention types. Their names are stable: configs and adapter files use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InterventionKind {
    /// h + R^T(act(W h + b) - R h), R with orthonormal rows (pyreft's LoreftIntervention).
    #[default]
    Loreft,
    /// h + W2^T(act(W1 h + b1) - (W2 h + b2)) (pyreft's NoreftIntervention).
    Noreft,
    /// The DiReFT of the ReFT paper, h + W2^T act(W1 h + b) (pyreft's NodireftIntervention).
    Direft,
    /// h + R^T(b - R h) (pyreft's ConsreftIntervention).
    Consreft,
    /// h + R^T b (pyreft's LobireftIntervention).
    Lobireft,
    /// h + up(act(down(h))), with GELU unless another activation is set.
    Mlp,
}

impl InterventionKind {
    pub const ALL: [InterventionKind; 6] = [
        Self::Loreft,
        Self::Noreft,
        Self::Direft,
        Self::Consreft,
        Self::Lobireft,
        Self::Mlp,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Loreft => "loreft",
            Self::Noreft => "noreft",
            Self::Direft => "direft",
            Self::Consreft => "consreft",
            Self::Lobireft => "lobireft",
            Self::Mlp => "mlp",
        }
    }

    /// The activation used when the config sets none.
    pub fn default_activation(self) -> Activation {
        match self {
            Self::Mlp => Activation::Gelu,
            _ => Activation::Identity,
        }
    }
}

/// The nonlinearity inside an intervention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    #[default]
    Identity,
    /// Exact (erf) GELU, as PyTorch's nn.GELU().
    Gelu,
    Relu,
    Silu,
}

impl Activation {
    pub fn apply(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Identity => Ok(x.clone()),
            Self::Gelu => x.gelu_erf(),
            Self::Relu => x.relu(),
            Self::Silu => x.silu(),
        }
    }
}

/// Optional normalisation of the edit Δh before it is added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EditNorm {
    #[default]
    None,
    /// LayerNorm over the hidden dimension, without learned scale or shift.
    LayerNorm,
    /// Rows whose L2 norm exceeds `edit_max_l2` are scaled down to it.
    MaxL2,
}

/// Depth of the classification default's layer: block 18 of SmolLM2's 30.
const CLASSIFICATION_DEPTH_PERCENT: u8 = 60;
/// Positions of the classification default: the last prompt token only, the one whose
/// hidden state predicts the label.
const CLASSIFICATION_POSITIONS: Positions = Positions::FirstLast { first: 0, last: 1 };
/// Rank of the classification default.
const CLASSIFICATION_RANK: usize = 8;

/// The blocks an intervention edits: written `layers = [15]`, `layers = 15`, `"middle"`,
/// `"all"` or a depth such as `"60%"` in configs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LayerSelection {
    /// The block in the middle of the model (index num_layers / 2).
    #[default]
    Middle,
    All,
    List(Vec<usize>),
    /// The block at this percentage of the model's depth (1-100), rounded to the nearest
    /// index: 60% of a 30-block model is block 18. It suits presets meant for any model size.
    Depth(u8),
}

impl Serialize for LayerSelection {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Self::Middle => serializer.serialize_str("middle"),
            Self::All => serializer.serialize_str("all"),
            Self::List(layers) => layers.serialize(serializer),
            Self::Depth(percent) => serializer.serialize_str(&format!("{percent}%")),
        }
    }
}

impl<'de> Deserialize<'de> for LayerSelection {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        // Reading a generic value first gives one clear message for every wrong shape
        // (a negative index, a float, a table) instead of serde's "no variant matched".
        let value = serde_json::Value::deserialize(deserializer)?;
        let invalid = || {
            serde::de::Error::custom(format!(
                "layers {value} is not valid: give block indices (0 or more) such as [15], \"middle\", \"all\" or a depth such as \"60%\""
            ))
        };
        let index = |v: &serde_json::Value| v.as_u64().and_then(|n| usize::try_from(n).ok());
        match &value {
            serde_json::Value::Number(_) => index(&value)
                .map(|layer| Self::List(vec![layer]))
                .ok_or_else(invalid),
            serde_json::Value::Array(items) if items.is_empty() => Err(serde::de::Error::custom(
                "layers is an empty list: give block indices such as [15], or \"all\"",
            )),
            serde_json::Value::Array(items) => items
                .iter()
                .map(index)
                .collect::<Option<Vec<_>>>()
                .map(Self::List)
                .ok_or_else(invalid),
            serde_json::Value::String(k) if k == "middle" => Ok(Self::Middle),
            serde_json::Value::String(k) if k == "all" => Ok(Self::All),
            serde_json::Value::String(k) => {
                match k.strip_suffix('%').map(|p| p.trim().parse::<u8>()) {
                    Some(Ok(percent)) if (1..=100).contains(&percent) => Ok(Self::Depth(percent)),
                    _ => Err(invalid()),
                }
            }
            _ => Err(invalid()),
        }
    }
}

/// One intervention as configs and adapter files describe it. Where it acts (layers) is
/// part of the config, so an adapter carries everything needed to apply it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InterventionConfig {
    /// A name for choosing among several modules; defaults to the type and layer.
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: InterventionKind,
    /// The blocks whose output is edited.
    pub layers: LayerSelection,
    pub rank: usize,
    pub positions: Positions,
    /// One module for the first and the last positions (true), or one each (false).
    pub tied: bool,
    pub activation: Option<Activation>,
    /// Dropout probability on the edit during training.
    pub dropout: f64,
    /// Factor on the edit.
    pub scale: f64,
    pub edit_norm: EditNorm,
    /// The L2 bound used by `edit_norm = "max_l2"`.
    pub edit_max_l2: f64,
    /// Whether noreft's W2 projection has a bias b2.
    pub proj_bias: bool,
}

impl Default for InterventionConfig {
    fn default() -> Self {
        Self {
            name: None,
            kind: InterventionKind::Loreft,
            layers: LayerSelection::Middle,
            rank: 4,
            positions: Positions::default(),
            tied: true,
            activation: None,
            dropout: 0.0,
            scale: 1.0,
            edit_norm: EditNorm::None,
            edit_max_l2: 1.0,
            proj_bias: true,
        }
    }
}

impl InterventionConfig {
    /// Returns the default intervention for `task`. Instruction tuning follows pyreft's
    /// quick start. Classification uses the settings that scored best on Chinese product
    /// reviews with SmolLM2-135M (docs/benchmarks.md has the comparison).
    pub fn default_for(task: Task) -> Self {
        match task {
            Task::Instruction => Self::default(),
            Task::Classification => Self {
                layers: LayerSelection::Depth(CLASSIFICATION_DEPTH_PERCENT),
                positions: CLASSIFICATION_POSITIONS,
                rank: CLASSIFICATION_RANK,
                ..Self::default()
            },
        }
    }

    pub fn activation(&self) -> Activation {
        self.activation.unwrap_or(self.kind.default_activation())
    }

    /// Checks the settings that do not depend on the model; returns what to change.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.rank == 0 {
            return Err("rank must be at least 1".into());
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!("dropout {} must be in [0, 1)", self.dropout));
        }
        if !self.scale.is_finite() {
            return Err(format!("scale {} must be a finite number", self.scale));
        }
        if self.edit_norm == EditNorm::MaxL2 && !(self.edit_max_l2 > 0.0) {
            return Err(format!(
                "edit_max_l2 {} must be positive when edit_norm = \"max_l2\"",
                self.edit_max_l2
            ));
        }
        self.positions.validate()
    }

    /// Checks the settings against a model with `hidden` units and `num_layers` blocks.
    pub fn validate_for_model(
        &self,
        hidden: usize,
        num_layers: usize,
    ) -> std::result::Result<(), String> {
        self.validate()?;
        if self.rank > hidden {
            return Err(format!(
                "rank {} is larger than the model's hidden size {hidden}: choose a rank of at most {hidden}",
                self.rank
            ));
        }
        for layer in self.resolved_layers(num_layers) {
            if layer >= num_layers {
                return Err(format!(
                    "layer {layer} is out of range: the model has {num_layers} layers (0-{})",
                    num_layers - 1
                ));
            }
        }
        Ok(())
    }

    /// The layers this config acts on, for a model with `num_layers` blocks.
    pub fn resolved_layers(&self, num_layers: usize) -> Vec<usize> {
        match &self.layers {
            LayerSelection::Middle => vec![num_layers / 2],
            LayerSelection::All => (0..num_layers).collect(),
            LayerSelection::List(layers) => layers.clone(),
            LayerSelection::Depth(percent) => {
                let index = (num_layers * usize::from(*percent) + 50) / 100;
                vec![index.min(num_layers.saturating_sub(1))]
            }
        }
    }
}

/// The computation of Δh that distinguishes the intervention types.
pub trait EditModule: Send + Sync {
    /// Δh for rows `h` ([n, hidden]), before dropout, scale and normalisation.
    fn edit(&self, h: &Tensor, activation: Activation) -> Result<Tensor>;

    fn params(&self) -> &ParamSet;

    /// The projection whose columns are kept orthonormal, if the type has one.
    fn projection(&self) -> Option<&Var> {
        None
    }
}

/// One trainable intervention module: an edit of a type plus the shared options.
pub struct Intervention {
    config: InterventionConfig,
    module: Box<dyn EditModule>,
    /// Seeded dropout masks, so that a run with the same seed repeats exactly.
    dropout_rng: Mutex<StdRng>,
}

impl Intervention {
    /// Creates a module with fresh parameters drawn from `seed`.
    pub fn new(
        config: InterventionConfig,
        hidden: usize,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        let mut rng = StdRng::seed_from_u64(seed);
        let rank = config.rank;
        let module: Box<dyn EditModule> = match config.kind {
            InterventionKind::Loreft => {
                Box::new(loreft::LoReft::init(hidden, rank, &mut rng, device)?)
            }
            InterventionKind::Noreft => Box::new(noreft::NoReft::init(
                hidden,
                rank,
                config.proj_bias,
                &mut rng,
                device,
            )?),
            InterventionKind::Direft => {
                Box::new(direft::DiReft::init(hidden, rank, &mut rng, device)?)
            }
            InterventionKind::Consreft => {
                Box::new(consreft::ConsReft::init(hidden, rank, &mut rng, device)?)
            }
            InterventionKind::Lobireft => {
                Box::new(lobireft::LobiReft::init(hidden, rank, &mut rng, device)?)
            }
            InterventionKind::Mlp => Box::new(mlp::MlpEdit::init(hidden, rank, &mut rng, device)?),
        };
        Ok(Self::with_module(config, module, seed))
    }

    /// Builds a module from saved tensors (names without prefix), checking every shape.
    pub fn from_tensors(
        config: InterventionConfig,
        hidden: usize,
        mut tensors: HashMap<String, Tensor>,
        seed: u64,
    ) -> std::result::Result<Self, String> {
        let rank = config.rank;
        let t = &mut tensors;
        let module: Box<dyn EditModule> = match config.kind {
            InterventionKind::Loreft => Box::new(loreft::LoReft::load(hidden, rank, t)?),
            InterventionKind::Noreft => {
                Box::new(noreft::NoReft::load(hidden, rank, config.proj_bias, t)?)
            }
            InterventionKind::Direft => Box::new(direft::DiReft::load(hidden, rank, t)?),
            InterventionKind::Consreft => Box::new(consreft::ConsReft::load(hidden, rank, t)?),
            InterventionKind::Lobireft => Box::new(lobireft::LobiReft::load(hidden, rank, t)?),
            InterventionKind::Mlp => Box::new(mlp::MlpEdit::load(hidden, rank, t)?),
        };
        if let Some(extra) = tensors.keys().next() {
            return Err(format!(
                "tensor {extra} does not belong to a {} intervention",
                config.kind.name()
            ));
        }
        Ok(Self::with_module(config, module, seed))
    }

    fn with_module(config: InterventionConfig, module: Box<dyn EditModule>, seed: u64) -> Self {
        Self {
            config,
            module,
            dropout_rng: Mutex::new(StdRng::seed_from_u64(seed ^ 0x5eed_d80f)),
        }
    }

    pub fn config(&self) -> &InterventionConfig {
        &self.config
    }

    /// h' = h + scale * norm(dropout(Δh)) for rows `h` ([n, hidden]). Dropout acts only
    /// when `training` is true.
    pub fn forward(&self, h: &Tensor, training: bool) -> Result<Tensor> {
        let mut edit = self.module.edit(h, self.config.activation())?;

        if training && self.config.dropout > 0.0 {
            edit = self.apply_dropout(&edit)?;
        }

        edit = match self.config.edit_norm {
            EditNorm::None => edit,
            EditNorm::LayerNorm => layer_norm(&edit)?,
            EditNorm::MaxL2 => bound_l2(&edit, self.config.edit_max_l2)?,
        };

        if self.config.scale != 1.0 {
            edit = (edit * self.config.scale)?;
        }
        h + edit
    }

    fn apply_dropout(&self, edit: &Tensor) -> Result<Tensor> {
        let keep = 1.0 - self.config.dropout;
        let count = edit.elem_count();
        let mask: Vec<f32> = {
            let mut rng = self.dropout_rng.lock().expect("dropout rng lock");
            (0..count)
                .map(|_| {
                    if rng.random::<f64>() < keep {
                        (1.0 / keep) as f32
                    } else {
                        0.0
                    }
                })
                .collect()
        };
        let mask = Tensor::from_vec(mask, edit.shape(), edit.device())?;
        edit * mask
    }

    /// The trainable parameters, named as in adapter files (without a prefix).
    pub fn params(&self) -> &[(String, Var)] {
        self.module.params().entries()
    }

    pub fn vars(&self) -> Vec<Var> {
        self.params().iter().map(|(_, v)| v.clone()).collect()
    }

    /// Restores invariants after an optimizer step: the projection's columns are
    /// re-orthonormalised, so R stays orthonormal throughout training.
    pub fn after_step(&self) -> Result<()> {
        match self.module.projection() {
            Some(projection) => super::orthonormal::retract(projection),
            None => Ok(()),
        }
    }

    /// The [hidden, rank] projection with orthonormal columns, for types that have one.
    pub fn projection(&self) -> Option<Tensor> {
        self.module.projection().map(|v| v.as_tensor().clone())
    }

    pub fn num_parameters(&self) -> usize {
        self.params().iter().map(|(_, v)| v.elem_count()).sum()
    }
}

fn layer_norm(x: &Tensor) -> Result<Tensor> {
    let mean = x.mean_keepdim(D::Minus1)?;
    let centered = x.broadcast_sub(&mean)?;
    let variance = centered.sqr()?.mean_keepdim(D::Minus1)?;
    centered.broadcast_div(&(variance + 1e-5)?.sqrt()?)
}

fn bound_l2(x: &Tensor, max_norm: f64) -> Result<Tensor> {
    let norm = x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?;
    // factor = min(1, max_norm / norm); the detached norm keeps the gradient of the
    // bounded rows a plain rescaling.
    let factor = (norm.detach() + 1e-12)?
        .recip()?
        .affine(max_norm, 0.0)?
        .clamp(0.0, 1.0)?;
    x.broadcast_mul(&factor.to_dtype(DType::F32)?)
}

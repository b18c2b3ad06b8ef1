//! Representation interventions: small trainable modules that edit a frozen model's
//! hidden state h at chosen layers and token positions, h' = h + Δh.

pub mod adapter;
pub mod consreft;
pub mod direft;
pub mod hook;
pub mod intervention;
pub mod library;
pub mod lobireft;
pub mod loreft;
pub mod mlp;
pub mod noreft;
pub mod orthonormal;
pub mod params;
pub mod positions;
pub mod set;

pub use hook::{InterventionHook, RowPositions};
pub use intervention::{
    Activation, EditNorm, Intervention, InterventionConfig, InterventionKind, LayerSelection,
};
pub use positions::Positions;
pub use set::{InterventionSet, Part, PlacedIntervention};

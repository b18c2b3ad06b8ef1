//! ReFT Studio's engine: loading frozen language models, running them with hook points
//! for representation interventions, and generating text. The GUI and the CLI are two
//! front ends on this library; nothing here depends on either.

pub mod data;
pub mod model;
pub mod reft;
pub mod train;

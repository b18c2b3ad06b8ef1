//! The app's screens: the preset gallery, the setup form, the training view and the runs
//! list.

pub mod routed_setup;
pub mod runs;
pub mod setup;
pub mod start;
pub mod training;
pub mod try_it;

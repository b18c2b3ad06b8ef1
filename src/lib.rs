//! ReFT Studio: representation fine-tuning of frozen language models.
//!
//! The engine (`model`, `reft`, `data`, `train`, `routing`, `try_it`) loads models, trains interventions and
//! generates; it never imports egui or eframe. `app` is the desktop front end and talks to
//! the engine only through the trainer's commands and events; the CLI in `main.rs` is the
//! other front end.

pub mod app;
pub mod config_file;
pub mod data;
pub mod model;
pub mod reft;
pub mod routing;
pub mod train;
pub mod try_it;

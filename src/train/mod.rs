//! Training interventions on a frozen model: batches, loss, optimisation and the
//! background trainer that reports events.

pub mod batch;
pub mod checkpoint;
pub mod config;
pub mod evaluate;
pub mod events;
pub mod loss;
pub mod optimizer;
pub mod prefix_cache;
pub mod preflight;
pub mod prepare;
pub mod replay;
pub mod run_data;
pub mod schedule;
pub mod shift;
pub mod trainer;

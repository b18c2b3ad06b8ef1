//! Training interventions on a frozen model: batches, loss, optimisation and the
//! background trainer that reports events.

pub mod batch;
pub mod loss;
pub mod optimizer;
pub mod schedule;

//! Trying an adapter: one prompt through the base model and through the adapted model, side
//! by side, on a worker thread that keeps the model loaded between requests.

pub mod compare;
pub mod worker;

pub use compare::{compare, Answer, CompareRequest, Comparison};
pub use worker::{spawn_try_worker, LoadedInfo, RouteInfo, TryCommand, TryEvent, TryWorker};

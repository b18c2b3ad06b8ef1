//! Routed module sets: several task modules trained on one base model and served together,
//! with a router on the base model's hidden state that picks the module for each request.

pub mod bundle;
pub mod config;
pub mod router;
pub mod train;

pub use bundle::{is_routing_file, read_manifest, RoutedSet, RoutingManifest, ROUTING_FILE};
pub use config::{ModuleSpec, Pooling, RouterSettings, RoutingConfig};
pub use router::{RouteDecision, Router};
pub use train::{run_routing, spawn_routing};

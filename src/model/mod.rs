//! Frozen base models: where their files come from, how their weights and tokenizer are
//! read, and a forward pass that exposes every block's hidden state to interventions.

pub mod chat_template;
pub mod config;
pub mod decoder;
pub mod device;
pub mod download;
pub mod error;
pub mod fingerprint;
pub mod generate;
pub mod gguf;
pub mod hub;
pub mod loader;
pub mod ops;
pub mod safetensors;
pub mod source;
pub mod suffix_pass;
pub mod tokenizer;
pub mod weights;

pub use error::ModelError;

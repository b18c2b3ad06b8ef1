//! A config file of either kind: one training run, or a routed set of modules. Both load
//! from TOML; a file with `[[module]]` tables is a routed set.

use std::path::Path;

use crate::routing::RoutingConfig;
use crate::train::config::{read_config_text, ConfigError, TrainConfig};

#[derive(Debug, Clone, PartialEq)]
pub enum ConfigFile {
    Train(TrainConfig),
    Routing(RoutingConfig),
}

impl ConfigFile {
    /// Reads `path` as a routed set when it has `[[module]]` tables, else as a training config.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = read_config_text(path)?;
        let has_modules = toml::from_str::<toml::Table>(&text)
            .map(|table| table.contains_key("module"))
            .unwrap_or(false);
        if has_modules {
            RoutingConfig::load(path).map(ConfigFile::Routing)
        } else {
            TrainConfig::load(path).map(ConfigFile::Train)
        }
    }

    /// The preset gallery text, when the file has a [preset] table.
    pub fn preset(&self) -> Option<&crate::train::config::PresetInfo> {
        match self {
            ConfigFile::Train(config) => config.preset.as_ref(),
            ConfigFile::Routing(config) => config.preset.as_ref(),
        }
    }

    /// The model spec the file names.
    pub fn model_source(&self) -> &str {
        match self {
            ConfigFile::Train(config) => &config.model.source,
            ConfigFile::Routing(config) => &config.model.source,
        }
    }

    /// The run's name.
    pub fn run_name(&self) -> String {
        match self {
            ConfigFile::Train(config) => config.run_name(),
            ConfigFile::Routing(config) => config.name.clone(),
        }
    }
}

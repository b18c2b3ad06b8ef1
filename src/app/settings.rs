//! The settings the app keeps between sessions in eframe's storage: the interface language,
//! the last model and dataset, and the hub address. The window size is kept by eframe.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::i18n::Language;

/// The state stored under eframe's app key, as RON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The language picked in the top bar; None follows the system locale.
    pub language: Option<Language>,
    /// The model of the last run started from the app.
    pub last_model: Option<String>,
    /// The training data file of the last run started from the app.
    pub last_dataset: Option<PathBuf>,
    /// The hub address (a mirror) set in the setup form.
    pub hub_endpoint: Option<String>,
}

impl Settings {
    /// Parses stored settings. Text that cannot be read gives the defaults and a log line,
    /// so a damaged file never stops the app from starting.
    pub fn parse(text: &str) -> Settings {
        match ron::from_str(text) {
            Ok(settings) => settings,
            Err(error) => {
                tracing::warn!(%error, "the stored settings cannot be read; using the defaults");
                Settings::default()
            }
        }
    }

    /// Returns the settings as RON, the format eframe's storage holds.
    pub fn to_text(&self) -> String {
        ron::to_string(self).expect("the settings serialise to RON")
    }

    /// Reads the settings from eframe's storage; defaults when there are none.
    pub fn load(storage: Option<&dyn eframe::Storage>) -> Settings {
        storage
            .and_then(|storage| storage.get_string(eframe::APP_KEY))
            .map(|text| Settings::parse(&text))
            .unwrap_or_default()
    }
}

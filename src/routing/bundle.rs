//! The routed set on disk (routing.json beside a modules/ folder of adapters) and serving
//! it: the router picks a module per request, or the caller names one.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::router::{request_features, RouteDecision, Router};
use crate::model::loader::LoadedModel;
use crate::reft::adapter::{load_adapter, LoadedAdapter};
use crate::train::events::RouterReport;

/// The file that describes a trained routed set, in the set's output folder.
pub const ROUTING_FILE: &str = "routing.json";

/// The version of routing.json this build writes and reads.
pub const ROUTING_FORMAT_VERSION: u32 = 1;

/// The contents of routing.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingManifest {
    pub format_version: u32,
    pub name: String,
    /// The model spec the set was trained on.
    pub model_source: String,
    pub modules: Vec<ManifestModule>,
    pub router: Router,
    pub report: RouterReport,
}

/// One module of a trained set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestModule {
    pub name: String,
    pub title_en: Option<String>,
    #[serde(rename = "title_zh-CN")]
    pub title_zh_cn: Option<String>,
    /// The adapter file, relative to routing.json's folder.
    pub adapter: String,
}

impl ManifestModule {
    /// The title in the app: the language's title, else the name.
    pub fn title(&self, chinese: bool) -> &str {
        let title = if chinese {
            &self.title_zh_cn
        } else {
            &self.title_en
        };
        title.as_deref().unwrap_or(&self.name)
    }
}

/// Returns true when `path` names a routing.json file (as opposed to an adapter file).
pub fn is_routing_file(path: &Path) -> bool {
    path.file_name().is_some_and(|name| name == ROUTING_FILE)
}

/// Reads and checks routing.json.
pub fn read_manifest(path: &Path) -> Result<RoutingManifest, String> {
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!(
            "routed set not found: {}. A routed training run writes <output folder>/{ROUTING_FILE}",
            path.display()
        ),
        _ => format!("could not read {}: {e}", path.display()),
    })?;
    let manifest: RoutingManifest = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{} is not a valid routed set description: {e}. Train the set again",
            path.display()
        )
    })?;
    if manifest.format_version != ROUTING_FORMAT_VERSION {
        return Err(format!(
            "{} has format version {}, but this build reads only version {ROUTING_FORMAT_VERSION}. Train the set again",
            path.display(),
            manifest.format_version
        ));
    }
    let names: Vec<&str> = manifest.modules.iter().map(|m| m.name.as_str()).collect();
    if names
        != manifest
            .router
            .modules
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    {
        return Err(format!(
            "{}: the router's modules ({}) differ from the listed modules ({}); the file was edited by hand",
            path.display(),
            manifest.router.modules.join(", "),
            names.join(", ")
        ));
    }
    Ok(manifest)
}

/// Writes routing.json into `dir` and returns its path.
pub fn write_manifest(dir: &Path, manifest: &RoutingManifest) -> Result<PathBuf, String> {
    let path = dir.join(ROUTING_FILE);
    let json = serde_json::to_string_pretty(manifest)
        .map_err(|e| format!("could not encode {}: {e}", path.display()))?;
    std::fs::write(&path, json).map_err(|e| format!("could not write {}: {e}", path.display()))?;
    Ok(path)
}

/// A routed set loaded on its base model: the router and every module's adapter.
pub struct RoutedSet {
    pub manifest: RoutingManifest,
    pub adapters: Vec<LoadedAdapter>,
}

impl RoutedSet {
    /// Loads routing.json and each module's adapter on `model`, which must be the model the
    /// set was trained on (each adapter checks that).
    pub fn load(path: &Path, model: &LoadedModel) -> Result<Self, String> {
        let manifest = read_manifest(path)?;
        let config = model.config();
        manifest
            .router
            .check_shape(config.hidden_size, config.num_layers)
            .map_err(|reason| {
                format!(
                    "{}: {reason}. Load the model the set was trained on ({})",
                    path.display(),
                    manifest.model_source
                )
            })?;

        let folder = path.parent().unwrap_or(Path::new("."));
        let mut adapters = Vec::with_capacity(manifest.modules.len());
        for module in &manifest.modules {
            let adapter =
                load_adapter(&folder.join(&module.adapter), model).map_err(|e| e.to_string())?;
            adapters.push(adapter);
        }
        Ok(Self { manifest, adapters })
    }

    /// The module index for `name`, or a message listing the names.
    pub fn module_index(&self, name: &str) -> Result<usize, String> {
        self.manifest
            .modules
            .iter()
            .position(|m| m.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = self
                    .manifest
                    .modules
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect();
                format!(
                    "no module is named {name:?}; the set has: {}",
                    names.join(", ")
                )
            })
    }

    /// Asks the router which module should serve `text`.
    pub fn route(&self, model: &LoadedModel, text: &str) -> Result<RouteDecision, String> {
        let router = &self.manifest.router;
        let features = request_features(model, text, router.layer, router.pooling)?;
        Ok(router.decide(&features))
    }
}

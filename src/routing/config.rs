//! The routing config: several task modules trained on one base model, and the router that
//! picks a module for each request. One TOML file contains the shared model, the modules
//! (each a training config file or an inline table) and the router's settings.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::reft::InterventionConfig;
use crate::train::config::{
    read_config_text, resolve_against, ConfigError, DataSection, ModelSection, OutputSection,
    PresetInfo, TrainConfig, TrainingSection, CONFIG_VERSION,
};

/// A routed set of task modules. `reft-studio train` and the app train every module, then
/// the router, into one output folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    #[serde(default = "default_version")]
    pub version: u32,
    /// The set's name; the output folder defaults to runs/<name>.
    pub name: String,
    /// The base model every module is trained on and served with.
    pub model: ModelSection,
    #[serde(rename = "module")]
    pub modules: Vec<ModuleSpec>,
    #[serde(default)]
    pub router: RouterSettings,
    #[serde(default)]
    pub output: OutputSection,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<PresetInfo>,
    /// The folder relative paths resolve against: the config file's folder.
    #[serde(skip)]
    pub base_dir: Option<PathBuf>,
}

/// One task module: a name the router predicts, and its training config, either a file
/// (`config = "..."`) or inline `data`, `intervention` and `training` tables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleSpec {
    /// The module's id: letters, digits, '-' and '_'. It names the module's folder and is
    /// the label the router predicts.
    pub name: String,
    /// The name shown in the app, in each interface language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_en: Option<String>,
    #[serde(
        default,
        rename = "title_zh-CN",
        skip_serializing_if = "Option::is_none"
    )]
    pub title_zh_cn: Option<String>,
    /// A training config file; its [model] and [output] are replaced by the set's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<DataSection>,
    /// Written `[module.intervention]` for one intervention or `[[module.intervention]]` for several.
    #[serde(
        default,
        rename = "intervention",
        deserialize_with = "crate::train::config::one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub interventions: Vec<InterventionConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training: Option<TrainingSection>,
}

/// The pooling that turns a request's hidden states into the router's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// The mean over every prompt token.
    #[default]
    Mean,
    /// The last prompt token only.
    Last,
}

/// The router: a softmax classifier over the base model's hidden state after one block,
/// trained on the modules' training prompts, each labelled with its module's name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouterSettings {
    /// The block whose output the router reads; without one, the first module's first
    /// intervened block.
    pub layer: Option<usize>,
    pub pooling: Pooling,
    /// Requests the router never trains on (`text,label` rows whose labels are module
    /// names), for its accuracy on unseen requests.
    pub eval: Option<String>,
    /// Without an `eval` file, this share of each module's prompts is held out instead.
    pub eval_ratio: f64,
    /// Full-batch optimizer steps.
    pub steps: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub seed: u64,
}

impl Default for RouterSettings {
    fn default() -> Self {
        Self {
            layer: None,
            pooling: Pooling::Mean,
            eval: None,
            eval_ratio: 0.2,
            steps: 300,
            learning_rate: 1e-2,
            weight_decay: 1e-2,
            seed: 42,
        }
    }
}

fn default_version() -> u32 {
    CONFIG_VERSION
}

impl RoutingConfig {
    /// Reads a routing config; relative paths in it resolve against its folder.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = read_config_text(path)?;
        let mut config = Self::from_toml(&text).map_err(|reason| ConfigError::Parse {
            path: path.to_path_buf(),
            reason,
        })?;
        config.base_dir = path.parent().map(Path::to_path_buf);
        Ok(config)
    }

    pub fn from_toml(text: &str) -> Result<Self, String> {
        let config: Self = toml::from_str(text).map_err(|e| e.to_string())?;
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("the routing config serialises to TOML")
    }

    /// Checks what can be checked without reading module files, the model or the data.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: String, reason: String| ConfigError::Invalid { field, reason };
        if self.version != CONFIG_VERSION {
            return Err(invalid(
                "version".into(),
                format!(
                    "version {} is not supported: this build reads version {CONFIG_VERSION}",
                    self.version
                ),
            ));
        }
        if self.model.source.trim().is_empty() {
            return Err(invalid(
                "model.source".into(),
                "is empty: give a .gguf file, a model folder or a hub id".into(),
            ));
        }
        if self.modules.len() < 2 {
            return Err(invalid(
                "module".into(),
                format!(
                    "{} module(s) listed: a router needs at least two [[module]] tables",
                    self.modules.len()
                ),
            ));
        }

        let mut names = HashSet::new();
        for (i, module) in self.modules.iter().enumerate() {
            let field = format!("module {} ({:?})", i + 1, module.name);
            if !is_valid_module_name(&module.name) {
                return Err(invalid(
                    field,
                    "the name must be 1-64 letters, digits, '-' or '_', because it names the module's folder".into(),
                ));
            }
            if !names.insert(module.name.as_str()) {
                return Err(invalid(
                    field,
                    "another module has the same name: give each module its own".into(),
                ));
            }
            let inline = module.data.is_some()
                || !module.interventions.is_empty()
                || module.training.is_some();
            if module.config.is_some() && inline {
                return Err(invalid(
                    field,
                    "has both `config` and inline data/intervention/training tables: keep one of the two".into(),
                ));
            }
            if module.config.is_none() && module.data.is_none() {
                return Err(invalid(
                    field,
                    "has neither `config = \"FILE\"` nor a [module.data] table".into(),
                ));
            }
        }

        let router = &self.router;
        if !(0.0..1.0).contains(&router.eval_ratio) {
            return Err(invalid(
                "router.eval_ratio".into(),
                format!("{} must be in [0, 1)", router.eval_ratio),
            ));
        }
        if router.steps == 0 {
            return Err(invalid("router.steps".into(), "must be at least 1".into()));
        }
        if !(router.learning_rate > 0.0 && router.learning_rate.is_finite()) {
            return Err(invalid(
                "router.learning_rate".into(),
                format!("{} must be a positive number", router.learning_rate),
            ));
        }
        Ok(())
    }

    /// Resolves a path written in the config against the config's folder.
    pub fn resolve_path(&self, value: &str) -> PathBuf {
        resolve_against(self.base_dir.as_deref(), value)
    }

    /// The output folder: `output.dir`, else runs/<name> beside the config.
    pub fn output_dir(&self) -> PathBuf {
        match &self.output.dir {
            Some(dir) => self.resolve_path(dir),
            None => self.resolve_path(&format!("runs/{}", self.name)),
        }
    }

    /// The training config of every module, in order: the module's file or inline tables,
    /// with the set's model and an output folder of `<output>/modules/<name>`.
    pub fn module_configs(&self) -> Result<Vec<TrainConfig>, ConfigError> {
        let output_dir =
            std::path::absolute(self.output_dir()).unwrap_or_else(|_| self.output_dir());
        let mut configs = Vec::with_capacity(self.modules.len());

        for module in &self.modules {
            let mut config = match &module.config {
                Some(file) => TrainConfig::load(&self.resolve_path(file))?,
                None => self.inline_config(module)?,
            };
            config.name = Some(module.name.clone());
            config.model = self.model.clone();
            // The model path is written relative to this file, not the module's.
            if self.resolve_path(&self.model.source).exists() {
                config.model.source = self
                    .resolve_path(&self.model.source)
                    .to_string_lossy()
                    .into_owned();
            }
            config.output.dir = Some(
                output_dir
                    .join("modules")
                    .join(&module.name)
                    .to_string_lossy()
                    .into_owned(),
            );
            configs.push(config);
        }
        Ok(configs)
    }

    fn inline_config(&self, module: &ModuleSpec) -> Result<TrainConfig, ConfigError> {
        let data = module.data.clone().ok_or_else(|| ConfigError::Invalid {
            field: format!("module {:?}", module.name),
            reason: "has no [module.data] table".into(),
        })?;
        let mut config = TrainConfig {
            version: CONFIG_VERSION,
            name: Some(module.name.clone()),
            model: self.model.clone(),
            data,
            interventions: module.interventions.clone(),
            training: module.training.clone().unwrap_or_default(),
            output: OutputSection::default(),
            preset: None,
            base_dir: self.base_dir.clone(),
            resume_from: None,
        };
        config.fill_default_interventions();
        config.validate().map_err(|error| ConfigError::Invalid {
            field: format!("module {:?}", module.name),
            reason: error.to_string(),
        })?;
        Ok(config)
    }

    /// A copy whose file paths are absolute, so it can be saved in the output folder.
    pub fn resolved(&self) -> Self {
        let mut copy = self.clone();
        let absolute = |value: &str| -> String {
            let path = self.resolve_path(value);
            std::path::absolute(&path)
                .unwrap_or(path)
                .to_string_lossy()
                .into_owned()
        };
        for module in &mut copy.modules {
            if let Some(file) = &module.config {
                module.config = Some(absolute(file));
            }
            if let Some(data) = &mut module.data {
                data.train = absolute(&data.train);
                data.eval = data.eval.as_deref().map(absolute);
            }
        }
        copy.router.eval = self.router.eval.as_deref().map(absolute);
        if self.resolve_path(&self.model.source).exists() {
            copy.model.source = absolute(&self.model.source);
        }
        copy.output.dir = Some(absolute(&self.output_dir().to_string_lossy()));
        copy.base_dir = None;
        copy
    }
}

impl ModuleSpec {
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

fn is_valid_module_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

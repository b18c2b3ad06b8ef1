//! The setup form's part for a routed set: the modules it trains, their data, and the
//! requests that measure the router. The model field above it is the form's usual one.

use std::path::{Path, PathBuf};

use crate::app::i18n::{Language, Translator};
use crate::data::{load_file, LoadOptions};
use crate::routing::RoutingConfig;
use crate::train::config::ModelSection;

/// One module as the form shows it.
struct ModuleSummary {
    name: String,
    title: [String; 2],
    data_path: PathBuf,
    /// The number of training rows, or why the file cannot be read.
    rows: Result<usize, String>,
    layers: String,
}

/// A routed set being set up.
pub struct RoutedSetup {
    config: RoutingConfig,
    /// The modules, or why their configs cannot be read.
    modules: Result<Vec<ModuleSummary>, String>,
    /// The number of unseen requests in `router.eval`, or why they cannot be read.
    unseen: Option<Result<usize, String>>,
}

impl RoutedSetup {
    /// Reads the module configs and counts the rows of each data file.
    pub fn new(config: RoutingConfig) -> Self {
        // NOTE: the data files are read on the UI thread; preset files are small, but a
        // module pointing at a very large file stalls the window while it loads.
        let modules = config
            .module_configs()
            .map_err(|e| e.to_string())
            .map(|module_configs| {
                config
                    .modules
                    .iter()
                    .zip(module_configs)
                    .map(|(spec, module_config)| {
                        let data_path = module_config.resolve_path(&module_config.data.train);
                        ModuleSummary {
                            name: spec.name.clone(),
                            title: [spec.title(false).to_string(), spec.title(true).to_string()],
                            rows: count_rows(&data_path),
                            data_path,
                            layers: module_config
                                .interventions
                                .iter()
                                .map(|i| serde_json::to_string(&i.layers).unwrap_or_default())
                                .collect::<Vec<_>>()
                                .join(", "),
                        }
                    })
                    .collect()
            });
        let unseen = config
            .router
            .eval
            .as_deref()
            .map(|file| count_rows(&config.resolve_path(file)));
        Self {
            config,
            modules,
            unseen,
        }
    }

    pub fn config(&self) -> &RoutingConfig {
        &self.config
    }

    pub fn show(&self, ui: &mut egui::Ui, tr: &Translator) {
        ui.strong(tr.tf("routed.modules", &[("count", &self.config.modules.len())]));
        ui.label(egui::RichText::new(tr.t("routed.help")).weak());
        let chinese = tr.language() == Language::SimplifiedChinese;

        match &self.modules {
            Ok(modules) => {
                egui::Grid::new("routed_modules")
                    .num_columns(4)
                    .striped(true)
                    .show(ui, |ui| {
                        ui.strong(tr.t("routed.module"));
                        ui.strong(tr.t("routed.data"));
                        ui.strong(tr.t("routed.rows"));
                        ui.strong(tr.t("routed.layers"));
                        ui.end_row();
                        for module in modules {
                            ui.label(&module.title[usize::from(chinese)])
                                .on_hover_text(&module.name);
                            ui.monospace(file_name(&module.data_path));
                            match &module.rows {
                                Ok(rows) => ui.label(rows.to_string()),
                                Err(error) => ui.colored_label(ui.visuals().error_fg_color, error),
                            };
                            ui.monospace(&module.layers);
                            ui.end_row();
                        }
                    });
            }
            Err(error) => {
                ui.colored_label(ui.visuals().error_fg_color, error);
            }
        }

        ui.add_space(4.0);
        match (&self.config.router.eval, &self.unseen) {
            (Some(file), Some(Ok(rows))) => {
                ui.label(tr.tf(
                    "routed.unseen_file",
                    &[("file", &file_name(Path::new(file))), ("count", rows)],
                ));
            }
            (Some(_), Some(Err(error))) => {
                ui.colored_label(ui.visuals().error_fg_color, error);
            }
            _ => {
                let percent = format!("{:.0}", self.config.router.eval_ratio * 100.0);
                ui.label(tr.tf("routed.unseen_share", &[("percent", &percent)]));
            }
        }
    }

    /// What stops training, in the interface language; engine messages stay English.
    pub fn problems(&self, tr: &Translator) -> Vec<String> {
        let mut problems = Vec::new();
        match &self.modules {
            Ok(modules) => {
                for module in modules {
                    if let Err(error) = &module.rows {
                        problems.push(tr.tf(
                            "routed.module_data_unreadable",
                            &[("module", &module.name), ("error", error)],
                        ));
                    }
                }
            }
            Err(error) => problems.push(tr.tf("setup.invalid_config", &[("error", error)])),
        }
        if let Some(Err(error)) = &self.unseen {
            problems.push(tr.tf("routed.unseen_unreadable", &[("error", error)]));
        }
        problems
    }

    /// The config to train: the form's model, and a new folder under `runs_dir` when the
    /// set names no output folder.
    pub fn build(
        &self,
        model: &ModelSection,
        run_dir: impl FnOnce(&str) -> PathBuf,
    ) -> RoutingConfig {
        let mut config = self.config.clone();
        config.model = model.clone();
        if config.output.dir.is_none() {
            config.output.dir = Some(run_dir(&config.name).to_string_lossy().into_owned());
        }
        config
    }
}

fn count_rows(path: &Path) -> Result<usize, String> {
    let options = LoadOptions {
        strict: true,
        ..LoadOptions::default()
    };
    load_file(path, &options)
        .map(|data| data.examples.len())
        .map_err(|e| e.to_string())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

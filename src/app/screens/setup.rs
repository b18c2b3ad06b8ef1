//! The setup form: model, dataset (with a preview), intervention and training settings.
//! It edits a `TrainConfig` in place and hands a validated copy to the training screen.

use std::path::{Path, PathBuf};

use crate::app::file_dialog::{FileDialog, FilePurpose, FileRequest};
use crate::app::i18n::Translator;
use crate::app::screens::training::format_duration;
use crate::app::widgets::dataset_preview;
use crate::data::{load_file, LoadOptions, LoadedData, Task};
use crate::model::config::ModelConfig;
use crate::model::download::{spawn_download, Download, DownloadUpdate};
use crate::model::gguf;
use crate::model::hub::{list_local_models, DownloadEvent, HubOptions, LocalModel};
use crate::model::source::{ModelFiles, ModelSpec};
use crate::reft::intervention::{InterventionKind, LayerSelection};
use crate::reft::positions::Positions;
use crate::reft::InterventionConfig;
use crate::routing::RoutingConfig;
use crate::train::config::TrainConfig;
use crate::train::preflight::{estimate, DataStats, Estimate, Machine};

use super::routed_setup::RoutedSetup;
use super::start::task_name;

/// Layer range offered when the model's layer count is unknown.
const UNKNOWN_LAYER_MAX: usize = 64;
const DATA_EXTENSIONS: &[&str] = &["jsonl", "json", "csv", "tsv"];

/// A request from the setup form to the app.
#[derive(Debug, Clone)]
pub enum SetupAction {
    Back,
    Train(Box<TrainConfig>),
    TrainRouted(Box<RoutingConfig>),
}

/// The dataset as last read, keyed by what it was read with.
struct DatasetPreview {
    path: PathBuf,
    prompt_template: Option<String>,
    result: Result<LoadedData, String>,
}

/// The shape of the model named by `source`, or None when it cannot be read cheaply.
struct ModelShape {
    source: String,
    config: Option<ModelConfig>,
}

/// The setting of the form's layer control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LayerMode {
    Middle,
    One,
    All,
    /// Several listed layers, kept as the config has them.
    Several,
}

pub struct SetupForm {
    config: TrainConfig,
    positions_text: String,
    positions_error: Option<String>,
    /// The output folder as typed; empty picks a new folder under the app's data folder.
    output_text: String,
    /// The prompt template as typed; empty means none.
    template_text: String,
    /// The classification labels as typed, separated by commas; empty takes them from the data.
    labels_text: String,
    preview: Option<DatasetPreview>,
    model_shape: Option<ModelShape>,
    local_models: Option<Vec<LocalModel>>,
    hub_options: HubOptions,
    /// The parent of the new output folder made when the output field is empty.
    runs_dir: PathBuf,
    download: Option<DownloadState>,
    /// Set for a routed set: the form then shows its modules instead of the dataset and
    /// intervention sections, and `config` holds only the shared model.
    routed: Option<RoutedSetup>,
}

/// A hub download started from the form, and what it has reported so far.
struct DownloadState {
    handle: Download,
    file: Option<String>,
    bytes: u64,
    total_bytes: Option<u64>,
    result: Option<Result<PathBuf, String>>,
}

impl SetupForm {
    /// Creates a form filled from `config`, such as a preset.
    pub fn from_config(
        mut config: TrainConfig,
        hub_options: HubOptions,
        runs_dir: PathBuf,
    ) -> Self {
        if config.interventions.is_empty() {
            config.interventions.push(InterventionConfig::default());
        }
        let positions_text = config.interventions[0].positions.to_string();
        let output_text = config.output.dir.clone().unwrap_or_default();
        let template_text = config.data.prompt_template.clone().unwrap_or_default();
        let labels_text = config.data.labels.join(", ");
        Self {
            config,
            positions_text,
            positions_error: None,
            output_text,
            template_text,
            labels_text,
            preview: None,
            model_shape: None,
            local_models: None,
            hub_options,
            runs_dir,
            download: None,
            routed: None,
        }
    }

    /// Creates a form for a routed set: its model in the model section, its modules below.
    pub fn from_routing(config: RoutingConfig, hub_options: HubOptions, runs_dir: PathBuf) -> Self {
        let mut model_holder: TrainConfig =
            toml::from_str("[model]\nsource = \"\"\n[data]\ntrain = \"\"\n")
                .expect("the minimal config parses");
        model_holder.fill_default_interventions();
        model_holder.model = config.model.clone();
        model_holder.base_dir = config.base_dir.clone();
        let mut form = Self::from_config(model_holder, hub_options, runs_dir);
        form.routed = Some(RoutedSetup::new(config));
        form
    }

    pub fn routed(&self) -> Option<&RoutedSetup> {
        self.routed.as_ref()
    }

    /// Creates an empty form with the engine's defaults.
    pub fn empty(hub_options: HubOptions, runs_dir: PathBuf) -> Self {
        let mut config: TrainConfig =
            toml::from_str("[model]\nsource = \"\"\n[data]\ntrain = \"\"\n")
                .expect("the minimal config parses");
        config.fill_default_interventions();
        Self::from_config(config, hub_options, runs_dir)
    }

    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    pub fn model_source(&self) -> &str {
        &self.config.model.source
    }

    /// Returns the dataset as last read: its examples and problems, or the reason it could not be read.
    pub fn dataset(&self) -> Option<&Result<LoadedData, String>> {
        self.preview.as_ref().map(|preview| &preview.result)
    }

    pub fn set_dataset(&mut self, path: &Path) {
        self.config.data.train = path.to_string_lossy().into_owned();
    }

    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        tr: &Translator,
        dialog: &dyn FileDialog,
    ) -> Option<SetupAction> {
        self.accept_dropped_files(ui.ctx());
        self.refresh_dataset();
        self.poll_download();
        self.refresh_model_shape();

        let mut action = None;
        ui.horizontal(|ui| {
            if ui.button(tr.t("setup.back")).clicked() {
                action = Some(SetupAction::Back);
            }
            ui.heading(tr.t("setup.title"));
        });
        ui.add_space(6.0);

        self.model_section(ui, tr, dialog);
        ui.separator();
        if let Some(routed) = &self.routed {
            routed.show(ui, tr);
            ui.separator();
            let problems = self.problems(tr);
            self.train_row(ui, tr, &problems, &mut action);
            return action;
        }
        self.dataset_section(ui, tr, dialog);
        ui.separator();
        self.intervention_section(ui, tr);
        ui.separator();
        egui::CollapsingHeader::new(tr.t("setup.advanced"))
            .id_salt("advanced")
            .show(ui, |ui| self.advanced_section(ui, tr));
        ui.separator();

        let problems = self.problems(tr);
        self.train_row(ui, tr, &problems, &mut action);
        self.preflight_line(ui, tr);
        action
    }

    /// The Train button (enabled when nothing stops training) and the problems under it.
    fn train_row(
        &self,
        ui: &mut egui::Ui,
        tr: &Translator,
        problems: &[String],
        action: &mut Option<SetupAction>,
    ) {
        ui.horizontal(|ui| {
            let train = ui
                .add_enabled(problems.is_empty(), egui::Button::new(tr.t("setup.train")))
                .on_disabled_hover_text(problems.join("\n"));
            if train.clicked() {
                *action = self.train_action();
            }
            if problems.is_empty() {
                ui.label(tr.t("setup.ready"));
            }
        });
        for problem in problems {
            ui.colored_label(ui.visuals().error_fg_color, problem);
        }
    }

    /// The action the Train button sends, or None when the form is not valid.
    pub fn train_action(&self) -> Option<SetupAction> {
        match &self.routed {
            Some(routed) => {
                let config =
                    routed.build(&self.config.model, |name| new_run_dir(&self.runs_dir, name));
                Some(SetupAction::TrainRouted(Box::new(config)))
            }
            None => self
                .build_config()
                .map(|config| SetupAction::Train(Box::new(config))),
        }
    }

    fn model_section(&mut self, ui: &mut egui::Ui, tr: &Translator, dialog: &dyn FileDialog) {
        ui.strong(tr.t("setup.model_section"));
        ui.horizontal(|ui| {
            let label = ui
                .label(tr.t("setup.model"))
                .on_hover_text(tr.t("setup.model_help"));
            ui.add(egui::TextEdit::singleline(&mut self.config.model.source).desired_width(420.0))
                .labelled_by(label.id);
            if ui.button(tr.t("setup.browse_file")).clicked() {
                let request = FileRequest {
                    purpose: FilePurpose::ModelFile,
                    title: tr.t("setup.pick_model_title"),
                    filter_name: tr.t("setup.model_filter"),
                    extensions: &["gguf"],
                    suggested_name: None,
                };
                if let Some(path) = dialog.pick(&request) {
                    self.config.model.source = path.to_string_lossy().into_owned();
                }
            }
            if ui.button(tr.t("setup.browse_folder")).clicked() {
                let request = FileRequest {
                    purpose: FilePurpose::ModelFolder,
                    title: tr.t("setup.pick_model_folder_title"),
                    filter_name: String::new(),
                    extensions: &[],
                    suggested_name: None,
                };
                if let Some(path) = dialog.pick(&request) {
                    self.config.model.source = path.to_string_lossy().into_owned();
                }
            }
        });
        help(ui, tr.t("setup.model_help"));

        let local_models = self
            .local_models
            .get_or_insert_with(|| list_local_models(&self.hub_options));
        ui.horizontal_wrapped(|ui| {
            ui.label(tr.t("setup.local_models"));
            if local_models.is_empty() {
                ui.weak(tr.t("setup.no_local_models"));
            }
            for model in local_models.iter() {
                if ui.small_button(&model.repo).clicked() {
                    self.config.model.source = model.repo.clone();
                }
            }
        });
        if ui.small_button(tr.t("setup.refresh_models")).clicked() {
            self.local_models = None;
        }

        self.download_row(ui, tr);

        ui.checkbox(&mut self.config.model.offline, tr.t("setup.offline"))
            .on_hover_text(tr.t("setup.offline_help"));
    }

    fn dataset_section(&mut self, ui: &mut egui::Ui, tr: &Translator, dialog: &dyn FileDialog) {
        ui.strong(tr.t("setup.data_section"));
        ui.horizontal(|ui| {
            let label = ui
                .label(tr.t("setup.dataset"))
                .on_hover_text(tr.t("setup.dataset_help"));
            ui.add(egui::TextEdit::singleline(&mut self.config.data.train).desired_width(420.0))
                .labelled_by(label.id);
            if ui.button(tr.t("setup.browse_dataset")).clicked() {
                let request = FileRequest {
                    purpose: FilePurpose::Dataset,
                    title: tr.t("setup.pick_dataset_title"),
                    filter_name: tr.t("setup.dataset_filter"),
                    extensions: DATA_EXTENSIONS,
                    suggested_name: None,
                };
                if let Some(path) = dialog.pick(&request) {
                    self.set_dataset(&path);
                    self.refresh_dataset();
                }
            }
            if ui.button(tr.t("setup.reload_dataset")).clicked() {
                self.preview = None;
                self.refresh_dataset();
            }
        });
        help(ui, tr.t("setup.dataset_help"));
        if ui.ctx().input(|input| !input.raw.hovered_files.is_empty()) {
            ui.label(tr.t("setup.drop_hint"));
        }

        match self.preview.as_ref().map(|preview| &preview.result) {
            None => {
                ui.weak(tr.t("setup.no_dataset"));
            }
            Some(Err(error)) => {
                ui.colored_label(
                    ui.visuals().error_fg_color,
                    tr.tf("setup.dataset_error", &[("error", error)]),
                );
            }
            Some(Ok(data)) => {
                ui.label(tr.tf(
                    "setup.dataset_task",
                    &[("task", &task_name(tr, Some(data.task())))],
                ));
                dataset_preview::show(ui, tr, data);
            }
        }
        self.task_settings(ui, tr);
    }

    /// Draws the prompt template, the labels (for classification) and the held-out share.
    fn task_settings(&mut self, ui: &mut egui::Ui, tr: &Translator) {
        let classification = self.config.data.task == Some(Task::Classification)
            || matches!(self.preview.as_ref().map(|p| &p.result), Some(Ok(data)) if data.task() == Task::Classification);
        egui::Grid::new("task_settings")
            .num_columns(3)
            .spacing([8.0, 6.0])
            .show(ui, |ui| {
                let label = ui.label(tr.t("setup.prompt_template"));
                let template = ui
                    .add(egui::TextEdit::singleline(&mut self.template_text).desired_width(320.0))
                    .labelled_by(label.id);
                if template.changed() {
                    let text = self.template_text.trim();
                    self.config.data.prompt_template = (!text.is_empty()).then(|| text.to_string());
                }
                ui.label(egui::RichText::new(tr.t("setup.prompt_template_help")).weak());
                ui.end_row();
                if classification {
                    let label = ui.label(tr.t("setup.labels"));
                    let labels = ui
                        .add(egui::TextEdit::singleline(&mut self.labels_text).desired_width(320.0))
                        .labelled_by(label.id);
                    if labels.changed() {
                        self.config.data.labels = self
                            .labels_text
                            .split([',', '，'])
                            .map(str::trim)
                            .filter(|label| !label.is_empty())
                            .map(str::to_string)
                            .collect();
                    }
                    ui.label(egui::RichText::new(tr.t("setup.labels_help")).weak());
                    ui.end_row();
                }
                row(
                    ui,
                    tr.t("setup.eval_ratio"),
                    tr.t("setup.eval_ratio_help"),
                    |ui| {
                        ui.add_enabled(
                            self.config.data.eval.is_none(),
                            egui::DragValue::new(&mut self.config.data.eval_ratio)
                                .range(0.0..=0.5)
                                .speed(0.01),
                        );
                    },
                );
            });
    }

    fn intervention_section(&mut self, ui: &mut egui::Ui, tr: &Translator) {
        ui.strong(tr.t("setup.intervention_section"));
        if self.config.interventions.len() > 1 {
            ui.label(tr.tf(
                "setup.several_interventions",
                &[("count", &self.config.interventions.len())],
            ));
        }
        let layer_count = self.layer_count();
        let intervention = &mut self.config.interventions[0];

        ui.horizontal(|ui| {
            ui.label(tr.t("setup.intervention_type"))
                .on_hover_text(tr.t("setup.intervention_type_help"));
            egui::ComboBox::from_id_salt("intervention_type")
                .selected_text(intervention.kind.name())
                .show_ui(ui, |ui| {
                    for kind in InterventionKind::ALL {
                        ui.selectable_value(&mut intervention.kind, kind, kind.name())
                            .on_hover_text(kind_help(tr, kind));
                    }
                });
            ui.weak(kind_help(tr, intervention.kind));
        });

        ui.horizontal(|ui| {
            ui.label(tr.t("setup.layer"))
                .on_hover_text(tr.t("setup.layer_help"));
            let mut mode = match &intervention.layers {
                LayerSelection::Middle => LayerMode::Middle,
                LayerSelection::All => LayerMode::All,
                LayerSelection::List(layers) if layers.len() == 1 => LayerMode::One,
                LayerSelection::List(_) => LayerMode::Several,
                LayerSelection::Depth(_) => LayerMode::One,
            };
            let before = mode;
            ui.selectable_value(&mut mode, LayerMode::Middle, tr.t("setup.layer_middle"));
            ui.selectable_value(&mut mode, LayerMode::One, tr.t("setup.layer_one"));
            ui.selectable_value(&mut mode, LayerMode::All, tr.t("setup.layer_all"));
            if mode != before {
                intervention.layers = match mode {
                    LayerMode::Middle => LayerSelection::Middle,
                    LayerMode::All => LayerSelection::All,
                    LayerMode::One | LayerMode::Several => {
                        LayerSelection::List(vec![layer_count.map(|count| count / 2).unwrap_or(0)])
                    }
                };
            }
            let max_layer = layer_count
                .map(|count| count.saturating_sub(1))
                .unwrap_or(UNKNOWN_LAYER_MAX);
            // Once the model's depth is known, a depth such as "60%" shows as the block it means.
            if let (LayerSelection::Depth(_), Some(count)) = (&intervention.layers, layer_count) {
                intervention.layers = LayerSelection::List(intervention.resolved_layers(count));
            }
            match &mut intervention.layers {
                LayerSelection::List(layers) if layers.len() == 1 => {
                    ui.add(egui::Slider::new(&mut layers[0], 0..=max_layer));
                }
                LayerSelection::List(layers) => {
                    ui.label(format!("{layers:?}"));
                }
                LayerSelection::Depth(percent) => {
                    ui.label(format!("{percent}%"));
                }
                LayerSelection::Middle | LayerSelection::All => {}
            }
        });
        let count_text = match layer_count {
            Some(count) => tr.tf("setup.layer_count", &[("count", &count)]),
            None => tr.tf("setup.layer_count_unknown", &[("max", &UNKNOWN_LAYER_MAX)]),
        };
        help(ui, format!("{} {count_text}", tr.t("setup.layer_help")));

        ui.horizontal(|ui| {
            ui.label(tr.t("setup.rank"))
                .on_hover_text(tr.t("setup.rank_help"));
            ui.add(egui::DragValue::new(&mut intervention.rank).range(1..=256));
        });
        help(ui, tr.t("setup.rank_help"));

        ui.horizontal(|ui| {
            let label = ui
                .label(tr.t("setup.positions"))
                .on_hover_text(tr.t("setup.positions_help"));
            let edit = ui
                .add(egui::TextEdit::singleline(&mut self.positions_text).desired_width(120.0))
                .labelled_by(label.id);
            if edit.changed() {
                match Positions::parse(&self.positions_text) {
                    Ok(positions) => {
                        intervention.positions = positions;
                        self.positions_error = None;
                    }
                    Err(error) => self.positions_error = Some(error),
                }
            }
        });
        help(ui, tr.t("setup.positions_help"));
    }

    fn advanced_section(&mut self, ui: &mut egui::Ui, tr: &Translator) {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let training = &mut self.config.training;
        let intervention = &mut self.config.interventions[0];
        egui::Grid::new("advanced_grid")
            .num_columns(3)
            .show(ui, |ui| {
                row(
                    ui,
                    tr.t("setup.learning_rate"),
                    tr.t("setup.learning_rate_help"),
                    |ui| {
                        ui.add(
                            egui::DragValue::new(&mut training.learning_rate)
                                .range(1e-6..=1.0)
                                .speed(1e-4)
                                .max_decimals(6),
                        );
                    },
                );
                row(ui, tr.t("setup.epochs"), tr.t("setup.epochs_help"), |ui| {
                    ui.add(egui::DragValue::new(&mut training.epochs).range(0..=10_000));
                });
                row(
                    ui,
                    tr.t("setup.max_steps"),
                    tr.t("setup.max_steps_help"),
                    |ui| {
                        ui.add(egui::DragValue::new(&mut training.max_steps).range(0..=1_000_000));
                    },
                );
                row(
                    ui,
                    tr.t("setup.batch_size"),
                    tr.t("setup.batch_size_help"),
                    |ui| {
                        ui.add(egui::DragValue::new(&mut training.batch_size).range(1..=4096));
                    },
                );
                row(ui, tr.t("setup.scale"), tr.t("setup.scale_help"), |ui| {
                    ui.add(
                        egui::DragValue::new(&mut intervention.scale)
                            .range(0.0..=100.0)
                            .speed(0.01),
                    );
                });
                row(
                    ui,
                    tr.t("setup.dropout"),
                    tr.t("setup.dropout_help"),
                    |ui| {
                        ui.add(
                            egui::DragValue::new(&mut intervention.dropout)
                                .range(0.0..=0.99)
                                .speed(0.01),
                        );
                    },
                );
                row(ui, tr.t("setup.seed"), tr.t("setup.seed_help"), |ui| {
                    ui.add(egui::DragValue::new(&mut training.seed));
                });
                row(
                    ui,
                    tr.t("setup.threads"),
                    tr.t("setup.threads_help"),
                    |ui| {
                        ui.add(egui::DragValue::new(&mut training.threads).range(0..=cores));
                    },
                );
                row(
                    ui,
                    tr.t("setup.shift_every"),
                    tr.t("setup.shift_every_help"),
                    |ui| {
                        ui.add(egui::DragValue::new(&mut training.shift_every).range(0..=100_000));
                    },
                );
                row(
                    ui,
                    tr.t("setup.output_dir"),
                    tr.t("setup.output_dir_help"),
                    |ui| {
                        ui.add(
                            egui::TextEdit::singleline(&mut self.output_text).desired_width(320.0),
                        );
                    },
                );
            });
    }

    /// Everything that stops training, in the interface language. Engine messages inside
    /// them stay in English.
    pub fn problems(&self, tr: &Translator) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(routed) = &self.routed {
            if self.config.model.source.trim().is_empty() {
                problems.push(tr.t("setup.model_missing"));
            }
            self.model_problems(tr, &mut problems);
            problems.extend(routed.problems(tr));
            return problems;
        }
        if let Err(error) = self.config.validate() {
            problems.push(tr.tf("setup.invalid_config", &[("error", &error)]));
        }
        self.model_problems(tr, &mut problems);
        if let Some(error) = &self.positions_error {
            problems.push(tr.tf("setup.invalid_positions", &[("error", error)]));
        }
        if let (Some(count), LayerSelection::List(layers)) =
            (self.layer_count(), &self.config.interventions[0].layers)
        {
            if let Some(layer) = layers.iter().find(|layer| **layer >= count) {
                problems.push(tr.tf(
                    "setup.layer_out_of_range",
                    &[("layer", layer), ("count", &count)],
                ));
            }
        }
        match self.preview.as_ref().map(|preview| &preview.result) {
            Some(Ok(data)) if !data.problems.is_empty() => {
                problems.push(tr.tf(
                    "setup.data_has_problems",
                    &[("count", &data.problems.len())],
                ));
            }
            Some(Err(_)) => problems.push(tr.t("setup.data_unreadable")),
            _ => {}
        }
        problems
    }

    /// Adds the problems with the model field: a spec that does not parse, or a file that
    /// is not a readable model.
    fn model_problems(&self, tr: &Translator, problems: &mut Vec<String>) {
        if !self.config.model.source.trim().is_empty() {
            if let Err(error) =
                ModelSpec::parse(&self.config.model.source, self.config.base_dir.as_deref())
            {
                problems.push(tr.tf("setup.invalid_model", &[("error", &error)]));
            }
        }
        let unreadable_file = matches!(
            ModelSpec::parse(&self.config.model.source, self.config.base_dir.as_deref()),
            Ok(ModelSpec::Path(_))
        ) && self
            .model_shape
            .as_ref()
            .is_some_and(|shape| shape.config.is_none());
        if unreadable_file {
            problems.push(tr.t("setup.model_unreadable"));
        }
    }

    /// Builds the config to train with: the form's settings plus an output folder. Returns None
    /// when the form is not valid.
    pub fn build_config(&self) -> Option<TrainConfig> {
        let mut config = self.config.clone();
        let output = self.output_text.trim();
        config.output.dir = Some(if output.is_empty() {
            new_run_dir(&self.runs_dir, &config.run_name())
                .to_string_lossy()
                .into_owned()
        } else {
            output.to_string()
        });
        config.validate().ok()?;
        Some(config)
    }

    fn accept_dropped_files(&mut self, ctx: &egui::Context) {
        let dropped = ctx.input(|input| {
            input
                .raw
                .dropped_files
                .iter()
                .find_map(|file| file.path.clone())
        });
        if let Some(path) = dropped {
            tracing::debug!(path = %path.display(), "dataset dropped on the window");
            self.set_dataset(&path);
        }
    }

    /// Reads the dataset again when its path or prompt template changed.
    fn refresh_dataset(&mut self) {
        if self.config.data.train.trim().is_empty() {
            self.preview = None;
            return;
        }
        let path = self.config.resolve_path(self.config.data.train.trim());
        let template = self.config.data.prompt_template.clone();
        if self
            .preview
            .as_ref()
            .is_some_and(|preview| preview.path == path && preview.prompt_template == template)
        {
            return;
        }
        // NOTE: the whole file is read on the UI thread so that a problem on any row disables
        // Train. A very large file stalls the window while it loads.
        let options = LoadOptions {
            prompt_template: template.clone(),
            strict: false,
            max_rows: None,
        };
        let result = load_file(&path, &options).map_err(|error| error.to_string());
        if let Err(error) = &result {
            tracing::info!(path = %path.display(), %error, "dataset preview failed");
        }
        // Classification data gets the classification default, unless the user (or a preset)
        // already chose something other than the instruction default.
        let untouched = self.config.interventions.len() == 1
            && self.config.interventions[0] == InterventionConfig::default();
        if let Ok(data) = &result {
            if data.task() == Task::Classification && self.config.data.task.is_none() && untouched {
                self.config.interventions[0] =
                    InterventionConfig::default_for(Task::Classification);
                self.positions_text = self.config.interventions[0].positions.to_string();
                tracing::info!(
                    "classification data: the intervention takes the classification default"
                );
            }
        }
        self.preview = Some(DatasetPreview {
            path,
            prompt_template: template,
            result,
        });
    }

    /// Fills an empty form with the model and dataset of the last run, where they still
    /// exist.
    pub fn prefill(&mut self, model: Option<&str>, dataset: Option<&Path>) {
        if let Some(model) = model.filter(|m| !m.trim().is_empty()) {
            self.config.model.source = model.to_string();
        }
        if let Some(dataset) = dataset.filter(|path| path.is_file()) {
            self.set_dataset(dataset);
        }
    }

    /// Returns the hub address the form downloads from.
    pub fn hub_endpoint(&self) -> &str {
        &self.hub_options.endpoint
    }

    /// Returns true when the model field names a hub model that is not on this computer.
    fn needs_download(&self) -> bool {
        let Ok(ModelSpec::Hub { repo, .. }) = ModelSpec::parse(
            self.config.model.source.trim(),
            self.config.base_dir.as_deref(),
        ) else {
            return false;
        };
        !self
            .local_models
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|model| model.repo == repo)
    }

    /// Returns true while a download runs.
    pub fn is_downloading(&self) -> bool {
        self.download
            .as_ref()
            .is_some_and(|download| download.result.is_none())
    }

    /// Returns how the last download ended, once it has.
    pub fn download_result(&self) -> Option<&Result<PathBuf, String>> {
        self.download.as_ref()?.result.as_ref()
    }

    fn poll_download(&mut self) {
        let Some(download) = &mut self.download else {
            return;
        };
        for update in download.handle.poll() {
            match update {
                DownloadUpdate::Event(DownloadEvent::Started { file, total_bytes }) => {
                    download.file = Some(file);
                    download.bytes = 0;
                    download.total_bytes = total_bytes;
                }
                DownloadUpdate::Event(DownloadEvent::Progress {
                    bytes, total_bytes, ..
                }) => {
                    download.bytes = bytes;
                    download.total_bytes = total_bytes;
                }
                DownloadUpdate::Event(_) => {}
                DownloadUpdate::Done(result) => {
                    if result.is_ok() {
                        // The new model shows among the local ones, with its layer count.
                        self.local_models = None;
                        self.model_shape = None;
                    }
                    download.result = Some(result);
                }
            }
        }
    }

    fn download_row(&mut self, ui: &mut egui::Ui, tr: &Translator) {
        // A finished download's message belongs to the model it fetched; once the field
        // names another model, it goes.
        let current_repo = ModelSpec::parse(
            self.config.model.source.trim(),
            self.config.base_dir.as_deref(),
        )
        .ok()
        .and_then(|spec| spec.hub_repo().map(str::to_string));
        if self.download.as_ref().is_some_and(|d| {
            d.result.is_some() && current_repo.as_deref() != Some(d.handle.repo.as_str())
        }) {
            self.download = None;
        }
        if self.is_downloading() {
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_millis(100));
        }
        let downloading = self.is_downloading();
        if self.needs_download() || downloading {
            ui.horizontal(|ui| {
                let button = ui
                    .add_enabled(!downloading, egui::Button::new(tr.t("setup.download")))
                    .on_hover_text(tr.t("setup.download_help"));
                if button.clicked() {
                    self.start_download();
                }
                let label = ui.label(tr.t("setup.hub_endpoint"));
                ui.add_enabled(
                    !downloading,
                    egui::TextEdit::singleline(&mut self.hub_options.endpoint).desired_width(240.0),
                )
                .labelled_by(label.id)
                .on_hover_text(tr.t("setup.hub_endpoint_help"));
            });
        }
        let Some(download) = &self.download else {
            return;
        };
        match &download.result {
            None => {
                let fraction = download
                    .total_bytes
                    .filter(|&total| total > 0)
                    .map_or(0.0, |total| download.bytes as f32 / total as f32);
                let megabytes = |bytes: u64| format!("{:.1}", bytes as f64 / 1e6);
                let text = tr.tf(
                    "setup.downloading",
                    &[
                        ("file", &download.file.clone().unwrap_or_default()),
                        ("done", &megabytes(download.bytes)),
                        (
                            "total",
                            &download.total_bytes.map_or("?".to_string(), megabytes),
                        ),
                    ],
                );
                ui.add(egui::ProgressBar::new(fraction).text(text));
            }
            Some(Ok(path)) => {
                ui.label(tr.tf(
                    "setup.downloaded",
                    &[("repo", &download.handle.repo), ("path", &path.display())],
                ));
            }
            Some(Err(error)) => {
                ui.colored_label(ui.visuals().error_fg_color, tr.t("setup.download_failed"));
                ui.add(egui::Label::new(egui::RichText::new(error).monospace()).selectable(true));
                ui.label(tr.t("setup.download_failed_next"));
            }
        }
    }

    fn start_download(&mut self) {
        let source = self.config.model.source.trim().to_string();
        tracing::info!(model = %source, endpoint = %self.hub_options.endpoint, "download requested");
        match spawn_download(&source, self.hub_options.clone()) {
            Ok(handle) => {
                self.download = Some(DownloadState {
                    handle,
                    file: None,
                    bytes: 0,
                    total_bytes: None,
                    result: None,
                });
            }
            Err(error) => {
                tracing::warn!(%error, "download not started");
            }
        }
    }

    fn refresh_model_shape(&mut self) {
        let source = self.config.model.source.trim().to_string();
        if self
            .model_shape
            .as_ref()
            .is_some_and(|known| known.source == source)
        {
            return;
        }
        let local_models = self
            .local_models
            .get_or_insert_with(|| list_local_models(&self.hub_options));
        let config = read_model_config(&source, self.config.base_dir.as_deref(), local_models);
        self.model_shape = Some(ModelShape { source, config });
    }

    fn layer_count(&self) -> Option<usize> {
        self.model_shape
            .as_ref()?
            .config
            .as_ref()
            .map(|config| config.num_layers)
    }

    /// Returns the memory and time estimate, once the model's shape, the data and this
    /// computer's speed are known.
    pub fn preflight(&self) -> Option<Estimate> {
        let model = self.model_shape.as_ref()?.config.as_ref()?;
        let data = self.preview.as_ref()?.result.as_ref().ok()?;
        let machine = Machine::detected()?;
        let config = self.build_config()?;
        let stats = DataStats::from_examples(&data.examples, None, &config);
        Some(estimate(model, &config, &stats, &machine))
    }

    fn preflight_line(&self, ui: &mut egui::Ui, tr: &Translator) {
        let Some(estimate) = self.preflight() else {
            ui.weak(tr.t("setup.preflight_unknown"));
            return;
        };
        let gib = |bytes: u64| format!("{:.1}", bytes as f64 / (1u64 << 30) as f64);
        let available = Machine::detected().map_or(0, |machine| machine.available_memory_bytes);
        let text = tr.tf(
            "setup.preflight",
            &[
                ("memory", &gib(estimate.peak_memory_bytes)),
                ("available", &gib(available)),
                ("time", &format_duration(estimate.seconds)),
                ("steps", &estimate.steps),
            ],
        );
        if estimate.fits {
            ui.label(text);
        } else {
            ui.colored_label(
                ui.visuals().error_fg_color,
                format!("{text} {}", tr.t("setup.preflight_too_big")),
            );
        }
    }
}

/// Reads the model's shape from a .gguf header or a config.json, found directly or through
/// a local copy of a hub model. Nothing is downloaded.
fn read_model_config(
    source: &str,
    base_dir: Option<&Path>,
    local_models: &[LocalModel],
) -> Option<ModelConfig> {
    let files = match ModelSpec::parse(source, base_dir).ok()? {
        ModelSpec::Path(path) if path.is_dir() => ModelFiles::HfFolder(path),
        ModelSpec::Path(path) if path.is_file() => ModelFiles::Gguf(path),
        ModelSpec::Path(_) => return None,
        ModelSpec::Hub { repo, .. } => local_models
            .iter()
            .find(|model| model.repo == repo)?
            .files
            .clone(),
    };
    let config = match &files {
        ModelFiles::Gguf(path) => {
            let content = gguf::read_content(path).ok()?;
            ModelConfig::from_gguf(&content, path).ok()?
        }
        ModelFiles::HfFolder(folder) => {
            ModelConfig::from_hf_config(&folder.join("config.json")).ok()?
        }
    };
    Some(config)
}

/// Returns a new folder per run: <runs_dir>/<run name>-<YYYY-MM-DD-HHMMSS> (UTC).
fn new_run_dir(runs_dir: &Path, run_name: &str) -> PathBuf {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0);
    let (year, month, day) = crate::app::export::civil_date(seconds);
    let time = seconds % 86_400;
    let stamp = format!(
        "{year:04}-{month:02}-{day:02}-{:02}{:02}{:02}",
        time / 3600,
        (time / 60) % 60,
        time % 60
    );
    runs_dir.join(format!("{run_name}-{stamp}"))
}

fn kind_help(tr: &Translator, kind: InterventionKind) -> String {
    match kind {
        InterventionKind::Loreft => tr.t("intervention.loreft"),
        InterventionKind::Noreft => tr.t("intervention.noreft"),
        InterventionKind::Direft => tr.t("intervention.direft"),
        InterventionKind::Consreft => tr.t("intervention.consreft"),
        InterventionKind::Lobireft => tr.t("intervention.lobireft"),
        InterventionKind::Mlp => tr.t("intervention.mlp"),
    }
}

fn help(ui: &mut egui::Ui, text: String) {
    ui.label(egui::RichText::new(text).weak());
}

/// Draws one grid row: the name (with help on hover), the control, and the help text.
fn row(ui: &mut egui::Ui, name: String, help_text: String, control: impl FnOnce(&mut egui::Ui)) {
    ui.label(name).on_hover_text(&help_text);
    control(ui);
    ui.label(egui::RichText::new(help_text).weak());
    ui.end_row();
}

//! The runs list: runs in the runs folder (each a folder the trainer wrote, with an
//! adapter.safetensors or checkpoints, or a routed set's routing.json), newest first, with
//! their loss chart and config, and Export, Try it and Resume.

use std::path::{Path, PathBuf};

use crate::app::export::ExportState;
use crate::app::file_dialog::FileDialog;
use crate::app::i18n::Translator;
use crate::app::widgets::loss_chart::{self, LossSeries};
use crate::reft::adapter::{read_adapter, AdapterMetadata};
use crate::routing::{read_manifest, RoutingManifest, ROUTING_FILE};
use crate::train::config::TrainConfig;

/// The file name the trainer gives the adapter inside a run's output folder.
const ADAPTER_FILE: &str = "adapter.safetensors";

/// Returns the folder where the app puts runs by default: <data dir>/reft-studio/runs.
pub fn default_runs_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("reft-studio")
        .join("runs")
}

/// One run folder: its adapter's metadata (or why it could not be read), its losses, its
/// config and its newest checkpoint.
pub struct RunEntry {
    pub folder: PathBuf,
    pub adapter: PathBuf,
    /// None when the run has no adapter yet (it stopped before the end, between checkpoints),
    /// and for a routed set.
    pub metadata: Option<Result<AdapterMetadata, String>>,
    /// A routed set's routing.json (then `adapter` is its path), or why it could not be read.
    pub routed: Option<Result<RoutingManifest, String>>,
    pub loss: LossSeries,
    /// The resolved config the trainer wrote, as text.
    pub config_text: Option<String>,
    /// The newest checkpoint and its step.
    pub checkpoint: Option<(PathBuf, usize)>,
    /// Modification time of the adapter or metrics.jsonl, whichever is newer, for the order
    /// of the list.
    modified: std::time::SystemTime,
}

impl RunEntry {
    fn read(folder: PathBuf) -> Option<RunEntry> {
        let manifest = folder.join(ROUTING_FILE);
        if manifest.is_file() {
            return Some(Self::read_routed(folder, manifest));
        }
        let adapter = folder.join(ADAPTER_FILE);
        let checkpoint = newest_checkpoint(&folder.join("checkpoints"));
        if !adapter.is_file() && checkpoint.is_none() {
            return None;
        }
        let metadata = adapter.is_file().then(|| {
            read_adapter(&adapter).map(|(metadata, _)| metadata).map_err(|error| {
                tracing::warn!(adapter = %adapter.display(), %error, "could not read a run's adapter");
                error.to_string()
            })
        });
        let metrics = std::fs::read_to_string(folder.join("metrics.jsonl")).unwrap_or_default();
        let modified = [adapter.clone(), folder.join("metrics.jsonl")]
            .iter()
            .filter_map(|path| path.metadata().and_then(|m| m.modified()).ok())
            .max()
            .unwrap_or(std::time::UNIX_EPOCH);
        Some(RunEntry {
            loss: LossSeries::from_metrics(&metrics),
            config_text: std::fs::read_to_string(folder.join("config.toml")).ok(),
            folder,
            adapter,
            metadata,
            routed: None,
            checkpoint,
            modified,
        })
    }

    /// Reads a routed set's folder: its routing.json, and routing.toml as the config.
    fn read_routed(folder: PathBuf, manifest: PathBuf) -> RunEntry {
        let routed = read_manifest(&manifest).inspect_err(|error| {
            tracing::warn!(manifest = %manifest.display(), %error, "could not read a routed set");
        });
        let modified = manifest
            .metadata()
            .and_then(|m| m.modified())
            .unwrap_or(std::time::UNIX_EPOCH);
        RunEntry {
            loss: LossSeries::default(),
            config_text: std::fs::read_to_string(folder.join("routing.toml")).ok(),
            folder,
            adapter: manifest,
            metadata: None,
            routed: Some(routed),
            checkpoint: None,
            modified,
        }
    }

    /// Returns the run's config, set to continue from its newest checkpoint into the same
    /// folder.
    pub fn resume_config(&self) -> Result<TrainConfig, String> {
        let (checkpoint, _) = self.checkpoint.clone().ok_or("the run has no checkpoint")?;
        let mut config =
            TrainConfig::load(&self.folder.join("config.toml")).map_err(|e| e.to_string())?;
        config.output.dir = Some(self.folder.to_string_lossy().into_owned());
        config.resume_from = Some(checkpoint);
        Ok(config)
    }
}

/// Finds checkpoints/step-N.safetensors with the largest N.
fn newest_checkpoint(folder: &Path) -> Option<(PathBuf, usize)> {
    std::fs::read_dir(folder)
        .ok()?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?;
            let step = name
                .strip_prefix("step-")?
                .strip_suffix(".safetensors")?
                .parse::<usize>()
                .ok()?;
            Some((path, step))
        })
        .max_by_key(|(_, step)| *step)
}

/// Lists the subfolders of `root` that contain an adapter or a checkpoint, newest first.
pub fn scan_runs(root: &Path) -> Vec<RunEntry> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut runs: Vec<RunEntry> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.is_dir())
        .filter_map(RunEntry::read)
        .collect();
    runs.sort_by_key(|run| std::cmp::Reverse(run.modified));
    runs
}

/// Draws a routed set's entry; returns Try when its button was clicked.
fn routed_entry(
    ui: &mut egui::Ui,
    tr: &Translator,
    run: &RunEntry,
    routed: &Result<RoutingManifest, String>,
) -> Option<RunsAction> {
    let manifest = match routed {
        Ok(manifest) => manifest,
        Err(error) => {
            ui.colored_label(
                ui.visuals().error_fg_color,
                tr.tf("runs.unreadable", &[("error", error)]),
            );
            return None;
        }
    };
    ui.label(tr.tf("runs.base_model", &[("model", &manifest.model_source)]));
    let names: Vec<&str> = manifest.modules.iter().map(|m| m.name.as_str()).collect();
    ui.label(tr.tf("runs.routed_modules", &[("modules", &names.join(", "))]));
    if let Some(accuracy) = manifest.report.eval_accuracy {
        let percent = format!("{:.1}", accuracy * 100.0);
        ui.label(tr.tf(
            "training.router_accuracy",
            &[
                ("percent", &percent),
                ("count", &manifest.report.eval_count),
            ],
        ));
    }
    ui.add(
        egui::Label::new(egui::RichText::new(run.adapter.display().to_string()).monospace())
            .selectable(true),
    );

    let mut action = None;
    if ui.button(tr.t("training.try")).clicked() {
        action = Some(RunsAction::Try {
            adapter: run.adapter.clone(),
            model: manifest.model_source.clone(),
        });
    }
    if let Some(config) = &run.config_text {
        egui::CollapsingHeader::new(tr.t("runs.details"))
            .id_salt(("run_details", &run.folder))
            .show(ui, |ui| {
                ui.label(egui::RichText::new(tr.t("runs.config")).strong());
                ui.add(egui::Label::new(egui::RichText::new(config).monospace()).selectable(true));
            });
    }
    action
}

/// A request from the runs list to the app.
#[derive(Debug, Clone, PartialEq)]
pub enum RunsAction {
    Back,
    /// The try-it screen with this adapter on this model.
    Try {
        adapter: PathBuf,
        model: String,
    },
    /// Training continued from a checkpoint.
    Resume(Box<TrainConfig>),
}

pub struct RunsScreen {
    root: PathBuf,
    runs: Option<Vec<RunEntry>>,
    export: ExportState,
    /// The error of the last Resume that could not start.
    resume_error: Option<String>,
}

impl RunsScreen {
    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            runs: None,
            export: ExportState::default(),
            resume_error: None,
        }
    }

    /// Reads the runs folder again on the next frame.
    pub fn refresh(&mut self) {
        self.runs = None;
    }

    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        tr: &Translator,
        dialog: &dyn FileDialog,
    ) -> Option<RunsAction> {
        let mut action = None;
        ui.horizontal(|ui| {
            if ui.button(tr.t("setup.back")).clicked() {
                action = Some(RunsAction::Back);
            }
            ui.heading(tr.t("runs.title"));
            if ui.button(tr.t("runs.refresh")).clicked() {
                self.refresh();
            }
        });
        ui.label(tr.tf("runs.folder", &[("path", &self.root.display())]));

        let root = self.root.clone();
        let runs = self.runs.get_or_insert_with(|| scan_runs(&root));
        if runs.is_empty() {
            ui.label(tr.t("runs.empty"));
        }

        let mut export_request = None;
        for run in runs.iter() {
            egui::Frame::group(ui.style()).inner_margin(8.0).show(ui, |ui| {
                ui.set_width(ui.available_width());
                let folder_name = run
                    .folder
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_default();
                ui.strong(&folder_name);
                if let Some(routed) = &run.routed {
                    if let Some(request) = routed_entry(ui, tr, run, routed) {
                        action = Some(request);
                    }
                    return;
                }
                match &run.metadata {
                    Some(Ok(metadata)) => {
                        ui.label(tr.tf("runs.base_model", &[("model", &metadata.base_model.source)]));
                        let loss = metadata
                            .metrics
                            .get("train_loss")
                            .map(|loss| format!("{loss:.4}"))
                            .unwrap_or_else(|| "—".into());
                        ui.label(tr.tf("runs.train_loss", &[("loss", &loss)]));
                        if let Some(accuracy) = metadata.metrics.get("eval_accuracy") {
                            ui.label(tr.tf("runs.eval_accuracy", &[("accuracy", &format!("{:.1}", accuracy * 100.0))]));
                        }
                    }
                    Some(Err(error)) => {
                        ui.colored_label(ui.visuals().error_fg_color, tr.tf("runs.unreadable", &[("error", error)]));
                    }
                    None => {
                        ui.label(tr.t("runs.no_adapter"));
                    }
                }
                if run.metadata.is_some() {
                    ui.horizontal(|ui| {
                        ui.add(egui::Label::new(egui::RichText::new(run.adapter.display().to_string()).monospace()).selectable(true));
                        if ui.button(tr.t("training.copy_path")).clicked() {
                            ui.ctx().copy_text(run.adapter.display().to_string());
                        }
                    });
                }
                ui.horizontal(|ui| {
                    if let Some(Ok(metadata)) = &run.metadata {
                        if ui.button(tr.t("training.export")).clicked() {
                            export_request = Some((run.adapter.clone(), folder_name.clone()));
                        }
                        if ui.button(tr.t("training.try")).clicked() {
                            action = Some(RunsAction::Try {
                                adapter: run.adapter.clone(),
                                model: metadata.base_model.source.clone(),
                            });
                        }
                    }
                    if let Some((_, step)) = &run.checkpoint {
                        let resume = ui
                            .button(tr.tf("runs.resume", &[("step", step)]))
                            .on_hover_text(tr.t("runs.resume_help"));
                        if resume.clicked() {
                            match run.resume_config() {
                                Ok(config) => action = Some(RunsAction::Resume(Box::new(config))),
                                Err(error) => {
                                    tracing::warn!(folder = %run.folder.display(), %error, "cannot resume the run");
                                    self.resume_error = Some(error);
                                }
                            }
                        }
                    }
                });
                egui::CollapsingHeader::new(tr.t("runs.details"))
                    .id_salt(("run_details", &run.folder))
                    .show(ui, |ui| {
                        loss_chart::show_with_id(ui, tr, &run.loss, ("run_loss", &run.folder));
                        if let Some(config) = &run.config_text {
                            ui.label(egui::RichText::new(tr.t("runs.config")).strong());
                            ui.add(egui::Label::new(egui::RichText::new(config).monospace()).selectable(true));
                        }
                    });
            });
        }
        if let Some(error) = &self.resume_error {
            ui.colored_label(
                ui.visuals().error_fg_color,
                tr.tf("runs.resume_failed", &[("error", error)]),
            );
        }

        if let Some((adapter, name)) = export_request {
            self.export.start(&adapter, &name, tr, dialog);
        }
        self.export.show(ui, tr);
        action
    }
}

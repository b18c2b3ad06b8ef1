//! The runs list: finished runs in the runs folder (each a folder with an
//! adapter.safetensors written by the trainer), newest first, with export.

use std::path::{Path, PathBuf};

use crate::app::export::{export_with_dialog, show_export_status, ExportedFiles};
use crate::app::file_dialog::FileDialog;
use crate::app::i18n::Translator;
use crate::reft::adapter::{read_adapter, AdapterMetadata};

/// The file name the trainer gives the adapter inside a run's output folder.
const ADAPTER_FILE: &str = "adapter.safetensors";

/// Returns the folder where the app puts runs by default: <data dir>/reft-studio/runs.
pub fn default_runs_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("reft-studio")
        .join("runs")
}

/// One run folder and its adapter's metadata, or why the adapter could not be read.
pub struct RunEntry {
    pub folder: PathBuf,
    pub adapter: PathBuf,
    pub metadata: Result<AdapterMetadata, String>,
}

/// Lists the subfolders of `root` that contain an adapter, newest first (by the adapter's
/// creation time; unreadable adapters last).
pub fn scan_runs(root: &Path) -> Vec<RunEntry> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut runs: Vec<RunEntry> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|folder| folder.join(ADAPTER_FILE).is_file())
        .map(|folder| {
            let adapter = folder.join(ADAPTER_FILE);
            let metadata = read_adapter(&adapter)
                .map(|(metadata, _)| metadata)
                .map_err(|error| error.to_string());
            if let Err(error) = &metadata {
                tracing::warn!(adapter = %adapter.display(), %error, "could not read a run's adapter");
            }
            RunEntry { folder, adapter, metadata }
        })
        .collect();
    runs.sort_by_key(|run| std::cmp::Reverse(run.metadata.as_ref().map(|m| m.created_unix_seconds).unwrap_or(0)));
    runs
}

/// A request from the runs list to the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunsAction {
    Back,
}

pub struct RunsScreen {
    root: PathBuf,
    runs: Option<Vec<RunEntry>>,
    export_status: Option<Result<ExportedFiles, String>>,
}

impl RunsScreen {
    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            runs: None,
            export_status: None,
        }
    }

    /// Reads the runs folder again on the next frame.
    pub fn refresh(&mut self) {
        self.runs = None;
    }

    pub fn show(&mut self, ui: &mut egui::Ui, tr: &Translator, dialog: &dyn FileDialog) -> Option<RunsAction> {
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
                match &run.metadata {
                    Ok(metadata) => {
                        ui.label(tr.tf("runs.base_model", &[("model", &metadata.base_model.source)]));
                        let loss = metadata
                            .metrics
                            .get("train_loss")
                            .map(|loss| format!("{loss:.4}"))
                            .unwrap_or_else(|| "—".into());
                        ui.label(tr.tf("runs.train_loss", &[("loss", &loss)]));
                    }
                    Err(error) => {
                        ui.colored_label(ui.visuals().error_fg_color, tr.tf("runs.unreadable", &[("error", error)]));
                    }
                }
                ui.horizontal(|ui| {
                    ui.add(egui::Label::new(egui::RichText::new(run.adapter.display().to_string()).monospace()).selectable(true));
                    if ui.button(tr.t("training.copy_path")).clicked() {
                        ui.ctx().copy_text(run.adapter.display().to_string());
                    }
                    if run.metadata.is_ok() && ui.button(tr.t("training.export")).clicked() {
                        export_request = Some((run.adapter.clone(), folder_name.clone()));
                    }
                });
            });
        }

        if let Some((adapter, name)) = export_request {
            if let Some(result) = export_with_dialog(&adapter, &name, tr, dialog) {
                self.export_status = Some(result);
            }
        }
        show_export_status(ui, tr, self.export_status.as_ref());
        action
    }
}

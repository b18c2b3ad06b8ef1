//! Exporting a finished run: a copy of the adapter under a name the user picks, and a
//! short model card (Markdown, in the interface language) beside it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::data::Task;
use crate::reft::adapter::{read_adapter, AdapterMetadata};

use super::file_dialog::{FileDialog, FilePurpose, FileRequest};
use super::i18n::Translator;

/// The files an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedFiles {
    pub adapter: PathBuf,
    pub model_card: PathBuf,
}

/// Suggests `<name>-<YYYY-MM-DD>.safetensors` for an adapter, with characters that are
/// unsafe in file names replaced by `-`.
pub fn suggested_file_name(name: &str, unix_seconds: u64) -> String {
    let safe: String = name
        .trim()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let safe = if safe.is_empty() {
        "adapter".to_string()
    } else {
        safe
    };
    let (year, month, day) = civil_date(unix_seconds);
    format!("{safe}-{year:04}-{month:02}-{day:02}.safetensors")
}

/// Asks where to save the adapter, suggesting `<name>-<date>.safetensors`, then exports it.
/// Returns None when the user cancels the dialog.
pub fn export_with_dialog(
    adapter: &Path,
    name: &str,
    tr: &Translator,
    dialog: &dyn FileDialog,
) -> Option<Result<ExportedFiles, String>> {
    let unix_seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0);
    let request = FileRequest {
        purpose: FilePurpose::ExportAdapter,
        title: tr.t("training.export_title"),
        filter_name: tr.t("training.export_filter"),
        extensions: &["safetensors"],
        suggested_name: Some(suggested_file_name(name, unix_seconds)),
    };
    let destination = dialog.pick(&request)?;
    let result = export_adapter(adapter, &destination, tr);
    if let Err(error) = &result {
        tracing::warn!(adapter = %adapter.display(), destination = %destination.display(), %error, "export failed");
    }
    Some(result)
}

/// The state of an Export button: the last outcome, and a typed destination offered when
/// the file dialog returned nothing (on Linux without a desktop portal no dialog opens).
#[derive(Debug, Default)]
pub struct ExportState {
    pub status: Option<Result<ExportedFiles, String>>,
    /// The adapter to export and the destination typed so far.
    typed: Option<(PathBuf, String)>,
}

impl ExportState {
    /// Runs the dialog for `adapter`; when it returns nothing, offers a field for the path.
    pub fn start(&mut self, adapter: &Path, name: &str, tr: &Translator, dialog: &dyn FileDialog) {
        match export_with_dialog(adapter, name, tr, dialog) {
            Some(result) => {
                self.status = Some(result);
                self.typed = None;
            }
            None => {
                let folder = dirs::document_dir()
                    .or_else(dirs::home_dir)
                    .unwrap_or_default();
                let unix_seconds = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|elapsed| elapsed.as_secs())
                    .unwrap_or(0);
                let suggested = folder.join(suggested_file_name(name, unix_seconds));
                self.typed = Some((adapter.to_path_buf(), suggested.display().to_string()));
            }
        }
    }

    /// Draws the typed-path fallback, when offered, and the last outcome.
    pub fn show(&mut self, ui: &mut egui::Ui, tr: &Translator) {
        let mut save = None;
        if let Some((adapter, typed)) = &mut self.typed {
            ui.label(tr.t("export.no_file_chosen"));
            ui.horizontal(|ui| {
                let label = ui.label(tr.t("export.save_to"));
                ui.add(egui::TextEdit::singleline(typed).desired_width(420.0))
                    .labelled_by(label.id);
                if ui.button(tr.t("export.save")).clicked() {
                    save = Some((adapter.clone(), PathBuf::from(typed.trim())));
                }
            });
        }
        if let Some((adapter, destination)) = save {
            let result = export_adapter(&adapter, &destination, tr);
            if let Err(error) = &result {
                tracing::warn!(adapter = %adapter.display(), destination = %destination.display(), %error, "export failed");
            }
            if result.is_ok() {
                self.typed = None;
            }
            self.status = Some(result);
        }
        show_export_status(ui, tr, self.status.as_ref());
    }
}

/// Shows the outcome of the last export: where the files went, or the error.
pub fn show_export_status(
    ui: &mut egui::Ui,
    tr: &Translator,
    status: Option<&Result<ExportedFiles, String>>,
) {
    match status {
        Some(Ok(files)) => {
            ui.label(tr.tf(
                "training.exported",
                &[
                    ("adapter", &files.adapter.display()),
                    ("card", &files.model_card.display()),
                ],
            ));
        }
        Some(Err(error)) => {
            ui.colored_label(ui.visuals().error_fg_color, error);
        }
        None => {}
    }
}

/// Copies the adapter at `source` to `destination` and writes the model card beside it
/// (same stem, `.md`). Errors name the file and are in the interface language.
pub fn export_adapter(
    source: &Path,
    destination: &Path,
    tr: &Translator,
) -> Result<ExportedFiles, String> {
    let (metadata, _) = read_adapter(source).map_err(|error| {
        tr.tf(
            "export.read_failed",
            &[("path", &source.display()), ("error", &error)],
        )
    })?;

    // Copying a file onto itself would truncate it, so an export to the run's own adapter
    // path only writes the card.
    let same_file = match (
        std::fs::canonicalize(source),
        std::fs::canonicalize(destination),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if !same_file {
        std::fs::copy(source, destination).map_err(|error| {
            tr.tf(
                "export.write_failed",
                &[("path", &destination.display()), ("error", &error)],
            )
        })?;
    }

    let model_card = destination.with_extension("md");
    let file_name = destination
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    std::fs::write(&model_card, model_card_text(&metadata, &file_name, tr)).map_err(|error| {
        tr.tf(
            "export.write_failed",
            &[("path", &model_card.display()), ("error", &error)],
        )
    })?;

    tracing::info!(adapter = %destination.display(), card = %model_card.display(), "adapter exported");
    Ok(ExportedFiles {
        adapter: destination.to_path_buf(),
        model_card,
    })
}

/// Builds the model card: what the adapter is, its base model, its interventions, its
/// metrics and the command that applies it.
pub fn model_card_text(metadata: &AdapterMetadata, file_name: &str, tr: &Translator) -> String {
    let base = &metadata.base_model;
    let (year, month, day) = civil_date(metadata.created_unix_seconds);
    let mut card = String::new();

    let _ = writeln!(card, "# {}\n", metadata.name);
    let _ = writeln!(card, "{}\n", tr.t("export.card_intro"));
    let _ = writeln!(
        card,
        "- {}: {year:04}-{month:02}-{day:02}",
        tr.t("export.card_created")
    );
    let task = match metadata.task {
        Task::Instruction => tr.t("task.instruction"),
        Task::Classification => tr.t("task.classification"),
    };
    let _ = writeln!(card, "- {}: {task}", tr.t("export.card_task"));
    if !metadata.labels.is_empty() {
        let _ = writeln!(
            card,
            "- {}: {}",
            tr.t("export.card_labels"),
            metadata.labels.join(", ")
        );
    }

    let _ = writeln!(card, "\n## {}\n", tr.t("export.card_base_model"));
    let _ = writeln!(card, "- {}: `{}`", tr.t("export.card_source"), base.source);
    let shape = tr.tf(
        "export.card_shape_value",
        &[
            ("architecture", &format!("{:?}", base.architecture)),
            ("layers", &base.num_layers),
            ("hidden", &base.hidden_size),
            ("vocabulary", &base.vocab_size),
        ],
    );
    let _ = writeln!(card, "- {}: {shape}", tr.t("export.card_shape"));
    let _ = writeln!(
        card,
        "- {}: `{}`",
        tr.t("export.card_weights_fingerprint"),
        base.weights_fingerprint
    );
    if !base.weights_format.is_empty() {
        // A quantised copy and the full-precision weights are not interchangeable, so the
        // card names the copy the adapter needs.
        let _ = writeln!(
            card,
            "- {}: {}",
            tr.t("export.card_weights_format"),
            base.weights_format
        );
    }

    let _ = writeln!(card, "\n## {}\n", tr.t("export.card_interventions"));
    for intervention in &metadata.interventions {
        let layers = serde_json::to_string(&intervention.layers).unwrap_or_default();
        let line = tr.tf(
            "export.card_intervention",
            &[
                ("kind", &intervention.kind.name()),
                ("layers", &layers),
                ("rank", &intervention.rank),
                ("positions", &intervention.positions),
            ],
        );
        let _ = writeln!(card, "- {line}");
    }

    if !metadata.metrics.is_empty() {
        let _ = writeln!(card, "\n## {}\n", tr.t("export.card_metrics"));
        for (name, value) in &metadata.metrics {
            // Counts such as `steps` are stored as floats too; print them without decimals.
            if value.fract() == 0.0 {
                let _ = writeln!(card, "- {name}: {value:.0}");
            } else {
                let _ = writeln!(card, "- {name}: {value:.4}");
            }
        }
    }

    let _ = writeln!(card, "\n## {}\n", tr.t("export.card_usage"));
    let _ = writeln!(
        card,
        "```sh\nreft-studio generate --model '{}' --adapter '{file_name}' --chat --prompt '…'\n```",
        base.source
    );
    card
}

/// Converts Unix seconds to a UTC (year, month, day) in the proleptic Gregorian calendar,
/// counting years from March 1 so that a leap day is the last day of its year.
pub(crate) fn civil_date(unix_seconds: u64) -> (i64, u32, u32) {
    let days = (unix_seconds / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

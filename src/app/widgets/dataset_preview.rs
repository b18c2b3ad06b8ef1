//! The dataset preview: detected file kind and row format, the column mapping, the first
//! rows, and the rows that could not be read, with their line numbers.

use crate::app::fonts::displayable;
use crate::app::i18n::Translator;
use crate::data::{DataProblem, FileKind, LoadedData, RowFormat};

/// Rows shown in the table.
pub const PREVIEW_ROWS: usize = 20;
/// Characters shown per cell before the text is cut.
const CELL_CHARS: usize = 80;

pub fn show(ui: &mut egui::Ui, tr: &Translator, data: &LoadedData) {
    egui::Grid::new("dataset_summary")
        .num_columns(2)
        .show(ui, |ui| {
            ui.label(tr.t("preview.file_kind"));
            ui.label(file_kind_name(tr, data.file_kind));
            ui.end_row();
            ui.label(tr.t("preview.format"));
            ui.label(format_name(tr, data.format));
            ui.end_row();
            ui.label(tr.t("preview.mapping"));
            let mapping: Vec<String> = data
                .column_mapping
                .iter()
                .map(|(role, column)| format!("{role} ← {column}"))
                .collect();
            ui.label(mapping.join(", "));
            ui.end_row();
        });

    ui.add_space(4.0);
    egui::ScrollArea::both()
        .id_salt("dataset_rows")
        .max_height(220.0)
        .show(ui, |ui| {
            egui::Grid::new("dataset_rows_grid")
                .striped(true)
                .num_columns(3)
                .show(ui, |ui| {
                    ui.strong(tr.t("preview.line"));
                    ui.strong(tr.t("preview.input"));
                    ui.strong(tr.t("preview.target"));
                    ui.end_row();
                    for example in data.examples.iter().take(PREVIEW_ROWS) {
                        ui.label(example.source_line.to_string());
                        ui.label(displayable(&shorten(
                            example.user_text().unwrap_or_default(),
                        )));
                        ui.label(displayable(&shorten(&example.target)));
                        ui.end_row();
                    }
                });
        });

    if !data.problems.is_empty() {
        ui.add_space(4.0);
        ui.colored_label(
            ui.visuals().error_fg_color,
            tr.tf("preview.problems", &[("count", &data.problems.len())]),
        );
        for problem in &data.problems {
            ui.colored_label(ui.visuals().error_fg_color, problem_text(tr, problem));
        }
    }
}

/// Formats one problem in the interface language. The reason itself comes from the engine
/// in English.
pub fn problem_text(tr: &Translator, problem: &DataProblem) -> String {
    let position = match problem.file_kind {
        FileKind::JsonArray => tr.tf("preview.problem_item", &[("line", &problem.line)]),
        FileKind::Jsonl | FileKind::Csv | FileKind::Tsv => {
            tr.tf("preview.problem_line", &[("line", &problem.line)])
        }
    };
    match &problem.field {
        Some(field) => tr.tf(
            "preview.problem_with_field",
            &[
                ("position", &position),
                ("field", field),
                ("message", &problem.message),
            ],
        ),
        None => tr.tf(
            "preview.problem",
            &[("position", &position), ("message", &problem.message)],
        ),
    }
}

pub fn format_name(tr: &Translator, format: RowFormat) -> String {
    match format {
        RowFormat::Alpaca => tr.t("format.alpaca"),
        RowFormat::Messages => tr.t("format.messages"),
        RowFormat::PromptResponse => tr.t("format.prompt_response"),
        RowFormat::TextLabel => tr.t("format.text_label"),
    }
}

fn file_kind_name(tr: &Translator, kind: FileKind) -> String {
    match kind {
        FileKind::Jsonl => tr.t("file_kind.jsonl"),
        FileKind::JsonArray => tr.t("file_kind.json_array"),
        FileKind::Csv => tr.t("file_kind.csv"),
        FileKind::Tsv => tr.t("file_kind.tsv"),
    }
}

fn shorten(text: &str) -> String {
    let one_line = text.replace(['\n', '\r'], " ");
    if one_line.chars().count() <= CELL_CHARS {
        return one_line;
    }
    let cut: String = one_line.chars().take(CELL_CHARS).collect();
    format!("{cut}…")
}

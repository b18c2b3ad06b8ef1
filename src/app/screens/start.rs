//! The start screen: a gallery of presets and a card to start from an empty form.

use crate::app::i18n::Translator;
use crate::app::presets::{Preset, PresetScan};
use crate::config_file::ConfigFile;
use crate::data::Task;

/// The card the user picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAction {
    /// The preset at this index of `PresetScan::presets`.
    OpenPreset(usize),
    FromScratch,
    OpenRuns,
    OpenTry,
}

const CARD_WIDTH: f32 = 300.0;
const CARD_MARGIN: f32 = 10.0;

pub fn show(ui: &mut egui::Ui, tr: &Translator, scan: &PresetScan) -> Option<StartAction> {
    let mut action = None;
    ui.heading(tr.t("start.title"));
    ui.label(tr.t("start.intro"));
    ui.horizontal(|ui| {
        if ui.button(tr.t("start.open_runs")).clicked() {
            action = Some(StartAction::OpenRuns);
        }
        if ui.button(tr.t("start.open_try")).clicked() {
            action = Some(StartAction::OpenTry);
        }
    });
    ui.add_space(8.0);

    if scan.presets.is_empty() {
        ui.label(tr.t("start.no_presets"));
    }

    // Cards go in rows that fit the window: horizontal_wrapped does not wrap frames whose
    // size is only known after drawing them, so the rows are counted here.
    let spacing = ui.spacing().item_spacing.x;
    let card_outer_width = CARD_WIDTH + 2.0 * CARD_MARGIN + 2.0;
    let per_row =
        (((ui.available_width() + spacing) / (card_outer_width + spacing)).floor() as usize).max(1);
    let cards = scan.presets.len() + 1;
    for row_start in (0..cards).step_by(per_row) {
        ui.horizontal_top(|ui| {
            for index in row_start..(row_start + per_row).min(cards) {
                match scan.presets.get(index) {
                    Some(preset) => {
                        if preset_card(ui, tr, preset) {
                            action = Some(StartAction::OpenPreset(index));
                        }
                    }
                    None => {
                        if scratch_card(ui, tr) {
                            action = Some(StartAction::FromScratch);
                        }
                    }
                }
            }
        });
    }

    for (path, error) in &scan.errors {
        ui.colored_label(
            ui.visuals().warn_fg_color,
            tr.tf(
                "start.preset_invalid",
                &[("path", &path.display()), ("error", error)],
            ),
        );
    }
    action
}

/// Draws one preset card; returns true when it was clicked.
fn preset_card(ui: &mut egui::Ui, tr: &Translator, preset: &Preset) -> bool {
    let language = tr.language();
    let mut clicked = false;
    card_frame(ui, |ui| {
        clicked |= ui
            .add(egui::Button::new(
                egui::RichText::new(preset.name(language)).heading(),
            ))
            .clicked();
        if let Some(description) = preset.description(language) {
            ui.label(description);
        }
        ui.add_space(4.0);
        egui::Grid::new(("preset_facts", &preset.path))
            .num_columns(2)
            .show(ui, |ui| {
                ui.label(tr.t("start.model"));
                ui.label(preset.config.model_source());
                ui.end_row();
                ui.label(tr.t("start.task"));
                match &preset.config {
                    ConfigFile::Train(config) => ui.label(task_name(tr, config.data.task)),
                    ConfigFile::Routing(config) => {
                        ui.label(tr.tf("task.routing", &[("count", &config.modules.len())]))
                    }
                };
                ui.end_row();
                if let Some(minutes) = preset
                    .config
                    .preset()
                    .and_then(|info| info.expected_minutes)
                {
                    ui.label(tr.t("start.expected_time"));
                    ui.label(tr.tf("start.minutes", &[("minutes", &minutes)]));
                    ui.end_row();
                }
            });
    });
    clicked
}

fn scratch_card(ui: &mut egui::Ui, tr: &Translator) -> bool {
    let mut clicked = false;
    card_frame(ui, |ui| {
        clicked |= ui
            .add(egui::Button::new(
                egui::RichText::new(tr.t("start.scratch")).heading(),
            ))
            .clicked();
        ui.label(tr.t("start.scratch_description"));
    });
    clicked
}

fn card_frame(ui: &mut egui::Ui, content: impl FnOnce(&mut egui::Ui)) {
    egui::Frame::group(ui.style())
        .inner_margin(CARD_MARGIN)
        .show(ui, |ui| {
            ui.set_width(CARD_WIDTH);
            ui.vertical(content);
        });
}

pub fn task_name(tr: &Translator, task: Option<Task>) -> String {
    match task {
        Some(Task::Instruction) => tr.t("task.instruction"),
        Some(Task::Classification) => tr.t("task.classification"),
        None => tr.t("task.detected"),
    }
}

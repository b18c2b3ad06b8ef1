//! The representation-shift charts. By layer: for each layer from the first intervened one
//! to the last, the mean relative change ||h' - h|| / ||h|| at the intervened positions;
//! the newest snapshot is drawn solid and older ones fade, and intervened layers get a
//! vertical marker. Over time: the same figure at each intervened layer, step by step.

use std::collections::{BTreeMap, VecDeque};

use egui::Color32;
use egui_plot::{Legend, Line, LineStyle, Plot, PlotPoints, VLine};

use crate::app::i18n::Translator;
use crate::train::events::ShiftSnapshot;

/// Snapshots kept for the fading history.
pub const KEPT_SNAPSHOTS: usize = 5;

/// The shift at each intervened layer for every snapshot so far: layer -> [step, shift].
#[derive(Debug, Clone, Default)]
pub struct ShiftHistory {
    pub layers: BTreeMap<usize, Vec<[f64; 2]>>,
}

impl ShiftHistory {
    pub fn push(&mut self, snapshot: &ShiftSnapshot) {
        for shift in snapshot
            .layers
            .iter()
            .filter(|s| snapshot.intervened_layers.contains(&s.layer))
        {
            self.layers
                .entry(shift.layer)
                .or_default()
                .push([snapshot.step as f64, shift.relative_change_intervened]);
        }
    }
}

/// The reason the chart has nothing to draw yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmptyReason {
    /// `training.shift_every` is 0.
    Disabled,
    /// Measured every N steps and no snapshot has arrived.
    Waiting { every: usize },
}

pub fn show(
    ui: &mut egui::Ui,
    tr: &Translator,
    snapshots: &VecDeque<ShiftSnapshot>,
    empty_reason: EmptyReason,
) {
    ui.label(egui::RichText::new(tr.t("chart.shift_title")).strong());
    let Some(latest) = snapshots.back() else {
        let text = match empty_reason {
            EmptyReason::Disabled => tr.t("chart.shift_disabled"),
            EmptyReason::Waiting { every } => tr.tf("chart.shift_empty", &[("every", &every)]),
        };
        ui.label(text);
        return;
    };

    let base = ui.visuals().widgets.active.fg_stroke.color;
    let accent = Color32::from_rgb(64, 160, 255);
    let count = snapshots.len();
    Plot::new("shift_chart")
        .height(220.0)
        .legend(Legend::default())
        .x_axis_label(tr.t("chart.layer_axis"))
        .y_axis_label(tr.t("chart.shift_axis"))
        .allow_scroll(false)
        .show(ui, |plot| {
            for (age, snapshot) in snapshots.iter().rev().enumerate() {
                let points: Vec<[f64; 2]> = snapshot
                    .layers
                    .iter()
                    .map(|layer| [layer.layer as f64, layer.relative_change_intervened])
                    .collect();
                let name = tr.tf("chart.shift_step", &[("step", &snapshot.step)]);
                // The newest line is opaque; each older one loses an equal share of opacity.
                let opacity = 1.0 - age as f32 / (count as f32 + 1.0);
                let color = if age == 0 {
                    accent
                } else {
                    base.gamma_multiply(opacity * 0.6)
                };
                plot.line(
                    Line::new(name, PlotPoints::from(points))
                        .color(color)
                        .width(if age == 0 { 2.5 } else { 1.0 }),
                );
            }
            let marker_name = tr.t("chart.intervened_layer");
            for layer in &latest.intervened_layers {
                plot.vline(
                    VLine::new(marker_name.clone(), *layer as f64)
                        .color(Color32::from_rgb(230, 140, 40))
                        .style(LineStyle::dashed_dense()),
                );
            }
        });
}

/// Draws the shift at each intervened layer against the training step.
pub fn show_history(ui: &mut egui::Ui, tr: &Translator, history: &ShiftHistory) {
    ui.label(egui::RichText::new(tr.t("chart.shift_history_title")).strong());
    if history.layers.is_empty() {
        ui.label(tr.t("chart.shift_history_empty"));
        return;
    }
    Plot::new("shift_history_chart")
        .height(160.0)
        .legend(Legend::default())
        .x_axis_label(tr.t("chart.step_axis"))
        .y_axis_label(tr.t("chart.shift_axis"))
        .allow_scroll(false)
        .show(ui, |plot| {
            for (layer, points) in &history.layers {
                let name = tr.tf("chart.shift_layer", &[("layer", layer)]);
                plot.line(Line::new(name, PlotPoints::from(points.clone())).width(2.0));
            }
        });
}

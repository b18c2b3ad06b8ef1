//! The live loss chart: train loss by step as a line, eval loss as points.

use egui_plot::{Legend, Line, Plot, PlotPoints, Points};

use crate::app::i18n::Translator;

/// Train and eval loss collected from the trainer's events, as (step, loss) pairs.
#[derive(Debug, Clone, Default)]
pub struct LossSeries {
    pub train: Vec<[f64; 2]>,
    pub eval: Vec<[f64; 2]>,
}

impl LossSeries {
    /// Reads the step and eval events of a run's metrics.jsonl; other lines are skipped.
    pub fn from_metrics(text: &str) -> Self {
        let mut series = LossSeries::default();
        for value in text
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        {
            let (Some(step), Some(loss)) = (value["step"].as_f64(), value["loss"].as_f64()) else {
                continue;
            };
            match value["event"].as_str() {
                Some("step") => series.train.push([step, loss]),
                Some("eval") => series.eval.push([step, loss]),
                _ => {}
            }
        }
        series
    }
}

pub fn show(ui: &mut egui::Ui, tr: &Translator, series: &LossSeries) {
    show_with_id(ui, tr, series, "loss_chart");
}

/// Draws the chart under `id`, for screens that show several.
pub fn show_with_id(
    ui: &mut egui::Ui,
    tr: &Translator,
    series: &LossSeries,
    id: impl std::hash::Hash,
) {
    ui.label(egui::RichText::new(tr.t("chart.loss_title")).strong());
    if series.train.is_empty() && series.eval.is_empty() {
        ui.label(tr.t("chart.loss_empty"));
        return;
    }

    let train_name = tr.t("chart.train_loss");
    let eval_name = tr.t("chart.eval_loss");
    Plot::new(id)
        .height(220.0)
        .legend(Legend::default())
        .x_axis_label(tr.t("chart.step_axis"))
        .y_axis_label(tr.t("chart.loss_axis"))
        .allow_scroll(false)
        .show(ui, |plot| {
            plot.line(Line::new(train_name, PlotPoints::from(series.train.clone())).width(2.0));
            if !series.eval.is_empty() {
                plot.points(
                    Points::new(eval_name, PlotPoints::from(series.eval.clone())).radius(4.0),
                );
            }
        });
}

//! The training screen: runs the trainer on its own thread and draws its events (phase,
//! progress, loss and shift charts, log) until the run finishes or fails.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crossbeam_channel::TryRecvError;

use crate::app::export::ExportState;
use crate::app::file_dialog::FileDialog;
use crate::app::i18n::Language;
use crate::app::i18n::Translator;
use crate::app::widgets::loss_chart::{self, LossSeries};
use crate::app::widgets::shift_chart::{self, EmptyReason, ShiftHistory, KEPT_SNAPSHOTS};
use crate::config_file::ConfigFile;
use crate::routing::spawn_routing;
use crate::train::events::{Phase, RouterReport, RunSummary, ShiftSnapshot, StepInfo, TrainEvent};
use crate::train::trainer::{spawn, TrainerHandle};

/// How often the screen redraws while the trainer runs, to pick up new events.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Log lines kept on screen and in the diagnostics.
const LOG_LINES: usize = 500;

/// The end state of a run.
#[derive(Debug, Clone)]
pub enum RunOutcome {
    Finished(RunSummary),
    Failed(String),
}

/// The user's request to the trainer, shown until the run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopRequest {
    Stop,
    Discard,
}

/// A request from the training screen to the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainingAction {
    /// Back to the setup form, to change settings and train again.
    EditSettings,
    Home,
    /// The try-it screen with this run's adapter.
    TryIt,
}

pub struct TrainingView {
    handle: Option<TrainerHandle>,
    config: ConfigFile,
    /// For a routed set: the module being trained (index, total, name).
    module: Option<(usize, usize, String)>,
    router: Option<RouterReport>,
    started: Instant,
    phase: Option<Phase>,
    download: Option<String>,
    last_step: Option<StepInfo>,
    loss: LossSeries,
    shifts: VecDeque<ShiftSnapshot>,
    shift_history: ShiftHistory,
    log: VecDeque<String>,
    stop_request: Option<StopRequest>,
    outcome: Option<RunOutcome>,
    /// The result of the last export, shown under the Export button.
    export: ExportState,
}

impl TrainingView {
    /// Starts training `config` (one run, or every module of a routed set) on a new
    /// trainer thread.
    pub fn start(config: ConfigFile) -> Self {
        let handle = match &config {
            ConfigFile::Train(train) => {
                tracing::info!(name = %train.run_name(), output = %train.output_dir().display(), "training started from the app");
                spawn(train.clone())
            }
            ConfigFile::Routing(routing) => {
                tracing::info!(name = %routing.name, output = %routing.output_dir().display(), "routed set training started from the app");
                spawn_routing(routing.clone())
            }
        };
        Self {
            handle: Some(handle),
            config,
            module: None,
            router: None,
            started: Instant::now(),
            phase: None,
            download: None,
            last_step: None,
            loss: LossSeries::default(),
            shifts: VecDeque::new(),
            shift_history: ShiftHistory::default(),
            log: VecDeque::new(),
            stop_request: None,
            outcome: None,
            export: ExportState::default(),
        }
    }

    pub fn is_running(&self) -> bool {
        self.outcome.is_none()
    }

    pub fn outcome(&self) -> Option<&RunOutcome> {
        self.outcome.as_ref()
    }

    pub fn loss(&self) -> &LossSeries {
        &self.loss
    }

    pub fn latest_shift(&self) -> Option<&ShiftSnapshot> {
        self.shifts.back()
    }

    pub fn config(&self) -> &ConfigFile {
        &self.config
    }

    /// Returns the router report, once a routed set has fitted it.
    pub fn router_report(&self) -> Option<&RouterReport> {
        self.router.as_ref()
    }

    /// Returns the module a routed set is training: (0-based index, total, name).
    pub fn current_module(&self) -> Option<&(usize, usize, String)> {
        self.module.as_ref()
    }

    /// Returns the adapter a finished run saved.
    pub fn adapter_path(&self) -> Option<&std::path::Path> {
        match &self.outcome {
            Some(RunOutcome::Finished(summary)) => summary.adapter_path.as_deref(),
            _ => None,
        }
    }

    /// Asks the trainer to stop after the current step and save the adapter.
    pub fn stop(&mut self) {
        if let (Some(handle), true) = (&self.handle, self.is_running()) {
            handle.stop();
            self.stop_request = Some(StopRequest::Stop);
        }
    }

    /// Asks the trainer to stop after the current step and save nothing.
    pub fn discard(&mut self) {
        if let (Some(handle), true) = (&self.handle, self.is_running()) {
            handle.discard();
            self.stop_request = Some(StopRequest::Discard);
        }
    }

    /// Applies every event the trainer has sent since the last call.
    pub fn poll(&mut self) {
        let Some(handle) = self.handle.take() else {
            return;
        };
        loop {
            match handle.events.try_recv() {
                Ok(event) => self.apply(event),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    if self.outcome.is_none() {
                        // The trainer sends a last Finished or Failed event before its
                        // channel closes, so this means the thread died without it.
                        tracing::error!("the trainer thread ended without a final event");
                        self.outcome = Some(RunOutcome::Failed(
                            "the trainer thread ended without a final event".into(),
                        ));
                    }
                    break;
                }
            }
        }
        if self.outcome.is_some() {
            handle.join();
        } else {
            self.handle = Some(handle);
        }
    }

    fn apply(&mut self, event: TrainEvent) {
        match event {
            TrainEvent::Phase { phase } => {
                self.phase = Some(phase);
                self.push_log(format!("phase: {phase:?}"));
            }
            TrainEvent::Download {
                detail,
                bytes,
                total_bytes,
            } => {
                let text = match (bytes, total_bytes) {
                    (Some(bytes), Some(total)) if total > 0 => {
                        format!("{detail}: {:.0}%", 100.0 * bytes as f64 / total as f64)
                    }
                    (Some(bytes), _) => format!("{detail}: {:.1} MB", bytes as f64 / 1e6),
                    _ => detail,
                };
                self.download = Some(text);
            }
            TrainEvent::Step(step) => {
                self.loss.train.push([step.step as f64, step.loss]);
                self.last_step = Some(step);
            }
            TrainEvent::Eval(eval) => {
                self.loss.eval.push([eval.step as f64, eval.loss]);
                let accuracy = eval
                    .accuracy
                    .map(|a| format!(", accuracy {a:.3}"))
                    .unwrap_or_default();
                self.push_log(format!(
                    "eval at step {}: loss {:.4}{accuracy} over {} examples",
                    eval.step, eval.loss, eval.count
                ));
            }
            TrainEvent::Shift(snapshot) => {
                self.shift_history.push(&snapshot);
                self.shifts.push_back(snapshot);
                while self.shifts.len() > KEPT_SNAPSHOTS {
                    self.shifts.pop_front();
                }
            }
            TrainEvent::Module { index, total, name } => {
                // Each module counts its steps from 1, so its charts start empty.
                self.loss = LossSeries::default();
                self.shifts.clear();
                self.shift_history = ShiftHistory::default();
                self.last_step = None;
                self.push_log(format!("module {} of {total}: {name}", index + 1));
                self.module = Some((index, total, name));
            }
            TrainEvent::Router(report) => self.router = Some(report),
            TrainEvent::Log { message } => self.push_log(message),
            TrainEvent::Checkpoint { path, step } => {
                self.push_log(format!("checkpoint at step {step}: {}", path.display()))
            }
            TrainEvent::Finished(summary) => {
                tracing::info!(steps = summary.steps, adapter = ?summary.adapter_path, "training finished");
                self.push_log(format!("finished after {} steps", summary.steps));
                self.outcome = Some(RunOutcome::Finished(summary));
            }
            TrainEvent::Failed { error } => {
                tracing::error!(%error, "training failed");
                self.push_log(format!("failed: {error}"));
                self.outcome = Some(RunOutcome::Failed(error));
            }
        }
    }

    /// Returns a module's title in `language` from the routed set's config, else its name.
    fn module_title(&self, name: &str, language: Language) -> String {
        let ConfigFile::Routing(config) = &self.config else {
            return name.to_string();
        };
        config
            .modules
            .iter()
            .find(|module| module.name == name)
            .map(|module| {
                module
                    .title(language == Language::SimplifiedChinese)
                    .to_string()
            })
            .unwrap_or_else(|| name.to_string())
    }

    fn push_log(&mut self, line: String) {
        self.log.push_back(line);
        while self.log.len() > LOG_LINES {
            self.log.pop_front();
        }
    }

    /// Text for a bug report: the error, the config and the log.
    pub fn diagnostics(&self) -> String {
        let error = match &self.outcome {
            Some(RunOutcome::Failed(error)) => error.as_str(),
            _ => "(none)",
        };
        let log: Vec<&str> = self.log.iter().map(String::as_str).collect();
        format!(
            "reft-studio {}\nerror: {error}\n\n[config]\n{}\n[log]\n{}\n",
            env!("CARGO_PKG_VERSION"),
            match &self.config {
                ConfigFile::Train(config) => config.to_toml(),
                ConfigFile::Routing(config) => config.to_toml(),
            },
            log.join("\n")
        )
    }

    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        tr: &Translator,
        dialog: &dyn FileDialog,
    ) -> Option<TrainingAction> {
        let mut action = None;
        ui.heading(tr.tf("training.title", &[("name", &self.config.run_name())]));
        if let Some((index, total, name)) = &self.module {
            ui.label(tr.tf(
                "training.module",
                &[
                    ("index", &(index + 1)),
                    ("total", total),
                    ("name", &self.module_title(name, tr.language())),
                ],
            ));
        }
        ui.add_space(4.0);

        self.status_bar(ui, tr);
        ui.add_space(4.0);
        self.controls(ui, tr, dialog, &mut action);
        ui.separator();

        loss_chart::show(ui, tr, &self.loss);
        ui.add_space(6.0);
        let shift_every = match &self.config {
            ConfigFile::Train(config) => config.training.shift_every,
            ConfigFile::Routing(config) => {
                let index = self.module.as_ref().map_or(0, |(index, _, _)| *index);
                config
                    .modules
                    .get(index)
                    .and_then(|module| module.training.as_ref())
                    .map_or(
                        crate::train::config::TrainingSection::default().shift_every,
                        |training| training.shift_every,
                    )
            }
        };
        let empty_reason = match shift_every {
            0 => EmptyReason::Disabled,
            every => EmptyReason::Waiting { every },
        };
        shift_chart::show(ui, tr, &self.shifts, empty_reason);
        shift_chart::show_history(ui, tr, &self.shift_history);
        ui.separator();

        egui::CollapsingHeader::new(tr.t("training.log"))
            .id_salt("training_log")
            .default_open(true)
            .show(ui, |ui| {
                egui::ScrollArea::vertical()
                    .id_salt("training_log_scroll")
                    .max_height(160.0)
                    .stick_to_bottom(true)
                    .show(ui, |ui| {
                        for line in &self.log {
                            ui.monospace(line);
                        }
                    });
            });
        action
    }

    fn status_bar(&self, ui: &mut egui::Ui, tr: &Translator) {
        ui.horizontal(|ui| {
            let (text, color) = self.badge(tr);
            egui::Frame::new()
                .fill(color)
                .corner_radius(4.0)
                .inner_margin(egui::Margin::symmetric(8, 2))
                .show(ui, |ui| ui.colored_label(egui::Color32::WHITE, text));
            if let Some(download) = &self.download {
                if self.phase == Some(Phase::Downloading) {
                    ui.label(download);
                }
            }
        });

        let (fraction, step_text) = match &self.last_step {
            Some(step) if step.total_steps > 0 => (
                step.step as f32 / step.total_steps as f32,
                tr.tf(
                    "training.step",
                    &[("step", &step.step), ("total", &step.total_steps)],
                ),
            ),
            _ if self.outcome.is_some() => (0.0, String::new()),
            _ => (0.0, tr.t("training.no_step")),
        };
        ui.add(egui::ProgressBar::new(fraction).text(step_text));

        let elapsed = self
            .last_step
            .as_ref()
            .map(|step| step.elapsed_seconds)
            .unwrap_or_else(|| self.started.elapsed().as_secs_f64());
        ui.horizontal(|ui| {
            ui.label(tr.tf("training.elapsed", &[("time", &format_duration(elapsed))]));
            if let Some(step) = &self.last_step {
                if self.is_running() {
                    ui.label(tr.tf(
                        "training.eta",
                        &[("time", &format_duration(step.eta_seconds))],
                    ));
                }
                ui.label(tr.tf(
                    "training.tokens_per_second",
                    &[("rate", &format!("{:.0}", step.tokens_per_second))],
                ));
                ui.label(tr.tf("training.loss", &[("loss", &format!("{:.4}", step.loss))]));
            }
        });
    }

    fn badge(&self, tr: &Translator) -> (String, egui::Color32) {
        let gray = egui::Color32::from_rgb(110, 110, 120);
        let blue = egui::Color32::from_rgb(40, 110, 200);
        match (&self.outcome, self.phase) {
            (Some(RunOutcome::Failed(_)), _) => {
                (tr.t("phase.failed"), egui::Color32::from_rgb(190, 50, 50))
            }
            // A routed set stopped between modules also has no adapter path, but kept its modules.
            (Some(RunOutcome::Finished(summary)), _)
                if summary.adapter_path.is_none()
                    && self.stop_request != Some(StopRequest::Stop) =>
            {
                (tr.t("phase.discarded"), gray)
            }
            (Some(RunOutcome::Finished(summary)), _) if summary.stopped_early => {
                (tr.t("phase.stopped"), egui::Color32::from_rgb(180, 130, 30))
            }
            (Some(RunOutcome::Finished(_)), _) => {
                (tr.t("phase.finished"), egui::Color32::from_rgb(40, 150, 70))
            }
            (None, None) => (tr.t("phase.starting"), gray),
            (None, Some(Phase::Downloading)) => (tr.t("phase.downloading"), blue),
            (None, Some(Phase::LoadingModel)) => (tr.t("phase.loading_model"), blue),
            (None, Some(Phase::Tokenizing)) => (tr.t("phase.tokenizing"), blue),
            (None, Some(Phase::Training)) => (tr.t("phase.training"), blue),
            (None, Some(Phase::Evaluating)) => (tr.t("phase.evaluating"), blue),
            (None, Some(Phase::Saving)) => (tr.t("phase.saving"), blue),
            (None, Some(Phase::Routing)) => (tr.t("phase.routing"), blue),
        }
    }

    fn controls(
        &mut self,
        ui: &mut egui::Ui,
        tr: &Translator,
        dialog: &dyn FileDialog,
        action: &mut Option<TrainingAction>,
    ) {
        match self.outcome.clone() {
            None => {
                ui.horizontal(|ui| {
                    let waiting = self.stop_request.is_some();
                    if ui
                        .add_enabled(!waiting, egui::Button::new(tr.t("training.stop")))
                        .on_hover_text(tr.t("training.stop_help"))
                        .clicked()
                    {
                        self.stop();
                    }
                    if ui
                        .add_enabled(!waiting, egui::Button::new(tr.t("training.discard")))
                        .on_hover_text(tr.t("training.discard_help"))
                        .clicked()
                    {
                        self.discard();
                    }
                    match self.stop_request {
                        Some(StopRequest::Stop) => {
                            ui.label(tr.t("training.stopping"));
                        }
                        Some(StopRequest::Discard) => {
                            ui.label(tr.t("training.discarding"));
                        }
                        None => {
                            ui.weak(tr.t("training.stop_help"));
                        }
                    }
                });
            }
            Some(RunOutcome::Finished(summary)) => {
                match &summary.adapter_path {
                    Some(path) => {
                        ui.label(tr.t("training.adapter_saved"));
                        ui.horizontal(|ui| {
                            ui.add(
                                egui::Label::new(
                                    egui::RichText::new(path.display().to_string()).monospace(),
                                )
                                .selectable(true),
                            );
                            if ui.button(tr.t("training.copy_path")).clicked() {
                                ui.ctx().copy_text(path.display().to_string());
                            }
                            // A routed set is a folder of adapters, so it is used where it is.
                            let single = matches!(self.config, ConfigFile::Train(_));
                            if single
                                && ui
                                    .button(tr.t("training.export"))
                                    .on_hover_text(tr.t("training.export_help"))
                                    .clicked()
                            {
                                self.export.start(path, &self.config.run_name(), tr, dialog);
                            }
                        });
                        self.export.show(ui, tr);
                        if let Some(report) = &self.router {
                            router_report(ui, tr, report, |name| {
                                self.module_title(name, tr.language())
                            });
                        }
                    }
                    None if self.stop_request == Some(StopRequest::Stop) => {
                        let modules = summary.output_dir.join("modules");
                        ui.label(
                            tr.tf("training.routed_stopped", &[("folder", &modules.display())]),
                        );
                    }
                    None => {
                        ui.label(tr.t("training.discarded"));
                    }
                }
                let loss = summary
                    .final_train_loss
                    .map(|loss| format!("{loss:.4}"))
                    .unwrap_or_else(|| "—".into());
                ui.label(tr.tf(
                    "training.summary",
                    &[
                        ("steps", &summary.steps),
                        ("loss", &loss),
                        ("time", &format_duration(summary.seconds)),
                    ],
                ));
                if let Some(eval) = &summary.final_eval {
                    let accuracy = eval
                        .accuracy
                        .map(|a| {
                            tr.tf(
                                "training.eval_accuracy",
                                &[("accuracy", &format!("{:.1}", a * 100.0))],
                            )
                        })
                        .unwrap_or_default();
                    ui.label(tr.tf(
                        "training.eval_summary",
                        &[
                            ("loss", &format!("{:.4}", eval.loss)),
                            ("count", &eval.count),
                            ("accuracy", &accuracy),
                        ],
                    ));
                }
                if summary.stopped_early && summary.adapter_path.is_some() {
                    ui.label(tr.t("training.stopped_early"));
                }
                self.after_run_buttons(ui, tr, action);
            }
            Some(RunOutcome::Failed(error)) => {
                ui.colored_label(ui.visuals().error_fg_color, tr.t("training.failed"));
                ui.add(egui::Label::new(egui::RichText::new(&error).monospace()).selectable(true));
                ui.label(tr.t("training.failed_next"));
                if ui.button(tr.t("training.copy_diagnostics")).clicked() {
                    ui.ctx().copy_text(self.diagnostics());
                }
                self.after_run_buttons(ui, tr, action);
            }
        }
    }

    fn after_run_buttons(
        &self,
        ui: &mut egui::Ui,
        tr: &Translator,
        action: &mut Option<TrainingAction>,
    ) {
        ui.horizontal(|ui| {
            if self.adapter_path().is_some()
                && ui
                    .button(tr.t("training.try"))
                    .on_hover_text(tr.t("training.try_help"))
                    .clicked()
            {
                *action = Some(TrainingAction::TryIt);
            }
            if ui.button(tr.t("training.edit_settings")).clicked() {
                *action = Some(TrainingAction::EditSettings);
            }
            if ui.button(tr.t("training.home")).clicked() {
                *action = Some(TrainingAction::Home);
            }
        });
    }
}

/// The router's accuracy on unseen requests, overall and per module.
fn router_report(
    ui: &mut egui::Ui,
    tr: &Translator,
    report: &RouterReport,
    title: impl Fn(&str) -> String,
) {
    let percent = |accuracy: f64| format!("{:.1}", accuracy * 100.0);
    match report.eval_accuracy {
        Some(accuracy) => ui.label(tr.tf(
            "training.router_accuracy",
            &[
                ("percent", &percent(accuracy)),
                ("count", &report.eval_count),
            ],
        )),
        None => ui.label(tr.t("training.router_no_unseen")),
    };
    for (name, right, total) in &report.per_module {
        ui.label(tr.tf(
            "training.router_module",
            &[("module", &title(name)), ("right", right), ("total", total)],
        ));
    }
}

/// Formats seconds as h:mm:ss, or m:ss under an hour.
pub fn format_duration(seconds: f64) -> String {
    let total = if seconds.is_finite() && seconds > 0.0 {
        seconds.round() as u64
    } else {
        0
    };
    let (hours, minutes, secs) = (total / 3600, (total / 60) % 60, total % 60);
    if hours > 0 {
        format!("{hours}:{minutes:02}:{secs:02}")
    } else {
        format!("{minutes}:{secs:02}")
    }
}

//! The try-it screen: one prompt through the base model and through the adapted model, side
//! by side. The model runs on the try-it worker thread; this screen only sends commands and
//! draws the events that come back.

use std::path::PathBuf;

use crate::app::file_dialog::{FileDialog, FilePurpose, FileRequest};
use crate::app::fonts::displayable;
use crate::app::i18n::{Language, Translator};
use crate::data::Task;
use crate::model::hub::HubOptions;
use crate::train::evaluate::LabelScores;
use crate::try_it::{
    spawn_try_worker, Answer, CompareRequest, Comparison, LoadedInfo, RouteInfo, TryCommand,
    TryEvent, TryWorker,
};

/// The worker request in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Busy {
    Loading,
    Comparing,
}

/// A request from the try-it screen to the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryAction {
    Back,
}

pub struct TryScreen {
    worker: Option<TryWorker>,
    hub: HubOptions,
    adapter_path: String,
    model_source: String,
    /// The folder relative model paths resolve against (the training config's folder).
    base_dir: Option<PathBuf>,
    loaded: Option<LoadedInfo>,
    busy: Option<Busy>,
    request: CompareRequest,
    result: Option<Comparison>,
    /// For a routed set: the module that answered the shown result.
    route: Option<RouteInfo>,
    /// The prompt the shown result answers.
    result_prompt: String,
    error: Option<String>,
}

impl TryScreen {
    pub fn new(hub: HubOptions) -> Self {
        Self {
            worker: None,
            hub,
            adapter_path: String::new(),
            model_source: String::new(),
            base_dir: None,
            loaded: None,
            busy: None,
            request: CompareRequest::default(),
            result: None,
            route: None,
            result_prompt: String::new(),
            error: None,
        }
    }

    /// Opens `adapter` on `model` (resolved against `base_dir`) and starts loading it.
    pub fn open(&mut self, adapter: PathBuf, model: String, base_dir: Option<PathBuf>) {
        self.adapter_path = adapter.display().to_string();
        self.model_source = model;
        self.base_dir = base_dir;
        self.load();
    }

    pub fn loaded(&self) -> Option<&LoadedInfo> {
        self.loaded.as_ref()
    }

    pub fn result(&self) -> Option<&Comparison> {
        self.result.as_ref()
    }

    /// The module that answered the shown result, for a routed set.
    pub fn route(&self) -> Option<&RouteInfo> {
        self.route.as_ref()
    }

    /// Picks the module for the next comparison; None lets the router choose.
    pub fn set_module(&mut self, module: Option<&str>) {
        self.request.module = module.map(str::to_string);
    }

    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Returns true while the worker runs a request.
    pub fn is_busy(&self) -> bool {
        self.busy.is_some()
    }

    pub fn set_prompt(&mut self, prompt: &str) {
        self.request.prompt = prompt.to_string();
    }

    pub fn set_max_new_tokens(&mut self, tokens: usize) {
        self.request.max_new_tokens = tokens;
    }

    /// Applies the worker's events since the last frame.
    pub fn poll(&mut self) {
        let Some(worker) = &self.worker else {
            return;
        };
        for event in worker.poll() {
            match event {
                TryEvent::Loading => self.busy = Some(Busy::Loading),
                TryEvent::Loaded(info) => {
                    tracing::info!(adapter = %info.adapter_name, model = %info.model_source, "adapter loaded for trying");
                    self.loaded = Some(info);
                    self.busy = None;
                }
                TryEvent::Compared(comparison, route) => {
                    self.result = Some(comparison);
                    self.route = route;
                    self.busy = None;
                }
                TryEvent::Failed(error) => {
                    tracing::warn!(%error, "try-it request failed");
                    self.error = Some(error);
                    self.busy = None;
                }
            }
        }
    }

    fn send(&mut self, command: TryCommand, busy: Busy) {
        let hub = self.hub.clone();
        let worker = self
            .worker
            .get_or_insert_with(|| spawn_try_worker(hub, worker_threads()));
        worker.send(command);
        self.busy = Some(busy);
        self.error = None;
    }

    fn load(&mut self) {
        if self.adapter_path.trim().is_empty() {
            return;
        }
        self.loaded = None;
        self.result = None;
        self.route = None;
        self.request.module = None;
        let model = Some(self.model_source.trim().to_string()).filter(|m| !m.is_empty());
        let command = TryCommand::Load {
            adapter: PathBuf::from(self.adapter_path.trim()),
            model,
            base_dir: self.base_dir.clone(),
        };
        self.send(command, Busy::Loading);
    }

    /// Sends the prompt to the worker, as the Compare button does.
    pub fn compare(&mut self) {
        self.result = None;
        self.route = None;
        self.result_prompt = self.request.prompt.clone();
        self.send(TryCommand::Compare(self.request.clone()), Busy::Comparing);
    }

    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        tr: &Translator,
        dialog: &dyn FileDialog,
    ) -> Option<TryAction> {
        let mut action = None;
        ui.heading(tr.t("try.title"));
        ui.label(tr.t("try.intro"));
        ui.add_space(6.0);

        self.adapter_form(ui, tr, dialog);
        ui.separator();
        self.prompt_form(ui, tr);
        ui.separator();
        self.results(ui, tr);

        ui.add_space(8.0);
        if ui.button(tr.t("try.back")).clicked() {
            action = Some(TryAction::Back);
        }
        action
    }

    fn adapter_form(&mut self, ui: &mut egui::Ui, tr: &Translator, dialog: &dyn FileDialog) {
        let idle = self.busy.is_none();
        egui::Grid::new("try_adapter")
            .num_columns(2)
            .spacing([8.0, 6.0])
            .show(ui, |ui| {
                let label = ui.label(tr.t("try.adapter"));
                ui.horizontal(|ui| {
                    ui.add(egui::TextEdit::singleline(&mut self.adapter_path).desired_width(420.0))
                        .labelled_by(label.id);
                    if ui
                        .add_enabled(idle, egui::Button::new(tr.t("try.choose_adapter")))
                        .clicked()
                    {
                        let request = FileRequest {
                            purpose: FilePurpose::Adapter,
                            title: tr.t("try.choose_adapter_title"),
                            filter_name: tr.t("try.adapter_files"),
                            // routing.json opens a routed set.
                            extensions: &["safetensors", "json"],
                            suggested_name: None,
                        };
                        if let Some(path) = dialog.pick(&request) {
                            self.adapter_path = path.display().to_string();
                            self.load();
                        }
                    }
                });
                ui.end_row();

                let label = ui.label(tr.t("try.model"));
                ui.add(egui::TextEdit::singleline(&mut self.model_source).desired_width(420.0))
                    .labelled_by(label.id)
                    .on_hover_text(tr.t("try.model_help"));
                ui.end_row();
            });
        ui.weak(tr.t("try.model_help"));

        ui.horizontal(|ui| {
            let can_load = idle && !self.adapter_path.trim().is_empty();
            if ui
                .add_enabled(can_load, egui::Button::new(tr.t("try.load")))
                .clicked()
            {
                self.load();
            }
            match (self.busy, &self.loaded) {
                (Some(Busy::Loading), _) => {
                    ui.spinner();
                    ui.label(tr.t("try.loading"));
                }
                (_, Some(info)) => {
                    ui.label(tr.tf(
                        "try.loaded",
                        &[("name", &info.adapter_name), ("model", &info.model_source)],
                    ));
                    if let Some(accuracy) = info.router_accuracy {
                        ui.label(tr.tf(
                            "try.router_accuracy",
                            &[("percent", &format!("{:.1}", accuracy * 100.0))],
                        ));
                    }
                }
                _ => {}
            }
        });

        if let Some(error) = &self.error {
            ui.colored_label(ui.visuals().error_fg_color, tr.t("try.failed"));
            ui.add(egui::Label::new(egui::RichText::new(error).monospace()).selectable(true));
            ui.label(tr.t("try.failed_next"));
            if ui.button(tr.t("try.copy_diagnostics")).clicked() {
                ui.ctx().copy_text(self.diagnostics(error));
            }
        }
    }

    fn diagnostics(&self, error: &str) -> String {
        format!(
            "reft-studio {}\nerror: {error}\nadapter: {}\nmodel: {}\nrequest: {:?}\n",
            env!("CARGO_PKG_VERSION"),
            self.adapter_path,
            self.model_source,
            self.request
        )
    }

    fn prompt_form(&mut self, ui: &mut egui::Ui, tr: &Translator) {
        let label = ui.label(tr.t("try.prompt"));
        ui.add(
            egui::TextEdit::multiline(&mut self.request.prompt)
                .desired_rows(3)
                .desired_width(f32::INFINITY)
                .hint_text(tr.t("try.prompt_hint")),
        )
        .labelled_by(label.id);

        self.module_picker(ui, tr);
        let classification = self
            .loaded
            .as_ref()
            .is_some_and(|info| info.task == Task::Classification);
        ui.horizontal(|ui| {
            if !classification {
                ui.label(tr.t("try.max_new_tokens"));
                ui.add(egui::DragValue::new(&mut self.request.max_new_tokens).range(1..=1024));
                ui.label(tr.t("try.temperature"));
                ui.add(
                    egui::DragValue::new(&mut self.request.temperature)
                        .range(0.0..=2.0)
                        .speed(0.05),
                );
                ui.label(tr.t("try.seed"));
                ui.add(egui::DragValue::new(&mut self.request.seed));
            }
            let ready = self.loaded.is_some()
                && self.busy.is_none()
                && !self.request.prompt.trim().is_empty();
            if ui
                .add_enabled(ready, egui::Button::new(tr.t("try.compare")))
                .clicked()
            {
                self.compare();
            }
            if self.busy == Some(Busy::Comparing) {
                ui.spinner();
                ui.label(tr.t("try.comparing"));
            }
        });
        if !classification {
            ui.weak(tr.t("try.same_settings"));
        }
    }

    /// For a routed set: the module that answers, chosen by the router or by hand.
    fn module_picker(&mut self, ui: &mut egui::Ui, tr: &Translator) {
        let Some(info) = self.loaded.as_ref().filter(|info| !info.modules.is_empty()) else {
            return;
        };
        let chinese = tr.language() == Language::SimplifiedChinese;
        let automatic = tr.t("try.module_automatic");
        let selected = match &self.request.module {
            Some(name) => info
                .modules
                .iter()
                .find(|m| m.name == *name)
                .map(|m| m.title(chinese).to_string())
                .unwrap_or_else(|| name.clone()),
            None => automatic.clone(),
        };
        ui.horizontal(|ui| {
            let label = ui.label(tr.t("try.module"));
            egui::ComboBox::from_id_salt("try_module")
                .selected_text(selected)
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.request.module, None, automatic);
                    for module in &info.modules {
                        ui.selectable_value(
                            &mut self.request.module,
                            Some(module.name.clone()),
                            module.title(chinese).to_string(),
                        );
                    }
                })
                .response
                .labelled_by(label.id);
        });
        ui.weak(tr.t("try.module_help"));
    }

    fn results(&self, ui: &mut egui::Ui, tr: &Translator) {
        let Some(result) = &self.result else {
            ui.weak(tr.t("try.no_result"));
            return;
        };
        if self.result_prompt != self.request.prompt {
            ui.colored_label(ui.visuals().warn_fg_color, tr.t("try.stale"));
        }
        let mut adapter_name = self
            .loaded
            .as_ref()
            .map(|info| info.adapter_name.clone())
            .unwrap_or_default();
        if let (Some(route), Some(info)) = (&self.route, &self.loaded) {
            let chinese = tr.language() == Language::SimplifiedChinese;
            let title = info
                .modules
                .iter()
                .find(|m| m.name == route.module)
                .map(|m| m.title(chinese).to_string())
                .unwrap_or_else(|| route.module.clone());
            let probability = route
                .probabilities
                .iter()
                .find(|(name, _)| *name == route.module)
                .map_or(0.0, |(_, p)| *p);
            let key = if route.automatic {
                "try.routed_automatic"
            } else {
                "try.routed_by_hand"
            };
            ui.label(tr.tf(
                key,
                &[
                    ("module", &title),
                    ("percent", &format!("{:.1}", probability * 100.0)),
                ],
            ));
            adapter_name = title;
        }
        ui.columns(2, |columns| {
            columns[0].strong(tr.t("try.base_side"));
            columns[1].strong(tr.tf("try.adapted_side", &[("name", &adapter_name)]));
            match result {
                Comparison::Generation { base, adapted } => {
                    answer(&mut columns[0], tr, base);
                    answer(&mut columns[1], tr, adapted);
                }
                Comparison::Classification {
                    labels,
                    base,
                    adapted,
                } => {
                    scores(&mut columns[0], tr, labels, base);
                    scores(&mut columns[1], tr, labels, adapted);
                }
            }
        });
    }
}

/// Returns all cores but one, so that the window stays responsive while the model runs.
fn worker_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    cores.saturating_sub(1).max(1)
}

fn answer(ui: &mut egui::Ui, tr: &Translator, answer: &Answer) {
    egui::Frame::group(ui.style()).show(ui, |ui| {
        ui.set_min_height(80.0);
        ui.add(
            egui::Label::new(displayable(&answer.text))
                .selectable(true)
                .wrap(),
        );
    });
    if answer.truncated {
        ui.weak(tr.tf("try.truncated", &[("tokens", &answer.token_count)]));
    }
}

fn scores(ui: &mut egui::Ui, tr: &Translator, labels: &[String], scores: &LabelScores) {
    let best = labels.get(scores.best).map(String::as_str).unwrap_or("");
    let probability = scores
        .probabilities
        .get(scores.best)
        .copied()
        .unwrap_or(0.0);
    ui.label(tr.tf(
        "try.predicted",
        &[
            ("label", &best),
            ("percent", &format!("{:.1}", probability * 100.0)),
        ],
    ));
    for (label, probability) in labels.iter().zip(&scores.probabilities) {
        ui.horizontal(|ui| {
            ui.label(label);
            ui.add(
                egui::ProgressBar::new(*probability as f32)
                    .desired_width(200.0)
                    .text(format!("{:.1}%", probability * 100.0)),
            );
        });
    }
}

//! The app's state and frame loop: the top bar with the language switch, and the
//! current screen.

use std::path::PathBuf;

use crate::config_file::ConfigFile;
use crate::model::hub::HubOptions;
use crate::routing::RoutingConfig;
use crate::train::config::TrainConfig;
use crate::train::preflight::Machine;

use super::file_dialog::{FileDialog, NativeFileDialog};
use super::fonts::{self, CjkFont};
use super::i18n::{parse_locale, Language, Translator};
use super::presets::{self, PresetScan};
use super::screens::runs::{default_runs_dir, RunsAction, RunsScreen};
use super::screens::setup::{SetupAction, SetupForm};
use super::screens::start::{self, StartAction};
use super::screens::training::{TrainingAction, TrainingView, POLL_INTERVAL};
use super::screens::try_it::{TryAction, TryScreen};
use super::settings::Settings;

/// How to build the app; tests replace the file dialog and the preset folders.
pub struct AppOptions {
    pub language: Language,
    pub preset_dirs: Vec<PathBuf>,
    pub file_dialog: Box<dyn FileDialog>,
    pub hub_options: HubOptions,
    /// The folder for new runs, listed by the runs screen.
    pub runs_dir: PathBuf,
    /// Load a system CJK font on the first frame.
    pub install_fonts: bool,
    /// Settings from the last session: last model and dataset, hub address.
    pub settings: Settings,
}

impl AppOptions {
    /// Returns options with the system locale's language, the usual preset folders and the
    /// native file dialog.
    pub fn from_env() -> Self {
        Self {
            language: Language::from_env(),
            preset_dirs: presets::preset_dirs(),
            file_dialog: Box::new(NativeFileDialog),
            hub_options: HubOptions::from_env(),
            runs_dir: default_runs_dir(),
            install_fonts: true,
            settings: Settings::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Start,
    Setup,
    Training,
    Runs,
    Try,
}

pub struct StudioApp {
    tr: Translator,
    /// Each language's name in that language, for the switch.
    language_names: Vec<(Language, String)>,
    screen: Screen,
    presets: PresetScan,
    setup: Option<SetupForm>,
    training: Option<TrainingView>,
    runs: RunsScreen,
    try_it: TryScreen,
    /// The screen the try-it screen's Back button returns to.
    try_return: Screen,
    runs_dir: PathBuf,
    file_dialog: Box<dyn FileDialog>,
    hub_options: HubOptions,
    install_fonts: bool,
    fonts_installed: bool,
    cjk_font: Option<CjkFont>,
    settings: Settings,
}

impl StudioApp {
    pub fn new(options: AppOptions) -> Self {
        let language_names = Language::ALL
            .iter()
            .map(|language| {
                let name = parse_locale(language.locale_source())
                    .ok()
                    .and_then(|strings| strings.get("language.name").cloned())
                    .unwrap_or_else(|| language.code().to_string());
                (*language, name)
            })
            .collect();
        // The pre-flight estimate needs this computer's speed; measuring takes a moment, so
        // it happens off the UI thread.
        std::thread::spawn(Machine::detect);
        let presets = presets::scan(&options.preset_dirs);
        tracing::info!(count = presets.presets.len(), dirs = ?options.preset_dirs, "presets found");
        Self {
            tr: Translator::new(options.language),
            language_names,
            screen: Screen::Start,
            presets,
            setup: None,
            training: None,
            runs: RunsScreen::new(options.runs_dir.clone()),
            try_it: TryScreen::new(options.hub_options.clone()),
            try_return: Screen::Start,
            runs_dir: options.runs_dir,
            file_dialog: options.file_dialog,
            hub_options: options.hub_options,
            install_fonts: options.install_fonts,
            fonts_installed: false,
            cjk_font: None,
            settings: options.settings,
        }
    }

    /// Builds the app for eframe: the stored language wins over the system locale.
    pub fn from_creation_context(cc: &eframe::CreationContext<'_>) -> Self {
        let mut options = AppOptions::from_env();
        let settings = Settings::load(cc.storage);
        if let Some(language) = settings.language {
            options.language = language;
        }
        if let Some(endpoint) = &settings.hub_endpoint {
            options.hub_options.endpoint = endpoint.clone();
        }
        options.settings = settings;
        Self::new(options)
    }

    /// Returns the settings as they would be saved now.
    pub fn settings(&self) -> Settings {
        let mut settings = self.settings.clone();
        settings.language = Some(self.tr.language());
        if let Some(setup) = &self.setup {
            let endpoint = setup.hub_endpoint();
            if endpoint != self.hub_options.endpoint {
                settings.hub_endpoint = Some(endpoint.to_string());
            }
        }
        settings
    }

    pub fn translator(&self) -> &Translator {
        &self.tr
    }

    pub fn set_language(&mut self, language: Language) {
        tracing::info!(language = language.code(), "interface language changed");
        self.tr.set_language(language);
    }

    pub fn screen(&self) -> Screen {
        self.screen
    }

    pub fn presets(&self) -> &PresetScan {
        &self.presets
    }

    pub fn setup(&self) -> Option<&SetupForm> {
        self.setup.as_ref()
    }

    pub fn training(&self) -> Option<&TrainingView> {
        self.training.as_ref()
    }

    pub fn try_screen(&self) -> &TryScreen {
        &self.try_it
    }

    pub fn try_screen_mut(&mut self) -> &mut TryScreen {
        &mut self.try_it
    }

    pub fn cjk_font(&self) -> Option<&CjkFont> {
        self.cjk_font.as_ref()
    }

    /// Starts training `config` and shows the training screen, as the setup form's Train
    /// button does.
    pub fn start_training(&mut self, config: TrainConfig) {
        self.settings.last_model = Some(config.model.source.clone());
        self.settings.last_dataset = Some(config.resolve_path(&config.data.train));
        self.training = Some(TrainingView::start(ConfigFile::Train(config)));
        self.screen = Screen::Training;
    }

    /// Starts training every module of a routed set and its router.
    pub fn start_routed_training(&mut self, config: RoutingConfig) {
        self.settings.last_model = Some(config.model.source.clone());
        self.training = Some(TrainingView::start(ConfigFile::Routing(config)));
        self.screen = Screen::Training;
    }

    /// Shows the try-it screen with the finished run's adapter, as its Try it button does.
    pub fn open_try_for_run(&mut self) {
        let Some(training) = &self.training else {
            return;
        };
        if let Some(adapter) = training.adapter_path() {
            let (model, base_dir) = match training.config() {
                ConfigFile::Train(config) => (config.model.source.clone(), config.base_dir.clone()),
                ConfigFile::Routing(config) => {
                    (config.model.source.clone(), config.base_dir.clone())
                }
            };
            self.try_it.open(adapter.to_path_buf(), model, base_dir);
            self.try_return = Screen::Training;
            self.screen = Screen::Try;
        }
    }

    /// Opens the setup form filled from `config`.
    pub fn open_setup(&mut self, config: TrainConfig) {
        self.setup = Some(SetupForm::from_config(
            config,
            self.hub_options.clone(),
            self.runs_dir.clone(),
        ));
        self.screen = Screen::Setup;
    }

    /// Opens the setup form for a routed set.
    pub fn open_routed_setup(&mut self, config: RoutingConfig) {
        self.setup = Some(SetupForm::from_routing(
            config,
            self.hub_options.clone(),
            self.runs_dir.clone(),
        ));
        self.screen = Screen::Setup;
    }

    /// Opens the preset whose file name (without .toml) is `name`; logs a warning and stays
    /// on the start screen when there is none.
    pub fn open_preset_named(&mut self, name: &str) {
        let index = self
            .presets
            .presets
            .iter()
            .position(|preset| preset.path.file_stem().is_some_and(|stem| stem == name));
        match index {
            Some(index) => self.open_preset(index),
            None => tracing::warn!(
                preset = name,
                "no preset of that name; showing the start screen"
            ),
        }
    }

    /// Opens the preset at `index` of the gallery in the setup form.
    pub fn open_preset(&mut self, index: usize) {
        let Some(preset) = self.presets.presets.get(index) else {
            return;
        };
        tracing::info!(preset = %preset.path.display(), "preset opened");
        match preset.config.clone() {
            ConfigFile::Train(config) => self.open_setup(config),
            ConfigFile::Routing(config) => self.open_routed_setup(config),
        }
    }

    /// Draws one frame.
    pub fn ui(&mut self, ctx: &egui::Context) {
        if !self.fonts_installed {
            if self.install_fonts {
                self.cjk_font = fonts::install_fonts(ctx);
            }
            self.fonts_installed = true;
        }
        if let Some(training) = &mut self.training {
            training.poll();
            if training.is_running() {
                ctx.request_repaint_after(POLL_INTERVAL);
            }
        }
        self.try_it.poll();
        if self.try_it.is_busy() {
            ctx.request_repaint_after(POLL_INTERVAL);
        }

        egui::TopBottomPanel::top("top_bar").show(ctx, |ui| self.top_bar(ui));
        egui::CentralPanel::default().show(ctx, |ui| {
            egui::ScrollArea::vertical()
                .id_salt("screen_scroll")
                .auto_shrink([false, false])
                .show(ui, |ui| self.screen_ui(ui));
        });
    }

    fn top_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.strong(self.tr.t("app.title"));
            let training_running = self.training.as_ref().is_some_and(TrainingView::is_running);
            if self.screen != Screen::Start
                && ui
                    .add_enabled(!training_running, egui::Button::new(self.tr.t("app.home")))
                    .clicked()
            {
                self.screen = Screen::Start;
            }

            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                let current = self.tr.language();
                let mut picked = current;
                let current_name = self.language_name(current);
                egui::ComboBox::from_id_salt("language")
                    .selected_text(current_name)
                    .show_ui(ui, |ui| {
                        for (language, name) in &self.language_names {
                            ui.selectable_value(&mut picked, *language, name);
                        }
                    });
                ui.label(self.tr.t("app.language"));
                if picked != current {
                    self.set_language(picked);
                }
                if self.fonts_installed
                    && self.install_fonts
                    && self.cjk_font.is_none()
                    && current == Language::SimplifiedChinese
                {
                    // Chinese text cannot render without the font, so this warning is in English.
                    ui.colored_label(
                        ui.visuals().warn_fg_color,
                        self.tr.english("app.no_cjk_font"),
                    );
                }
            });
        });
    }

    fn language_name(&self, language: Language) -> String {
        self.language_names
            .iter()
            .find(|(candidate, _)| *candidate == language)
            .map(|(_, name)| name.clone())
            .unwrap_or_else(|| language.code().to_string())
    }

    fn screen_ui(&mut self, ui: &mut egui::Ui) {
        match self.screen {
            Screen::Start => match start::show(ui, &self.tr, &self.presets) {
                Some(StartAction::OpenPreset(index)) => self.open_preset(index),
                Some(StartAction::OpenRuns) => {
                    self.runs.refresh();
                    self.screen = Screen::Runs;
                }
                Some(StartAction::OpenTry) => {
                    self.try_return = Screen::Start;
                    self.screen = Screen::Try;
                }
                Some(StartAction::FromScratch) => {
                    let mut setup =
                        SetupForm::empty(self.hub_options.clone(), self.runs_dir.clone());
                    setup.prefill(
                        self.settings.last_model.as_deref(),
                        self.settings.last_dataset.as_deref(),
                    );
                    self.setup = Some(setup);
                    self.screen = Screen::Setup;
                }
                None => {}
            },
            Screen::Setup => {
                let Some(setup) = &mut self.setup else {
                    self.screen = Screen::Start;
                    return;
                };
                match setup.show(ui, &self.tr, self.file_dialog.as_ref()) {
                    Some(SetupAction::Back) => self.screen = Screen::Start,
                    Some(SetupAction::Train(config)) => self.start_training(*config),
                    Some(SetupAction::TrainRouted(config)) => self.start_routed_training(*config),
                    None => {}
                }
            }
            Screen::Runs => match self.runs.show(ui, &self.tr, self.file_dialog.as_ref()) {
                Some(RunsAction::Back) => self.screen = Screen::Start,
                Some(RunsAction::Try { adapter, model }) => {
                    self.try_it.open(adapter, model, None);
                    self.try_return = Screen::Runs;
                    self.screen = Screen::Try;
                }
                Some(RunsAction::Resume(config)) => self.start_training(*config),
                None => {}
            },
            Screen::Try => {
                if let Some(TryAction::Back) =
                    self.try_it.show(ui, &self.tr, self.file_dialog.as_ref())
                {
                    self.screen = self.try_return;
                }
            }
            Screen::Training => {
                let Some(training) = &mut self.training else {
                    self.screen = Screen::Start;
                    return;
                };
                match training.show(ui, &self.tr, self.file_dialog.as_ref()) {
                    Some(TrainingAction::EditSettings) => self.screen = Screen::Setup,
                    Some(TrainingAction::Home) => self.screen = Screen::Start,
                    Some(TrainingAction::TryIt) => self.open_try_for_run(),
                    None => {}
                }
            }
        }
    }
}

impl eframe::App for StudioApp {
    fn update(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.ui(ctx);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        storage.set_string(eframe::APP_KEY, self.settings().to_text());
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        if let Some(training) = &mut self.training {
            if training.is_running() {
                // NOTE: the process exits right after this, so the trainer thread usually
                // has no time to save; the last checkpoint (if any) is what remains.
                tracing::warn!("the window closed during training; asking the trainer to stop");
                training.stop();
            }
        }
    }
}

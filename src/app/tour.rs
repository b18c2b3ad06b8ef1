//! A scripted walk through the real window that saves a screenshot of each main screen:
//! the preset gallery, the setup form, training with live charts, and try-it after the run.
//! It drives the app through the same methods its buttons call, and the screenshots come
//! from the renderer, so they show the window as it is drawn.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::i18n::Language;
use super::{AppOptions, Screen, StudioApp};
use crate::train::config::TrainConfig;

/// Frames drawn on a screen before its screenshot, so fonts and layout have settled.
const SETTLE_FRAMES: usize = 10;
/// Training steps finished before the training screen's screenshot.
const STEPS_BEFORE_SHOT: usize = 12;
/// Maximum duration of the whole walk.
const TOUR_LIMIT: Duration = Duration::from_secs(1800);

/// Settings of the walk.
pub struct TourOptions {
    pub out_dir: PathBuf,
    pub language: Language,
    /// The preset to train, with its model replaced by `model`.
    pub preset: PathBuf,
    pub model: String,
    /// The prompt typed into the try-it screen.
    pub prompt: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Start,
    Setup,
    Training,
    WaitFinish,
    Try,
    Done,
}

struct Tour {
    app: StudioApp,
    options: TourOptions,
    config: TrainConfig,
    stage: Stage,
    frames: usize,
    /// The name of the screenshot requested and not yet received.
    pending: Option<String>,
    started: Instant,
    error: Option<String>,
}

/// Opens the window, walks through the screens and returns when every screenshot is saved.
pub fn run_tour(options: TourOptions) -> Result<()> {
    std::fs::create_dir_all(&options.out_dir).with_context(|| {
        format!(
            "cannot create the screenshot folder {}",
            options.out_dir.display()
        )
    })?;
    let mut config = TrainConfig::load(&options.preset).map_err(|e| anyhow::anyhow!("{e}"))?;
    config.model.source = options.model.clone();
    let runs_dir = std::env::temp_dir().join(format!("reft-studio-tour-{}", std::process::id()));
    config.output.dir = Some(
        runs_dir
            .join(config.run_name())
            .to_string_lossy()
            .into_owned(),
    );

    let mut app_options = AppOptions::from_env();
    app_options.language = options.language;
    app_options.runs_dir = runs_dir;
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("ReFT Studio")
            .with_inner_size([1100.0, 800.0]),
        persist_window: false,
        ..Default::default()
    };
    let error = std::sync::Arc::new(std::sync::Mutex::new(None));
    let tour_error = error.clone();
    eframe::run_native(
        "ReFT Studio tour",
        native,
        Box::new(move |_cc| {
            Ok(Box::new(TourApp {
                tour: Tour {
                    app: StudioApp::new(app_options),
                    options,
                    config,
                    stage: Stage::Start,
                    frames: 0,
                    pending: None,
                    started: Instant::now(),
                    error: None,
                },
                error: tour_error,
            }))
        }),
    )
    .map_err(|e| anyhow::anyhow!("could not open the window: {e}"))?;

    if let Some(error) = error.lock().expect("the error slot is not poisoned").take() {
        bail!(error);
    }
    Ok(())
}

/// The eframe app: the studio plus the walk's state, which reports its error on exit.
struct TourApp {
    tour: Tour,
    error: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

impl eframe::App for TourApp {
    /// Keeps the pointer out of the window: under Xvfb it rests in the middle of the screen,
    /// where it would open a chart's hover label in every screenshot.
    fn raw_input_hook(&mut self, _ctx: &egui::Context, raw_input: &mut egui::RawInput) {
        raw_input
            .events
            .retain(|event| !matches!(event, egui::Event::PointerMoved(_)));
        raw_input.events.push(egui::Event::PointerGone);
    }

    fn update(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.tour.save_screenshots(ctx);
        self.tour.app.ui(ctx);
        self.tour.advance(ctx);
        if self.tour.started.elapsed() > TOUR_LIMIT && self.tour.error.is_none() {
            self.tour.error = Some(format!(
                "the walk took longer than {} s",
                TOUR_LIMIT.as_secs()
            ));
        }
        let finished = self.tour.stage == Stage::Done && self.tour.pending.is_none();
        if finished || self.tour.error.is_some() {
            *self.error.lock().expect("the error slot is not poisoned") = self.tour.error.take();
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
        ctx.request_repaint_after(Duration::from_millis(50));
    }
}

impl Tour {
    fn save_screenshots(&mut self, ctx: &egui::Context) {
        let images: Vec<_> = ctx.input(|input| {
            input
                .raw
                .events
                .iter()
                .filter_map(|event| match event {
                    egui::Event::Screenshot { image, .. } => Some(image.clone()),
                    _ => None,
                })
                .collect()
        });
        for image in images {
            let Some(name) = self.pending.take() else {
                continue;
            };
            let path = self
                .options
                .out_dir
                .join(format!("{name}-{}.png", self.options.language.code()));
            match write_png(&path, &image) {
                Ok(()) => tracing::info!(path = %path.display(), "screenshot saved"),
                Err(error) => {
                    self.error = Some(format!("cannot write {}: {error}", path.display()))
                }
            }
        }
    }

    /// Requests the screenshot `name` once the screen has settled; returns true when it
    /// was requested.
    fn shoot(&mut self, ctx: &egui::Context, name: &str) -> bool {
        if self.pending.is_none() && self.frames >= SETTLE_FRAMES {
            self.pending = Some(name.to_string());
            ctx.send_viewport_cmd(egui::ViewportCommand::Screenshot(egui::UserData::default()));
            self.frames = 0;
            return true;
        }
        false
    }

    fn advance(&mut self, ctx: &egui::Context) {
        self.frames += 1;
        if self.pending.is_some() {
            return;
        }
        match self.stage {
            Stage::Start => {
                if self.shoot(ctx, "start") {
                    self.stage = Stage::Setup;
                }
            }
            Stage::Setup => {
                if self.app.screen() != Screen::Setup {
                    self.app.open_setup(self.config.clone());
                    self.frames = 0;
                }
                let ready = self
                    .app
                    .setup()
                    .is_some_and(|setup| setup.preflight().is_some());
                if ready && self.shoot(ctx, "setup") {
                    self.stage = Stage::Training;
                }
            }
            Stage::Training => {
                if self.app.screen() != Screen::Training {
                    match self.app.setup().and_then(|setup| setup.build_config()) {
                        Some(config) => self.app.start_training(config),
                        None => {
                            self.error =
                                Some("the setup form has problems; the preset cannot train".into())
                        }
                    }
                    self.frames = 0;
                }
                let training = self.app.training().expect("training started");
                if let Some(super::screens::training::RunOutcome::Failed(error)) =
                    training.outcome()
                {
                    self.error = Some(format!("training failed: {error}"));
                    return;
                }
                let steps = training.loss().train.len();
                let shifts = training.latest_shift().is_some();
                if steps >= STEPS_BEFORE_SHOT && shifts && self.shoot(ctx, "training") {
                    self.stage = Stage::WaitFinish;
                }
            }
            Stage::WaitFinish => {
                if self
                    .app
                    .training()
                    .is_some_and(|training| training.adapter_path().is_some())
                {
                    self.app.open_try_for_run();
                    self.stage = Stage::Try;
                    self.frames = 0;
                }
            }
            Stage::Try => {
                let screen = self.app.try_screen_mut();
                if let Some(error) = screen.error() {
                    self.error = Some(format!("try-it failed: {error}"));
                    return;
                }
                if screen.is_busy() || screen.loaded().is_none() {
                    return;
                }
                if screen.result().is_none() {
                    screen.set_prompt(&self.options.prompt);
                    screen.compare();
                    self.frames = 0;
                    return;
                }
                if self.shoot(ctx, "try") {
                    self.stage = Stage::Done;
                }
            }
            Stage::Done => {}
        }
    }
}

/// Writes an RGBA screenshot as PNG.
fn write_png(path: &Path, image: &egui::ColorImage) -> Result<()> {
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let [width, height] = image.size;
    let mut encoder = png::Encoder::new(file, width as u32, height as u32);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    let bytes: Vec<u8> = image
        .pixels
        .iter()
        .flat_map(|pixel| pixel.to_array())
        .collect();
    writer.write_image_data(&bytes)?;
    Ok(())
}

//! The desktop app (eframe/egui) on top of the engine: a preset gallery, a setup form with
//! a dataset preview, and a live training view, in English and Simplified Chinese.
//! [`run_app`] opens the window; tests drive [`StudioApp::ui`] with egui_kittest.

#[allow(clippy::module_inception)]
mod app;
pub mod export;
pub mod file_dialog;
pub mod fonts;
pub mod i18n;
pub mod presets;
pub mod screens;
pub mod settings;
pub mod tour;
pub mod widgets;

pub use app::{AppOptions, Screen, StudioApp};

/// Opens the app window and returns when it closes.
/// Opens the app window; `preset` (a preset's file name without .toml) opens that preset
/// in the setup form.
pub fn run_app(preset: Option<String>) -> anyhow::Result<()> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("ReFT Studio")
            .with_inner_size([1100.0, 800.0])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    eframe::run_native(
        "ReFT Studio",
        options,
        Box::new(move |cc| {
            let mut app = StudioApp::from_creation_context(cc);
            if let Some(name) = &preset {
                app.open_preset_named(name);
            }
            Ok(Box::new(app))
        }),
    )
    .map_err(|error| {
        anyhow::anyhow!(
            "could not open the app window: {error}. Without a display, use a subcommand such as `reft-studio train --config FILE` (see --help)"
        )
    })
}

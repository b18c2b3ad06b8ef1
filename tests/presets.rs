//! The shipped presets through the command line, as a new user runs them: `reft-studio
//! check` on every preset, and a few training steps of the quick start. The model is found
//! by its hub id in a model folder that contains the test GGUF, as after scripts/get-model.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const DEFAULT_MODEL: &str = "HuggingFaceTB/SmolLM2-135M-Instruct";

fn presets_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("presets")
}

fn preset_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(presets_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    files
}

/// A model folder with the test GGUF under the default hub id, and an empty Hugging Face
/// cache, so that nothing outside the test is read or downloaded.
struct ModelHome {
    dir: tempfile::TempDir,
}

impl ModelHome {
    fn new(model: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("models").join(DEFAULT_MODEL);
        std::fs::create_dir_all(&folder).unwrap();
        std::os::unix::fs::symlink(model, folder.join("SmolLM2-135M-Instruct.Q4_1.gguf")).unwrap();
        Self { dir }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_reft-studio"))
            .args(args)
            .env("REFT_STUDIO_MODELS", self.dir.path().join("models"))
            .env("HF_HOME", self.dir.path().join("hf"))
            .env("HF_HUB_OFFLINE", "1")
            .output()
            .unwrap()
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn presets_are_the_four_shipped() {
    let names: Vec<String> = preset_files()
        .iter()
        .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "cat-persona",
            "chinese-sentiment",
            "customer-service",
            "emoji-quickstart"
        ]
    );
}

#[test]
fn every_preset_passes_check() {
    let Some(model) = common::test_model_path() else {
        return;
    };
    let home = ModelHome::new(&model);
    for preset in preset_files() {
        let output = home.run(&["check", "--config", preset.to_str().unwrap()]);
        let printed = text(&output);
        assert!(output.status.success(), "{}:\n{printed}", preset.display());
        assert!(
            printed.contains("30 layers, hidden size 576"),
            "{}:\n{printed}",
            preset.display()
        );
        assert!(printed.contains("ok: "), "{}:\n{printed}", preset.display());
    }
}

#[test]
fn check_without_model_reports_how_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_reft-studio"))
        .args([
            "check",
            "--config",
            presets_dir()
                .join("emoji-quickstart.toml")
                .to_str()
                .unwrap(),
        ])
        .env("REFT_STUDIO_MODELS", dir.path().join("models"))
        .env("HF_HOME", dir.path().join("hf"))
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    let printed = text(&output);
    assert!(!output.status.success());
    assert!(
        printed.contains("is not in the Hugging Face cache"),
        "{printed}"
    );
    assert!(printed.contains(DEFAULT_MODEL), "{printed}");
}

#[test]
fn quick_start_trains_a_few_steps() {
    let Some(model) = common::test_model_path() else {
        return;
    };
    let home = ModelHome::new(&model);
    let output_dir = home.dir.path().join("run");
    let preset = presets_dir().join("emoji-quickstart.toml");
    let output = home.run(&[
        "train",
        "--config",
        preset.to_str().unwrap(),
        "--max-steps",
        "3",
        "--output",
        output_dir.to_str().unwrap(),
    ]);
    let printed = text(&output);
    assert!(output.status.success(), "{printed}");
    assert!(
        output_dir.join("adapter.safetensors").is_file(),
        "{printed}"
    );

    let metrics = std::fs::read_to_string(output_dir.join("metrics.jsonl")).unwrap();
    let losses: Vec<f64> = metrics
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|event| event["event"] == "step")
        .map(|event| event["loss"].as_f64().unwrap())
        .collect();
    assert_eq!(losses.len(), 3, "{metrics}");
    // The first batch's loss before any update, with this preset's seed (measured with
    // this build on the Q4_1 test model: 3.59546).
    assert!(
        (losses[0] - 3.5955).abs() < 1e-3,
        "first loss {}",
        losses[0]
    );
    assert!(losses[2] < losses[0], "losses {losses:?}");
}

//! Desktop app tests: the locale files, and the screens driven through egui_kittest with
//! widgets found by their accessible labels. The training flow needs a real model: set
//! REFT_STUDIO_TEST_MODEL to a .gguf file (SmolLM2-135M-Instruct works), else it is skipped.

#[path = "common/fake_hub.rs"]
mod fake_hub;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui::accesskit::Role;
use egui_kittest::kittest::{by, NodeT, Queryable};
use egui_kittest::Harness;
use reft_studio::app::export::suggested_file_name;
use reft_studio::app::file_dialog::{FileDialog, FileRequest};
use reft_studio::app::fonts::find_cjk_font;
use reft_studio::app::i18n::{parse_locale, Language};
use reft_studio::app::screens::training::RunOutcome;
use reft_studio::app::settings::Settings;
use reft_studio::app::{AppOptions, Screen, StudioApp};
use reft_studio::model::hub::HubOptions;
use reft_studio::train::config::TrainConfig;
use reft_studio::try_it::Comparison;

const PRESETS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/presets");

/// A file dialog that returns a fixed path for every request.
struct FakeFileDialog(Option<PathBuf>);

impl FileDialog for FakeFileDialog {
    fn pick(&self, _request: &FileRequest) -> Option<PathBuf> {
        self.0.clone()
    }
}

/// Hub options that point at an empty folder, so no test reads the machine's model cache.
fn isolated_hub(dir: &Path) -> HubOptions {
    let mut options = HubOptions::from_env();
    options.cache_dir = dir.join("hf-cache");
    options.models_dir = dir.join("models");
    options.offline = true;
    options
}

fn app(language: Language, dialog_path: Option<PathBuf>, scratch: &Path) -> StudioApp {
    StudioApp::new(AppOptions {
        language,
        preset_dirs: vec![PathBuf::from(PRESETS)],
        file_dialog: Box::new(FakeFileDialog(dialog_path)),
        hub_options: isolated_hub(scratch),
        runs_dir: scratch.join("runs"),
        install_fonts: true,
        settings: Settings::default(),
    })
}

/// Returns an English app whose hub downloads go to `endpoint`.
fn app_with_hub(scratch: &Path, endpoint: &str) -> StudioApp {
    let mut app_options = AppOptions {
        language: Language::English,
        preset_dirs: vec![PathBuf::from(PRESETS)],
        file_dialog: Box::new(FakeFileDialog(None)),
        hub_options: isolated_hub(scratch),
        runs_dir: scratch.join("runs"),
        install_fonts: true,
        settings: Settings::default(),
    };
    app_options.hub_options.endpoint = endpoint.to_string();
    StudioApp::new(app_options)
}

fn harness(app: StudioApp) -> Harness<'static, StudioApp> {
    Harness::builder()
        .with_size(egui::vec2(1200.0, 1600.0))
        .build_state(|ctx, app: &mut StudioApp| app.ui(ctx), app)
}

fn locale_keys(language: Language) -> BTreeSet<String> {
    parse_locale(language.locale_source())
        .unwrap_or_else(|error| panic!("{} locale file is invalid: {error}", language.code()))
        .into_keys()
        .collect()
}

/// Collects every literal key passed to `t(`, `tf(` or `english(` in src/app.
fn keys_used_in_source() -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut folders = vec![PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/app"
    ))];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for call in ["t(\"", "tf(\"", "english(\""] {
                for (start, _) in text.match_indices(call) {
                    let preceded_by_identifier = text[..start]
                        .chars()
                        .last()
                        .is_some_and(|c| c.is_alphanumeric() || c == '_');
                    if preceded_by_identifier {
                        continue;
                    }
                    let rest = &text[start + call.len()..];
                    let key = &rest[..rest.find('"').unwrap()];
                    keys.insert(key.to_string());
                }
            }
        }
    }
    keys
}

#[test]
fn locales_have_same_keys() {
    let english = locale_keys(Language::English);
    let chinese = locale_keys(Language::SimplifiedChinese);

    let missing_in_chinese: Vec<_> = english.difference(&chinese).collect();
    assert!(
        missing_in_chinese.is_empty(),
        "keys missing from zh-CN.toml: {missing_in_chinese:?}"
    );
    let missing_in_english: Vec<_> = chinese.difference(&english).collect();
    assert!(
        missing_in_english.is_empty(),
        "keys missing from en.toml: {missing_in_english:?}"
    );
}

#[test]
fn locales_cover_keys_used_in_code() {
    let used = keys_used_in_source();
    assert!(
        used.len() > 50,
        "found only {} keys in src/app: the key scan is broken",
        used.len()
    );

    for language in Language::ALL {
        let defined = locale_keys(language);
        let missing: Vec<_> = used.difference(&defined).collect();
        assert!(
            missing.is_empty(),
            "keys used in src/app but missing from {}: {missing:?}",
            language.code()
        );
    }
}

#[test]
fn locale_follows_system_language() {
    assert_eq!(
        Language::from_locale("zh_CN.UTF-8"),
        Language::SimplifiedChinese
    );
    assert_eq!(Language::from_locale("zh_TW"), Language::SimplifiedChinese);
    assert_eq!(Language::from_locale("en_US.UTF-8"), Language::English);
    assert_eq!(Language::from_locale("C"), Language::English);
    assert_eq!(Language::from_locale(""), Language::English);
}

#[test]
fn start_screen_opens_preset_in_setup() {
    let scratch = tempfile::tempdir().unwrap();
    let mut harness = harness(app(Language::English, None, scratch.path()));
    harness.run();

    harness.get_by_label("Emoji answers").click();
    harness.run();

    assert_eq!(harness.state().screen(), Screen::Setup);
    let setup = harness.state().setup().expect("the setup form is open");
    assert_eq!(setup.model_source(), "HuggingFaceTB/SmolLM2-135M-Instruct");
    let model_field = harness.get(by().role(Role::TextInput).label("Base model"));
    assert_eq!(
        model_field.value().as_deref(),
        Some("HuggingFaceTB/SmolLM2-135M-Instruct")
    );
    harness.get_by_label("Train");
}

#[test]
fn start_screen_from_scratch_disables_train() {
    let scratch = tempfile::tempdir().unwrap();
    let mut harness = harness(app(Language::English, None, scratch.path()));
    harness.run();

    // Every card fits in the 1200-pixel-wide window, the quick start first.
    let card_titles = [
        "Emoji answers",
        "Chinese review sentiment",
        "Customer service routing",
        "Cat persona (小橘)",
        "Start from scratch",
    ];
    let mut lefts = Vec::new();
    for title in card_titles {
        let bounds = harness
            .get_by_label(title)
            .accesskit_node()
            .bounding_box()
            .unwrap();
        assert!(bounds.x1 <= 1200.0, "{title} ends at x = {}", bounds.x1);
        lefts.push((bounds.y0, bounds.x0));
    }
    assert!(
        lefts.windows(2).all(|pair| pair[0] < pair[1]),
        "cards out of reading order: {lefts:?}"
    );

    harness.get_by_label("Start from scratch").click();
    harness.run();

    assert_eq!(harness.state().screen(), Screen::Setup);
    assert!(
        harness.get_by_label("Train").accesskit_node().is_disabled(),
        "Train must be disabled without a model and data"
    );
    harness.get_by_label_contains("The settings are not valid");
}

#[test]
fn bad_dataset_row_disables_train() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("broken.jsonl");
    std::fs::write(
        &data,
        "{\"prompt\": \"Hi\", \"response\": \"Hello\"}\n{\"prompt\": \"Bye\", \"response\": \n{\"prompt\": \"Why\", \"response\": \"Because\"}\n",
    )
    .unwrap();
    let mut harness = harness(app(Language::English, Some(data.clone()), scratch.path()));
    harness.run();
    harness.get_by_label("Emoji answers").click();
    harness.run();

    harness.get_by_label("Choose file…").click();
    harness.run();

    let setup = harness.state().setup().unwrap();
    let loaded = setup
        .dataset()
        .expect("the dataset was read")
        .as_ref()
        .expect("the file has valid rows");
    assert_eq!(loaded.problems.len(), 1);
    assert_eq!(loaded.problems[0].line, 2);
    harness.get_by_label_contains("Line 2");
    assert!(
        harness.get_by_label("Train").accesskit_node().is_disabled(),
        "Train must be disabled while the data has problems"
    );
    harness.get_by_label_contains("The dataset has 1 bad rows");
}

#[test]
fn language_switch_shows_chinese() {
    if find_cjk_font().is_none() {
        println!(
            "skipping: no CJK font found (install fonts-noto-cjk or set REFT_STUDIO_CJK_FONT)"
        );
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let mut harness = harness(app(Language::English, None, scratch.path()));
    harness.run();

    harness
        .state_mut()
        .set_language(Language::SimplifiedChinese);
    harness.run();

    harness.get_by_label("表情符号回答").click();
    harness.run();
    assert_eq!(harness.state().screen(), Screen::Setup);
    harness.get_by_label("开始训练");
}

#[test]
fn training_flow_shows_charts_and_adapter() {
    let Some(model) = std::env::var_os("REFT_STUDIO_TEST_MODEL").filter(|value| !value.is_empty())
    else {
        println!("skipping: set REFT_STUDIO_TEST_MODEL to a .gguf model (SmolLM2-135M-Instruct) to run the training flow");
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let mut config = TrainConfig::load(&Path::new(PRESETS).join("emoji-quickstart.toml")).unwrap();
    config.model.source = PathBuf::from(model).to_string_lossy().into_owned();
    config.training.max_steps = 3;
    config.training.shift_every = 1;
    config.output.dir = Some(
        scratch
            .path()
            .join("runs")
            .join("emoji-run")
            .to_string_lossy()
            .into_owned(),
    );

    let export_path = scratch.path().join("exported.safetensors");
    let mut app = app(Language::English, Some(export_path.clone()), scratch.path());
    app.open_setup(config);
    let mut harness = harness(app);
    harness.run();
    assert!(
        !harness.get_by_label("Train").accesskit_node().is_disabled(),
        "Train is disabled: {:?}",
        harness
            .state()
            .setup()
            .unwrap()
            .problems(harness.state().translator())
    );

    harness.get_by_label("Train").click();
    // The training screen keeps asking for repaints to poll the trainer, so Harness::run
    // would never settle: step frames one at a time from here on.
    harness.run_steps(2);
    assert_eq!(harness.state().screen(), Screen::Training);

    let charts_filled = |app: &StudioApp| {
        let training = app.training().unwrap();
        !training.loss().train.is_empty()
            && training
                .latest_shift()
                .is_some_and(|shift| !shift.layers.is_empty())
    };
    let wait_until = |harness: &mut Harness<'static, StudioApp>,
                      done: &dyn Fn(&StudioApp) -> bool,
                      what: &str| {
        let deadline = Instant::now() + Duration::from_secs(600);
        while !done(harness.state()) {
            assert!(
                Instant::now() < deadline,
                "timed out after 600 s waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(100));
            harness.step();
        }
    };
    // While the trainer works on its own thread, every frame stays short: time them.
    let mut frame_seconds = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    while !(charts_filled(harness.state())
        || harness.state().training().unwrap().outcome().is_some())
    {
        assert!(
            Instant::now() < deadline,
            "timed out after 600 s waiting for the first step"
        );
        std::thread::sleep(Duration::from_millis(100));
        let frame = Instant::now();
        harness.step();
        frame_seconds.push(frame.elapsed().as_secs_f64());
    }
    frame_seconds.sort_by(f64::total_cmp);
    let median = frame_seconds[frame_seconds.len() / 2];
    eprintln!(
        "frames while training: {}, median {:.1} ms, slowest {:.1} ms",
        frame_seconds.len(),
        median * 1e3,
        frame_seconds.last().unwrap() * 1e3
    );
    assert!(
        median < 0.016,
        "the median frame took {:.1} ms while training",
        median * 1e3
    );
    if let Some(RunOutcome::Failed(error)) = harness.state().training().unwrap().outcome() {
        panic!("training failed: {error}");
    }
    assert!(
        charts_filled(harness.state()),
        "the run ended before the loss and shift charts had data"
    );
    harness.step();
    harness.get_by_label("Loss");

    if harness.query_by_label("Stop").is_some() {
        harness.get_by_label("Stop").click();
        harness.step();
    }
    wait_until(
        &mut harness,
        &|app| app.training().unwrap().outcome().is_some(),
        "the run to finish",
    );
    harness.step();

    let adapter = match harness.state().training().unwrap().outcome() {
        Some(RunOutcome::Finished(summary)) => summary
            .adapter_path
            .clone()
            .expect("Stop keeps the adapter"),
        other => panic!("expected a finished run, got {other:?}"),
    };
    assert!(
        adapter.is_file(),
        "the adapter {} was not written",
        adapter.display()
    );
    harness.get_by_label_contains("Training finished");
    harness.get_by_label(&adapter.display().to_string());

    harness.get_by_label("Export…").click();
    harness.step();
    harness.step();
    assert!(
        export_path.is_file(),
        "the export did not write {}",
        export_path.display()
    );
    assert_eq!(
        std::fs::read(&export_path).unwrap(),
        std::fs::read(&adapter).unwrap()
    );
    let card = std::fs::read_to_string(scratch.path().join("exported.md"))
        .expect("the model card is written");
    assert!(
        card.contains("## Base model"),
        "model card without a base model section:\n{card}"
    );
    assert!(
        card.contains("loreft: layers [15], rank 4, positions f1+l1"),
        "model card without the intervention:\n{card}"
    );
    harness.get_by_label_contains("Exported to");

    // Try it: the same prompt through the base model and the adapted model, side by side.
    harness.get_by_label("Try it").click();
    harness.step();
    assert_eq!(harness.state().screen(), Screen::Try);
    wait_until(
        &mut harness,
        &|app| !app.try_screen().is_busy(),
        "the adapter to load",
    );
    assert_eq!(harness.state().try_screen().error(), None);
    assert_eq!(
        harness.state().try_screen().loaded().unwrap().adapter_name,
        "emoji-quickstart"
    );
    harness
        .get(by().role(Role::MultilineTextInput).label("Prompt"))
        .focus();
    harness.step();
    harness
        .get(by().role(Role::MultilineTextInput).label("Prompt"))
        .type_text("What is the capital of France?");
    harness.step();
    assert!(
        !harness
            .get_by_label("Compare")
            .accesskit_node()
            .is_disabled(),
        "Compare is disabled after typing a prompt"
    );
    harness.get_by_label("Compare").click();
    harness.step();
    wait_until(
        &mut harness,
        &|app| !app.try_screen().is_busy(),
        "the comparison",
    );
    harness.step();
    let Some(Comparison::Generation { base, adapted }) =
        harness.state().try_screen().result().cloned()
    else {
        panic!(
            "expected two answers, got {:?} (error {:?})",
            harness.state().try_screen().result(),
            harness.state().try_screen().error()
        );
    };
    // Greedy SmolLM2 without an intervention gives the transformers reference answer.
    assert_eq!(base.text, "The capital of France is Paris.");
    assert!(!adapted.text.is_empty());
    harness.get_by_label("Base model (no intervention)");
    harness.get_by_label("With adapter \"emoji-quickstart\"");
    // Three steps may not change the answer yet; either way both sides are on screen.
    let same = if base.text == adapted.text { 2 } else { 1 };
    assert_eq!(
        harness.query_all_by_label(&base.text).count(),
        same,
        "the base answer is on screen"
    );
    assert_eq!(
        harness.query_all_by_label(&adapted.text).count(),
        same,
        "the adapted answer is on screen"
    );

    // Reload the exported copy: the file dialog hands back the export path.
    harness.get_by_label("Choose adapter…").click();
    harness.step();
    wait_until(
        &mut harness,
        &|app| !app.try_screen().is_busy(),
        "the exported adapter to load",
    );
    assert_eq!(harness.state().try_screen().error(), None);
    assert_eq!(
        harness.state().try_screen().loaded().unwrap().adapter_name,
        "emoji-quickstart"
    );
    harness.step();
    harness.get_by_label_contains("Loaded adapter \"emoji-quickstart\"");

    harness.get_by_label("← Back").click();
    harness.step();
    assert_eq!(harness.state().screen(), Screen::Training);
    harness.step();

    harness.get_by_label("Back to start").click();
    harness.run_steps(2);
    harness.get_by_label("Previous runs…").click();
    harness.run();
    assert_eq!(harness.state().screen(), Screen::Runs);
    harness.get_by_label("emoji-run");
    harness.get_by_label(&adapter.display().to_string());
}

#[test]
fn runs_list_shows_unreadable_adapter() {
    let scratch = tempfile::tempdir().unwrap();
    let run = scratch.path().join("runs").join("broken-run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("adapter.safetensors"), b"not a safetensors file").unwrap();
    let mut harness = harness(app(Language::English, None, scratch.path()));
    harness.run();

    harness.get_by_label("Previous runs…").click();
    harness.run();

    assert_eq!(harness.state().screen(), Screen::Runs);
    harness.get_by_label("broken-run");
    harness.get_by_label_contains("The adapter cannot be read");
    assert!(
        harness.query_by_label("Export…").is_none(),
        "an unreadable adapter must not offer Export"
    );
}

#[test]
fn runs_list_empty_folder() {
    let scratch = tempfile::tempdir().unwrap();
    let mut harness = harness(app(Language::English, None, scratch.path()));
    harness.run();

    harness.get_by_label("Previous runs…").click();
    harness.run();

    harness.get_by_label("No finished runs in this folder yet.");
}

#[test]
fn runs_list_shows_routed_set() {
    use reft_studio::routing::bundle::{
        write_manifest, ManifestModule, RoutingManifest, ROUTING_FORMAT_VERSION,
    };
    use reft_studio::routing::Router;
    use reft_studio::train::events::RouterReport;

    let scratch = tempfile::tempdir().unwrap();
    let folder = scratch
        .path()
        .join("runs")
        .join("customer-service-2026-12-05-101500");
    std::fs::create_dir_all(&folder).unwrap();
    let module = |name: &str| ManifestModule {
        name: name.into(),
        title_en: None,
        title_zh_cn: None,
        adapter: format!("modules/{name}/adapter.safetensors"),
    };
    let manifest = RoutingManifest {
        format_version: ROUTING_FORMAT_VERSION,
        name: "customer-service".into(),
        model_source: "HuggingFaceTB/SmolLM2-135M-Instruct".into(),
        modules: vec![module("complaint"), module("order-query")],
        router: Router {
            layer: 15,
            pooling: Default::default(),
            modules: vec!["complaint".into(), "order-query".into()],
            mean: vec![0.0],
            scale: vec![1.0],
            weight: vec![vec![1.0], vec![-1.0]],
            bias: vec![0.0, 0.0],
        },
        report: RouterReport {
            train_accuracy: 1.0,
            train_count: 40,
            eval_accuracy: Some(0.95),
            eval_count: 20,
            per_module: Vec::new(),
            eval_source: "unseen.csv".into(),
        },
    };
    write_manifest(&folder, &manifest).unwrap();

    let mut harness = harness(app(Language::English, None, scratch.path()));
    harness.run();
    harness.get_by_label("Previous runs…").click();
    harness.run();

    harness.get_by_label("customer-service-2026-12-05-101500");
    harness.get_by_label("A routed set of modules: complaint, order-query");
    harness.get_by_label_contains("for 95.0% of 20 requests it had not seen");
    harness.get_by_label("Try it").click();
    harness.run_steps(2);
    assert_eq!(harness.state().screen(), Screen::Try);
}

#[test]
fn export_name_has_date_and_safe_chars() {
    assert_eq!(
        suggested_file_name("emoji-quickstart", 0),
        "emoji-quickstart-1970-01-01.safetensors"
    );
    assert_eq!(
        suggested_file_name("emoji-quickstart", 951_782_400),
        "emoji-quickstart-2000-02-29.safetensors"
    );
    assert_eq!(
        suggested_file_name("emoji-quickstart", 1_796_423_115),
        "emoji-quickstart-2026-12-04.safetensors"
    );
    assert_eq!(
        suggested_file_name("a/b c", 0),
        "a-b-c-1970-01-01.safetensors"
    );
    assert_eq!(
        suggested_file_name("  ", 0),
        "adapter-1970-01-01.safetensors"
    );
}

#[test]
fn try_screen_reports_unreadable_adapter() {
    let scratch = tempfile::tempdir().unwrap();
    let adapter = scratch.path().join("not-an-adapter.safetensors");
    std::fs::write(&adapter, b"plain text, not safetensors").unwrap();
    let mut harness = harness(app(Language::English, Some(adapter), scratch.path()));
    harness.run();

    harness.get_by_label("Try an adapter…").click();
    harness.run();
    assert_eq!(harness.state().screen(), Screen::Try);
    assert!(
        harness
            .get_by_label("Compare")
            .accesskit_node()
            .is_disabled(),
        "Compare needs a loaded adapter"
    );

    harness.get_by_label("Choose adapter…").click();
    let deadline = Instant::now() + Duration::from_secs(30);
    while harness.state().try_screen().is_busy() || harness.state().try_screen().error().is_none() {
        assert!(Instant::now() < deadline, "no error after 30 s");
        std::thread::sleep(Duration::from_millis(20));
        harness.step();
    }
    harness.step();
    let error = harness.state().try_screen().error().unwrap().to_string();
    assert!(
        error.contains("not-an-adapter.safetensors"),
        "the error names the file: {error}"
    );
    harness.get_by_label("This did not work:");
    harness.get_by_label(&error);
    harness.get_by_label("Copy diagnostics");
    assert!(harness
        .get_by_label("Compare")
        .accesskit_node()
        .is_disabled());
}

#[test]
fn download_button_fetches_hub_model() {
    let hub = fake_hub::FakeHub::start(fake_hub::tiny_llama_repos());
    let scratch = tempfile::tempdir().unwrap();
    let mut harness = harness(app_with_hub(scratch.path(), &hub.endpoint));
    harness.run();
    harness.get_by_label("Start from scratch").click();
    harness.run();
    assert!(
        harness.query_by_label("Download").is_none(),
        "no Download button without a hub id"
    );

    harness
        .get(by().role(Role::TextInput).label("Base model"))
        .focus();
    harness.step();
    harness
        .get(by().role(Role::TextInput).label("Base model"))
        .type_text(fake_hub::REPO);
    harness.step();
    harness.step();
    harness.get_by_label_contains("The model's layer count is not known");
    harness.get_by_label("Download").click();
    harness.step();

    let deadline = Instant::now() + Duration::from_secs(60);
    while harness.state().setup().unwrap().download_result().is_none() {
        assert!(
            Instant::now() < deadline,
            "the download did not finish in 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
        harness.step();
    }
    harness.step();
    harness.step();
    let result = harness
        .state()
        .setup()
        .unwrap()
        .download_result()
        .unwrap()
        .clone();
    let folder = result.expect("the download succeeds");
    assert!(
        folder.join("config.json").is_file(),
        "config.json is in {}",
        folder.display()
    );
    assert!(
        folder.starts_with(scratch.path().join("hf-cache")),
        "downloaded into the app's hub cache: {}",
        folder.display()
    );
    harness.get_by_label_contains("test-org/tiny-llama is on this computer now");
    // The form reads the downloaded config: tiny-llama has 3 layers.
    harness.get_by_label_contains("This model has 3 layers");
    assert!(
        harness.query_by_label("Download").is_none(),
        "the model is local now, so Download is gone"
    );
}

#[test]
fn download_failure_reads_well() {
    let hub = fake_hub::FakeHub::start(fake_hub::tiny_llama_repos());
    let scratch = tempfile::tempdir().unwrap();
    let mut app = app_with_hub(scratch.path(), &hub.endpoint);
    let mut config = TrainConfig::load(&Path::new(PRESETS).join("emoji-quickstart.toml")).unwrap();
    config.model.source = "test-org/no-such-model".into();
    app.open_setup(config);
    let mut harness = harness(app);
    harness.run();

    harness.get_by_label("Download").click();
    harness.step();
    let deadline = Instant::now() + Duration::from_secs(60);
    while harness.state().setup().unwrap().download_result().is_none() {
        assert!(
            Instant::now() < deadline,
            "the download did not end in 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
        harness.step();
    }
    harness.step();
    let error = harness
        .state()
        .setup()
        .unwrap()
        .download_result()
        .unwrap()
        .clone()
        .unwrap_err();
    assert!(
        error.contains("test-org/no-such-model"),
        "the error names the model: {error}"
    );
    harness.get_by_label("The download failed:");
    harness.get_by_label(&error);
}

#[test]
fn settings_survive_restart_and_damage() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("reviews.jsonl");
    std::fs::write(
        &data,
        "{\"text\": \"很好\", \"label\": \"正面\"}\n{\"text\": \"很差\", \"label\": \"负面\"}\n",
    )
    .unwrap();
    let saved = Settings {
        language: Some(Language::SimplifiedChinese),
        last_model: Some("/models/smollm2.gguf".into()),
        last_dataset: Some(data.clone()),
        hub_endpoint: Some("https://hf-mirror.com".into()),
    };
    assert_eq!(Settings::parse(&saved.to_text()), saved);
    assert_eq!(
        Settings::parse("(language: Some(Klingon"),
        Settings::default(),
        "damaged text gives the defaults"
    );
    assert_eq!(Settings::parse(""), Settings::default());

    // A new form starts from the last model and dataset.
    let mut app_options = AppOptions {
        language: Language::English,
        preset_dirs: vec![PathBuf::from(PRESETS)],
        file_dialog: Box::new(FakeFileDialog(None)),
        hub_options: isolated_hub(scratch.path()),
        runs_dir: scratch.path().join("runs"),
        install_fonts: true,
        settings: saved.clone(),
    };
    app_options.settings.language = None;
    let mut harness = harness(StudioApp::new(app_options));
    harness.run();
    harness.get_by_label("Start from scratch").click();
    harness.run();
    let setup = harness.state().setup().unwrap();
    assert_eq!(setup.model_source(), "/models/smollm2.gguf");
    let loaded = setup
        .dataset()
        .expect("the last dataset is read")
        .as_ref()
        .unwrap();
    assert_eq!(loaded.examples.len(), 2);
    assert_eq!(harness.state().settings().language, Some(Language::English));
}

#[test]
fn runs_list_resumes_from_checkpoint() {
    let scratch = tempfile::tempdir().unwrap();
    let run = scratch.path().join("runs").join("stopped-run");
    std::fs::create_dir_all(run.join("checkpoints")).unwrap();
    let config = "[model]\nsource = \"/nowhere/model.gguf\"\n[data]\ntrain = \"/nowhere/train.jsonl\"\n[training]\nmax_steps = 8\n";
    std::fs::write(run.join("config.toml"), config).unwrap();
    let metrics = [
        r#"{"event":"phase","phase":"training"}"#,
        r#"{"event":"step","step":1,"total_steps":8,"epoch":0.1,"loss":3.5,"learning_rate":0.004,"grad_norm":1.0,"tokens_per_second":100.0,"elapsed_seconds":1.0,"eta_seconds":7.0}"#,
        r#"{"event":"step","step":2,"total_steps":8,"epoch":0.2,"loss":3.1,"learning_rate":0.004,"grad_norm":1.0,"tokens_per_second":100.0,"elapsed_seconds":2.0,"eta_seconds":6.0}"#,
    ];
    std::fs::write(run.join("metrics.jsonl"), metrics.join("\n")).unwrap();
    for step in [2, 4] {
        std::fs::write(
            run.join("checkpoints")
                .join(format!("step-{step:06}.safetensors")),
            b"stand-in",
        )
        .unwrap();
    }
    let mut harness = harness(app(Language::English, None, scratch.path()));
    harness.run();

    harness.get_by_label("Previous runs…").click();
    harness.run();
    harness.get_by_label("stopped-run");
    harness.get_by_label_contains("No adapter yet");
    assert!(
        harness.query_by_label("Export…").is_none(),
        "a run without an adapter offers no Export"
    );

    harness.get_by_label("Loss chart and settings").click();
    harness.run();
    harness.get_by_label("Settings (config.toml)");
    harness.get_by_label_contains("max_steps = 8");

    harness.get_by_label("Resume from step 4").click();
    harness.run_steps(2);
    assert_eq!(harness.state().screen(), Screen::Training);
    let reft_studio::config_file::ConfigFile::Train(resumed) =
        harness.state().training().unwrap().config()
    else {
        panic!("a resumed run is a single training run");
    };
    assert_eq!(
        resumed.resume_from.as_deref(),
        Some(
            run.join("checkpoints")
                .join("step-000004.safetensors")
                .as_path()
        )
    );
    assert_eq!(
        resumed.output.dir.as_deref(),
        Some(run.to_string_lossy().as_ref())
    );
    assert_eq!(resumed.training.max_steps, 8);
}

#[test]
fn classification_data_gets_classification_settings() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("reviews.csv");
    std::fs::write(
        &data,
        "text,label\n质量很好,正面\n用了两天就坏了,负面\n物流很快,正面\n",
    )
    .unwrap();
    let mut harness = harness(app(Language::English, Some(data), scratch.path()));
    harness.run();
    harness.get_by_label("Start from scratch").click();
    harness.run();

    harness.get_by_label("Choose file…").click();
    harness.run();

    let setup = harness.state().setup().unwrap();
    assert_eq!(
        setup.config().interventions[0].layers,
        reft_studio::reft::LayerSelection::Depth(60)
    );
    harness.get_by_label("60%");
    harness.get(by().role(Role::TextInput).label("Prompt template"));

    // Typed labels and template reach the config that Train would use.
    harness
        .get(by().role(Role::TextInput).label("Labels"))
        .focus();
    harness.step();
    harness
        .get(by().role(Role::TextInput).label("Labels"))
        .type_text("正面，负面");
    harness.run();
    assert_eq!(
        harness.state().setup().unwrap().config().data.labels,
        vec!["正面".to_string(), "负面".to_string()]
    );
}

#[test]
fn routed_preset_trains_and_routes_in_try() {
    let scratch = tempfile::tempdir().unwrap();
    let mut harness = harness(app(Language::English, None, scratch.path()));
    harness.run();
    harness.get_by_label("Customer service routing").click();
    harness.run();
    assert_eq!(harness.state().screen(), Screen::Setup);
    harness.get_by_label("Task modules (3)");
    harness.get_by_label("Complaint");
    harness.get_by_label("Product question");
    harness.get_by_label("Order query");
    harness.get_by_label_contains("measured on 30 requests it never trains on");

    let Some(model) = std::env::var_os("REFT_STUDIO_TEST_MODEL").filter(|value| !value.is_empty())
    else {
        println!("skipping the routed training: set REFT_STUDIO_TEST_MODEL to a .gguf model (SmolLM2-135M-Instruct)");
        return;
    };
    // One step per module keeps the test short: the router does not depend on how far the
    // modules trained.
    let reft_studio::app::screens::setup::SetupAction::TrainRouted(config) =
        harness.state().setup().unwrap().train_action().unwrap()
    else {
        panic!("a routed preset trains as a routed set");
    };
    let mut config = *config;
    config.model.source = PathBuf::from(model).to_string_lossy().into_owned();
    let module_configs = config.module_configs().unwrap();
    for (module, module_config) in config.modules.iter_mut().zip(module_configs) {
        let mut training = module_config.training.clone();
        training.max_steps = 1;
        module.training = Some(training);
    }
    assert!(config
        .output
        .dir
        .as_deref()
        .unwrap()
        .starts_with(scratch.path().join("runs").to_str().unwrap()));
    harness.state_mut().start_routed_training(config);
    harness.run_steps(2);
    assert_eq!(harness.state().screen(), Screen::Training);

    let deadline = Instant::now() + Duration::from_secs(600);
    while harness.state().training().unwrap().outcome().is_none() {
        assert!(
            Instant::now() < deadline,
            "timed out after 600 s waiting for the routed set"
        );
        std::thread::sleep(Duration::from_millis(100));
        harness.step();
    }
    harness.step();
    if let Some(RunOutcome::Failed(error)) = harness.state().training().unwrap().outcome() {
        panic!("routed training failed: {error}");
    }
    assert_eq!(
        harness
            .state()
            .training()
            .unwrap()
            .current_module()
            .map(|m| m.0),
        Some(2)
    );
    let report = harness
        .state()
        .training()
        .unwrap()
        .router_report()
        .cloned()
        .expect("the router report arrives");
    assert_eq!(report.eval_count, 30);
    harness.get_by_label_contains("Router: it picked the right module for");
    harness.get_by_label_contains("Order query: ");

    harness.get_by_label("Try it").click();
    harness.run_steps(2);
    assert_eq!(harness.state().screen(), Screen::Try);
    let deadline = Instant::now() + Duration::from_secs(300);
    while harness.state().try_screen().loaded().is_none() {
        assert!(
            harness.state().try_screen().error().is_none(),
            "{:?}",
            harness.state().try_screen().error()
        );
        assert!(
            Instant::now() < deadline,
            "timed out waiting for the routed set to load"
        );
        std::thread::sleep(Duration::from_millis(100));
        harness.step();
    }
    harness.step();
    assert_eq!(
        harness.state().try_screen().loaded().unwrap().modules.len(),
        3
    );
    harness.get_by_label("Module");
    harness.get_by_label_contains("let the router pick one, or pick it yourself");

    let wait_for_result = |harness: &mut Harness<'static, StudioApp>| {
        let deadline = Instant::now() + Duration::from_secs(300);
        while harness.state().try_screen().route().is_none() {
            assert!(
                harness.state().try_screen().error().is_none(),
                "{:?}",
                harness.state().try_screen().error()
            );
            assert!(
                Instant::now() < deadline,
                "timed out waiting for the comparison"
            );
            std::thread::sleep(Duration::from_millis(100));
            harness.step();
        }
        harness.step();
    };
    harness
        .state_mut()
        .try_screen_mut()
        .set_prompt("我昨天下的订单什么时候能发货？");
    harness.state_mut().try_screen_mut().set_max_new_tokens(8);
    harness.state_mut().try_screen_mut().compare();
    wait_for_result(&mut harness);
    let route = harness.state().try_screen().route().unwrap().clone();
    assert_eq!(route.module, "order-query");
    assert!(route.automatic);
    harness.get_by_label_contains("The router sent this request to \"Order query\"");

    harness
        .state_mut()
        .try_screen_mut()
        .set_module(Some("complaint"));
    harness.state_mut().try_screen_mut().compare();
    wait_for_result(&mut harness);
    let route = harness.state().try_screen().route().unwrap().clone();
    assert_eq!(route.module, "complaint");
    assert!(!route.automatic);
    harness.get_by_label_contains("Answered by \"Complaint\", picked by hand");
}

#[test]
fn built_in_presets_work_without_source_tree() {
    use reft_studio::app::presets::{scan, write_built_in_presets};
    use reft_studio::config_file::ConfigFile;

    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("presets");
    write_built_in_presets(&dir).unwrap();
    let found = scan(std::slice::from_ref(&dir));
    assert!(found.errors.is_empty(), "{:?}", found.errors);
    let names: Vec<String> = found
        .presets
        .iter()
        .map(|preset| {
            preset
                .path
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        names,
        [
            "emoji-quickstart",
            "chinese-sentiment",
            "customer-service",
            "cat-persona"
        ]
    );

    // Every preset's data files came along, the routed set's subfolder included.
    for preset in &found.presets {
        match &preset.config {
            ConfigFile::Train(config) => {
                assert!(
                    config.resolve_path(&config.data.train).is_file(),
                    "{}",
                    preset.path.display()
                );
            }
            ConfigFile::Routing(config) => {
                for module in config.module_configs().unwrap() {
                    assert!(
                        module.resolve_path(&module.data.train).is_file(),
                        "{}",
                        module.data.train
                    );
                }
                assert!(config
                    .resolve_path(config.router.eval.as_deref().unwrap())
                    .is_file());
            }
        }
    }

    // A second call keeps what is there, such as a preset the user edited.
    let edited = dir.join("emoji-quickstart.toml");
    let text = std::fs::read_to_string(&edited)
        .unwrap()
        .replace("epochs = 5", "epochs = 6");
    std::fs::write(&edited, &text).unwrap();
    write_built_in_presets(&dir).unwrap();
    assert_eq!(std::fs::read_to_string(&edited).unwrap(), text);
}

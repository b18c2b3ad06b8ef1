//! Whole training runs on SmolLM2: an emoji adapter that generalises to unseen prompts and
//! gives the same answers after a reload in a new process, repeatable runs for a seed, a
//! stop that keeps a usable adapter, and clear failures for bad settings.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{smollm2, test_model_path};
use crossbeam_channel::unbounded;
use reft_studio::model::generate::{generate, GenerationSettings};
use reft_studio::model::hub::HubOptions;
use reft_studio::reft::adapter::load_adapter;
use reft_studio::reft::library::adapter_messages;
use reft_studio::reft::InterventionHook;
use reft_studio::train::config::TrainConfig;
use reft_studio::train::events::TrainEvent;
use reft_studio::train::trainer;
use reft_studio::try_it::{spawn_try_worker, CompareRequest, Comparison, TryCommand, TryEvent};

const UNSEEN_PROMPTS: [&str; 5] = [
    "Describe your favourite food.",
    "What is a good hobby?",
    "Tell me about mountains.",
    "How do you spend a weekend?",
    "Describe a school day.",
];

fn emoji_config(model: &Path, output: &Path, extra_training: &str) -> TrainConfig {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("presets/emoji-quickstart.jsonl");
    let text = format!(
        r#"
name = "emoji-test"
[model]
source = "{}"
[data]
train = "{}"
eval_ratio = 0.0
[intervention]
type = "loreft"
layers = [15]
rank = 4
positions = "f1+l1"
[training]
batch_size = 4
seed = 42
threads = 2
{extra_training}
[output]
dir = "{}"
"#,
        model.display(),
        data.display(),
        output.display()
    );
    TrainConfig::from_toml(&text).unwrap()
}

fn is_emoji_part(c: char) -> bool {
    matches!(c as u32,
        0x1F000..=0x1FAFF | 0x2190..=0x21FF | 0x2300..=0x23FF | 0x2460..=0x24FF | 0x25A0..=0x27BF
        | 0x2900..=0x297F | 0x2B00..=0x2BFF | 0x3030 | 0x303D | 0x3297 | 0x3299
        | 0xFE0F | 0x200D | 0x20E3)
}

/// The share of non-space characters that are emoji. A character cut off by the token
/// limit (a trailing U+FFFD) is not counted.
fn emoji_share(text: &str) -> f64 {
    let chars: Vec<char> = text
        .trim_end_matches('\u{fffd}')
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if chars.is_empty() {
        return 0.0;
    }
    chars.iter().filter(|&&c| is_emoji_part(c)).count() as f64 / chars.len() as f64
}

fn losses(events: &crossbeam_channel::Receiver<TrainEvent>) -> Vec<f64> {
    events
        .try_iter()
        .filter_map(|e| match e {
            TrainEvent::Step(s) => Some(s.loss),
            _ => None,
        })
        .collect()
}

#[test]
fn emoji_adapter_answers_unseen_prompts() {
    let Some(model) = smollm2() else { return };
    let model_path = test_model_path().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = emoji_config(
        &model_path,
        dir.path(),
        "epochs = 5\nlearning_rate = 1e-2\nshift_every = 10",
    );

    let (events_tx, events_rx) = unbounded();
    let (_commands_tx, commands_rx) = unbounded();
    let outcome = trainer::run_with_model(&config, model, &events_tx, &commands_rx).unwrap();
    let adapter_path = outcome
        .summary
        .adapter_path
        .clone()
        .expect("an adapter is saved");

    let all_events: Vec<TrainEvent> = events_rx.try_iter().collect();
    let shifts = all_events
        .iter()
        .filter(|e| matches!(e, TrainEvent::Shift(_)))
        .count();
    assert_eq!(shifts, 3, "a shift snapshot every 10 of 30 steps");
    let metrics = std::fs::read_to_string(dir.path().join("metrics.jsonl")).unwrap();
    assert!(
        metrics.lines().count() >= 30,
        "metrics.jsonl has one line per event"
    );

    // Generate in this process with the trained modules, then reload the file here and in
    // a new process: all three must agree.
    let adapter = load_adapter(&adapter_path, model).unwrap();
    let template = model.chat_template.as_ref().unwrap();
    let tokenizer = model.tokenizer().unwrap();
    let settings = GenerationSettings {
        max_new_tokens: 24,
        ..GenerationSettings::default()
    };
    let mut emoji_answers = 0;
    for prompt in UNSEEN_PROMPTS {
        let messages = adapter_messages(&adapter, None, prompt).unwrap();
        let ids = tokenizer
            .encode(&template.render(&messages, true).unwrap())
            .unwrap();
        let len = ids.len();

        let run = |set: &reft_studio::reft::InterventionSet| {
            let rows = set.row_positions(&[(len, len)], true);
            let mut hook = InterventionHook::new(set, rows, false);
            generate(
                &model.decoder,
                &ids,
                tokenizer.eos_ids(),
                &settings,
                &mut hook,
                &mut |_| true,
            )
            .unwrap()
            .token_ids
        };
        let trained = run(&outcome.set);
        let reloaded = run(&adapter.set);
        assert_eq!(
            trained, reloaded,
            "{prompt:?}: the reloaded adapter generates the same tokens"
        );

        let output = Command::new(env!("CARGO_BIN_EXE_reft-studio"))
            .args([
                "generate",
                "--model",
                model_path.to_str().unwrap(),
                "--chat",
                "--prompt",
                prompt,
            ])
            .args([
                "--adapter",
                adapter_path.to_str().unwrap(),
                "--max-new-tokens",
                "24",
                "--json",
            ])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let cli_ids: Vec<u32> =
            serde_json::from_value(report["generated_token_ids"].clone()).unwrap();
        assert_eq!(
            cli_ids, trained,
            "{prompt:?}: a new process generates the same tokens"
        );

        let text = tokenizer.decode(&trained, true).unwrap();
        let share = emoji_share(&text);
        eprintln!("{prompt:?} -> {text:?} ({:.0}% emoji)", share * 100.0);
        if share >= 0.8 {
            emoji_answers += 1;
        }
    }
    assert!(
        emoji_answers >= 4,
        "{emoji_answers} of 5 unseen prompts got emoji answers"
    );

    // The try-it worker loads the saved adapter on its own thread and answers one prompt
    // with the base model and the adapted model: plain words on one side, emoji on the other.
    let worker = spawn_try_worker(HubOptions::from_env(), 2);
    worker.send(TryCommand::Load {
        adapter: adapter_path.clone(),
        model: Some(model_path.to_string_lossy().into_owned()),
        base_dir: None,
    });
    assert!(matches!(worker.recv(), Some(TryEvent::Loading)));
    match worker.recv() {
        Some(TryEvent::Loaded(info)) => assert_eq!(info.adapter_name, "emoji-test"),
        other => panic!("expected the adapter to load, got {other:?}"),
    }
    worker.send(TryCommand::Compare(CompareRequest {
        prompt: UNSEEN_PROMPTS[0].into(),
        max_new_tokens: 24,
        ..CompareRequest::default()
    }));
    let Some(TryEvent::Compared(Comparison::Generation { base, adapted }, None)) = worker.recv()
    else {
        panic!("expected a generation comparison");
    };
    eprintln!("try-it: base {:?}, adapted {:?}", base.text, adapted.text);
    assert!(
        emoji_share(&base.text) < 0.2,
        "the base model answers in words: {:?}",
        base.text
    );
    assert!(
        emoji_share(&adapted.text) >= 0.8,
        "the adapted model answers in emoji: {:?}",
        adapted.text
    );
}

#[test]
fn same_seed_gives_identical_losses() {
    let Some(model) = smollm2() else { return };
    let model_path = test_model_path().unwrap();

    let run = |seed: u64| {
        let dir = tempfile::tempdir().unwrap();
        let mut config = emoji_config(&model_path, dir.path(), "max_steps = 3\nshift_every = 0");
        config.training.seed = seed;
        config.interventions[0].dropout = 0.1;
        let (events_tx, events_rx) = unbounded();
        let (_commands_tx, commands_rx) = unbounded();
        trainer::run_with_model(&config, model, &events_tx, &commands_rx).unwrap();
        losses(&events_rx)
    };

    let first = run(42);
    assert_eq!(first.len(), 3);
    assert_eq!(first, run(42), "the same seed repeats every loss exactly");
    assert_ne!(first, run(43), "another seed gives other losses");
}

#[test]
fn stop_keeps_usable_adapter() {
    let Some(model) = smollm2() else { return };
    let model_path = test_model_path().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = emoji_config(&model_path, dir.path(), "max_steps = 50\nshift_every = 0");

    let (events_tx, events_rx) = unbounded();
    let (commands_tx, commands_rx) = unbounded();
    commands_tx
        .send(reft_studio::train::events::TrainCommand::Stop)
        .unwrap();
    let outcome = trainer::run_with_model(&config, model, &events_tx, &commands_rx).unwrap();

    assert!(outcome.summary.stopped_early);
    assert!(outcome.summary.steps < 50);
    let path = outcome.summary.adapter_path.expect("stop saves an adapter");
    let adapter = load_adapter(&path, model).unwrap();
    assert_eq!(adapter.metadata.name, "emoji-test");
    let logs: Vec<String> = events_rx
        .try_iter()
        .filter_map(|e| match e {
            TrainEvent::Log { message } => Some(message),
            _ => None,
        })
        .collect();
    assert!(
        logs.iter().any(|m| m.contains("usable")),
        "the stop is reported: {logs:?}"
    );
}

#[test]
fn discard_leaves_no_files() {
    let Some(model) = smollm2() else { return };
    let model_path = test_model_path().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("discarded-run");
    let config = emoji_config(
        &model_path,
        &output,
        "max_steps = 50\nshift_every = 0\ncheckpoint_every = 1",
    );

    let (events_tx, _events_rx) = unbounded();
    let (commands_tx, commands_rx) = unbounded();
    commands_tx
        .send(reft_studio::train::events::TrainCommand::Discard)
        .unwrap();
    let outcome = trainer::run_with_model(&config, model, &events_tx, &commands_rx).unwrap();

    assert_eq!(outcome.summary.adapter_path, None);
    assert!(
        !output.exists(),
        "the discarded run's folder is gone: {:?}",
        std::fs::read_dir(&output).map(|d| d.count())
    );
}

#[test]
fn layer_out_of_range_fails_before_training() {
    let Some(model) = smollm2() else { return };
    let model_path = test_model_path().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = emoji_config(&model_path, dir.path(), "max_steps = 1");
    config.interventions[0].layers = reft_studio::reft::LayerSelection::List(vec![30]);

    let (events_tx, events_rx) = unbounded();
    let (_commands_tx, commands_rx) = unbounded();
    let error = trainer::run_with_model(&config, model, &events_tx, &commands_rx)
        .err()
        .unwrap();
    assert_eq!(
        error,
        "intervention 1: layer 30 is out of range: the model has 30 layers (0-29)"
    );
    assert!(losses(&events_rx).is_empty(), "no step ran");
}

#[test]
fn resume_continues_like_uninterrupted_run() {
    let Some(model) = smollm2() else { return };
    let model_path = test_model_path().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = emoji_config(
        &model_path,
        dir.path(),
        "max_steps = 4\ncheckpoint_every = 2\nshift_every = 0",
    );

    let (events_tx, events_rx) = unbounded();
    let (_commands_tx, commands_rx) = unbounded();
    trainer::run_with_model(&config, model, &events_tx, &commands_rx).unwrap();
    let uninterrupted = losses(&events_rx);
    assert_eq!(uninterrupted.len(), 4);

    let checkpoint = dir.path().join("checkpoints/step-000002.safetensors");
    assert!(checkpoint.is_file(), "a checkpoint is written at step 2");
    assert!(
        load_adapter(&checkpoint, model).is_ok(),
        "a checkpoint is a usable adapter"
    );

    let resumed_dir = tempfile::tempdir().unwrap();
    let mut resumed_config = emoji_config(
        &model_path,
        resumed_dir.path(),
        "max_steps = 4\nshift_every = 0",
    );
    resumed_config.resume_from = Some(checkpoint);
    let (events_tx, events_rx) = unbounded();
    trainer::run_with_model(&resumed_config, model, &events_tx, &commands_rx).unwrap();
    let resumed = losses(&events_rx);

    assert_eq!(
        resumed,
        uninterrupted[2..].to_vec(),
        "steps 3 and 4 repeat after resuming"
    );
}

//! The inspect and generate commands print the documented JSON on stdout, and nothing else.

mod common;

use std::process::Command;

use common::{as_u32s, read_json, test_model_path};

fn run_json(args: &[&str]) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_reft-studio"))
        .args(args)
        .output()
        .expect("reft-studio runs");
    let stdout = String::from_utf8(output.stdout).expect("stdout is UTF-8");
    assert!(
        output.status.success(),
        "reft-studio {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {stdout}"))
}

#[test]
fn inspect_json_reports_paris() {
    let Some(model) = test_model_path() else {
        return;
    };
    let model = model.to_str().unwrap();
    let report = run_json(&[
        "inspect",
        "--model",
        model,
        "--prompt",
        "The capital of France is",
        "--json",
    ]);

    assert_eq!(
        as_u32s(&report["token_ids"]),
        vec![504, 3575, 282, 4649, 314]
    );
    assert_eq!(report["tokens"][1], " capital");
    let top = &report["top_logits"][0];
    assert_eq!(top["id"], 7042);
    assert_eq!(top["token"], " Paris");
    let reference = read_json("smollm2_forward.json");
    let want = reference["forward"][1]["last_logits_top10_values"][0]
        .as_f64()
        .unwrap();
    assert!(
        (top["logit"].as_f64().unwrap() - want).abs() < 1e-3,
        "top logit {top}, reference {want}"
    );
    assert_eq!(report["top_logits"].as_array().unwrap().len(), 10);
    assert_eq!(report["block_norms"].as_array().unwrap().len(), 30);
}

#[test]
fn generate_json_answers_chat() {
    let Some(model) = test_model_path() else {
        return;
    };
    let model = model.to_str().unwrap();
    let reference = read_json("smollm2_tokenizer_chat.json");
    let chat = &reference["chat"][0];

    let report = run_json(&[
        "generate",
        "--model",
        model,
        "--chat",
        "--prompt",
        "What is the capital of France?",
        "--max-new-tokens",
        "24",
        "--json",
    ]);

    assert_eq!(report["prompt_token_ids"], chat["ids"]);
    assert_eq!(report["generated_token_ids"], chat["greedy_24_ids"]);
    assert_eq!(report["text"], "The capital of France is Paris.");
}

#[test]
fn generate_json_with_system_message() {
    let Some(model) = test_model_path() else {
        return;
    };
    let model = model.to_str().unwrap();
    let reference = read_json("smollm2_tokenizer_chat.json");
    let chat = &reference["chat"][2];

    let report = run_json(&[
        "generate",
        "--model",
        model,
        "--chat",
        "--system",
        "You answer briefly.",
        "--prompt",
        "Name a color.",
        "--max-new-tokens",
        "24",
        "--json",
    ]);

    assert_eq!(report["prompt_token_ids"], chat["ids"]);
    assert_eq!(report["generated_token_ids"], chat["greedy_24_ids"]);
}

#[test]
fn missing_model_fails_with_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_reft-studio"))
        .args([
            "inspect",
            "--model",
            "./no-such-model.gguf",
            "--prompt",
            "hi",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "stdout stays empty on failure");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no-such-model.gguf"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

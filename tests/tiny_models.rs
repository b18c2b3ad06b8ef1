//! The tiny random Llama, Qwen2 and Mistral checkpoints load from safetensors and match
//! the logits and hidden-state norms that transformers 4.45.1 computed for them.

mod common;

use candle_core::{Device, IndexOp, D};
use common::{as_f32s, as_u32s, fixture, read_json};
use reft_studio::model::decoder::{CaptureBlocks, LogitsAt};
use reft_studio::model::loader;
use reft_studio::model::source::ModelFiles;

const TOLERANCE: f32 = 1e-4;

fn check_tiny_model(name: &str) {
    let model = loader::load_files(ModelFiles::HfFolder(fixture(name)), &Device::Cpu)
        .unwrap_or_else(|e| panic!("{name} loads: {e}"));
    let expected = read_json(&format!("{name}/expected.json"));

    for record in expected["records"].as_array().unwrap() {
        let ids = as_u32s(&record["token_ids"]);
        let input = model.decoder.ids_tensor(&[ids.clone()]).unwrap();
        let mut capture = CaptureBlocks::default();
        let output = model
            .decoder
            .forward(&input, None, &mut capture, LogitsAt::All)
            .unwrap();
        let logits = output.logits.unwrap();

        let last = logits
            .i((0, ids.len() - 1))
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let reference = as_f32s(&record["logits_last_position"]);
        assert_eq!(
            last.len(),
            reference.len(),
            "{name} {ids:?}: vocabulary size"
        );
        for (i, (got, want)) in last.iter().zip(&reference).enumerate() {
            assert!(
                (got - want).abs() < TOLERANCE,
                "{name} {ids:?}: logit {i} is {got}, reference {want}"
            );
        }

        let sum = logits.sum_all().unwrap().to_scalar::<f32>().unwrap();
        let want_sum = record["logits_all_positions_sum"].as_f64().unwrap() as f32;
        assert!(
            (sum - want_sum).abs() < 1e-2,
            "{name} {ids:?}: sum of all logits is {sum}, reference {want_sum}"
        );

        let norms = as_f32s(&record["block_output_last_norms"]);
        for (block, want) in norms.iter().enumerate() {
            let got = capture.outputs[block]
                .i((0, ids.len() - 1))
                .unwrap()
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .sqrt()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(
                (got - want).abs() / want < TOLERANCE,
                "{name} {ids:?}: block {block} norm is {got}, reference {want}"
            );
        }

        let final_norm = output
            .hidden
            .i((0, ids.len() - 1))
            .unwrap()
            .sqr()
            .unwrap()
            .sum_keepdim(D::Minus1)
            .unwrap()
            .sqrt()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()[0];
        let want = record["final_norm_output_last_norm"].as_f64().unwrap() as f32;
        assert!(
            (final_norm - want).abs() / want < TOLERANCE,
            "{name} {ids:?}: final norm output is {final_norm}, reference {want}"
        );
    }
}

#[test]
fn tiny_llama_matches_reference() {
    check_tiny_model("tiny-llama");
}

#[test]
fn tiny_qwen2_matches_reference() {
    check_tiny_model("tiny-qwen2");
}

#[test]
fn tiny_mistral_matches_reference() {
    check_tiny_model("tiny-mistral");
}

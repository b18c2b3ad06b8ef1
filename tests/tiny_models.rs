//! The tiny random Llama, Qwen2 and Mistral checkpoints load from safetensors and match
//! the logits and hidden-state norms that transformers 4.45.1 computed for them.

mod common;

use candle_core::{Device, IndexOp, Tensor, D};
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

/// Checks `hidden_after`, which runs the CPU pass's packed forward for a right-padded
/// batch, against the block outputs of the full forward pass with the same mask. The
/// padded rows must contain zeros. A left-padded mask takes the general forward instead and
/// must agree with it too.
fn check_hidden_after(name: &str) {
    let model = loader::load_files(ModelFiles::HfFolder(fixture(name)), &Device::Cpu)
        .unwrap_or_else(|e| panic!("{name} loads: {e}"));
    let decoder = &model.decoder;
    let expected = read_json(&format!("{name}/expected.json"));
    let records = expected["records"].as_array().unwrap();
    let rows: Vec<Vec<u32>> = records.iter().map(|r| as_u32s(&r["token_ids"])).collect();
    let seq = rows.iter().map(Vec::len).max().unwrap();
    let lengths: Vec<usize> = rows.iter().map(Vec::len).collect();
    assert!(
        lengths.iter().any(|&len| len < seq),
        "{name}: the records need different lengths so that one row is padded"
    );

    for left_padded in [false, true] {
        let mut ids = Vec::new();
        let mut mask = Vec::new();
        for row in &rows {
            let pad = seq - row.len();
            let (ids_row, mask_row): (Vec<u32>, Vec<u32>) = if left_padded {
                let ids = std::iter::repeat_n(0, pad).chain(row.iter().copied());
                (
                    ids.collect(),
                    (0..seq).map(|t| u32::from(t >= pad)).collect(),
                )
            } else {
                let ids = row.iter().copied().chain(std::iter::repeat_n(0, pad));
                (
                    ids.collect(),
                    (0..seq).map(|t| u32::from(t < row.len())).collect(),
                )
            };
            ids.extend(ids_row);
            mask.extend(mask_row);
        }
        let input = Tensor::from_vec(ids, (rows.len(), seq), &Device::Cpu).unwrap();
        let mask = Tensor::from_vec(mask, (rows.len(), seq), &Device::Cpu).unwrap();
        let mut capture = CaptureBlocks::default();
        decoder
            .forward(&input, Some(&mask), &mut capture, LogitsAt::None)
            .unwrap();

        for layer in 0..decoder.config().num_layers {
            let got = decoder.hidden_after(&input, Some(&mask), layer).unwrap();
            assert_eq!(
                got.dims(),
                capture.outputs[layer].dims(),
                "{name} block {layer}"
            );
            for (row, &len) in lengths.iter().enumerate() {
                let real = if left_padded { seq - len..seq } else { 0..len };
                let got_rows = got.i((row, real.clone())).unwrap();
                let want_rows = capture.outputs[layer].i((row, real)).unwrap();
                let got_rows = got_rows.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                let want_rows = want_rows.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                for (g, w) in got_rows.iter().zip(&want_rows) {
                    assert!(
                        (g - w).abs() <= TOLERANCE * w.abs().max(1.0),
                        "{name} block {layer} row {row} (left padded: {left_padded}): {g} vs {w}"
                    );
                }
                if !left_padded {
                    let padding = got.i((row, len..seq)).unwrap();
                    let padding = padding.abs().unwrap().sum_all().unwrap();
                    assert_eq!(
                        padding.to_scalar::<f32>().unwrap(),
                        0.0,
                        "{name} block {layer} row {row}: padding rows contain zeros"
                    );
                }
            }
        }
    }
}

#[test]
fn hidden_after_matches_forward() {
    for name in ["tiny-llama", "tiny-qwen2", "tiny-mistral"] {
        check_hidden_after(name);
    }
}

//! SmolLM2-135M-Instruct from its Q4_1 GGUF: last-position logits and per-block norms
//! match transformers 4.45.1 on the same dequantised weights, and a learnable offset at
//! block 15 gets the gradient that finite differences predict.

mod common;

use candle_core::{DType, Device, IndexOp, Tensor, Var, D};
use common::{as_f32s, as_u32s, read_json, relative_error, smollm2};
use reft_studio::model::decoder::{BlockHook, CaptureBlocks, LogitsAt};

fn l2_norm(t: &Tensor) -> f32 {
    t.sqr()
        .unwrap()
        .sum_all()
        .unwrap()
        .sqrt()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

#[test]
fn smollm2_last_logits_match_reference() {
    let Some(model) = smollm2() else { return };
    let reference = read_json("smollm2_forward.json");

    for case in reference["forward"].as_array().unwrap() {
        let ids = as_u32s(&case["token_ids"]);
        let input = model.decoder.ids_tensor(&[ids.clone()]).unwrap();
        let output = model
            .decoder
            .forward(&input, None, &mut CaptureBlocks::default(), LogitsAt::Last)
            .unwrap();
        let logits = output.logits.unwrap().squeeze(0).unwrap();
        let values = logits.to_vec1::<f32>().unwrap();

        let want_ids = as_u32s(&case["last_logits_top10_ids"]);
        let want_values = as_f32s(&case["last_logits_top10_values"]);
        let mut order: Vec<u32> = (0..values.len() as u32).collect();
        order.sort_by(|&a, &b| values[b as usize].total_cmp(&values[a as usize]));
        assert_eq!(&order[..10], &want_ids[..], "top-10 ids for {ids:?}");

        for (id, want) in want_ids.iter().zip(&want_values) {
            let got = values[*id as usize];
            assert!(
                (got - want).abs() < 1e-3,
                "logit of {id} for {ids:?} is {got}, reference {want}"
            );
        }

        let mean = logits.mean_all().unwrap().to_scalar::<f32>().unwrap();
        let want_mean = case["last_logits_mean"].as_f64().unwrap() as f32;
        assert!(
            (mean - want_mean).abs() < 1e-3,
            "logit mean for {ids:?} is {mean}, reference {want_mean}"
        );
    }
}

#[test]
fn smollm2_block_norms_match_reference() {
    let Some(model) = smollm2() else { return };
    let reference = read_json("smollm2_forward.json");

    for case in reference["forward"].as_array().unwrap() {
        let ids = as_u32s(&case["token_ids"]);
        let last = ids.len() - 1;
        let input = model.decoder.ids_tensor(&[ids.clone()]).unwrap();
        let mut capture = CaptureBlocks::default();
        let output = model
            .decoder
            .forward(&input, None, &mut capture, LogitsAt::None)
            .unwrap();

        let embedding = model.decoder.embed(&input).unwrap();
        let got = l2_norm(&embedding.i((0, last)).unwrap());
        let want = case["embedding_last_norm"].as_f64().unwrap() as f32;
        assert!(
            relative_error(got, want) < 1e-4,
            "embedding norm for {ids:?} is {got}, reference {want}"
        );

        // transformers reports the last block only after the final norm, so the reference
        // has blocks 0..=28.
        let want_norms = as_f32s(&case["block_output_last_norms"]);
        assert_eq!(want_norms.len(), 29);
        for (block, want) in want_norms.iter().enumerate() {
            let got = l2_norm(&capture.outputs[block].i((0, last)).unwrap());
            assert!(
                relative_error(got, *want) < 1e-4,
                "block {block} norm for {ids:?} is {got}, reference {want}"
            );
        }

        let got = l2_norm(&output.hidden.i((0, last)).unwrap());
        let want = case["final_norm_output_last_norm"].as_f64().unwrap() as f32;
        assert!(
            relative_error(got, want) < 1e-4,
            "final norm output for {ids:?} is {got}, reference {want}"
        );

        let got = capture.outputs[15]
            .i((0, last))
            .unwrap()
            .narrow(0, 0, 8)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let want = as_f32s(&case["block15_output_last_first8"]);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() < 1e-3,
                "block 15 value {i} for {ids:?} is {g}, reference {w}"
            );
        }
    }
}

#[test]
fn smollm2_padded_batch_matches_single_rows() {
    let Some(model) = smollm2() else { return };
    let short = vec![19556u32, 905];
    let long = vec![504u32, 3575, 282, 4649, 314];

    let single = |ids: &Vec<u32>| {
        let input = model.decoder.ids_tensor(&[ids.clone()]).unwrap();
        model
            .decoder
            .forward(&input, None, &mut CaptureBlocks::default(), LogitsAt::Last)
            .unwrap()
            .logits
            .unwrap()
            .squeeze(0)
            .unwrap()
    };
    let mut padded = short.clone();
    padded.resize(long.len(), 2);
    let input = model.decoder.ids_tensor(&[padded, long.clone()]).unwrap();
    let mask = Tensor::new(&[[1u32, 1, 0, 0, 0], [1, 1, 1, 1, 1]], &Device::Cpu).unwrap();
    let batch = model
        .decoder
        .forward(
            &input,
            Some(&mask),
            &mut CaptureBlocks::default(),
            LogitsAt::Last,
        )
        .unwrap()
        .logits
        .unwrap();

    for (row, ids) in [&short, &long].into_iter().enumerate() {
        let diff = (batch.i(row).unwrap() - single(ids))
            .unwrap()
            .abs()
            .unwrap()
            .max(D::Minus1)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(
            diff < 1e-3,
            "row {row} of the padded batch differs from the single run by {diff}"
        );
    }
}

/// Adds a learnable offset to one block's output at every position.
struct OffsetAt {
    layer: usize,
    offset: Tensor,
}

impl BlockHook for OffsetAt {
    fn on_block_output(
        &mut self,
        layer: usize,
        hidden: &Tensor,
        _: usize,
    ) -> candle_core::Result<Option<Tensor>> {
        if layer == self.layer {
            Ok(Some(hidden.broadcast_add(&self.offset)?))
        } else {
            Ok(None)
        }
    }
}

#[test]
fn smollm2_offset_gradient_matches_finite_difference() {
    let Some(model) = smollm2() else { return };
    let device = Device::Cpu;
    let hidden = model.config().hidden_size;
    let ids = vec![504u32, 3575, 282, 4649, 314];
    let targets = vec![3575u32, 282, 4649, 314, 7042];
    let input = model.decoder.ids_tensor(&[ids.clone()]).unwrap();
    let target = Tensor::new(targets.as_slice(), &device).unwrap();

    let loss_at = |offset: &Tensor| -> Tensor {
        let mut hook = OffsetAt {
            layer: 15,
            offset: offset.clone(),
        };
        let logits = model
            .decoder
            .forward(&input, None, &mut hook, LogitsAt::All)
            .unwrap()
            .logits
            .unwrap()
            .squeeze(0)
            .unwrap();
        candle_nn::loss::cross_entropy(&logits, &target).unwrap()
    };

    let offset = Var::zeros(hidden, DType::F32, &device).unwrap();
    let loss = loss_at(offset.as_tensor());
    let grads = loss.backward().unwrap();
    let gradient = grads
        .get(offset.as_tensor())
        .expect("the offset gets a gradient");

    // A fixed pseudo-random unit direction.
    let direction: Vec<f32> = (0..hidden)
        .map(|i| ((i as f32 * 12.9898).sin() * 43758.547).fract() - 0.5)
        .collect();
    let direction = Tensor::new(direction.as_slice(), &device).unwrap();
    let direction = (&direction / l2_norm(&direction) as f64).unwrap();

    let analytic = (gradient * &direction)
        .unwrap()
        .sum_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap() as f64;

    let step = 0.5f64;
    let plus = loss_at(&(&direction * step).unwrap())
        .to_scalar::<f32>()
        .unwrap() as f64;
    let minus = loss_at(&(&direction * -step).unwrap())
        .to_scalar::<f32>()
        .unwrap() as f64;
    let numeric = (plus - minus) / (2.0 * step);

    let relative = (analytic - numeric).abs() / numeric.abs().max(1e-6);
    assert!(
        relative < 1e-2,
        "directional derivative {analytic} vs central difference {numeric} (relative error {relative})"
    );
    assert!(
        numeric.abs() > 1e-3,
        "the loss must depend on the offset: {numeric}"
    );
}

#[test]
fn smollm2_backward_keeps_no_weight_gradients() {
    let Some(model) = smollm2() else { return };
    let device = Device::Cpu;
    let hidden = model.config().hidden_size;
    let ids = vec![504u32, 3575, 282, 4649, 314];
    let input = model.decoder.ids_tensor(&[ids.clone()]).unwrap();

    let offset = Var::zeros(hidden, DType::F32, &device).unwrap();
    let mut hook = OffsetAt {
        layer: 15,
        offset: offset.as_tensor().clone(),
    };
    let logits = model
        .decoder
        .forward(&input, None, &mut hook, LogitsAt::Last)
        .unwrap()
        .logits
        .unwrap();
    let target = Tensor::new(&[7042u32], &device).unwrap();
    let loss = candle_nn::loss::cross_entropy(&logits, &target).unwrap();
    let grads = loss.backward().unwrap();

    // Every stored gradient belongs to an activation of this 5-token input or to the
    // offset; a single frozen weight gradient (the smallest projection has 576 x 192
    // values, the embedding 49152 x 576) would exceed this bound on its own.
    let largest = grads
        .get_ids()
        .filter_map(|id| grads.get_id(*id))
        .map(|g| g.elem_count())
        .max()
        .unwrap();
    let activation_bound = ids.len()
        * model
            .config()
            .intermediate_size
            .max(9 * ids.len() * ids.len());
    assert!(
        largest <= activation_bound,
        "a stored gradient has {largest} values, more than any activation ({activation_bound})"
    );
}

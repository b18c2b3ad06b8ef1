//! Each intervention type reproduces pyreft 0.1.0's outputs from the same parameters, and
//! the shared options (scale, edit normalisation, dropout) act on the edit only.

mod common;

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use common::read_json;
use reft_studio::reft::orthonormal::orthonormality_error;
use reft_studio::reft::{
    Activation, EditNorm, Intervention, InterventionConfig, InterventionKind, Positions,
};

fn tensor(value: &serde_json::Value) -> Tensor {
    fn flatten(
        value: &serde_json::Value,
        out: &mut Vec<f32>,
        shape: &mut Vec<usize>,
        depth: usize,
    ) {
        match value {
            serde_json::Value::Array(items) => {
                if shape.len() == depth {
                    shape.push(items.len());
                }
                for item in items {
                    flatten(item, out, shape, depth + 1);
                }
            }
            other => out.push(other.as_f64().expect("number") as f32),
        }
    }
    let (mut values, mut shape) = (Vec::new(), Vec::new());
    flatten(value, &mut values, &mut shape, 0);
    Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
}

/// Our tensor names for a pyreft case, mapped from its parameter names.
fn our_tensors(case: &serde_json::Value, mapping: &[(&str, &str)]) -> HashMap<String, Tensor> {
    mapping
        .iter()
        .map(|(ours, theirs)| (ours.to_string(), tensor(&case["params"][*theirs])))
        .collect()
}

fn check_case(pyreft_type: &str, kind: InterventionKind, mapping: &[(&str, &str)]) {
    let fixture = read_json("pyreft_interventions.json");
    let case = fixture["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == pyreft_type)
        .unwrap_or_else(|| panic!("fixture has no {pyreft_type} case"));
    let hidden = fixture["embed_dim"].as_u64().unwrap() as usize;
    let rank = fixture["rank"].as_u64().unwrap() as usize;

    let config = InterventionConfig {
        kind,
        rank,
        ..InterventionConfig::default()
    };
    let intervention = Intervention::from_tensors(config, hidden, our_tensors(case, mapping), 0)
        .unwrap_or_else(|e| panic!("{pyreft_type} parameters load: {e}"));

    let output = intervention.forward(&tensor(&case["h"]), false).unwrap();
    let expected = tensor(&case["output"]);
    let max_error = (output - expected)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(
        max_error < 1e-5,
        "{pyreft_type}: max difference from pyreft is {max_error}"
    );
}

#[test]
fn loreft_matches_pyreft() {
    check_case(
        "LoreftIntervention",
        InterventionKind::Loreft,
        &[
            ("rotate", "R_effective_d_by_r"),
            ("weight", "weight"),
            ("bias", "bias"),
        ],
    );
}

#[test]
fn noreft_matches_pyreft() {
    check_case(
        "NoreftIntervention",
        InterventionKind::Noreft,
        &[
            ("source.weight", "learned_source.weight"),
            ("source.bias", "learned_source.bias"),
            ("proj.weight", "proj_layer.weight"),
            ("proj.bias", "proj_layer.bias"),
        ],
    );
}

#[test]
fn direft_matches_pyreft_nodireft() {
    check_case(
        "NodireftIntervention",
        InterventionKind::Direft,
        &[
            ("source.weight", "learned_source.weight"),
            ("source.bias", "learned_source.bias"),
            ("proj.weight", "proj_layer.weight"),
        ],
    );
}

#[test]
fn consreft_matches_pyreft() {
    check_case(
        "ConsreftIntervention",
        InterventionKind::Consreft,
        &[("rotate", "R_effective_d_by_r"), ("bias", "learned_source")],
    );
}

#[test]
fn lobireft_matches_pyreft() {
    check_case(
        "LobireftIntervention",
        InterventionKind::Lobireft,
        &[("rotate", "R_effective_d_by_r"), ("bias", "learned_source")],
    );
}

/// down = [[1, 0, -1], [0, 2, 0]], down_bias = [0, -1], up = [[1, 0], [0, 1], [1, 1]],
/// up_bias = [0.5, 0, 0]; for h = [1, 2, 3]: down(h) = [-2, 3], GELU(-2) = -0.0455003,
/// GELU(3) = 2.9959502, so Δh = [0.4544997, 2.9959502, 2.9504499].
#[test]
fn mlp_matches_hand_computation() {
    let device = Device::Cpu;
    let tensors = HashMap::from([
        (
            "down.weight".to_string(),
            Tensor::new(&[[1f32, 0., -1.], [0., 2., 0.]], &device).unwrap(),
        ),
        (
            "down.bias".to_string(),
            Tensor::new(&[0f32, -1.], &device).unwrap(),
        ),
        (
            "up.weight".to_string(),
            Tensor::new(&[[1f32, 0.], [0., 1.], [1., 1.]], &device).unwrap(),
        ),
        (
            "up.bias".to_string(),
            Tensor::new(&[0.5f32, 0., 0.], &device).unwrap(),
        ),
    ]);
    let config = InterventionConfig {
        kind: InterventionKind::Mlp,
        rank: 2,
        ..InterventionConfig::default()
    };
    let intervention = Intervention::from_tensors(config, 3, tensors, 0).unwrap();
    let h = Tensor::new(&[[1f32, 2., 3.]], &device).unwrap();
    let output = intervention
        .forward(&h, false)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    let expected = [1.0 + 0.4544997, 2.0 + 2.9959502, 3.0 + 2.9504499];
    for (i, (got, want)) in output[0].iter().zip(expected).enumerate() {
        assert!(
            (got - want).abs() < 1e-5,
            "mlp output {i} is {got}, expected {want}"
        );
    }
}

fn lobireft_with(config: InterventionConfig) -> (Intervention, Tensor) {
    let device = Device::Cpu;
    // R = the first two basis vectors of R^3 and b = [3, 4], so Δh = [3, 4, 0] (norm 5).
    let tensors = HashMap::from([
        (
            "rotate".to_string(),
            Tensor::new(&[[1f32, 0.], [0., 1.], [0., 0.]], &device).unwrap(),
        ),
        (
            "bias".to_string(),
            Tensor::new(&[3f32, 4.], &device).unwrap(),
        ),
    ]);
    let config = InterventionConfig {
        kind: InterventionKind::Lobireft,
        rank: 2,
        ..config
    };
    let h = Tensor::new(&[[1f32, 1., 1.]], &device).unwrap();
    (
        Intervention::from_tensors(config, 3, tensors, 0).unwrap(),
        h,
    )
}

#[test]
fn scale_multiplies_edit_only() {
    let (intervention, h) = lobireft_with(InterventionConfig {
        scale: 0.5,
        ..InterventionConfig::default()
    });
    let output = intervention
        .forward(&h, false)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    assert_eq!(output[0], vec![2.5, 3.0, 1.0]);
}

#[test]
fn max_l2_bounds_edit_norm() {
    let (intervention, h) = lobireft_with(InterventionConfig {
        edit_norm: EditNorm::MaxL2,
        edit_max_l2: 1.0,
        ..InterventionConfig::default()
    });
    let output = intervention
        .forward(&h, false)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    let expected = [1.6, 1.8, 1.0];
    for (got, want) in output[0].iter().zip(expected) {
        assert!(
            (got - want).abs() < 1e-5,
            "bounded output {:?}, expected {expected:?}",
            output[0]
        );
    }
}

#[test]
fn layer_norm_normalises_edit() {
    let (intervention, h) = lobireft_with(InterventionConfig {
        edit_norm: EditNorm::LayerNorm,
        ..InterventionConfig::default()
    });
    let output = intervention.forward(&h, false).unwrap();
    let edit = (output - &h).unwrap().to_vec2::<f32>().unwrap();
    let mean: f32 = edit[0].iter().sum::<f32>() / 3.0;
    let variance: f32 = edit[0].iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 3.0;
    assert!(mean.abs() < 1e-5, "normalised edit mean {mean}");
    assert!(
        (variance - 1.0).abs() < 1e-3,
        "normalised edit variance {variance}"
    );
}

#[test]
fn dropout_acts_only_in_training() {
    let (intervention, h) = lobireft_with(InterventionConfig {
        dropout: 0.5,
        ..InterventionConfig::default()
    });
    let eval = intervention
        .forward(&h, false)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    assert_eq!(eval[0], vec![4.0, 5.0, 1.0], "no dropout at evaluation");

    let rows = h.broadcast_as((200, 3)).unwrap().contiguous().unwrap();
    let train = intervention
        .forward(&rows, true)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    let dropped = train.iter().filter(|row| row[0] == 1.0).count();
    let doubled = train
        .iter()
        .filter(|row| (row[0] - 7.0).abs() < 1e-5)
        .count();
    assert_eq!(
        dropped + doubled,
        200,
        "each edit value is either dropped or scaled by 1 / (1 - p)"
    );
    assert!(
        (60..140).contains(&dropped),
        "about half dropped, got {dropped} of 200"
    );
}

#[test]
fn fresh_projection_is_orthonormal() {
    for kind in [
        InterventionKind::Loreft,
        InterventionKind::Consreft,
        InterventionKind::Lobireft,
    ] {
        let config = InterventionConfig {
            kind,
            rank: 8,
            ..InterventionConfig::default()
        };
        let intervention = Intervention::new(config, 576, 42, &Device::Cpu).unwrap();
        let error = orthonormality_error(&intervention.projection().unwrap()).unwrap();
        assert!(
            error < 1e-5,
            "{kind:?}: R^T R - I has entries up to {error}"
        );
    }
}

#[test]
fn same_seed_gives_same_parameters() {
    for kind in InterventionKind::ALL {
        let config = InterventionConfig {
            kind,
            ..InterventionConfig::default()
        };
        let a = Intervention::new(config.clone(), 64, 7, &Device::Cpu).unwrap();
        let b = Intervention::new(config.clone(), 64, 7, &Device::Cpu).unwrap();
        let c = Intervention::new(config, 64, 8, &Device::Cpu).unwrap();
        let values = |i: &Intervention| -> Vec<f32> {
            i.params()
                .iter()
                .flat_map(|(_, v)| {
                    v.as_tensor()
                        .flatten_all()
                        .unwrap()
                        .to_vec1::<f32>()
                        .unwrap()
                })
                .collect()
        };
        assert_eq!(values(&a), values(&b), "{kind:?}: same seed");
        assert_ne!(values(&a), values(&c), "{kind:?}: other seed");
    }
}

#[test]
fn wrong_tensor_shape_is_rejected() {
    let tensors = HashMap::from([
        (
            "rotate".to_string(),
            Tensor::zeros((16, 8), candle_core::DType::F32, &Device::Cpu).unwrap(),
        ),
        (
            "weight".to_string(),
            Tensor::zeros((4, 16), candle_core::DType::F32, &Device::Cpu).unwrap(),
        ),
        (
            "bias".to_string(),
            Tensor::zeros(4, candle_core::DType::F32, &Device::Cpu).unwrap(),
        ),
    ]);
    let config = InterventionConfig {
        rank: 4,
        ..InterventionConfig::default()
    };
    let error = Intervention::from_tensors(config, 16, tensors, 0)
        .err()
        .unwrap();
    assert!(
        error.contains("rotate") && error.contains("[16, 8]") && error.contains("[16, 4]"),
        "{error}"
    );
}

#[test]
fn positions_parse_pyreft_strings() {
    let cases = [
        ("f1+l1", Positions::FirstLast { first: 1, last: 1 }),
        ("f7+l7", Positions::FirstLast { first: 7, last: 7 }),
        ("l1", Positions::FirstLast { first: 0, last: 1 }),
        ("f3", Positions::FirstLast { first: 3, last: 0 }),
        ("prompt", Positions::Prompt),
        ("all", Positions::Every),
    ];
    for (text, want) in cases {
        assert_eq!(Positions::parse(text).unwrap(), want, "parse {text:?}");
        assert_eq!(want.to_string(), text, "display of {want:?}");
    }
    for bad in ["", "x1", "f", "f1+f2", "f0+l0", "l-1", "first"] {
        assert!(Positions::parse(bad).is_err(), "{bad:?} must be rejected");
    }
}

#[test]
fn positions_cap_short_prompts() {
    let positions = Positions::parse("f7+l7").unwrap();
    assert_eq!(positions.locate_tied(3, 10), vec![0, 1, 2]);
    let (prefix, suffix) = positions.locate(3, 10);
    assert_eq!(prefix, vec![0, 1, 2]);
    assert_eq!(suffix, vec![0, 1, 2]);
    assert_eq!(
        Positions::parse("f1+l1").unwrap().locate_tied(31, 44),
        vec![0, 30]
    );
    assert_eq!(
        Positions::parse("f1+l1").unwrap().locate_tied(1, 5),
        vec![0]
    );
    assert_eq!(Positions::Every.locate_tied(3, 5), vec![0, 1, 2, 3, 4]);
}

#[test]
fn activation_applies_inside() {
    let device = Device::Cpu;
    let tensors = HashMap::from([
        (
            "rotate".to_string(),
            Tensor::new(&[[1f32, 0.], [0., 1.], [0., 0.]], &device).unwrap(),
        ),
        (
            "bias".to_string(),
            Tensor::new(&[-3f32, 4.], &device).unwrap(),
        ),
    ]);
    let config = InterventionConfig {
        kind: InterventionKind::Lobireft,
        rank: 2,
        activation: Some(Activation::Relu),
        ..InterventionConfig::default()
    };
    let intervention = Intervention::from_tensors(config, 3, tensors, 0).unwrap();
    let h = Tensor::new(&[[1f32, 1., 1.]], &device).unwrap();
    let output = intervention
        .forward(&h, false)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    assert_eq!(output[0], vec![1.0, 5.0, 1.0]);
}

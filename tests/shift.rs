//! Representation shift on SmolLM2: measured from the first intervened layer to the last,
//! non-zero where the module edits, and zero for a module that edits nothing.

mod common;

use common::smollm2;
use reft_studio::reft::{
    InterventionConfig, InterventionKind, InterventionSet, LayerSelection, Positions,
};
use reft_studio::train::batch::{Batch, TokenizedExample};
use reft_studio::train::shift::ShiftProbe;

fn probe_batch() -> Batch {
    let examples = [
        TokenizedExample {
            input_ids: vec![1, 4093, 198, 6004, 2, 198, 1, 520, 9531, 198, 19556, 2],
            prompt_len: 10,
        },
        TokenizedExample {
            input_ids: vec![
                1, 4093, 198, 504, 3575, 282, 4649, 314, 2, 198, 1, 520, 9531, 198, 7042, 30, 2,
            ],
            prompt_len: 14,
        },
    ];
    let refs: Vec<&TokenizedExample> = examples.iter().collect();
    Batch::from_examples(&refs, 2, &candle_core::Device::Cpu).unwrap()
}

#[test]
fn shift_covers_layers_from_first_intervened() {
    let Some(model) = smollm2() else { return };
    let config = InterventionConfig {
        layers: LayerSelection::List(vec![12]),
        positions: Positions::FirstLast { first: 1, last: 1 },
        ..InterventionConfig::default()
    };
    let set = InterventionSet::new(vec![config], 576, 30, 3, model.decoder.device()).unwrap();
    let probe = ShiftProbe::new(&model.decoder, &set, probe_batch()).unwrap();
    let snapshot = probe.measure(&model.decoder, &set, 7).unwrap();

    assert_eq!(snapshot.step, 7);
    assert_eq!(snapshot.intervened_layers, vec![12]);
    let layers: Vec<usize> = snapshot.layers.iter().map(|l| l.layer).collect();
    assert_eq!(layers, (12..30).collect::<Vec<_>>());

    let at_module = &snapshot.layers[0];
    assert!(at_module.relative_change_intervened > 1e-3, "{at_module:?}");
    assert!(at_module.cosine_intervened < 1.0, "{at_module:?}");
    // The last prompt token is edited and attends to nothing after it, so the loss
    // positions (which come later) change only from layer 13 on.
    assert!(
        snapshot.layers[1].relative_change_loss > 0.0,
        "{:?}",
        snapshot.layers[1]
    );
    for layer in &snapshot.layers {
        assert!(layer.cosine_intervened <= 1.0 + 1e-6, "{layer:?}");
        assert!(layer.cosine_loss <= 1.0 + 1e-6, "{layer:?}");
    }
}

#[test]
fn shift_is_zero_for_zero_edit() {
    let Some(model) = smollm2() else { return };
    // LobiReFT with scale 0 adds a zero edit at every selected position.
    let config = InterventionConfig {
        kind: InterventionKind::Lobireft,
        layers: LayerSelection::List(vec![20]),
        scale: 0.0,
        ..InterventionConfig::default()
    };
    let set = InterventionSet::new(vec![config], 576, 30, 3, model.decoder.device()).unwrap();
    let probe = ShiftProbe::new(&model.decoder, &set, probe_batch()).unwrap();
    let snapshot = probe.measure(&model.decoder, &set, 1).unwrap();
    for layer in &snapshot.layers {
        assert!(layer.relative_change_intervened < 1e-6, "{layer:?}");
        assert!(layer.relative_change_loss < 1e-6, "{layer:?}");
        assert!((layer.cosine_loss - 1.0).abs() < 1e-5, "{layer:?}");
    }
}

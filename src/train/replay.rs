//! pyreft's LoReFT replay: its initial module weights and its fixed batches, read from the
//! JSON it was exported to. The replay test and `reft-studio bench` both run it.

use std::collections::HashMap;

use candle_core::{Device, Tensor};

use super::batch::Batch;
use crate::reft::{
    Intervention, InterventionConfig, InterventionKind, InterventionSet, LayerSelection, Part,
    PlacedIntervention, Positions,
};

/// The replay's layer: one tied rank-4 LoReFT module on the first and last prompt token.
pub const REPLAY_LAYER: usize = 15;

fn matrix(value: &serde_json::Value) -> Result<Tensor, String> {
    let rows: Vec<Vec<f32>> = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    let (r, c) = (rows.len(), rows.first().map_or(0, Vec::len));
    Tensor::from_vec(rows.concat(), (r, c), &Device::Cpu).map_err(|e| e.to_string())
}

/// Builds the replay's module from its initial weights (`rotate_layer` is R, [hidden, 4]).
pub fn replay_set(replay: &serde_json::Value, hidden: usize) -> Result<InterventionSet, String> {
    replay_set_at(replay, hidden, Positions::FirstLast { first: 1, last: 1 })
}

/// [`replay_set`] with the module on other positions: the benchmark's "l1" variant edits
/// only the last prompt token.
pub fn replay_set_at(
    replay: &serde_json::Value,
    hidden: usize,
    positions: Positions,
) -> Result<InterventionSet, String> {
    let params = replay["init_params"]
        .as_object()
        .and_then(|o| o.values().next())
        .ok_or("the replay has no initial parameters")?;
    let bias: Vec<f32> =
        serde_json::from_value(params["bias"].clone()).map_err(|e| e.to_string())?;
    let tensors = HashMap::from([
        ("rotate".to_string(), matrix(&params["rotate_layer"])?),
        ("weight".to_string(), matrix(&params["weight"])?),
        (
            "bias".to_string(),
            Tensor::new(bias.as_slice(), &Device::Cpu).map_err(|e| e.to_string())?,
        ),
    ]);
    let config = InterventionConfig {
        kind: InterventionKind::Loreft,
        layers: LayerSelection::List(vec![REPLAY_LAYER]),
        rank: 4,
        positions,
        tied: true,
        ..InterventionConfig::default()
    };
    let intervention = Intervention::from_tensors(config.clone(), hidden, tensors, 0)?;
    let module = PlacedIntervention {
        key: format!("loreft.layer{REPLAY_LAYER}"),
        config_index: 0,
        layer: REPLAY_LAYER,
        part: Part::Both,
        intervention,
    };
    Ok(InterventionSet::from_modules(vec![config], vec![module]))
}

/// Reads the replay's batches. `intervention_locations[example][unit]` is [first, last
/// prompt token], so each prompt ends at `last + 1`.
pub fn replay_batches(replay: &serde_json::Value) -> Result<Vec<Batch>, String> {
    let batches = replay["batches"]
        .as_array()
        .ok_or("the replay has no batches")?;
    batches
        .iter()
        .map(|b| {
            let field = |name: &str| b[name].clone();
            let ids: Vec<Vec<u32>> =
                serde_json::from_value(field("input_ids")).map_err(|e| e.to_string())?;
            let mask: Vec<Vec<u32>> =
                serde_json::from_value(field("attention_mask")).map_err(|e| e.to_string())?;
            let labels: Vec<Vec<i64>> =
                serde_json::from_value(field("labels")).map_err(|e| e.to_string())?;
            let locations: Vec<Vec<Vec<usize>>> =
                serde_json::from_value(field("intervention_locations"))
                    .map_err(|e| e.to_string())?;
            let prompt_lens: Vec<usize> = locations.iter().map(|l| l[0][1] + 1).collect();
            Batch::from_labels(&ids, &mask, &labels, &prompt_lens, &Device::Cpu)
                .map_err(|e| e.to_string())
        })
        .collect()
}

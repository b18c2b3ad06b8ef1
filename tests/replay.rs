//! The pyreft LoReFT replay on SmolLM2: the same initial weights and batches give pyreft's
//! first loss, and 20 AdamW steps with its settings bring the loss down as pyreft's do.

mod common;

use common::{read_json, smollm2};
use reft_studio::reft::orthonormal::orthonormality_error;
use reft_studio::train::loss::batch_loss;
use reft_studio::train::optimizer::ClippedAdamW;
use reft_studio::train::replay::{replay_batches, replay_set};
use reft_studio::train::schedule::{learning_rate, Schedule};

/// pyreft's loss on batch 0 with the initial weights.
const FIRST_LOSS: f32 = 3.5417;
/// pyreft reaches 1.9364 on batch 19; another way of keeping R orthonormal takes another
/// path, so only an upper bound is checked.
const LAST_LOSS_BOUND: f32 = 2.3;

#[test]
fn replay_first_loss_matches_pyreft() {
    let Some(model) = smollm2() else { return };
    let replay = read_json("pyreft_loreft_replay.json");
    let set = replay_set(&replay, model.config().hidden_size).unwrap();
    let batches = replay_batches(&replay).unwrap();

    let loss = batch_loss(&model.decoder, &set, &batches[0], true)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(
        (loss - FIRST_LOSS).abs() < 0.002,
        "first loss {loss}, pyreft {FIRST_LOSS}"
    );
}

#[test]
fn replay_training_lowers_loss_like_pyreft() {
    let Some(model) = smollm2() else { return };
    let replay = read_json("pyreft_loreft_replay.json");
    let set = replay_set(&replay, model.config().hidden_size).unwrap();
    let batches = replay_batches(&replay).unwrap();
    let total = batches.len();

    let mut optimizer = ClippedAdamW::new(set.vars(), 4e-3, 0.0, Some(1.0)).unwrap();
    let mut losses = Vec::new();
    for (step, batch) in batches.iter().enumerate() {
        optimizer.set_learning_rate(learning_rate(Schedule::Linear, 4e-3, step, total, 0));
        let loss = batch_loss(&model.decoder, &set, batch, true).unwrap();
        losses.push(loss.to_scalar::<f32>().unwrap());
        let mut grads = loss.backward().unwrap();
        optimizer.step(&mut grads).unwrap();
        set.after_step().unwrap();
    }
    eprintln!("replay losses: {losses:?}");

    assert!((losses[0] - FIRST_LOSS).abs() < 0.002, "first loss {}", losses[0]);
    assert!(
        losses[total - 1] < LAST_LOSS_BOUND,
        "loss on batch {} is {}, pyreft reaches 1.9364",
        total - 1,
        losses[total - 1]
    );

    let projection = set.modules()[0].intervention.projection().unwrap();
    let error = orthonormality_error(&projection).unwrap();
    assert!(error < 1e-4, "R^T R - I has entries up to {error} after training");
}

//! The pyreft LoReFT replay on SmolLM2: the same initial weights and batches give pyreft's
//! first loss, and 20 AdamW steps with its settings bring the loss down as pyreft's do.

mod common;

use common::{read_json, smollm2};
use reft_studio::reft::orthonormal::orthonormality_error;
use reft_studio::train::loss::batch_loss;
use reft_studio::train::optimizer::ClippedAdamW;
use reft_studio::train::prefix_cache::PrefixCache;
use reft_studio::train::replay::REPLAY_LAYER;
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

    let loss = batch_loss(&model.decoder, &set, &batches[0], true, None)
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

    // As the trainer does, blocks up to the intervened one run once per example.
    let mut prefix = PrefixCache::new(REPLAY_LAYER, 256 << 20);
    let mut optimizer = ClippedAdamW::new(set.vars(), 4e-3, 0.0, Some(1.0)).unwrap();
    let mut losses = Vec::new();
    for (step, batch) in batches.iter().enumerate() {
        optimizer.set_learning_rate(learning_rate(Schedule::Linear, 4e-3, step, total, 0));
        let loss = batch_loss(&model.decoder, &set, batch, true, Some(&mut prefix)).unwrap();
        losses.push(loss.to_scalar::<f32>().unwrap());
        let mut grads = loss.backward().unwrap();
        optimizer.step(&mut grads).unwrap();
        set.after_step().unwrap();
    }
    eprintln!("replay losses: {losses:?}");

    assert!(
        (losses[0] - FIRST_LOSS).abs() < 0.002,
        "first loss {}",
        losses[0]
    );
    assert!(
        losses[total - 1] < LAST_LOSS_BOUND,
        "loss on batch {} is {}, pyreft reaches 1.9364",
        total - 1,
        losses[total - 1]
    );

    // 160 rows over 2.5 epochs of 64 examples: 96 rows repeat an example seen before.
    let totals = prefix.totals();
    assert_eq!(
        (totals.misses, totals.hits),
        (64, 96),
        "prefix cache misses and hits"
    );

    let projection = set.modules()[0].intervention.projection().unwrap();
    let error = orthonormality_error(&projection).unwrap();
    assert!(
        error < 1e-4,
        "R^T R - I has entries up to {error} after training"
    );
}

#[test]
fn prefix_cache_keeps_loss_and_gradients() {
    let Some(model) = smollm2() else { return };
    let replay = read_json("pyreft_loreft_replay.json");
    let set = replay_set(&replay, model.config().hidden_size).unwrap();
    let batches = replay_batches(&replay).unwrap();
    let weight = &set.vars()[0];

    let loss_and_gradient = |prefix: Option<&mut PrefixCache>| {
        let loss = batch_loss(&model.decoder, &set, &batches[0], true, prefix).unwrap();
        let grads = loss.backward().unwrap();
        let gradient = grads
            .get(weight.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        (loss.to_scalar::<f32>().unwrap(), gradient)
    };

    let (plain_loss, plain_gradient) = loss_and_gradient(None);
    let mut prefix = PrefixCache::new(REPLAY_LAYER, 64 << 20);
    for pass in ["computing the prefix", "reading it from the cache"] {
        let (loss, gradient) = loss_and_gradient(Some(&mut prefix));
        assert!(
            (loss - plain_loss).abs() < 1e-5,
            "{pass}: loss {loss}, without the cache {plain_loss}"
        );
        let worst = gradient
            .iter()
            .zip(&plain_gradient)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        let scale = plain_gradient.iter().map(|g| g.abs()).fold(0f32, f32::max);
        assert!(
            worst <= 1e-4 * scale,
            "{pass}: gradients differ by {worst} (largest entry {scale})"
        );
    }
    assert_eq!(prefix.totals().hits, 8);
    assert!(prefix.bytes() > 0);
}

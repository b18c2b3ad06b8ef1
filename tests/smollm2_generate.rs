//! Greedy generation with the KV cache reproduces transformers' greedy tokens for the
//! three reference chats, and sampling is repeatable for a seed.

mod common;

use common::{as_u32s, read_json, smollm2};
use reft_studio::model::decoder::NoHook;
use reft_studio::model::generate::{generate, GenerationSettings, StopReason};

const EOS: u32 = 2;

#[test]
fn smollm2_greedy_matches_reference() {
    let Some(model) = smollm2() else { return };
    let reference = read_json("smollm2_tokenizer_chat.json");

    for chat in reference["chat"].as_array().unwrap() {
        let prompt = as_u32s(&chat["ids"]);
        let want = as_u32s(&chat["greedy_24_ids"]);
        let settings = GenerationSettings {
            max_new_tokens: 24,
            ..GenerationSettings::default()
        };
        let mut streamed = Vec::new();
        let generation = generate(
            &model.decoder,
            &prompt,
            &[EOS],
            &settings,
            &mut NoHook,
            &mut |id| {
                streamed.push(id);
                true
            },
        )
        .unwrap();

        assert_eq!(
            generation.token_ids, want,
            "greedy tokens for {}",
            chat["messages"]
        );
        let want_reason = if want.last() == Some(&EOS) {
            StopReason::Eos
        } else {
            StopReason::MaxTokens
        };
        assert_eq!(
            generation.stop_reason, want_reason,
            "stop reason for {}",
            chat["messages"]
        );
        let without_eos: Vec<u32> = want.iter().copied().filter(|&id| id != EOS).collect();
        assert_eq!(
            streamed, without_eos,
            "streamed tokens for {}",
            chat["messages"]
        );
    }
}

#[test]
fn smollm2_sampling_repeats_for_seed() {
    let Some(model) = smollm2() else { return };
    let reference = read_json("smollm2_tokenizer_chat.json");
    let prompt = as_u32s(&reference["chat"][1]["ids"]);

    let run = |seed: u64| {
        let settings = GenerationSettings {
            max_new_tokens: 12,
            temperature: 1.0,
            top_p: Some(0.9),
            seed,
        };
        generate(
            &model.decoder,
            &prompt,
            &[EOS],
            &settings,
            &mut NoHook,
            &mut |_| true,
        )
        .unwrap()
        .token_ids
    };

    let first = run(7);
    assert_eq!(first, run(7), "the same seed gives the same tokens");
    assert_ne!(first, run(8), "another seed gives other tokens");
}

#[test]
fn smollm2_generation_stops_at_token_limit() {
    let Some(model) = smollm2() else { return };
    let reference = read_json("smollm2_tokenizer_chat.json");
    let prompt = as_u32s(&reference["chat"][1]["ids"]);
    let settings = GenerationSettings {
        max_new_tokens: 3,
        ..GenerationSettings::default()
    };
    let generation = generate(
        &model.decoder,
        &prompt,
        &[EOS],
        &settings,
        &mut NoHook,
        &mut |_| true,
    )
    .unwrap();
    assert_eq!(generation.token_ids.len(), 3);
    assert_eq!(generation.stop_reason, StopReason::MaxTokens);
}

#[test]
fn batched_generation_equals_one_by_one() {
    use reft_studio::model::generate::generate_batch;
    use reft_studio::reft::{
        InterventionConfig, InterventionHook, InterventionSet, LayerSelection,
    };

    let Some(model) = smollm2() else { return };
    let reference = read_json("smollm2_tokenizer_chat.json");
    let prompts: Vec<Vec<u32>> = reference["chat"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| as_u32s(&c["ids"]))
        .collect();
    assert_ne!(
        prompts[0].len(),
        prompts[2].len(),
        "the prompts need different lengths"
    );
    let settings = GenerationSettings {
        max_new_tokens: 12,
        ..GenerationSettings::default()
    };

    // A randomly initialised LoReFT module changes the answers, so positions matter.
    let config = InterventionConfig {
        layers: LayerSelection::List(vec![10]),
        ..InterventionConfig::default()
    };
    let set = InterventionSet::new(vec![config], 576, 30, 5, model.decoder.device()).unwrap();

    let lengths: Vec<(usize, usize)> = prompts.iter().map(|p| (p.len(), p.len())).collect();
    let longest = prompts.iter().map(Vec::len).max().unwrap();
    let padding: Vec<usize> = prompts.iter().map(|p| longest - p.len()).collect();

    for with_intervention in [false, true] {
        let mut no_hook = NoHook;
        let mut batch_hook;
        let hook: &mut dyn reft_studio::model::decoder::BlockHook = if with_intervention {
            let rows = set.row_positions_left_padded(&lengths, &padding, true, false);
            batch_hook = InterventionHook::new(&set, rows, false);
            &mut batch_hook
        } else {
            &mut no_hook
        };
        let batched = generate_batch(&model.decoder, &prompts, &[EOS], &settings, hook).unwrap();

        for (row, prompt) in prompts.iter().enumerate() {
            let rows = set.row_positions(&[(prompt.len(), prompt.len())], true);
            let mut single_hook = InterventionHook::new(&set, rows, false);
            let single = if with_intervention {
                generate(
                    &model.decoder,
                    prompt,
                    &[EOS],
                    &settings,
                    &mut single_hook,
                    &mut |_| true,
                )
            } else {
                generate(
                    &model.decoder,
                    prompt,
                    &[EOS],
                    &settings,
                    &mut NoHook,
                    &mut |_| true,
                )
            }
            .unwrap();
            assert_eq!(
                batched[row].token_ids, single.token_ids,
                "row {row} (intervention: {with_intervention}) differs from its single run"
            );
            assert_eq!(
                batched[row].stop_reason, single.stop_reason,
                "row {row} stop reason"
            );
        }
    }
}

//! The pre-flight estimate against figures measured on SmolLM2-135M: its parameter count,
//! the replay's peak memory, and run times on the 2-core test machine.

use reft_studio::data::Task;
use reft_studio::model::config::{Architecture, ModelConfig};
use reft_studio::reft::LayerSelection;
use reft_studio::train::config::TrainConfig;
use reft_studio::train::preflight::{estimate, parameter_count, DataStats, Machine};

/// SmolLM2-135M-Instruct's shape, from its config.json.
fn smollm2_shape() -> ModelConfig {
    ModelConfig {
        architecture: Architecture::Llama,
        vocab_size: 49152,
        hidden_size: 576,
        intermediate_size: 1536,
        num_layers: 30,
        num_heads: 9,
        num_kv_heads: 3,
        head_dim: 64,
        rms_norm_eps: 1e-5,
        rope_theta: 100000.0,
        rope_scaling: None,
        max_position_embeddings: 8192,
        tie_word_embeddings: true,
        attention_bias: false,
        sliding_window: None,
    }
}

/// This machine's figures: 2 cores at about 290 GFLOP/s in f32 matmuls (AVX-512).
fn test_machine(available_gib: u64) -> Machine {
    Machine {
        available_memory_bytes: available_gib << 30,
        matmul_gflops: 290.0,
    }
}

/// Returns a config with every default: only the two required fields are given.
fn default_config() -> TrainConfig {
    TrainConfig::from_toml("[model]\nsource = \"model.gguf\"\n[data]\ntrain = \"train.jsonl\"\n")
        .unwrap()
}

/// pyreft's replay: 64 examples of about 55 tokens, LoReFT at layer 15, batch 8, 20 steps.
fn replay_config() -> (TrainConfig, DataStats) {
    let mut config = default_config();
    config.interventions[0].layers = LayerSelection::List(vec![15]);
    config.training.batch_size = 8;
    config.training.max_steps = 20;
    config.training.prefix_cache_mb = 0;
    let data = DataStats {
        train_examples: 64,
        eval_examples: 0,
        mean_tokens: 55.0,
        labels_per_eval: 1,
    };
    (config, data)
}

#[test]
fn parameter_count_matches_smollm2() {
    // A 49152 x 576 embedding (tied to the head), 30 blocks of 3,540,096 weights and the
    // final norm's 576.
    assert_eq!(parameter_count(&smollm2_shape()), 134_515_008);
}

#[test]
fn replay_memory_near_measured_peak() {
    let (config, data) = replay_config();
    let estimate = estimate(&smollm2_shape(), &config, &data, &test_machine(20));

    // `reft-studio bench --no-prefix-cache` measured a peak RSS of 0.79 GiB for this run.
    let measured = 0.79 * (1u64 << 30) as f64;
    let ratio = estimate.peak_memory_bytes as f64 / measured;
    eprintln!(
        "replay peak memory: estimated {} bytes, measured {measured:.0}",
        estimate.peak_memory_bytes
    );
    assert!(
        (0.8..=1.25).contains(&ratio),
        "estimated {} bytes, {ratio:.2} of the measured peak",
        estimate.peak_memory_bytes
    );
    assert!(estimate.fits);
    assert_eq!(estimate.steps, 20);
}

#[test]
fn replay_time_near_measured() {
    let (config, data) = replay_config();
    let estimate = estimate(&smollm2_shape(), &config, &data, &test_machine(20));

    // `reft-studio bench --no-prefix-cache`: 20 steps at a median of 0.81 s.
    let measured = 20.0 * 0.81;
    let ratio = estimate.seconds / measured;
    eprintln!(
        "replay time: estimated {:.1} s, measured {measured:.1} s",
        estimate.seconds
    );
    assert!(
        (0.6..=1.6).contains(&ratio),
        "estimated {:.1} s, {ratio:.2} of the measured {measured} s",
        estimate.seconds
    );
}

#[test]
fn small_memory_does_not_fit() {
    let (config, data) = replay_config();
    let machine = Machine {
        available_memory_bytes: 512 << 20,
        matmul_gflops: 290.0,
    };
    let estimate = estimate(&smollm2_shape(), &config, &data, &machine);
    assert!(
        !estimate.fits,
        "512 MiB free cannot hold a {} byte run",
        estimate.peak_memory_bytes
    );
}

#[test]
fn two_layers_cost_more_than_one() {
    // Modules on two layers train through autograd, which keeps more and runs slower.
    let (one_layer, data) = replay_config();
    let mut two_layers = one_layer.clone();
    two_layers.interventions[0].layers = LayerSelection::List(vec![15, 16]);
    let one = estimate(&smollm2_shape(), &one_layer, &data, &test_machine(20));
    let two = estimate(&smollm2_shape(), &two_layers, &data, &test_machine(20));
    assert!(
        two.peak_memory_bytes as f64 > 1.3 * one.peak_memory_bytes as f64,
        "memory: {} bytes on two layers, {} on one",
        two.peak_memory_bytes,
        one.peak_memory_bytes
    );
    assert!(
        two.seconds > 1.5 * one.seconds,
        "time: {:.1} s on two layers, {:.1} s on one",
        two.seconds,
        one.seconds
    );
}

#[test]
fn classification_stats_count_labels_and_holdout() {
    let mut config = default_config();
    config.data.task = Some(Task::Classification);
    config.data.labels = vec!["正面".into(), "负面".into(), "中性".into()];
    config.data.eval_ratio = 0.25;
    let examples: Vec<_> = (0..8)
        .map(|i| reft_studio::data::Example {
            messages: vec![reft_studio::model::chat_template::ChatMessage {
                role: "user".into(),
                // 33 bytes of text: eleven Chinese characters.
                content: "质量很好物流也快非常满".into(),
            }],
            target: if i % 2 == 0 {
                "正面".into()
            } else {
                "负面".into()
            },
            source_line: i + 1,
        })
        .collect();
    let stats = DataStats::from_examples(&examples, None, &config);
    assert_eq!((stats.train_examples, stats.eval_examples), (6, 2));
    assert_eq!(stats.labels_per_eval, 3);
    // (33 + 6) bytes / 3 bytes per token + 32 template tokens.
    assert!(
        (stats.mean_tokens - 45.0).abs() < 1e-9,
        "mean tokens {}",
        stats.mean_tokens
    );
}

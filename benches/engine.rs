//! Engine benchmark: model load time and forward-pass throughput on the CPU.
//!
//! Run with `REFT_STUDIO_TEST_MODEL=path/to/model.gguf cargo bench --bench engine`.
//! It loads the model, then times a forward pass without intervention over a batch of
//! 8 sequences of 55 tokens (the shape of the training replay), and prints the median.

use std::time::Instant;

use candle_core::Device;
use reft_studio::model::decoder::{LogitsAt, NoHook};
use reft_studio::model::loader;
use reft_studio::model::source::ModelFiles;

const BATCH: usize = 8;
const SEQ: usize = 55;
const REPEATS: usize = 7;

fn main() {
    let Some(path) = std::env::var_os("REFT_STUDIO_TEST_MODEL") else {
        eprintln!("skipping: set REFT_STUDIO_TEST_MODEL to a .gguf file (scripts/fetch-test-assets prints it)");
        return;
    };

    let started = Instant::now();
    let model =
        loader::load_files(ModelFiles::Gguf(path.into()), &Device::Cpu).expect("model loads");
    let load_seconds = started.elapsed().as_secs_f64();

    // Deterministic token ids spread over the vocabulary.
    let vocab = model.config().vocab_size as u64;
    let rows: Vec<Vec<u32>> = (0..BATCH)
        .map(|b| {
            (0..SEQ)
                .map(|t| ((b * 7919 + t * 104_729 + 13) as u64 % vocab) as u32)
                .collect()
        })
        .collect();
    let input = model
        .decoder
        .ids_tensor(&rows)
        .expect("ids fit the vocabulary");

    let mut seconds = Vec::with_capacity(REPEATS);
    for _ in 0..REPEATS {
        let started = Instant::now();
        let output = model
            .decoder
            .forward(&input, None, &mut NoHook, LogitsAt::All)
            .expect("forward runs");
        drop(output);
        seconds.push(started.elapsed().as_secs_f64());
    }
    seconds.sort_by(f64::total_cmp);
    let median = seconds[REPEATS / 2];
    let tokens = (BATCH * SEQ) as f64;

    println!("model load: {load_seconds:.2} s");
    println!(
        "forward, batch {BATCH} x {SEQ} tokens, logits at every position: median {median:.3} s over {REPEATS} runs ({:.0} tokens/s; fastest {:.3} s, slowest {:.3} s)",
        tokens / median,
        seconds[0],
        seconds[REPEATS - 1]
    );
}

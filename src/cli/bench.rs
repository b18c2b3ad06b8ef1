//! `reft-studio bench`: the training replay as a benchmark. SmolLM2-135M with one tied
//! LoReFT module (rank 4) at layer 15 on the first and last prompt token, over 20 fixed
//! batches of 8 (pyreft's replay, kept in the project), with AdamW at lr 4e-3 and linear
//! decay. Prints seconds per step, tokens per second, peak RSS and the time of each phase.
//! `--general-pass` and `--no-prefix-cache` turn the speed-ups off, for comparison.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::Device;
use clap::Args;
use reft_studio::model::loader;
use reft_studio::model::source::ModelFiles;
use reft_studio::reft::Positions;
use reft_studio::train::loss::{general_batch_loss, timed_batch_loss, LossTimings};
use reft_studio::train::optimizer::ClippedAdamW;
use reft_studio::train::prefix_cache::PrefixCache;
use reft_studio::train::replay::{replay_batches, replay_set_at};
use reft_studio::train::schedule::{learning_rate, Schedule};
use serde::Serialize;

/// pyreft's replay: prompts, batches and initial LoReFT weights.
const REPLAY: &str = include_str!("../../tests/fixtures/pyreft_loreft_replay.json");

#[derive(Args)]
pub struct BenchArgs {
    /// The model (default: REFT_STUDIO_TEST_MODEL, the SmolLM2 GGUF).
    #[arg(long)]
    model: Option<String>,

    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,

    /// Run every block for every step, as without the frozen-prefix cache.
    #[arg(long)]
    no_prefix_cache: bool,

    /// Run the blocks above the intervention through candle's autograd instead of the
    /// CPU suffix pass.
    #[arg(long)]
    general_pass: bool,

    /// Edit only the last prompt token ("l1", as the quick start and the classification
    /// default do) instead of the first and the last.
    #[arg(long)]
    last_prompt_token: bool,
}

/// Memory for the frozen-prefix cache; the replay needs about 20 MiB.
const PREFIX_CACHE_BYTES: usize = 512 * 1024 * 1024;

#[derive(Serialize)]
struct BenchReport {
    /// Median over steps 3-20.
    seconds_per_step: f64,
    /// Median over steps whose every example's frozen prefix came from the cache; equals
    /// seconds_per_step with --no-prefix-cache.
    seconds_per_cached_step: f64,
    /// Steps whose every example's frozen prefix came from the cache (printed, not in the
    /// JSON, whose fields are fixed).
    #[serde(skip)]
    cached_steps: usize,
    tokens_per_second: f64,
    peak_rss_bytes: u64,
    first_loss: f64,
    last_loss: f64,
    /// Total seconds in each phase over the whole run.
    phases: BTreeMap<String, f64>,
}

pub fn run(args: BenchArgs) -> Result<()> {
    let model_spec = match args.model {
        Some(m) => m,
        None => std::env::var("REFT_STUDIO_TEST_MODEL").context(
            "give --model or set REFT_STUDIO_TEST_MODEL (scripts/fetch-test-assets prints it)",
        )?,
    };
    let mut phases = BTreeMap::new();

    let started = Instant::now();
    let files = reft_studio::model::source::classify_path(std::path::Path::new(&model_spec))
        .unwrap_or(ModelFiles::Gguf(model_spec.clone().into()));
    let model = loader::load_files(files, &Device::Cpu)?;
    phases.insert("load_model".to_string(), started.elapsed().as_secs_f64());

    let replay: serde_json::Value = serde_json::from_str(REPLAY)?;
    let positions = if args.last_prompt_token {
        Positions::FirstLast { first: 0, last: 1 }
    } else {
        Positions::FirstLast { first: 1, last: 1 }
    };
    let set = replay_set_at(&replay, model.config().hidden_size, positions)
        .map_err(anyhow::Error::msg)?;
    let batches = replay_batches(&replay).map_err(anyhow::Error::msg)?;
    let total = batches.len();
    let mut optimizer = ClippedAdamW::new(set.vars(), 4e-3, 0.0, Some(1.0))?;
    let mut prefix = (!args.no_prefix_cache)
        .then(|| PrefixCache::new(set.first_layer().unwrap_or(0), PREFIX_CACHE_BYTES));

    let (mut forward, mut backward, mut update) = (0.0, 0.0, 0.0);
    let mut parts: Option<LossTimings> = None;
    let mut step_seconds = Vec::new();
    let mut cached_seconds = Vec::new();
    let mut losses = Vec::new();
    for (step, batch) in batches.iter().enumerate() {
        let step_started = Instant::now();
        optimizer.set_learning_rate(learning_rate(Schedule::Linear, 4e-3, step, total, 0));

        let t = Instant::now();
        let misses_before = prefix.as_ref().map(|p| p.totals().misses);
        let loss = if args.general_pass {
            general_batch_loss(&model.decoder, &set, batch, true, prefix.as_mut())?
        } else {
            let (loss, timings) =
                timed_batch_loss(&model.decoder, &set, batch, true, prefix.as_mut())?;
            if let Some(t) = timings {
                parts.get_or_insert_default().add(&t);
            }
            loss
        };
        let all_cached =
            misses_before.is_some() && misses_before == prefix.as_ref().map(|p| p.totals().misses);
        losses.push(f64::from(loss.to_scalar::<f32>()?));
        forward += t.elapsed().as_secs_f64();

        let t = Instant::now();
        let mut grads = loss.backward()?;
        backward += t.elapsed().as_secs_f64();

        let t = Instant::now();
        optimizer.step(&mut grads)?;
        set.after_step()?;
        update += t.elapsed().as_secs_f64();

        step_seconds.push(step_started.elapsed().as_secs_f64());
        if all_cached {
            cached_seconds.push(step_seconds[step]);
        }
        if !args.json {
            let note = if all_cached { " (prefix cached)" } else { "" };
            eprintln!(
                "step {}/{total}: {:.3} s, loss {:.4}{note}",
                step + 1,
                step_seconds[step],
                losses[step]
            );
        }
    }
    match parts {
        // The suffix pass computes the blocks' backward inside the loss: split it out.
        Some(t) => {
            phases.insert("prefix".to_string(), t.prefix);
            phases.insert("intervention_forward".to_string(), t.intervention);
            phases.insert("blocks_forward".to_string(), t.suffix.blocks_forward);
            phases.insert("head_and_loss".to_string(), t.suffix.head);
            phases.insert("blocks_backward".to_string(), t.suffix.blocks_backward);
            phases.insert("intervention_backward".to_string(), backward);
        }
        None => {
            phases.insert("forward".to_string(), forward);
            phases.insert("backward".to_string(), backward);
        }
    }
    phases.insert("optimizer".to_string(), update);

    let median = median(&step_seconds[2..]);
    let steady_tokens: usize = batches[2..].iter().map(|b| b.token_count).sum();
    let report = BenchReport {
        seconds_per_step: median,
        seconds_per_cached_step: if args.no_prefix_cache {
            median
        } else {
            self::median(&cached_seconds)
        },
        cached_steps: cached_seconds.len(),
        tokens_per_second: steady_tokens as f64 / step_seconds[2..].iter().sum::<f64>(),
        peak_rss_bytes: peak_rss_bytes(),
        first_loss: losses[0],
        last_loss: losses[total - 1],
        phases,
    };

    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "seconds per step (median of steps 3-{total}): {:.3}",
            report.seconds_per_step
        );
        if !args.no_prefix_cache {
            println!(
                "seconds per step with the prefix cached (median of {} steps): {:.3}",
                report.cached_steps, report.seconds_per_cached_step
            );
        }
        println!("tokens per second: {:.0}", report.tokens_per_second);
        println!(
            "peak RSS: {:.2} GiB",
            report.peak_rss_bytes as f64 / (1u64 << 30) as f64
        );
        println!(
            "loss: first {:.4}, last {:.4}",
            report.first_loss, report.last_loss
        );
        for (phase, seconds) in &report.phases {
            println!("  {phase}: {seconds:.2} s");
        }
    }
    Ok(())
}

/// Returns the median of `values`, or NaN when there are none.
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Peak resident set size (VmHWM) from /proc; 0 where /proc is not available.
fn peak_rss_bytes() -> u64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

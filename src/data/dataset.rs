//! The data model (examples, formats, loaded files), loading a file, splitting off an eval
//! set, and checking classification labels.

use std::fmt;
use std::path::Path;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::error::{DataError, DataProblem};
use super::formats::{Layout, RowIssue};
use super::rows::{self, Row, RowResult};
use super::template::PromptTemplate;
use crate::model::chat_template::ChatMessage;

/// One training example: the input conversation and the text the model should produce.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Example {
    /// The conversation before the answer, ending with the user message: the input side.
    pub messages: Vec<ChatMessage>,
    /// The response (instruction tuning) or the label (classification).
    pub target: String,
    /// Origin of the row, for messages: 1-based line number (JSONL/CSV) or array index + 1
    /// (JSON array).
    pub source_line: usize,
}

impl Example {
    /// Returns the content of the last user message, which is the text of a classification row.
    pub fn user_text(&self) -> Option<&str> {
        self.messages
            .iter()
            .rev()
            .find(|message| message.role == "user")
            .map(|message| message.content.as_str())
    }
}

/// The kind of output a model is trained to produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Generate a response to a prompt.
    Instruction,
    /// Pick one of K labels for a text.
    Classification,
}

/// The shape of the rows in a data file, detected from their keys or columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowFormat {
    /// `instruction` and `output`, with optional `input` and `system`.
    Alpaca,
    /// `messages` or `conversations`: a list of `{role, content}` or ShareGPT
    /// `{from, value}` turns ending with the assistant's answer.
    Messages,
    /// `prompt`/`response`, `prompt`/`completion`, `question`/`answer` or `input`/`output`.
    PromptResponse,
    /// `text`, `sentence`, `review` or `content`, with `label`, `labels` or `category`.
    TextLabel,
}

impl RowFormat {
    pub fn task(self) -> Task {
        match self {
            RowFormat::TextLabel => Task::Classification,
            RowFormat::Alpaca | RowFormat::Messages | RowFormat::PromptResponse => {
                Task::Instruction
            }
        }
    }
}

impl fmt::Display for RowFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RowFormat::Alpaca => "alpaca (instruction/output)",
            RowFormat::Messages => "chat messages",
            RowFormat::PromptResponse => "prompt/response",
            RowFormat::TextLabel => "text/label",
        })
    }
}

/// The container format of a data file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// One JSON object per line (`.jsonl`, or `.json` not starting with `[`).
    Jsonl,
    /// A JSON array of objects (`.json` starting with `[`).
    JsonArray,
    /// Comma-separated values with a header row.
    Csv,
    /// Tab-separated values with a header row.
    Tsv,
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::Jsonl => "JSON lines",
            FileKind::JsonArray => "JSON array",
            FileKind::Csv => "CSV",
            FileKind::Tsv => "TSV",
        })
    }
}

/// How to read a data file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadOptions {
    /// Wraps each row's user text, for example `"Review: {text}\nSentiment:"`. The
    /// allowed placeholders depend on the format: `{instruction}`, `{input}` and `{text}`
    /// for alpaca, `{text}` and `{input}` (both the prompt) for prompt/response, and
    /// `{text}` for text/label and for the last user message of chat messages.
    pub prompt_template: Option<String>,
    /// Fail on the first bad row instead of skipping bad rows.
    pub strict: bool,
    /// Stop after this many valid examples, for a preview. `Some(0)` is read as 1.
    pub max_rows: Option<usize>,
}

/// The examples of one file, with what was detected and the rows that were skipped.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadedData {
    pub examples: Vec<Example>,
    pub format: RowFormat,
    pub file_kind: FileKind,
    /// Role to key or column name as spelled in the file, for example
    /// `("prompt", "instruction")`. Roles: prompt, input, system, response, messages,
    /// text, label.
    pub column_mapping: Vec<(String, String)>,
    /// Rows skipped because they are invalid; always empty after a strict load.
    pub problems: Vec<DataProblem>,
}

impl LoadedData {
    pub fn task(&self) -> Task {
        self.format.task()
    }
}

/// Loads the examples of a `.jsonl`, `.json`, `.csv` or `.tsv` file.
///
/// The format is detected from the first row whose keys fit one (key matching ignores
/// case and surrounding spaces), and every row must then fit that format. UTF-8 with or
/// without a byte order mark, CRLF line ends and blank lines are accepted. A bad row is
/// returned as `DataError::BadRow` under `strict`, and otherwise skipped and listed in
/// `problems`. A file without valid rows is an error either way.
pub fn load_file(path: &Path, options: &LoadOptions) -> Result<LoadedData, DataError> {
    let text = rows::read_text(path)?;
    let file_kind = rows::file_kind(path, &text)?;
    let template = options
        .prompt_template
        .as_deref()
        .map(PromptTemplate::parse)
        .transpose()?;

    let mut loader = Loader {
        path,
        file_kind,
        strict: options.strict,
        limit: options.max_rows.map(|limit| limit.max(1)),
        template,
        layout: None,
        column_mapping: Vec::new(),
        pending: Vec::new(),
        first_keys: None,
        row_count: 0,
        examples: Vec::new(),
        problems: Vec::new(),
    };
    for row in rows::read_rows(path, file_kind, &text)? {
        loader.accept(row)?;
        if loader.is_full() {
            break;
        }
    }
    loader.finish()
}

/// The state of `load_file` while it reads rows. Rows before the first one that fits a
/// format wait in `pending` until the format is known.
struct Loader<'a> {
    path: &'a Path,
    file_kind: FileKind,
    strict: bool,
    limit: Option<usize>,
    template: Option<PromptTemplate>,
    layout: Option<Layout>,
    column_mapping: Vec<(String, String)>,
    pending: Vec<RowResult>,
    /// Keys of the first row read as an object, for the unknown-format error.
    first_keys: Option<Vec<String>>,
    row_count: usize,
    examples: Vec<Example>,
    problems: Vec<DataProblem>,
}

impl Loader<'_> {
    fn is_full(&self) -> bool {
        self.limit.is_some_and(|limit| self.examples.len() >= limit)
    }

    fn accept(&mut self, row: RowResult) -> Result<(), DataError> {
        self.row_count += 1;
        if self.layout.is_some() {
            return self.convert(row);
        }

        let row = match row {
            Ok(row) => row,
            Err(problem) => return self.reject(problem, true),
        };
        if self.first_keys.is_none() {
            self.first_keys = Some(row.names());
        }
        let Some(layout) = Layout::detect(&row) else {
            self.pending.push(Ok(row));
            return Ok(());
        };

        if let Some(template) = &self.template {
            template
                .check_placeholders(layout.allowed_placeholders(), &layout.format.to_string())?;
        }
        self.column_mapping = layout.column_mapping(&row);
        self.layout = Some(layout);
        let mut earlier = std::mem::take(&mut self.pending);
        earlier.push(Ok(row));
        for row in earlier {
            if self.is_full() {
                break;
            }
            self.convert(row)?;
        }
        Ok(())
    }

    fn convert(&mut self, row: RowResult) -> Result<(), DataError> {
        let layout = self
            .layout
            .as_ref()
            .expect("convert runs once the format is known");
        let row: Row = match row {
            Ok(row) => row,
            Err(problem) => return self.reject(problem, false),
        };
        match layout.convert(&row, self.template.as_ref()) {
            Ok((messages, target)) => {
                self.examples.push(Example {
                    messages,
                    target,
                    source_line: row.line,
                });
                Ok(())
            }
            Err(RowIssue { field, message }) => {
                let problem = DataProblem {
                    file: self.path.to_path_buf(),
                    line: row.line,
                    field,
                    message,
                    file_kind: self.file_kind,
                };
                self.reject(problem, false)
            }
        }
    }

    /// Fails under `strict`, else records the problem. Before the format is known
    /// (`waiting`), the problem is kept in line order with the pending rows.
    fn reject(&mut self, problem: DataProblem, waiting: bool) -> Result<(), DataError> {
        if self.strict {
            return Err(DataError::BadRow(problem));
        }
        if waiting {
            self.pending.push(Err(problem));
        } else {
            self.problems.push(problem);
        }
        Ok(())
    }

    fn finish(mut self) -> Result<LoadedData, DataError> {
        let path = self.path.to_path_buf();
        let Some(layout) = self.layout else {
            if self.row_count == 0 {
                return Err(DataError::Empty { path });
            }
            if let Some(keys) = self.first_keys {
                return Err(DataError::UnknownFormat { path, keys });
            }
            // Every row failed to parse, and each one is pending as a problem.
            let problems: Vec<DataProblem> =
                self.pending.into_iter().filter_map(Result::err).collect();
            return Err(DataError::NoValidRows {
                path,
                count: problems.len(),
                first: problems[0].clone(),
            });
        };

        if self.examples.is_empty() {
            return Err(DataError::NoValidRows {
                path,
                count: self.problems.len(),
                first: self.problems.remove(0),
            });
        }
        if let Some(first) = self.problems.first() {
            tracing::warn!(
                path = %path.display(),
                skipped = self.problems.len(),
                first = %first,
                "skipped invalid rows"
            );
        }
        tracing::debug!(
            path = %path.display(),
            examples = self.examples.len(),
            format = %layout.format,
            file_kind = %self.file_kind,
            "loaded data file"
        );
        Ok(LoadedData {
            examples: self.examples,
            format: layout.format,
            file_kind: self.file_kind,
            column_mapping: self.column_mapping,
            problems: self.problems,
        })
    }
}

/// Checks that an eval ratio is in [0, 1); NaN is rejected.
pub fn validate_ratio(ratio: f64) -> Result<(), DataError> {
    if (0.0..1.0).contains(&ratio) {
        Ok(())
    } else {
        Err(DataError::InvalidRatio { ratio })
    }
}

/// Shuffles `examples` with `seed` and splits them into (train, eval).
///
/// Eval gets `round(eval_ratio * n)` examples, but at least 1 when the ratio is above 0
/// and n >= 2, and train always keeps at least 1 when n >= 1. The same seed gives the
/// same split with the same rand version (`StdRng` is ChaCha12 in rand 0.9).
///
/// # Panics
/// When `eval_ratio` is outside [0, 1); check it with [`validate_ratio`] first.
pub fn split(
    mut examples: Vec<Example>,
    eval_ratio: f64,
    seed: u64,
) -> (Vec<Example>, Vec<Example>) {
    if let Err(error) = validate_ratio(eval_ratio) {
        panic!("{error}");
    }
    let n = examples.len();
    let mut eval_count = (eval_ratio * n as f64).round() as usize;
    if eval_ratio > 0.0 && n >= 2 {
        eval_count = eval_count.max(1);
    }
    eval_count = eval_count.min(n.saturating_sub(1));

    examples.shuffle(&mut StdRng::seed_from_u64(seed));
    let eval = examples.split_off(n - eval_count);
    (examples, eval)
}

/// Collects the distinct targets of `examples` in order of first appearance.
pub fn distinct_labels(examples: &[Example]) -> Vec<String> {
    let mut labels: Vec<String> = Vec::new();
    for example in examples {
        if !labels.contains(&example.target) {
            labels.push(example.target.clone());
        }
    }
    labels
}

/// Checks that every example's target is one of `labels`, naming the first row that is not.
pub fn check_labels(examples: &[Example], labels: &[String]) -> Result<(), DataError> {
    match examples
        .iter()
        .find(|example| !labels.contains(&example.target))
    {
        None => Ok(()),
        Some(example) => Err(DataError::UnknownLabel {
            line: example.source_line,
            label: example.target.clone(),
            labels: labels.to_vec(),
        }),
    }
}

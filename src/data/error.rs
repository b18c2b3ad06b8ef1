//! The error type of data loading, splitting and sampling, and the per-row problem report.

use std::fmt;
use std::path::PathBuf;

use super::dataset::FileKind;

/// One row that could not become an example: where it is and what is wrong with it.
#[derive(Clone, Debug, PartialEq)]
pub struct DataProblem {
    pub file: PathBuf,
    /// 1-based line number in a JSONL, CSV or TSV file (where a multi-line CSV record
    /// starts), or 1-based item number in a JSON array.
    pub line: usize,
    /// The key or column at fault, as spelled in the file; `None` for a whole-row problem
    /// such as invalid JSON.
    pub field: Option<String>,
    /// The fault and what the row needs instead.
    pub message: String,
    /// Kind of the file, which decides whether `line` is shown as a line or an item number.
    pub file_kind: FileKind,
}

impl fmt::Display for DataProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.file_kind {
            FileKind::JsonArray => "item",
            FileKind::Jsonl | FileKind::Csv | FileKind::Tsv => "line",
        };
        write!(f, "{} {unit} {}", self.file.display(), self.line)?;
        if let Some(field) = &self.field {
            write!(f, ", field {field:?}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Everything that can go wrong between a data file and a train/eval split. Each variant
/// carries the offending path or value, and its message names the fix.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("data file not found: {path}. Check the path")]
    NotFound { path: PathBuf },

    #[error("could not read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("could not write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path} is not valid UTF-8 (the first invalid byte is at offset {offset}). Save the file as UTF-8")]
    InvalidUtf8 { path: PathBuf, offset: usize },

    #[error("unsupported data file {path}: the extension must be .jsonl, .json, .csv or .tsv")]
    UnsupportedExtension { path: PathBuf },

    #[error("{path} is not valid JSON: {reason}. Fix the file, or save it as JSON lines (.jsonl, one object per line) so that bad rows can be skipped")]
    InvalidJson { path: PathBuf, reason: String },

    #[error("{0}")]
    BadRow(DataProblem),

    #[error("the rows of {path} fit no known format: found keys [{}]; expected one of: instruction/output (alpaca), messages, prompt/response, text/label. Rename the keys or columns", keys.join(", "))]
    UnknownFormat { path: PathBuf, keys: Vec<String> },

    #[error("{path} contains no rows")]
    Empty { path: PathBuf },

    #[error(
        "{path} contains no valid rows: all {count} rows are invalid, the first being {first}"
    )]
    NoValidRows {
        path: PathBuf,
        count: usize,
        first: DataProblem,
    },

    #[error("invalid prompt template {template:?}: {reason}")]
    Template { template: String, reason: String },

    #[error("eval ratio {ratio} is out of range: it must be at least 0 and less than 1, for example 0.1")]
    InvalidRatio { ratio: f64 },

    #[error("line {line}: label \"{label}\" is not one of the labels [{}]. Add it to the labels or fix the row", labels.join(", "))]
    UnknownLabel {
        line: usize,
        label: String,
        labels: Vec<String>,
    },

    #[error("the example from line {line} has no user message, so it has no text to write")]
    MissingUserMessage { line: usize },
}

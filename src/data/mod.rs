//! Training data for the two tasks: instruction tuning (prompt to response) and
//! classification (text to one of K labels).
//!
//! [`load_file`] reads a JSONL, JSON array, CSV or TSV file, detects the row format from
//! the keys (alpaca, chat messages, prompt/response, text/label) and turns each row into
//! an [`Example`]: the input messages plus the target text. [`split`] shuffles examples
//! into train and eval sets with a seed, and [`balanced_sample`] builds a two-class set
//! from two plain-text files of one text per line.

pub mod dataset;
pub mod error;
mod formats;
mod rows;
pub mod sample;
pub mod template;

pub use dataset::{
    check_labels, distinct_labels, load_file, split, validate_ratio, Example, FileKind,
    LoadOptions, LoadedData, RowFormat, Task,
};
pub use error::{DataError, DataProblem};
pub use sample::{balanced_sample, read_text_lines, write_text_label_jsonl};
pub use template::PromptTemplate;

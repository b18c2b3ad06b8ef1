//! Reading a data file into rows of named values, one reader per file kind. Which keys a
//! row has decides its format later (see `formats`).

use std::path::Path;

use serde_json::Value;

use super::dataset::FileKind;
use super::error::{DataError, DataProblem};

/// One value of a row.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Field {
    /// The key or column name trimmed and lowercased, which is what formats match on.
    pub key: String,
    /// The key or column name as spelled in the file, trimmed, for messages.
    pub name: String,
    pub value: Value,
}

/// One object of a JSON file or one record of a CSV/TSV file. CSV and TSV values are
/// always JSON strings.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Row {
    /// 1-based line number, or item number in a JSON array.
    pub line: usize,
    pub fields: Vec<Field>,
}

impl Row {
    fn from_pairs(line: usize, pairs: impl IntoIterator<Item = (String, Value)>) -> Self {
        let mut fields: Vec<Field> = Vec::new();
        for (name, value) in pairs {
            let name = name.trim().to_string();
            let key = name.to_lowercase();
            // NOTE: when two names differ only in case or surrounding spaces, the first wins.
            if fields.iter().all(|field| field.key != key) {
                fields.push(Field { key, name, value });
            }
        }
        Self { line, fields }
    }

    pub fn get(&self, key: &str) -> Option<&Field> {
        self.fields.iter().find(|field| field.key == key)
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Returns the key or column names as spelled in the file, in file order.
    pub fn names(&self) -> Vec<String> {
        self.fields.iter().map(|field| field.name.clone()).collect()
    }
}

/// Reads `path` as UTF-8 text without its byte order mark.
pub(crate) fn read_text(path: &Path) -> Result<String, DataError> {
    let bytes = std::fs::read(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            DataError::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            DataError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    let mut text = String::from_utf8(bytes).map_err(|e| DataError::InvalidUtf8 {
        path: path.to_path_buf(),
        offset: e.utf8_error().valid_up_to(),
    })?;
    if text.starts_with('\u{feff}') {
        text.drain(..'\u{feff}'.len_utf8());
    }
    Ok(text)
}

/// Decides the file kind from the extension (case-insensitive) and, for `.json`, from the
/// first character: `[` is a JSON array and anything else is read as JSON lines.
pub(crate) fn file_kind(path: &Path, text: &str) -> Result<FileKind, DataError> {
    let extension = path
        .extension()
        .and_then(|extension| extension.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("jsonl") => Ok(FileKind::Jsonl),
        Some("json") if text.trim_start().starts_with('[') => Ok(FileKind::JsonArray),
        Some("json") => Ok(FileKind::Jsonl),
        Some("csv") => Ok(FileKind::Csv),
        Some("tsv") => Ok(FileKind::Tsv),
        _ => Err(DataError::UnsupportedExtension {
            path: path.to_path_buf(),
        }),
    }
}

pub(crate) type RowResult = Result<Row, DataProblem>;

/// Splits `text` into rows. A row that cannot be read (invalid JSON, not an object, a CSV
/// record with the wrong number of fields) is a problem. A JSON array that is not valid
/// JSON as a whole is an error, because its items cannot be separated.
pub(crate) fn read_rows<'a>(
    path: &'a Path,
    kind: FileKind,
    text: &'a str,
) -> Result<Box<dyn Iterator<Item = RowResult> + 'a>, DataError> {
    match kind {
        FileKind::Jsonl => {
            check_single_object(path, text)?;
            Ok(Box::new(jsonl_rows(path, text)))
        }
        FileKind::JsonArray => json_array_rows(path, text),
        FileKind::Csv => Ok(Box::new(delimited_rows(path, text, b',', kind))),
        FileKind::Tsv => Ok(Box::new(delimited_rows(path, text, b'\t', kind))),
    }
}

fn problem(path: &Path, kind: FileKind, line: usize, message: String) -> DataProblem {
    DataProblem {
        file: path.to_path_buf(),
        line,
        field: None,
        message,
        file_kind: kind,
    }
}

/// Rejects a pretty-printed single JSON object, which would otherwise show up as one
/// invalid line per line of the file.
fn check_single_object(path: &Path, text: &str) -> Result<(), DataError> {
    let Some(first_line) = text.lines().find(|line| !line.trim().is_empty()) else {
        return Ok(());
    };
    if serde_json::from_str::<Value>(first_line).is_ok() {
        return Ok(());
    }
    if let Ok(Value::Object(_)) = serde_json::from_str::<Value>(text) {
        return Err(DataError::InvalidJson {
            path: path.to_path_buf(),
            reason: "the file is one JSON object spread over several lines; expected a JSON array of rows, or one JSON object per line".to_string(),
        });
    }
    Ok(())
}

fn jsonl_rows<'a>(path: &'a Path, text: &'a str) -> impl Iterator<Item = RowResult> + 'a {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(move |(index, line)| {
            let line_number = index + 1;
            match serde_json::from_str::<Value>(line) {
                Ok(value) => object_row(path, FileKind::Jsonl, line_number, value),
                Err(e) => Err(problem(
                    path,
                    FileKind::Jsonl,
                    line_number,
                    format!("invalid JSON: {e}"),
                )),
            }
        })
}

fn json_array_rows<'a>(
    path: &'a Path,
    text: &'a str,
) -> Result<Box<dyn Iterator<Item = RowResult> + 'a>, DataError> {
    let items: Vec<Value> = serde_json::from_str(text).map_err(|e| DataError::InvalidJson {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(Box::new(items.into_iter().enumerate().map(
        move |(index, value)| object_row(path, FileKind::JsonArray, index + 1, value),
    )))
}

fn object_row(path: &Path, kind: FileKind, line: usize, value: Value) -> RowResult {
    match value {
        Value::Object(map) => Ok(Row::from_pairs(line, map)),
        other => Err(problem(
            path,
            kind,
            line,
            format!("expected a JSON object, found {}", type_name(&other)),
        )),
    }
}

// NOTE: quoting is on for TSV as for CSV, which reads the output of Python's csv module and
// pandas. A TSV value that starts with `"` but is not quoted (as in some GLUE files) is
// misread as a quoted value.
fn delimited_rows<'a>(
    path: &'a Path,
    text: &'a str,
    delimiter: u8,
    kind: FileKind,
) -> impl Iterator<Item = RowResult> + 'a {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(true)
        .from_reader(text.as_bytes());
    // The input is a valid UTF-8 string and the reader is flexible, so reading the header
    // cannot fail. An empty file has an empty header and no records.
    let headers: Vec<String> = reader
        .headers()
        .map(|headers| headers.iter().map(str::to_string).collect())
        .unwrap_or_default();
    let separator = if delimiter == b'\t' { "tab" } else { "comma" };
    let mut lines = LineCounter::new(text);

    reader.into_records().map(move |record| {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |position| lines.line_at(position.byte()));
            problem(path, kind, line, format!("invalid record: {e}"))
        })?;
        let line = record.position().map_or(0, |position| lines.line_at(position.byte()));
        if record.len() != headers.len() {
            return Err(problem(
                path,
                kind,
                line,
                format!(
                    "the row has {} fields but the header has {}; quote values that contain a {separator} or a line break",
                    record.len(),
                    headers.len()
                ),
            ));
        }
        let pairs = headers
            .iter()
            .zip(record.iter())
            .map(|(name, value)| (name.clone(), Value::String(value.to_string())));
        Ok(Row::from_pairs(line, pairs))
    })
}

/// Turns the byte offsets of CSV records into 1-based line numbers. The csv crate's own
/// `Position::line` is one too low after CRLF line ends (csv 1.4.0), and a record's byte
/// offset can point at the line end before it, so leading line ends are skipped first.
struct LineCounter<'a> {
    text: &'a str,
    counted_to: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text,
            counted_to: 0,
            line: 1,
        }
    }

    /// Returns the line of the first character at or after `byte` that is not a line end.
    /// Offsets must not decrease between calls.
    fn line_at(&mut self, byte: u64) -> usize {
        let bytes = self.text.as_bytes();
        let mut start = (byte as usize).clamp(self.counted_to, bytes.len());
        while start < bytes.len() && matches!(bytes[start], b'\r' | b'\n') {
            start += 1;
        }
        self.line += bytes[self.counted_to..start]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.counted_to = start;
        self.line
    }
}

/// Names the JSON type of `value` in words, for messages.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

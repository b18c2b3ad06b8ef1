//! Tokenizer and chat-template tests.
//!
//! The reference tests compare against tests/fixtures/smollm2_tokenizer_chat.json, which
//! holds ids and rendered chats computed with transformers 4.45.1 from the SmolLM2-135M-
//! Instruct GGUF. They need that GGUF at the path in REFT_STUDIO_TEST_MODEL and are
//! skipped, with a message on stderr, when the variable is unset or the file is missing.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{Content, Value, VersionedMagic};
use reft_studio::model::chat_template::{ChatMessage, ChatTemplate};
use reft_studio::model::tokenizer::TextTokenizer;
use reft_studio::model::ModelError;
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    tokenizer: Vec<TokenizerCase>,
    chat: Vec<ChatCase>,
}

#[derive(Deserialize)]
struct TokenizerCase {
    text: String,
    ids: Vec<u32>,
}

#[derive(Deserialize)]
struct ChatCase {
    messages: Vec<ChatMessage>,
    rendered: String,
    ids: Vec<u32>,
}

fn fixture() -> Fixture {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smollm2_tokenizer_chat.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("invalid fixture {}: {e}", path.display()))
}

/// Returns the SmolLM2 GGUF path, or `None` after printing why the test is skipped.
fn test_model_path() -> Option<PathBuf> {
    let Some(path) = std::env::var_os("REFT_STUDIO_TEST_MODEL") else {
        eprintln!(
            "skipping: REFT_STUDIO_TEST_MODEL is not set to the SmolLM2-135M-Instruct GGUF path"
        );
        return None;
    };
    let path = PathBuf::from(path);
    if !path.is_file() {
        eprintln!(
            "skipping: REFT_STUDIO_TEST_MODEL={} is not a file",
            path.display()
        );
        return None;
    }
    Some(path)
}

fn read_gguf(path: &Path) -> Content {
    let mut file =
        File::open(path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    Content::read(&mut file).unwrap_or_else(|e| panic!("cannot read GGUF {}: {e}", path.display()))
}

/// Loads the tokenizer and chat template of the test model, or `None` when skipped.
fn smollm2() -> Option<(TextTokenizer, ChatTemplate)> {
    let path = test_model_path()?;
    let content = read_gguf(&path);
    let tokenizer = TextTokenizer::from_gguf(&content, &path).expect("tokenizer from GGUF");
    let template =
        ChatTemplate::from_gguf(&content).expect("SmolLM2 GGUF has tokenizer.chat_template");
    Some((tokenizer, template))
}

#[test]
fn gguf_tokenizer_matches_reference_ids() {
    let Some((tokenizer, _)) = smollm2() else {
        return;
    };
    let fixture = fixture();
    assert!(!fixture.tokenizer.is_empty(), "fixture has tokenizer cases");

    let mut mismatches = Vec::new();
    for case in &fixture.tokenizer {
        let ids = tokenizer.encode(&case.text).expect("encode");
        if ids != case.ids {
            mismatches.push(format!(
                "text {:?}\n  expected {:?}\n  got      {:?}",
                case.text, case.ids, ids
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "ids differ from transformers:\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn gguf_tokenizer_round_trips() {
    let Some((tokenizer, _)) = smollm2() else {
        return;
    };
    for case in &fixture().tokenizer {
        let ids = tokenizer.encode(&case.text).expect("encode");
        let decoded = tokenizer.decode(&ids, false).expect("decode");
        assert_eq!(decoded, case.text, "decode(encode(text)) for ids {ids:?}");
    }
}

#[test]
fn gguf_decode_skips_special_tokens() {
    let Some((tokenizer, _)) = smollm2() else {
        return;
    };
    let ids = tokenizer
        .encode("<|im_start|>user\nhi<|im_end|>")
        .expect("encode");
    let decoded = tokenizer.decode(&ids, true).expect("decode");
    assert_eq!(
        decoded, "user\nhi",
        "special tokens are dropped with skip_special"
    );
}

#[test]
fn gguf_token_text_shows_leading_space() {
    let Some((tokenizer, _)) = smollm2() else {
        return;
    };
    // "The capital of France is" encodes to [504, 3575, 282, 4649, 314] in the fixture.
    assert_eq!(tokenizer.token_text(4649), " France", "token 4649");
    assert_eq!(tokenizer.token_text(504), "The", "token 504");
    assert_eq!(tokenizer.token_text(2), "<|im_end|>", "special token 2");
}

#[test]
fn eos_and_bos_ids_from_gguf() {
    let Some((tokenizer, template)) = smollm2() else {
        return;
    };
    assert_eq!(tokenizer.eos_ids(), &[2], "eos ids");
    assert_eq!(
        tokenizer.eos_token(),
        Some("<|im_end|>"),
        "eos token string"
    );
    assert_eq!(tokenizer.bos_id(), Some(1), "bos id");
    assert_eq!(
        tokenizer.bos_token(),
        Some("<|im_start|>"),
        "bos token string"
    );
    assert_eq!(tokenizer.pad_id(), Some(2), "pad id");
    assert!(
        !tokenizer.adds_bos(),
        "SmolLM2 sets tokenizer.ggml.add_bos_token = false"
    );
    assert_eq!(tokenizer.vocab_size(), 49152, "vocab size");
    assert_eq!(
        tokenizer.token_to_id("<|im_end|>"),
        Some(2),
        "id of <|im_end|>"
    );
    assert_eq!(
        template.eos_token(),
        Some("<|im_end|>"),
        "template eos token"
    );
}

#[test]
fn chat_template_matches_reference() {
    let Some((tokenizer, template)) = smollm2() else {
        return;
    };
    let fixture = fixture();
    assert!(!fixture.chat.is_empty(), "fixture has chat cases");

    for case in &fixture.chat {
        let rendered = template.render(&case.messages, true).expect("render");
        assert_eq!(
            rendered, case.rendered,
            "rendered chat for {:?}",
            case.messages
        );

        let ids = tokenizer.encode(&rendered).expect("encode");
        assert_eq!(
            ids, case.ids,
            "ids of rendered chat for {:?}",
            case.messages
        );
    }
}

#[test]
fn chat_template_adds_generation_prompt() {
    let Some((_, template)) = smollm2() else {
        return;
    };
    let messages = [ChatMessage::new("user", "Hi")];

    let with_prompt = template.render(&messages, true).expect("render");
    let without_prompt = template.render(&messages, false).expect("render");

    assert!(
        with_prompt.ends_with("<|im_end|>\n<|im_start|>assistant\n"),
        "generation prompt opens an assistant turn: {with_prompt:?}"
    );
    assert!(
        without_prompt.ends_with("Hi<|im_end|>\n"),
        "no assistant turn without it: {without_prompt:?}"
    );
    assert_eq!(
        with_prompt,
        format!("{without_prompt}<|im_start|>assistant\n"),
        "the prompt only appends the assistant header"
    );
}

#[test]
fn hf_folder_tokenizer_loads() {
    use tokenizers::models::wordlevel::WordLevel;
    use tokenizers::pre_tokenizers::whitespace::Whitespace;
    use tokenizers::{AddedToken, Tokenizer};

    let vocab: HashMap<String, u32> = [
        ("<s>", 0),
        ("</s>", 1),
        ("<unk>", 2),
        ("hello", 3),
        ("world", 4),
        ("<|end|>", 5),
    ]
    .into_iter()
    .map(|(token, id)| (token.to_string(), id))
    .collect();
    let model = WordLevel::builder()
        .vocab(vocab.into_iter().collect())
        .unk_token("<unk>".to_string())
        .build()
        .expect("word-level model");
    let mut built = Tokenizer::new(model);
    built.with_pre_tokenizer(Some(Whitespace {}));
    built
        .add_special_tokens(["<s>", "</s>", "<|end|>"].map(|t| AddedToken::from(t, true)))
        .expect("add special tokens");

    let dir = tempfile::tempdir().expect("temp dir");
    built
        .save(dir.path().join("tokenizer.json"), false)
        .expect("save tokenizer.json");
    let config = serde_json::json!({
        "bos_token": {"content": "<s>", "lstrip": false},
        "eos_token": "</s>",
        "add_bos_token": true,
        "chat_template": "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content.strip() }}{{ eos_token }}\n{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}",
    });
    std::fs::write(dir.path().join("tokenizer_config.json"), config.to_string())
        .expect("write config");
    std::fs::write(
        dir.path().join("generation_config.json"),
        r#"{"bos_token_id": 0, "eos_token_id": [1, 5]}"#,
    )
    .expect("write generation config");

    let tokenizer = TextTokenizer::from_hf_folder(dir.path()).expect("load folder");
    assert_eq!(
        tokenizer.encode("hello world").expect("encode"),
        vec![0, 3, 4],
        "BOS then words"
    );
    assert_eq!(
        tokenizer.encode("hello<|end|>").expect("encode"),
        vec![0, 3, 5],
        "special token matched in text"
    );
    assert_eq!(
        tokenizer.encode_without_bos("hello").expect("encode"),
        vec![3],
        "no BOS"
    );
    assert_eq!(
        tokenizer.eos_ids(),
        &[1, 5],
        "tokenizer eos then generation_config eos list"
    );
    assert_eq!(tokenizer.bos_id(), Some(0), "bos id");
    assert_eq!(
        tokenizer.bos_token(),
        Some("<s>"),
        "bos token from an added-token object"
    );
    assert_eq!(
        tokenizer.eos_token(),
        Some("</s>"),
        "eos token from a string"
    );
    assert_eq!(tokenizer.vocab_size(), 6, "vocab size");

    let template = ChatTemplate::from_tokenizer_config(&dir.path().join("tokenizer_config.json"))
        .expect("read config")
        .expect("config has a chat_template");
    let rendered = template
        .render(
            &[
                ChatMessage::new("user", "  hello  "),
                ChatMessage::new("assistant", "world"),
            ],
            true,
        )
        .expect("render");
    assert_eq!(
        rendered, "<s>[user] hello</s>\n[assistant] world</s>\n[assistant]",
        "rendered chat"
    );
}

#[test]
fn hf_folder_without_tokenizer_json_fails() {
    let dir = tempfile::tempdir().expect("temp dir");
    let error = TextTokenizer::from_hf_folder(dir.path()).expect_err("no tokenizer.json");
    match error {
        ModelError::Io { path, .. } => assert!(
            path.ends_with("tokenizer.json"),
            "error names {}",
            path.display()
        ),
        other => panic!("expected ModelError::Io, got {other:?}"),
    }
}

#[test]
fn tokenizer_config_template_list_uses_default() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("tokenizer_config.json");
    let config = serde_json::json!({
        "chat_template": [
            {"name": "tool_use", "template": "tools"},
            {"name": "default", "template": "{{ messages[0].content }}"},
        ],
    });
    std::fs::write(&path, config.to_string()).expect("write config");

    let template = ChatTemplate::from_tokenizer_config(&path)
        .expect("read")
        .expect("has template");
    assert_eq!(
        template.source(),
        "{{ messages[0].content }}",
        "the template named default"
    );

    std::fs::write(&path, "{}").expect("write config");
    let template = ChatTemplate::from_tokenizer_config(&path).expect("read");
    assert!(template.is_none(), "no chat_template key gives None");
}

#[test]
fn chat_template_trims_blocks_like_transformers() {
    // transformers renders with Jinja2 trim_blocks and lstrip_blocks on and
    // keep_trailing_newline off, so the newline after a block tag, the indentation
    // before it and the final newline of the source all disappear.
    let source = "{% for m in messages %}\n  {% if m.role == 'user' %}\n{{ m.content }}\n  {% endif %}\n{% endfor %}\n";
    let template = ChatTemplate::new(source.to_string(), None, None);
    let messages = [
        ChatMessage::new("user", "a"),
        ChatMessage::new("assistant", "x"),
        ChatMessage::new("user", "b"),
    ];
    assert_eq!(template.render(&messages, false).expect("render"), "a\nb\n");
}

#[test]
fn chat_template_missing_tokens_render_empty() {
    let template = ChatTemplate::new(
        "[{{ bos_token }}]{{ messages[0].content }}[{{ eos_token }}]".to_string(),
        None,
        None,
    );
    let rendered = template
        .render(&[ChatMessage::new("user", "hi")], false)
        .expect("render");
    assert_eq!(
        rendered, "[]hi[]",
        "absent bos/eos tokens are undefined, not \"none\""
    );

    let template = template.with_special_tokens(Some("<s>"), Some("</s>"));
    let rendered = template
        .render(&[ChatMessage::new("user", "hi")], false)
        .expect("render");
    assert_eq!(
        rendered, "[<s>]hi[</s>]",
        "tokens set by with_special_tokens"
    );
}

#[test]
fn chat_template_error_names_problem() {
    let messages = [ChatMessage::new("system", "be brief")];

    let raising = ChatTemplate::new(
        "{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}".to_string(),
        None,
        None,
    );
    match raising.render(&messages, true) {
        Err(ModelError::ChatTemplate(message)) => {
            assert!(
                message.contains("System role not supported"),
                "message carries the exception text: {message}"
            )
        }
        other => panic!("expected ModelError::ChatTemplate, got {other:?}"),
    }

    let unclosed = ChatTemplate::new(
        "{% for m in messages %}{{ m.content }}".to_string(),
        None,
        None,
    );
    match unclosed.render(&messages, true) {
        Err(ModelError::ChatTemplate(message)) => {
            assert!(
                message.contains("failed to parse"),
                "message says parsing failed: {message}"
            );
            assert!(
                message.contains("syntax error"),
                "message names the syntax error: {message}"
            );
        }
        other => panic!("expected ModelError::ChatTemplate, got {other:?}"),
    }
}

/// Builds in-memory GGUF metadata with the given tokenizer keys.
fn gguf_content(entries: Vec<(&str, Value)>) -> Content {
    Content {
        magic: VersionedMagic::GgufV3,
        metadata: entries
            .into_iter()
            .map(|(key, value)| (key.to_string(), value))
            .collect(),
        tensor_infos: HashMap::new(),
        tensor_data_offset: 0,
    }
}

fn string_array(items: &[&str]) -> Value {
    Value::Array(items.iter().map(|s| Value::String(s.to_string())).collect())
}

#[test]
fn gguf_unknown_tokenizer_model_rejected() {
    let content = gguf_content(vec![
        ("tokenizer.ggml.model", Value::String("rwkv".to_string())),
        ("tokenizer.ggml.tokens", string_array(&["a", "b"])),
    ]);
    match TextTokenizer::from_gguf(&content, Path::new("model.gguf")) {
        Err(ModelError::Tokenizer(message)) => {
            assert!(
                message.contains("\"rwkv\""),
                "message names the model value: {message}"
            );
            assert!(
                message.contains("gpt2"),
                "message lists the supported models: {message}"
            );
        }
        other => panic!(
            "expected ModelError::Tokenizer, got {:?}",
            other.map(|_| "a tokenizer")
        ),
    }
}

#[test]
fn gguf_missing_tokens_is_invalid_gguf() {
    let content = gguf_content(vec![(
        "tokenizer.ggml.model",
        Value::String("gpt2".to_string()),
    )]);
    match TextTokenizer::from_gguf(&content, Path::new("model.gguf")) {
        Err(ModelError::InvalidGguf { reason, .. }) => {
            assert!(
                reason.contains("tokenizer.ggml.tokens"),
                "reason names the key: {reason}"
            )
        }
        other => panic!(
            "expected ModelError::InvalidGguf, got {:?}",
            other.map(|_| "a tokenizer")
        ),
    }
}

/// Builds a small "llama" (SentencePiece) vocabulary of <unk>, <s>, </s>, the 256 byte
/// tokens, then normal pieces whose scores decide the merge order.
fn sentencepiece_content() -> Content {
    let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
    let mut scores = vec![0.0f32; 3];
    let mut types = vec![2i32, 3, 3];
    for byte in 0..=255u8 {
        tokens.push(format!("<0x{byte:02X}>"));
        scores.push(0.0);
        types.push(6);
    }
    let pieces = [
        "\u{2581}",
        "h",
        "e",
        "l",
        "o",
        "w",
        "r",
        "d",
        "ll",
        "he",
        "hell",
        "hello",
        "\u{2581}hello",
        "\u{2581}w",
        "or",
        "\u{2581}wor",
        "\u{2581}world",
        "ld",
    ];
    for (rank, piece) in pieces.iter().enumerate() {
        tokens.push(piece.to_string());
        scores.push(-1.0 - rank as f32);
        types.push(1);
    }

    let token_refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
    gguf_content(vec![
        ("tokenizer.ggml.model", Value::String("llama".to_string())),
        ("tokenizer.ggml.tokens", string_array(&token_refs)),
        (
            "tokenizer.ggml.scores",
            Value::Array(scores.into_iter().map(Value::F32).collect()),
        ),
        (
            "tokenizer.ggml.token_type",
            Value::Array(types.into_iter().map(Value::I32).collect()),
        ),
        ("tokenizer.ggml.bos_token_id", Value::U32(1)),
        ("tokenizer.ggml.eos_token_id", Value::U32(2)),
        ("tokenizer.ggml.unknown_token_id", Value::U32(0)),
        ("tokenizer.ggml.add_bos_token", Value::Bool(true)),
    ])
}

#[test]
fn gguf_sentencepiece_tokenizer_encodes() {
    let tokenizer =
        TextTokenizer::from_gguf(&sentencepiece_content(), Path::new("spm.gguf")).expect("build");
    let id = |piece: &str| {
        tokenizer
            .token_to_id(piece)
            .unwrap_or_else(|| panic!("{piece:?} in vocab"))
    };

    let ids = tokenizer.encode("hello world").expect("encode");
    assert_eq!(
        ids,
        vec![1, id("\u{2581}hello"), id("\u{2581}world")],
        "BOS, then merged words"
    );

    // "é" is not in the vocabulary, so it falls back to its UTF-8 bytes C3 A9.
    let ids = tokenizer.encode_without_bos("hello é").expect("encode");
    assert_eq!(
        ids,
        vec![
            id("\u{2581}hello"),
            id("\u{2581}"),
            id("<0xC3>"),
            id("<0xA9>")
        ],
        "byte fallback"
    );
    assert_eq!(
        tokenizer.decode(&ids, false).expect("decode"),
        "hello é",
        "decode strips the prefix space"
    );

    assert_eq!(
        tokenizer.token_text(id("\u{2581}world")),
        " world",
        "token text keeps the word space"
    );
    assert_eq!(tokenizer.eos_ids(), &[2], "eos ids");
    assert_eq!(tokenizer.bos_token(), Some("<s>"), "bos token string");
}

/// Builds a byte-level BPE ("gpt2") vocabulary of digits whose first merge is "3 4", so
/// the digit grouping of the pre-tokenizer decides the ids.
fn digit_bpe_content(pre: &str) -> Content {
    gguf_content(vec![
        ("tokenizer.ggml.model", Value::String("gpt2".to_string())),
        ("tokenizer.ggml.pre", Value::String(pre.to_string())),
        (
            "tokenizer.ggml.tokens",
            string_array(&["1", "2", "3", "4", "12", "34", "123"]),
        ),
        (
            "tokenizer.ggml.merges",
            string_array(&["3 4", "1 2", "12 3"]),
        ),
        (
            "tokenizer.ggml.token_type",
            Value::Array(vec![Value::I32(1); 7]),
        ),
    ])
}

#[test]
fn gguf_pre_tokenizer_groups_digits() {
    // Expected pieces of "1234" for each tokenizer.ggml.pre value.
    let cases: [(&str, &[&str]); 6] = [
        ("smollm", &["1", "2", "3", "4"]),
        ("qwen2", &["1", "2", "3", "4"]),
        ("llama-bpe", &["123", "4"]),
        ("gpt2", &["12", "34"]),
        ("default", &["12", "34"]),
        ("no-such-pre", &["12", "34"]),
    ];
    for (pre, expected) in cases {
        let tokenizer = TextTokenizer::from_gguf(&digit_bpe_content(pre), Path::new("digits.gguf"))
            .unwrap_or_else(|e| panic!("build tokenizer with pre {pre:?}: {e}"));
        let ids = tokenizer.encode("1234").expect("encode");
        let pieces: Vec<String> = ids.iter().map(|&id| tokenizer.token_text(id)).collect();
        assert_eq!(pieces, expected, "pieces of \"1234\" with pre {pre:?}");
    }
}

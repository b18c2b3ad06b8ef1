//! The text tokenizer of a base model, built either from the metadata of a GGUF file or
//! from the `tokenizer.json` of a Hugging Face model folder.
//!
//! The GGUF pipeline is assembled here from the `tokenizer.ggml.*` keys instead of using
//! candle-transformers' `TokenizerFromGguf`, because that one gives wrong ids for
//! SmolLM2 (`tokenizer.ggml.pre = "smollm"`). It adds a leading space, emits a stray byte
//! token after special tokens and does not split digits.

use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value};
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip as StripDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::{Prepend, Replace, Sequence as NormalizerSequence};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence as PreTokenizerSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{
    AddedToken, DecoderWrapper, NormalizerWrapper, PreTokenizerWrapper, SplitDelimiterBehavior,
    Tokenizer,
};

use super::error::{ModelError, Result};

/// GGUF `tokenizer.ggml.token_type` values, as defined by llama.cpp's `llama_token_type`.
const TOKEN_TYPE_NORMAL: i64 = 1;
const TOKEN_TYPE_CONTROL: i64 = 3;
const TOKEN_TYPE_USER_DEFINED: i64 = 4;

/// The SentencePiece word-boundary marker (U+2581) that replaces spaces in "llama" vocabularies.
const SPIECE_UNDERLINE: &str = "\u{2581}";

/// Pre-tokenizer regex of Llama 3 (`tokenizer.ggml.pre = "llama-bpe"`), copied from its
/// `tokenizer.json`. Numbers are split into groups of up to three digits.
const LLAMA3_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Pre-tokenizer regex of Qwen2 (`tokenizer.ggml.pre = "qwen2"`), copied from its
/// `tokenizer.json`. Every digit is its own pre-token.
const QWEN2_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// A tokenizer plus the special-token facts that generation and chat templates need.
#[derive(Clone, Debug)]
pub struct TextTokenizer {
    inner: Tokenizer,
    vocab_size: usize,
    bos_id: Option<u32>,
    bos_token: Option<String>,
    eos_token: Option<String>,
    eos_ids: Vec<u32>,
    pad_id: Option<u32>,
    add_bos: bool,
}

impl TextTokenizer {
    /// Builds the tokenizer described by the `tokenizer.ggml.*` metadata of a GGUF file.
    ///
    /// `path` is only used in error messages. Supported `tokenizer.ggml.model` values are
    /// "gpt2" (byte-level BPE) and "llama" (SentencePiece BPE with byte fallback).
    pub fn from_gguf(content: &Content, path: &Path) -> Result<Self> {
        let metadata = GgufMetadata { content, path };

        let model = metadata.required_string("tokenizer.ggml.model")?;
        let tokens = metadata.required_string_array("tokenizer.ggml.tokens")?;
        let token_types = match metadata.get("tokenizer.ggml.token_type") {
            Some(value) => metadata.integer_array("tokenizer.ggml.token_type", value)?,
            None => Vec::new(),
        };
        if !token_types.is_empty() && token_types.len() != tokens.len() {
            return Err(metadata.invalid(format!(
                "tokenizer.ggml.token_type has {} entries but tokenizer.ggml.tokens has {}",
                token_types.len(),
                tokens.len()
            )));
        }

        let bos_id = metadata.optional_u32("tokenizer.ggml.bos_token_id")?;
        let eos_id = metadata.optional_u32("tokenizer.ggml.eos_token_id")?;
        let pad_id = metadata.optional_u32("tokenizer.ggml.padding_token_id")?;
        let unknown_id = metadata.optional_u32("tokenizer.ggml.unknown_token_id")?;
        for (key, id) in [
            ("tokenizer.ggml.bos_token_id", bos_id),
            ("tokenizer.ggml.eos_token_id", eos_id),
            ("tokenizer.ggml.padding_token_id", pad_id),
            ("tokenizer.ggml.unknown_token_id", unknown_id),
        ] {
            if let Some(id) = id.filter(|&id| id as usize >= tokens.len()) {
                return Err(metadata.invalid(format!(
                    "{key} is {id} but the vocabulary has only {} tokens",
                    tokens.len()
                )));
            }
        }

        let mut inner = match model {
            "gpt2" => {
                let merges = metadata.required_string_array("tokenizer.ggml.merges")?;
                let pre = metadata.optional_string("tokenizer.ggml.pre")?.unwrap_or("default");
                build_byte_level_bpe(&tokens, &merges, pre).map_err(|e| metadata.invalid(e))?
            }
            "llama" => {
                let scores = match metadata.get("tokenizer.ggml.scores") {
                    Some(value) => metadata.float_array("tokenizer.ggml.scores", value)?,
                    None => {
                        return Err(metadata.invalid(
                            "tokenizer.ggml.scores is missing; a \"llama\" tokenizer needs a score per token"
                                .to_string(),
                        ))
                    }
                };
                if scores.len() != tokens.len() {
                    return Err(metadata.invalid(format!(
                        "tokenizer.ggml.scores has {} entries but tokenizer.ggml.tokens has {}",
                        scores.len(),
                        tokens.len()
                    )));
                }
                let add_space_prefix = metadata
                    .optional_bool("tokenizer.ggml.add_space_prefix")?
                    .unwrap_or(true);
                let unknown_token = unknown_id.map(|id| tokens[id as usize].as_str());
                build_sentencepiece_bpe(&tokens, &scores, &token_types, unknown_token, add_space_prefix)
                    .map_err(|e| metadata.invalid(e))?
            }
            other => {
                return Err(ModelError::Tokenizer(format!(
                    "{}: unsupported tokenizer model {other:?} in tokenizer.ggml.model. Supported models: \"gpt2\" (byte-level BPE) and \"llama\" (SentencePiece BPE)",
                    path.display()
                )))
            }
        };

        add_typed_special_tokens(&mut inner, &tokens, &token_types)
            .map_err(|e| metadata.invalid(e))?;

        // End-of-turn and end-of-message tokens (Llama 3 chat models) also end generation.
        let mut eos_ids = Vec::new();
        for key in [
            "tokenizer.ggml.eos_token_id",
            "tokenizer.ggml.eot_token_id",
            "tokenizer.ggml.eom_token_id",
        ] {
            if let Some(id) = metadata.optional_u32(key)? {
                push_unique(&mut eos_ids, id);
            }
        }

        Ok(Self {
            inner,
            vocab_size: tokens.len(),
            bos_id,
            bos_token: bos_id.map(|id| tokens[id as usize].clone()),
            eos_token: eos_id.map(|id| tokens[id as usize].clone()),
            eos_ids,
            pad_id,
            add_bos: metadata
                .optional_bool("tokenizer.ggml.add_bos_token")?
                .unwrap_or(false),
        })
    }

    /// Loads `tokenizer.json` from a Hugging Face model folder, with the special tokens of
    /// the optional `tokenizer_config.json` and `generation_config.json` beside it.
    ///
    /// When `tokenizer_config.json` has no `add_bos_token`, BOS is added exactly when the
    /// post-processor of `tokenizer.json` would add it (as Llama 3's does).
    pub fn from_hf_folder(dir: &Path) -> Result<Self> {
        let tokenizer_path = dir.join("tokenizer.json");
        let bytes = std::fs::read(&tokenizer_path).map_err(|source| ModelError::Io {
            path: tokenizer_path.clone(),
            source,
        })?;
        let inner = Tokenizer::from_bytes(&bytes).map_err(|e| {
            ModelError::Tokenizer(format!("failed to parse {}: {e}", tokenizer_path.display()))
        })?;

        let config = read_optional_json(&dir.join("tokenizer_config.json"))?;
        let generation = read_optional_json(&dir.join("generation_config.json"))?;
        let config_token = |key: &str| config.as_ref().and_then(|c| special_token_text(&c[key]));
        let generation_ids = |key: &str| {
            generation
                .as_ref()
                .map(|g| token_ids(&g[key]))
                .unwrap_or_default()
        };

        let id_to_token = |id: u32| inner.id_to_token(id);
        let bos_token = config_token("bos_token").or_else(|| {
            generation_ids("bos_token_id")
                .first()
                .and_then(|&id| id_to_token(id))
        });
        let bos_id = bos_token
            .as_deref()
            .and_then(|token| inner.token_to_id(token))
            .or_else(|| generation_ids("bos_token_id").first().copied());

        let generation_eos_ids = generation_ids("eos_token_id");
        let eos_token = config_token("eos_token")
            .or_else(|| generation_eos_ids.first().and_then(|&id| id_to_token(id)));
        let mut eos_ids = Vec::new();
        if let Some(id) = eos_token
            .as_deref()
            .and_then(|token| inner.token_to_id(token))
        {
            push_unique(&mut eos_ids, id);
        }
        for id in generation_eos_ids {
            push_unique(&mut eos_ids, id);
        }

        let pad_id = config_token("pad_token")
            .and_then(|token| inner.token_to_id(&token))
            .or_else(|| generation_ids("pad_token_id").first().copied());

        let add_bos = match config.as_ref().and_then(|c| c["add_bos_token"].as_bool()) {
            Some(add_bos) => add_bos,
            None => {
                let with_special = inner.encode("", true).map_err(|e| {
                    ModelError::Tokenizer(format!(
                        "{}: the post-processor failed on empty text: {e}",
                        tokenizer_path.display()
                    ))
                })?;
                bos_id.is_some() && with_special.get_ids().first().copied() == bos_id
            }
        };

        Ok(Self {
            vocab_size: inner.get_vocab_size(true),
            inner,
            bos_id,
            bos_token,
            eos_token,
            eos_ids,
            pad_id,
            add_bos,
        })
    }

    /// Encodes `text`, matching special-token strings in it as single tokens, and prepends
    /// BOS only when the tokenizer config enables `add_bos_token`. No other token is added.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        if self.add_bos {
            if let Some(bos_id) = self.bos_id {
                ids.push(bos_id);
            }
        }
        ids.extend(self.encode_without_bos(text)?);
        Ok(ids)
    }

    /// Encodes `text` like [`Self::encode`] but never prepends BOS. Use it for text that
    /// continues a sequence or already starts with the BOS string, such as a rendered chat.
    pub fn encode_without_bos(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .inner
            .encode(text, false)
            .map_err(|e| ModelError::Tokenizer(format!("failed to encode text: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Decodes `ids` to text, leaving out special tokens when `skip_special` is set.
    /// Ids outside the vocabulary are skipped.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special)
            .map_err(|e| ModelError::Tokenizer(format!("failed to decode ids {ids:?}: {e}")))
    }

    /// Decodes one token for display, such as " Paris". A token that holds only part of
    /// a UTF-8 character shows as U+FFFD, and an id outside the vocabulary as "".
    pub fn token_text(&self, id: u32) -> String {
        let text = self.inner.decode(&[id], false).unwrap_or_default();
        // SentencePiece decoders strip the space of the first word, which is wrong for a
        // single token shown on its own.
        let starts_word = self
            .inner
            .id_to_token(id)
            .is_some_and(|token| token.starts_with(SPIECE_UNDERLINE));
        if starts_word && !text.starts_with(' ') {
            format!(" {text}")
        } else {
            text
        }
    }

    /// Returns every id that ends generation: the tokenizer's EOS, then the EOS ids of
    /// `generation_config.json` (or GGUF end-of-turn ids), without duplicates.
    pub fn eos_ids(&self) -> &[u32] {
        &self.eos_ids
    }

    pub fn bos_id(&self) -> Option<u32> {
        self.bos_id
    }

    pub fn pad_id(&self) -> Option<u32> {
        self.pad_id
    }

    /// Returns whether [`Self::encode`] prepends BOS.
    pub fn adds_bos(&self) -> bool {
        self.add_bos
    }

    /// Returns the BOS token string, as chat templates receive it in `bos_token`.
    pub fn bos_token(&self) -> Option<&str> {
        self.bos_token.as_deref()
    }

    /// Returns the EOS token string, as chat templates receive it in `eos_token`.
    pub fn eos_token(&self) -> Option<&str> {
        self.eos_token.as_deref()
    }

    /// Returns the number of token ids, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }
}

/// Typed access to GGUF metadata, with errors that name the file and the key.
struct GgufMetadata<'a> {
    content: &'a Content,
    path: &'a Path,
}

impl GgufMetadata<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        self.content.metadata.get(key)
    }

    fn invalid(&self, reason: String) -> ModelError {
        ModelError::InvalidGguf {
            path: self.path.to_path_buf(),
            reason,
        }
    }

    fn wrong_type(&self, key: &str, expected: &str, found: &Value) -> ModelError {
        self.invalid(format!(
            "metadata key {key} has type {:?}, expected {expected}",
            found.value_type()
        ))
    }

    fn required_string(&self, key: &str) -> Result<&str> {
        self.optional_string(key)?
            .ok_or_else(|| self.invalid(format!("metadata key {key} is missing")))
    }

    fn optional_string(&self, key: &str) -> Result<Option<&str>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.wrong_type(key, "string", other)),
        }
    }

    fn optional_bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.wrong_type(key, "bool", other)),
        }
    }

    fn optional_u32(&self, key: &str) -> Result<Option<u32>> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => integer_value(value)
                .and_then(|v| u32::try_from(v).ok())
                .map(Some)
                .ok_or_else(|| self.wrong_type(key, "unsigned 32-bit integer", value)),
        }
    }

    fn required_string_array(&self, key: &str) -> Result<Vec<String>> {
        let value = self
            .get(key)
            .ok_or_else(|| self.invalid(format!("metadata key {key} is missing")))?;
        let Value::Array(items) = value else {
            return Err(self.wrong_type(key, "array of strings", value));
        };
        items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                other => Err(self.wrong_type(key, "array of strings", other)),
            })
            .collect()
    }

    fn integer_array(&self, key: &str, value: &Value) -> Result<Vec<i64>> {
        let Value::Array(items) = value else {
            return Err(self.wrong_type(key, "array of integers", value));
        };
        items
            .iter()
            .map(|item| {
                integer_value(item).ok_or_else(|| self.wrong_type(key, "array of integers", item))
            })
            .collect()
    }

    fn float_array(&self, key: &str, value: &Value) -> Result<Vec<f64>> {
        let Value::Array(items) = value else {
            return Err(self.wrong_type(key, "array of floats", value));
        };
        items
            .iter()
            .map(|item| match item {
                Value::F32(v) => Ok(f64::from(*v)),
                Value::F64(v) => Ok(*v),
                other => Err(self.wrong_type(key, "array of floats", other)),
            })
            .collect()
    }
}

fn integer_value(value: &Value) -> Option<i64> {
    match value {
        Value::U8(v) => Some(i64::from(*v)),
        Value::I8(v) => Some(i64::from(*v)),
        Value::U16(v) => Some(i64::from(*v)),
        Value::I16(v) => Some(i64::from(*v)),
        Value::U32(v) => Some(i64::from(*v)),
        Value::I32(v) => Some(i64::from(*v)),
        Value::U64(v) => i64::try_from(*v).ok(),
        Value::I64(v) => Some(*v),
        _ => None,
    }
}

/// Maps each token string to its index. Only the first of duplicate strings gets an id,
/// because a BPE vocabulary is keyed by string.
fn vocab_from_tokens(tokens: &[String]) -> Vocab {
    let mut vocab = Vocab::default();
    let mut duplicates = 0usize;
    for (id, token) in tokens.iter().enumerate() {
        if vocab.contains_key(token) {
            duplicates += 1;
        } else {
            vocab.insert(token.clone(), id as u32);
        }
    }
    if duplicates > 0 {
        tracing::warn!(
            duplicates,
            "GGUF vocabulary repeats token strings; the repeated ids can be decoded but never produced by encoding"
        );
    }
    vocab
}

/// Builds a GPT-2 style byte-level BPE tokenizer whose pre-tokenizer follows the
/// llama.cpp pre-tokenizer family named by `tokenizer.ggml.pre`.
fn build_byte_level_bpe(
    tokens: &[String],
    merges: &[String],
    pre: &str,
) -> std::result::Result<Tokenizer, String> {
    let merges = merges
        .iter()
        .map(|merge| {
            merge
                .split_once(' ')
                .map(|(left, right)| (left.to_string(), right.to_string()))
                .ok_or_else(|| format!("tokenizer.ggml.merges entry {merge:?} is not two tokens separated by a space"))
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;

    let byte_level_with_regex = || PreTokenizerWrapper::from(ByteLevel::new(false, true, true));
    let split_then_byte_level =
        |pattern: &str| -> std::result::Result<PreTokenizerWrapper, String> {
            let split = Split::new(
                SplitPattern::Regex(pattern.to_string()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .map_err(|e| format!("invalid pre-tokenizer regex: {e}"))?;
            Ok(PreTokenizerSequence::new(vec![
                split.into(),
                ByteLevel::new(false, true, false).into(),
            ])
            .into())
        };

    let mut ignore_merges = false;
    let pre_tokenizer = match pre {
        "default" | "gpt2" | "gpt-2" => byte_level_with_regex(),
        // The GPT-2 regex after splitting every digit on its own, as in SmolLM2's and
        // StarCoder's tokenizer.json.
        "smollm" | "starcoder" | "refact" => {
            PreTokenizerSequence::new(vec![Digits::new(true).into(), byte_level_with_regex()])
                .into()
        }
        "llama-bpe" | "llama3" => {
            // Llama 3's tokenizer.json sets ignore_merges: a pre-token that is already in
            // the vocabulary is kept whole.
            ignore_merges = true;
            split_then_byte_level(LLAMA3_PATTERN)?
        }
        "qwen2" => split_then_byte_level(QWEN2_PATTERN)?,
        other => {
            tracing::warn!(
                pre = other,
                "unknown tokenizer.ggml.pre value; using the GPT-2 pre-tokenizer, so token ids may differ from the reference tokenizer"
            );
            byte_level_with_regex()
        }
    };

    let model = BPE::builder()
        .vocab_and_merges(vocab_from_tokens(tokens), merges)
        .ignore_merges(ignore_merges)
        .build()
        .map_err(|e| format!("invalid BPE vocabulary or merges: {e}"))?;

    let mut tokenizer = Tokenizer::new(model);
    tokenizer.with_pre_tokenizer(Some(pre_tokenizer));
    tokenizer.with_decoder(Some(ByteLevel::new(false, true, true)));
    Ok(tokenizer)
}

/// Builds a SentencePiece BPE tokenizer with byte fallback from a "llama" GGUF vocabulary,
/// which has a score per token and no merge list.
///
/// The merges are derived the way Hugging Face's `SentencePieceExtractor` does: every
/// split of a normal token into two vocabulary tokens is a merge, ranked by the score of
/// the merged token. BPE with those ranks merges the same pairs as SentencePiece.
fn build_sentencepiece_bpe(
    tokens: &[String],
    scores: &[f64],
    token_types: &[i64],
    unknown_token: Option<&str>,
    add_space_prefix: bool,
) -> std::result::Result<Tokenizer, String> {
    let vocab = vocab_from_tokens(tokens);
    let is_normal = |id: usize| token_types.get(id).is_none_or(|&t| t == TOKEN_TYPE_NORMAL);
    let normal_id = |piece: &str| {
        vocab
            .get(piece)
            .map(|&id| id as usize)
            .filter(|&id| is_normal(id))
    };

    let mut ranked_merges: Vec<(f64, u32, u32)> = Vec::new();
    for (id, token) in tokens.iter().enumerate() {
        if !is_normal(id) || vocab.get(token) != Some(&(id as u32)) {
            continue;
        }
        let mut local = Vec::new();
        for (split, _) in token.char_indices().skip(1) {
            if let (Some(left), Some(right)) =
                (normal_id(&token[..split]), normal_id(&token[split..]))
            {
                local.push((scores[id], left as u32, right as u32));
            }
        }
        local.sort_by_key(|&(_, left, right)| (left, right));
        ranked_merges.extend(local);
    }
    // Stable sort: merges that build the same token keep their (left id, right id) order.
    ranked_merges.sort_by(|a, b| b.0.total_cmp(&a.0));
    let merges = ranked_merges
        .into_iter()
        .map(|(_, left, right)| {
            (
                tokens[left as usize].clone(),
                tokens[right as usize].clone(),
            )
        })
        .collect();

    let mut builder = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .byte_fallback(true)
        .fuse_unk(true);
    if let Some(unknown) = unknown_token {
        builder = builder.unk_token(unknown.to_string());
    }
    let model = builder
        .build()
        .map_err(|e| format!("invalid SentencePiece vocabulary: {e}"))?;

    // NOTE: this is the "legacy" Llama behaviour of Hugging Face's LlamaTokenizerFast,
    // which prefixes a space to the text after every special token as well as at the
    // start. Non-legacy Hugging Face tokenizers prefix it only at the start.
    let mut normalizers: Vec<NormalizerWrapper> = Vec::new();
    if add_space_prefix {
        normalizers.push(Prepend::new(SPIECE_UNDERLINE.to_string()).into());
    }
    normalizers.push(
        Replace::new(" ", SPIECE_UNDERLINE)
            .map_err(|e| format!("invalid normalizer: {e}"))?
            .into(),
    );

    let mut decoders: Vec<DecoderWrapper> = vec![
        Replace::new(SPIECE_UNDERLINE, " ")
            .map_err(|e| format!("invalid decoder: {e}"))?
            .into(),
        ByteFallback::new().into(),
        Fuse::new().into(),
    ];
    if add_space_prefix {
        decoders.push(StripDecoder::new(' ', 1, 0).into());
    }

    let mut tokenizer = Tokenizer::new(model);
    tokenizer
        .with_normalizer(Some(NormalizerSequence::new(normalizers)))
        .map_err(|e| format!("invalid normalizer: {e}"))?;
    tokenizer.with_decoder(Some(DecoderSequence::new(decoders)));
    Ok(tokenizer)
}

/// Registers control tokens as special tokens and user-defined tokens as plain added
/// tokens. Both are matched verbatim in input text before the model runs, but only
/// control tokens are dropped by `decode(.., skip_special = true)`.
fn add_typed_special_tokens(
    tokenizer: &mut Tokenizer,
    tokens: &[String],
    token_types: &[i64],
) -> std::result::Result<(), String> {
    let mut control = Vec::new();
    let mut user_defined = Vec::new();
    for (token, &token_type) in tokens.iter().zip(token_types) {
        if token.is_empty() {
            continue;
        }
        match token_type {
            TOKEN_TYPE_CONTROL => {
                control.push(AddedToken::from(token.clone(), true).normalized(false))
            }
            TOKEN_TYPE_USER_DEFINED => {
                user_defined.push(AddedToken::from(token.clone(), false).normalized(false))
            }
            _ => {}
        }
    }
    tokenizer
        .add_special_tokens(control)
        .map_err(|e| format!("failed to add control tokens: {e}"))?;
    tokenizer
        .add_tokens(user_defined)
        .map_err(|e| format!("failed to add user-defined tokens: {e}"))?;
    Ok(())
}

fn push_unique(ids: &mut Vec<u32>, id: u32) {
    if !ids.contains(&id) {
        ids.push(id);
    }
}

/// Reads a JSON file that may be absent. A file that exists but cannot be read or parsed
/// is an error.
fn read_optional_json(path: &Path) -> Result<Option<serde_json::Value>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ModelError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| ModelError::InvalidConfig {
            path: path.to_path_buf(),
            reason: format!("invalid JSON: {e}"),
        })
}

/// Reads a special token from `tokenizer_config.json`, where it is either a string or an
/// added-token object such as `{"content": "<s>", ...}`.
pub(crate) fn special_token_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(map) => map
            .get("content")
            .and_then(|c| c.as_str())
            .map(str::to_string),
        _ => None,
    }
}

/// Reads a token id field of `generation_config.json`, which is an integer or a list.
fn token_ids(value: &serde_json::Value) -> Vec<u32> {
    let as_id = |v: &serde_json::Value| v.as_u64().and_then(|id| u32::try_from(id).ok());
    match value {
        serde_json::Value::Array(items) => items.iter().filter_map(as_id).collect(),
        other => as_id(other).into_iter().collect(),
    }
}

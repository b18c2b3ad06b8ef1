//! Row formats: which keys mark each format, and how a row of each format becomes the
//! input messages and the target of an example.

use serde_json::Value;

use super::dataset::RowFormat;
use super::rows::{type_name, Field, Row};
use super::template::PromptTemplate;
use crate::model::chat_template::ChatMessage;

/// Keys that mark a chat-messages row; the value is a list of turns.
const MESSAGES_KEYS: [&str; 2] = ["messages", "conversations"];

/// Key pairs that mark a prompt/response row, in order of preference. `input`/`output`
/// only counts when there is no `instruction`, which makes the row alpaca.
const PROMPT_RESPONSE_KEYS: [(&str, &str); 4] = [
    ("prompt", "response"),
    ("prompt", "completion"),
    ("question", "answer"),
    ("input", "output"),
];

const TEXT_KEYS: [&str; 4] = ["text", "sentence", "review", "content"];
const LABEL_KEYS: [&str; 3] = ["label", "labels", "category"];

/// A row's fault, before the file and line are attached.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RowIssue {
    pub field: Option<String>,
    pub message: String,
}

impl RowIssue {
    fn new(field: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            field: field.map(str::to_string),
            message: message.into(),
        }
    }
}

/// A row's input messages and target.
pub(crate) type Converted = (Vec<ChatMessage>, String);

/// One key that every row of a file must have, fixed by the first row that fits a format.
#[derive(Clone, Debug, PartialEq)]
struct RequiredKey {
    /// Use of the value: prompt, response, messages, text or label.
    role: &'static str,
    /// The matched key, lowercased.
    key: String,
    /// The key as spelled in the first matching row.
    name: String,
}

/// The format of a file and the keys its rows are read from.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Layout {
    pub format: RowFormat,
    required: Vec<RequiredKey>,
    /// Optional keys (role, key), read from each row when present.
    optional: Vec<(&'static str, &'static str)>,
}

impl Layout {
    /// Detects the layout that `row`'s keys fit, or returns `None`. The checks run in the order messages,
    /// alpaca, prompt/response, text/label, so a row with both `instruction`/`output` and
    /// `text`/`label` is alpaca.
    pub fn detect(row: &Row) -> Option<Self> {
        let required = |pairs: &[(&'static str, &str)]| -> Vec<RequiredKey> {
            pairs
                .iter()
                .map(|(role, key)| RequiredKey {
                    role,
                    key: key.to_string(),
                    name: row
                        .get(key)
                        .map_or_else(|| key.to_string(), |f| f.name.clone()),
                })
                .collect()
        };

        if let Some(key) = MESSAGES_KEYS.into_iter().find(|key| row.has(key)) {
            return Some(Self {
                format: RowFormat::Messages,
                required: required(&[("messages", key)]),
                optional: vec![("system", "system")],
            });
        }
        if row.has("instruction") && row.has("output") {
            return Some(Self {
                format: RowFormat::Alpaca,
                required: required(&[("prompt", "instruction"), ("response", "output")]),
                optional: vec![("input", "input"), ("system", "system")],
            });
        }
        let prompt_response = PROMPT_RESPONSE_KEYS
            .into_iter()
            .find(|(prompt, response)| row.has(prompt) && row.has(response));
        if let Some((prompt, response)) = prompt_response {
            return Some(Self {
                format: RowFormat::PromptResponse,
                required: required(&[("prompt", prompt), ("response", response)]),
                optional: vec![],
            });
        }
        let text = TEXT_KEYS.into_iter().find(|key| row.has(key));
        let label = LABEL_KEYS.into_iter().find(|key| row.has(key));
        if let (Some(text), Some(label)) = (text, label) {
            return Some(Self {
                format: RowFormat::TextLabel,
                required: required(&[("text", text), ("label", label)]),
                optional: vec![],
            });
        }
        None
    }

    /// Role to key pairs for a preview: the required keys, then the optional keys that
    /// `first` (the row the layout was detected from) has, as spelled there.
    pub fn column_mapping(&self, first: &Row) -> Vec<(String, String)> {
        let mut mapping: Vec<(String, String)> = self
            .required
            .iter()
            .map(|required| (required.role.to_string(), required.name.clone()))
            .collect();
        for (role, key) in &self.optional {
            if let Some(field) = first.get(key) {
                mapping.push((role.to_string(), field.name.clone()));
            }
        }
        mapping
    }

    /// Returns the placeholders a prompt template may use with this format.
    pub fn allowed_placeholders(&self) -> &'static [&'static str] {
        match self.format {
            RowFormat::Alpaca => &["instruction", "input", "text"],
            RowFormat::PromptResponse => &["text", "input"],
            RowFormat::Messages | RowFormat::TextLabel => &["text"],
        }
    }

    /// Converts `row` to input messages and a target, applying `template` to the user text.
    pub fn convert(
        &self,
        row: &Row,
        template: Option<&PromptTemplate>,
    ) -> Result<Converted, RowIssue> {
        match self.format {
            RowFormat::Alpaca => self.convert_alpaca(row, template),
            RowFormat::Messages => self.convert_messages(row, template),
            RowFormat::PromptResponse => self.convert_prompt_response(row, template),
            RowFormat::TextLabel => self.convert_text_label(row, template),
        }
    }

    fn required_field<'r>(&self, row: &'r Row, role: &str) -> Result<&'r Field, RowIssue> {
        let required = self
            .required
            .iter()
            .find(|required| required.role == role)
            .expect("every layout has its roles' keys");
        row.get(&required.key).ok_or_else(|| {
            let all: Vec<String> = self
                .required
                .iter()
                .map(|required| format!("{:?}", required.name))
                .collect();
            RowIssue::new(
                Some(&required.name),
                format!(
                    "the field is missing; every row of this {} file needs {}",
                    self.format,
                    all.join(" and ")
                ),
            )
        })
    }

    /// The string value of a required key, which must not be empty or only spaces.
    fn required_text<'r>(&self, row: &'r Row, role: &str) -> Result<&'r str, RowIssue> {
        let field = self.required_field(row, role)?;
        let text = expect_string(field)?;
        if text.trim().is_empty() {
            return Err(RowIssue::new(
                Some(&field.name),
                format!(
                    "the value is empty; every row needs a non-empty {}",
                    field.name
                ),
            ));
        }
        Ok(text)
    }

    fn convert_alpaca(
        &self,
        row: &Row,
        template: Option<&PromptTemplate>,
    ) -> Result<Converted, RowIssue> {
        let instruction = self.required_text(row, "prompt")?;
        let output = self.required_text(row, "response")?;
        let input = optional_string(row, "input")?.unwrap_or("");
        let system = optional_string(row, "system")?;

        let text = if input.trim().is_empty() {
            instruction.to_string()
        } else {
            format!("{instruction}\n\n{input}")
        };
        let user = match template {
            Some(template) => template.render(&[
                ("instruction", instruction),
                ("input", input),
                ("text", &text),
            ]),
            None => text,
        };

        let mut messages = Vec::new();
        if let Some(system) = system.filter(|system| !system.trim().is_empty()) {
            messages.push(ChatMessage::new("system", system));
        }
        messages.push(ChatMessage::new("user", user));
        Ok((messages, output.to_string()))
    }

    fn convert_prompt_response(
        &self,
        row: &Row,
        template: Option<&PromptTemplate>,
    ) -> Result<Converted, RowIssue> {
        let prompt = self.required_text(row, "prompt")?;
        let response = self.required_text(row, "response")?;
        let user = match template {
            Some(template) => template.render(&[("text", prompt), ("input", prompt)]),
            None => prompt.to_string(),
        };
        Ok((vec![ChatMessage::new("user", user)], response.to_string()))
    }

    fn convert_text_label(
        &self,
        row: &Row,
        template: Option<&PromptTemplate>,
    ) -> Result<Converted, RowIssue> {
        let text = self.required_text(row, "text")?;
        let field = self.required_field(row, "label")?;
        let label = match &field.value {
            Value::String(label) => label.trim().to_string(),
            Value::Number(number) if number.is_i64() || number.is_u64() => number.to_string(),
            other => {
                return Err(RowIssue::new(
                    Some(&field.name),
                    format!(
                        "expected a string or an integer label, found {}",
                        describe(other)
                    ),
                ))
            }
        };
        if label.is_empty() {
            return Err(RowIssue::new(
                Some(&field.name),
                format!(
                    "the value is empty; every row needs a non-empty {}",
                    field.name
                ),
            ));
        }
        let user = match template {
            Some(template) => template.render(&[("text", text)]),
            None => text.to_string(),
        };
        Ok((vec![ChatMessage::new("user", user)], label))
    }

    /// Reads a list of `{role, content}` or ShareGPT `{from, value}` turns. A CSV cell
    /// holding the list as JSON text is accepted too. The template, if any, applies to
    /// the last user message.
    fn convert_messages(
        &self,
        row: &Row,
        template: Option<&PromptTemplate>,
    ) -> Result<Converted, RowIssue> {
        let field = self.required_field(row, "messages")?;
        let name = field.name.as_str();
        let parsed;
        let turns = match &field.value {
            Value::Array(turns) => turns,
            Value::String(text) => {
                parsed = serde_json::from_str::<Value>(text).map_err(|e| {
                    RowIssue::new(
                        Some(name),
                        format!(
                            "expected a list of messages, found text that is not valid JSON: {e}"
                        ),
                    )
                })?;
                match &parsed {
                    Value::Array(turns) => turns,
                    other => return Err(not_a_message_list(name, other)),
                }
            }
            other => return Err(not_a_message_list(name, other)),
        };
        if turns.is_empty() {
            return Err(RowIssue::new(
                Some(name),
                "the list is empty; every row needs at least a user message and the assistant's answer",
            ));
        }

        let mut messages = Vec::with_capacity(turns.len() + 1);
        for (index, turn) in turns.iter().enumerate() {
            messages.push(read_turn(&format!("{name}[{index}]"), turn)?);
        }

        let last = messages.pop().expect("the list is not empty");
        if last.role != "assistant" {
            return Err(RowIssue::new(
                Some(name),
                format!(
                    "the last message is from {}; it must be the assistant's answer, which is the target",
                    last.role
                ),
            ));
        }
        if last.content.trim().is_empty() {
            return Err(RowIssue::new(
                Some(&format!("{name}[{}]", turns.len() - 1)),
                "the value is empty; the final assistant message must be non-empty",
            ));
        }
        let Some(last_user) = messages.iter().rposition(|message| message.role == "user") else {
            return Err(RowIssue::new(
                Some(name),
                "no user message precedes the final assistant message",
            ));
        };

        if let Some(template) = template {
            let content = template.render(&[("text", &messages[last_user].content)]);
            messages[last_user].content = content;
        }
        let system = optional_string(row, "system")?;
        if let Some(system) = system.filter(|system| !system.trim().is_empty()) {
            if messages.first().is_none_or(|first| first.role != "system") {
                messages.insert(0, ChatMessage::new("system", system));
            }
        }
        Ok((messages, last.content))
    }
}

fn not_a_message_list(name: &str, value: &Value) -> RowIssue {
    RowIssue::new(
        Some(name),
        format!("expected a list of messages, found {}", describe(value)),
    )
}

/// Reads one turn, mapping ShareGPT's `human` and `gpt` to `user` and `assistant`.
fn read_turn(field: &str, turn: &Value) -> Result<ChatMessage, RowIssue> {
    let Value::Object(map) = turn else {
        return Err(RowIssue::new(
            Some(field),
            format!(
                "expected an object with role and content (or from and value), found {}",
                describe(turn)
            ),
        ));
    };
    let lookup = |keys: [&str; 2]| {
        map.iter()
            .find(|(key, _)| keys.contains(&key.trim().to_lowercase().as_str()))
            .map(|(_, value)| value)
    };
    let (Some(role), Some(content)) = (lookup(["role", "from"]), lookup(["content", "value"]))
    else {
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        return Err(RowIssue::new(
            Some(field),
            format!(
                "the message has keys [{}]; expected role and content, or from and value",
                keys.join(", ")
            ),
        ));
    };
    let (Value::String(role), Value::String(content)) = (role, content) else {
        return Err(RowIssue::new(
            Some(field),
            format!(
                "expected the role and content to be strings, found {} and {}",
                describe(role),
                describe(content)
            ),
        ));
    };
    let role = match role.trim().to_lowercase().as_str() {
        "user" | "human" => "user",
        "assistant" | "gpt" => "assistant",
        "system" => "system",
        _ => {
            return Err(RowIssue::new(
                Some(field),
                format!(
                    "unknown role {role:?}; expected user, assistant or system (human, gpt or system in ShareGPT rows)"
                ),
            ))
        }
    };
    Ok(ChatMessage::new(role, content.as_str()))
}

fn expect_string(field: &Field) -> Result<&str, RowIssue> {
    match &field.value {
        Value::String(text) => Ok(text),
        other => Err(RowIssue::new(
            Some(&field.name),
            format!("expected a string, found {}", describe(other)),
        )),
    }
}

/// Reads the string value of an optional key. A missing key and null give `None`.
fn optional_string<'r>(row: &'r Row, key: &str) -> Result<Option<&'r str>, RowIssue> {
    match row.get(key) {
        None => Ok(None),
        Some(Field {
            value: Value::Null, ..
        }) => Ok(None),
        Some(field) => expect_string(field).map(Some),
    }
}

/// Describes the JSON type of `value` with a short excerpt, for messages.
fn describe(value: &Value) -> String {
    let mut excerpt = value.to_string();
    if excerpt.chars().count() > 40 {
        excerpt = excerpt.chars().take(40).collect::<String>() + "…";
    }
    format!("{} ({excerpt})", type_name(value))
}

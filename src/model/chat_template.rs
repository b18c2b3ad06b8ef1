//! Chat templates: the Jinja template a chat model ships with, rendered by minijinja the
//! way Hugging Face transformers' `apply_chat_template` renders it with Jinja2.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use candle_core::quantized::gguf_file::{Content, Value};
use minijinja::{context, Environment, Error, ErrorKind};
use serde::{Deserialize, Serialize};

use super::error::{ModelError, Result};
use super::tokenizer::special_token_text;

/// Name under which the template is compiled. Minijinja errors cite it with a line number.
const TEMPLATE_NAME: &str = "chat_template";

/// One turn of a conversation, as chat templates receive it in `messages`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// A chat template source plus the BOS and EOS token strings it may refer to.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatTemplate {
    source: String,
    bos_token: Option<String>,
    eos_token: Option<String>,
}

impl ChatTemplate {
    pub fn new(source: String, bos_token: Option<String>, eos_token: Option<String>) -> Self {
        Self {
            source,
            bos_token,
            eos_token,
        }
    }

    /// Reads `tokenizer.chat_template` from GGUF metadata, with the BOS and EOS strings
    /// taken from `tokenizer.ggml.tokens`. Returns `None` when the file has no template.
    pub fn from_gguf(content: &Content) -> Option<Self> {
        let metadata = &content.metadata;
        let Some(Value::String(source)) = metadata.get("tokenizer.chat_template") else {
            return None;
        };
        let token = |id_key: &str| -> Option<String> {
            let id = metadata.get(id_key)?.to_u32().ok()?;
            let Value::Array(tokens) = metadata.get("tokenizer.ggml.tokens")? else {
                return None;
            };
            match tokens.get(id as usize)? {
                Value::String(token) => Some(token.clone()),
                _ => None,
            }
        };
        Some(Self::new(
            source.clone(),
            token("tokenizer.ggml.bos_token_id"),
            token("tokenizer.ggml.eos_token_id"),
        ))
    }

    /// Reads `chat_template` from a Hugging Face `tokenizer_config.json`, with its
    /// `bos_token` and `eos_token`. The template is either a string or a list of
    /// `{"name", "template"}` objects, of which the one named "default" is used.
    /// Returns `Ok(None)` when the key is absent or no template is named "default".
    pub fn from_tokenizer_config(path: &Path) -> Result<Option<Self>> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let config: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| ModelError::InvalidConfig {
                path: path.to_path_buf(),
                reason: format!("invalid JSON: {e}"),
            })?;

        let source = match &config["chat_template"] {
            serde_json::Value::Null => return Ok(None),
            serde_json::Value::String(source) => source.clone(),
            serde_json::Value::Array(named) => {
                let default = named
                    .iter()
                    .find(|entry| entry["name"].as_str() == Some("default"));
                match default.and_then(|entry| entry["template"].as_str()) {
                    Some(source) => source.to_string(),
                    None => {
                        tracing::warn!(
                            path = %path.display(),
                            "chat_template is a list without a template named \"default\"; ignoring it"
                        );
                        return Ok(None);
                    }
                }
            }
            other => {
                return Err(ModelError::InvalidConfig {
                    path: path.to_path_buf(),
                    reason: format!(
                        "chat_template must be a string or a list of {{\"name\", \"template\"}} objects, found {other}"
                    ),
                })
            }
        };

        Ok(Some(Self::new(
            source,
            special_token_text(&config["bos_token"]),
            special_token_text(&config["eos_token"]),
        )))
    }

    /// Replaces the BOS and EOS strings, for example with those of the model's tokenizer.
    pub fn with_special_tokens(mut self, bos_token: Option<&str>, eos_token: Option<&str>) -> Self {
        self.bos_token = bos_token.map(str::to_string);
        self.eos_token = eos_token.map(str::to_string);
        self
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn bos_token(&self) -> Option<&str> {
        self.bos_token.as_deref()
    }

    pub fn eos_token(&self) -> Option<&str> {
        self.eos_token.as_deref()
    }

    /// Renders `messages` to the prompt text. With `add_generation_prompt` the template
    /// appends the header of the assistant turn that the model should write next.
    ///
    /// The template receives `messages`, `add_generation_prompt`, `bos_token` and
    /// `eos_token` (undefined when absent), plus the `raise_exception(message)` and
    /// `strftime_now(format)` functions that transformers provides.
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        let env = template_environment();
        let template = env
            .template_from_named_str(TEMPLATE_NAME, &self.source)
            .map_err(|e| {
                ModelError::ChatTemplate(format!("failed to parse the template: {}", describe(&e)))
            })?;

        let token_value = |token: &Option<String>| match token {
            Some(token) => minijinja::Value::from(token.as_str()),
            None => minijinja::Value::UNDEFINED,
        };
        let ctx = context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => token_value(&self.bos_token),
            eos_token => token_value(&self.eos_token),
        };
        template.render(ctx).map_err(|e| {
            ModelError::ChatTemplate(format!("failed to render the template: {}", describe(&e)))
        })
    }
}

/// Builds a minijinja environment configured like transformers' chat-template Jinja2
/// environment: `trim_blocks` and `lstrip_blocks` on, `keep_trailing_newline` off (so a
/// single newline at the end of the template source is dropped, as Jinja2 does), and
/// Python string and dict methods such as `.strip()` and `.items()` available.
fn template_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_keep_trailing_newline(false);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function("raise_exception", raise_exception);
    env.add_function("strftime_now", strftime_now);
    // NOTE: minijinja's `tojson` escapes <, >, & and ' and does not take transformers'
    // `ensure_ascii`, `indent` and `separators` arguments, so templates that serialize
    // tools or tool calls may render JSON that differs from transformers' output.
    env
}

fn raise_exception(message: String) -> std::result::Result<minijinja::Value, Error> {
    Err(Error::new(
        ErrorKind::InvalidOperation,
        format!("the template raised an exception: {message}"),
    ))
}

/// Formats the current date and time with a subset of `strftime` codes: %Y %y %m %d %e
/// %B %b %A %a %H %M %S %j and %%. Other codes are written out unchanged.
///
/// NOTE: this uses UTC, while transformers uses the local time zone.
fn strftime_now(format: String) -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format_utc(seconds, &format)
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

fn format_utc(unix_seconds: u64, format: &str) -> String {
    let days = (unix_seconds / 86_400) as i64;
    let second_of_day = unix_seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    // 1970-01-01 was a Thursday, index 3 in WEEKDAYS.
    let weekday = WEEKDAYS[((days + 3).rem_euclid(7)) as usize];
    let month_name = MONTHS[(month - 1) as usize];
    let day_of_year = days - days_from_civil(year, 1, 1) + 1;

    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&year.to_string()),
            Some('y') => out.push_str(&format!("{:02}", year.rem_euclid(100))),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('e') => out.push_str(&format!("{day:>2}")),
            Some('B') => out.push_str(month_name),
            Some('b') => out.push_str(&month_name[..3]),
            Some('A') => out.push_str(weekday),
            Some('a') => out.push_str(&weekday[..3]),
            Some('H') => out.push_str(&format!("{:02}", second_of_day / 3600)),
            Some('M') => out.push_str(&format!("{:02}", second_of_day / 60 % 60)),
            Some('S') => out.push_str(&format!("{:02}", second_of_day % 60)),
            Some('j') => out.push_str(&format!("{day_of_year:03}")),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// Converts days since 1970-01-01 to a (year, month, day) date in the proleptic
/// Gregorian calendar, using Howard Hinnant's `civil_from_days` algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Converts a proleptic Gregorian date to days since 1970-01-01 (Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Formats a minijinja error with its kind, detail and template line, plus the
/// message of any error it wraps.
fn describe(error: &Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_utc_known_instants() {
        // 2024-02-29T13:05:09Z, a Thursday and day 60 of a leap year.
        let leap_day = 1_709_211_909;
        assert_eq!(
            format_utc(leap_day, "%Y-%m-%d %H:%M:%S"),
            "2024-02-29 13:05:09"
        );
        assert_eq!(
            format_utc(leap_day, "%d %b %Y"),
            "29 Feb 2024",
            "Llama 3.1's date format"
        );
        assert_eq!(
            format_utc(leap_day, "%A %B %j %%"),
            "Thursday February 060 %"
        );
        assert_eq!(format_utc(0, "%a %Y-%m-%d"), "Thu 1970-01-01", "Unix epoch");
    }

    #[test]
    fn days_from_civil_inverts_civil_from_days() {
        for days in [-800_000, -1, 0, 59, 60, 365, 11_016, 19_782, 2_932_896] {
            let (year, month, day) = civil_from_days(days);
            assert_eq!(
                days_from_civil(year, month, day),
                days,
                "round trip of day {days}"
            );
        }
    }
}

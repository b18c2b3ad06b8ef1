//! Interface languages and the string lookup. Every visible string lives in
//! assets/locales/<code>.toml; sections flatten into dotted keys (`[setup] train = "…"` is
//! `setup.train`), and `{name}` marks a value filled in by [`Translator::tf`].

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

const EN_SOURCE: &str = include_str!("../../assets/locales/en.toml");
const ZH_CN_SOURCE: &str = include_str!("../../assets/locales/zh-CN.toml");

/// An interface language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Language {
    #[serde(rename = "en")]
    English,
    #[serde(rename = "zh-CN")]
    SimplifiedChinese,
}

impl Language {
    pub const ALL: [Language; 2] = [Language::English, Language::SimplifiedChinese];

    /// Returns the BCP 47 tag, which is also the locale file's stem.
    pub fn code(self) -> &'static str {
        match self {
            Language::English => "en",
            Language::SimplifiedChinese => "zh-CN",
        }
    }

    /// Maps a POSIX locale value such as `zh_CN.UTF-8` to a language: values starting with
    /// `zh` are Simplified Chinese, everything else English.
    pub fn from_locale(value: &str) -> Language {
        if value.trim().to_ascii_lowercase().starts_with("zh") {
            Language::SimplifiedChinese
        } else {
            Language::English
        }
    }

    /// Returns the language of the system locale: the first non-empty of `LC_ALL`, `LC_MESSAGES`
    /// and `LANG`, as POSIX orders them; English when none is set.
    pub fn from_env() -> Language {
        ["LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .filter_map(|name| std::env::var(name).ok())
            .find(|value| !value.trim().is_empty())
            .map(|value| Language::from_locale(&value))
            .unwrap_or(Language::English)
    }

    /// Returns the locale file's text, compiled into the binary.
    pub fn locale_source(self) -> &'static str {
        match self {
            Language::English => EN_SOURCE,
            Language::SimplifiedChinese => ZH_CN_SOURCE,
        }
    }
}

/// Parses a locale file into dotted keys and their strings.
pub fn parse_locale(text: &str) -> Result<BTreeMap<String, String>, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut strings = BTreeMap::new();
    flatten("", &table, &mut strings)?;
    Ok(strings)
}

fn flatten(
    prefix: &str,
    table: &toml::Table,
    strings: &mut BTreeMap<String, String>,
) -> Result<(), String> {
    for (name, value) in table {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        match value {
            toml::Value::String(text) => {
                strings.insert(key, text.clone());
            }
            toml::Value::Table(inner) => flatten(&key, inner, strings)?,
            other => {
                return Err(format!(
                    "{key}: expected a string, found {}",
                    other.type_str()
                ))
            }
        }
    }
    Ok(())
}

fn load_strings(language: Language) -> BTreeMap<String, String> {
    parse_locale(language.locale_source()).unwrap_or_else(|error| {
        tracing::error!(language = language.code(), %error, "the locale file is invalid; its strings are not used");
        BTreeMap::new()
    })
}

/// Looks up interface strings in the current language, falling back to English.
pub struct Translator {
    language: Language,
    active: BTreeMap<String, String>,
    english: BTreeMap<String, String>,
    /// Keys already logged as missing, so each is logged once.
    reported_missing: Mutex<HashSet<String>>,
}

impl Translator {
    pub fn new(language: Language) -> Self {
        Self {
            language,
            active: load_strings(language),
            english: load_strings(Language::English),
            reported_missing: Mutex::new(HashSet::new()),
        }
    }

    pub fn language(&self) -> Language {
        self.language
    }

    pub fn set_language(&mut self, language: Language) {
        if language != self.language {
            self.language = language;
            self.active = load_strings(language);
        }
    }

    /// Returns the string for `key`: from the current language, else English (logging the
    /// missing key once), else the key itself.
    pub fn t(&self, key: &str) -> String {
        if let Some(text) = self.active.get(key) {
            return text.clone();
        }
        self.report_missing(key);
        self.english
            .get(key)
            .cloned()
            .unwrap_or_else(|| key.to_string())
    }

    /// Returns the string for `key` with each `{name}` replaced by its value in `args`.
    pub fn tf(&self, key: &str, args: &[(&str, &dyn std::fmt::Display)]) -> String {
        let mut text = self.t(key);
        for (name, value) in args {
            text = text.replace(&format!("{{{name}}}"), &value.to_string());
        }
        text
    }

    /// Returns the English string for `key`, for text that must render without a CJK font.
    pub fn english(&self, key: &str) -> String {
        self.english
            .get(key)
            .cloned()
            .unwrap_or_else(|| key.to_string())
    }

    fn report_missing(&self, key: &str) {
        let mut reported = self
            .reported_missing
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if reported.insert(key.to_string()) {
            tracing::warn!(
                key,
                language = self.language.code(),
                "missing interface string; showing the English text"
            );
        }
    }
}

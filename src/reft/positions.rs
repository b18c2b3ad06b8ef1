//! Which token positions an intervention edits: the first and/or last N prompt tokens
//! (pyreft's "f1+l1", "f7+l7", "l1"), every prompt token, or every token.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Token positions an intervention acts on, relative to each example's prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Positions {
    /// The first `first` and the last `last` prompt tokens. N larger than the prompt is
    /// capped, and a position in both sets is edited once per module.
    FirstLast { first: usize, last: usize },
    /// Every prompt token.
    Prompt,
    /// Every token, prompt and response, including tokens produced while generating.
    Every,
}

impl Default for Positions {
    fn default() -> Self {
        Self::FirstLast { first: 1, last: 1 }
    }
}

impl Positions {
    /// Parses "f1+l1", "l1", "f3", "prompt" or "all".
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim().to_ascii_lowercase();
        match trimmed.as_str() {
            "prompt" | "all_prompt" => return Ok(Self::Prompt),
            "all" | "every" => return Ok(Self::Every),
            _ => {}
        }

        let invalid = || {
            format!(
                "positions {text:?} is not valid: use \"f<N>+l<N>\" (first and last N prompt tokens, e.g. \"f1+l1\"), \"f<N>\", \"l<N>\", \"prompt\" or \"all\""
            )
        };
        let (mut first, mut last) = (None, None);
        for part in trimmed.split('+') {
            let (slot, digits) = if let Some(d) = part.strip_prefix('f') {
                (&mut first, d)
            } else if let Some(d) = part.strip_prefix('l') {
                (&mut last, d)
            } else {
                return Err(invalid());
            };
            let n: usize = digits.parse().map_err(|_| invalid())?;
            if slot.replace(n).is_some() {
                return Err(invalid());
            }
        }
        let positions = Self::FirstLast {
            first: first.unwrap_or(0),
            last: last.unwrap_or(0),
        };
        positions.validate()?;
        Ok(positions)
    }

    pub fn validate(&self) -> Result<(), String> {
        if let Self::FirstLast { first: 0, last: 0 } = self {
            return Err(
                "positions select no token: give N of at least 1, as in \"f1+l1\" or \"l1\"".into(),
            );
        }
        Ok(())
    }

    /// Whether this set has separate first and last parts, which an untied config edits
    /// with separate modules.
    pub fn has_two_parts(&self) -> bool {
        matches!(self, Self::FirstLast { first, last } if *first > 0 && *last > 0)
    }

    /// The positions edited in one example, split into the part for the first (prefix)
    /// module and the part for the second (suffix) module of an untied pair. `prompt_len`
    /// counts real prompt tokens; `total_len` counts all real tokens (prompt and response).
    /// When tied, callers edit the union of both parts with one module.
    pub fn locate(&self, prompt_len: usize, total_len: usize) -> (Vec<usize>, Vec<usize>) {
        match *self {
            Self::FirstLast { first, last } => {
                let first_n = first.min(prompt_len);
                let last_n = last.min(prompt_len);
                let prefix: Vec<usize> = (0..first_n).collect();
                let suffix: Vec<usize> = (prompt_len - last_n..prompt_len).collect();
                (prefix, suffix)
            }
            Self::Prompt => ((0..prompt_len).collect(), Vec::new()),
            Self::Every => ((0..total_len).collect(), Vec::new()),
        }
    }

    /// The union of both parts, sorted and without repeats.
    pub fn locate_tied(&self, prompt_len: usize, total_len: usize) -> Vec<usize> {
        let (mut all, suffix) = self.locate(prompt_len, total_len);
        all.extend(suffix);
        all.sort_unstable();
        all.dedup();
        all
    }
}

impl fmt::Display for Positions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FirstLast { first, last } => match (first, last) {
                (0, l) => write!(f, "l{l}"),
                (fi, 0) => write!(f, "f{fi}"),
                (fi, l) => write!(f, "f{fi}+l{l}"),
            },
            Self::Prompt => f.write_str("prompt"),
            Self::Every => f.write_str("all"),
        }
    }
}

impl Serialize for Positions {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Positions {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Positions::parse(&text).map_err(serde::de::Error::custom)
    }
}

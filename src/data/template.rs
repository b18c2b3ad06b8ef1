//! Prompt templates: text with `{name}` placeholders that wraps each row's input into the
//! user message, for example `"Classify the sentiment of this review:\n{text}"`.

use super::error::DataError;

#[derive(Clone, Debug, PartialEq)]
enum Piece {
    Literal(String),
    Placeholder(String),
}

/// A parsed prompt template. `{{` and `}}` stand for literal braces.
#[derive(Clone, Debug, PartialEq)]
pub struct PromptTemplate {
    source: String,
    pieces: Vec<Piece>,
}

impl PromptTemplate {
    /// Parses `source`, rejecting an unclosed `{`, a lone `}`, an invalid placeholder name
    /// and a template without placeholders (every prompt would then be the same text).
    pub fn parse(source: &str) -> Result<Self, DataError> {
        let error = |reason: String| DataError::Template {
            template: source.to_string(),
            reason,
        };

        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = source.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '}' => {
                    return Err(error(
                        "a lone } must be written }} to stand for a literal brace".to_string(),
                    ))
                }
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for c in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        name.push(c);
                    }
                    if !closed {
                        return Err(error(format!(
                            "the {{ before {name:?} is never closed; write {{{{ for a literal brace"
                        )));
                    }
                    let valid = !name.is_empty()
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                    if !valid {
                        return Err(error(format!(
                            "{{{name}}} is not a placeholder: a name contains only letters, digits and _; write {{{{ and }}}} for literal braces"
                        )));
                    }
                    if !literal.is_empty() {
                        pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                    }
                    pieces.push(Piece::Placeholder(name));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }

        let template = Self {
            source: source.to_string(),
            pieces,
        };
        if template.placeholders().next().is_none() {
            return Err(error(
                "it has no placeholder, so every prompt would be the same text; add {text}"
                    .to_string(),
            ));
        }
        Ok(template)
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Iterates over the placeholder names in order of appearance, repeats included.
    pub fn placeholders(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|piece| match piece {
            Piece::Placeholder(name) => Some(name.as_str()),
            Piece::Literal(_) => None,
        })
    }

    /// Checks that every placeholder is one of `allowed`. `format` names the row format
    /// in the error, which lists the allowed placeholders.
    pub fn check_placeholders(&self, allowed: &[&str], format: &str) -> Result<(), DataError> {
        let Some(unknown) = self.placeholders().find(|name| !allowed.contains(name)) else {
            return Ok(());
        };
        let allowed_list: Vec<String> = allowed.iter().map(|name| format!("{{{name}}}")).collect();
        Err(DataError::Template {
            template: self.source.clone(),
            reason: format!(
                "unknown placeholder {{{unknown}}}; the {format} format allows {}. Write {{{{ and }}}} for literal braces",
                allowed_list.join(", ")
            ),
        })
    }

    /// Fills the placeholders from `values` (name, value). A placeholder missing from
    /// `values` renders as empty text, so call `check_placeholders` first.
    pub fn render(&self, values: &[(&str, &str)]) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Placeholder(name) => {
                    let value = values.iter().find(|(key, _)| key == name);
                    if let Some((_, value)) = value {
                        out.push_str(value);
                    }
                }
            }
        }
        out
    }
}

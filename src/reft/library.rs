//! Several adapters loaded on one base model, chosen per request by name.

use std::path::Path;

use super::adapter::{load_adapter, AdapterError, LoadedAdapter};
use crate::data::PromptTemplate;
use crate::model::chat_template::ChatMessage;
use crate::model::loader::LoadedModel;

/// Adapters validated against one loaded base model.
#[derive(Default)]
pub struct AdapterLibrary {
    adapters: Vec<LoadedAdapter>,
}

impl AdapterLibrary {
    /// Loads an adapter file; its name must not be taken already.
    pub fn load(&mut self, path: &Path, model: &LoadedModel) -> Result<&LoadedAdapter, String> {
        let adapter = load_adapter(path, model).map_err(|e: AdapterError| e.to_string())?;
        if self.get(&adapter.metadata.name).is_some() {
            return Err(format!(
                "two adapters are named {:?} ({}): rename one of them so requests can choose by name",
                adapter.metadata.name,
                path.display()
            ));
        }
        self.adapters.push(adapter);
        Ok(self.adapters.last().expect("just pushed"))
    }

    pub fn get(&self, name: &str) -> Option<&LoadedAdapter> {
        self.adapters.iter().find(|a| a.metadata.name == name)
    }

    pub fn names(&self) -> Vec<&str> {
        self.adapters
            .iter()
            .map(|a| a.metadata.name.as_str())
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.adapters.is_empty()
    }

    /// The adapter a request uses: the named one, or the only one when no name is given.
    pub fn choose(&self, name: Option<&str>) -> Result<Option<&LoadedAdapter>, String> {
        match (name, self.adapters.len()) {
            (None, 0) => Ok(None),
            (None, 1) => Ok(self.adapters.first()),
            (None, _) => Err(format!(
                "several adapters are loaded ({}): choose one by name with --use NAME",
                self.names().join(", ")
            )),
            (Some(name), _) => self.get(name).map(Some).ok_or_else(|| {
                format!(
                    "no adapter is named {name:?}; loaded: {}",
                    if self.is_empty() {
                        "none".to_string()
                    } else {
                        self.names().join(", ")
                    }
                )
            }),
        }
    }
}

/// The chat messages for a user `text` as an adapter was trained to see them: its system
/// prompt first, and the text passed through its prompt template.
pub fn adapter_messages(
    adapter: &LoadedAdapter,
    system: Option<&str>,
    text: &str,
) -> Result<Vec<ChatMessage>, String> {
    let meta = &adapter.metadata;
    let mut messages = Vec::new();
    if let Some(system) = system.or(meta.system_prompt.as_deref()) {
        messages.push(ChatMessage {
            role: "system".into(),
            content: system.into(),
        });
    }
    let content = match &meta.prompt_template {
        Some(template) => PromptTemplate::parse(template)
            .map_err(|e| e.to_string())?
            .render(&[("text", text), ("input", text), ("instruction", text)]),
        None => text.to_string(),
    };
    messages.push(ChatMessage {
        role: "user".into(),
        content,
    });
    Ok(messages)
}

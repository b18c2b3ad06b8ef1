//! Turning examples into token ids: the prompt rendered with the model's chat template
//! (with the generation prompt), then the target tokens and the end-of-sequence token.

use crate::data::Example;
use crate::model::chat_template::ChatMessage;
use crate::model::loader::LoadedModel;
use crate::model::ModelError;

use super::batch::TokenizedExample;

/// Settings for building prompts from examples.
#[derive(Debug, Clone, Default)]
pub struct PromptSettings {
    /// A system message placed first, unless the example has its own.
    pub system_prompt: Option<String>,
    /// Examples longer than this many tokens lose tokens from the start of the prompt.
    pub max_length: usize,
}

/// The rendered prompt text of `example`: its messages through the chat template with the
/// generation prompt, or the last user message as plain text for models without one.
pub fn render_prompt(
    model: &LoadedModel,
    messages: &[ChatMessage],
    settings: &PromptSettings,
) -> Result<String, ModelError> {
    let mut conversation = Vec::with_capacity(messages.len() + 1);
    let has_system = messages.first().is_some_and(|m| m.role == "system");
    if let (Some(system), false) = (&settings.system_prompt, has_system) {
        conversation.push(ChatMessage {
            role: "system".into(),
            content: system.clone(),
        });
    }
    conversation.extend_from_slice(messages);

    match &model.chat_template {
        Some(template) => template.render(&conversation, true),
        None => Ok(conversation
            .iter()
            .filter(|m| m.role != "system")
            .map(|m| m.content.as_str())
            .collect::<Vec<_>>()
            .join("\n")),
    }
}

/// The end-of-sequence id appended after every target.
pub fn eos_id(model: &LoadedModel) -> Result<u32, ModelError> {
    model
        .tokenizer()?
        .eos_ids()
        .first()
        .copied()
        .ok_or_else(|| {
            ModelError::Tokenizer("the tokenizer defines no end-of-sequence token".into())
        })
}

/// The prompt ids of `messages` and the target ids of `target` (with EOS appended).
pub fn tokenize_parts(
    model: &LoadedModel,
    messages: &[ChatMessage],
    target: &str,
    settings: &PromptSettings,
) -> Result<(Vec<u32>, Vec<u32>), ModelError> {
    let tokenizer = model.tokenizer()?;
    let prompt = render_prompt(model, messages, settings)?;
    let prompt_ids = tokenizer.encode(&prompt)?;
    let mut target_ids = tokenizer.encode_without_bos(target)?;
    target_ids.push(eos_id(model)?);
    Ok((prompt_ids, target_ids))
}

/// Joins prompt and target ids, cutting the prompt's start (then the target's end) so the
/// whole fits `max_length`; at least one prompt token and one target token remain.
pub fn join_within(
    mut prompt: Vec<u32>,
    mut target: Vec<u32>,
    max_length: usize,
) -> TokenizedExample {
    let max_length = max_length.max(2);
    if prompt.len() + target.len() > max_length {
        let target_room = max_length - 1;
        target.truncate(target_room.max(1));
        let prompt_room = max_length - target.len();
        let cut = prompt.len().saturating_sub(prompt_room.max(1));
        prompt.drain(..cut);
    }
    let prompt_len = prompt.len();
    prompt.extend(target);
    TokenizedExample {
        input_ids: prompt,
        prompt_len,
    }
}

/// Tokenizes an example for training: the prompt, then the target and EOS.
pub fn tokenize_example(
    model: &LoadedModel,
    example: &Example,
    settings: &PromptSettings,
) -> Result<TokenizedExample, ModelError> {
    let (prompt, target) = tokenize_parts(model, &example.messages, &example.target, settings)?;
    Ok(join_within(prompt, target, settings.max_length))
}

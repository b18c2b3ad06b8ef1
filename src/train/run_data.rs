//! Loading, splitting and tokenizing a run's data as its config describes.

use crate::data::{self, Example, LoadOptions, Task};
use crate::model::loader::LoadedModel;

use super::batch::TokenizedExample;
use super::config::TrainConfig;
use super::prepare::{tokenize_example, PromptSettings};

/// The run's examples, split and tokenized, with the task and labels settled.
pub struct RunData {
    pub task: Task,
    pub labels: Vec<String>,
    pub train: Vec<Example>,
    pub eval: Vec<Example>,
    pub train_tokens: Vec<TokenizedExample>,
    pub eval_tokens: Vec<TokenizedExample>,
    pub settings: PromptSettings,
}

/// Reads the training (and evaluation) files, splits off evaluation rows when there is no
/// evaluation file, settles the task and labels, and tokenizes everything.
pub fn load_run_data(config: &TrainConfig, model: &LoadedModel) -> Result<RunData, String> {
    let options = LoadOptions {
        prompt_template: config.data.prompt_template.clone(),
        strict: true,
        max_rows: None,
    };
    let train_path = config.resolve_path(&config.data.train);
    let loaded = data::load_file(&train_path, &options).map_err(|e| e.to_string())?;
    let task = config.data.task.unwrap_or(loaded.task());

    let (train, eval) = match &config.data.eval {
        Some(eval_file) => {
            let eval_path = config.resolve_path(eval_file);
            let eval = data::load_file(&eval_path, &options).map_err(|e| e.to_string())?;
            (loaded.examples, eval.examples)
        }
        None => {
            data::validate_ratio(config.data.eval_ratio).map_err(|e| e.to_string())?;
            data::split(
                loaded.examples,
                config.data.eval_ratio,
                config.training.seed,
            )
        }
    };

    // Labels come from every row, so that a label seen only in the held-out part counts too.
    let labels = if config.data.labels.is_empty() && task == Task::Classification {
        let all: Vec<_> = train.iter().chain(&eval).cloned().collect();
        data::distinct_labels(&all)
    } else {
        config.data.labels.clone()
    };
    if task == Task::Classification {
        if labels.len() < 2 {
            return Err(format!(
                "classification needs at least 2 labels, found {:?}: set data.labels or check the label column",
                labels
            ));
        }
        data::check_labels(&train, &labels).map_err(|e| e.to_string())?;
        data::check_labels(&eval, &labels).map_err(|e| e.to_string())?;
    }

    let settings = PromptSettings {
        system_prompt: config.data.system_prompt.clone(),
        max_length: config.data.max_length,
    };
    let tokenize = |examples: &[Example]| -> Result<Vec<TokenizedExample>, String> {
        examples
            .iter()
            .map(|e| {
                tokenize_example(model, e, &settings).map_err(|err| {
                    format!("{} line {}: {err}", train_path.display(), e.source_line)
                })
            })
            .collect()
    };
    let train_tokens = tokenize(&train)?;
    let eval_tokens = tokenize(&eval)?;

    Ok(RunData {
        task,
        labels,
        train,
        eval,
        train_tokens,
        eval_tokens,
        settings,
    })
}

//! `reft-studio eval`: loss (and accuracy for classification) of a model, with or without
//! an adapter, on a dataset.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use reft_studio::data::{self, LoadOptions, Task};
use reft_studio::reft::adapter::load_adapter;
use reft_studio::reft::InterventionSet;
use reft_studio::train::evaluate::{accuracy, classification_loss, classify, mean_loss};
use reft_studio::train::prepare::{eos_id, tokenize_example, PromptSettings};
use serde::Serialize;

use super::{load_model, ModelArgs};

#[derive(Args)]
pub struct EvalArgs {
    #[command(flatten)]
    model: ModelArgs,

    /// The adapter to evaluate; its task, labels and prompt template apply.
    #[arg(long)]
    adapter: Option<PathBuf>,

    /// The dataset file (JSONL, JSON, CSV or TSV).
    #[arg(long)]
    dataset: PathBuf,

    /// The prompt template for runs without an adapter, with {text} for the input.
    #[arg(long)]
    prompt_template: Option<String>,

    /// Examples per forward pass.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,

    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct EvalReport {
    count: usize,
    loss: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    accuracy: Option<f64>,
}

pub fn run(args: EvalArgs) -> Result<()> {
    let model = load_model(&args.model)?;
    let adapter = match &args.adapter {
        Some(path) => Some(load_adapter(path, &model)?),
        None => None,
    };

    let prompt_template = match &adapter {
        Some(a) => a.metadata.prompt_template.clone(),
        None => args.prompt_template.clone(),
    };
    let options = LoadOptions {
        prompt_template,
        strict: true,
        max_rows: None,
    };
    let loaded = data::load_file(&args.dataset, &options)?;
    let (task, labels) = match &adapter {
        Some(a) => (a.metadata.task, a.metadata.labels.clone()),
        None => (loaded.task(), data::distinct_labels(&loaded.examples)),
    };
    // Rows whose label the adapter does not know would all count as wrong, so they are an
    // error rather than an accuracy of 0.
    if task == Task::Classification {
        if loaded.task() != Task::Classification {
            anyhow::bail!(
                "{} has no text/label rows, but the adapter is a classifier for [{}]: give a file with text and label columns",
                args.dataset.display(),
                labels.join(", ")
            );
        }
        data::check_labels(&loaded.examples, &labels)
            .map_err(|e| anyhow::anyhow!("{}: {e}", args.dataset.display()))?;
    }
    let settings = PromptSettings {
        system_prompt: adapter
            .as_ref()
            .and_then(|a| a.metadata.system_prompt.clone()),
        max_length: 512,
    };

    // Without an adapter an empty set measures the base model.
    let empty = InterventionSet::from_modules(Vec::new(), Vec::new());
    let set = adapter.as_ref().map(|a| &a.set).unwrap_or(&empty);

    let pad = model.tokenizer()?.pad_id().unwrap_or(eos_id(&model)?);
    let (loss, accuracy) = if task == Task::Classification {
        let scores = classify(
            &model,
            set,
            &loaded.examples,
            &labels,
            &settings,
            pad,
            args.batch_size,
            None,
        )?;
        (
            classification_loss(&scores, &loaded.examples, &labels),
            Some(accuracy(&scores, &loaded.examples, &labels)),
        )
    } else {
        let tokens = loaded
            .examples
            .iter()
            .map(|e| tokenize_example(&model, e, &settings))
            .collect::<Result<Vec<_>, _>>()?;
        (
            mean_loss(&model, set, &tokens, pad, args.batch_size, None)?,
            None,
        )
    };

    let report = EvalReport {
        count: loaded.examples.len(),
        loss,
        accuracy,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{} examples: loss {:.4}", report.count, report.loss);
        if let Some(acc) = report.accuracy {
            println!("accuracy {acc:.4} (labels: {})", labels.join(", "));
        }
    }
    Ok(())
}

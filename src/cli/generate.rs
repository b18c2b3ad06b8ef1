//! `reft-studio generate`: text from a prompt, streamed as it is produced.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use reft_studio::model::decoder::{BlockHook, NoHook};
use reft_studio::model::generate::{generate, GenerationSettings};
use reft_studio::reft::library::{adapter_messages, AdapterLibrary};
use reft_studio::reft::InterventionHook;
use reft_studio::routing::RoutedSet;
use serde::Serialize;

use super::{load_model, prompt_ids, ModelArgs, PromptArgs};

#[derive(Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    model: ModelArgs,

    #[command(flatten)]
    prompt: PromptArgs,

    /// The maximum number of tokens to generate.
    #[arg(long, default_value_t = 128, allow_negative_numbers = true)]
    max_new_tokens: usize,

    /// Sampling temperature; 0 (the default) decodes greedily.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    temperature: f64,

    /// Nucleus sampling threshold in (0, 1]; used only when the temperature is above 0.
    #[arg(long, allow_negative_numbers = true)]
    top_p: Option<f64>,

    /// Seed for sampling.
    #[arg(long, default_value_t = 299_792_458)]
    seed: u64,

    /// An adapter file to apply (repeatable: all are loaded on the one base model).
    #[arg(long = "adapter")]
    adapters: Vec<PathBuf>,

    /// The name of the adapter to use when several are loaded, or the module of a routed
    /// set to use instead of the one its router picks.
    #[arg(long = "use")]
    use_name: Option<String>,

    /// A routed set (the routing.json a routed training run writes): its router picks the
    /// module that answers, unless --use names one. Needs --chat.
    #[arg(long, requires = "chat", conflicts_with = "adapters")]
    routing: Option<PathBuf>,

    /// Edit every generated token too, not only the prompt's positions.
    #[arg(long)]
    intervene_generated: bool,

    /// Print one JSON object on stdout instead of streaming the text.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct GenerateReport {
    prompt_token_ids: Vec<u32>,
    /// Includes the end-of-sequence token when generation stopped on it.
    generated_token_ids: Vec<u32>,
    text: String,
    /// The routed set's module that answered; absent without --routing.
    #[serde(skip_serializing_if = "Option::is_none")]
    module: Option<String>,
}

pub fn run(args: GenerateArgs) -> Result<()> {
    if let Some(p) = args.top_p {
        if !(p > 0.0 && p <= 1.0) {
            anyhow::bail!("--top-p must be in (0, 1], got {p}");
        }
    }
    if !(args.temperature >= 0.0 && args.temperature.is_finite()) {
        anyhow::bail!(
            "--temperature must be a finite number, 0 or more, got {}",
            args.temperature
        );
    }

    let model = load_model(&args.model)?;
    let tokenizer = model.tokenizer()?;

    let mut library = AdapterLibrary::default();
    for path in &args.adapters {
        library.load(path, &model).map_err(|e| anyhow::anyhow!(e))?;
    }
    let routed = match &args.routing {
        Some(path) => Some(RoutedSet::load(path, &model).map_err(|e| anyhow::anyhow!(e))?),
        None => None,
    };
    let (adapter, module) = match &routed {
        Some(set) => {
            let (index, how) = match &args.use_name {
                Some(name) => (
                    set.module_index(name).map_err(|e| anyhow::anyhow!(e))?,
                    "picked with --use".to_string(),
                ),
                None => {
                    let decision = set
                        .route(&model, &args.prompt.prompt)
                        .map_err(|e| anyhow::anyhow!(e))?;
                    let probability = decision.probabilities[decision.module] * 100.0;
                    (
                        decision.module,
                        format!("picked by the router, probability {probability:.1}%"),
                    )
                }
            };
            let name = set.manifest.modules[index].name.clone();
            eprintln!("module: {name} ({how})");
            (Some(&set.adapters[index]), Some(name))
        }
        None => (
            library
                .choose(args.use_name.as_deref())
                .map_err(|e| anyhow::anyhow!(e))?,
            None,
        ),
    };

    // With an adapter, a chat prompt is built as in its training: its system prompt and
    // prompt template apply.
    let prompt_ids = match adapter {
        Some(adapter) if args.prompt.chat => {
            let messages =
                adapter_messages(adapter, args.prompt.system.as_deref(), &args.prompt.prompt)
                    .map_err(|e| anyhow::anyhow!(e))?;
            let template = model
                .chat_template
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("the model has no chat template: drop --chat"))?;
            tokenizer.encode(&template.render(&messages, true)?)?
        }
        _ => prompt_ids(&model, &args.prompt)?,
    };
    let mut adapter_hook;
    let mut no_hook = NoHook;
    let hook: &mut dyn BlockHook = match adapter {
        Some(adapter) => {
            let len = prompt_ids.len();
            let rows =
                adapter
                    .set
                    .row_positions_with(&[(len, len)], true, args.intervene_generated);
            adapter_hook = InterventionHook::new(&adapter.set, rows, false);
            tracing::info!(adapter = %adapter.metadata.name, "generating with adapter");
            &mut adapter_hook
        }
        None => &mut no_hook,
    };
    let settings = GenerationSettings {
        max_new_tokens: args.max_new_tokens,
        temperature: args.temperature,
        top_p: args.top_p,
        seed: args.seed,
    };

    // Decoding the whole sequence each time keeps multi-byte characters that span
    // several tokens intact; only the new suffix is printed.
    let mut streamed = Vec::new();
    let mut printed = 0usize;
    let mut on_token = |id: u32| {
        if args.json {
            return true;
        }
        streamed.push(id);
        if let Ok(text) = tokenizer.decode(&streamed, true) {
            if text.len() > printed && text.is_char_boundary(printed) && !text.ends_with('\u{fffd}')
            {
                print!("{}", &text[printed..]);
                let _ = std::io::stdout().flush();
                printed = text.len();
            }
        }
        true
    };
    let generation = generate(
        &model.decoder,
        &prompt_ids,
        tokenizer.eos_ids(),
        &settings,
        hook,
        &mut on_token,
    )?;
    let (token_count, stop_reason) = (generation.token_ids.len(), generation.stop_reason);

    // A character cut off by --max-new-tokens decodes to U+FFFD; it is dropped.
    let text = tokenizer
        .decode(&generation.token_ids, true)?
        .trim_end_matches('\u{fffd}')
        .to_string();
    if args.json {
        let report = GenerateReport {
            prompt_token_ids: prompt_ids,
            generated_token_ids: generation.token_ids,
            text,
            module,
        };
        println!("{}", serde_json::to_string(&report)?);
    } else {
        if text.len() > printed && text.is_char_boundary(printed) {
            print!("{}", &text[printed..]);
        }
        println!();
    }
    // Logged after the answer's last line, so the two do not run together on a terminal.
    tracing::info!(tokens = token_count, reason = ?stop_reason, "generation finished");
    Ok(())
}

//! `reft-studio inspect`: the tokens, next-token logits and hidden-state norms for one prompt.

use anyhow::Result;
use candle_core::{IndexOp, D};
use clap::Args;
use reft_studio::model::decoder::{CaptureBlocks, LogitsAt};
use serde::Serialize;

use super::{load_model, prompt_ids, ModelArgs, PromptArgs};

#[derive(Args)]
pub struct InspectArgs {
    #[command(flatten)]
    model: ModelArgs,

    #[command(flatten)]
    prompt: PromptArgs,

    /// Print one JSON object on stdout instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct TopLogit {
    id: u32,
    token: String,
    logit: f32,
}

#[derive(Serialize)]
struct InspectReport {
    token_ids: Vec<u32>,
    tokens: Vec<String>,
    top_logits: Vec<TopLogit>,
    /// L2 norm of each block's output at the last position.
    block_norms: Vec<f32>,
}

/// The token's text, or its raw vocabulary piece when it is only part of a UTF-8
/// character (an emoji split over byte tokens), so that different tokens stay distinct.
fn display_token(tokenizer: &reft_studio::model::tokenizer::TextTokenizer, id: u32) -> String {
    let text = tokenizer.token_text(id);
    if text.contains('\u{fffd}') {
        if let Some(piece) = tokenizer.inner().id_to_token(id) {
            return piece;
        }
    }
    text
}

pub fn run(args: InspectArgs) -> Result<()> {
    let model = load_model(&args.model)?;
    let tokenizer = model.tokenizer()?;
    let ids = prompt_ids(&model, &args.prompt)?;

    let input = model.decoder.ids_tensor(&[ids.clone()])?;
    let mut capture = CaptureBlocks::default();
    let output = model
        .decoder
        .forward(&input, None, &mut capture, LogitsAt::Last)?;
    let logits = output
        .logits
        .expect("LogitsAt::Last yields logits")
        .squeeze(0)?
        .to_vec1::<f32>()?;

    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    let top_logits = order
        .iter()
        .take(10)
        .map(|&id| TopLogit {
            id: id as u32,
            token: display_token(tokenizer, id as u32),
            logit: logits[id],
        })
        .collect();

    let last = ids.len() - 1;
    let block_norms = capture
        .outputs
        .iter()
        .map(|h| -> Result<f32> {
            Ok(h.i((0, last))?
                .sqr()?
                .sum_keepdim(D::Minus1)?
                .sqrt()?
                .to_vec1::<f32>()?[0])
        })
        .collect::<Result<Vec<_>>>()?;

    let report = InspectReport {
        tokens: ids.iter().map(|&id| display_token(tokenizer, id)).collect(),
        token_ids: ids,
        top_logits,
        block_norms,
    };

    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }

    println!("{} tokens:", report.token_ids.len());
    for (id, token) in report.token_ids.iter().zip(&report.tokens) {
        println!("  {id:>7}  {token:?}");
    }
    println!("top next tokens:");
    for top in &report.top_logits {
        println!("  {:>7}  {:>9.3}  {:?}", top.id, top.logit, top.token);
    }
    println!("block output norms at the last position:");
    for (block, norm) in report.block_norms.iter().enumerate() {
        println!("  block {block:>3}  {norm:>10.3}");
    }
    Ok(())
}

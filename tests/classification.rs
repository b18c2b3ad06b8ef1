//! Classification scoring on SmolLM2: labels are compared by the summed log-likelihood of
//! their tokens plus EOS, and the loss derived from those scores equals the training loss.

mod common;

use common::smollm2;
use reft_studio::data::Example;
use reft_studio::model::chat_template::ChatMessage;
use reft_studio::reft::InterventionSet;
use reft_studio::train::evaluate::{accuracy, classification_loss, classify, mean_loss};
use reft_studio::train::prefix_cache::PrefixCache;
use reft_studio::train::prepare::{tokenize_example, PromptSettings};

fn review(text: &str, label: &str) -> Example {
    Example {
        messages: vec![ChatMessage {
            role: "user".into(),
            content: format!("判断这条商品评论的情感是正面还是负面：{text}"),
        }],
        target: label.into(),
        source_line: 1,
    }
}

#[test]
fn classification_scores_are_consistent() {
    let Some(model) = smollm2() else { return };
    let examples = vec![
        review("质量很好，物流也快，非常满意！", "正面"),
        review("用了两天就坏了，客服也不理人。", "负面"),
        review("性价比很高，推荐购买。", "正面"),
        review("包装破损，味道难闻，再也不买了。", "负面"),
    ];
    let labels = vec!["正面".to_string(), "负面".to_string()];
    let settings = PromptSettings {
        system_prompt: None,
        max_length: 512,
    };
    let empty = InterventionSet::from_modules(Vec::new(), Vec::new());

    let scores = classify(model, &empty, &examples, &labels, &settings, 2, 4, None).unwrap();
    assert_eq!(scores.len(), 4);
    for score in &scores {
        let total: f64 = score.probabilities.iter().sum();
        assert!((total - 1.0).abs() < 1e-9, "probabilities sum to {total}");
        assert_eq!(score.token_counts.len(), 2);
        // Each label is its own tokens plus EOS.
        assert!(
            score.token_counts.iter().all(|&n| n >= 2),
            "{:?}",
            score.token_counts
        );
        let best_ll = score.log_likelihoods[score.best];
        assert!(score.log_likelihoods.iter().all(|&ll| ll <= best_ll));
    }

    let acc = accuracy(&scores, &examples, &labels);
    assert!((0.0..=1.0).contains(&acc));

    let tokens: Vec<_> = examples
        .iter()
        .map(|e| tokenize_example(model, e, &settings).unwrap())
        .collect();
    let direct = mean_loss(model, &empty, &tokens, 2, 4, None).unwrap();
    let derived = classification_loss(&scores, &examples, &labels);
    assert!(
        (direct - derived).abs() < 1e-4,
        "loss {direct} from a pass, {derived} from the scores"
    );

    // Scoring from the output of block 17, cached by the first pass, gives the same figures.
    let mut prefix = PrefixCache::new(17, 64 << 20);
    for pass in 0..2 {
        let cached = classify(
            model,
            &empty,
            &examples,
            &labels,
            &settings,
            2,
            4,
            Some(&mut prefix),
        )
        .unwrap();
        for (a, b) in scores.iter().zip(&cached) {
            for (x, y) in a.log_likelihoods.iter().zip(&b.log_likelihoods) {
                assert!(
                    (x - y).abs() < 1e-4,
                    "pass {pass}: log-likelihood {y} with the cache, {x} without"
                );
            }
        }
    }
    assert_eq!(
        prefix.totals().misses,
        8,
        "the first pass computes each of the 8 candidates once"
    );
    assert_eq!(
        prefix.totals().hits,
        8,
        "the second pass takes all 8 from the cache"
    );
}

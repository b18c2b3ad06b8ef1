//! Training configs: defaults, the one-or-many intervention tables, path resolution, and
//! clear rejections of invalid settings before any model is loaded.

use reft_studio::reft::{InterventionKind, LayerSelection, Positions};
use reft_studio::train::config::TrainConfig;

const MINIMAL: &str = r#"
[model]
source = "model.gguf"
[data]
train = "train.jsonl"
"#;

#[test]
fn minimal_config_takes_pyreft_defaults() {
    let config = TrainConfig::from_toml(MINIMAL).unwrap();
    let intervention = &config.interventions[0];
    assert_eq!(config.interventions.len(), 1);
    assert_eq!(intervention.kind, InterventionKind::Loreft);
    assert_eq!(intervention.rank, 4);
    assert_eq!(intervention.layers, LayerSelection::Middle);
    assert_eq!(intervention.resolved_layers(30), vec![15]);
    assert_eq!(
        intervention.positions,
        Positions::FirstLast { first: 1, last: 1 }
    );
    assert!(intervention.tied);
    assert_eq!(config.training.learning_rate, 4e-3);
    assert_eq!(config.training.batch_size, 8);
    assert_eq!(config.training.epochs, 3);
}

#[test]
fn several_intervention_tables_are_read() {
    let text = format!(
        "{MINIMAL}\n[[intervention]]\nname = \"a\"\nlayers = [3, 5]\n[[intervention]]\nname = \"b\"\ntype = \"noreft\"\nlayers = \"all\"\ntied = false\npositions = \"f2+l2\"\n"
    );
    let config = TrainConfig::from_toml(&text).unwrap();
    assert_eq!(config.interventions.len(), 2);
    assert_eq!(config.interventions[0].resolved_layers(30), vec![3, 5]);
    assert_eq!(config.interventions[1].kind, InterventionKind::Noreft);
    assert_eq!(config.interventions[1].resolved_layers(4), vec![0, 1, 2, 3]);
    let placements = reft_studio::reft::set::placements(&config.interventions, 4);
    assert_eq!(
        placements.len(),
        2 + 4 * 2,
        "untied f2+l2 gives two modules per layer"
    );
}

#[test]
fn config_round_trips_through_toml() {
    let text = format!("{MINIMAL}\n[intervention]\ntype = \"direft\"\nlayers = [7]\nrank = 8\npositions = \"l1\"\n");
    let config = TrainConfig::from_toml(&text).unwrap();
    let again = TrainConfig::from_toml(&config.to_toml()).unwrap();
    assert_eq!(config, again);
}

#[test]
fn relative_paths_resolve_against_config_folder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.toml");
    std::fs::write(&path, MINIMAL).unwrap();
    let config = TrainConfig::load(&path).unwrap();
    assert_eq!(
        config.resolve_path(&config.data.train),
        dir.path().join("train.jsonl")
    );
    assert_eq!(config.output_dir(), dir.path().join("runs/train"));
}

fn rejection(extra: &str) -> String {
    TrainConfig::from_toml(&format!("{MINIMAL}\n{extra}")).unwrap_err()
}

#[test]
fn invalid_settings_are_rejected_with_fix() {
    let cases = [
        (
            "[intervention]\npositions = \"x1\"",
            "positions \"x1\" is not valid",
        ),
        ("[intervention]\npositions = \"f0+l0\"", "select no token"),
        ("[intervention]\nrank = 0", "rank must be at least 1"),
        ("[intervention]\ntype = \"lora\"", "unknown variant `lora`"),
        (
            "[intervention]\nlayers = \"middle-ish\"",
            "layers \"middle-ish\" is not valid",
        ),
        (
            "[intervention]\ndropout = 1.0",
            "dropout 1 must be in [0, 1)",
        ),
        (
            "[training]\nbatch_size = 0",
            "training.batch_size: must be at least 1",
        ),
        (
            "[training]\nlearning_rate = -1.0",
            "training.learning_rate: -1 must be a positive number",
        ),
        ("[training]\nepochs = 0", "epochs and max_steps are both 0"),
        ("[training]\nbatchsize = 8", "unknown field `batchsize`"),
    ];
    for (extra, expected) in cases {
        let message = rejection(extra);
        assert!(
            message.contains(expected),
            "{extra:?}: {message:?} should contain {expected:?}"
        );
    }
}

#[test]
fn missing_required_fields_are_named() {
    let message = TrainConfig::from_toml("[model]\nsource = \"m.gguf\"\n").unwrap_err();
    assert!(message.contains("data"), "{message}");
    let message = TrainConfig::from_toml("[data]\ntrain = \"t.jsonl\"\n").unwrap_err();
    assert!(message.contains("model"), "{message}");
}

#[test]
fn classification_gets_its_own_defaults() {
    let text = "[model]\nsource = \"m.gguf\"\n[data]\ntrain = \"reviews.csv\"\ntask = \"classification\"\n";
    let config = TrainConfig::from_toml(text).unwrap();
    assert_eq!(config.interventions.len(), 1);
    let intervention = &config.interventions[0];
    assert_eq!(intervention.layers, LayerSelection::Depth(60));
    assert_eq!(
        intervention.resolved_layers(30),
        vec![18],
        "60% of SmolLM2's 30 blocks"
    );
    assert_eq!(intervention.resolved_layers(24), vec![14]);
    assert_eq!(
        intervention.positions,
        Positions::FirstLast { first: 0, last: 1 },
        "the last prompt token"
    );
    assert_eq!(intervention.rank, 8);

    // A table given in the file wins over the task's default.
    let with_table = format!("{text}[intervention]\nlayers = [3]\n");
    assert_eq!(
        TrainConfig::from_toml(&with_table).unwrap().interventions[0].layers,
        LayerSelection::List(vec![3])
    );
}

#[test]
fn depth_layers_parse_and_round_trip() {
    let config = TrainConfig::from_toml("[model]\nsource = \"m.gguf\"\n[data]\ntrain = \"t.jsonl\"\n[intervention]\nlayers = \"75%\"\n").unwrap();
    assert_eq!(config.interventions[0].layers, LayerSelection::Depth(75));
    assert_eq!(config.interventions[0].resolved_layers(30), vec![23]);
    assert_eq!(config.interventions[0].resolved_layers(1), vec![0]);
    assert_eq!(TrainConfig::from_toml(&config.to_toml()).unwrap(), config);

    for bad in ["\"0%\"", "\"150%\"", "\"half\"", "[-1]", "2.5", "[1, -3]"] {
        let error = rejection(&format!("[intervention]\nlayers = {bad}\n"));
        assert!(error.contains("is not valid"), "{bad}: {error}");
        assert!(
            error.contains("\"60%\""),
            "{bad}: the message shows a valid depth: {error}"
        );
        assert!(
            !error.contains("untagged"),
            "{bad}: no serde jargon: {error}"
        );
    }
}

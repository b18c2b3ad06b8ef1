//! Routed module sets: the config format, the router on its own, and the customer-service
//! preset trained and served on SmolLM2.

mod common;

use std::path::{Path, PathBuf};

use crossbeam_channel::unbounded;
use reft_studio::config_file::ConfigFile;
use reft_studio::routing::bundle::{
    write_manifest, ManifestModule, RoutingManifest, ROUTING_FORMAT_VERSION,
};
use reft_studio::routing::train::fit_router;
use reft_studio::routing::{
    read_manifest, run_routing, RoutedSet, Router, RouterSettings, RoutingConfig,
};
use reft_studio::train::events::{RouterReport, TrainEvent};
use reft_studio::try_it::{compare, CompareRequest, Comparison};

fn preset_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("presets/customer-service.toml")
}

fn customer_service() -> RoutingConfig {
    match ConfigFile::load(&preset_path()).expect("the preset loads") {
        ConfigFile::Routing(config) => config,
        ConfigFile::Train(_) => panic!("customer-service.toml must read as a routed set"),
    }
}

#[test]
fn preset_reads_as_routed_set() {
    let config = customer_service();
    let names: Vec<&str> = config.modules.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["complaint", "product-question", "order-query"]);
    assert_eq!(config.router.layer, Some(15));

    let module_configs = config.module_configs().unwrap();
    for (module, module_config) in config.modules.iter().zip(&module_configs) {
        assert!(
            module_config
                .resolve_path(&module_config.data.train)
                .is_file(),
            "{} data file",
            module.name
        );
        assert_eq!(module_config.model, config.model);
        let output = PathBuf::from(module_config.output.dir.as_deref().unwrap());
        assert!(
            output.ends_with(Path::new("modules").join(&module.name)),
            "{}",
            output.display()
        );
    }
    assert!(config
        .resolve_path(config.router.eval.as_deref().unwrap())
        .is_file());
}

#[test]
fn emoji_preset_reads_as_training_config() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("presets/emoji-quickstart.toml");
    assert!(matches!(
        ConfigFile::load(&path).unwrap(),
        ConfigFile::Train(_)
    ));
}

#[test]
fn invalid_sets_are_rejected() {
    let model = "[model]\nsource = \"m.gguf\"\n";
    let module = |name: &str| {
        format!("[[module]]\nname = \"{name}\"\n[module.data]\ntrain = \"{name}.jsonl\"\n")
    };
    let cases = [
        (format!("name = \"s\"\n{model}{}", module("a")), "at least two"),
        (format!("name = \"s\"\n{model}{}{}", module("a"), module("a")), "same name"),
        (format!("name = \"s\"\n{model}{}{}", module("a"), module("b/c")), "letters, digits"),
        (
            format!("name = \"s\"\n{model}{}[[module]]\nname = \"b\"\nconfig = \"b.toml\"\n[module.data]\ntrain = \"b.jsonl\"\n", module("a")),
            "keep one of the two",
        ),
        (format!("name = \"s\"\n{model}{}[[module]]\nname = \"b\"\n", module("a")), "neither"),
        (format!("name = \"s\"\n{model}{}{}[router]\neval_ratio = 1.5\n", module("a"), module("b")), "router.eval_ratio"),
    ];
    for (text, expected) in cases {
        let error = RoutingConfig::from_toml(&text).expect_err(&text);
        assert!(
            error.contains(expected),
            "expected {expected:?} in: {error}"
        );
    }
}

#[test]
fn router_separates_clusters() {
    // Three clusters in 4 dimensions, centred on different axes.
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for label in 0..3 {
        for i in 0..6 {
            let mut row = vec![0.1 * i as f32; 4];
            row[label] += 5.0;
            features.push(row);
            labels.push(label);
        }
    }
    let names = vec!["a".to_string(), "b".to_string(), "c".to_string()];
    let router = Router::fit(&features, &labels, names, 2, &RouterSettings::default()).unwrap();

    for label in 0..3 {
        let mut request = vec![0.25f32; 4];
        request[label] += 5.0;
        let decision = router.decide(&request);
        assert_eq!(decision.module, label);
        assert!(
            decision.probabilities[label] > 0.9,
            "{:?}",
            decision.probabilities
        );
        let total: f64 = decision.probabilities.iter().sum();
        assert!((total - 1.0).abs() < 1e-9);
    }
    assert!(router.check_shape(4, 3).is_ok());
    assert!(router
        .check_shape(5, 3)
        .unwrap_err()
        .contains("hidden size 5"));
    assert!(router.check_shape(4, 2).unwrap_err().contains("block 2"));
}

#[test]
fn manifest_with_other_modules_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let router = Router {
        layer: 0,
        pooling: Default::default(),
        modules: vec!["a".into(), "b".into()],
        mean: vec![0.0],
        scale: vec![1.0],
        weight: vec![vec![1.0], vec![-1.0]],
        bias: vec![0.0, 0.0],
    };
    let module = |name: &str| ManifestModule {
        name: name.into(),
        title_en: None,
        title_zh_cn: None,
        adapter: format!("modules/{name}/adapter.safetensors"),
    };
    let manifest = RoutingManifest {
        format_version: ROUTING_FORMAT_VERSION,
        name: "s".into(),
        model_source: "m.gguf".into(),
        modules: vec![module("a"), module("c")],
        router,
        report: RouterReport {
            train_accuracy: 1.0,
            train_count: 2,
            eval_accuracy: None,
            eval_count: 0,
            per_module: Vec::new(),
            eval_source: String::new(),
        },
    };
    let path = write_manifest(dir.path(), &manifest).unwrap();
    let error = read_manifest(&path).unwrap_err();
    assert!(error.contains("differ from the listed modules"), "{error}");
}

#[test]
fn router_accuracy_on_unseen_requests() {
    let Some(model) = common::smollm2() else {
        return;
    };
    let config = customer_service();
    let module_configs = config.module_configs().unwrap();

    let (router, report) = fit_router(&config, &module_configs, model).unwrap();
    assert_eq!(router.layer, 15);
    assert_eq!(report.train_count, 60);
    assert_eq!(report.train_accuracy, 1.0);
    assert_eq!(report.eval_count, 30);
    // Measured: 29 of 30 (a complaint about a suitcase wheel goes to order queries).
    let accuracy = report.eval_accuracy.unwrap();
    assert!(
        accuracy >= 0.9,
        "router accuracy on unseen requests {accuracy}"
    );
    for (name, right, total) in &report.per_module {
        assert_eq!(*total, 10, "{name}");
        assert!(*right >= 8, "{name}: {right} of {total}");
    }
}

/// The fixed opening each module's training answers start with.
const OPENINGS: [(&str, &str); 3] = [
    ("complaint", "非常抱歉给您带来不便"),
    ("product-question", "感谢您的咨询"),
    ("order-query", "请提供您的订单号"),
];

#[test]
fn trained_set_answers_each_kind_with_its_module() {
    let Some(model_path) = common::test_model_path() else {
        return;
    };
    let Some(model) = common::smollm2() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut config = customer_service();
    config.model.source = model_path.to_string_lossy().into_owned();
    config.output.dir = Some(dir.path().join("set").to_string_lossy().into_owned());

    let (events, received) = unbounded();
    let (_commands, commands) = unbounded();
    let summary = run_routing(&config, &events, &commands).expect("the set trains");
    drop(events);
    let modules_started = received
        .iter()
        .filter(|e| matches!(e, TrainEvent::Module { .. }))
        .count();
    assert_eq!(modules_started, 3);
    assert_eq!(summary.steps, 150);
    let manifest_path = summary.adapter_path.expect("routing.json is written");

    let set = RoutedSet::load(&manifest_path, model).unwrap();
    // Requests from the unseen file, one of each kind.
    let requests = [
        ("complaint", "安装师傅迟到三个小时，连个电话都没打。"),
        ("product-question", "这款吹风机出国能用吗？支持什么电压？"),
        ("order-query", "物流显示到了中转站，大概还要几天才能到？"),
    ];
    for (kind, text) in requests {
        let decision = set.route(model, text).unwrap();
        let routed = &set.manifest.modules[decision.module].name;
        assert_eq!(routed, kind, "{text}: {:?}", decision.probabilities);

        let request = CompareRequest {
            prompt: text.into(),
            max_new_tokens: 24,
            ..CompareRequest::default()
        };
        let Comparison::Generation { base, adapted } =
            compare(model, &set.adapters[decision.module], &request).unwrap()
        else {
            panic!("the modules generate");
        };
        let opening = OPENINGS.iter().find(|(name, _)| *name == kind).unwrap().1;
        assert!(
            adapted.text.starts_with(opening),
            "{kind}: {:?}",
            adapted.text
        );
        assert!(!base.text.starts_with(opening), "base: {:?}", base.text);
    }

    // A module picked by hand answers in its own way, whatever the request.
    let complaint = set.module_index("complaint").unwrap();
    let request = CompareRequest {
        prompt: "我昨天下的订单什么时候能发货？".into(),
        max_new_tokens: 24,
        ..CompareRequest::default()
    };
    let Comparison::Generation { adapted, .. } =
        compare(model, &set.adapters[complaint], &request).unwrap()
    else {
        panic!("the modules generate");
    };
    assert!(
        adapted.text.starts_with("非常抱歉给您带来不便"),
        "{:?}",
        adapted.text
    );
    assert!(set
        .module_index("refund")
        .unwrap_err()
        .contains("complaint, product-question, order-query"));
}

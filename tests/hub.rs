//! Model specs, local model discovery and hub downloads, against the fake hub in
//! common/fake_hub.rs.

#[path = "common/fake_hub.rs"]
mod fake_hub;

use fake_hub::*;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reft_studio::model::hub::{
    list_local_models, resolve, DownloadEvent, HubOptions, LocalModel, LocalOrigin,
};
use reft_studio::model::source::{classify_path, ModelFiles, ModelSpec};
use reft_studio::model::ModelError;

/// Options pointing at `endpoint` with a fresh cache and models folder in `root`.
fn options(root: &Path, endpoint: &str, offline: bool) -> HubOptions {
    HubOptions {
        endpoint: endpoint.to_string(),
        offline,
        cache_dir: root.join("hub-cache"),
        models_dir: root.join("models"),
        token: None,
    }
}

/// Returns an endpoint on 127.0.0.1 whose port was just freed, so connecting to it is
/// refused.
fn closed_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

fn hub_spec(repo: &str, revision: Option<&str>) -> ModelSpec {
    ModelSpec::Hub {
        repo: repo.to_string(),
        revision: revision.map(str::to_string),
    }
}

fn resolve_collecting(
    spec: &ModelSpec,
    options: &HubOptions,
) -> (Result<ModelFiles, ModelError>, Vec<DownloadEvent>) {
    let mut events = Vec::new();
    let result = resolve(spec, options, &mut |event| events.push(event));
    (result, events)
}

fn started_total(events: &[DownloadEvent], name: &str) -> Option<Option<u64>> {
    events.iter().find_map(|event| match event {
        DownloadEvent::Started { file, total_bytes } if file == name => Some(*total_bytes),
        _ => None,
    })
}

fn finished_path(events: &[DownloadEvent], name: &str) -> Option<PathBuf> {
    events.iter().find_map(|event| match event {
        DownloadEvent::Finished { file, path } if file == name => Some(path.clone()),
        _ => None,
    })
}

#[test]
fn hub_download_lands_in_hf_cache_layout() {
    let hub = FakeHub::start(tiny_llama_repos());
    let root = tempfile::tempdir().unwrap();
    let options = options(root.path(), &hub.endpoint, false);

    let (result, events) = resolve_collecting(&hub_spec(REPO, None), &options);

    let repo_dir = options.cache_dir.join("models--test-org--tiny-llama");
    let snapshot = repo_dir.join("snapshots").join(MAIN_COMMIT);
    assert_eq!(result.unwrap(), ModelFiles::HfFolder(snapshot.clone()));
    assert_eq!(
        std::fs::read_to_string(repo_dir.join("refs/main")).unwrap(),
        MAIN_COMMIT
    );

    let tokenizer = TOKENIZER_JSON.as_bytes().to_vec();
    let expected_files = [
        ("config.json", read_fixture("config.json")),
        ("model.safetensors", read_fixture("model.safetensors")),
        ("tokenizer.json", tokenizer),
        (
            "generation_config.json",
            read_fixture("generation_config.json"),
        ),
    ];
    for (name, bytes) in &expected_files {
        let path = snapshot.join(name);
        assert_eq!(std::fs::read(&path).unwrap(), *bytes, "content of {name}");
        assert_eq!(
            started_total(&events, name),
            Some(Some(bytes.len() as u64)),
            "Started event of {name}"
        );
        assert_eq!(
            finished_path(&events, name),
            Some(path),
            "Finished event of {name}"
        );
    }
    for skipped in ["README.md", ".gitattributes"] {
        assert!(!snapshot.join(skipped).exists(), "{skipped} was downloaded");
    }

    assert_eq!(
        events.first(),
        Some(&DownloadEvent::Resolving {
            repo: REPO.to_string()
        })
    );
    let weight_size = read_fixture("model.safetensors").len() as u64;
    let weight_progress: Vec<u64> = events
        .iter()
        .filter_map(|event| match event {
            DownloadEvent::Progress { file, bytes, .. } if file == "model.safetensors" => {
                Some(*bytes)
            }
            _ => None,
        })
        .collect();
    assert!(
        !weight_progress.is_empty(),
        "no Progress events for the weights"
    );
    assert!(
        weight_progress.len() <= 101,
        "{} Progress events",
        weight_progress.len()
    );
    assert_eq!(weight_progress.last(), Some(&weight_size));

    let requests = hub.requests();
    eprintln!("requests:\n{}", requests.join("\n"));
    assert_eq!(
        requests.first().map(String::as_str),
        Some("GET /api/models/test-org/tiny-llama/revision/main -")
    );
}

#[test]
fn hub_second_resolve_uses_cache_without_network() {
    let hub = FakeHub::start(tiny_llama_repos());
    let root = tempfile::tempdir().unwrap();
    let online = options(root.path(), &hub.endpoint, false);
    let first = resolve_collecting(&hub_spec(REPO, None), &online)
        .0
        .unwrap();
    hub.stop();

    let offline = HubOptions {
        offline: true,
        ..online.clone()
    };
    for options in [&online, &offline] {
        let (result, events) = resolve_collecting(&hub_spec(REPO, None), options);
        assert_eq!(result.unwrap(), first, "offline = {}", options.offline);
        assert_eq!(
            events,
            vec![
                DownloadEvent::Resolving {
                    repo: REPO.to_string()
                },
                DownloadEvent::UsingLocal {
                    repo: REPO.to_string(),
                    path: first.path().to_path_buf()
                },
            ],
            "offline = {}",
            options.offline
        );
    }
}

#[test]
fn hub_gguf_revision_prefers_q8_0() {
    let hub = FakeHub::start(tiny_llama_repos());
    let root = tempfile::tempdir().unwrap();
    let options = options(root.path(), &hub.endpoint, false);

    let (result, events) = resolve_collecting(&hub_spec(REPO, Some("gguf")), &options);

    let repo_dir = options.cache_dir.join("models--test-org--tiny-llama");
    let expected = repo_dir
        .join("snapshots")
        .join(GGUF_COMMIT)
        .join("tiny-llama.Q8_0.gguf");
    assert_eq!(result.unwrap(), ModelFiles::Gguf(expected.clone()));
    assert_eq!(std::fs::read(&expected).unwrap(), fake_gguf("Q8_0"));
    assert_eq!(
        std::fs::read_to_string(repo_dir.join("refs/gguf")).unwrap(),
        GGUF_COMMIT
    );
    assert!(
        !repo_dir.join("refs/main").exists(),
        "refs/main was written"
    );
    assert_eq!(
        started_total(&events, "tiny-llama.Q8_0.gguf"),
        Some(Some(4096))
    );
    assert_eq!(started_total(&events, "tiny-llama.F16.gguf"), None);

    // The main branch is not in the cache, so offline it must fail even though the
    // gguf branch is.
    let offline = HubOptions {
        offline: true,
        ..options.clone()
    };
    let (main_result, _) = resolve_collecting(&hub_spec(REPO, None), &offline);
    assert!(matches!(
        main_result,
        Err(ModelError::OfflineNotCached { .. })
    ));
    let (gguf_result, _) = resolve_collecting(&hub_spec(REPO, Some("gguf")), &offline);
    assert_eq!(gguf_result.unwrap(), ModelFiles::Gguf(expected));
}

#[test]
fn hub_sharded_download_fetches_every_shard() {
    let hub = FakeHub::start(tiny_llama_repos());
    let root = tempfile::tempdir().unwrap();
    let options = options(root.path(), &hub.endpoint, false);

    let (result, events) = resolve_collecting(&hub_spec("test-org/sharded", None), &options);

    let snapshot = options
        .cache_dir
        .join("models--test-org--sharded/snapshots")
        .join(SHARDED_COMMIT);
    assert_eq!(result.unwrap(), ModelFiles::HfFolder(snapshot.clone()));
    assert_eq!(
        std::fs::read(snapshot.join("model-00001-of-00002.safetensors")).unwrap(),
        vec![1u8; 1000]
    );
    assert_eq!(
        std::fs::read(snapshot.join("model-00002-of-00002.safetensors")).unwrap(),
        vec![2u8; 2000]
    );
    assert!(snapshot.join("model.safetensors.index.json").is_file());
    assert_eq!(
        started_total(&events, "model-00002-of-00002.safetensors"),
        Some(Some(2000))
    );
}

#[test]
fn hub_offline_without_cache_fails_clearly() {
    let root = tempfile::tempdir().unwrap();
    let options = options(root.path(), &closed_endpoint(), true);

    let (result, _) = resolve_collecting(&hub_spec(REPO, None), &options);

    let error = result.unwrap_err();
    let message = error.to_string();
    match error {
        ModelError::OfflineNotCached {
            repo,
            cache,
            models,
        } => {
            assert_eq!(repo, REPO);
            assert_eq!(cache, options.cache_dir);
            assert_eq!(models, options.models_dir);
        }
        other => panic!("expected OfflineNotCached, got {other:?}"),
    }
    assert!(message.contains(REPO), "{message}");
    assert!(message.contains("HF_HUB_OFFLINE"), "{message}");
}

#[test]
fn hub_unreachable_names_endpoint() {
    let root = tempfile::tempdir().unwrap();
    let endpoint = closed_endpoint();
    let options = options(root.path(), &endpoint, false);

    let started = Instant::now();
    let (result, _) = resolve_collecting(&hub_spec(REPO, None), &options);
    let elapsed = started.elapsed();

    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    let error = result.unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, ModelError::HubUnreachable { ref endpoint, .. } if *endpoint == options.endpoint),
        "{error:?}"
    );
    assert!(message.contains(&endpoint), "{message}");
    assert!(message.contains("HF_ENDPOINT"), "{message}");
    assert!(message.contains("local .gguf file"), "{message}");
}

#[test]
fn hub_missing_repo_is_not_found() {
    let hub = FakeHub::start(tiny_llama_repos());
    let root = tempfile::tempdir().unwrap();
    let options = options(root.path(), &hub.endpoint, false);

    let cases = [
        (hub_spec("test-org/missing", None), "404"),
        (hub_spec(REPO, Some("no-such-branch")), "404"),
        (hub_spec("test-org/private", None), "HF_TOKEN"),
    ];
    for (spec, expected_text) in cases {
        let (result, _) = resolve_collecting(&spec, &options);
        let error = result.unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, ModelError::HubNotFound { .. }),
            "{spec}: {error:?}"
        );
        assert!(message.contains(spec.hub_repo().unwrap()), "{message}");
        assert!(message.contains(expected_text), "{message}");
    }
}

#[test]
fn hub_repo_without_weights_is_rejected() {
    let hub = FakeHub::start(tiny_llama_repos());
    let root = tempfile::tempdir().unwrap();
    let options = options(root.path(), &hub.endpoint, false);

    let (result, events) = resolve_collecting(&hub_spec("test-org/no-weights", None), &options);

    match result.unwrap_err() {
        ModelError::HubNoWeights { repo, files } => {
            assert_eq!(repo, "test-org/no-weights");
            assert_eq!(files, "README.md, config.json");
        }
        other => panic!("expected HubNoWeights, got {other:?}"),
    }
    assert!(
        !events
            .iter()
            .any(|event| matches!(event, DownloadEvent::Started { .. })),
        "{events:?}"
    );

    let (result, _) = resolve_collecting(&hub_spec("test-org/no-config", None), &options);
    let error = result.unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, ModelError::InvalidSpec { .. }), "{error:?}");
    assert!(message.contains("no config.json"), "{message}");
}

#[test]
fn models_folder_is_found_first() {
    let root = tempfile::tempdir().unwrap();
    let options = options(root.path(), &closed_endpoint(), false);
    let folder = options.models_dir.join("test-org/tiny-llama");
    std::fs::create_dir_all(&folder).unwrap();
    let gguf = folder.join("tiny-llama.Q8_0.gguf");
    std::fs::write(&gguf, fake_gguf("Q8_0")).unwrap();

    for revision in [None, Some("gguf")] {
        let (result, events) = resolve_collecting(&hub_spec(REPO, revision), &options);
        assert_eq!(result.unwrap(), ModelFiles::Gguf(gguf.clone()));
        assert_eq!(
            events.last(),
            Some(&DownloadEvent::UsingLocal {
                repo: REPO.to_string(),
                path: gguf.clone()
            })
        );
    }
}

#[test]
fn spec_parse_cases() {
    let base = tempfile::tempdir().unwrap();
    let base_dir = base.path();
    std::fs::write(base_dir.join("model.gguf"), b"GGUF").unwrap();
    std::fs::create_dir_all(base_dir.join("org/model")).unwrap();
    let absolute = base_dir.join("model.gguf");

    let hub = |repo: &str, revision: Option<&str>| Ok(hub_spec(repo, revision));
    let cases: Vec<(String, Option<&Path>, Result<ModelSpec, &str>)> = vec![
        (
            absolute.display().to_string(),
            None,
            Ok(ModelSpec::Path(absolute.clone())),
        ),
        (
            "model.gguf".to_string(),
            Some(base_dir),
            Ok(ModelSpec::Path(absolute.clone())),
        ),
        (
            "org/model".to_string(),
            Some(base_dir),
            Ok(ModelSpec::Path(base_dir.join("org/model"))),
        ),
        (
            "hf:org/model".to_string(),
            Some(base_dir),
            hub("org/model", None),
        ),
        (
            "owner/name".to_string(),
            Some(base_dir),
            hub("owner/name", None),
        ),
        ("  owner/name  ".to_string(), None, hub("owner/name", None)),
        (
            "HuggingFaceTB/SmolLM2-135M-Instruct@v1.0".to_string(),
            None,
            hub("HuggingFaceTB/SmolLM2-135M-Instruct", Some("v1.0")),
        ),
        (
            "owner/name@refs/pr/1".to_string(),
            None,
            hub("owner/name", Some("refs/pr/1")),
        ),
        (
            "./missing.gguf".to_string(),
            Some(base_dir),
            Err("NotFound"),
        ),
        ("foo.gguf".to_string(), Some(base_dir), Err("NotFound")),
        ("a/b/c".to_string(), Some(base_dir), Err("NotFound")),
        ("".to_string(), None, Err("InvalidSpec")),
        ("garbage".to_string(), Some(base_dir), Err("InvalidSpec")),
        ("owner/".to_string(), None, Err("InvalidSpec")),
        ("owner/na me".to_string(), None, Err("InvalidSpec")),
        ("owner/name@".to_string(), None, Err("InvalidSpec")),
        ("owner/bad--name".to_string(), None, Err("InvalidSpec")),
        (
            "hf:./model.gguf".to_string(),
            Some(base_dir),
            Err("InvalidSpec"),
        ),
    ];

    for (value, base, expected) in cases {
        let parsed = ModelSpec::parse(&value, base);
        match (parsed, expected) {
            (Ok(spec), Ok(expected)) => assert_eq!(spec, expected, "{value:?}"),
            (Err(error), Err(kind)) => {
                let actual_kind = match error {
                    ModelError::NotFound { .. } => "NotFound",
                    ModelError::InvalidSpec { .. } => "InvalidSpec",
                    _ => "other",
                };
                assert_eq!(actual_kind, kind, "{value:?}: {error}");
                assert!(
                    error.to_string().contains("owner/name")
                        || error.to_string().contains("hub id"),
                    "{value:?}: message does not say what was expected: {error}"
                );
            }
            (parsed, expected) => panic!("{value:?}: got {parsed:?}, expected {expected:?}"),
        }
    }

    let missing = ModelSpec::parse("./missing.gguf", Some(base_dir)).unwrap_err();
    assert!(
        matches!(missing, ModelError::NotFound { ref path } if *path == base_dir.join("./missing.gguf")),
        "{missing:?}"
    );
}

#[test]
fn spec_display_round_trips() {
    for value in ["owner/name", "owner/name@main", "owner/name@refs/pr/1"] {
        let spec = ModelSpec::parse(value, None).unwrap();
        assert_eq!(spec.to_string(), value);
        assert_eq!(ModelSpec::parse(&spec.to_string(), None).unwrap(), spec);
    }
    let path = ModelSpec::Path(PathBuf::from("/models/tiny.gguf"));
    assert_eq!(path.to_string(), "/models/tiny.gguf");
}

#[test]
fn classify_path_cases() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();

    let hf = root.join("hf");
    std::fs::create_dir_all(&hf).unwrap();
    for name in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture_dir().join(name), hf.join(name)).unwrap();
    }
    assert_eq!(
        classify_path(&hf).unwrap(),
        ModelFiles::HfFolder(hf.clone())
    );

    let indexed = root.join("indexed");
    std::fs::create_dir_all(&indexed).unwrap();
    std::fs::write(indexed.join("config.json"), "{}").unwrap();
    std::fs::write(indexed.join("model.safetensors.index.json"), "{}").unwrap();
    assert_eq!(
        classify_path(&indexed).unwrap(),
        ModelFiles::HfFolder(indexed.clone())
    );

    let single = root.join("single");
    std::fs::create_dir_all(&single).unwrap();
    std::fs::write(single.join("only.gguf"), b"GGUF").unwrap();
    assert_eq!(
        classify_path(&single).unwrap(),
        ModelFiles::Gguf(single.join("only.gguf"))
    );
    assert_eq!(
        classify_path(&single.join("only.gguf")).unwrap(),
        ModelFiles::Gguf(single.join("only.gguf"))
    );

    let several = root.join("several");
    std::fs::create_dir_all(&several).unwrap();
    for name in ["m.F16.gguf", "m.Q4_K_M.gguf", "m.Q8_0.gguf"] {
        std::fs::write(several.join(name), b"GGUF").unwrap();
    }
    assert_eq!(
        classify_path(&several).unwrap(),
        ModelFiles::Gguf(several.join("m.Q8_0.gguf"))
    );

    let no_q8 = root.join("no-q8");
    std::fs::create_dir_all(&no_q8).unwrap();
    for name in ["b.Q4_K_M.gguf", "a.F16.gguf"] {
        std::fs::write(no_q8.join(name), b"GGUF").unwrap();
    }
    assert_eq!(
        classify_path(&no_q8).unwrap(),
        ModelFiles::Gguf(no_q8.join("a.F16.gguf"))
    );

    let config_only = root.join("config-only");
    std::fs::create_dir_all(&config_only).unwrap();
    std::fs::write(config_only.join("config.json"), "{}").unwrap();
    let error = classify_path(&config_only).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, ModelError::InvalidSpec { .. }), "{error:?}");
    assert!(message.contains("missing model.safetensors"), "{message}");
    assert!(!message.contains("missing config.json"), "{message}");

    let empty = root.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let message = classify_path(&empty).unwrap_err().to_string();
    assert!(
        message.contains("config.json and model.safetensors"),
        "{message}"
    );

    let text_file = root.join("notes.txt");
    std::fs::write(&text_file, "hello").unwrap();
    assert!(matches!(
        classify_path(&text_file),
        Err(ModelError::InvalidSpec { .. })
    ));

    assert!(matches!(
        classify_path(&root.join("missing")),
        Err(ModelError::NotFound { .. })
    ));
}

/// Writes a snapshot by hand in the Hugging Face cache layout, with real files in place
/// of the symlinks into `blobs/` that hf-hub creates.
fn write_cached_snapshot(cache_dir: &Path, repo: &str, commit: &str, files: &[(&str, &[u8])]) {
    let repo_dir = cache_dir.join(format!("models--{}", repo.replace('/', "--")));
    std::fs::create_dir_all(repo_dir.join("refs")).unwrap();
    std::fs::write(repo_dir.join("refs/main"), commit).unwrap();
    let snapshot = repo_dir.join("snapshots").join(commit);
    for (name, bytes) in files {
        let path = snapshot.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

#[test]
fn list_local_models_finds_both_origins() {
    let root = tempfile::tempdir().unwrap();
    let options = options(root.path(), &closed_endpoint(), true);

    write_cached_snapshot(
        &options.cache_dir,
        "cached-org/full",
        MAIN_COMMIT,
        &[
            ("config.json", b"{}"),
            ("model.safetensors", b"weights"),
            ("tokenizer.json", b"{}"),
        ],
    );
    // No tokenizer.json, so the snapshot is incomplete and must not be listed.
    write_cached_snapshot(
        &options.cache_dir,
        "cached-org/partial",
        MAIN_COMMIT,
        &[("config.json", b"{}"), ("model.safetensors", b"weights")],
    );
    write_cached_snapshot(
        &options.cache_dir,
        "cached-org/quantized",
        GGUF_COMMIT,
        &[("q8/model.Q8_0.gguf", b"GGUF")],
    );
    std::fs::create_dir_all(options.cache_dir.join(".locks")).unwrap();

    let local_folder = options.models_dir.join("local-org/tiny");
    std::fs::create_dir_all(&local_folder).unwrap();
    std::fs::write(local_folder.join("tiny.gguf"), b"GGUF").unwrap();
    std::fs::create_dir_all(options.models_dir.join("local-org/empty")).unwrap();

    let cached_snapshot = options
        .cache_dir
        .join("models--cached-org--full/snapshots")
        .join(MAIN_COMMIT);
    let quantized = options
        .cache_dir
        .join("models--cached-org--quantized/snapshots")
        .join(GGUF_COMMIT)
        .join("q8/model.Q8_0.gguf");
    assert_eq!(
        list_local_models(&options),
        vec![
            LocalModel {
                repo: "cached-org/full".to_string(),
                files: ModelFiles::HfFolder(cached_snapshot.clone()),
                origin: LocalOrigin::HfCache,
            },
            LocalModel {
                repo: "cached-org/quantized".to_string(),
                files: ModelFiles::Gguf(quantized),
                origin: LocalOrigin::HfCache,
            },
            LocalModel {
                repo: "local-org/tiny".to_string(),
                files: ModelFiles::Gguf(local_folder.join("tiny.gguf")),
                origin: LocalOrigin::ModelsFolder,
            },
        ]
    );

    // What the list shows must also resolve offline.
    let (result, _) = resolve_collecting(&hub_spec("cached-org/full", None), &options);
    assert_eq!(result.unwrap(), ModelFiles::HfFolder(cached_snapshot));
    let (result, _) = resolve_collecting(&hub_spec("cached-org/partial", None), &options);
    assert!(matches!(result, Err(ModelError::OfflineNotCached { .. })));
}

#[test]
fn hub_options_from_vars() {
    let vars = |pairs: &[(&str, &str)]| {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        HubOptions::from_vars(move |name| map.get(name).cloned())
    };

    let options = vars(&[
        ("HF_ENDPOINT", "http://mirror.example:8080/"),
        ("HF_HUB_OFFLINE", "True"),
        ("HF_HOME", "/data/hf"),
        ("REFT_STUDIO_MODELS", "/data/models"),
        ("HF_TOKEN", "hf_secret"),
    ]);
    assert_eq!(options.endpoint, "http://mirror.example:8080");
    assert!(options.offline);
    assert_eq!(options.cache_dir, PathBuf::from("/data/hf/hub"));
    assert_eq!(options.models_dir, PathBuf::from("/data/models"));
    assert_eq!(options.token.as_deref(), Some("hf_secret"));

    let options = vars(&[("HF_HUB_CACHE", "/cache"), ("HF_HOME", "/data/hf")]);
    assert_eq!(options.cache_dir, PathBuf::from("/cache"));
    assert_eq!(options.endpoint, "https://huggingface.co");
    assert_eq!(options.token, None);

    for (value, offline) in [
        ("1", true),
        ("on", true),
        ("yes", true),
        ("0", false),
        ("", false),
    ] {
        let options = vars(&[("HF_HUB_OFFLINE", value)]);
        assert_eq!(options.offline, offline, "HF_HUB_OFFLINE={value:?}");
    }

    let options = vars(&[]);
    assert!(
        options.cache_dir.ends_with(".cache/huggingface/hub"),
        "{}",
        options.cache_dir.display()
    );
    assert!(
        options.models_dir.ends_with("reft-studio/models"),
        "{}",
        options.models_dir.display()
    );
}

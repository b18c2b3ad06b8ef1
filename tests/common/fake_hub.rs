//! `FakeHub`: a tiny_http server on 127.0.0.1 that responds to hf-hub 0.4.3's requests the
//! way huggingface.co does, serving a few small repositories.
//!
//! - `GET /api/models/{owner}/{name}/revision/{revision}` returns the repository info
//!   JSON (`sha` and `siblings[].rfilename`).
//! - `GET /{owner}/{name}/resolve/{revision}/{file}` with `Range: bytes=0-0` is the
//!   metadata request. Small files get `206` with `ETag`, `X-Repo-Commit` and
//!   `Content-Range: bytes 0-0/{size}`. Large files (LFS: safetensors and GGUF) get
//!   `302` with `X-Linked-Etag`, `X-Linked-Size`, `X-Repo-Commit` and an absolute
//!   `Location` on `/cdn/{etag}`, which responds to the range request with `206`.
//! - The download repeats the resolve request with `Range: bytes={offset}-` and follows
//!   the redirect.
//! - Unknown repositories, revisions and files get `404` with `X-Error-Code`.
//!
//! NOTE: hf-hub's HTTP client reads HTTP_PROXY, HTTPS_PROXY and ALL_PROXY and ignores
//! NO_PROXY, so with a proxy set in the environment these requests to 127.0.0.1 go to
//! the proxy and the hub tests fail.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tiny_http::{Header, Response, Server};

pub const REPO: &str = "test-org/tiny-llama";
pub const MAIN_COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
pub const GGUF_COMMIT: &str = "fedcba9876543210fedcba9876543210fedcba98";
pub const SHARDED_COMMIT: &str = "1111111111222222222233333333334444444444";
pub const NO_WEIGHTS_COMMIT: &str = "abcdefabcdefabcdefabcdefabcdefabcdefabcd";

pub const TOKENIZER_JSON: &str = r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],"normalizer":null,"pre_tokenizer":{"type":"Whitespace"},"post_processor":null,"decoder":null,"model":{"type":"WordLevel","vocab":{"<unk>":0,"hello":1,"world":2},"unk_token":"<unk>"}}"#;

pub fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-llama")
}

pub fn read_fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_dir().join(name)).unwrap()
}

/// One file of a fake repository revision.
#[derive(Clone)]
pub struct FakeFile {
    pub bytes: Vec<u8>,
    /// Whether the real hub would store the file in LFS and redirect its downloads.
    pub lfs: bool,
}

/// One revision (branch) of a fake repository.
#[derive(Clone)]
pub struct FakeRevision {
    pub commit: &'static str,
    pub files: BTreeMap<String, FakeFile>,
}

pub fn file(bytes: impl Into<Vec<u8>>, lfs: bool) -> FakeFile {
    FakeFile {
        bytes: bytes.into(),
        lfs,
    }
}

/// The fake hub's content: repo id -> revision name -> files. A revision is also found
/// by its commit hash. Repos in `unauthorized` respond with 401, as the real hub does for
/// private repositories and for unknown ones when no token is sent.
pub struct FakeRepos {
    pub repos: BTreeMap<String, BTreeMap<String, FakeRevision>>,
    pub unauthorized: Vec<String>,
}

pub fn tiny_llama_repos() -> FakeRepos {
    let mut main_files = BTreeMap::new();
    main_files.insert(
        "config.json".to_string(),
        file(read_fixture("config.json"), false),
    );
    main_files.insert(
        "generation_config.json".to_string(),
        file(read_fixture("generation_config.json"), false),
    );
    main_files.insert(
        "model.safetensors".to_string(),
        file(read_fixture("model.safetensors"), true),
    );
    main_files.insert("tokenizer.json".to_string(), file(TOKENIZER_JSON, false));
    main_files.insert("README.md".to_string(), file("# tiny-llama\n", false));
    main_files.insert(
        ".gitattributes".to_string(),
        file("*.safetensors filter=lfs\n", false),
    );

    let mut gguf_files = BTreeMap::new();
    gguf_files.insert(
        "tiny-llama.F16.gguf".to_string(),
        file(fake_gguf("F16"), true),
    );
    gguf_files.insert(
        "tiny-llama.Q4_K_M.gguf".to_string(),
        file(fake_gguf("Q4_K_M"), true),
    );
    gguf_files.insert(
        "tiny-llama.Q8_0.gguf".to_string(),
        file(fake_gguf("Q8_0"), true),
    );
    gguf_files.insert("README.md".to_string(), file("# gguf\n", false));

    let mut tiny_llama = BTreeMap::new();
    tiny_llama.insert(
        "main".to_string(),
        FakeRevision {
            commit: MAIN_COMMIT,
            files: main_files,
        },
    );
    tiny_llama.insert(
        "gguf".to_string(),
        FakeRevision {
            commit: GGUF_COMMIT,
            files: gguf_files,
        },
    );

    let index = serde_json::json!({
        "metadata": {"total_size": 24},
        "weight_map": {
            "a.weight": "model-00001-of-00002.safetensors",
            "b.weight": "model-00002-of-00002.safetensors",
            "c.weight": "model-00002-of-00002.safetensors",
        }
    });
    let mut sharded_files = BTreeMap::new();
    sharded_files.insert(
        "config.json".to_string(),
        file(read_fixture("config.json"), false),
    );
    sharded_files.insert(
        "model.safetensors.index.json".to_string(),
        file(index.to_string(), false),
    );
    sharded_files.insert(
        "model-00001-of-00002.safetensors".to_string(),
        file(vec![1u8; 1000], true),
    );
    sharded_files.insert(
        "model-00002-of-00002.safetensors".to_string(),
        file(vec![2u8; 2000], true),
    );
    sharded_files.insert("tokenizer.json".to_string(), file(TOKENIZER_JSON, false));
    let mut sharded = BTreeMap::new();
    sharded.insert(
        "main".to_string(),
        FakeRevision {
            commit: SHARDED_COMMIT,
            files: sharded_files,
        },
    );

    let mut no_weights_files = BTreeMap::new();
    no_weights_files.insert("README.md".to_string(), file("# no weights\n", false));
    no_weights_files.insert(
        "config.json".to_string(),
        file(read_fixture("config.json"), false),
    );
    let mut no_weights = BTreeMap::new();
    no_weights.insert(
        "main".to_string(),
        FakeRevision {
            commit: NO_WEIGHTS_COMMIT,
            files: no_weights_files,
        },
    );

    let mut no_config_files = BTreeMap::new();
    no_config_files.insert(
        "model.safetensors".to_string(),
        file(read_fixture("model.safetensors"), true),
    );
    let mut no_config = BTreeMap::new();
    no_config.insert(
        "main".to_string(),
        FakeRevision {
            commit: NO_WEIGHTS_COMMIT,
            files: no_config_files,
        },
    );

    let mut repos = BTreeMap::new();
    repos.insert(REPO.to_string(), tiny_llama);
    repos.insert("test-org/no-config".to_string(), no_config);
    repos.insert("test-org/sharded".to_string(), sharded);
    repos.insert("test-org/no-weights".to_string(), no_weights);
    FakeRepos {
        repos,
        unauthorized: vec!["test-org/private".to_string()],
    }
}

pub fn fake_gguf(tag: &str) -> Vec<u8> {
    let mut bytes = b"GGUF".to_vec();
    bytes.extend_from_slice(&3u32.to_le_bytes());
    bytes.extend_from_slice(tag.as_bytes());
    bytes.resize(4096, 0);
    bytes
}

/// Returns a fake blob id: 64 hex digits from an FNV-1a hash of the bytes. The real hub uses
/// the SHA-256 for LFS files and the git blob SHA-1 for others, but hf-hub uses it only
/// as the blob's file name.
pub fn fake_etag(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf29ce484222325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x100000001b3);
    }
    format!("{hash:016x}").repeat(4)
}

pub fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).unwrap()
}

/// A hub server on 127.0.0.1 that serves [`FakeRepos`] until [`FakeHub::stop`] or drop.
pub struct FakeHub {
    pub endpoint: String,
    pub server: Arc<Server>,
    pub worker: Option<JoinHandle<()>>,
    /// Every request as "METHOD url range", in order.
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl FakeHub {
    pub fn start(repos: FakeRepos) -> FakeHub {
        let server = Arc::new(Server::http("127.0.0.1:0").unwrap());
        let port = server.server_addr().to_ip().unwrap().port();
        let endpoint = format!("http://127.0.0.1:{port}");
        let requests = Arc::new(Mutex::new(Vec::new()));

        let worker = {
            let server = Arc::clone(&server);
            let requests = Arc::clone(&requests);
            let endpoint = endpoint.clone();
            std::thread::spawn(move || {
                for request in server.incoming_requests() {
                    let range = request
                        .headers()
                        .iter()
                        .find(|h| h.field.equiv("Range"))
                        .map(|h| h.value.as_str().to_string());
                    requests.lock().unwrap().push(format!(
                        "{} {} {}",
                        request.method(),
                        request.url(),
                        range.as_deref().unwrap_or("-")
                    ));
                    let response = respond(&repos, &endpoint, request.url(), range.as_deref());
                    let _ = request.respond(response);
                }
            })
        };

        FakeHub {
            endpoint,
            server,
            worker: Some(worker),
            requests,
        }
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// Stops serving and closes the listening socket.
    pub fn stop(mut self) {
        self.shutdown();
    }

    pub fn shutdown(&mut self) {
        self.server.unblock();
        if let Some(worker) = self.worker.take() {
            worker.join().unwrap();
        }
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        self.shutdown();
    }
}

pub type FakeResponse = Response<std::io::Cursor<Vec<u8>>>;

pub fn not_found(error_code: &str, message: &str) -> FakeResponse {
    Response::from_string(format!(r#"{{"error":"{message}"}}"#))
        .with_status_code(404)
        .with_header(header("X-Error-Code", error_code))
        .with_header(header("Content-Type", "application/json"))
}

pub fn respond(repos: &FakeRepos, endpoint: &str, url: &str, range: Option<&str>) -> FakeResponse {
    let path = url.split('?').next().unwrap_or(url);

    if let Some(etag) = path.strip_prefix("/cdn/") {
        let found = repos
            .repos
            .values()
            .flat_map(|revisions| revisions.values())
            .flat_map(|revision| revision.files.values())
            .find(|file| fake_etag(&file.bytes) == etag);
        return match found {
            Some(file) => ranged(&file.bytes, range),
            None => not_found("EntryNotFound", "blob not found"),
        };
    }

    if let Some(rest) = path.strip_prefix("/api/models/") {
        let Some((repo, revision)) = rest.split_once("/revision/") else {
            return not_found("RepoNotFound", "Repository not found");
        };
        return repo_info(repos, repo, revision);
    }

    let parts: Vec<&str> = path.trim_start_matches('/').splitn(5, '/').collect();
    if parts.len() == 5 && parts[2] == "resolve" {
        let repo = format!("{}/{}", parts[0], parts[1]);
        return resolve_file(repos, endpoint, &repo, parts[3], parts[4], range);
    }
    not_found("RepoNotFound", "Repository not found")
}

/// Finds a revision by branch name or commit hash.
pub fn find_revision<'a>(
    repos: &'a FakeRepos,
    repo: &str,
    revision: &str,
) -> Result<&'a FakeRevision, FakeResponse> {
    if repos.unauthorized.iter().any(|name| name == repo) {
        return Err(
            Response::from_string(r#"{"error":"Invalid username or password."}"#)
                .with_status_code(401)
                .with_header(header("X-Error-Code", "RepoNotFound")),
        );
    }
    let Some(revisions) = repos.repos.get(repo) else {
        return Err(not_found("RepoNotFound", "Repository not found"));
    };
    let revision = revision.replace("%2F", "/");
    revisions
        .get(&revision)
        .or_else(|| revisions.values().find(|r| r.commit == revision))
        .ok_or_else(|| not_found("RevisionNotFound", "Invalid rev id"))
}

pub fn repo_info(repos: &FakeRepos, repo: &str, revision: &str) -> FakeResponse {
    let revision = match find_revision(repos, repo, revision) {
        Ok(revision) => revision,
        Err(response) => return response,
    };
    let siblings: Vec<serde_json::Value> = revision
        .files
        .keys()
        .map(|name| serde_json::json!({ "rfilename": name }))
        .collect();
    let info = serde_json::json!({
        "_id": "000000000000000000000000",
        "id": repo,
        "modelId": repo,
        "private": false,
        "sha": revision.commit,
        "siblings": siblings,
    });
    Response::from_string(info.to_string()).with_header(header("Content-Type", "application/json"))
}

pub fn resolve_file(
    repos: &FakeRepos,
    endpoint: &str,
    repo: &str,
    revision: &str,
    name: &str,
    range: Option<&str>,
) -> FakeResponse {
    let revision = match find_revision(repos, repo, revision) {
        Ok(revision) => revision,
        Err(response) => return response,
    };
    let Some(file) = revision.files.get(name) else {
        return not_found("EntryNotFound", "Entry not found");
    };
    let etag = fake_etag(&file.bytes);

    if file.lfs {
        return Response::from_string("")
            .with_status_code(302)
            .with_header(header(
                "Location",
                &format!("{endpoint}/cdn/{etag}?X-Amz-Signature=fake"),
            ))
            .with_header(header("X-Linked-Etag", &format!("\"{etag}\"")))
            .with_header(header("X-Linked-Size", &file.bytes.len().to_string()))
            .with_header(header("X-Repo-Commit", revision.commit))
            .with_header(header(
                "ETag",
                "\"0000000000000000000000000000000000000000\"",
            ));
    }
    ranged(&file.bytes, range)
        .with_header(header("ETag", &format!("\"{etag}\"")))
        .with_header(header("X-Repo-Commit", revision.commit))
}

/// Responds to `Range: bytes=start-` or `bytes=start-end` with 206, or the whole file with
/// 200 when there is no range.
pub fn ranged(bytes: &[u8], range: Option<&str>) -> FakeResponse {
    let Some(spec) = range.and_then(|range| range.strip_prefix("bytes=")) else {
        return Response::from_data(bytes.to_vec());
    };
    let (start, end) = spec.split_once('-').unwrap();
    let start: usize = start.parse().unwrap();
    let end: usize = if end.is_empty() {
        bytes.len() - 1
    } else {
        end.parse::<usize>().unwrap().min(bytes.len() - 1)
    };
    if start > end {
        return Response::from_string("")
            .with_status_code(416)
            .with_header(header("Content-Range", &format!("bytes */{}", bytes.len())));
    }
    Response::from_data(bytes[start..=end].to_vec())
        .with_status_code(206)
        .with_header(header(
            "Content-Range",
            &format!("bytes {start}-{end}/{}", bytes.len()),
        ))
        .with_header(header("Accept-Ranges", "bytes"))
}

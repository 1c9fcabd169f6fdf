//! The GitHub wire oracle: tests/oracle/github/sdk_requests.mjs runs the official `@octokit/rest`
//! client (installed by `npm ci` in tests/oracle/github) against a capture server for every
//! operation in tests/oracle/github/operations.json; this test runs the same operations through
//! kosmo (manifests/github.yaml, loaded from the file) against a capture server of its own and
//! compares method, path, query, JSON body and the authorization / accept /
//! x-github-api-version headers. Operations with `"auth": false` run without a token on both
//! sides (the manifest's optional auth): no authorization header may be sent.
//!
//! Two documented differences are normalised, per operation, not globally:
//! - query pairs are compared sorted: octokit sends them in its parameter order, kosmo sorts them
//!   by name; GitHub does not care about the order;
//! - `"compare_path": "decoded"` compares percent-decoded paths: octokit's `{path}` expansion encodes `/`
//!   as `%2F` in `repos.getContent`, kosmo's `{+path}` keeps the slashes (GitHub's documented
//!   form); GitHub serves both the same.

use std::path::PathBuf;
use std::sync::Arc;

use indexmap::IndexMap;
use kosmo::credentials::{CredentialFile, Credentials};
use kosmo::exec::{Call, ExecConfig, Executor};
use kosmo::registry::{Registry, load_file};
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const TOKEN: &str = "ghp_oracleToken0123456789";
const COMPARED_HEADERS: [&str; 3] = ["authorization", "accept", "x-github-api-version"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn oracle_dir() -> PathBuf {
    root().join("tests/oracle/github")
}

/// `node`, when it and the installed @octokit/rest are there; else None (a loud SKIP; a failure
/// under CI, where .ci/run installs it).
fn octokit_node() -> Option<PathBuf> {
    let node = std::env::var_os("KOSMO_NODE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("node"));
    let has_node = std::process::Command::new(&node)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    let installed = oracle_dir()
        .join("node_modules/@octokit/rest/package.json")
        .exists();
    if has_node && installed {
        return Some(node);
    }
    let why = if has_node {
        "@octokit/rest is not installed (run `npm ci` in tests/oracle/github)"
    } else {
        "node is not on PATH (set KOSMO_NODE)"
    };
    if std::env::var_os("CI").is_some() {
        panic!("the @octokit/rest oracle is required under CI: {why}");
    }
    eprintln!("SKIP: the GitHub wire oracle: {why}");
    None
}

/// Answers like the Node capture server, so both clients see the same bodies.
struct Answer;

impl Respond for Answer {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let path = req.url.path();
        let get = req.method.as_str() == "GET";
        let body = if path.starts_with("/search/") {
            json!({"total_count": 0, "incomplete_results": false, "items": []})
        } else if get
            && (path.ends_with("/repos") || path.ends_with("/issues") || path.ends_with("/pulls"))
        {
            json!([])
        } else {
            json!({"id": 1})
        };
        let status = if req.method.as_str() == "POST" {
            201
        } else {
            200
        };
        ResponseTemplate::new(status)
            .insert_header("x-github-request-id", "ORACLE:1")
            .set_body_json(body)
    }
}

fn node_side(node: &PathBuf) -> Vec<Value> {
    let out = std::process::Command::new(node)
        .arg(oracle_dir().join("sdk_requests.mjs"))
        .arg(oracle_dir().join("operations.json"))
        .current_dir(oracle_dir())
        .output()
        .expect("run sdk_requests.mjs");
    assert!(
        out.status.success(),
        "tests/oracle/github/sdk_requests.mjs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("sdk_requests.mjs prints JSON")
}

/// An executor over manifests/github.yaml alone: the default account has the token, the
/// `public` account only the base URL.
pub fn github_executor(base: &str) -> Executor {
    let integ = load_file(&root().join("manifests/github.yaml")).expect("manifests/github.yaml");
    let mut reg = Registry::default();
    reg.insert(integ);
    let mut default = IndexMap::new();
    default.insert("token".to_string(), TOKEN.to_string());
    default.insert("url".to_string(), base.to_string());
    let mut public = IndexMap::new();
    public.insert("url".to_string(), base.to_string());
    let mut file = CredentialFile::new();
    file.insert(
        "github".to_string(),
        IndexMap::from([
            ("default".to_string(), default),
            ("public".to_string(), public),
        ]),
    );
    Executor::new(
        Arc::new(reg),
        Arc::new(Credentials::from_entries(PathBuf::new(), file)),
        ExecConfig {
            max_retries: 0,
            ..ExecConfig::default()
        },
    )
    .expect("executor")
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

fn sorted_pairs(v: &Value) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = v
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    (
                        p[0].as_str().unwrap_or("").to_string(),
                        p[1].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    pairs.sort();
    pairs
}

#[tokio::test]
async fn github_requests_match_octokit_rest() {
    let Some(node) = octokit_node() else {
        return;
    };
    let ops: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(oracle_dir().join("operations.json")).unwrap(),
    )
    .unwrap();
    let sdk = tokio::task::spawn_blocking(move || node_side(&node))
        .await
        .unwrap();
    assert_eq!(sdk.len(), ops.len());

    let srv = MockServer::start().await;
    let ex = github_executor(&srv.uri());

    let mut mismatches = Vec::new();
    let mut public_reads = 0;
    for (op, want) in ops.iter().zip(&sdk) {
        let name = op["name"].as_str().unwrap();
        assert_eq!(want["name"], name);
        assert!(
            want.get("error").is_none(),
            "the octokit side of {name} failed: {}",
            want["error"]
        );
        srv.reset().await;
        Mock::given(wiremock::matchers::any())
            .respond_with(Answer)
            .mount(&srv)
            .await;
        let function = op["function"].as_str().unwrap();
        let mut call = Call::new("github", function, op["args"].clone());
        if op["auth"] == false {
            call.account = Some("public");
            public_reads += 1;
        }
        if let Err(e) = ex.call(call).await {
            mismatches.push(format!("{name}: kosmo failed: {e}"));
            continue;
        }
        let reqs = srv.received_requests().await.unwrap();
        let Some(r) = reqs.last() else {
            mismatches.push(format!("{name}: kosmo sent nothing"));
            continue;
        };
        let headers: serde_json::Map<String, Value> = COMPARED_HEADERS
            .iter()
            .map(|h| {
                (
                    h.to_string(),
                    json!(r.headers.get(*h).and_then(|v| v.to_str().ok())),
                )
            })
            .collect();
        let decoded = op["compare_path"] == "decoded";
        let norm_path = |p: &str| {
            if decoded {
                percent_decode(p)
            } else {
                p.to_string()
            }
        };
        let query: Vec<(String, String)> = r
            .url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let body: Value = if r.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&r.body)
                .unwrap_or_else(|_| json!(String::from_utf8_lossy(&r.body)))
        };
        let got = json!({"method": r.method.as_str(), "path": norm_path(r.url.path()),
            "query": sorted_pairs(&json!(query)), "body": body, "headers": headers});
        let want_norm = json!({"method": want["method"],
            "path": norm_path(want["path"].as_str().unwrap_or("")),
            "query": sorted_pairs(&want["query"]), "body": want["body"],
            "headers": want["headers"]});
        if got != want_norm {
            mismatches.push(format!("{name}:\n  kosmo: {got}\n  sdk:   {want_norm}"));
        }
    }
    assert!(public_reads > 0, "the oracle must exercise optional auth");
    assert!(
        mismatches.is_empty(),
        "{} of {} operations differ from @octokit/rest:\n{}",
        mismatches.len(),
        ops.len(),
        mismatches.join("\n")
    );
}

//! The SDK wire oracle: tests/oracle/sdk_requests.py runs the official Python SDK against a
//! capture server for every operation in tests/oracle/operations.json; this test runs the same
//! operations through kosmo (the built-in Anthropic manifest) against a capture server of its own
//! and compares method, path (percent-encoded as sent), query (in order), JSON body (or the
//! multipart parts), and the authorization / x-api-key / anthropic-version / anthropic-beta headers.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use indexmap::IndexMap;
use kosmo::credentials::{CredentialFile, Credentials};
use kosmo::exec::{Call, ExecConfig, Executor};
use kosmo::registry::Registry;
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const API_KEY: &str = "sk-ant-api03-oracle-key";
const ADMIN_KEY: &str = "sk-ant-admin01-oracle-key";
const COMPARED_HEADERS: [&str; 4] = [
    "authorization",
    "x-api-key",
    "anthropic-version",
    "anthropic-beta",
];

fn oracle_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle")
}

/// Answers like the Python capture server, so both clients see the same bodies.
struct Answer;

impl Respond for Answer {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let path = req.url.path();
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        if path == "/v1/messages" && body["stream"] == true {
            let sse = concat!(
                "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"m\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\n",
                "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":2}}\n\n",
                "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
            );
            return ResponseTemplate::new(200).set_body_raw(sse, "text/event-stream");
        }
        if path.ends_with("/results") {
            return ResponseTemplate::new(200).set_body_raw("", "application/x-jsonl");
        }
        if path.ends_with("/content") {
            return ResponseTemplate::new(200)
                .set_body_raw(vec![0u8, 1], "application/octet-stream");
        }
        ResponseTemplate::new(200).set_body_json(json!({
            "id": "x", "data": [], "has_more": false, "first_id": null, "last_id": null,
            "next_page": null, "input_tokens": 1
        }))
    }
}

/// `[{name, filename, content_type, content}]` of a multipart body, like the Python side.
fn multipart_summary(content_type: &str, body: &[u8]) -> Value {
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .unwrap()
        .trim_matches('"');
    let text = String::from_utf8_lossy(body);
    let delim = format!("--{boundary}");
    let mut parts = Vec::new();
    for chunk in text.split(delim.as_str()).skip(1) {
        if chunk.starts_with("--") {
            break;
        }
        let chunk = chunk.strip_prefix("\r\n").unwrap_or(chunk);
        let (head, content) = chunk.split_once("\r\n\r\n").unwrap();
        let content = content.strip_suffix("\r\n").unwrap_or(content);
        let mut name = Value::Null;
        let mut filename = Value::Null;
        let mut ctype = Value::Null;
        for line in head.split("\r\n") {
            let (k, v) = line.split_once(':').unwrap();
            match k.trim().to_ascii_lowercase().as_str() {
                "content-disposition" => {
                    for attr in v.split(';').map(str::trim) {
                        if let Some(n) = attr.strip_prefix("name=") {
                            name = json!(n.trim_matches('"'));
                        }
                        if let Some(f) = attr.strip_prefix("filename=") {
                            filename = json!(f.trim_matches('"'));
                        }
                    }
                }
                "content-type" => {
                    ctype = json!(v.trim().split(';').next().unwrap().to_ascii_lowercase())
                }
                _ => {}
            }
        }
        parts.push(
            json!({"name": name, "filename": filename, "content_type": ctype, "content": content}),
        );
    }
    json!({"multipart": parts})
}

fn normalize(
    method: &str,
    path: &str,
    query: Vec<(String, String)>,
    headers: Value,
    content_type: Option<&str>,
    body: &[u8],
) -> Value {
    let body = if body.is_empty() {
        Value::Null
    } else if let Some(ct) = content_type.filter(|c| c.starts_with("multipart/form-data")) {
        multipart_summary(ct, body)
    } else {
        serde_json::from_slice(body).unwrap_or_else(|_| json!(String::from_utf8_lossy(body)))
    };
    json!({"method": method, "path": path, "query": query, "body": body, "headers": headers})
}

fn python_side(python: &Path) -> Vec<Value> {
    let out = std::process::Command::new(python)
        .arg(oracle_dir().join("sdk_requests.py"))
        .arg(oracle_dir().join("operations.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sdk_requests.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn requests_match_the_official_python_sdk() {
    let Some(python) = crate::support::sdk_python() else {
        return;
    };
    let ops: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(oracle_dir().join("operations.json")).unwrap(),
    )
    .unwrap();
    let sdk = tokio::task::spawn_blocking(move || python_side(&python))
        .await
        .unwrap();

    let srv = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(Answer)
        .mount(&srv)
        .await;
    let mut file = CredentialFile::new();
    let mut default = IndexMap::new();
    default.insert("api_key".to_string(), API_KEY.to_string());
    default.insert("admin_key".to_string(), ADMIN_KEY.to_string());
    default.insert("url".to_string(), srv.uri());
    file.insert(
        "anthropic".to_string(),
        IndexMap::from([("default".to_string(), default)]),
    );
    let ex = Executor::new(
        Arc::new(Registry::builtin().unwrap()),
        Arc::new(Credentials::from_entries(PathBuf::new(), file)),
        ExecConfig {
            max_retries: 0,
            ..ExecConfig::default()
        },
    )
    .unwrap();

    let mut mismatches = Vec::new();
    for (op, want) in ops.iter().zip(&sdk) {
        let name = op["name"].as_str().unwrap();
        assert_eq!(want["name"], name);
        assert!(
            want.get("error").is_none(),
            "the SDK side of {name} failed: {}",
            want["error"]
        );
        srv.reset().await;
        Mock::given(wiremock::matchers::any())
            .respond_with(Answer)
            .mount(&srv)
            .await;
        let function = op["function"].as_str().unwrap();
        if let Err(e) = ex
            .call(Call::new("anthropic", function, op["args"].clone()))
            .await
        {
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
        let query: Vec<(String, String)> = r
            .url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let ct = r.headers.get("content-type").and_then(|v| v.to_str().ok());
        let got = normalize(
            r.method.as_str(),
            r.url.path(),
            query,
            Value::Object(headers),
            ct,
            &r.body,
        );
        let want_query: Vec<(String, String)> = want["query"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p[0].as_str().unwrap().to_string(),
                    p[1].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let wq = want_query;
        let want_norm = json!({"method": want["method"], "path": want["path"], "query": wq, "body": want["body"], "headers": want["headers"]});
        if got != want_norm {
            mismatches.push(format!("{name}:\n  kosmo: {got}\n  sdk:   {want_norm}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} operations differ from the SDK:\n{}",
        mismatches.len(),
        ops.len(),
        mismatches.join("\n")
    );
}

#[test]
fn wire_diff_against_the_python_sdk() {
    let Some(python) = crate::support::sdk_python() else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let kosmo = env!("CARGO_BIN_EXE_kosmo");
    let out = Command::new(python)
        .arg(root.join("tests/sdk/wire_diff.py"))
        .arg(kosmo)
        .output()
        .expect("the wire diff harness runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "kosmo's requests differ from the SDK's:\n{stdout}\n{stderr}"
    );
    // The harness must have compared something: a silent zero-case run is a failure too.
    assert!(
        stdout.lines().filter(|l| l.starts_with("ok ")).count() >= 80,
        "too few cases compared:\n{stdout}"
    );
}

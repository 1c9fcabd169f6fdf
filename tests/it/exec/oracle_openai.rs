//! The OpenAI wire oracle: tests/oracle/openai/sdk_requests.py runs the official `openai` Python
//! SDK against a capture server for every operation in tests/oracle/openai/operations.json; this
//! test runs the same operations through kosmo (manifests/openai.yaml, loaded from the file so the
//! test does not depend on the built-in list) against a capture server of its own and compares
//! method, path (percent-encoded as sent), query (pairs, in order), JSON body (multipart: the
//! parts by name, with file names, content types and contents), and the authorization /
//! openai-organization / openai-project headers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use kosmo::credentials::{CredentialFile, Credentials};
use kosmo::exec::{Call, ExecConfig, Executor};
use kosmo::registry::{Registry, load_file};
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const API_KEY: &str = "sk-proj-oracle-key";
const COMPARED_HEADERS: [&str; 3] = ["authorization", "openai-organization", "openai-project"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn oracle_dir() -> PathBuf {
    root().join("tests/oracle/openai")
}

/// The Python interpreter with the `openai` package, or None (a loud SKIP; a failure under CI).
fn openai_python() -> Option<PathBuf> {
    let py = crate::support::sdk_python()?;
    let ok = std::process::Command::new(&py)
        .args(["-c", "import openai"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        return Some(py);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "the openai Python SDK is required under CI: {} -m pip install openai==3.57.0",
            py.display()
        );
    }
    eprintln!(
        "SKIP: the official openai Python SDK is not installed in {} (pip install openai==3.57.0)",
        py.display()
    );
    None
}

/// The chunks of a streamed chat completion, ended by `data: [DONE]` (as the Python side sends).
pub const CHAT_SSE: &str = concat!(
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
    "data: [DONE]\n\n"
);

/// Answers like the Python capture server, so both clients see the same bodies.
struct Answer;

impl Respond for Answer {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let path = req.url.path();
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        if path.ends_with("/chat/completions") && body["stream"] == true {
            return ResponseTemplate::new(200).set_body_raw(CHAT_SSE, "text/event-stream");
        }
        if path.ends_with("/content") {
            return ResponseTemplate::new(200)
                .set_body_raw(vec![0u8, 1], "application/octet-stream");
        }
        ResponseTemplate::new(200)
            .insert_header("x-request-id", "req_oracle")
            .set_body_json(json!({
                "id": "x", "object": "list", "data": [], "has_more": false,
                "first_id": null, "last_id": null
            }))
    }
}

/// `[{name, filename, content_type, content}]` of a multipart body, sorted by part name (the
/// order of multipart parts carries no meaning; the SDK sends plain fields before files).
pub fn multipart_summary(content_type: &str, body: &[u8]) -> Value {
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .expect("multipart boundary")
        .trim_matches('"');
    let text = String::from_utf8_lossy(body);
    let delim = format!("--{boundary}");
    let mut parts = Vec::new();
    for chunk in text.split(delim.as_str()).skip(1) {
        if chunk.starts_with("--") {
            break;
        }
        let chunk = chunk.strip_prefix("\r\n").unwrap_or(chunk);
        let (head, content) = chunk.split_once("\r\n\r\n").expect("part headers");
        let content = content.strip_suffix("\r\n").unwrap_or(content);
        let mut name = Value::Null;
        let mut filename = Value::Null;
        let mut ctype = Value::Null;
        for line in head.split("\r\n") {
            let (k, v) = line.split_once(':').expect("part header line");
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
                    ctype = json!(
                        v.trim()
                            .split(';')
                            .next()
                            .unwrap_or("")
                            .to_ascii_lowercase()
                    )
                }
                _ => {}
            }
        }
        parts.push(
            json!({"name": name, "filename": filename, "content_type": ctype, "content": content}),
        );
    }
    sort_parts(json!({ "multipart": parts }))
}

fn sort_parts(mut body: Value) -> Value {
    if let Some(parts) = body.get_mut("multipart").and_then(Value::as_array_mut) {
        parts.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    }
    body
}

fn python_side(python: &Path) -> Vec<Value> {
    let out = std::process::Command::new(python)
        .arg(oracle_dir().join("sdk_requests.py"))
        .arg(oracle_dir().join("operations.json"))
        .output()
        .expect("run sdk_requests.py");
    assert!(
        out.status.success(),
        "tests/oracle/openai/sdk_requests.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("sdk_requests.py prints JSON")
}

/// An executor over manifests/openai.yaml alone, with the default account pointing at `base`.
pub fn openai_executor(base: &str) -> Executor {
    let integ = load_file(&root().join("manifests/openai.yaml")).expect("manifests/openai.yaml");
    let mut reg = Registry::default();
    reg.insert(integ);
    let mut file = CredentialFile::new();
    let mut default = IndexMap::new();
    default.insert("api_key".to_string(), API_KEY.to_string());
    default.insert("url".to_string(), base.to_string());
    file.insert(
        "openai".to_string(),
        IndexMap::from([("default".to_string(), default)]),
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

#[tokio::test]
async fn openai_requests_match_the_official_python_sdk() {
    let Some(python) = openai_python() else {
        return;
    };
    let ops: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(oracle_dir().join("operations.json")).unwrap(),
    )
    .unwrap();
    let sdk = tokio::task::spawn_blocking(move || python_side(&python))
        .await
        .unwrap();
    assert_eq!(sdk.len(), ops.len());

    let srv = MockServer::start().await;
    // The SDK's base URL ends in /v1; so does the account's.
    let ex = openai_executor(&format!("{}/v1", srv.uri()));

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
            .call(Call::new("openai", function, op["args"].clone()))
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
        let body = if r.body.is_empty() {
            Value::Null
        } else if let Some(ct) = ct.filter(|c| c.starts_with("multipart/form-data")) {
            multipart_summary(ct, &r.body)
        } else {
            serde_json::from_slice(&r.body)
                .unwrap_or_else(|_| json!(String::from_utf8_lossy(&r.body)))
        };
        let got = json!({"method": r.method.as_str(), "path": r.url.path(), "query": query,
            "body": body, "headers": headers});
        let want_norm = json!({"method": want["method"], "path": want["path"],
            "query": want["query"], "body": sort_parts(want["body"].clone()),
            "headers": COMPARED_HEADERS.iter().map(|h| (h.to_string(), want["headers"][h].clone()))
                .collect::<serde_json::Map<_, _>>()});
        if got != want_norm {
            mismatches.push(format!("{name}:\n  kosmo: {got}\n  sdk:   {want_norm}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} operations differ from the openai SDK:\n{}",
        mismatches.len(),
        ops.len(),
        mismatches.join("\n")
    );
}

/// `v` without null-valued object members (recursively), and without the SDK's stream-helper
/// fields (`parsed`, `parsed_arguments`, and the `index` of a tool call, which only exists in
/// chunks): what remains is the content a non-streamed `chat.completion` carries.
fn content_of(v: &Value, in_tool_call: bool) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, v)| {
                    !v.is_null()
                        && k.as_str() != "parsed"
                        && k.as_str() != "parsed_arguments"
                        && !(in_tool_call && k.as_str() == "index")
                })
                .map(|(k, v)| (k.clone(), content_of(v, k == "tool_calls")))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|x| content_of(x, in_tool_call)).collect()),
        other => other.clone(),
    }
}

/// Streamed chat completions (text with a usage chunk, parallel tool calls with fragmented
/// arguments, two interleaved choices) assemble to what the official SDK's own accumulator
/// (`ChatCompletionStreamState`) makes of the same bytes.
#[tokio::test]
async fn openai_streams_assemble_like_the_official_sdk() {
    let Some(python) = openai_python() else {
        return;
    };
    let streams = oracle_dir().join("streams");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&streams)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "sse"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "stream fixtures in {}", streams.display());
    let args = files.clone();
    let sdk: Value = tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(&python)
            .arg(oracle_dir().join("assemble_streams.py"))
            .args(&args)
            .output()
            .expect("run assemble_streams.py");
        assert!(
            out.status.success(),
            "assemble_streams.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("assemble_streams.py prints JSON")
    })
    .await
    .unwrap();

    let srv = MockServer::start().await;
    let ex = openai_executor(&format!("{}/v1", srv.uri()));
    let mut mismatches = Vec::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let sse = std::fs::read_to_string(file).unwrap();
        srv.reset().await;
        Mock::given(wiremock::matchers::method("POST"))
            .and(wiremock::matchers::path("/v1/chat/completions"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(sse, "text/event-stream"))
            .mount(&srv)
            .await;
        let args = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}],
            "stream": true});
        match ex
            .call(Call::new("openai", "create_chat_completion", args))
            .await
        {
            Ok(out) => {
                let got = content_of(&out.value, false);
                let want = content_of(&sdk[&name], false);
                if got != want {
                    mismatches.push(format!("{name}:\n  kosmo: {got}\n  sdk:   {want}"));
                }
            }
            Err(e) => mismatches.push(format!("{name}: kosmo failed: {e}")),
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} streams assemble differently from the openai SDK:\n{}",
        mismatches.len(),
        files.len(),
        mismatches.join("\n")
    );
}

/// Every JSON `simulator.response` of manifests/openai.yaml parses under the official SDK with
/// strict response validation (the typed model of the matching SDK call), so the simulator's
/// answers are ones the SDK accepts.
#[tokio::test]
async fn openai_simulator_responses_parse_in_the_official_sdk() {
    let Some(python) = openai_python() else {
        return;
    };
    let text = std::fs::read_to_string(root().join("manifests/openai.yaml")).unwrap();
    let manifest: Value = serde_yaml::from_str(&text).expect("openai.yaml is YAML");
    let tmp = tempfile::TempDir::new().unwrap();
    let as_json = tmp.path().join("openai.json");
    std::fs::write(&as_json, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&python)
            .arg(oracle_dir().join("check_responses.py"))
            .arg(&as_json)
            .arg(oracle_dir().join("operations.json"))
            .output()
            .expect("run check_responses.py")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "check_responses.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: serde_json::Map<String, Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        results.len() >= 10,
        "most functions are checked: {results:?}"
    );
    let bad: Vec<String> = results
        .iter()
        .filter(|(_, v)| *v != "ok")
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    assert!(
        bad.is_empty(),
        "responses the SDK refuses:\n{}",
        bad.join("\n")
    );
}

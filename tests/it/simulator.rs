//! Tests for the offline simulator: started in-process on 127.0.0.1 (port 0) and driven over
//! HTTP, plus the official Python SDK in strict mode (`KOSMO_SDK_PYTHON`) and the CLI command.

mod credential_kinds;
mod faults;
mod generic;
mod mock;
mod resources;
mod serve;
mod validation;

use std::sync::Arc;
use std::time::{Duration, Instant};

use kosmo::registry::Registry;
use kosmo::simulator::{self, RunningSimulator, SimulatorOptions};
use serde_json::{Value, json};

pub const API_KEY: &str = "sk-ant-api03-test-key";
pub const ADMIN_KEY: &str = "sk-ant-admin01-test-key";

pub async fn start(opts: SimulatorOptions) -> RunningSimulator {
    let registry = Arc::new(Registry::builtin().unwrap());
    simulator::start(registry, opts).await.unwrap()
}

pub async fn start_default() -> RunningSimulator {
    start(SimulatorOptions {
        settings: [("batch_delay_ms".to_string(), "300".to_string())].into(),
        ..Default::default()
    })
    .await
}

/// A request with the headers the SDK sends.
pub fn req(method: reqwest::Method, url: String, key: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .request(method, url)
        .header("anthropic-version", "2026-10-21")
        .header("authorization", format!("Bearer {key}"))
}

pub async fn send(rb: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, Value) {
    let resp = rb.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, body)
}

pub async fn get(sim: &RunningSimulator, path: &str, key: &str) -> (u16, Value) {
    let (s, _, b) = send(req(
        reqwest::Method::GET,
        format!("{}{path}", sim.base_url),
        key,
    ))
    .await;
    (s, b)
}

pub async fn post(sim: &RunningSimulator, path: &str, key: &str, body: Value) -> (u16, Value) {
    let (s, _, b) = send(
        req(
            reqwest::Method::POST,
            format!("{}{path}", sim.base_url),
            key,
        )
        .json(&body),
    )
    .await;
    (s, b)
}

pub async fn delete(sim: &RunningSimulator, path: &str, key: &str) -> (u16, Value) {
    let (s, _, b) = send(req(
        reqwest::Method::DELETE,
        format!("{}{path}", sim.base_url),
        key,
    ))
    .await;
    (s, b)
}

fn message(text: &str) -> Value {
    json!({"model": "claude-sonnet-4-20250514", "max_tokens": 64,
           "messages": [{"role": "user", "content": text}]})
}

#[tokio::test(flavor = "multi_thread")]
async fn every_response_has_request_id_and_rate_limit_headers() {
    let sim = start_default().await;
    let (status, headers, body) = send(
        req(
            reqwest::Method::POST,
            format!("{}/v1/messages?beta=true", sim.base_url),
            API_KEY,
        )
        .header("x-stainless-retry-count", "0")
        .header("x-stainless-brand-new-header", "whatever")
        .json(&message("hello")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(headers["request-id"].to_str().unwrap().starts_with("req_"));
    assert!(headers.contains_key("anthropic-organization-id"));
    assert_eq!(headers["anthropic-ratelimit-requests-limit"], "4000");
    assert!(headers.contains_key("anthropic-ratelimit-tokens-reset"));
    assert_eq!(body["type"], "message");
    // Errors carry the same id in the header and the body.
    let (status, headers, body) = send(req(
        reqwest::Method::GET,
        format!("{}/v1/models/nope", sim.base_url),
        API_KEY,
    ))
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "not_found_error");
    assert_eq!(body["request_id"], headers["request-id"].to_str().unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_version_and_beta_errors() {
    let sim = start_default().await;
    let url = format!("{}/v1/models", sim.base_url);
    // No key at all, then a key of the wrong shape.
    let (s, _, b) = send(
        reqwest::Client::new()
            .get(&url)
            .header("anthropic-version", "2026-10-21"),
    )
    .await;
    assert_eq!(
        (s, b["error"]["type"].as_str()),
        (401, Some("authentication_error"))
    );
    let (s, _, b) = send(req(reqwest::Method::GET, url.clone(), "sk-wrong")).await;
    assert_eq!(s, 401);
    assert_eq!(b["error"]["message"], "invalid x-api-key");
    // The `x-api-key` header works as well as the Bearer header the SDK sends.
    let (s, _, _) = send(
        reqwest::Client::new()
            .get(&url)
            .header("anthropic-version", "2026-10-21")
            .header("x-api-key", API_KEY),
    )
    .await;
    assert_eq!(s, 200);
    // A normal key on an admin function: 403. The admin key works there.
    let (s, b) = get(&sim, "/v1/organizations/me", API_KEY).await;
    assert_eq!(
        (s, b["error"]["type"].as_str()),
        (403, Some("permission_error"))
    );
    let (s, b) = get(&sim, "/v1/organizations/me", ADMIN_KEY).await;
    assert_eq!((s, b["type"].as_str()), (200, Some("organization")));
    // The offline placeholders of the manifest pass the default check.
    let manifest = Registry::builtin().unwrap();
    let anthropic = &manifest.require("anthropic").unwrap().manifest;
    for (cred, path) in [
        ("api_key", "/v1/models"),
        ("admin_key", "/v1/organizations/me"),
    ] {
        let placeholder = anthropic.credentials[cred].placeholder.clone().unwrap();
        assert_eq!(get(&sim, path, &placeholder).await.0, 200, "{cred}");
    }
    // Missing anthropic-version.
    let (s, _, b) = send(
        reqwest::Client::new()
            .get(&url)
            .header("authorization", format!("Bearer {API_KEY}")),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(
        b["error"]["message"],
        "anthropic-version: header is required"
    );
    // Beta names: known ones pass (comma-joined or repeated), unknown ones are refused.
    let (s, _, _) = send(req(reqwest::Method::GET, url.clone(), API_KEY).header(
        "anthropic-beta",
        "files-api-2025-04-14,prompt-caching-2024-07-31",
    ))
    .await;
    assert_eq!(s, 200);
    let (s, _, b) = send(
        req(reqwest::Method::GET, url.clone(), API_KEY).header("anthropic-beta", "made-up-2099"),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(
        b["error"]["message"],
        "Unexpected value(s) `made-up-2099` for the `anthropic-beta` header. Please consult our documentation at platform.claude.com/docs or try again without the header."
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pinned_keys_accept_only_their_value() {
    let sim = start(SimulatorOptions {
        keys: [
            ("api_key".to_string(), "sk-ant-api03-pinned".to_string()),
            ("admin_key".to_string(), "sk-ant-admin01-pinned".to_string()),
        ]
        .into(),
        ..Default::default()
    })
    .await;
    assert_eq!(get(&sim, "/v1/models", API_KEY).await.0, 401);
    assert_eq!(get(&sim, "/v1/models", "sk-ant-api03-pinned").await.0, 200);
    assert_eq!(
        get(&sim, "/v1/organizations/me", "sk-ant-admin01-pinned")
            .await
            .0,
        200
    );
    assert_eq!(
        get(&sim, "/v1/organizations/me", "sk-ant-api03-pinned")
            .await
            .0,
        403
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn validation_uses_the_executor_schema_and_requires_send_defaults() {
    let sim = start_default().await;
    let (s, b) = post(
        &sim,
        "/v1/messages",
        API_KEY,
        json!({"model": "m", "messages": []}),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(b["error"]["message"], "max_tokens: Field required");
    let (s, b) = post(
        &sim,
        "/v1/messages",
        API_KEY,
        json!({"model": "m", "max_tokens": 0, "messages": []}),
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_tokens: 0 is less than the minimum of 1"),
        "{b}"
    );
    // Query values are coerced to the schema's types before validation.
    let (s, b) = get(&sim, "/v1/models?limit=abc", API_KEY).await;
    assert_eq!(s, 400, "{b}");
    let (s, b) = get(&sim, "/v1/models?limit=1001", API_KEY).await;
    assert_eq!(s, 400, "{b}");
    let (s, b) = post(&sim, "/v1/messages", API_KEY, json!("not an object")).await;
    assert_eq!(
        (s, b["error"]["type"].as_str()),
        (400, Some("invalid_request_error"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_are_deterministic_per_seed_and_stream_in_order() {
    let a = start(SimulatorOptions {
        seed: 7,
        ..Default::default()
    })
    .await;
    let b = start(SimulatorOptions {
        seed: 8,
        ..Default::default()
    })
    .await;
    let (_, m1) = post(&a, "/v1/messages", API_KEY, message("same input")).await;
    let (_, m2) = post(&a, "/v1/messages", API_KEY, message("same input")).await;
    let (_, m3) = post(&b, "/v1/messages", API_KEY, message("same input")).await;
    assert_eq!(m1["content"], m2["content"]);
    assert_ne!(m1["content"], m3["content"]);
    let mut body = message("stream this please");
    body["stream"] = json!(true);
    let resp = req(
        reqwest::Method::POST,
        format!("{}/v1/messages", a.base_url),
        API_KEY,
    )
    .json(&body)
    .send()
    .await
    .unwrap();
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = resp.text().await.unwrap();
    let events: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(
        events[..3],
        ["message_start", "content_block_start", "ping"]
    );
    assert_eq!(
        events[events.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    let streamed: String = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter(|d| d["delta"]["type"] == "text_delta")
        .map(|d| d["delta"]["text"].as_str().unwrap().to_string())
        .collect();
    let (_, plain) = post(&a, "/v1/messages", API_KEY, message("stream this please")).await;
    assert_eq!(streamed, plain["content"][0]["text"].as_str().unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn count_tokens_grows_with_input() {
    let sim = start_default().await;
    let (s, small) = post(
        &sim,
        "/v1/messages/count_tokens",
        API_KEY,
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(s, 200, "{small}");
    let long = "many words ".repeat(100);
    let (_, big) = post(
        &sim,
        "/v1/messages/count_tokens",
        API_KEY,
        json!({"model": "m", "messages": [{"role": "user", "content": long}]}),
    )
    .await;
    assert!(big["input_tokens"].as_u64().unwrap() > small["input_tokens"].as_u64().unwrap() + 100);
}

pub async fn wait_ended(sim: &RunningSimulator, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, b) = get(sim, &format!("/v1/messages/batches/{id}"), API_KEY).await;
        if b["processing_status"] == "ended" {
            return b;
        }
        assert!(Instant::now() < deadline, "batch never ended: {b}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_lifecycle_counts_results_and_refusals() {
    let sim = start_default().await;
    let mut bad = message("bad");
    bad["temperature"] = json!(5);
    let (s, batch) = post(
        &sim,
        "/v1/messages/batches",
        API_KEY,
        json!({"requests": [
            {"custom_id": "a", "params": message("one")},
            {"custom_id": "b", "params": message("two")},
            {"custom_id": "c", "params": bad},
            {"custom_id": "kosmo-expire-d", "params": message("late")},
        ]}),
    )
    .await;
    assert_eq!(s, 200, "{batch}");
    let id = batch["id"].as_str().unwrap().to_string();
    assert_eq!(batch["processing_status"], "in_progress");
    assert_eq!(
        batch["request_counts"],
        json!({"processing": 4, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0})
    );
    assert!(batch["results_url"].is_null());
    // Results and delete are refused before the end.
    let (s, b) = get(&sim, &format!("/v1/messages/batches/{id}/results"), API_KEY).await;
    assert_eq!(
        (s, b["error"]["type"].as_str()),
        (400, Some("invalid_request_error"))
    );
    let (s, _) = delete(&sim, &format!("/v1/messages/batches/{id}"), API_KEY).await;
    assert_eq!(s, 400);
    let ended = wait_ended(&sim, &id).await;
    assert_eq!(
        ended["request_counts"],
        json!({"processing": 0, "succeeded": 2, "errored": 1, "canceled": 0, "expired": 1})
    );
    assert!(ended["ended_at"].is_string());
    let url = ended["results_url"].as_str().unwrap();
    assert_eq!(
        url,
        format!("{}/v1/messages/batches/{id}/results", sim.base_url)
    );
    let resp = req(reqwest::Method::GET, url.to_string(), API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/x-jsonl");
    let text = resp.text().await.unwrap();
    assert!(text.ends_with('\n'));
    let rows: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kind =
        |cid: &str| rows.iter().find(|r| r["custom_id"] == cid).unwrap()["result"]["type"].clone();
    assert_eq!(kind("a"), "succeeded");
    assert_eq!(kind("c"), "errored");
    assert_eq!(kind("kosmo-expire-d"), "expired");
    let errored = rows.iter().find(|r| r["custom_id"] == "c").unwrap();
    assert!(
        errored["result"]["error"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("temperature")
    );
    // Cancel: canceling, then ended with canceled rows.
    let (_, second) = post(
        &sim,
        "/v1/messages/batches",
        API_KEY,
        json!({"requests": [{"custom_id": "x", "params": message("x")}]}),
    )
    .await;
    let sid = second["id"].as_str().unwrap().to_string();
    let (s, canceled) = post(
        &sim,
        &format!("/v1/messages/batches/{sid}/cancel"),
        API_KEY,
        json!({}),
    )
    .await;
    assert_eq!(s, 200, "{canceled}");
    assert_eq!(canceled["processing_status"], "canceling");
    assert!(canceled["cancel_initiated_at"].is_string());
    let ended = wait_ended(&sim, &sid).await;
    assert_eq!(ended["request_counts"]["canceled"], 1);
    // Newest first.
    let (_, list) = get(&sim, "/v1/messages/batches", API_KEY).await;
    assert_eq!(list["data"][0]["id"], sid.as_str());
    assert_eq!(list["data"][1]["id"], id.as_str());
    // Delete once ended; then it is gone.
    let (s, d) = delete(&sim, &format!("/v1/messages/batches/{id}"), API_KEY).await;
    assert_eq!(
        (s, d["type"].as_str()),
        (200, Some("message_batch_deleted"))
    );
    assert_eq!(
        get(&sim, &format!("/v1/messages/batches/{id}"), API_KEY)
            .await
            .0,
        404
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn model_pages_walk_forwards_and_backwards() {
    let sim = start_default().await;
    let (_, all) = get(&sim, "/v1/models?limit=1000", API_KEY).await;
    let ids: Vec<String> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    assert!(ids.len() >= 5);
    assert_eq!(all["has_more"], false);
    // Newest first.
    let dates: Vec<&str> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["created_at"].as_str().unwrap())
        .collect();
    let mut sorted = dates.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(dates, sorted);
    let mut forward = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/models?limit=2&after_id={c}"),
            None => "/v1/models?limit=2".to_string(),
        };
        let (_, page) = get(&sim, &path, API_KEY).await;
        for m in page["data"].as_array().unwrap() {
            forward.push(m["id"].as_str().unwrap().to_string());
        }
        assert_eq!(page["first_id"], page["data"][0]["id"]);
        if page["has_more"] == false {
            break;
        }
        cursor = page["last_id"].as_str().map(str::to_string);
    }
    assert_eq!(forward, ids);
    let mut backward = Vec::new();
    let mut cursor = ids.last().unwrap().clone();
    loop {
        let (_, page) = get(
            &sim,
            &format!("/v1/models?limit=2&before_id={cursor}"),
            API_KEY,
        )
        .await;
        let mut chunk: Vec<String> = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect();
        chunk.extend(backward);
        backward = chunk;
        if page["has_more"] == false {
            break;
        }
        cursor = page["first_id"].as_str().unwrap().to_string();
    }
    assert_eq!(backward, ids[..ids.len() - 1]);
    let (s, m) = get(&sim, "/v1/models/claude-sonnet-4-0", API_KEY).await;
    assert_eq!(
        (s, m["id"].as_str()),
        (200, Some("claude-sonnet-4-20250514"))
    );
    assert_eq!(get(&sim, "/v1/models?limit=0", API_KEY).await.0, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn files_upload_list_and_download_rules() {
    let sim = start_default().await;
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"hello".to_vec())
            .file_name("notes.txt")
            .mime_str("text/plain")
            .unwrap(),
    );
    let (s, _, up) = send(
        req(
            reqwest::Method::POST,
            format!("{}/v1/files", sim.base_url),
            API_KEY,
        )
        .header("anthropic-beta", "files-api-2025-04-14")
        .multipart(form),
    )
    .await;
    assert_eq!(s, 200, "{up}");
    assert_eq!(up["size_bytes"], 5);
    assert_eq!(up["downloadable"], false);
    let id = up["id"].as_str().unwrap();
    let (_, list) = get(&sim, "/v1/files?limit=1", API_KEY).await;
    assert_eq!(list["data"][0]["id"], id, "newest first");
    assert_eq!(list["has_more"], true);
    assert_eq!(list["next_page"], list["last_id"]);
    let (_, next) = get(
        &sim,
        &format!(
            "/v1/files?limit=1&page={}",
            list["next_page"].as_str().unwrap()
        ),
        API_KEY,
    )
    .await;
    assert_ne!(next["data"][0]["id"], id);
    // Download: an upload is refused, the seeded code-execution output is served.
    let (s, b) = get(&sim, &format!("/v1/files/{id}/content"), API_KEY).await;
    assert_eq!(
        (s, b["error"]["type"].as_str()),
        (400, Some("invalid_request_error"))
    );
    let resp = req(
        reqwest::Method::GET,
        format!("{}/v1/files/file_011downloadable/content", sim.base_url),
        API_KEY,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/csv");
    assert!(resp.text().await.unwrap().starts_with("month,"));
    assert_eq!(
        get(&sim, "/v1/files/file_011example/content", API_KEY)
            .await
            .0,
        400
    );
    let (s, d) = delete(&sim, &format!("/v1/files/{id}"), API_KEY).await;
    assert_eq!((s, d["type"].as_str()), (200, Some("file_deleted")));
    assert_eq!(get(&sim, &format!("/v1/files/{id}"), API_KEY).await.0, 404);
    // An upload without a file part.
    let (s, _, b) = send(
        req(
            reqwest::Method::POST,
            format!("{}/v1/files", sim.base_url),
            API_KEY,
        )
        .multipart(reqwest::multipart::Form::new().text("purpose", "x")),
    )
    .await;
    assert_eq!(s, 400, "{b}");
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_state_changes_are_kept() {
    let sim = start_default().await;
    let (_, users) = get(&sim, "/v1/organizations/users?limit=100", ADMIN_KEY).await;
    let user = users["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["role"] == "user")
        .unwrap()
        .clone();
    let uid = user["id"].as_str().unwrap();
    let (s, u) = post(
        &sim,
        &format!("/v1/organizations/users/{uid}"),
        ADMIN_KEY,
        json!({"role": "developer"}),
    )
    .await;
    assert_eq!((s, u["role"].as_str()), (200, Some("developer")));
    assert_eq!(
        get(&sim, &format!("/v1/organizations/users/{uid}"), ADMIN_KEY)
            .await
            .1["role"],
        "developer"
    );
    let (_, devs) = get(&sim, "/v1/organizations/users?roles[]=developer", ADMIN_KEY).await;
    assert!(
        devs["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["id"] == uid)
    );
    // Workspaces: create, member add, archive; list hides archived unless asked.
    let (_, ws) = post(
        &sim,
        "/v1/organizations/workspaces",
        ADMIN_KEY,
        json!({"name": "Team"}),
    )
    .await;
    let wid = ws["id"].as_str().unwrap();
    let (s, m) = post(
        &sim,
        &format!("/v1/organizations/workspaces/{wid}/members"),
        ADMIN_KEY,
        json!({"user_id": uid, "workspace_role": "workspace_user"}),
    )
    .await;
    assert_eq!(s, 200, "{m}");
    let (_, members) = get(
        &sim,
        &format!("/v1/organizations/workspaces/{wid}/members"),
        ADMIN_KEY,
    )
    .await;
    assert_eq!(members["data"][0]["user_id"], uid);
    assert_eq!(members["first_id"], uid);
    let (_, archived) = post(
        &sim,
        &format!("/v1/organizations/workspaces/{wid}/archive"),
        ADMIN_KEY,
        json!({}),
    )
    .await;
    assert!(archived["archived_at"].is_string());
    let (_, active) = get(&sim, "/v1/organizations/workspaces", ADMIN_KEY).await;
    assert!(
        !active["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["id"] == wid)
    );
    let (_, every) = get(
        &sim,
        "/v1/organizations/workspaces?include_archived=true",
        ADMIN_KEY,
    )
    .await;
    assert!(
        every["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["id"] == wid)
    );
    // Removing a user drops it and its memberships.
    let (s, r) = delete(&sim, &format!("/v1/organizations/users/{uid}"), ADMIN_KEY).await;
    assert_eq!((s, r["type"].as_str()), (200, Some("user_deleted")));
    assert_eq!(
        get(&sim, &format!("/v1/organizations/users/{uid}"), ADMIN_KEY)
            .await
            .0,
        404
    );
    let (_, members) = get(
        &sim,
        &format!("/v1/organizations/workspaces/{wid}/members"),
        ADMIN_KEY,
    )
    .await;
    assert_eq!(members["data"], json!([]));
    assert!(members["first_id"].is_null());
    // API keys and invites.
    let (_, keys) = get(&sim, "/v1/organizations/api_keys?status=active", ADMIN_KEY).await;
    let kid = keys["data"][0]["id"].as_str().unwrap().to_string();
    let (_, k) = post(
        &sim,
        &format!("/v1/organizations/api_keys/{kid}"),
        ADMIN_KEY,
        json!({"status": "inactive"}),
    )
    .await;
    assert_eq!(k["status"], "inactive");
    let (_, still) = get(&sim, "/v1/organizations/api_keys?status=active", ADMIN_KEY).await;
    assert!(
        !still["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == kid.as_str())
    );
    let (_, inv) = post(
        &sim,
        "/v1/organizations/invites",
        ADMIN_KEY,
        json!({"email": "x@example.com", "role": "user"}),
    )
    .await;
    let iid = inv["id"].as_str().unwrap();
    let (_, d) = delete(&sim, &format!("/v1/organizations/invites/{iid}"), ADMIN_KEY).await;
    assert_eq!(d["type"], "invite_deleted");
    assert_eq!(
        get(&sim, &format!("/v1/organizations/invites/{iid}"), ADMIN_KEY)
            .await
            .0,
        404
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_and_cost_reports_page_by_bucket() {
    let sim = start_default().await;
    let (s, r) = get(&sim, "/v1/organizations/usage_report/messages?starting_at=2025-08-01T00:00:00Z&ending_at=2025-08-11T00:00:00Z&limit=7&bucket_width=1d&group_by[]=model", ADMIN_KEY).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["data"].as_array().unwrap().len(), 7);
    assert_eq!(r["has_more"], true);
    assert_eq!(r["data"][0]["starting_at"], "2025-08-01T00:00:00Z");
    assert_eq!(
        r["data"][0]["results"][0]["model"],
        "claude-sonnet-4-20250514"
    );
    assert!(r["data"][0]["results"][0]["workspace_id"].is_null());
    let page = r["next_page"].as_str().unwrap();
    let (_, rest) = get(&sim, &format!("/v1/organizations/usage_report/messages?starting_at=2025-08-01T00:00:00Z&ending_at=2025-08-11T00:00:00Z&page={page}"), ADMIN_KEY).await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 3, "{rest}");
    assert_eq!(rest["next_page"], Value::Null);
    let (s, c) = get(&sim, "/v1/organizations/cost_report?starting_at=2025-08-01T00:00:00Z&ending_at=2025-08-03T00:00:00Z", ADMIN_KEY).await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["data"].as_array().unwrap().len(), 2);
    assert!(c["data"][0]["results"][0]["amount"].is_string());
    assert_eq!(
        get(&sim, "/v1/organizations/cost_report", ADMIN_KEY)
            .await
            .0,
        400
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn latency_delays_every_response() {
    let sim = start(SimulatorOptions {
        latency_ms: 250,
        ..Default::default()
    })
    .await;
    let t = Instant::now();
    assert_eq!(get(&sim, "/v1/models", API_KEY).await.0, 200);
    assert!(t.elapsed() >= Duration::from_millis(250));
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_or_shutting_down_stops_the_server() {
    let sim = start_default().await;
    let url = sim.base_url.clone();
    assert_eq!(get(&sim, "/v1/models", API_KEY).await.0, 200);
    sim.shutdown().await;
    assert!(reqwest::get(format!("{url}/v1/models")).await.is_err());
    let sim = start_default().await;
    let url = sim.base_url.clone();
    drop(sim);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(reqwest::get(format!("{url}/v1/models")).await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn official_sdk_parses_every_response_in_strict_mode() {
    // KOSMO_SDK_PYTHON, else a venv it sets up; None skips loudly (and fails under CI).
    let Some(python) = crate::support::sdk_python() else {
        return;
    };
    let sim = start_default().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/fidelity.py");
    let out = tokio::process::Command::new(python)
        .arg(script)
        .arg(&sim.base_url)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "fidelity.py failed\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("steps passed"), "{stdout}");
}

#[test]
fn serve_prints_the_base_url_first_and_stops_on_sigterm() {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kosmo"))
        .args(["simulator:serve", "--port", "0", "--seed", "3"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{line:?}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let status = rt.block_on(async {
        reqwest::Client::new()
            .get(format!("{url}/v1/models"))
            .header("anthropic-version", "2026-10-21")
            .header("x-api-key", API_KEY)
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);
    crate::support::wait_for_signal_handler(child.id(), 15);
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serve_refuses_a_bad_fault_spec() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kosmo"))
        .args(["simulator:serve", "--faults", "create_mesage=529"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown function 'create_mesage'") && err.contains("create_message"),
        "{err}"
    );
}

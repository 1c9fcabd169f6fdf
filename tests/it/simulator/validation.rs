//! What the real API refuses (or reads) that the simulator once accepted (or misread): integral
//! floats, the semantic 400s of Messages and the Admin API, body size limits, the asynchronous
//! validation of batch params, and bad `--faults` specs at startup.

use std::sync::Arc;

use kosmo::registry::Registry;
use kosmo::simulator::{self, SimulatorOptions};
use serde_json::{Value, json};

use super::{ADMIN_KEY, API_KEY, get, post, send, start_default, wait_ended};

fn msg(max_tokens: Value) -> Value {
    json!({"model": "claude-sonnet-4-20250514", "max_tokens": max_tokens,
           "messages": [{"role": "user", "content": "Tell me a long story about the sea."}]})
}

/// A 400 `invalid_request_error` whose message contains `needle`.
fn assert_invalid(status: u16, body: &Value, needle: &str) {
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains(needle), "{needle:?} not in {message:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn integral_floats_are_integers() {
    let sim = start_default().await;
    let (s, m) = post(&sim, "/v1/messages", API_KEY, msg(json!(4.0))).await;
    assert_eq!(s, 200, "{m}");
    assert_eq!(m["stop_reason"], "max_tokens", "{m}");
    assert_eq!(m["usage"]["output_tokens"], 4, "{m}");
    // The same reply as with the integer.
    let (_, n) = post(&sim, "/v1/messages", API_KEY, msg(json!(4))).await;
    assert_eq!(m["content"], n["content"]);
    // budget_tokens as a float counts too: 2048.0 >= 2048 is refused, 1024.0 accepted.
    let mut p = msg(json!(2048.0));
    p["thinking"] = json!({"type": "enabled", "budget_tokens": 2048.0});
    let (s, b) = post(&sim, "/v1/messages", API_KEY, p.clone()).await;
    assert_invalid(
        s,
        &b,
        "max_tokens` must be greater than `thinking.budget_tokens",
    );
    p["thinking"]["budget_tokens"] = json!(1024.0);
    let (s, b) = post(&sim, "/v1/messages", API_KEY, p).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["content"][0]["type"], "thinking");
    // limit in the query: `2.0` is 2.
    let (s, page) = get(&sim, "/v1/models?limit=2.0", API_KEY).await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    // Tool schemas: an integral-float minimum is read as an integer.
    let mut p = msg(json!(200));
    p["tools"] = json!([{"name": "pick", "input_schema": {"type": "object",
        "properties": {"n": {"type": "integer", "minimum": 3.0}}, "required": ["n"]}}]);
    p["tool_choice"] = json!({"type": "tool", "name": "pick"});
    let (s, b) = post(&sim, "/v1/messages", API_KEY, p).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["content"][0]["input"]["n"], 3, "{b}");
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_refuses_what_the_api_refuses() {
    let sim = start_default().await;
    let with = |f: &dyn Fn(&mut Value)| {
        let mut p = msg(json!(2048));
        f(&mut p);
        p
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            with(&|p| p["thinking"] = json!({"type": "enabled", "budget_tokens": 4096})),
            "`max_tokens` must be greater than `thinking.budget_tokens`",
        ),
        (
            with(&|p| p["thinking"] = json!({"type": "enabled", "budget_tokens": 2048})),
            "`max_tokens` must be greater than `thinking.budget_tokens`",
        ),
        (
            with(&|p| p["thinking"] = json!({"type": "enabled", "budget_tokens": 1000})),
            // The manifest's schema has the minimum; its wording comes from the validator.
            "1024",
        ),
        (
            with(&|p| p["thinking"] = json!({"type": "enabled"})),
            "budget_tokens",
        ),
        (
            with(&|p| p["tool_choice"] = json!({"type": "any"})),
            "tool_choice may only be specified while providing tools.",
        ),
        (
            with(&|p| {
                p["tools"] = json!([{"name": "get_weather", "input_schema": {"type": "object"}}]);
                p["tool_choice"] = json!({"type": "tool", "name": "get_time"});
            }),
            "tool 'get_time' is not one of the request's tools (get_weather)",
        ),
        (
            with(&|p| p["max_tokens"] = json!(64_001)),
            "max_tokens: 64001 > 64000, which is the maximum allowed number of output tokens for claude-sonnet-4-20250514",
        ),
        (
            with(&|p| {
                p["model"] = json!("claude-3-haiku-20240307");
                p["max_tokens"] = json!(4097.0);
            }),
            "max_tokens: 4097 > 4096",
        ),
        (
            with(&|p| {
                p["model"] = json!("claude-not-in-the-catalogue");
                p["max_tokens"] = json!(128_001);
            }),
            "max_tokens: 128001 > 128000",
        ),
        (with(&|p| p["messages"] = json!([])), "messages"),
        (
            with(&|p| p["messages"] = json!([{"role": "user", "content": ""}])),
            "messages.0: all messages must have non-empty content except for the optional final assistant message",
        ),
        (
            with(&|p| {
                p["messages"] = json!([{"role": "user", "content": "hi"},
                                       {"role": "assistant", "content": []},
                                       {"role": "user", "content": "again"}])
            }),
            "messages.1: all messages must have non-empty content",
        ),
    ];
    for (body, needle) in cases {
        let (s, b) = post(&sim, "/v1/messages", API_KEY, body.clone()).await;
        assert_invalid(s, &b, needle);
    }
    // Still fine: an unknown model within the generous cap, an empty final assistant turn
    // (a prefill), and tool_choice none with tools.
    let ok = [
        with(&|p| {
            p["model"] = json!("claude-not-in-the-catalogue");
            p["max_tokens"] = json!(128_000);
        }),
        with(&|p| {
            p["messages"] = json!([{"role": "user", "content": "hi"},
                                   {"role": "assistant", "content": ""}])
        }),
        with(&|p| {
            p["tools"] = json!([{"name": "get_weather", "input_schema": {"type": "object"}}]);
            p["tool_choice"] = json!({"type": "none"});
        }),
    ];
    for body in ok {
        let (s, b) = post(&sim, "/v1/messages", API_KEY, body).await;
        assert_eq!(s, 200, "{b}");
    }
    // count_tokens applies the same rules (but takes no max_tokens).
    let (s, b) = post(
        &sim,
        "/v1/messages/count_tokens",
        API_KEY,
        json!({"model": "claude-sonnet-4-20250514", "tool_choice": {"type": "auto"},
               "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_invalid(
        s,
        &b,
        "tool_choice may only be specified while providing tools.",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_over_32_mb_are_413() {
    let sim = start_default().await;
    let mut p = msg(json!(16));
    p["messages"][0]["content"] = json!("a".repeat(33 << 20));
    let (s, _, b) = send(
        super::req(
            reqwest::Method::POST,
            format!("{}/v1/messages", sim.base_url),
            API_KEY,
        )
        .json(&p),
    )
    .await;
    assert_eq!(s, 413, "{b}");
    assert_eq!(b["error"]["type"], "request_too_large", "{b}");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("32 MB"),
        "{b}"
    );
    // Just under the limit is read (and answered).
    p["messages"][0]["content"] = json!("a".repeat(31 << 20));
    let (s, _, b) = send(
        super::req(
            reqwest::Method::POST,
            format!("{}/v1/messages/count_tokens", sim.base_url),
            API_KEY,
        )
        .json(&json!({"model": "claude-sonnet-4-20250514", "messages": p["messages"]})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    // A batch of 33 MB is within its 256 MB limit.
    let big = json!({"requests": [{"custom_id": "big", "params": p}]});
    let (s, b) = post(&sim, "/v1/messages/batches", API_KEY, big).await;
    assert_eq!(s, 200, "{b}");
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_params_are_checked_asynchronously() {
    let sim = start_default().await;
    let model = "claude-sonnet-4-20250514";
    let (s, batch) = post(
        &sim,
        "/v1/messages/batches",
        API_KEY,
        json!({"requests": [
            {"custom_id": "ok", "params": msg(json!(32))},
            {"custom_id": "no-max", "params": {"model": model,
                "messages": [{"role": "user", "content": "x"}]}},
            {"custom_id": "no-messages", "params": {"model": model, "max_tokens": 16, "messages": []}},
            {"custom_id": "streamed", "params": {"model": model, "max_tokens": 16, "stream": true,
                "messages": [{"role": "user", "content": "x"}]}},
            {"custom_id": "too-many", "params": {"model": model, "max_tokens": 64_001,
                "messages": [{"role": "user", "content": "x"}]}},
            {"custom_id": "float-max", "params": msg(json!(4.0))},
        ]}),
    )
    .await;
    assert_eq!(s, 200, "{batch}");
    assert_eq!(batch["request_counts"]["processing"], 6);
    let id = batch["id"].as_str().unwrap().to_string();
    let ended = wait_ended(&sim, &id).await;
    assert_eq!(
        ended["request_counts"],
        json!({"processing": 0, "succeeded": 2, "errored": 4, "canceled": 0, "expired": 0})
    );
    let url = ended["results_url"].as_str().unwrap().to_string();
    let text = super::req(reqwest::Method::GET, url, API_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let rows: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let row = |cid: &str| rows.iter().find(|r| r["custom_id"] == cid).unwrap()["result"].clone();
    for (cid, needle) in [
        ("no-max", "max_tokens: Field required"),
        ("no-messages", "messages"),
        ("streamed", "stream"),
        ("too-many", "64001 > 64000"),
    ] {
        let r = row(cid);
        assert_eq!(r["type"], "errored", "{cid}: {r}");
        // A full error envelope, without a request id.
        assert_eq!(r["error"]["type"], "error", "{r}");
        assert!(r["error"]["request_id"].is_null(), "{r}");
        assert!(r["error"].as_object().unwrap().contains_key("request_id"));
        assert_eq!(r["error"]["error"]["type"], "invalid_request_error", "{r}");
        let m = r["error"]["error"]["message"].as_str().unwrap();
        assert!(m.contains(needle), "{cid}: {needle:?} not in {m:?}");
    }
    let f = row("float-max");
    assert_eq!(f["type"], "succeeded", "{f}");
    assert_eq!(f["message"]["stop_reason"], "max_tokens", "{f}");
    assert_eq!(f["message"]["usage"]["output_tokens"], 4, "{f}");
    // At creation: duplicate custom_ids, a missing params or custom_id, a bad custom_id.
    for (requests, needle) in [
        (
            json!([{"custom_id": "same", "params": msg(json!(8))},
                   {"custom_id": "same", "params": msg(json!(8))}]),
            "same",
        ),
        (json!([{"custom_id": "x"}]), "params"),
        (json!([{"params": msg(json!(8))}]), "custom_id"),
        (
            json!([{"custom_id": "has space", "params": msg(json!(8))}]),
            "custom_id",
        ),
        (json!([{"custom_id": "x", "params": "text"}]), "params"),
    ] {
        let (s, b) = post(
            &sim,
            "/v1/messages/batches",
            API_KEY,
            json!({ "requests": requests }),
        )
        .await;
        assert_invalid(s, &b, needle);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_refuses_long_names_archived_changes_and_bad_emails() {
    let sim = start_default().await;
    let long = "x".repeat(41);
    let (s, b) = post(
        &sim,
        "/v1/organizations/workspaces",
        ADMIN_KEY,
        json!({ "name": long }),
    )
    .await;
    assert_invalid(s, &b, "name: String should have at most 40 characters");
    let (s, ws) = post(
        &sim,
        "/v1/organizations/workspaces",
        ADMIN_KEY,
        json!({"name": "x".repeat(40)}),
    )
    .await;
    assert_eq!(s, 200, "{ws}");
    let wid = ws["id"].as_str().unwrap().to_string();
    let path = format!("/v1/organizations/workspaces/{wid}");
    let (s, b) = post(&sim, &path, ADMIN_KEY, json!({ "name": long })).await;
    assert_invalid(s, &b, "at most 40 characters");
    let (s, b) = post(&sim, &format!("{path}/archive"), ADMIN_KEY, json!({})).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = post(&sim, &format!("{path}/archive"), ADMIN_KEY, json!({})).await;
    assert_invalid(s, &b, "already archived");
    let (s, b) = post(&sim, &path, ADMIN_KEY, json!({"name": "Renamed"})).await;
    assert_invalid(s, &b, "is archived and cannot be updated");
    // The name did not change.
    let (_, w) = get(&sim, &path, ADMIN_KEY).await;
    assert_eq!(w["name"], "x".repeat(40));
    for bad in [
        "not-an-email",
        "a@b",
        "two@@example.com",
        "sp ace@example.com",
        "@example.com",
    ] {
        let (s, b) = post(
            &sim,
            "/v1/organizations/invites",
            ADMIN_KEY,
            json!({"email": bad, "role": "user"}),
        )
        .await;
        assert_invalid(s, &b, "email: value is not a valid email address");
    }
    let (s, b) = post(
        &sim,
        "/v1/organizations/invites",
        ADMIN_KEY,
        json!({"email": "ok.person@example.co.uk", "role": "user"}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_fault_specs_are_refused_at_start() {
    let registry = Arc::new(Registry::builtin().unwrap());
    for (spec, needle) in [
        ("create_message=429:retry-after=-1", "retry-after"),
        ("create_message=429:retry-in=2", "unknown option 'retry-in'"),
        ("create_message=explode", "unknown fault 'explode'"),
        ("create_mesage=529", "unknown function 'create_mesage'"),
        ("create_message=stall:ms=-3", "ms must be a whole number"),
        ("create_message=529*0", "repeat count"),
        ("create_message", "expected FUNCTION=STEP"),
    ] {
        let opts = SimulatorOptions {
            faults: Some(spec.into()),
            ..Default::default()
        };
        let err = match simulator::start(registry.clone(), opts).await {
            Ok(_) => panic!("{spec} was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains("--faults") && err.contains(needle),
            "{spec}: {err}"
        );
    }
}

#[test]
fn serve_exits_2_for_bad_faults_and_1_for_a_busy_port() {
    let kosmo = env!("CARGO_BIN_EXE_kosmo");
    let out = std::process::Command::new(kosmo)
        .args(["simulator:serve", "--faults", "*=429:retry-after=-1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--faults") && err.contains("retry-after"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let out = std::process::Command::new(kosmo)
        .args(["simulator:serve", "--port", &port])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("already in use") && err.contains(&port) && err.contains("--port"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_spec_posted_at_run_time_changes_nothing() {
    let sim = start_default().await;
    let client = reqwest::Client::new();
    let url = format!("{}/_kosmo/faults", sim.base_url);
    let resp = client
        .post(&url)
        .body("get_model=529;list_models=429:retry-after=-1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("retry-after"),
        "{body}"
    );
    let plan: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(plan, json!({"functions": {}, "any": []}));
    let (s, _) = get(&sim, "/v1/models/claude-sonnet-4-20250514", API_KEY).await;
    assert_eq!(s, 200);
}

//! Faults fire exactly as scripted: sequences per function, `*`, the per-request header and the
//! control endpoint.

use std::time::{Duration, Instant};

use kosmo::simulator::SimulatorOptions;
use serde_json::{Value, json};

use super::{API_KEY, get, post, req, send, start};

fn msg() -> Value {
    json!({"model": "claude-sonnet-4-20250514", "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]})
}

fn with_faults(spec: &str) -> SimulatorOptions {
    SimulatorOptions {
        faults: Some(spec.into()),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sequences_are_consumed_in_order_per_function() {
    let sim = start(with_faults(
        "create_message=429:retry-after=2,529,500*2,504,ok;get_model=404",
    ))
    .await;
    let url = format!("{}/v1/messages", sim.base_url);
    let mut seen = Vec::new();
    for _ in 0..7 {
        let (s, h, b) = send(req(reqwest::Method::POST, url.clone(), API_KEY).json(&msg())).await;
        seen.push((
            s,
            b["error"]["type"].as_str().unwrap_or("").to_string(),
            h.get("retry-after")
                .map(|v| v.to_str().unwrap().to_string()),
        ));
    }
    let statuses: Vec<u16> = seen.iter().map(|s| s.0).collect();
    assert_eq!(statuses, [429, 529, 500, 500, 504, 200, 200]);
    assert_eq!(seen[0].1, "rate_limit_error");
    assert_eq!(seen[0].2.as_deref(), Some("2"));
    assert_eq!(seen[1].1, "overloaded_error");
    assert_eq!(seen[4].1, "timeout_error");
    // Other functions are untouched by create_message's script, and have their own.
    assert_eq!(get(&sim, "/v1/models", API_KEY).await.0, 200);
    assert_eq!(
        get(&sim, "/v1/models/claude-sonnet-4-20250514", API_KEY)
            .await
            .0,
        404
    );
    assert_eq!(
        get(&sim, "/v1/models/claude-sonnet-4-20250514", API_KEY)
            .await
            .0,
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wildcard_header_and_control_endpoint() {
    let sim = start(with_faults("*=503")).await;
    assert_eq!(get(&sim, "/v1/models", API_KEY).await.0, 503);
    assert_eq!(get(&sim, "/v1/models", API_KEY).await.0, 200);
    // The header applies to its request only, and wins over nothing being scripted.
    let (s, h, _) = send(
        req(
            reqwest::Method::GET,
            format!("{}/v1/models", sim.base_url),
            API_KEY,
        )
        .header(
            "x-kosmo-fault",
            "429:retry-after-ms=1500:should-retry=false",
        ),
    )
    .await;
    assert_eq!(s, 429);
    assert_eq!(h["retry-after-ms"], "1500");
    assert_eq!(h["x-should-retry"], "false");
    assert_eq!(get(&sim, "/v1/models", API_KEY).await.0, 200);
    let (s, _, b) = send(
        req(
            reqwest::Method::GET,
            format!("{}/v1/models", sim.base_url),
            API_KEY,
        )
        .header("x-kosmo-fault", "bogus"),
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown fault")
    );
    // Scripts can be added and inspected while the server runs.
    let client = reqwest::Client::new();
    let r: Value = client
        .post(format!("{}/_kosmo/faults", sim.base_url))
        .body("get_model=529,529")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["functions"]["get_model"], json!(["529", "529"]));
    assert_eq!(
        get(&sim, "/v1/models/claude-sonnet-4-20250514", API_KEY)
            .await
            .0,
        529
    );
    let r: Value = client
        .get(format!("{}/_kosmo/faults", sim.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["functions"]["get_model"], json!(["529"]));
    client
        .delete(format!("{}/_kosmo/faults", sim.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        get(&sim, "/v1/models/claude-sonnet-4-20250514", API_KEY)
            .await
            .0,
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reset_stall_html_and_truncated_bodies() {
    let sim = start(with_faults(
        "list_models=reset,stall:ms=300,html,truncated,stall",
    ))
    .await;
    let url = format!("{}/v1/models", sim.base_url);
    // reset: no response at all.
    let err = req(reqwest::Method::GET, url.clone(), API_KEY)
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_status(), "{err}");
    // stall with ms: a slow but normal answer.
    let t = Instant::now();
    assert_eq!(get(&sim, "/v1/models", API_KEY).await.0, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    // html: a proxy's error page.
    let resp = req(reqwest::Method::GET, url.clone(), API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(resp.text().await.unwrap().contains("<html>"));
    // truncated: a 200 whose JSON does not parse.
    let resp = req(reqwest::Method::GET, url.clone(), API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(text.starts_with("{\"data\""));
    assert!(serde_json::from_str::<Value>(&text).is_err());
    // stall without ms: the client has to give up.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let err = client
        .get(url.clone())
        .header("anthropic-version", "2026-10-21")
        .header("x-api-key", API_KEY)
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    // The script is used up: normal again.
    assert_eq!(get(&sim, "/v1/models", API_KEY).await.0, 200);
}

async fn stream_text(sim: &kosmo::simulator::RunningSimulator) -> Result<String, reqwest::Error> {
    let mut body = msg();
    body["stream"] = json!(true);
    req(
        reqwest::Method::POST,
        format!("{}/v1/messages", sim.base_url),
        API_KEY,
    )
    .json(&body)
    .send()
    .await?
    .text()
    .await
}

fn event_names(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn streams_stop_early_or_carry_an_error_event() {
    let sim = start(with_faults(
        "create_message=eof:after=3,error-event:after=2,error-event:type=api_error",
    ))
    .await;
    let names = event_names(&stream_text(&sim).await.unwrap());
    assert_eq!(names, ["message_start", "content_block_start", "ping"]);
    let text = stream_text(&sim).await.unwrap();
    assert_eq!(
        event_names(&text),
        ["message_start", "content_block_start", "error"]
    );
    let last: Value = serde_json::from_str(
        text.lines()
            .rev()
            .find_map(|l| l.strip_prefix("data: "))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        last,
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    );
    let text = stream_text(&sim).await.unwrap();
    assert!(text.contains("\"api_error\""), "{text}");
    let names = event_names(&stream_text(&sim).await.unwrap());
    assert_eq!(names.last().map(String::as_str), Some("message_stop"));
}

#[tokio::test(flavor = "multi_thread")]
async fn eof_on_a_plain_body_drops_the_connection_mid_body() {
    let sim = start(with_faults("create_message=eof")).await;
    let resp = req(
        reqwest::Method::POST,
        format!("{}/v1/messages", sim.base_url),
        API_KEY,
    )
    .json(&msg())
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.is_err(), "the body should end early");
    assert_eq!(post(&sim, "/v1/messages", API_KEY, msg()).await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn streams_can_drop_mid_way_or_hang() {
    let sim = start(with_faults(
        "create_message=eof:after=2:abort=true,hang:after=2",
    ))
    .await;
    let mut body = msg();
    body["stream"] = json!(true);
    let url = format!("{}/v1/messages", sim.base_url);
    // abort: the two events arrive, then the connection drops (no clean end of the body).
    let mut resp = req(reqwest::Method::POST, url.clone(), API_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    let mut got = String::new();
    let err = loop {
        match resp.chunk().await {
            Ok(Some(c)) => got.push_str(&String::from_utf8_lossy(&c)),
            Ok(None) => panic!("the stream ended cleanly: {got}"),
            Err(e) => break e,
        }
    };
    assert_eq!(
        event_names(&got),
        ["message_start", "content_block_start"],
        "{err}"
    );
    // hang: two events, then silence while the connection stays open.
    let mut resp = req(reqwest::Method::POST, url.clone(), API_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    let mut got = String::new();
    loop {
        match tokio::time::timeout(Duration::from_millis(400), resp.chunk()).await {
            Ok(Ok(Some(c))) => got.push_str(&String::from_utf8_lossy(&c)),
            Ok(other) => panic!("the stream ended: {other:?}"),
            Err(_) => break,
        }
    }
    assert_eq!(event_names(&got), ["message_start", "content_block_start"]);
    assert_eq!(post(&sim, "/v1/messages", API_KEY, msg()).await.0, 200);
}

//! The SSE manifest (`ticker.yaml`): a third dialect, the event type only in the data, keep-alive
//! comments and `heartbeat` events, a `data: [END]` sentinel; text deltas concatenated and
//! tool-call argument fragments collected by index.

use serde_json::json;

use super::{Env, Resp, Srv, env, serve};

fn sse(body: &str) -> Resp {
    Resp {
        status: 200,
        headers: vec![("content-type".into(), "text/event-stream".into())],
        body: body.to_string(),
    }
}

fn configured(url: &str) -> Env {
    let e = env();
    e.configure("ticker", &["token=tk_secret", &format!("url={url}")]);
    e
}

fn stream_server(body: &'static str) -> Srv {
    serve(move |_, _| sse(body))
}

const FULL: &str = concat!(
    ": keep-alive\n\n",
    "data: {\"type\":\"start\",\"id\":\"gen_42\"}\n\n",
    "data: {\"type\":\"heartbeat\"}\n\n",
    "data: {\"type\":\"delta\",\"text\":\"Hel\"}\n\n",
    ": keep-alive\n\n",
    "data: {\"type\":\"delta\",\"text\":\"lo, \"}\n\n",
    "data: {\"type\":\"tool_call\",\"index\":0,\"id\":\"call_a\",\"name\":\"weather\",\"arguments\":\"{\\\"ci\"}\n\n",
    "data: {\"type\":\"tool_call\",\"index\":1,\"id\":\"call_b\",\"name\":\"time\",\"arguments\":\"\"}\n\n",
    "data: {\"type\":\"heartbeat\"}\n\n",
    "data: {\"type\":\"tool_call\",\"index\":0,\"arguments\":\"ty\\\": \\\"Paris\\\"}\"}\n\n",
    "data: {\"type\":\"tool_call\",\"index\":1,\"arguments\":\"{\\\"tz\\\":\\\"CET\\\"}\"}\n\n",
    "data: {\"type\":\"delta\",\"text\":\"world\"}\n\n",
    "data: {\"type\":\"stop\",\"reason\":\"tool_use\"}\n\n",
    "data: [END]\n\n",
    "data: this line is after the sentinel and never read\n\n",
);

#[test]
fn a_data_typed_stream_assembles_text_and_tool_calls_by_index() {
    let srv = stream_server(FULL);
    let e = configured(&srv.url);
    let r = e.ok(r#"local seen = {}
           local r = app.integrations.ticker.generate{prompt = "hi",
             on_event = function(ev) seen[#seen + 1] = ev.type end}
           return {result = r, seen = seen}"#);
    assert_eq!(
        r["result"],
        json!({
            "id": "gen_42",
            "text": "Hello, world",
            "tool_calls": [
                {"id": "call_a", "name": "weather", "input": {"city": "Paris"}},
                {"id": "call_b", "name": "time", "input": {"tz": "CET"}}
            ],
            "stop_reason": "tool_use"
        }),
        "{r:#}"
    );
    // Keep-alives (comments and heartbeat events) and the sentinel never reach on_event.
    assert_eq!(
        r["seen"],
        json!([
            "start",
            "delta",
            "delta",
            "tool_call",
            "tool_call",
            "tool_call",
            "tool_call",
            "delta",
            "stop"
        ])
    );
    let req = &srv.requests()[0];
    assert_eq!(req.header("authorization"), Some("Bearer tk_secret"));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&req.body).unwrap(),
        json!({"prompt": "hi"})
    );
}

#[test]
fn a_stream_cut_before_the_sentinel_is_an_error_not_a_partial_result() {
    let srv = stream_server(concat!(
        "data: {\"type\":\"start\",\"id\":\"gen_1\"}\n\n",
        "data: {\"type\":\"delta\",\"text\":\"Hel\"}\n\n",
    ));
    let e = configured(&srv.url);
    let env = e.lua(r#"return app.integrations.ticker.generate{prompt = "hi"}"#);
    assert_eq!(env["success"], json!(false));
    assert_eq!(env["error"]["code"], "transport_error", "{env:#}");
    assert!(
        env["error"]["message"].as_str().unwrap().contains("[END]"),
        "{env:#}"
    );
}

#[test]
fn an_error_in_the_stream_is_an_api_error_with_the_declared_pointers() {
    let srv = stream_server(concat!(
        "data: {\"type\":\"start\",\"id\":\"gen_1\"}\n\n",
        "data: {\"type\":\"error\",\"error\":{\"kind\":\"overloaded\",\"text\":\"Try again later.\"}}\n\n",
        "data: [END]\n\n",
    ));
    let e = configured(&srv.url);
    let env = e.lua(r#"return app.integrations.ticker.generate{prompt = "hi"}"#);
    assert_eq!(env["error"]["code"], "overloaded", "{env:#}");
    assert!(
        env["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Try again later.")
    );
}

#[test]
fn the_simulator_streams_the_same_dialect_and_it_assembles_back() {
    let e = env();
    let out = super::super::support::kosmo(e.config.path())
        .arg("--manifests")
        .arg(&e.manifests)
        .args([
            "integrations:lua",
            "--json",
            "--offline",
            "--force",
            "--eval",
            r#"local n = 0
               local r = app.integrations.ticker.generate{prompt = "hi",
                 on_event = function(ev) n = n + 1 end}
               return {result = r, n = n}"#,
        ])
        .output()
        .unwrap();
    let env: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(env["success"], json!(true), "{env:#}");
    // The same value a non-streaming answer has: the tool input (a parsed object in the
    // answer) travels as JSON text in the tool-call events and is parsed back by `finish`.
    assert_eq!(
        env["result"][0]["result"],
        json!({"id": "gen_1", "text": "Hello there.", "stop_reason": "tool_use",
               "tool_calls": [{"id": "call_1", "name": "weather", "input": {"city": "Paris"}}]})
    );
    assert!(env["result"][0]["n"].as_i64().unwrap() >= 4, "{env:#}");
}

/// Wire variants a server may write: CRLF line ends, a byte order mark, `retry:` / `id:` fields,
/// `data:` without a space, an empty `data:` and an `event: heartbeat` keep-alive, multi-line
/// data, a final event with no blank line after it.
#[test]
fn wire_variants_of_the_dialect_assemble_the_same() {
    for body in [
        "data: {\"type\":\"start\",\"id\":\"g\"}\r\n\r\ndata: {\"type\":\"delta\",\"text\":\"ab\"}\r\n\r\ndata: [END]\r\n\r\n",
        "\u{feff}data: {\"type\":\"start\",\"id\":\"g\"}\n\ndata: {\"type\":\"delta\",\"text\":\"ab\"}\n\ndata: [END]\n\n",
        "retry: 3000\nid: 1\ndata:{\"type\":\"start\",\"id\":\"g\"}\n\ndata:{\"type\":\"delta\",\"text\":\"ab\"}\n\ndata:[END]\n\n",
        "data: {\"type\":\"start\",\"id\":\"g\"}\n\ndata:\n\nevent: heartbeat\ndata: {}\n\ndata: {\"type\":\"delta\",\"text\":\"ab\"}\n\ndata: [END]\n\n",
        "data: {\"type\":\"start\",\ndata: \"id\":\"g\"}\n\ndata: {\"type\":\"delta\",\"text\":\"a\"}\n\ndata: {\"type\":\"delta\",\"text\":\"b\"}\n\ndata: [END]",
    ] {
        let srv = serve(move |_, _| sse(body));
        let e = configured(&srv.url);
        let r = e.ok(r#"local names = {}
               local r = app.integrations.ticker.generate{prompt = "hi",
                 on_event = function(ev) names[#names + 1] = ev and ev.type or "?" end}
               return {r = r, names = table.concat(names, ",")}"#);
        assert_eq!(r["r"], json!({"id": "g", "text": "ab"}), "{body:?}");
        let names = r["names"].as_str().unwrap();
        assert!(
            names == "start,delta" || names == "start,delta,delta",
            "{body:?}: {names}"
        );
    }
}

#[test]
fn a_429_before_the_stream_is_waited_out_and_the_stream_then_assembles() {
    let srv = serve(|_, n| {
        if n == 0 {
            Resp::json(
                429,
                json!({"error": {"kind": "rate_limited", "text": "Slow down."}}),
            )
            .header("retry-after", "1")
        } else {
            sse(FULL)
        }
    });
    let e = configured(&srv.url);
    let r = e.ok(r#"return app.integrations.ticker.generate{prompt = "hi"}"#);
    assert_eq!(r["text"], "Hello, world");
    assert_eq!(srv.requests().len(), 2);
    assert_eq!(srv.requests()[0].body, srv.requests()[1].body);
}

//! Streams declared as data, end to end: a chunk-style (choices/delta, `data: [DONE]`) stream from
//! a 127.0.0.1 server through a test manifest and the real binary; the same function offline,
//! where the simulator streams from the declaration; and the built-in message stream rules.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;

use super::server::{self, Action};
use crate::support::{Kosmo, kosmo};

/// A chat-completions API in the style most LLM providers copy, declared only in YAML.
const CHATTY: &str = r#"
name: chatty
label: Chatty
summary: A chunk-streaming chat API (test fixture).
category: testing
base_url: https://chatty.invalid
credentials:
  token: {label: Chatty token, header: authorization, scheme: Bearer, env: CHATTY_TOKEN, placeholder: ck-offline, hint: set CHATTY_TOKEN}
account: {base_url_env: CHATTY_BASE_URL}
errors: {type_pointer: /error/type, message_pointer: /error/message}
groups: [{id: chat, title: Chat}]
functions:
  create_completion:
    group: chat
    class: write
    summary: Create a chat completion.
    method: POST
    path: /v1/chat/completions
    credential: token
    stream:
      param: stream
      dialect: {event_from: data, type_pointer: /object, done: "[DONE]", error_pointer: /error}
      assemble:
        start: {on: chat.completion.chunk, take: "", drop: [/choices, /obfuscation]}
        rules:
          - {each: /choices, set: "/choices/{/index}/index", value: /index}
          - {each: /choices, accumulate: "/choices/{/index}/message", value: /delta}
          - {each: /choices, accumulate: "/choices/{/index}/logprobs", value: /logprobs}
          - {each: /choices, set: "/choices/{/index}/finish_reason", value: /finish_reason}
          - {set: /usage, value: /usage}
          - {set: /system_fingerprint, value: /system_fingerprint}
        finish:
          - {set: /object, to: chat.completion}
          - {default: "/choices/*/logprobs", to: null}
          - {default: "/choices/*/finish_reason", to: null}
          - {remove: "/choices/*/message/tool_calls/*/index"}
    params:
      - {name: model, in: body, required: true, type: string}
      - {name: messages, in: body, required: true, type: array}
      - {name: stream, in: body, type: boolean}
    simulator:
      response:
        id: chatcmpl-sim
        object: chat.completion
        created: 1700000000
        model: "{model}"
        choices:
          - index: 0
            message:
              role: assistant
              content: Checking the weather.
              tool_calls:
                - {id: call_1, type: function, function: {name: weather, arguments: "{\"city\":\"Paris\"}"}}
            logprobs: null
            finish_reason: tool_calls
        usage: {prompt_tokens: 5, completion_tokens: 7, total_tokens: 12}
  narrate:
    group: chat
    class: read
    summary: Tell a story as named events (always a stream).
    method: GET
    path: /v1/narrate
    credential: token
    response: sse
    stream:
      dialect: {end_events: [story_end]}
      assemble:
        start: {on: story_start, take: /story}
        rules:
          - {on: line, push: /lines, value: /text}
    simulator:
      response: {title: A tale, lines: [Once, upon, a time]}
"#;

fn chunk(choices: Value, usage: Value) -> String {
    let data = json!({"id": "c1", "object": "chat.completion.chunk", "created": 7,
        "model": "m", "system_fingerprint": "fp", "choices": choices, "usage": usage});
    format!("data: {data}\n\n")
}

fn delta(d: Value, finish: Value) -> String {
    chunk(
        json!([{"index": 0, "delta": d, "logprobs": null, "finish_reason": finish}]),
        Value::Null,
    )
}

/// A realistic stream: role, content pieces, a keep-alive comment, two tool calls whose
/// argument fragments interleave, the finish reason, then usage on a chunk with no choices.
fn chunks() -> Vec<String> {
    vec![
        delta(
            json!({"role": "assistant", "content": "", "refusal": null}),
            Value::Null,
        ),
        delta(json!({"content": "Let me "}), Value::Null),
        ": keep-alive\n\n".to_string(),
        delta(json!({"content": "check."}), Value::Null),
        delta(
            json!({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                "function": {"name": "weather", "arguments": ""}}]}),
            Value::Null,
        ),
        delta(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
            Value::Null,
        ),
        delta(
            json!({"tool_calls": [{"index": 1, "id": "call_b", "type": "function",
                "function": {"name": "time", "arguments": "{}"}}]}),
            Value::Null,
        ),
        delta(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}),
            Value::Null,
        ),
        delta(json!({}), json!("tool_calls")),
        chunk(
            json!([]),
            json!({"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}),
        ),
    ]
}

fn assembled() -> Value {
    json!({
        "id": "c1", "object": "chat.completion", "created": 7, "model": "m",
        "system_fingerprint": "fp",
        "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21},
        "choices": [{
            "index": 0,
            "message": {
                "role": "assistant", "content": "Let me check.", "refusal": null,
                "tool_calls": [
                    {"id": "call_a", "type": "function",
                     "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "call_b", "type": "function",
                     "function": {"name": "time", "arguments": "{}"}}
                ]
            },
            "logprobs": null,
            "finish_reason": "tool_calls"
        }]
    })
}

fn without_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

/// Lua that streams, records what `on_event` saw, and returns both.
const STREAM_LUA: &str = r#"
local seen = {}
local r = app.integrations.chatty.create_completion{model = "m", stream = true,
  messages = {{role = "user", content = "weather?"}},
  on_event = function(e)
    local c = e.choices[1]
    seen[#seen + 1] = e.object .. ":" .. ((c and c.delta and c.delta.content) or "-")
  end}
return {result = r, seen = seen}"#;

fn run(dir: &Path, envs: &[(&str, &str)], extra: &[&str], code: &str) -> Value {
    let manifests = dir.join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::write(manifests.join("chatty.yaml"), CHATTY).unwrap();
    Kosmo::lua(code)
        .flag("--force")
        .flags(extra)
        .env(
            "KOSMO_MANIFEST_PATH",
            manifests.to_str().expect("a UTF-8 path"),
        )
        .envs(envs)
        .dir(dir)
        .run()
        .env
}

fn live_env(url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("CHATTY_TOKEN", "ck-live-token".to_string()),
        ("CHATTY_BASE_URL", url.to_string()),
    ]
}

fn refs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, s)| (*k, s.as_str())).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn chunk_stream_with_done_sentinel_assembles_and_on_event_sees_each_chunk() {
    let mut pieces = chunks();
    pieces.push("data: [DONE]\n\n".into());
    let texts: Vec<&str> = pieces.iter().map(String::as_str).collect();
    // The server keeps the connection open after [DONE]: the sentinel alone must end the call.
    let srv = server::start(vec![Action::sse(&texts, true)]).await;
    let dir = tempfile::tempdir().unwrap();
    let env = live_env(&srv.url);
    let dir_path = dir.path().to_path_buf();
    let o = tokio::task::spawn_blocking(move || run(&dir_path, &refs(&env), &[], STREAM_LUA))
        .await
        .unwrap();
    assert_eq!(o["success"], true, "{o}");
    // (Lua tables have no nulls.)
    assert_eq!(o["result"][0]["result"], without_nulls(assembled()), "{o}");
    // Every chunk reached on_event, in order; the comment and [DONE] did not.
    assert_eq!(
        o["result"][0]["seen"],
        json!([
            "chat.completion.chunk:",
            "chat.completion.chunk:Let me ",
            "chat.completion.chunk:check.",
            "chat.completion.chunk:-",
            "chat.completion.chunk:-",
            "chat.completion.chunk:-",
            "chat.completion.chunk:-",
            "chat.completion.chunk:-",
            "chat.completion.chunk:-"
        ]),
        "{o}"
    );
    let req = &srv.requests()[0];
    let body: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(body["stream"], true);
    assert_eq!(req.header("authorization"), Some("Bearer ck-live-token"));
}

#[tokio::test(flavor = "multi_thread")]
async fn chunk_stream_that_ends_without_done_is_an_error() {
    let pieces = chunks();
    let texts: Vec<&str> = pieces.iter().map(String::as_str).collect();
    let srv = server::start(vec![Action::sse(&texts, false)]).await;
    let dir = tempfile::tempdir().unwrap();
    let env = live_env(&srv.url);
    let dir_path = dir.path().to_path_buf();
    let o = tokio::task::spawn_blocking(move || run(&dir_path, &refs(&env), &[], STREAM_LUA))
        .await
        .unwrap();
    assert_eq!(o["success"], false, "{o}");
    let msg = o["error"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("ended before") && msg.contains("[DONE]"),
        "{o}"
    );
    assert_eq!(srv.count(), 1, "a started stream is not re-sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_error_chunk_is_an_api_error_with_the_declared_envelope() {
    let mut pieces = chunks()[..2].to_vec();
    pieces.push(
        "data: {\"error\": {\"type\": \"server_error\", \"message\": \"the model fell over\"}}\n\n"
            .into(),
    );
    let texts: Vec<&str> = pieces.iter().map(String::as_str).collect();
    let srv = server::start(vec![Action::sse(&texts, false)]).await;
    let dir = tempfile::tempdir().unwrap();
    let env = live_env(&srv.url);
    let dir_path = dir.path().to_path_buf();
    let o = tokio::task::spawn_blocking(move || run(&dir_path, &refs(&env), &[], STREAM_LUA))
        .await
        .unwrap();
    assert_eq!(o["success"], false, "{o}");
    let msg = o["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("the model fell over"), "{o}");
    assert!(o.to_string().contains("server_error"), "{o}");
}

#[test]
fn offline_the_simulator_streams_any_streaming_function_from_its_declaration() {
    let dir = tempfile::tempdir().unwrap();
    let code = format!(
        "{}\n",
        STREAM_LUA.replace(
            "return {result = r, seen = seen}",
            "local plain = app.integrations.chatty.create_completion{model = 'm', messages = {{role = 'user', content = 'weather?'}}}\nreturn {result = r, seen = seen, plain = plain}"
        )
    );
    let o = run(dir.path(), &[], &["--offline"], &code);
    assert_eq!(o["success"], true, "{o}");
    let r = &o["result"][0];
    assert_eq!(r["result"], r["plain"], "streamed == plain: {o}");
    assert_eq!(r["result"]["object"], "chat.completion");
    assert_eq!(
        r["result"]["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
        "{\"city\":\"Paris\"}"
    );
    // It really streamed: on_event saw chunks derived from the rules (choices[].delta), the
    // text in pieces that add up to the answer's.
    let seen = r["seen"].as_array().cloned().unwrap_or_default();
    assert!(seen.len() > 1, "{o}");
    let text: String = seen
        .iter()
        .filter_map(|s| s.as_str()?.split_once(':'))
        .map(|(_, piece)| if piece == "-" { "" } else { piece })
        .collect();
    assert_eq!(text, "Checking the weather.", "{o}");
    // Named as the dialect reads names: chunks, as on the wire.
    assert!(
        seen.iter().all(|s| s
            .as_str()
            .is_some_and(|s| s.starts_with("chat.completion.chunk:"))),
        "{o}"
    );
}

#[test]
fn a_bad_stream_declaration_is_a_check_error() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("m");
    std::fs::create_dir_all(&manifests).unwrap();
    for (name, broken, needle) in [
        (
            "assembler",
            format!(
                "{}      assemble: chat_magic\n{}",
                CHATTY.split("      assemble:\n").next().unwrap(),
                &CHATTY[CHATTY.find("    params:").unwrap()..]
            ),
            "/stream/assemble",
        ),
        (
            "two ops",
            CHATTY.replace(
                "{set: /usage, value: /usage}",
                "{set: /usage, append: /x, value: /usage}",
            ),
            "exactly one of set, append",
        ),
        (
            "pointer",
            CHATTY.replace("value: /finish_reason}", "value: finish_reason}"),
            "/stream/assemble/rules/3/value",
        ),
        (
            "template",
            CHATTY.replace("\"/choices/{/index}/index\"", "\"/choices/{index}/index\""),
            "/stream/assemble/rules/0/set",
        ),
    ] {
        std::fs::write(manifests.join("chatty.yaml"), &broken).unwrap();
        let out = kosmo(dir.path())
            .env("KOSMO_MANIFEST_PATH", &manifests)
            .args(["manifests:check"])
            .arg(manifests.join("chatty.yaml"))
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{name}: {all}");
        assert!(all.contains(needle), "{name}: {all}");
    }
}

/// A full message stream: thinking + signature, text with a citation, tool input from JSON
/// fragments, an empty tool input, a ping, an unknown event, nulls in the final usage.
fn message_stream() -> String {
    let ev = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    let block_delta = |i: u64, d: Value| {
        ev(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": i, "delta": d}),
        )
    };
    [
        ev(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_1",
            "type": "message", "role": "assistant", "content": [], "model": "m",
            "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 25, "output_tokens": 1}}}),
        ),
        ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        ),
        block_delta(0, json!({"type": "thinking_delta", "thinking": "hm"})),
        block_delta(0, json!({"type": "thinking_delta", "thinking": "m"})),
        block_delta(0, json!({"type": "signature_delta", "signature": "sig"})),
        ev(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        ev("ping", json!({"type": "ping"})),
        ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": 1,
            "content_block": {"type": "text", "text": ""}}),
        ),
        block_delta(1, json!({"type": "text_delta", "text": "Hé"})),
        block_delta(
            1,
            json!({"type": "citations_delta", "citation": {"type": "char_location",
            "cited_text": "x", "document_index": 0, "start_char_index": 0, "end_char_index": 1}}),
        ),
        block_delta(1, json!({"type": "text_delta", "text": "llo"})),
        ev(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 1}),
        ),
        ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": 2,
            "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get", "input": {}}}),
        ),
        block_delta(
            2,
            json!({"type": "input_json_delta", "partial_json": "{\"city\": \"Pa"}),
        ),
        block_delta(
            2,
            json!({"type": "input_json_delta", "partial_json": "ris\"}"}),
        ),
        ev(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 2}),
        ),
        ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": 3,
            "content_block": {"type": "tool_use", "id": "toolu_2", "name": "now", "input": {}}}),
        ),
        ev(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 3}),
        ),
        ev("brand_new_event", json!({"type": "brand_new_event"})),
        ev(
            "message_delta",
            json!({"type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": null},
            "usage": {"output_tokens": 15, "cache_read_input_tokens": null}}),
        ),
        ev("message_stop", json!({"type": "message_stop"})),
    ]
    .concat()
}

/// The message stream folded with the built-in manifest's declaration, in `size`-byte chunks.
fn fold_message_stream(size: usize) -> Value {
    use kosmo::exec::sse::StreamFold;
    use kosmo::manifest::Manifest;
    let m = Manifest::from_yaml(
        "builtin.yaml",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/manifests/anthropic.yaml"
        )),
    )
    .unwrap();
    let spec = m
        .functions
        .values()
        .find_map(|f| f.stream.clone())
        .expect("a streaming function");
    let stream = message_stream();
    let mut f = StreamFold::new(Some(&spec)).unwrap();
    let mut names = Vec::new();
    for piece in stream.as_bytes().chunks(size) {
        for e in f.push(piece).unwrap() {
            if f.is_keepalive(&e) {
                continue;
            }
            names.push(e.name.clone());
            f.fold(&e).unwrap();
        }
    }
    assert!(f.flush().unwrap().is_none());
    assert!(f.finished(), "message_stop ends it");
    assert!(!names.contains(&"ping".to_string()));
    f.finish().unwrap()
}

/// The built-in message manifest declares its assembly as rules; folding a full stream with it
/// gives exactly what the old hand-written assembler did.
#[test]
fn builtin_message_stream_rules_give_the_same_message_as_before() {
    let want = json!({"id": "msg_1", "type": "message", "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "text", "text": "Héllo", "citations": [{"type": "char_location",
                "cited_text": "x", "document_index": 0, "start_char_index": 0, "end_char_index": 1}]},
            {"type": "tool_use", "id": "toolu_1", "name": "get", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_2", "name": "now", "input": {}}],
        "model": "m", "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 25, "output_tokens": 15}});
    for size in [1, 3, 17, message_stream().len()] {
        let got = fold_message_stream(size);
        assert_eq!(got, want, "chunk size {size}");
        // Same key order as before too: printed results are unchanged.
        assert_eq!(got.to_string(), want.to_string());
    }
}

/// The official Python SDK's own accumulator is the oracle for the message rules: the same
/// events give the same message (compared without nulls: the SDK's models add null fields).
#[test]
fn message_assembly_matches_the_official_sdk_accumulator() {
    let Some(python) = crate::support::sdk_python() else {
        return;
    };
    const ACCUMULATE: &str = r#"
import json, sys
from anthropic.lib.streaming._messages import accumulate_event
snap, bufs = None, {}
for line in sys.stdin:
    line = line.strip()
    if line.startswith("data: "):
        data = json.loads(line[6:])
        if data.get("type") not in ("ping", "brand_new_event"):
            snap = accumulate_event(event=data, current_snapshot=snap, json_bufs=bufs)
print(json.dumps(snap.model_dump(mode="json")))
"#;
    let sdk = run_python(&python, ACCUMULATE, &message_stream());
    assert_eq!(without_nulls(fold_message_stream(64)), without_nulls(sdk));
}

/// Run a Python snippet with `input` on stdin; its stdout is JSON.
fn run_python(python: &Path, code: &str, input: &str) -> Value {
    use std::io::Write;
    let mut child = std::process::Command::new(python)
        .args(["-c", code])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The runnable example of docs/manifest-format.md ("Streams"): it checks, streams offline, and
/// its sample wire stream assembles into what the guide says.
#[test]
fn the_guides_stream_example_runs_as_documented() {
    use kosmo::exec::sse::StreamFold;
    use kosmo::manifest::Manifest;
    let guide = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/manifest-format.md"
    ));
    let block = &guide[guide.find("<!-- streams-example:begin -->").unwrap()
        ..guide.find("<!-- streams-example:end -->").unwrap()];
    let yaml = &block[block.find("```yaml\n").unwrap() + 8..block.rfind("```").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::write(manifests.join("chatty.yaml"), yaml).unwrap();
    kosmo(dir.path())
        .arg("--manifests")
        .arg(&manifests)
        .arg("manifests:check")
        .arg(manifests.join("chatty.yaml"))
        .assert()
        .success();
    let out = kosmo(dir.path())
        .arg("--manifests")
        .arg(&manifests)
        .args(["integrations:lua", "--offline", "--force", "--eval"])
        .arg(
            r#"local n = 0
local r = app.integrations.chatty.create_chat_completion{model = "m", stream = true,
  messages = {{role = "user", content = "hi"}}, on_event = function(chunk) n = n + 1 end}
print(r.object, r.choices[1].message.content, n)"#,
        )
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.trim(), "chat.completion\tHello there.\t2", "{out:?}");

    let sample = &guide[guide.find("A stream like\n\n```text\n").unwrap() + 22..];
    let sample = &sample[..sample.find("```").unwrap()];
    let m = Manifest::from_yaml("chatty.yaml", yaml).unwrap();
    let spec = m.functions["create_chat_completion"]
        .stream
        .clone()
        .unwrap();
    let mut f = StreamFold::new(Some(&spec)).unwrap();
    for e in f.push(sample.as_bytes()).unwrap() {
        f.fold(&e).unwrap();
    }
    assert!(f.flush().unwrap().is_none(), "the sentinel is not an event");
    assert!(f.is_done() && f.finished());
    assert_eq!(
        f.finish().unwrap(),
        json!({"id": "c1", "object": "chat.completion", "created": 7, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "",
                "tool_calls": [{"id": "call_a", "type": "function",
                    "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                "finish_reason": "tool_calls", "logprobs": null}]})
    );
}

#[test]
fn offline_an_always_streaming_function_with_named_events_streams_too() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(
        dir.path(),
        &[],
        &["--offline"],
        r#"local seen = {}
local r = app.integrations.chatty.narrate{on_event = function(e) seen[#seen + 1] = e.type end}
return {result = r, seen = seen}"#,
    );
    assert_eq!(o["success"], true, "{o}");
    assert_eq!(
        o["result"][0]["result"],
        json!({"title": "A tale", "lines": ["Once", "upon", "a time"]}),
        "{o}"
    );
    assert_eq!(
        o["result"][0]["seen"],
        json!(["story_start", "story_end"]),
        "{o}"
    );
}

#[test]
fn lint_reports_dialect_keys_in_two_places_a_missing_param_and_bad_pointers() {
    use kosmo::manifest::Manifest;
    let cases = [
        (
            CHATTY.replace(
                "      param: stream\n      dialect: {event_from: data,",
                "      param: stream\n      end_events: [x]\n      dialect: {end_events: [y], event_from: data,",
            ),
            "/functions/create_completion/stream/end_events",
            "both here and in 'dialect'",
        ),
        (
            CHATTY.replace("      param: stream\n", ""),
            "/functions/create_completion/stream",
            "needs 'param'",
        ),
        (
            CHATTY.replace("type_pointer: /object", "type_pointer: \"\""),
            "/functions/create_completion/stream/dialect/type_pointer",
            "not a JSON pointer",
        ),
        (
            CHATTY.replace("{set: /object, to: chat.completion}", "{set: /object}"),
            "/functions/create_completion/stream/assemble/finish/0",
            "need 'to'",
        ),
        (
            CHATTY.replace(
                "{on: line, push: /lines, value: /text}",
                "{on: line, push: /lines, value: /text, skip_nulls: true}",
            ),
            "/functions/narrate/stream/assemble/rules/0/skip_nulls",
            "only applies to merge",
        ),
        (
            CHATTY.replace("{on: line, push: /lines", "{on: ping, push: /lines"),
            "/functions/narrate/stream/assemble/rules/0/on",
            "never reaches the assembler",
        ),
    ];
    for (yaml, at, needle) in cases {
        let err = Manifest::from_yaml("chatty.yaml", &yaml)
            .unwrap_err()
            .to_string();
        assert!(err.contains(at) && err.contains(needle), "{at}: {err}");
    }
    // The fixture itself is clean.
    Manifest::from_yaml("chatty.yaml", CHATTY).unwrap();
}

/// The official `openai` SDK's own stream accumulator is the oracle for chunk assembly: the same
/// chunks give the same completion (compared without nulls, and without the SDK's client-side
/// extras `parsed` / `parsed_arguments` and tool-call `index`, which a non-streamed completion
/// does not have either).
#[test]
fn chunk_assembly_matches_the_official_sdk_accumulator() {
    use kosmo::exec::sse::StreamFold;
    use kosmo::manifest::Manifest;
    let Some(python) = crate::support::sdk_python() else {
        return;
    };
    let has_openai = std::process::Command::new(&python)
        .args(["-c", "import openai"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_openai {
        // .ci/run installs the `openai` package next to `anthropic`.
        assert!(
            std::env::var_os("CI").is_none(),
            "the openai SDK oracle is required under CI"
        );
        eprintln!(
            "SKIP: the official openai SDK is not installed in {}",
            python.display()
        );
        return;
    }
    const ACCUMULATE: &str = r#"
import json, sys
from openai.types.chat import ChatCompletionChunk
from openai.lib.streaming.chat._completions import ChatCompletionStreamState
state = ChatCompletionStreamState()
for line in sys.stdin:
    line = line.strip()
    if not line.startswith("data: "):
        continue
    if line[6:].startswith("[DONE]"):
        break
    state.handle_chunk(ChatCompletionChunk.model_validate(json.loads(line[6:])))
print(json.dumps(state.get_final_completion().model_dump(mode="json")))
"#;
    let mut text = chunks().concat();
    text.push_str("data: [DONE]\n\n");
    let mut sdk = run_python(&python, ACCUMULATE, &text);
    for choice in sdk["choices"].as_array_mut().unwrap() {
        let msg = choice["message"].as_object_mut().unwrap();
        msg.remove("parsed");
        for call in msg["tool_calls"].as_array_mut().unwrap() {
            let call = call.as_object_mut().unwrap();
            call.remove("index");
            call["function"]
                .as_object_mut()
                .unwrap()
                .remove("parsed_arguments");
        }
    }
    let m = Manifest::from_yaml("chatty.yaml", CHATTY).unwrap();
    let spec = m.functions["create_completion"].stream.clone().unwrap();
    let mut f = StreamFold::new(Some(&spec)).unwrap();
    for e in f.push(text.as_bytes()).unwrap() {
        f.fold(&e).unwrap();
    }
    assert!(f.finished());
    let ours = f.finish().unwrap();
    assert_eq!(without_nulls(ours), without_nulls(sdk));
}

/// The official `openai` SDK reads the simulator's derived chunk stream like a real one: its
/// stream helper sees the text in pieces and its accumulated completion is the plain answer.
#[tokio::test(flavor = "multi_thread")]
async fn the_official_sdk_reads_the_simulated_chunk_stream() {
    use kosmo::registry::{Registry, RegistryOptions};
    use kosmo::simulator::{self, SimulatorOptions};
    use std::sync::Arc;
    let Some(python) = crate::support::sdk_python() else {
        return;
    };
    let has_openai = std::process::Command::new(&python)
        .args(["-c", "import openai"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_openai {
        assert!(
            std::env::var_os("CI").is_none(),
            "the openai SDK oracle is required under CI"
        );
        eprintln!("SKIP: the official openai SDK is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("chatty.yaml"), CHATTY).unwrap();
    let registry = Registry::load(&RegistryOptions {
        dirs: vec![dir.path().to_path_buf()],
        ignore_env: true,
    })
    .unwrap();
    let sim = simulator::start(
        Arc::new(registry),
        SimulatorOptions {
            integration: "chatty".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    const CLIENT: &str = r#"
import json, sys
from openai import OpenAI
c = OpenAI(base_url=sys.argv[1] + "/v1", api_key="ck-test", max_retries=0)
msgs = [{"role": "user", "content": "weather?"}]
with c.chat.completions.stream(model="m", messages=msgs) as s:
    deltas = [e.delta for e in s if e.type == "content.delta"]
    final = s.get_final_completion().model_dump(mode="json")
plain = c.chat.completions.create(model="m", messages=msgs).model_dump(mode="json")
print(json.dumps({"deltas": deltas, "final": final, "plain": plain}))
"#;
    let out = tokio::process::Command::new(&python)
        .args(["-c", CLIENT, &sim.base_url])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got: Value = serde_json::from_slice(&out.stdout).unwrap();
    let deltas: Vec<String> = serde_json::from_value(got["deltas"].clone()).unwrap();
    assert!(deltas.len() > 1, "{got}");
    assert_eq!(deltas.concat(), "Checking the weather.");
    for choice in got["final"]["choices"].as_array_mut().unwrap() {
        let msg = choice["message"].as_object_mut().unwrap();
        msg.remove("parsed");
        for call in msg["tool_calls"].as_array_mut().unwrap() {
            let call = call.as_object_mut().unwrap();
            call.remove("index");
            call["function"]
                .as_object_mut()
                .unwrap()
                .remove("parsed_arguments");
        }
    }
    assert_eq!(
        without_nulls(got["final"].clone()),
        without_nulls(got["plain"].clone())
    );
}

/// A simulated stream with named events and no sentinel is the simulator's own event reply, so
/// scripted stream faults apply to it like to the built-in streams.
#[tokio::test(flavor = "multi_thread")]
async fn scripted_stream_faults_apply_to_derived_streams() {
    use kosmo::registry::{Registry, RegistryOptions};
    use kosmo::simulator::{self, SimulatorOptions};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("chatty.yaml"), CHATTY).unwrap();
    let registry = Registry::load(&RegistryOptions {
        dirs: vec![dir.path().to_path_buf()],
        ignore_env: true,
    })
    .unwrap();
    let sim = simulator::start(
        Arc::new(registry),
        SimulatorOptions {
            integration: "chatty".into(),
            faults: Some("narrate=eof:after=1".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let get = || async {
        reqwest::Client::new()
            .get(format!("{}/v1/narrate", sim.base_url))
            .header("authorization", "Bearer ck-test")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap_or_default()
    };
    let cut = get().await;
    assert!(cut.contains("event: story_start"), "{cut}");
    assert!(!cut.contains("story_end"), "the fault ends it early: {cut}");
    let whole = get().await;
    assert!(whole.contains("event: story_end"), "{whole}");
}

#[test]
fn streaming_through_lua() {
    let dir = TempDir::new().unwrap();
    let code = r#"
local kinds = {}
local r = app.integrations.anthropic.create_message{model = "m", max_tokens = 64,
  messages = {{role = "user", content = "stream this"}}, stream = true,
  on_event = function(e) kinds[#kinds + 1] = e.type end}
local plain = app.integrations.anthropic.create_message{model = "m", max_tokens = 64,
  messages = {{role = "user", content = "stream this"}}}
return r.type, r.stop_reason, r.content[1].text == plain.content[1].text, kinds[1], kinds[#kinds],
  r.usage.output_tokens == plain.usage.output_tokens"#;
    let o = Kosmo::lua_args(&["--offline", "--force", "--eval", code])
        .dir(dir.path())
        .run();
    assert_eq!(
        o.env["result"],
        json!([
            "message",
            "end_turn",
            true,
            "message_start",
            "message_stop",
            true
        ]),
        "{}",
        o.show()
    );
    // An error raised in on_event stops the call and is reported for that function.
    let o = Kosmo::lua_args(&[
            "--offline",
            "--force",
            "--eval",
            "return app.integrations.anthropic.create_message{model = 'm', messages = {{role = 'user', content = 'x'}}, stream = true, on_event = function(e) error('stop here') end}",
        ]).dir(dir.path()).run();
    assert!(o.err_message().contains("stop here"), "{}", o.show());
    assert_eq!(o.env["error"]["function"], "create_message");
}

//! manifests/openai.yaml against a wiremock OpenAI.

use serde_json::json;
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{Setup, last_json};

const KEY: &str = "sk-proj-testKEY0123456789";

fn file(id: &str) -> serde_json::Value {
    json!({"id": id, "object": "file", "bytes": 1, "created_at": 1, "filename": "a.jsonl", "purpose": "batch", "status": "processed"})
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_all_follows_the_after_cursor() {
    let srv = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/files"))
        .and(query_param_is_missing("after"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "data": [file("file-1"), file("file-2")],
            "first_id": "file-1", "last_id": "file-2", "has_more": true
        })))
        .mount(&srv)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/files"))
        .and(query_param("after", "file-2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "data": [file("file-3")],
            "first_id": "file-3", "last_id": "file-3", "has_more": false
        })))
        .mount(&srv)
        .await;
    let s = Setup::new("openai");
    let base = format!("{}/v1", srv.uri());
    let (out, err, ok) = s
        .lua(
            &[("OPENAI_BASE_URL", &base), ("OPENAI_API_KEY", KEY)],
            r#"
            local all = app.integrations.openai.list_files({purpose = "batch", fetch_all = true})
            local ids = {}
            for _, f in ipairs(all.data) do ids[#ids + 1] = f.id end
            print(json.encode({ids = ids, has_more = all.has_more}))
            "#,
        )
        .await;
    assert!(ok, "{out}\n{err}");
    let v = last_json(&out, &err);
    assert_eq!(v["ids"], json!(["file-1", "file-2", "file-3"]));
    assert_eq!(v["has_more"], false);
    let reqs = srv.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        reqs[1].headers.get("authorization").unwrap(),
        &format!("Bearer {KEY}")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_error_envelope_reaches_lua_whole() {
    let srv = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/models/gpt-nope"))
        .respond_with(
            ResponseTemplate::new(404)
                .insert_header("x-request-id", "req_abc123")
                .set_body_json(json!({"error": {
                    "message": "The model `gpt-nope` does not exist or you do not have access to it.",
                    "type": "invalid_request_error", "param": null, "code": "model_not_found"
                }})),
        )
        .mount(&srv)
        .await;
    let s = Setup::new("openai");
    let base = format!("{}/v1", srv.uri());
    let (out, err, ok) = s
        .lua(
            &[("OPENAI_BASE_URL", &base), ("OPENAI_API_KEY", KEY)],
            r#"
            local ok, e = pcall(function() return app.integrations.openai.get_model("gpt-nope") end)
            print(json.encode({ok = ok, type = e.type, status = e.status, message = e.message,
              request_id = e.request_id, api_code = e.body and e.body.error.code}))
            "#,
        )
        .await;
    assert!(ok, "{out}\n{err}");
    let v = last_json(&out, &err);
    assert_eq!(v["ok"], false);
    assert_eq!(v["status"], 404);
    assert_eq!(v["type"], "invalid_request_error");
    assert_eq!(v["request_id"], "req_abc123");
    assert_eq!(v["api_code"], "model_not_found", "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or("")
            .contains("does not exist"),
        "{v}"
    );
    assert!(!out.contains(KEY) && !err.contains(KEY));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_is_assembled_and_each_chunk_observed() {
    let srv = MockServer::start().await;
    let sse = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/oracle/openai/streams/tool_calls.sse"),
    )
    .unwrap();
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(sse, "text/event-stream"))
        .mount(&srv)
        .await;
    let s = Setup::new("openai");
    let base = format!("{}/v1", srv.uri());
    let (out, err, ok) = s
        .lua(
            &[("OPENAI_BASE_URL", &base), ("OPENAI_API_KEY", KEY)],
            r#"
            local seen = 0
            local r = app.integrations.openai.create_chat_completion({
              model = "gpt-4o", messages = {{role = "user", content = "Weather and time in Paris?"}},
              stream = true, on_event = function(ev) seen = seen + 1 end,
            })
            local calls = r.choices[1].message.tool_calls
            print(json.encode({seen = seen, finish = r.choices[1].finish_reason,
              a = calls[1]["function"].arguments, b = calls[2]["function"].name}))
            "#,
        )
        .await;
    assert!(ok, "{out}\n{err}");
    let v = last_json(&out, &err);
    assert_eq!(v["finish"], "tool_calls", "{v}");
    assert_eq!(v["a"], "{\"city\":\"Paris\"}");
    assert_eq!(v["b"], "get_time");
    assert_eq!(v["seen"], 6, "six chunks, [DONE] is not an event: {v}");
    let reqs = srv.received_requests().await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&reqs[0].body).unwrap();
    assert_eq!(body["stream"], true);
}

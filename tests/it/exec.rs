//! The generic executor against servers these tests start on 127.0.0.1: exact requests, the
//! fault matrix (each case counts requests server-side: nothing lost, nothing duplicated),
//! streaming, pagination, polling, rows, dry runs, credentials, and a secret scan.

mod accounts;
mod faults;
mod oracle;
mod oracle_github;
mod oracle_openai;
mod polling;
mod registry_shapes;
mod requests;
pub mod server;
mod streams;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use kosmo::credentials::{CredentialFile, Credentials};
use kosmo::exec::{Call, CallOutput, ExecConfig, Executor};
use kosmo::manifest::Manifest;
use kosmo::registry::{Integration, Registry, Source};
use serde_json::{Value, json};
use server::Action;
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const SECRET: &str = "sk-fx-SECRETSECRET-0123456789";
pub const ADMIN_SECRET: &str = "sk-fx-admin-TOPSECRET-9876543210";

/// A small integration that exercises every executor feature without being Anthropic.
pub const FIXTURE: &str = r#"
name: fx
label: Fixture
summary: A fixture integration for executor tests.
category: testing
base_url: http://127.0.0.1:9
headers: {fx-version: "2024-01-01"}
credentials:
  api_key: {label: API key, header: x-api-key, env: FX_API_KEY, hint: "configure api_key"}
  admin_key: {label: Admin API key, header: x-api-key, hint: "configure admin_key"}
  token: {label: Token, header: authorization, scheme: Bearer, hint: "configure token"}
account: {strip_base_url_suffix: /v1, base_url_env: FX_BASE_URL}
betas: {header: fx-beta, param: betas}
errors: {should_retry_header: x-should-retry}
retry: {refused_statuses: [408, 429, 529]}
functions:
  create_thing:
    group: g
    class: write
    summary: Create a thing.
    method: POST
    path: /v1/things
    credential: api_key
    passthrough: true
    wrappers: [payload]
    betas: [beta-a]
    stream:
      param: stream
      dialect: {end_events: [message_stop]}
      assemble:
        start: {on: message_start, take: /message}
        rules:
          - {on: content_block_start, set: "/content/{/index}", value: /content_block, required: true}
          - {on: content_block_delta, when: {pointer: /delta/type, equals: text_delta}, append: "/content/{/index}/text", value: /delta/text}
          - {on: content_block_delta, when: {pointer: /delta/type, equals: input_json_delta}, append: "/content/{/index}/_partial_json", value: /delta/partial_json}
          - {on: message_delta, merge: "", value: /delta}
          - {on: message_delta, merge: /usage, value: /usage, skip_nulls: true}
        finish:
          - {parse_json: "/content/*/_partial_json", into: input}
          - {compact: /content}
    params:
      - {name: name, in: body, required: true, type: string}
      - {name: max_tokens, in: body, type: integer, default: 4096, send_default: true}
      - {name: stream, in: body, type: boolean}
      - {name: user, in: header, wire_name: fx-user, type: string}
  put_thing:
    group: g
    class: write
    idempotent: true
    summary: Replace a thing.
    method: PUT
    path: /v1/things/{id}
    credential: api_key
    params:
      - {name: id, in: path, required: true, type: string}
      - {name: name, in: body, type: string}
  cancel_thing:
    group: g
    class: write
    summary: Cancel a thing.
    method: POST
    path: /v1/things/{id}/cancel
    credential: api_key
    params:
      - {name: id, in: path, required: true, type: string}
  get_thing:
    group: g
    class: read
    summary: Get a thing.
    method: GET
    path: /v1/things/{id}
    credential: api_key
    params:
      - {name: id, in: path, required: true, type: string}
      - {name: include, in: query, type: boolean}
      - {name: tags, in: query, type: array, items: {type: string}}
      - {name: filter, in: query, type: object}
      - {name: limit, in: query, type: [integer, "null"]}
  list_things:
    group: g
    class: read
    summary: List things.
    method: GET
    path: /v1/things
    credential: api_key
    wrappers: [query]
    pagination: {style: cursor, cursor: {from: /last_id, item: /id, param: after_id}, reverse: {from: /first_id, item: /id, param: before_id}, has_more: /has_more}
    params:
      - {name: limit, in: query, type: integer}
      - {name: after_id, in: query, type: string}
      - {name: before_id, in: query, type: string}
  list_pages:
    group: g
    class: read
    summary: List pages.
    method: GET
    path: /v1/pages
    credential: api_key
    pagination: {style: cursor, cursor: {from: /next_page, param: page}}
    params:
      - {name: limit, in: query, type: integer}
      - {name: page, in: query, type: string}
  upload:
    group: g
    class: write
    summary: Upload a file.
    method: POST
    path: /v1/uploads
    credential: api_key
    betas: [files-beta]
    params:
      - {name: file, in: form, required: true, format: binary}
      - {name: purpose, in: form, type: string}
  download:
    group: g
    class: read
    summary: Download.
    method: GET
    path: /v1/things/{id}/content
    credential: api_key
    response: binary
    params:
      - {name: id, in: path, required: true, type: string}
  results:
    group: g
    class: read
    summary: Results.
    method: GET
    path: /v1/things/{id}/results
    credential: api_key
    response: jsonl
    params:
      - {name: id, in: path, required: true, type: string}
  admin_get:
    group: g
    class: read
    summary: Admin only.
    method: GET
    path: /v1/admin/me
    credential: admin_key
  bearer_get:
    group: g
    class: read
    summary: Bearer auth.
    method: GET
    path: /v1/bearer
    credential: token
  legacy:
    group: g
    class: read
    summary: Gone.
    unsupported: "there is no such endpoint; use list_things"
  wait_thing:
    group: g
    class: read
    summary: Wait for a thing.
    credential: api_key
    poll: {function: get_thing, until_pointer: /status, until_values: [done], interval_seconds: 0.05, max_interval_seconds: 0.1, timeout_seconds: 5}
    params:
      - {name: id, in: path, required: true, type: string}
      - {name: timeout_seconds, in: control, type: number}
"#;

pub fn fixture_registry() -> Arc<Registry> {
    let mut reg = Registry::default();
    reg.insert(Integration::new(
        Manifest::from_yaml("fx.yaml", FIXTURE).unwrap(),
        Source::Builtin,
    ));
    Arc::new(reg)
}

/// Credentials for `fx`: the default account points at `url` (with a `/v1/` suffix to strip).
pub fn creds(url: &str, with_admin: bool) -> Credentials {
    let mut file = CredentialFile::new();
    let mut default = IndexMap::new();
    default.insert("api_key".to_string(), SECRET.to_string());
    default.insert("token".to_string(), SECRET.to_string());
    default.insert("url".to_string(), format!("{url}/v1/"));
    if with_admin {
        default.insert("admin_key".to_string(), ADMIN_SECRET.to_string());
    }
    let mut accounts = IndexMap::new();
    accounts.insert("default".to_string(), default);
    file.insert("fx".to_string(), accounts);
    Credentials::from_entries(PathBuf::new(), file)
}

pub fn fast_config() -> ExecConfig {
    ExecConfig {
        max_retries: 2,
        connect_timeout: Duration::from_millis(300),
        timeout: Duration::from_millis(800),
        stream_idle_timeout: Duration::from_millis(500),
        retry_non_idempotent: false,
        ..ExecConfig::default()
    }
}

fn exec_with(url: &str, config: ExecConfig) -> Executor {
    Executor::new(fixture_registry(), Arc::new(creds(url, true)), config).unwrap()
}

pub fn exec(url: &str) -> Executor {
    exec_with(url, fast_config())
}

/// A call whose every output, success or failure, is scanned for secrets.
pub async fn call(ex: &Executor, function: &str, args: Value) -> kosmo::Result<CallOutput> {
    let r = ex.call(Call::new("fx", function, args)).await;
    match &r {
        Ok(out) => assert_no_secret(&format!("{out:?}")),
        Err(e) => scan_err(e),
    }
    r
}

/// Every rendering of an error must be free of secrets.
fn assert_no_secret(text: &str) {
    for s in [SECRET, ADMIN_SECRET, "SECRETSECRET", "TOPSECRET"] {
        assert!(!text.contains(s), "secret leaked: {text}");
    }
}

fn scan_err(e: &kosmo::Error) {
    assert_no_secret(&e.to_string());
    assert_no_secret(&format!("{e:?}"));
    assert_no_secret(&e.to_json().to_string());
}

// ------------------------------------------------------------------ exact requests

#[tokio::test]
async fn post_builds_the_exact_request() {
    let srv = server::start(vec![Action::json(200, r#"{"id":"t_1"}"#)]).await;
    let ex = exec(&srv.url);
    let out = call(
        &ex,
        "create_thing",
        json!({"payload": {"name": "a", "extra": {"x": [1, 2]}}, "user": "u1", "betas": ["beta-b", "beta-a", "beta-b"]}),
    )
    .await
    .unwrap();
    assert_eq!(out.value, json!({"id": "t_1"}));
    assert_eq!(out.http_status, Some(200));
    assert_eq!(out.request_id.as_deref(), Some("req_200"));
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.target, "/v1/things");
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        body,
        json!({"name": "a", "extra": {"x": [1, 2]}, "max_tokens": 4096})
    );
    assert_eq!(r.header("x-api-key"), Some(SECRET));
    assert_eq!(r.header("fx-version"), Some("2024-01-01"));
    assert_eq!(r.header("fx-beta"), Some("beta-b,beta-a"));
    assert_eq!(r.header("fx-user"), Some("u1"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.header("user-agent"),
        Some(concat!("kosmo/", env!("CARGO_PKG_VERSION")))
    );
    assert!(r.header("betas").is_none());
}

#[tokio::test]
async fn get_query_path_encoding_and_no_body() {
    let srv = server::start(vec![Action::json(200, "{}")]).await;
    let ex = exec(&srv.url);
    call(
        &ex,
        "get_thing",
        json!({"id": "a b/c?d#é", "include": false, "tags": ["x", "y z"], "filter": {"k": 1}, "limit": null}),
    )
    .await
    .unwrap();
    let r = &srv.requests()[0];
    assert_eq!(r.method, "GET");
    assert_eq!(
        r.target,
        "/v1/things/a%20b%2Fc%3Fd%23%C3%A9?filter%5Bk%5D=1&include=false&tags%5B%5D=x&tags%5B%5D=y+z"
    );
    assert!(r.body.is_empty());
    assert!(r.header("content-type").is_none());
    assert!(r.header("fx-beta").is_none(), "no betas, no header");
}

#[tokio::test]
async fn post_without_body_params_sends_no_body_and_bearer_scheme() {
    let srv = server::start(vec![Action::json(200, "{}")]).await;
    let ex = exec(&srv.url);
    call(&ex, "cancel_thing", json!({"id": "t1"}))
        .await
        .unwrap();
    call(&ex, "bearer_get", json!({})).await.unwrap();
    let reqs = srv.requests();
    assert_eq!(reqs[0].target, "/v1/things/t1/cancel");
    assert!(reqs[0].body.is_empty());
    assert!(reqs[0].header("content-type").is_none());
    assert_eq!(
        reqs[1].header("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
}

#[tokio::test]
async fn multipart_from_path_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.csv");
    std::fs::write(&file, "a,b\n1,2\n").unwrap();
    let srv = server::start(vec![Action::json(200, r#"{"id":"file_1"}"#)]).await;
    let ex = exec(&srv.url);
    call(
        &ex,
        "upload",
        json!({"file": file.to_str().unwrap(), "purpose": "test"}),
    )
    .await
    .unwrap();
    call(
        &ex,
        "upload",
        json!({"file": {"content_base64": "AAEC/w==", "filename": "dir/blob.bin", "mime_type": "application/x-test"}}),
    )
    .await
    .unwrap();
    let reqs = srv.requests();
    let r = &reqs[0];
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("multipart/form-data; boundary=")
    );
    assert_eq!(r.header("fx-beta"), Some("files-beta"));
    let body = String::from_utf8_lossy(&r.body);
    assert!(
        body.contains("name=\"file\"; filename=\"report.csv\""),
        "{body}"
    );
    assert!(
        body.contains("content-type: text/csv") || body.contains("Content-Type: text/csv"),
        "{body}"
    );
    assert!(body.contains("a,b\n1,2\n"), "{body}");
    assert!(body.contains("name=\"purpose\"\r\n\r\ntest"), "{body}");
    let r = &reqs[1];
    let needle = b"\x00\x01\x02\xff";
    assert!(r.body.windows(4).any(|w| w == needle));
    let body = String::from_utf8_lossy(&r.body);
    assert!(body.contains("filename=\"blob.bin\""), "{body}");
    assert!(
        body.to_ascii_lowercase()
            .contains("content-type: application/x-test"),
        "{body}"
    );
}

#[tokio::test]
async fn multipart_is_rebuilt_on_retry() {
    // 529 refuses the work, so even a non-idempotent upload is retried, with the whole form.
    let srv = server::start(vec![
        Action::error(529, "overloaded_error").with_header("retry-after-ms", "10"),
        Action::json(200, r#"{"id":"file_1"}"#),
    ])
    .await;
    let ex = exec(&srv.url);
    let out = call(
        &ex,
        "upload",
        json!({"file": {"content": "hello", "filename": "h.txt"}}),
    )
    .await
    .unwrap();
    assert_eq!(out.value["id"], "file_1");
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 2);
    for r in &reqs {
        let body = String::from_utf8_lossy(&r.body);
        assert!(
            body.contains("filename=\"h.txt\"") && body.contains("hello"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn dry_run_redacts_and_sends_nothing() {
    let srv = server::start(vec![Action::json(200, "{}")]).await;
    let ex = exec(&srv.url);
    let mut c = Call::new(
        "fx",
        "create_thing",
        json!({"name": "a", "betas": ["beta-z"]}),
    );
    c.dry_run = true;
    let out = ex.call(c).await.unwrap();
    let v = out.value;
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["method"], "POST");
    assert_eq!(v["url"], format!("{}/v1/things", srv.url));
    assert_eq!(v["headers"]["x-api-key"], "[redacted]");
    assert_eq!(v["headers"]["fx-beta"], "beta-z,beta-a");
    assert_eq!(v["body"], json!({"name": "a", "max_tokens": 4096}));
    assert_no_secret(&v.to_string());
    let mut c = Call::new("fx", "get_thing", json!({"id": "x", "tags": ["a", "b"]}));
    c.dry_run = true;
    let v = ex.call(c).await.unwrap().value;
    assert_eq!(v["query"], json!({"tags[]": ["a", "b"]}));
    assert_eq!(v["body"], Value::Null);
    assert_eq!(srv.count(), 0);
}

#[tokio::test]
async fn refusals_happen_before_any_io() {
    let srv = server::start(vec![Action::json(200, "{}")]).await;
    let ex = Executor::new(
        fixture_registry(),
        Arc::new(creds(&srv.url, false)),
        fast_config(),
    )
    .unwrap();
    let e = call(&ex, "legacy", json!({})).await.unwrap_err();
    assert_eq!(e.code(), "unsupported");
    assert!(e.to_string().contains("use list_things"), "{e}");
    let e = call(&ex, "create_thing", json!({"max_tokens": "x"}))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "validation_error");
    let e = call(&ex, "admin_get", json!({})).await.unwrap_err();
    assert_eq!(e.code(), "missing_credential");
    let msg = e.to_string();
    assert!(
        msg.contains("fx account 'default' has no admin_key"),
        "{msg}"
    );
    assert!(msg.contains("needs the Admin API key"), "{msg}");
    scan_err(&e);
    let e = ex
        .call(Call {
            account: Some("work"),
            ..Call::new("fx", "get_thing", json!({"id": "x"}))
        })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no account 'work'"), "{e}");
    assert_eq!(srv.count(), 0, "nothing may reach the server");
}

// ------------------------------------------------------------------ fault matrix

#[tokio::test]
async fn fault_429_with_retry_after_is_waited_and_retried_even_for_writes() {
    let srv = server::start(vec![
        Action::error(429, "rate_limit_error").with_header("retry-after", "1"),
        Action::json(200, r#"{"id":"t_1"}"#),
    ])
    .await;
    let ex = exec(&srv.url);
    let t = Instant::now();
    let out = call(&ex, "create_thing", json!({"name": "a"}))
        .await
        .unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(950),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(out.value["id"], "t_1");
    assert_eq!(srv.count(), 2);
}

/// One row of the fault matrix: what the server answers, in order, to one call, and what must
/// come of it. Every row counts requests server-side: nothing lost, nothing repeated.
struct Fault {
    name: &'static str,
    script: Vec<Action>,
    function: &'static str,
    args: Value,
    retry_non_idempotent: bool,
    /// `Ok(Some(id))`: succeeds with this `id`; `Ok(None)`: succeeds; `Err(code)`: fails so.
    want: Result<Option<&'static str>, &'static str>,
    status: Option<u16>,
    request_id: Option<&'static str>,
    retry_after: Option<f64>,
    requests: usize,
}

fn fault(
    name: &'static str,
    script: Vec<Action>,
    function: &'static str,
    args: Value,
    want: Result<Option<&'static str>, &'static str>,
    requests: usize,
) -> Fault {
    Fault {
        name,
        script,
        function,
        args,
        retry_non_idempotent: false,
        want,
        status: None,
        request_id: None,
        retry_after: None,
        requests,
    }
}

impl Fault {
    fn failing_with(mut self, status: u16, request_id: Option<&'static str>) -> Fault {
        self.status = Some(status);
        self.request_id = request_id;
        self
    }
}

/// Retries by status, header and idempotency (the fast config: 2 retries).
#[tokio::test]
async fn fault_matrix_retries_by_status_header_and_idempotency() {
    let ok_after = |first: Action| vec![first, Action::json(200, r#"{"id":"t_1"}"#)];
    let write = || json!({"name": "a"});
    let read = || json!({"id": "x"});
    let rows = vec![
        Fault {
            retry_after: Some(0.02),
            ..fault(
                "429 exhausted reports retry-after and the request id",
                vec![Action::error(429, "rate_limit_error").with_header("retry-after-ms", "20")],
                "get_thing",
                read(),
                Err("rate_limit_error"),
                3,
            )
            .failing_with(429, Some("req_429"))
        },
        fault(
            "529 is retried for a non-idempotent write",
            ok_after(Action::error(529, "overloaded_error")),
            "create_thing",
            write(),
            Ok(Some("t_1")),
            2,
        ),
        fault(
            "500: a write that may have been done is not repeated",
            ok_after(Action::error(500, "api_error")),
            "create_thing",
            write(),
            Err("api_error"),
            1,
        )
        .failing_with(500, None),
        fault(
            "500 retries a read",
            ok_after(Action::error(500, "api_error")),
            "get_thing",
            read(),
            Ok(Some("t_1")),
            2,
        ),
        fault(
            "500 retries an idempotent write",
            ok_after(Action::error(500, "api_error")),
            "put_thing",
            json!({"id": "x", "name": "n"}),
            Ok(None),
            2,
        ),
        Fault {
            retry_non_idempotent: true,
            ..fault(
                "500 retries a write with the opt-in",
                ok_after(Action::error(500, "api_error")),
                "create_thing",
                write(),
                Ok(None),
                2,
            )
        },
        fault(
            "504 exhausts retries with the api error",
            vec![Action::error(504, "timeout_error")],
            "get_thing",
            read(),
            Err("timeout_error"),
            3,
        )
        .failing_with(504, Some("req_504")),
        fault(
            "x-should-retry: false stops a retry",
            vec![Action::error(503, "api_error").with_header("x-should-retry", "false")],
            "get_thing",
            read(),
            Err("api_error"),
            1,
        ),
        fault(
            "x-should-retry: true retries a 400 write",
            vec![
                Action::error(400, "invalid_request_error").with_header("x-should-retry", "true"),
                Action::json(200, "{}"),
            ],
            "create_thing",
            write(),
            Ok(None),
            2,
        ),
    ];
    let mut failures = Vec::new();
    for row in rows {
        let srv = server::start(row.script).await;
        let ex = exec_with(
            &srv.url,
            ExecConfig {
                retry_non_idempotent: row.retry_non_idempotent,
                ..fast_config()
            },
        );
        let got = call(&ex, row.function, row.args).await;
        let name = row.name;
        match (&row.want, &got) {
            (Ok(id), Ok(out)) => {
                if let Some(id) = id
                    && out.value["id"] != *id
                {
                    failures.push(format!("{name}: got {}", out.value));
                }
            }
            (Err(code), Err(e)) => {
                let mut wrong = Vec::new();
                if e.code() != *code {
                    wrong.push(format!("code {}", e.code()));
                }
                if row.status.is_some() && e.status() != row.status {
                    wrong.push(format!("status {:?}", e.status()));
                }
                if row.request_id.is_some() && e.request_id() != row.request_id {
                    wrong.push(format!("request id {:?}", e.request_id()));
                }
                if row.retry_after.is_some() && e.retry_after() != row.retry_after {
                    wrong.push(format!("retry after {:?}", e.retry_after()));
                }
                if !wrong.is_empty() {
                    failures.push(format!("{name}: {} ({e})", wrong.join(", ")));
                }
            }
            (want, got) => failures.push(format!(
                "{name}: wanted {want:?}, got {:?}",
                got.as_ref().map(|o| &o.value).map_err(|e| e.to_string())
            )),
        }
        if srv.count() != row.requests {
            failures.push(format!(
                "{name}: {} requests, wanted {}",
                srv.count(),
                row.requests
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn fault_connection_reset() {
    let srv = server::start(vec![Action::Reset, Action::json(200, r#"{"id":"t_1"}"#)]).await;
    let ex = exec(&srv.url);
    assert_eq!(
        call(&ex, "get_thing", json!({"id": "x"}))
            .await
            .unwrap()
            .value["id"],
        "t_1"
    );
    assert_eq!(srv.count(), 2);

    let srv = server::start(vec![Action::Reset, Action::json(200, r#"{"id":"t_1"}"#)]).await;
    let ex = exec(&srv.url);
    let e = call(&ex, "create_thing", json!({"name": "a"}))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "transport_error");
    assert_eq!(e.to_json()["transport"], "reset", "{e}");
    assert_eq!(srv.count(), 1, "the write may have been done: not repeated");
    scan_err(&e);
}

#[tokio::test]
async fn fault_connect_refused_is_retried_even_for_writes() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let ex = exec_with(
        &url,
        ExecConfig {
            max_retries: 1,
            ..fast_config()
        },
    );
    let t = Instant::now();
    let e = call(&ex, "create_thing", json!({"name": "a"}))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "transport_error");
    assert_eq!(e.to_json()["transport"], "connect", "{e}");
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "one backoff happened: {:?}",
        t.elapsed()
    );
    scan_err(&e);
}

#[tokio::test]
async fn fault_connect_timeout() {
    // A listener whose accept queue is full drops new SYNs: connecting hangs until the timeout.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = sock.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(s)) = tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            fillers.push(s);
        }
    }
    let ex = exec_with(
        &format!("http://{addr}"),
        ExecConfig {
            max_retries: 1,
            ..fast_config()
        },
    );
    let t = Instant::now();
    let e = call(&ex, "get_thing", json!({"id": "x"}))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "transport_error", "{e}");
    assert!(e.to_string().contains("connect timeout"), "{e}");
    assert!(
        t.elapsed() >= Duration::from_millis(600),
        "two attempts of 300 ms: {:?}",
        t.elapsed()
    );
    drop(listener);
}

#[tokio::test]
async fn fault_stalled_body_times_out_and_read_is_retried() {
    let srv = server::start(vec![
        Action::Stall {
            content_length: 100,
            partial: br#"{"id":"#.to_vec(),
        },
        Action::json(200, r#"{"id":"t_1"}"#),
    ])
    .await;
    let ex = exec(&srv.url);
    assert_eq!(
        call(&ex, "get_thing", json!({"id": "x"}))
            .await
            .unwrap()
            .value["id"],
        "t_1"
    );
    assert_eq!(srv.count(), 2);

    let srv = server::start(vec![Action::Stall {
        content_length: 100,
        partial: b"{".to_vec(),
    }])
    .await;
    let ex = exec(&srv.url);
    let t = Instant::now();
    let e = call(&ex, "create_thing", json!({"name": "a"}))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "transport_error");
    assert_eq!(e.to_json()["transport"], "timeout", "{e}");
    // The server never finishes the body: without the read timeout this call would hang. The
    // bound is a hang guard, far above the 0.8 s timeout, so load cannot trip it.
    assert!(t.elapsed() < Duration::from_secs(30));
    assert_eq!(srv.count(), 1);
}

#[tokio::test]
async fn fault_html_error_page_is_said_plainly() {
    let html = Action::Respond {
        status: 502,
        headers: vec![("content-type".into(), "text/html".into())],
        body: b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
            .to_vec(),
    };
    let srv = server::start(vec![html]).await;
    let ex = exec(&srv.url);
    let e = call(&ex, "get_thing", json!({"id": "x"}))
        .await
        .unwrap_err();
    // An error status is an API error whatever its body (the SDKs raise their status error too).
    assert_eq!(e.code(), "api_error");
    assert_eq!(e.status(), Some(502));
    let msg = e.to_string();
    assert!(
        msg.contains("HTML page") && msg.contains("502 Bad Gateway"),
        "{msg}"
    );
    assert_eq!(srv.count(), 3, "a 502 is retried like any 5xx");
}

#[tokio::test]
async fn fault_truncated_json() {
    // Complete by Content-Length but not valid JSON: bad_response, not retried.
    let srv = server::start(vec![Action::json(200, r#"{"id":"t_1","da"#)]).await;
    let ex = exec(&srv.url);
    let e = call(&ex, "get_thing", json!({"id": "x"}))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "bad_response");
    assert!(e.to_string().contains("truncated"), "{e}");
    assert_eq!(e.request_id(), Some("req_200"));
    assert_eq!(srv.count(), 1);
    // Cut off before Content-Length: a broken transfer; a read is retried.
    let srv = server::start(vec![
        Action::Truncate {
            content_length: 50,
            partial: br#"{"id":"t"#.to_vec(),
        },
        Action::json(200, r#"{"id":"t_1"}"#),
    ])
    .await;
    let ex = exec(&srv.url);
    assert_eq!(
        call(&ex, "get_thing", json!({"id": "x"}))
            .await
            .unwrap()
            .value["id"],
        "t_1"
    );
    assert_eq!(srv.count(), 2);
}

const START: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"m\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n";
const BLOCK: &str = "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n";
const DELTA: &str = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n";
const BLOCK_STOP: &str =
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n";
const MSG_DELTA: &str = "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":7}}\n\n";
const STOP: &str = "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
const PING: &str = "event: ping\ndata: {\"type\":\"ping\"}\n\n";

async fn stream_call(ex: &Executor) -> (kosmo::Result<CallOutput>, Vec<String>) {
    let events: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = events.clone();
    let mut c = Call::new("fx", "create_thing", json!({"name": "a", "stream": true}));
    c.on_event = Some(Box::new(move |ev: &Value| {
        sink.lock()
            .unwrap()
            .push(ev["type"].as_str().unwrap_or("?").to_string());
        Ok::<(), kosmo::Error>(())
    }));
    let r = ex.call(c).await;
    if let Err(e) = &r {
        scan_err(e);
    }
    let seen = events.lock().unwrap().clone();
    (r, seen)
}

#[tokio::test]
async fn stream_assembles_the_final_message_and_reports_each_event() {
    let srv = server::start(vec![Action::sse(
        &[
            START, BLOCK, PING, DELTA, DELTA, BLOCK_STOP, MSG_DELTA, STOP,
        ],
        false,
    )])
    .await;
    let ex = exec(&srv.url);
    let (r, events) = stream_call(&ex).await;
    let out = r.unwrap();
    assert_eq!(
        out.value,
        json!({"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"HiHi"}],
               "model":"m","stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":7}})
    );
    assert_eq!(out.request_id.as_deref(), Some("req_stream"));
    assert_eq!(
        events,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let body: Value = serde_json::from_slice(&srv.requests()[0].body).unwrap();
    assert_eq!(body["stream"], true);
}

#[tokio::test]
async fn fault_stream_stopping_before_message_stop() {
    let srv = server::start(vec![Action::sse(&[START, BLOCK, DELTA], false)]).await;
    let ex = exec(&srv.url);
    let (r, events) = stream_call(&ex).await;
    let e = r.unwrap_err();
    assert_eq!(e.code(), "transport_error");
    assert_eq!(e.to_json()["transport"], "stream");
    assert!(e.to_string().contains("ended before message_stop"), "{e}");
    assert_eq!(events.len(), 3, "events that arrived were delivered");
    assert_eq!(srv.count(), 1, "a started stream is not re-sent");
}

#[tokio::test]
async fn fault_mid_stream_error_event() {
    let err = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    let srv = server::start(vec![Action::sse(&[START, BLOCK, DELTA, err], true)]).await;
    let ex = exec(&srv.url);
    let (r, _) = stream_call(&ex).await;
    let e = r.unwrap_err();
    assert_eq!(e.code(), "overloaded_error");
    assert!(e.to_string().contains("Overloaded"), "{e}");
    assert_eq!(e.request_id(), Some("req_stream"));
    assert_eq!(srv.count(), 1);
}

#[tokio::test]
async fn fault_stream_that_only_pings_hits_the_idle_timeout() {
    let mut pieces = vec![(Duration::from_millis(5), START.as_bytes().to_vec())];
    // 30 s of pings, then a hang: the idle timeout (0.5 s) must fire while the pings still come.
    for _ in 0..300 {
        pieces.push((Duration::from_millis(100), PING.as_bytes().to_vec()));
    }
    let srv = server::start(vec![Action::Chunks {
        status: 200,
        content_type: "text/event-stream".into(),
        pieces,
        hang: true,
    }])
    .await;
    let ex = exec(&srv.url);
    let t = Instant::now();
    let (r, _) = stream_call(&ex).await;
    let e = r.unwrap_err();
    assert_eq!(e.code(), "transport_error");
    assert!(e.to_string().contains("stalled"), "{e}");
    // Pings do not count as progress: the call ended long before the server's 30 s of pings did
    // (had pings reset the idle clock, it would end only after them).
    assert!(t.elapsed() < Duration::from_secs(25), "{:?}", t.elapsed());
    assert_eq!(srv.count(), 1);
}

// ------------------------------------------------------------------ responses by kind

#[tokio::test]
async fn binary_and_jsonl_bodies_and_save_to() {
    let bin = Action::Respond {
        status: 200,
        headers: vec![("content-type".into(), "application/octet-stream".into())],
        body: vec![0xff, 0xfe, 0x00, 0x41],
    };
    let srv = server::start(vec![bin.clone(), bin]).await;
    let ex = exec(&srv.url);
    let v = call(&ex, "download", json!({"id": "f"}))
        .await
        .unwrap()
        .value;
    assert_eq!(
        v,
        json!({"content_type": "application/octet-stream", "body": "//4AQQ==", "body_base64": true})
    );
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.bin");
    let v = call(
        &ex,
        "download",
        json!({"id": "f", "save_to": dest.to_str().unwrap()}),
    )
    .await
    .unwrap()
    .value;
    assert_eq!(
        v,
        json!({"content_type": "application/octet-stream", "path": dest.to_str().unwrap(), "size_bytes": 4})
    );
    assert_eq!(std::fs::read(&dest).unwrap(), vec![0xff, 0xfe, 0x00, 0x41]);

    let jsonl = Action::Respond {
        status: 200,
        headers: vec![("content-type".into(), "application/x-jsonl".into())],
        body: b"{\"a\":1}\n{\"a\":2}\n".to_vec(),
    };
    let srv = server::start(vec![jsonl]).await;
    let ex = exec(&srv.url);
    let v = call(&ex, "results", json!({"id": "b"}))
        .await
        .unwrap()
        .value;
    assert_eq!(
        v,
        json!({"content_type": "application/x-jsonl", "body": "{\"a\":1}\n{\"a\":2}\n"})
    );
}

#[tokio::test]
async fn rows_stream_jsonl_across_chunk_splits() {
    let pieces: Vec<(Duration, Vec<u8>)> = [
        "{\"custom_id\":\"a\"}\r",
        "\n{\"custom_",
        "id\":\"b\"}\n\n{bad}\n",
        "{\"custom_id\":\"c\"}",
    ]
    .iter()
    .map(|s| (Duration::from_millis(20), s.as_bytes().to_vec()))
    .collect();
    let srv = server::start(vec![Action::Chunks {
        status: 200,
        content_type: "application/x-jsonl".into(),
        pieces,
        hang: false,
    }])
    .await;
    let ex = exec(&srv.url);
    let mut rows = ex
        .rows(Call::new("fx", "results", json!({"id": "b"})))
        .await
        .unwrap();
    let mut ok = Vec::new();
    let mut errs = Vec::new();
    while let Some(r) = rows.next().await {
        match r {
            Ok(v) => ok.push(v["custom_id"].as_str().unwrap().to_string()),
            Err(e) => errs.push(e.to_string()),
        }
    }
    assert_eq!(ok, ["a", "b", "c"]);
    assert_eq!(errs.len(), 1);
    assert!(errs[0].contains("line 4"), "{errs:?}");
    assert_eq!(rows.request_id(), Some("req_stream"));
    let e = ex
        .rows(Call::new("fx", "get_thing", json!({"id": "b"})))
        .await
        .err()
        .unwrap();
    assert_eq!(e.code(), "validation_error");
}

// ------------------------------------------------------------------ pagination and polling

fn page(ids: &[&str], has_more: bool) -> ResponseTemplate {
    let data: Vec<Value> = ids.iter().map(|i| json!({"id": i})).collect();
    ResponseTemplate::new(200).set_body_json(json!({
        "data": data, "has_more": has_more,
        "first_id": ids.first(), "last_id": ids.last()
    }))
}

#[tokio::test]
async fn fetch_all_follows_id_cursors_with_a_cap() {
    let srv = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/things"))
        .and(query_param_is_missing("after_id"))
        .and(query_param_is_missing("before_id"))
        .respond_with(page(&["a", "b"], true))
        .mount(&srv)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/things"))
        .and(query_param("after_id", "b"))
        .respond_with(page(&["c", "d"], true))
        .mount(&srv)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/things"))
        .and(query_param("after_id", "d"))
        .respond_with(page(&["e"], false))
        .mount(&srv)
        .await;
    let ex = exec(&srv.uri());
    let v = call(
        &ex,
        "list_things",
        json!({"query": {"limit": 2}, "fetch_all": true}),
    )
    .await
    .unwrap()
    .value;
    assert_eq!(
        v,
        json!({"data": [{"id":"a"},{"id":"b"},{"id":"c"},{"id":"d"},{"id":"e"}], "has_more": false, "first_id": "a", "last_id": "e"})
    );
    assert_eq!(srv.received_requests().await.unwrap().len(), 3);
    for r in srv.received_requests().await.unwrap() {
        assert_eq!(
            r.url.query_pairs().find(|(k, _)| k == "limit").unwrap().1,
            "2"
        );
        assert!(
            r.url
                .query_pairs()
                .all(|(k, _)| k != "fetch_all" && k != "max_items")
        );
    }
    let v = call(
        &ex,
        "list_things",
        json!({"fetch_all": true, "max_items": 3}),
    )
    .await
    .unwrap()
    .value;
    assert_eq!(
        v,
        json!({"data": [{"id":"a"},{"id":"b"},{"id":"c"}], "has_more": true, "first_id": "a", "last_id": "c"})
    );
    // Without fetch_all: one page, as the API returns it.
    let v = call(&ex, "list_things", json!({})).await.unwrap().value;
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn fetch_all_stops_on_a_repeated_cursor_and_walks_backwards_from_before_id() {
    let srv = MockServer::start().await;
    Mock::given(query_param_is_missing("after_id"))
        .and(query_param_is_missing("before_id"))
        .respond_with(page(&["a", "b"], true))
        .mount(&srv)
        .await;
    Mock::given(query_param("after_id", "b"))
        .respond_with(page(&["c", "b"], true))
        .mount(&srv)
        .await;
    Mock::given(query_param("before_id", "z"))
        .respond_with(page(&["x", "y"], true))
        .mount(&srv)
        .await;
    Mock::given(query_param("before_id", "x"))
        .respond_with(page(&["v", "w"], false))
        .mount(&srv)
        .await;
    let ex = exec(&srv.uri());
    let v = call(&ex, "list_things", json!({"fetch_all": true}))
        .await
        .unwrap()
        .value;
    assert_eq!(v["data"].as_array().unwrap().len(), 4);
    assert_eq!(v["has_more"], true, "stopped early, more may exist");
    assert_eq!(srv.received_requests().await.unwrap().len(), 2);
    let v = call(
        &ex,
        "list_things",
        json!({"before_id": "z", "fetch_all": true}),
    )
    .await
    .unwrap()
    .value;
    assert_eq!(
        v,
        json!({"data": [{"id":"x"},{"id":"y"},{"id":"v"},{"id":"w"}], "has_more": false, "first_id": "v", "last_id": "y"})
    );
}

#[tokio::test]
async fn fetch_all_follows_page_cursors() {
    let srv = MockServer::start().await;
    Mock::given(query_param_is_missing("page"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": [1, 2], "next_page": "p2"})),
        )
        .mount(&srv)
        .await;
    Mock::given(query_param("page", "p2"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": [3], "next_page": null})),
        )
        .mount(&srv)
        .await;
    let ex = exec(&srv.uri());
    let v = call(&ex, "list_pages", json!({"fetch_all": true}))
        .await
        .unwrap()
        .value;
    assert_eq!(
        v,
        json!({"data": [1, 2, 3], "has_more": false, "next_page": null})
    );
    let v = call(
        &ex,
        "list_pages",
        json!({"fetch_all": true, "max_items": 1}),
    )
    .await
    .unwrap()
    .value;
    assert_eq!(v, json!({"data": [1], "has_more": true, "next_page": null}));
}

#[tokio::test]
async fn poll_waits_until_the_value_is_reached() {
    let srv = MockServer::start().await;
    Mock::given(path("/v1/things/t1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "t1", "status": "running"})),
        )
        .up_to_n_times(3)
        .with_priority(1)
        .mount(&srv)
        .await;
    Mock::given(path("/v1/things/t1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "t1", "status": "done"})),
        )
        .with_priority(2)
        .mount(&srv)
        .await;
    let ex = exec(&srv.uri());
    let out = call(&ex, "wait_thing", json!({"id": "t1"})).await.unwrap();
    assert_eq!(out.value["status"], "done");
    assert_eq!(out.function, "wait_thing");
    assert_eq!(srv.received_requests().await.unwrap().len(), 4);

    let srv = MockServer::start().await;
    Mock::given(path("/v1/things/t2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "running"})))
        .mount(&srv)
        .await;
    let ex = exec(&srv.uri());
    let t = Instant::now();
    let e = call(
        &ex,
        "wait_thing",
        json!({"id": "t2", "timeout_seconds": 0.3}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), "transport_error");
    assert!(e.to_string().contains("t2 still running after 0.3s"), "{e}");
    // The server answers "running" forever: a hang guard, far above the 0.3 s deadline.
    assert!(t.elapsed() < Duration::from_secs(30));
}

// ------------------------------------------------------------------ secrets

#[tokio::test]
async fn secret_scan_over_echoing_servers() {
    // A hostile or buggy server that echoes the key back in every kind of failure.
    let echo = format!(
        r#"{{"type":"error","error":{{"type":"authentication_error","message":"invalid x-api-key {SECRET}"}}}}"#
    );
    let html = format!("<html><title>denied {SECRET}</title></html>");
    let cases = vec![
        Action::json(401, &echo),
        Action::Respond {
            status: 403,
            headers: vec![],
            body: html.into_bytes(),
        },
        Action::json(200, &format!("{{\"k\": \"{SECRET}")),
        Action::Respond {
            status: 400,
            headers: vec![],
            body: format!("plain {SECRET}").into_bytes(),
        },
    ];
    for action in cases {
        let srv = server::start(vec![action]).await;
        let ex = exec(&srv.url);
        let e = call(&ex, "get_thing", json!({"id": "x"}))
            .await
            .unwrap_err();
        scan_err(&e);
    }
    let sse = format!(
        "event: error\ndata: {{\"type\":\"error\",\"error\":{{\"type\":\"api_error\",\"message\":\"{SECRET}\"}}}}\n\n"
    );
    let srv = server::start(vec![Action::Chunks {
        status: 200,
        content_type: "text/event-stream".into(),
        pieces: vec![(Duration::ZERO, sse.into_bytes())],
        hang: false,
    }])
    .await;
    let ex = exec(&srv.url);
    let (r, _) = stream_call(&ex).await;
    scan_err(&r.unwrap_err());
    // And the executor's own debug output.
    assert_no_secret(&format!(
        "{:?}",
        creds("http://x", true)
            .resolve(&Manifest::from_yaml("fx.yaml", FIXTURE).unwrap(), "default")
            .unwrap()
    ));
}

#[tokio::test]
async fn redirects_are_not_followed_so_the_key_never_travels() {
    let other = server::start(vec![Action::json(200, "{}")]).await;
    let srv = server::start(vec![Action::Respond {
        status: 307,
        headers: vec![("location".into(), format!("{}/v1/stolen", other.url))],
        body: vec![],
    }])
    .await;
    let ex = exec(&srv.url);
    let e = call(&ex, "get_thing", json!({"id": "x"}))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "bad_response");
    assert_eq!(e.status(), Some(307));
    assert_eq!(other.count(), 0);
    assert_eq!(srv.count(), 1);
}

#[tokio::test]
async fn unusable_header_values_and_urls_fail_before_sending() {
    let srv = server::start(vec![Action::json(200, "{}")]).await;
    let ex = exec(&srv.url);
    let e = call(
        &ex,
        "create_thing",
        json!({"name": "a", "user": "bad\nvalue"}),
    )
    .await
    .unwrap_err();
    // The caller's argument, not the configuration, is at fault.
    assert_eq!(e.code(), "validation_error", "{e}");
    assert!(e.to_string().contains("/user"), "{e}");
    assert_eq!(srv.count(), 0);
    let ex = exec("not a url");
    let e = call(&ex, "get_thing", json!({"id": "x"}))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "config_error", "{e}");
}

#[tokio::test]
async fn fault_stream_reset_midway_is_a_stream_error_and_not_resent() {
    let srv = server::start(vec![Action::StreamThenReset {
        pieces: vec![
            START.as_bytes().to_vec(),
            BLOCK.as_bytes().to_vec(),
            DELTA.as_bytes().to_vec(),
        ],
    }])
    .await;
    let ex = exec(&srv.url);
    let (r, events) = stream_call(&ex).await;
    let e = r.unwrap_err();
    assert_eq!(e.code(), "transport_error");
    assert_eq!(e.to_json()["transport"], "stream", "{e}");
    assert_eq!(events.len(), 3);
    assert_eq!(srv.count(), 1);
}

#[tokio::test]
async fn a_stream_request_answered_with_plain_json_is_decoded() {
    let srv = server::start(vec![Action::json(200, r#"{"id":"msg_1","content":[]}"#)]).await;
    let ex = exec(&srv.url);
    let (r, events) = stream_call(&ex).await;
    assert_eq!(r.unwrap().value, json!({"id": "msg_1", "content": []}));
    assert!(events.is_empty());
}

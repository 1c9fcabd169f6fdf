//! The generic engine against small servers shaped like other real APIs: GitHub (Link header
//! pages, array roots, optional auth, `{+path}`, 403 rate limits), Stripe (form bodies with
//! nested keys, `starting_after` from the last item, `{error: {type, code, param}}`), an offset
//! API, a header-cursor API, Basic and query-parameter credentials, raw bodies. Every test
//! asserts the requests the server saw.

use std::path::PathBuf;
use std::sync::Arc;

use indexmap::IndexMap;
use kosmo::credentials::{CredentialFile, Credentials};
use kosmo::exec::{Call, Executor};
use kosmo::manifest::Manifest;
use kosmo::registry::{Integration, Registry, Source};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::fast_config;

const TOKEN: &str = "ghp_SHAPESECRET_0123456789";
const STRIPE_KEY: &str = "sk_test_SHAPESECRET_42";
const QUERY_KEY: &str = "qk_SHAPESECRET_77";

pub const SHAPES: &str = r#"
name: shapes
label: Shapes
summary: Wire shapes of other APIs.
category: testing
base_url: http://127.0.0.1:9
credentials:
  token: {label: Token, kind: bearer, hint: "set token"}
  stripe: {label: Secret key, kind: basic, hint: "set stripe"}
  named: {label: Password, kind: basic, username: bot, hint: "set named"}
  qkey: {label: Query key, kind: query, query_param: api_key, hint: "set qkey"}
errors:
  type_pointer: /error/type
  message_pointer: /error/message
  code_pointer: /error/code
  param_pointer: /error/param
  status_types: {404: not_found, 422: validation_failed, 4xx: client_error, 5xx: server_error}
retry:
  statuses: [429, 502, 503]
  reset_headers: [{header: x-ratelimit-reset, format: epoch_seconds}]
  rate_limited: [{status: 403, header: x-ratelimit-remaining, equals: "0"}]
form_arrays: indexed
functions:
  list_issues:
    group: g
    class: read
    summary: GitHub-style list.
    method: GET
    path: /repos/{owner}/{repo}/issues
    credential: token
    auth: optional
    pagination: {style: link, items: ""}
    params:
      - {name: owner, in: path, required: true, type: string}
      - {name: repo, in: path, required: true, type: string}
      - {name: per_page, in: query, type: integer}
  get_content:
    group: g
    class: read
    summary: A file by path.
    method: GET
    path: /repos/{owner}/{repo}/contents/{+path}
    credential: token
    auth: optional
    params:
      - {name: owner, in: path, required: true, type: string}
      - {name: repo, in: path, required: true, type: string}
      - {name: path, in: path, required: true, type: string}
  public_thing:
    group: g
    class: read
    summary: Never sends the credential.
    method: GET
    path: /public
    credential: token
    auth: none
  create_customer:
    group: g
    class: write
    summary: Stripe-style form post.
    method: POST
    path: /v1/customers
    credential: stripe
    body: form
    params:
      - {name: email, in: body, type: string}
      - {name: metadata, in: body, type: object}
      - {name: items, in: body, type: array}
      - {name: tax_exempt, in: body, type: boolean}
  list_customers:
    group: g
    class: read
    summary: Stripe-style list.
    method: GET
    path: /v1/customers
    credential: stripe
    pagination:
      style: cursor
      cursor: {item: /id, param: starting_after}
      has_more: /has_more
    params:
      - {name: limit, in: query, type: integer}
      - {name: starting_after, in: query, type: string}
  list_rows:
    group: g
    class: read
    summary: Offset list with a total.
    method: GET
    path: /rows
    credential: named
    pagination: {style: offset, items: /results, total: /total}
    params:
      - {name: limit, in: query, type: integer}
      - {name: offset, in: query, type: integer}
  list_events:
    group: g
    class: read
    summary: Header-cursor list.
    method: GET
    path: /events
    credential: qkey
    pagination:
      style: cursor
      items: /events
      cursor: {header: x-next-cursor, param: cursor}
      max_pages: 3
    params:
      - {name: cursor, in: query, type: string}
  list_pages:
    group: g
    class: read
    summary: Page-number list.
    method: GET
    path: /numbered
    credential: qkey
    pagination: {style: page, items: /items, stop: [short_page], size_param: per_page}
    params:
      - {name: per_page, in: query, type: integer}
      - {name: page, in: query, type: integer}
  list_next:
    group: g
    class: read
    summary: Next URL in the body (Django REST style).
    method: GET
    path: /api/things
    credential: qkey
    pagination: {style: link, items: /results, next_url: /next}
    params:
      - {name: page, in: query, type: integer}
  put_blob:
    group: g
    class: write
    summary: Raw bytes.
    method: PUT
    idempotent: true
    path: /blobs/{name}
    credential: token
    body: raw
    content_type: application/octet-stream
    params:
      - {name: name, in: path, required: true, type: string}
      - {name: data, in: body, raw: true, required: true}
  upload_doc:
    group: g
    class: write
    summary: Multipart with a plain object field.
    method: POST
    path: /docs
    credential: token
    params:
      - {name: file, in: form, format: binary, required: true}
      - {name: meta, in: form, type: object}
"#;

fn registry() -> Arc<Registry> {
    let mut reg = Registry::default();
    reg.insert(Integration::new(
        Manifest::from_yaml("shapes.yaml", SHAPES).unwrap(),
        Source::Builtin,
    ));
    Arc::new(reg)
}

fn creds(url: &str, with_token: bool) -> Credentials {
    let mut file = CredentialFile::new();
    let mut default = IndexMap::new();
    if with_token {
        default.insert("token".to_string(), TOKEN.to_string());
    }
    default.insert("stripe".to_string(), STRIPE_KEY.to_string());
    default.insert("named".to_string(), "hunter2secret".to_string());
    default.insert("qkey".to_string(), QUERY_KEY.to_string());
    default.insert("url".to_string(), url.to_string());
    let mut accounts = IndexMap::new();
    accounts.insert("default".to_string(), default);
    file.insert("shapes".to_string(), accounts);
    Credentials::from_entries(PathBuf::new(), file)
}

fn exec(url: &str, with_token: bool) -> Executor {
    Executor::new(registry(), Arc::new(creds(url, with_token)), fast_config()).unwrap()
}

async fn call(
    ex: &Executor,
    function: &str,
    args: Value,
) -> kosmo::Result<kosmo::exec::CallOutput> {
    let r = ex.call(Call::new("shapes", function, args)).await;
    let shown = match &r {
        Ok(out) => format!("{out:?}"),
        Err(e) => format!("{e} {e:?} {}", e.to_json()),
    };
    for s in ["SHAPESECRET", "hunter2secret"] {
        assert!(!shown.contains(s), "secret leaked: {shown}");
    }
    r
}

fn auth_header(r: &wiremock::Request) -> Option<String> {
    r.headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_string())
}

#[tokio::test]
async fn link_pages_over_an_array_root_with_optional_auth() {
    let srv = MockServer::start().await;
    let base = srv.uri();
    Mock::given(method("GET"))
        .and(path("/repos/o/r/issues"))
        .and(query_param_is_missing("page"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header(
                    "link",
                    format!(
                        r#"<{base}/repos/o/r/issues?per_page=2&page=2>; rel="next", <{base}/repos/o/r/issues?per_page=2&page=3>; rel="last""#
                    )
                    .as_str(),
                )
                .insert_header("x-ratelimit-remaining", "59")
                .set_body_json(json!([{"number": 1}, {"number": 2}])),
        )
        .mount(&srv)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/o/r/issues"))
        .and(query_param("page", "2"))
        .respond_with(
            ResponseTemplate::new(200)
                // A relative next link.
                .insert_header(
                    "link",
                    r#"</repos/o/r/issues?per_page=2&page=3>; rel="next""#,
                )
                .set_body_json(json!([{"number": 3}, {"number": 4}])),
        )
        .mount(&srv)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/o/r/issues"))
        .and(query_param("page", "3"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"number": 5}])))
        .mount(&srv)
        .await;
    // Without a token: optional auth goes without the header.
    let ex = exec(&base, false);
    let out = call(
        &ex,
        "list_issues",
        json!({"owner": "o", "repo": "r", "per_page": 2, "fetch_all": true}),
    )
    .await
    .unwrap();
    assert_eq!(
        out.value,
        json!({"data": [{"number": 1}, {"number": 2}, {"number": 3}, {"number": 4}, {"number": 5}]})
    );
    let reqs = srv.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 3);
    assert!(reqs.iter().all(|r| auth_header(r).is_none()));
    assert_eq!(reqs[1].url.query(), Some("per_page=2&page=2"));
    assert_eq!(reqs[2].url.query(), Some("per_page=2&page=3"));
    // With one: sent on every page; a page cap from the caller says the list was cut.
    let ex = exec(&base, true);
    let out = call(
        &ex,
        "list_issues",
        json!({"owner": "o", "repo": "r", "per_page": 2, "fetch_all": true, "max_pages": 2}),
    )
    .await
    .unwrap();
    assert_eq!(out.value["data"].as_array().unwrap().len(), 4);
    assert_eq!(out.value["truncated"], true);
    let reqs = srv.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 5);
    for r in &reqs[3..] {
        assert_eq!(auth_header(r).as_deref(), Some(&*format!("Bearer {TOKEN}")));
    }
    // One page without fetch_all: the array as the API sent it, headers kept beside it.
    let out = call(&ex, "list_issues", json!({"owner": "o", "repo": "r"}))
        .await
        .unwrap();
    assert_eq!(out.value, json!([{"number": 1}, {"number": 2}]));
    assert!(
        out.headers
            .iter()
            .any(|(k, v)| k == "x-ratelimit-remaining" && v == "59"),
        "{:?}",
        out.headers
    );
}

#[tokio::test]
async fn a_next_link_to_another_host_is_refused() {
    let srv = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("link", r#"<http://evil.example/steal?page=2>; rel="next""#)
                .set_body_json(json!([1])),
        )
        .mount(&srv)
        .await;
    let ex = exec(&srv.uri(), true);
    let e = call(
        &ex,
        "list_issues",
        json!({"owner": "o", "repo": "r", "fetch_all": true}),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("another origin"), "{e}");
    assert_eq!(srv.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn reserved_expansion_keeps_slashes_only() {
    let srv = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .mount(&srv)
        .await;
    let ex = exec(&srv.uri(), true);
    call(
        &ex,
        "get_content",
        json!({"owner": "o/x", "repo": "r", "path": "docs/a b/README?.md"}),
    )
    .await
    .unwrap();
    let reqs = srv.received_requests().await.unwrap();
    let raw = reqs[0].url.path();
    assert_eq!(raw, "/repos/o%2Fx/r/contents/docs/a%20b/README%3F.md");
    // A reserved expansion still cannot climb out of its place.
    let e = call(
        &ex,
        "get_content",
        json!({"owner": "o", "repo": "r", "path": "docs/../../admin"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), "validation_error");
    assert_eq!(srv.received_requests().await.unwrap().len(), 1);
    // auth: none never sends the credential.
    call(&ex, "public_thing", json!({})).await.unwrap();
    let reqs = srv.received_requests().await.unwrap();
    assert!(auth_header(&reqs[1]).is_none());
}

#[tokio::test]
async fn form_bodies_basic_auth_and_stripe_cursors() {
    let srv = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "cus_1"})))
        .mount(&srv)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/customers"))
        .and(query_param_is_missing("starting_after"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "url": "/v1/customers", "has_more": true,
            "data": [{"id": "cus_1"}, {"id": "cus_2"}]
        })))
        .mount(&srv)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/customers"))
        .and(query_param("starting_after", "cus_2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "url": "/v1/customers", "has_more": false,
            "data": [{"id": "cus_3"}]
        })))
        .mount(&srv)
        .await;
    let ex = exec(&srv.uri(), true);
    call(
        &ex,
        "create_customer",
        json!({"email": "a@b.c", "metadata": {"order_id": "6735", "nested": {"k": 1}},
               "items": [{"price": "p_1", "quantity": 2}, {"price": "p_2"}], "tax_exempt": false}),
    )
    .await
    .unwrap();
    let reqs = srv.received_requests().await.unwrap();
    let body = String::from_utf8(reqs[0].body.clone()).unwrap();
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap();
    let want: Vec<(String, String)> = [
        ("email", "a@b.c"),
        ("items[0][price]", "p_1"),
        ("items[0][quantity]", "2"),
        ("items[1][price]", "p_2"),
        ("metadata[order_id]", "6735"),
        ("metadata[nested][k]", "1"),
        ("tax_exempt", "false"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(pairs, want, "{body}");
    // Basic: the key is the user, the password empty.
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{STRIPE_KEY}:"));
    assert_eq!(auth_header(&reqs[0]), Some(format!("Basic {basic}")));

    let out = call(
        &ex,
        "list_customers",
        json!({"limit": 2, "fetch_all": true}),
    )
    .await
    .unwrap();
    assert_eq!(
        out.value,
        json!({"data": [{"id": "cus_1"}, {"id": "cus_2"}, {"id": "cus_3"}], "has_more": false})
    );
    let out = call(
        &ex,
        "list_customers",
        json!({"fetch_all": true, "max_items": 1}),
    )
    .await
    .unwrap();
    assert_eq!(
        out.value,
        json!({"data": [{"id": "cus_1"}], "has_more": true})
    );
    assert_eq!(srv.received_requests().await.unwrap().len(), 4);
}

#[tokio::test]
async fn error_envelopes_keep_code_param_and_body() {
    let srv = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(402).set_body_json(json!({
            "error": {"type": "card_error", "code": "card_declined", "param": "source", "message": "Your card was declined."}
        })))
        .mount(&srv)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/o/r/contents/missing"))
        .respond_with(
            ResponseTemplate::new(404).set_body_json(
                json!({"message": "Not Found", "documentation_url": "https://docs"}),
            ),
        )
        .mount(&srv)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/o/r/contents/text"))
        .respond_with(ResponseTemplate::new(418).set_body_string("short and stout"))
        .mount(&srv)
        .await;
    let ex = exec(&srv.uri(), true);
    let e = call(&ex, "create_customer", json!({"email": "x"}))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "card_error");
    assert_eq!(e.status(), Some(402));
    let j = e.to_json();
    assert_eq!(j["api_code"], "card_declined");
    assert_eq!(j["param"], "source");
    assert_eq!(j["body"]["error"]["code"], "card_declined");
    let e = call(
        &ex,
        "get_content",
        json!({"owner": "o", "repo": "r", "path": "missing"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), "not_found");
    assert!(e.to_string().contains("Not Found"), "{e}");
    assert_eq!(e.to_json()["body"]["documentation_url"], "https://docs");
    let e = call(
        &ex,
        "get_content",
        json!({"owner": "o", "repo": "r", "path": "text"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), "client_error");
    assert_eq!(e.to_json()["body"], "short and stout");
}

#[tokio::test]
async fn a_403_with_no_remaining_quota_is_a_rate_limit_and_a_far_reset_is_returned() {
    let srv = MockServer::start().await;
    let far = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600)
        .to_string();
    Mock::given(method("GET"))
        .and(path("/repos/o/r/contents/limited"))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", far.as_str())
                .set_body_json(json!({"message": "API rate limit exceeded"})),
        )
        .mount(&srv)
        .await;
    // A reset 1 s away is waited for and retried; the retry succeeds.
    let soon = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs())
    .to_string();
    Mock::given(method("GET"))
        .and(path("/repos/o/r/contents/soon"))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", soon.as_str())
                .set_body_json(json!({"message": "API rate limit exceeded"})),
        )
        .up_to_n_times(1)
        .mount(&srv)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/o/r/contents/soon"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": 1})))
        .mount(&srv)
        .await;
    // A plain 403 is a permission problem: not retried.
    Mock::given(method("GET"))
        .and(path("/repos/o/r/contents/forbidden"))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-ratelimit-remaining", "4999")
                .set_body_json(json!({"message": "Resource not accessible"})),
        )
        .mount(&srv)
        .await;
    let ex = exec(&srv.uri(), true);
    let e = call(
        &ex,
        "get_content",
        json!({"owner": "o", "repo": "r", "path": "limited"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), "rate_limit_error");
    let wait = e.retry_after().unwrap();
    assert!(wait > 3000.0 && wait <= 3601.0, "{wait}");
    assert_eq!(
        srv.received_requests().await.unwrap().len(),
        1,
        "not slept, not retried"
    );
    let out = call(
        &ex,
        "get_content",
        json!({"owner": "o", "repo": "r", "path": "soon"}),
    )
    .await
    .unwrap();
    assert_eq!(out.value, json!({"ok": 1}));
    assert_eq!(srv.received_requests().await.unwrap().len(), 3);
    let e = call(
        &ex,
        "get_content",
        json!({"owner": "o", "repo": "r", "path": "forbidden"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), "client_error");
    assert_eq!(srv.received_requests().await.unwrap().len(), 4);
}

#[tokio::test]
async fn absurd_retry_after_values_do_not_panic() {
    for (name, value) in [("retry-after", "1e20"), ("retry-after-ms", "1e300")] {
        let srv = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(429)
                    .insert_header(name, value)
                    .set_body_json(json!({"message": "slow down"})),
            )
            .mount(&srv)
            .await;
        let ex = exec(&srv.uri(), true);
        let e = call(&ex, "public_thing", json!({})).await.unwrap_err();
        assert_eq!(e.code(), "rate_limit_error", "{name}: {value}");
        assert!(e.retry_after().unwrap() > 60.0);
        assert_eq!(srv.received_requests().await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn offset_pages_with_a_total_and_named_basic_auth() {
    let srv = MockServer::start().await;
    for (offset, rows) in [(0, vec![1, 2]), (2, vec![3, 4]), (4, vec![5])] {
        let m = Mock::given(method("GET")).and(path("/rows"));
        let m = if offset == 0 {
            m.and(query_param_is_missing("offset"))
        } else {
            m.and(query_param("offset", offset.to_string()))
        };
        m.respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"total": 5, "results": rows})),
        )
        .mount(&srv)
        .await;
    }
    let ex = exec(&srv.uri(), true);
    let out = call(&ex, "list_rows", json!({"limit": 2, "fetch_all": true}))
        .await
        .unwrap();
    assert_eq!(out.value, json!({"results": [1, 2, 3, 4, 5], "total": 5}));
    let reqs = srv.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 3, "the total stops the walk");
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode("bot:hunter2secret");
    assert_eq!(auth_header(&reqs[0]), Some(format!("Basic {basic}")));
}

#[tokio::test]
async fn header_cursors_query_keys_and_the_page_cap() {
    let srv = MockServer::start().await;
    // Endless: every page points at a new cursor.
    for i in 0..6 {
        let m = Mock::given(method("GET")).and(path("/events"));
        let m = if i == 0 {
            m.and(query_param_is_missing("cursor"))
        } else {
            m.and(query_param("cursor", format!("c{i}")))
        };
        m.respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-next-cursor", format!("c{}", i + 1).as_str())
                .set_body_json(json!({"events": [i]})),
        )
        .mount(&srv)
        .await;
    }
    let ex = exec(&srv.uri(), true);
    // The manifest's cap (3 pages) without a caller limit: an error, not a quiet stop.
    let e = call(&ex, "list_events", json!({"fetch_all": true}))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "pagination_limit");
    let reqs = srv.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 3);
    for r in &reqs {
        assert_eq!(
            r.url.query_pairs().find(|(k, _)| k == "api_key").unwrap().1,
            QUERY_KEY
        );
    }
    assert_eq!(
        reqs[1]
            .url
            .query_pairs()
            .find(|(k, _)| k == "cursor")
            .unwrap()
            .1,
        "c1"
    );
    // With max_items: cut, and the result says there is more.
    let out = call(
        &ex,
        "list_events",
        json!({"fetch_all": true, "max_items": 2}),
    )
    .await
    .unwrap();
    assert_eq!(out.value, json!({"events": [0, 1], "has_more": true}));
    // A dry run shows the query credential redacted.
    let dry = ex
        .call(Call {
            dry_run: true,
            ..Call::new("shapes", "list_events", json!({}))
        })
        .await
        .unwrap();
    assert_eq!(dry.value["query"]["api_key"], "[redacted]");
    assert!(!dry.value.to_string().contains(QUERY_KEY));
}

#[tokio::test]
async fn page_numbers_stop_on_a_short_page() {
    let srv = MockServer::start().await;
    for (page, items) in [
        (None, vec![1, 2]),
        (Some(2), vec![3, 4]),
        (Some(3), vec![5]),
    ] {
        let m = Mock::given(method("GET")).and(path("/numbered"));
        let m = match page {
            None => m.and(query_param_is_missing("page")),
            Some(p) => m.and(query_param("page", p.to_string())),
        };
        m.respond_with(ResponseTemplate::new(200).set_body_json(json!({"items": items})))
            .mount(&srv)
            .await;
    }
    let ex = exec(&srv.uri(), true);
    let out = call(&ex, "list_pages", json!({"per_page": 2, "fetch_all": true}))
        .await
        .unwrap();
    assert_eq!(out.value, json!({"items": [1, 2, 3, 4, 5]}));
    assert_eq!(srv.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn next_url_from_the_body_without_the_credential_twice() {
    let srv = MockServer::start().await;
    let base = srv.uri();
    Mock::given(method("GET"))
        .and(path("/api/things"))
        .and(query_param_is_missing("page"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "count": 3, "results": [1, 2],
            // Some APIs echo every query parameter, the key included.
            "next": format!("{base}/api/things?api_key={QUERY_KEY}&page=2")
        })))
        .mount(&srv)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/things"))
        .and(query_param("page", "2"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"count": 3, "results": [3], "next": null})),
        )
        .mount(&srv)
        .await;
    let ex = exec(&base, true);
    let out = call(&ex, "list_next", json!({"fetch_all": true}))
        .await
        .unwrap();
    assert_eq!(out.value, json!({"results": [1, 2, 3]}));
    let reqs = srv.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 2);
    let keys: Vec<String> = reqs[1]
        .url
        .query_pairs()
        .map(|(k, _)| k.into_owned())
        .collect();
    assert_eq!(
        keys,
        ["page", "api_key"],
        "the key once, from the credential"
    );
}

#[tokio::test]
async fn raw_bodies_and_multipart_object_fields() {
    let srv = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .mount(&srv)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .mount(&srv)
        .await;
    let ex = exec(&srv.uri(), true);
    call(&ex, "put_blob", json!({"name": "a", "data": "hello raw"}))
        .await
        .unwrap();
    call(
        &ex,
        "put_blob",
        json!({"name": "b", "data": {"base64": "AP8="}}),
    )
    .await
    .unwrap();
    call(
        &ex,
        "upload_doc",
        json!({"file": {"content": "x", "filename": "x.txt"}, "meta": {"a": 1}}),
    )
    .await
    .unwrap();
    let reqs = srv.received_requests().await.unwrap();
    assert_eq!(reqs[0].body, b"hello raw");
    assert_eq!(
        reqs[0].headers.get("content-type").unwrap(),
        "application/octet-stream"
    );
    assert_eq!(reqs[1].body, vec![0u8, 255]);
    let multipart = String::from_utf8_lossy(&reqs[2].body).into_owned();
    assert!(
        multipart.contains("name=\"meta\"\r\n\r\n{\"a\":1}"),
        "{multipart}"
    );
    assert!(multipart.contains("filename=\"x.txt\""), "{multipart}");
}

#[test]
fn the_lint_knows_the_engine_keys() {
    let bad = [
        (
            "  token: {label: Token, kind: bearer, hint: \"set token\"}",
            "  token: {label: Token, kind: query, hint: \"set token\"}",
            "needs 'query_param'",
        ),
        (
            "    pagination: {style: link, items: \"\"}",
            "    pagination: {style: cursor}",
            "'style: cursor' needs 'cursor",
        ),
        (
            "    pagination: {style: link, items: \"\"}",
            "    pagination: {style: zigzag}",
            "zigzag",
        ),
        (
            "    body: raw\n",
            "    body: raw\n    auth: sometimes\n",
            "sometimes",
        ),
        (
            "    content_type: application/octet-stream\n",
            "",
            "needs the function's 'content_type'",
        ),
        (
            "  status_types: {404: not_found,",
            "  status_types: {40: not_found,",
            "status_types",
        ),
        (
            "      - {name: data, in: body, raw: true, required: true}",
            "      - {name: data, in: body, raw: true, required: true}\n      - {name: f, in: form, type: string}",
            "'f' is 'in: form' but the function's body is 'raw'",
        ),
        (
            "stop: [short_page], size_param: per_page}",
            "stop: [short_page]}",
            "'short_page' needs 'size_param'",
        ),
    ];
    for (from, to, needle) in bad {
        assert!(SHAPES.contains(from), "{from}");
        let text = SHAPES.replacen(from, to, 1);
        let msg = match Manifest::from_yaml("s.yaml", &text) {
            Ok(_) => panic!("accepted: {to}"),
            Err(e) => e.to_string(),
        };
        assert!(msg.contains(needle), "{needle}: {msg}");
    }
}

/// `pages`, `items` and `last_response` from a script, through the real binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lua_pages_items_and_last_response() {
    let srv = MockServer::start().await;
    for i in 0..6 {
        let m = Mock::given(method("GET")).and(path("/events"));
        let m = if i == 0 {
            m.and(query_param_is_missing("cursor"))
        } else {
            m.and(query_param("cursor", format!("c{i}")))
        };
        m.respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-next-cursor", format!("c{}", i + 1).as_str())
                .insert_header("x-echo", QUERY_KEY)
                .set_body_json(json!({"events": [i * 10, i * 10 + 1]})),
        )
        .mount(&srv)
        .await;
    }
    for (offset, rows) in [(0, vec![1, 2]), (2, vec![3])] {
        let m = Mock::given(method("GET")).and(path("/rows"));
        let m = if offset == 0 {
            m.and(query_param_is_missing("offset"))
        } else {
            m.and(query_param("offset", offset.to_string()))
        };
        m.respond_with(
            ResponseTemplate::new(200)
                .insert_header("request-id", "req_rows")
                .set_body_json(json!({"total": 3, "results": rows})),
        )
        .mount(&srv)
        .await;
    }
    Mock::given(method("GET"))
        .and(path("/numbered"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items": [7]})))
        .mount(&srv)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/o/r/contents/missing"))
        .respond_with(
            ResponseTemplate::new(404)
                .insert_header("x-github-request-id", "gh_1")
                .set_body_json(json!({"message": "Not Found", "documentation_url": "https://d"})),
        )
        .mount(&srv)
        .await;
    let manifests = tempfile::tempdir().unwrap();
    std::fs::write(manifests.path().join("shapes.yaml"), SHAPES).unwrap();
    let cfg = tempfile::tempdir().unwrap();
    let url = srv.uri();
    let script = r#"
local got, n = {}, 0
for page in pages(app.integrations.shapes.list_events, {}) do
  n = n + 1
  got[#got + 1] = page.events[2]
  if n == 2 then break end
end
local r = last_response()
local its = {}
for it in items("shapes.list_rows", {limit = 2}) do its[#its + 1] = it end
local rows_rid = last_response().request_id
local pr = {}
parallel(
  function() app.integrations.shapes.list_pages({per_page = 5}); pr[1] = last_response()["function"] end,
  function() app.integrations.shapes.list_rows({limit = 2}); pr[2] = last_response()["function"] end
)
local ok, err = pcall(app.integrations.shapes.get_content, {owner = "o", repo = "r", path = "missing"})
local after = last_response()
return {got = got, status = r.status, cursor = r.headers["x-next-cursor"], echo = r.headers["x-echo"],
  fn = r["function"], account = r.account, items = its, rows_rid = rows_rid, pr = pr, ok = ok,
  code = err.code, body_doc = err.body.documentation_url, after_status = after.status,
  after_header = after.headers["x-github-request-id"]}
"#;
    let out = tokio::task::spawn_blocking(move || {
        let run = |args: &[&str]| {
            crate::support::kosmo(cfg.path())
                .env("KOSMO_MANIFEST_PATH", manifests.path())
                .args(args)
                .timeout(std::time::Duration::from_secs(60))
                .output()
                .unwrap()
        };
        let c = run(&[
            "integrations:configure",
            "shapes",
            "--set",
            &format!("url={url}"),
            "--set",
            &format!("qkey={QUERY_KEY}"),
            "--set",
            "named=hunter2secret",
        ]);
        assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stderr));
        run(&["integrations:lua", "--json", "--eval", script])
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!stdout.contains("SHAPESECRET"), "{stdout}");
    assert!(!stdout.contains("hunter2secret"), "{stdout}");
    let env: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|_| panic!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(env["success"], true, "{env}");
    let r = &env["result"][0];
    // Lazy: two pages read, two requests made, although the list never ends.
    assert_eq!(r["got"], json!([1, 11]));
    let events = srv
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == "/events")
        .count();
    assert_eq!(events, 2);
    assert_eq!(r["status"], 200);
    assert_eq!(r["cursor"], "c2");
    assert_eq!(r["echo"], "[redacted]", "headers are redacted");
    assert_eq!(r["fn"], "list_events");
    assert_eq!(r["account"], "default");
    assert_eq!(r["items"], json!([1, 2, 3]));
    assert_eq!(r["rows_rid"], "req_rows", "the default request-id header");
    assert_eq!(
        r["pr"],
        json!(["list_pages", "list_rows"]),
        "each branch sees its own"
    );
    assert_eq!(r["ok"], false);
    assert_eq!(r["code"], "not_found");
    assert_eq!(r["body_doc"], "https://d");
    assert_eq!(r["after_status"], 404);
    assert_eq!(r["after_header"], "gh_1");
    // Every page is a recorded call.
    let calls = env["integration_calls"].as_array().unwrap();
    let paths: Vec<&str> = calls
        .iter()
        .map(|c| c["function"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        paths.iter().filter(|f| **f == "list_events").count(),
        2,
        "{paths:?}"
    );
    assert_eq!(
        paths.iter().filter(|f| **f == "list_rows").count(),
        3,
        "{paths:?}"
    );
}

#[tokio::test]
async fn a_repeated_cursor_stops_the_walk_and_says_more_may_exist() {
    let srv = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/events"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-next-cursor", "same")
                .set_body_json(json!({"events": [1]})),
        )
        .mount(&srv)
        .await;
    let ex = exec(&srv.uri(), true);
    let out = call(&ex, "list_events", json!({"fetch_all": true}))
        .await
        .unwrap();
    assert_eq!(out.value, json!({"events": [1, 1], "has_more": true}));
    assert_eq!(srv.received_requests().await.unwrap().len(), 2);
}

//! The generic stateful tier, from a manifest alone: create / get / list / update / delete of a
//! declared resource, ids with the declared prefix, each pagination style on the server side
//! (cursor in the body or a header, page, offset, Link headers, array roots), the declared error
//! envelope for unknown ids and invalid input, and mock mode.

use std::sync::Arc;

use kosmo::registry::{Registry, RegistryOptions};
use kosmo::simulator::{self, RunningSimulator, SimulatorOptions};
use serde_json::{Value, json};

const TRACKER: &str = r#"
name: tracker
label: Tracker
summary: An issue tracker, simulated from this file alone.
category: testing
base_url: https://tracker.invalid
credentials:
  token: {label: Token, header: authorization, scheme: Bearer, prefix: tk_, hint: set TOKEN}
errors:
  type_pointer: /error/kind
  message_pointer: /error/text
  status_types: {404: missing, "4xx": bad_input}
groups: [{id: issues, title: Issues}]
functions:
  create_issue:
    group: issues
    class: write
    summary: Create an issue.
    method: POST
    path: /v1/projects/{project}/issues
    credential: token
    params:
      - {name: project, in: path, required: true, type: string}
      - {name: title, in: body, required: true, type: string, minLength: 1}
      - {name: labels, in: body, type: array, items: {type: string}}
    simulator:
      resource: issues
      id_prefix: iss_
      status: 201
      response: {id: iss_example, object: issue, title: "", state: open, labels: [], project: "{project}"}
  get_issue:
    group: issues
    class: read
    summary: Get an issue.
    method: GET
    path: /v1/projects/{project}/issues/{issue_id}
    credential: token
    params:
      - {name: project, in: path, required: true, type: string}
      - {name: issue_id, in: path, required: true, type: string}
    simulator:
      resource: issues
      response: {id: "{issue_id}", object: issue, title: Example, state: open, labels: []}
  update_issue:
    group: issues
    class: write
    summary: Update an issue.
    method: PATCH
    path: /v1/projects/{project}/issues/{issue_id}
    credential: token
    params:
      - {name: project, in: path, required: true, type: string}
      - {name: issue_id, in: path, required: true, type: string}
      - {name: title, in: body, type: string}
      - {name: state, in: body, type: string, enum: [open, closed]}
    simulator: {resource: issues}
  delete_issue:
    group: issues
    class: write
    summary: Delete an issue.
    method: DELETE
    path: /v1/projects/{project}/issues/{issue_id}
    credential: token
    params:
      - {name: project, in: path, required: true, type: string}
      - {name: issue_id, in: path, required: true, type: string}
    simulator: {resource: issues}
  list_issues:
    group: issues
    class: read
    summary: List issues (no pagination declared; the items go to the example's array field).
    method: GET
    path: /v1/projects/{project}/issues
    credential: token
    params:
      - {name: project, in: path, required: true, type: string}
    simulator:
      resource: issues
      response: {object: list, data: []}
"#;

/// List functions with every pagination style (the keys of the generalised `pagination:` block).
const PAGED: &str = r#"
  list_issues_by_cursor:
    group: issues
    class: read
    summary: List issues (cursor in the body).
    method: GET
    path: /v1/projects/{project}/issue-cursor
    credential: token
    pagination:
      style: cursor
      items: /data
      cursor: {from: /next_cursor, param: cursor}
    params:
      - {name: project, in: path, required: true, type: string}
      - {name: cursor, in: query, type: string}
      - {name: limit, in: query, type: integer, minimum: 1}
    simulator:
      resource: issues
      response: {object: list, data: []}
  list_issues_by_header:
    group: issues
    class: read
    summary: List issues (cursor in a header, array root).
    method: GET
    path: /v1/projects/{project}/issue-feed
    credential: token
    pagination:
      style: cursor
      items: ""
      cursor: {header: x-next-cursor, param: after}
    params:
      - {name: project, in: path, required: true, type: string}
      - {name: after, in: query, type: string}
      - {name: limit, in: query, type: integer}
    simulator: {resource: issues, action: list}
  list_issue_pages:
    group: issues
    class: read
    summary: List issues (page numbers, Link headers, array root).
    method: GET
    path: /v1/projects/{project}/issue-pages
    credential: token
    pagination: {style: link, items: "", size_param: per_page}
    params:
      - {name: project, in: path, required: true, type: string}
      - {name: page, in: query, type: integer}
      - {name: per_page, in: query, type: integer, default: 30}
    simulator: {resource: issues, action: list}
  list_issue_offsets:
    group: issues
    class: read
    summary: List issues (offset / limit, total).
    method: GET
    path: /v1/projects/{project}/issue-offsets
    credential: token
    pagination: {style: offset, items: /results, total: /count}
    params:
      - {name: project, in: path, required: true, type: string}
      - {name: offset, in: query, type: integer}
      - {name: limit, in: query, type: integer}
    simulator:
      resource: issues
      action: list
      response: {count: 0, results: []}
"#;

async fn tracker(mock: bool) -> (tempfile::TempDir, RunningSimulator) {
    tracker_with(mock, "").await
}

async fn tracker_with(mock: bool, extra: &str) -> (tempfile::TempDir, RunningSimulator) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tracker.yaml"), format!("{TRACKER}{extra}")).unwrap();
    let registry = Registry::load(&RegistryOptions {
        dirs: vec![dir.path().to_path_buf()],
        ignore_env: true,
    })
    .unwrap();
    let sim = simulator::start(
        Arc::new(registry),
        SimulatorOptions {
            integration: "tracker".into(),
            mock,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    (dir, sim)
}

async fn call(
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut rb = reqwest::Client::new()
        .request(method, url)
        .header("authorization", "Bearer tk_1");
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let resp = rb.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn create_get_update_list_delete_share_one_collection_per_scope() {
    let (_dir, sim) = tracker(false).await;
    let base = format!("{}/v1/projects/alpha", sim.base_url);
    let (s, _, created) = call(
        reqwest::Method::POST,
        format!("{base}/issues"),
        Some(json!({"title": "Broken", "labels": ["bug"]})),
    )
    .await;
    assert_eq!(s, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("iss_") && id.len() == 28, "{id}");
    assert_ne!(id, "iss_example");
    // The request body merged over the example (placeholders filled).
    assert_eq!(created["title"], "Broken");
    assert_eq!(created["labels"], json!(["bug"]));
    assert_eq!(created["state"], "open");
    assert_eq!(created["project"], "alpha");
    let (s, _, got) = call(reqwest::Method::GET, format!("{base}/issues/{id}"), None).await;
    assert_eq!((s, &got), (200, &created));
    let (s, _, updated) = call(
        reqwest::Method::PATCH,
        format!("{base}/issues/{id}"),
        Some(json!({"state": "closed"})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        (updated["state"].as_str(), updated["title"].as_str()),
        (Some("closed"), Some("Broken"))
    );
    let (_, _, got) = call(reqwest::Method::GET, format!("{base}/issues/{id}"), None).await;
    assert_eq!(got["state"], "closed");
    // Another project is another scope.
    let (s, _, other) = call(
        reqwest::Method::GET,
        format!("{}/v1/projects/beta/issues/{id}", sim.base_url),
        None,
    )
    .await;
    assert_eq!(s, 404, "{other}");
    let (_, _, list) = call(reqwest::Method::GET, format!("{base}/issues"), None).await;
    assert_eq!(list["object"], "list");
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["id"], id.as_str());
    let (_, _, list) = call(
        reqwest::Method::GET,
        format!("{}/v1/projects/beta/issues", sim.base_url),
        None,
    )
    .await;
    assert_eq!(list["data"], json!([]));
    // Delete answers `{id, deleted: true}` without an example; then the id is gone.
    let (s, _, deleted) = call(reqwest::Method::DELETE, format!("{base}/issues/{id}"), None).await;
    assert_eq!(
        (s, deleted),
        (200, json!({"id": id.as_str(), "deleted": true}))
    );
    let (s, _, gone) = call(reqwest::Method::GET, format!("{base}/issues/{id}"), None).await;
    assert_eq!(s, 404);
    // The manifest's envelope and status types.
    assert_eq!(gone["error"]["kind"], "missing");
    assert!(
        gone["error"]["text"].as_str().unwrap().contains(&id),
        "{gone}"
    );
    let (s, _, _) = call(reqwest::Method::DELETE, format!("{base}/issues/{id}"), None).await;
    assert_eq!(s, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_input_is_a_400_in_the_declared_envelope() {
    let (_dir, sim) = tracker(false).await;
    let base = format!("{}/v1/projects/alpha", sim.base_url);
    let (s, _, b) = call(
        reqwest::Method::POST,
        format!("{base}/issues"),
        Some(json!({"title": ""})),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(b["error"]["kind"], "bad_input");
    assert!(
        b["error"]["text"].as_str().unwrap().contains("title"),
        "{b}"
    );
    // Nothing was stored.
    let (_, _, list) = call(reqwest::Method::GET, format!("{base}/issues"), None).await;
    assert_eq!(list["data"], json!([]));
}

async fn five_issues(base: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..5 {
        let (_, _, b) = call(
            reqwest::Method::POST,
            format!("{base}/issues"),
            Some(json!({"title": format!("issue {i}")})),
        )
        .await;
        ids.push(b["id"].as_str().unwrap().to_string());
    }
    ids
}

fn ids_of(items: &Value) -> Vec<String> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect()
}

// Needs the generalised `pagination:` keys (style cursor / page / offset / link), which the
// engine branch adds to the manifest structs and schema: the integrator removes this `ignore`
// after merging it. The server side of each style is unit-tested in src/simulator/pagination.rs.
#[tokio::test(flavor = "multi_thread")]
async fn every_pagination_style_pages_through_the_collection() {
    let (_dir, sim) = tracker_with(false, PAGED).await;
    let base = format!("{}/v1/projects/alpha", sim.base_url);
    let ids = five_issues(&base).await;

    // Cursor in the body: the cursor is set only while more remain.
    let (_, _, p1) = call(
        reqwest::Method::GET,
        format!("{base}/issue-cursor?limit=2"),
        None,
    )
    .await;
    assert_eq!(ids_of(&p1["data"]), ids[..2]);
    assert_eq!(p1["next_cursor"], ids[1].as_str());
    let (_, _, p3) = call(
        reqwest::Method::GET,
        format!("{base}/issue-cursor?limit=2&cursor={}", ids[3]),
        None,
    )
    .await;
    assert_eq!(ids_of(&p3["data"]), ids[4..]);
    assert_eq!(p3["next_cursor"], Value::Null);

    // Cursor in a header, the array at the root.
    let (_, h, p1) = call(
        reqwest::Method::GET,
        format!("{base}/issue-feed?limit=3"),
        None,
    )
    .await;
    assert_eq!(ids_of(&p1), ids[..3]);
    assert_eq!(h["x-next-cursor"], ids[2].as_str());
    let (_, h, p2) = call(
        reqwest::Method::GET,
        format!("{base}/issue-feed?limit=3&after={}", ids[2]),
        None,
    )
    .await;
    assert_eq!(ids_of(&p2), ids[3..]);
    assert!(h.get("x-next-cursor").is_none());

    // Page numbers with RFC 8288 Link headers that lead back here.
    let (_, h, p1) = call(
        reqwest::Method::GET,
        format!("{base}/issue-pages?per_page=2"),
        None,
    )
    .await;
    assert_eq!(ids_of(&p1), ids[..2]);
    let link = h["link"].to_str().unwrap().to_string();
    assert!(
        link.contains(&format!(
            "<{base}/issue-pages?per_page=2&page=2>; rel=\"next\""
        )),
        "{link}"
    );
    assert!(link.contains("page=3>; rel=\"last\""), "{link}");
    let (_, h, p3) = call(
        reqwest::Method::GET,
        format!("{base}/issue-pages?per_page=2&page=3"),
        None,
    )
    .await;
    assert_eq!(ids_of(&p3), ids[4..]);
    let link = h["link"].to_str().unwrap();
    assert!(
        !link.contains("rel=\"next\"") && link.contains("rel=\"prev\""),
        "{link}"
    );
    // The size parameter's default (30) applies without one.
    let (_, h, all) = call(reqwest::Method::GET, format!("{base}/issue-pages"), None).await;
    assert_eq!(ids_of(&all), ids);
    assert!(h.get("link").is_none());

    // Offset / limit with a total.
    let (_, _, p) = call(
        reqwest::Method::GET,
        format!("{base}/issue-offsets?offset=1&limit=2"),
        None,
    )
    .await;
    assert_eq!(ids_of(&p["results"]), ids[1..3]);
    assert_eq!(p["count"], 5);

    // A bad page size is a 400 in the envelope.
    let (s, _, b) = call(
        reqwest::Method::GET,
        format!("{base}/issue-feed?limit=0"),
        None,
    )
    .await;
    assert_eq!((s, b["error"]["kind"].as_str()), (400, Some("bad_input")));
}

#[tokio::test(flavor = "multi_thread")]
async fn mock_mode_answers_unknown_ids_from_the_examples() {
    let (_dir, sim) = tracker(true).await;
    let base = format!("{}/v1/projects/alpha", sim.base_url);
    let (s, _, b) = call(
        reqwest::Method::GET,
        format!("{base}/issues/iss_nowhere"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(b["id"], "iss_nowhere");
    assert_eq!(b["object"], "issue");
    let (s, _, b) = call(
        reqwest::Method::PATCH,
        format!("{base}/issues/iss_nowhere"),
        Some(json!({"title": "T"})),
    )
    .await;
    assert_eq!((s, b["title"].as_str()), (200, Some("T")));
    let (s, _, _) = call(
        reqwest::Method::DELETE,
        format!("{base}/issues/iss_nowhere"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    // Validation and auth still apply.
    let (s, _, _) = call(
        reqwest::Method::POST,
        format!("{base}/issues"),
        Some(json!({"title": ""})),
    )
    .await;
    assert_eq!(s, 400);
    let resp = reqwest::Client::new()
        .get(format!("{base}/issues/x"))
        .header("authorization", "Bearer nope")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    // Error types: the status's class when only that is declared, else the status's reason.
    let b: Value = resp.json().await.unwrap();
    assert_eq!(b["error"]["kind"], "bad_input");
    let resp = reqwest::Client::new()
        .get(format!("{base}/issues/x"))
        .header("authorization", "Bearer tk_1")
        .header("x-kosmo-fault", "503")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    let b: Value = resp.json().await.unwrap();
    assert_eq!(b["error"]["kind"], "service_unavailable");
}

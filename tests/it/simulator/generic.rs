//! A manifest with no built-in behaviours still gets a working simulator: routes, validation,
//! auth and faults from the YAML alone, answers from its `simulator.response` examples.

use std::sync::Arc;

use kosmo::registry::{Registry, RegistryOptions};
use kosmo::simulator::{self, SimulatorOptions};
use serde_json::{Value, json};

const PETSTORE: &str = r#"
name: petstore
label: Pet Store
summary: A small non-Anthropic fixture.
category: testing
base_url: https://pets.invalid
headers:
  x-pets-version: "1"
credentials:
  token: {label: Pet token, header: authorization, scheme: Bearer, prefix: pet_, hint: set PET_TOKEN, placeholder: pet_offline}
errors:
  type_pointer: /code
  message_pointer: /detail
  status_types: {400: invalid_request_error, 401: authentication_error, "5xx": api_error}
groups: [{id: pets, title: Pets}]
functions:
  get_pet:
    group: pets
    class: read
    summary: Get a pet.
    method: GET
    path: /v2/pets/{pet_id}
    credential: token
    params:
      - {name: pet_id, in: path, required: true, type: string}
      - {name: verbose, in: query, type: boolean}
    simulator:
      response: {id: "{pet_id}", name: Rex, verbose: "{verbose}", tags: [good]}
  create_pet:
    group: pets
    class: write
    summary: Create a pet.
    method: POST
    path: /v2/pets
    credential: token
    params:
      - {name: name, in: body, required: true, type: string, minLength: 1}
      - {name: age, in: body, type: integer, minimum: 0}
    simulator:
      status: 201
      response: {id: pet_1, name: "{name}"}
  list_pets:
    group: pets
    class: read
    summary: List pets (no example).
    method: GET
    path: /v2/pets
    credential: token
  list_owners:
    group: pets
    class: read
    summary: List owners, paginated.
    method: GET
    path: /v2/owners
    credential: token
    pagination: {style: cursor, cursor: {from: /last_id, item: /id, param: after_id}, reverse: {from: /first_id, item: /id, param: before_id}, has_more: /has_more, items: owners}
    params:
      - {name: limit, in: query, type: integer, minimum: 1, maximum: 1000}
      - {name: after_id, in: query, type: string}
      - {name: before_id, in: query, type: string}
    simulator:
      response: {owners: [{id: o1}, {id: o2}, {id: o3}]}
"#;

async fn petstore() -> (tempfile::TempDir, simulator::RunningSimulator) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("petstore.yaml"), PETSTORE).unwrap();
    let registry = Registry::load(&RegistryOptions {
        dirs: vec![dir.path().to_path_buf()],
        ignore_env: true,
    })
    .unwrap();
    let sim = simulator::start(
        Arc::new(registry),
        SimulatorOptions {
            integration: "petstore".into(),
            faults: Some("list_pets=500".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    (dir, sim)
}

fn call(method: reqwest::Method, url: String) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .request(method, url)
        .header("x-pets-version", "1")
        .header("authorization", "Bearer pet_abc")
}

async fn json_of(rb: reqwest::RequestBuilder) -> (u16, Value, reqwest::header::HeaderMap) {
    let resp = rb.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, resp.json().await.unwrap(), headers)
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_from_examples_with_the_manifest_envelope() {
    let (_dir, sim) = petstore().await;
    let base = &sim.base_url;
    let (s, b, h) = json_of(call(
        reqwest::Method::GET,
        format!("{base}/v2/pets/p42?verbose=true"),
    ))
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        b,
        json!({"id": "p42", "name": "Rex", "verbose": true, "tags": ["good"]})
    );
    assert!(h.contains_key("request-id"));
    assert!(
        !h.contains_key("anthropic-organization-id"),
        "no Anthropic headers on another integration"
    );
    let (s, b, _) = json_of(
        call(reqwest::Method::POST, format!("{base}/v2/pets")).json(&json!({"name": "Tom"})),
    )
    .await;
    assert_eq!((s, b), (201, json!({"id": "pet_1", "name": "Tom"})));
    // Validation errors use the manifest's error pointers.
    let (s, b, _) =
        json_of(call(reqwest::Method::POST, format!("{base}/v2/pets")).json(&json!({"age": -1})))
            .await;
    assert_eq!(s, 400);
    assert_eq!(b["code"], "invalid_request_error");
    let detail = b["detail"].as_str().unwrap();
    assert!(
        detail.contains("\"name\" is a required property") && detail.contains("age"),
        "{detail}"
    );
    // Auth by prefix, required headers from `headers`.
    let (s, b, _) = json_of(
        reqwest::Client::new()
            .get(format!("{base}/v2/pets/p1"))
            .header("x-pets-version", "1")
            .header("authorization", "Bearer sk-nope"),
    )
    .await;
    assert_eq!((s, b["code"].as_str()), (401, Some("authentication_error")));
    let (s, _, _) = json_of(
        reqwest::Client::new()
            .get(format!("{base}/v2/pets/p1"))
            .header("authorization", "Bearer pet_x"),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _, _) = json_of(
        call(reqwest::Method::GET, format!("{base}/v2/pets/p1"))
            .header("authorization", "Bearer pet_offline"),
    )
    .await;
    assert_eq!(s, 200);
    // Faults work the same; a function without an example answers `{}`.
    let (s, b, _) = json_of(call(reqwest::Method::GET, format!("{base}/v2/pets"))).await;
    assert_eq!((s, b["code"].as_str()), (500, Some("api_error")));
    let (s, b, _) = json_of(call(reqwest::Method::GET, format!("{base}/v2/pets"))).await;
    assert_eq!((s, b), (200, json!({})));
    let (s, _, _) = json_of(call(reqwest::Method::DELETE, format!("{base}/v2/pets"))).await;
    assert_eq!(s, 405);
    let (s, _, _) = json_of(call(reqwest::Method::GET, format!("{base}/nowhere"))).await;
    assert_eq!(s, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn paginated_examples_walk_by_id_cursor() {
    let (_dir, sim) = petstore().await;
    let base = &sim.base_url;
    let (s, b, _) = json_of(call(
        reqwest::Method::GET,
        format!("{base}/v2/owners?limit=2"),
    ))
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["owners"], json!([{"id": "o1"}, {"id": "o2"}]));
    assert_eq!(
        (b["has_more"].clone(), b["last_id"].clone()),
        (json!(true), json!("o2"))
    );
    let (_, b, _) = json_of(call(
        reqwest::Method::GET,
        format!("{base}/v2/owners?limit=2&after_id=o2"),
    ))
    .await;
    assert_eq!(b["owners"], json!([{"id": "o3"}]));
    assert_eq!(b["has_more"], false);
    let (_, b, _) = json_of(call(
        reqwest::Method::GET,
        format!("{base}/v2/owners?before_id=o3"),
    ))
    .await;
    assert_eq!(b["owners"], json!([{"id": "o1"}, {"id": "o2"}]));
    assert_eq!(b["has_more"], false);
}

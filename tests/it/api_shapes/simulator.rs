//! The simulator from the QA manifests alone: credentials by kind (Basic, query parameter),
//! optional auth, urlencoded form bodies and bracketed query objects, and paginated functions
//! without an example.

use std::sync::Arc;

use base64::Engine;
use kosmo::registry::{Registry, RegistryOptions};
use kosmo::simulator::{self, RunningSimulator, SimulatorOptions};
use serde_json::{Value, json};

use super::env;

async fn sim(integration: &str) -> RunningSimulator {
    let registry = Registry::load(&RegistryOptions {
        dirs: vec![env().manifests],
        ignore_env: true,
    })
    .unwrap();
    simulator::start(
        Arc::new(registry),
        SimulatorOptions {
            integration: integration.into(),
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

fn basic(user: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:"))
    )
}

async fn send(rb: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = rb.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn form(url: String, auth: &str, body: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .post(url)
        .header("authorization", auth)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn basic_and_query_credentials_are_checked_by_kind_and_optional_auth_needs_none() {
    let s = sim("stripeish").await;
    let url = format!("{}/v1/customers", s.base_url);
    let get = |auth: Option<String>| {
        let rb = reqwest::Client::new().get(url.clone());
        match auth {
            Some(a) => rb.header("authorization", a),
            None => rb,
        }
    };
    assert_eq!(send(get(Some(basic("sk_test_abc")))).await.0, 200);
    // The official SDK sends the key as a bearer token; the service takes both.
    assert_eq!(send(get(Some("Bearer sk_test_abc".into()))).await.0, 200);
    let (status, body) = send(get(Some(basic("pk_live_abc")))).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(send(get(None)).await.0, 401);

    let s = sim("offsets").await;
    let c = reqwest::Client::new();
    let (status, body) = send(c.get(format!("{}/v2/records?api_key=qk_1", s.base_url))).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = send(c.get(format!("{}/v2/records", s.base_url))).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("api_key"),
        "{body}"
    );
    // `auth: optional`: answered without a key.
    let (status, body) = send(c.get(format!("{}/v2/events", s.base_url))).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn urlencoded_bodies_are_read_back_into_nested_arguments() {
    let s = sim("stripeish").await;
    let key = basic("sk_test_abc");
    let (status, created) = send(form(
        format!("{}/v1/customers", s.base_url),
        &key,
        "email=a%40b.c&metadata[order_id]=6735&metadata[tier]=gold&preferred_locales[0]=en\
         &preferred_locales[1]=fr&address[city]=Paris",
    ))
    .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(
        created["metadata"],
        json!({"order_id": "6735", "tier": "gold"})
    );
    assert_eq!(created["preferred_locales"], json!(["en", "fr"]));
    assert_eq!(created["address"], json!({"city": "Paris"}));
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("cus_"));
    let (status, got) = send(
        reqwest::Client::new()
            .get(format!("{}/v1/customers/{id}", s.base_url))
            .header("authorization", &key),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(got["metadata"]["order_id"], "6735");

    // Arrays of objects, indexed or with empty brackets; integers coerced by the schema.
    for body in [
        "mode=payment&line_items[0][price]=p_a&line_items[0][quantity]=2&line_items[1][price]=p_b",
        "mode=payment&line_items[][price]=p_a&line_items[][quantity]=2&line_items[][price]=p_b",
    ] {
        let (status, b) = send(form(
            format!("{}/v1/checkout/sessions", s.base_url),
            &key,
            body,
        ))
        .await;
        assert_eq!(status, 200, "{body}: {b}");
    }
    // Invalid input is still refused, with the parameter named.
    let (status, b) = send(form(
        format!("{}/v1/checkout/sessions", s.base_url),
        &key,
        "mode=payment&line_items[0][quantity]=two",
    ))
    .await;
    assert_eq!(status, 400, "{b}");
    assert!(b.to_string().contains("line_items"), "{b}");
    let (status, b) = send(form(
        format!("{}/v1/customers/{id}", s.base_url),
        &key,
        "tax_exempt=bogus",
    ))
    .await;
    assert_eq!(status, 400, "{b}");

    // A bracketed query object is one object parameter, validated by its schema.
    let c = reqwest::Client::new();
    let (status, b) = send(
        c.get(format!(
            "{}/v1/customers?created[gte]=1&expand[0]=data.x",
            s.base_url
        ))
        .header("authorization", &key),
    )
    .await;
    assert_eq!(status, 200, "{b}");
    let (status, b) = send(
        c.get(format!("{}/v1/customers?created[gte]=soon", s.base_url))
            .header("authorization", &key),
    )
    .await;
    assert_eq!(status, 400, "{b}");
}

#[test]
fn the_stripe_style_manifest_works_offline() {
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
            r#"local s = app.integrations.stripeish
               local c = s.create_customer{email = "a@example.com", metadata = {order_id = "6735"},
                 preferred_locales = {"en", "fr"}}
               s.create_customer{email = "b@example.com"}
               local g = s.get_customer(c.id)
               local l = s.list_customers{limit = 1, fetch_all = true}
               local cs = s.create_checkout_session{mode = "payment",
                 line_items = {{price = "p", quantity = 2}}}
               return {got = g, n = #l.data, session = cs.object}"#,
        ])
        .output()
        .unwrap();
    let env: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(env["success"], json!(true), "{env:#}");
    let r = &env["result"][0];
    assert_eq!(r["got"]["metadata"], json!({"order_id": "6735"}));
    assert_eq!(r["got"]["preferred_locales"], json!(["en", "fr"]));
    assert_eq!(r["n"], 2);
    assert_eq!(r["session"], "checkout.session");
}

#[test]
fn paginated_functions_without_an_example_answer_an_empty_page_offline() {
    let e = env();
    let out = super::super::support::kosmo(e.config.path())
        .arg("--manifests")
        .arg(&e.manifests)
        .args([
            "integrations:lua",
            "--json",
            "--offline",
            "--eval",
            r#"return {
                 records = app.integrations.offsets.list_records{limit = 2, fetch_all = true},
                 events = app.integrations.offsets.list_events{fetch_all = true},
                 gadgets = app.integrations.pager.list_gadgets{per_page = 2}}"#,
        ])
        .output()
        .unwrap();
    let env: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(env["success"], json!(true), "{env:#}");
    let r = &env["result"][0];
    assert_eq!(r["records"]["results"], json!([]));
    assert_eq!(r["records"]["total"], 0);
    assert_eq!(r["events"]["events"], json!([]));
    assert_eq!(r["gadgets"], json!([]));
}

#[test]
fn link_pagination_pages_offline_by_the_declared_size_param() {
    let e = env();
    let out = super::super::support::kosmo(e.config.path())
        .arg("--manifests")
        .arg(&e.manifests)
        .args([
            "integrations:lua",
            "--json",
            "--offline",
            "--eval",
            r#"local n = 0
               for page in pages(app.integrations.pager.list_widgets, {per_page = 2}) do n = n + 1 end
               local all = app.integrations.pager.list_widgets{per_page = 2, fetch_all = true}
               return {pages = n, items = #all.data}"#,
        ])
        .output()
        .unwrap();
    let env: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(env["success"], json!(true), "{env:#}");
    assert_eq!(env["result"][0], json!({"pages": 3, "items": 5}));
}

//! The simulator reads every credential kind the executor sends (`kind: bearer` without a
//! written scheme, `basic`, `query`), pins them with `--key`, checks their `prefix`, and answers
//! `auth: optional` functions without one.

use std::sync::Arc;

use kosmo::registry::{Registry, RegistryOptions};
use kosmo::simulator::{self, RunningSimulator, SimulatorOptions};

const KINDS: &str = r#"
name: kinds
label: Kinds
summary: One function per credential kind.
category: testing
base_url: https://kinds.invalid
credentials:
  bearer: {label: Bearer token, kind: bearer, prefix: bt_, hint: set it}
  query: {label: Query key, kind: query, query_param: api_key, prefix: qk_, hint: set it}
  basic_pair: {label: Basic pair, kind: basic, prefix: sk_, hint: set it}
  basic_user: {label: Basic password, kind: basic, username: robot, prefix: pw_, hint: set it}
groups: [{id: g, title: G}]
functions:
  by_bearer: {group: g, class: read, summary: b, method: GET, path: /bearer, credential: bearer, simulator: {response: {ok: bearer}}}
  by_query: {group: g, class: read, summary: q, method: GET, path: /query, credential: query, simulator: {response: {ok: query}}}
  by_pair: {group: g, class: read, summary: p, method: GET, path: /pair, credential: basic_pair, simulator: {response: {ok: pair}}}
  by_user: {group: g, class: read, summary: u, method: GET, path: /user, credential: basic_user, simulator: {response: {ok: user}}}
  public: {group: g, class: read, summary: o, method: GET, path: /public, credential: bearer, auth: optional, simulator: {response: {ok: public}}}
"#;

async fn kinds(keys: &[(&str, &str)]) -> (tempfile::TempDir, RunningSimulator) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("kinds.yaml"), KINDS).unwrap();
    let registry = Registry::load(&RegistryOptions {
        dirs: vec![dir.path().to_path_buf()],
        ignore_env: true,
    })
    .unwrap();
    let sim = simulator::start(
        Arc::new(registry),
        SimulatorOptions {
            integration: "kinds".into(),
            keys: keys
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    (dir, sim)
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// The status of GET `path_and_query` with an optional authorization header.
async fn status(sim: &RunningSimulator, path_and_query: &str, auth: Option<String>) -> u16 {
    let mut rb = reqwest::Client::new().get(format!("{}{path_and_query}", sim.base_url));
    if let Some(a) = auth {
        rb = rb.header("authorization", a);
    }
    rb.send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_kind_is_checked_by_its_prefix() {
    let (_dir, sim) = kinds(&[]).await;
    // kind: bearer: the Bearer scheme is stripped before the prefix check.
    assert_eq!(
        status(&sim, "/bearer", Some("Bearer bt_1".into())).await,
        200
    );
    assert_eq!(
        status(&sim, "/bearer", Some("Bearer xx_1".into())).await,
        401
    );
    // kind: query: the key is the query parameter.
    assert_eq!(status(&sim, "/query?api_key=qk_1", None).await, 200);
    assert_eq!(status(&sim, "/query?api_key=xx_1", None).await, 401);
    assert_eq!(status(&sim, "/query", None).await, 401);
    // kind: basic without a user: the secret is the user name (Stripe-style `sk_...:`).
    let pair = |p: &str| Some(format!("Basic {}", b64(p)));
    assert_eq!(status(&sim, "/pair", pair("sk_1:")).await, 200);
    assert_eq!(status(&sim, "/pair", pair("xx_1:")).await, 401);
    assert_eq!(status(&sim, "/pair", Some("Basic !!!".into())).await, 401);
    // auth: optional: no credential at all is answered, a wrong one is not.
    assert_eq!(status(&sim, "/public", None).await, 200);
    assert_eq!(
        status(&sim, "/public", Some("Bearer xx_1".into())).await,
        401
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pinned_keys_compare_the_secret_the_executor_was_given() {
    let (_dir, sim) = kinds(&[
        ("bearer", "bt_pinned"),
        ("query", "qk_pinned"),
        ("basic_pair", "sk_pinned"),
        ("basic_user", "pw_pinned"),
    ])
    .await;
    assert_eq!(
        status(&sim, "/bearer", Some("Bearer bt_pinned".into())).await,
        200
    );
    assert_eq!(
        status(&sim, "/bearer", Some("Bearer bt_other".into())).await,
        401
    );
    assert_eq!(
        status(&sim, "/query?x=1&api_key=qk_pinned", None).await,
        200
    );
    assert_eq!(status(&sim, "/query?api_key=qk_other", None).await, 401);
    let basic = |p: &str| Some(format!("Basic {}", b64(p)));
    assert_eq!(status(&sim, "/pair", basic("sk_pinned:")).await, 200);
    assert_eq!(status(&sim, "/pair", basic("sk_other:")).await, 401);
    assert_eq!(status(&sim, "/user", basic("robot:pw_pinned")).await, 200);
    assert_eq!(status(&sim, "/user", basic("robot:pw_other")).await, 401);
}

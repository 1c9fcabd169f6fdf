//! Regression tests for the QA findings: integral floats, poll deadlines, secrets in URLs and
//! credential commands, and user-caused request errors.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use kosmo::credentials::{CredentialFile, Credentials};
use kosmo::exec::{Call, Executor};
use kosmo::registry::Registry;
use serde_json::json;

use super::server::{self, Action};
use super::{call, exec};

/// An executor over the built-in manifests whose `anthropic` default account points at `url`.
fn anthropic(url: &str) -> Executor {
    let mut file = CredentialFile::new();
    file.insert(
        "anthropic".into(),
        IndexMap::from([(
            "default".to_string(),
            IndexMap::from([
                ("api_key".to_string(), "sk-ant-api03-QAQAQAQA".to_string()),
                ("url".to_string(), url.to_string()),
            ]),
        )]),
    );
    Executor::new(
        Arc::new(Registry::builtin().unwrap()),
        Arc::new(Credentials::from_entries(PathBuf::new(), file)),
        super::fast_config(),
    )
    .unwrap()
}

// ------------------------------------------------------------------ integral floats

#[tokio::test]
async fn integral_floats_are_sent_as_integers_where_the_schema_says_integer() {
    let srv = server::start(vec![Action::json(200, r#"{"data":[],"has_more":false}"#)]).await;
    let ex = exec(&srv.url);
    call(
        &ex,
        "create_thing",
        json!({"name": "a", "max_tokens": 256.0, "temp": 1.0}),
    )
    .await
    .unwrap();
    call(&ex, "list_things", json!({"query": {"limit": 2.0}}))
        .await
        .unwrap();
    call(&ex, "get_thing", json!({"id": "t", "limit": 3.0}))
        .await
        .unwrap();
    let reqs = srv.requests();
    let body = String::from_utf8(reqs[0].body.clone()).unwrap();
    assert!(
        body.contains(r#""max_tokens":256,"#) || body.ends_with(r#""max_tokens":256}"#),
        "{body}"
    );
    // An undeclared (passthrough) number keeps its type: the schema says nothing about it.
    assert!(body.contains(r#""temp":1.0"#), "{body}");
    assert_eq!(reqs[1].target, "/v1/things?limit=2");
    assert_eq!(reqs[2].target, "/v1/things/t?limit=3");
    // A fractional value is still refused by validation, before any I/O.
    let e = call(&ex, "list_things", json!({"limit": 2.5}))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "validation_error", "{e}");
    assert_eq!(srv.count(), 3);
}

#[tokio::test]
async fn nested_integers_in_the_builtin_manifest_are_normalized() {
    let ex = anthropic("http://127.0.0.1:9");
    let mut c = Call::new(
        "anthropic",
        "create_message",
        json!({"model": "m", "max_tokens": 256.0, "messages": [{"role": "user", "content": "hi"}]}),
    );
    c.dry_run = true;
    let out = ex.call(c).await.unwrap();
    let text = out.value.to_string();
    assert!(text.contains(r#""max_tokens":256"#), "{text}");
    assert!(!text.contains("256.0"), "{text}");
    let mut c = Call::new("anthropic", "list_models", json!({"limit": 2.0}));
    c.dry_run = true;
    let v = ex.call(c).await.unwrap().value;
    assert_eq!(v["query"]["limit"], "2", "{v}");
    // Nested schemas are walked too (see exec::coerce's unit test); the built-in batch
    // `params.max_tokens` declares no `type`, so it is left as given.
}

// ------------------------------------------------------------------ poll deadline

#[tokio::test]
async fn poll_honours_its_deadline_and_says_so() {
    let srv = server::start(vec![Action::json(
        200,
        r#"{"id":"msgbatch_x","type":"message_batch","processing_status":"in_progress"}"#,
    )])
    .await;
    let ex = anthropic(&srv.url);
    let t = Instant::now();
    let e = ex
        .call(Call::new(
            "anthropic",
            "wait_for_message_batch",
            json!({"id": "msgbatch_x", "timeout_seconds": 1, "interval_seconds": 0.1}),
        ))
        .await
        .unwrap_err();
    let elapsed = t.elapsed();
    assert!(
        elapsed >= Duration::from_secs(1),
        "gave up early: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
    assert_eq!(e.code(), "transport_error");
    assert_eq!(e.to_json()["transport"], "timeout", "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("wait_for_message_batch: msgbatch_x still in_progress after 1.0s"),
        "{msg}"
    );
    assert!(msg.contains("timeout_seconds"), "{msg}");
    // 0.1 + 0.2 + 0.4 = 0.7 s of backoff, then the last poll at the deadline itself.
    assert_eq!(srv.count(), 5, "polls at 0, 0.1, 0.3, 0.7 and 1.0 s");
}

#[tokio::test]
async fn poll_that_reaches_the_value_at_the_deadline_succeeds() {
    let running = r#"{"id":"msgbatch_y","processing_status":"in_progress"}"#;
    let srv = server::start(vec![
        Action::json(200, running),
        Action::json(200, running),
        Action::json(200, r#"{"id":"msgbatch_y","processing_status":"ended"}"#),
    ])
    .await;
    let ex = anthropic(&srv.url);
    let out = ex
        .call(Call::new(
            "anthropic",
            "wait_for_message_batch",
            json!({"id": "msgbatch_y", "timeout_seconds": 0.3, "interval_seconds": 0.2}),
        ))
        .await
        .unwrap();
    assert_eq!(out.value["processing_status"], "ended");
    assert_eq!(srv.count(), 3);
}

// ------------------------------------------------------------------ user-caused request errors

#[tokio::test]
async fn bad_user_header_values_and_overlong_ids_are_validation_errors() {
    let srv = server::start(vec![Action::json(200, "{}")]).await;
    let ex = exec(&srv.url);
    let e = call(&ex, "create_thing", json!({"name": "a", "user": "x\r\ny"}))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "validation_error", "{e}");
    assert!(e.to_string().contains("/user"), "{e}");
    let e = call(
        &ex,
        "create_thing",
        json!({"name": "a", "betas": ["ok", "b\nad"]}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), "validation_error", "{e}");
    assert!(e.to_string().contains("/betas/1"), "{e}");
    let long = "a".repeat(70_000);
    let e = call(&ex, "get_thing", json!({"id": long}))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "validation_error", "{e}");
    assert!(e.to_string().contains("/id: too long"), "{e}");
    let e = call(
        &ex,
        "get_thing",
        json!({"id": "x", "tags": ["é".repeat(9000)]}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), "validation_error", "{e}");
    assert!(e.to_string().contains("/tags"), "{e}");
    assert_eq!(srv.count(), 0);
    // A long but sane id still goes out.
    call(&ex, "get_thing", json!({"id": "a".repeat(2000)}))
        .await
        .unwrap();
    assert_eq!(srv.count(), 1);
}

// ------------------------------------------------------------------ secrets in URLs and helpers

/// The fixture executor with a base URL that carries `user:password@`.
fn exec_with_url_password(url: &str) -> Executor {
    let mut file = CredentialFile::new();
    file.insert(
        "fx".into(),
        IndexMap::from([(
            "default".to_string(),
            IndexMap::from([
                ("api_key".to_string(), super::SECRET.to_string()),
                ("url".to_string(), url.to_string()),
            ]),
        )]),
    );
    Executor::new(
        super::fixture_registry(),
        Arc::new(Credentials::from_entries(PathBuf::new(), file)),
        super::fast_config(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_password_in_the_base_url_is_never_shown() {
    // Dry run.
    let ex = exec_with_url_password("http://gw-user:PASSW0RD-URL@127.0.0.1:9/v1");
    let mut c = Call::new("fx", "get_thing", json!({"id": "x"}));
    c.dry_run = true;
    let v = ex.call(c).await.unwrap().value;
    assert_eq!(
        v["url"],
        "http://gw-user:[redacted]@127.0.0.1:9/v1/things/x"
    );
    // A transport error names the URL.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let ex = exec_with_url_password(&format!("http://gw-user:PASSW0RD-URL@127.0.0.1:{port}"));
    let e = ex
        .call(Call::new("fx", "get_thing", json!({"id": "x"})))
        .await
        .unwrap_err();
    let shown = format!("{e} {e:?} {}", e.to_json());
    assert!(!shown.contains("PASSW0RD"), "{shown}");
    assert!(shown.contains("gw-user:[redacted]@127.0.0.1"), "{shown}");
    // A server that echoes the password (here: percent-encoded in the URL, plain in the body).
    let srv = server::start(vec![Action::json(
        400,
        r#"{"type":"error","error":{"type":"invalid_request_error","message":"bad login gw-user / p@ss-WORD-9"}}"#,
    )])
    .await;
    let ex = exec_with_url_password(&srv.url.replace("://", "://gw-user:p%40ss-WORD-9@"));
    let e = ex
        .call(Call::new("fx", "get_thing", json!({"id": "x"})))
        .await
        .unwrap_err();
    let shown = format!("{e} {e:?} {}", e.to_json());
    assert!(!shown.contains("ss-WORD-9"), "{shown}");
}

#[test]
fn configure_redacts_url_passwords_and_warns_on_a_foreign_key_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::support::kosmo(dir.path())
        .args([
            "integrations:configure",
            "anthropic",
            "--set",
            "api_key=bogus-KEYVALUE",
            "--set",
            "url=http://me:URLPASSWORD@127.0.0.1:9",
            "--json",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !format!("{stdout}{stderr}").contains("URLPASSWORD"),
        "{stdout}{stderr}"
    );
    assert!(
        !format!("{stdout}{stderr}").contains("KEYVALUE"),
        "{stdout}{stderr}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["result"]["fields"]["url"],
        "http://me:[redacted]@127.0.0.1:9"
    );
    assert!(
        stderr.contains("api_key value does not start with 'sk-ant-api'"),
        "{stderr}"
    );
    // Stored anyway.
    let creds = Credentials::load(Some(dir.path().to_path_buf())).unwrap();
    let m = Registry::builtin()
        .unwrap()
        .require("anthropic")
        .unwrap()
        .manifest
        .clone();
    assert_eq!(
        creds.secret(&m, "default", "api_key").unwrap().expose(),
        "bogus-KEYVALUE"
    );
    // An admin key pasted as the API key is named; a well-formed key is quiet.
    let out = crate::support::kosmo(dir.path())
        .args([
            "integrations:configure",
            "anthropic",
            "--set",
            "api_key=sk-ant-admin01-x",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("looks like the admin_key"), "{stderr}");
    let out = crate::support::kosmo(dir.path())
        .args([
            "integrations:configure",
            "anthropic",
            "--set",
            "api_key=sk-ant-api03-x",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn credential_helper_stderr_is_captured_and_scrubbed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("credentials.yaml"),
        "anthropic:\n  default:\n    api_key: sk-ant-api03-FILESECRET\n    admin_key_cmd: \"echo sk-ant-admin01-HALFSECRET; echo 'vault: denied for sk-ant-admin01-HALFSECRET' >&2; echo HELPER-SECOND-LINE >&2; exit 7\"\n",
    )
    .unwrap();
    let out = crate::support::kosmo(dir.path())
        .args([
            "integrations:lua",
            "--eval",
            "app.integrations.anthropic.list_api_keys{}",
        ])
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{all}");
    assert!(
        !all.contains("HALFSECRET") && !all.contains("FILESECRET"),
        "{all}"
    );
    assert!(
        !all.contains("HELPER-SECOND-LINE"),
        "helper stderr passed through: {all}"
    );
    assert!(all.contains("exit status 7"), "{all}");
    assert!(all.contains("vault: denied for [redacted]"), "{all}");
}

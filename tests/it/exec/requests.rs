//! Request building from user values: integral floats sent as integers where the schema says
//! integer, and bad header values or overlong ids as validation errors.

use std::path::PathBuf;
use std::sync::Arc;

use indexmap::IndexMap;
use kosmo::credentials::{CredentialFile, Credentials};
use kosmo::exec::{Call, Executor, FileAccess};
use kosmo::registry::Registry;
use serde_json::{Value, json};

use super::server::{self, Action};
use super::{call, exec};

/// An executor over the built-in manifests whose `anthropic` default account points at `url`.
pub fn anthropic(url: &str) -> Executor {
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

/// Which arguments of the built-in functions name local files (what the file policy checks).
fn builtin_executor() -> Executor {
    Executor::new(
        Arc::new(Registry::builtin().unwrap()),
        Arc::new(Credentials::default()),
        kosmo::exec::ExecConfig::default(),
    )
    .unwrap()
}

fn files(
    ex: &Executor,
    function: &str,
    args: Value,
) -> kosmo::Result<Vec<(String, FileAccess, String)>> {
    let call = Call::new("anthropic", function, args);
    Ok(ex
        .local_files(&call)?
        .into_iter()
        .map(|f| (f.path.to_string_lossy().into_owned(), f.access, f.argument))
        .collect())
}

#[test]
fn local_files_lists_uploads_and_downloads() {
    let ex = builtin_executor();
    let got = files(&ex, "upload_file", json!({"file": "/etc/passwd"})).unwrap();
    assert_eq!(
        got,
        [("/etc/passwd".into(), FileAccess::Read, "file".into())]
    );
    let got = files(&ex, "upload_file", json!({"file": {"path": "../x.pdf"}})).unwrap();
    assert_eq!(
        got,
        [("../x.pdf".into(), FileAccess::Read, "file.path".into())]
    );
    // Inline bytes name no local file.
    let got = files(
        &ex,
        "upload_file",
        json!({"file": {"content": "hi", "filename": "/etc/passwd"}}),
    )
    .unwrap();
    assert!(got.is_empty(), "{got:?}");
    let got = files(
        &ex,
        "upload_file",
        json!({"file": {"content_base64": "aGk=", "filename": "a.bin"}}),
    )
    .unwrap();
    assert!(got.is_empty(), "{got:?}");
    let got = files(
        &ex,
        "download_file",
        json!({"id": "file_1", "save_to": "/tmp/out.bin"}),
    )
    .unwrap();
    assert_eq!(
        got,
        [("/tmp/out.bin".into(), FileAccess::Write, "save_to".into())]
    );
    // JSONL through the full name, arguments inside the `query` wrapper when it has one.
    let got = files(
        &ex,
        "anthropic_get_message_batch_results",
        json!({"id": "msgbatch_1", "save_to": "r.jsonl"}),
    )
    .unwrap();
    assert_eq!(
        got,
        [("r.jsonl".into(), FileAccess::Write, "save_to".into())]
    );
    assert!(files(&ex, "list_models", json!({})).unwrap().is_empty());
}

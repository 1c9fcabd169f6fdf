//! The library's one call path, used the way a Rust program would: `kosmo::Session`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use kosmo::session::Hooks;
use kosmo::{Request, Session, SessionOptions};
use serde_json::json;
use tempfile::TempDir;

fn offline(config: &TempDir) -> SessionOptions {
    SessionOptions {
        offline: true,
        config_dir: Some(config.path().to_path_buf()),
        ..Default::default()
    }
}

fn message() -> serde_json::Value {
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "hi"}],
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_session_enforces_permissions_and_records_every_call() {
    let config = TempDir::new().unwrap();
    runtime().block_on(async {
        let session = Session::new(offline(&config));
        let models = session
            .call(Request::new(
                "anthropic",
                "list_models",
                json!({"limit": 1}),
            ))
            .await
            .unwrap();
        assert_eq!(models.value["data"].as_array().unwrap().len(), 1);
        assert_eq!(models.http_status, Some(200));

        // Writes default to `ask`; a library has no terminal, so the write is refused.
        let err = session
            .call(Request::new("anthropic", "create_message", message()))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "permission_denied", "{err}");
        assert!(err.to_string().contains("--write allow"), "{err}");

        // Validation happens before anything else, with every problem listed.
        let err = session
            .call(Request::new(
                "anthropic",
                "count_message_tokens",
                json!({"model": 5}),
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "validation_error");

        // An unknown function is refused and recorded under the name the caller used.
        let err = session
            .call(Request::new("anthropic", "no_such_function", json!({})))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "unknown_function");

        let calls = session.log().entries();
        let summary: Vec<(String, String)> = calls
            .iter()
            .map(|c| {
                (
                    c["function"].as_str().unwrap().to_string(),
                    c["status"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("list_models".to_string(), "ok".to_string()),
                ("create_message".into(), "error".into()),
                ("count_message_tokens".into(), "error".into()),
                ("no_such_function".into(), "error".into()),
            ]
        );
        assert_eq!(calls[1]["class"], "write");
        assert_eq!(calls[1]["error"]["code"], "permission_denied");
        assert_eq!(calls[0]["http_status"], 200);
        session.shutdown().await;

        // Told to go ahead, the same write goes through; read-only refuses it even then.
        let forced = Session::new(SessionOptions {
            force: true,
            ..offline(&config)
        });
        let reply = forced
            .call(Request::new("anthropic", "create_message", message()))
            .await
            .unwrap();
        assert_eq!(reply.value["type"], "message");
        forced.shutdown().await;
        let read_only = Session::new(SessionOptions {
            force: true,
            read_only: true,
            ..offline(&config)
        });
        let err = read_only
            .call(Request::new("anthropic", "create_message", message()))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("--read-only"), "{err}");
    });
}

#[test]
fn hooks_count_calls_and_answer_prompts() {
    let config = TempDir::new().unwrap();
    runtime().block_on(async {
        let counted = Arc::new(AtomicU32::new(0));
        let seen = counted.clone();
        let asked = Arc::new(AtomicU32::new(0));
        let asks = asked.clone();
        let session = Session::new(offline(&config)).with_hooks(Hooks {
            count_call: Some(Arc::new(move || {
                if seen.fetch_add(1, Ordering::SeqCst) >= 2 {
                    return Err(kosmo::Error::Limit {
                        limit: "calls".into(),
                        message: "budget spent".into(),
                    });
                }
                Ok(())
            })),
            prompt: Some(Arc::new(move |q: &str| {
                assert!(q.contains("create_message"), "{q}");
                asks.fetch_add(1, Ordering::SeqCst);
                Some(kosmo::permissions::Answer::Always)
            })),
            ..Default::default()
        });
        // The prompt says "always": asked once, then allowed for the rest of the session.
        for _ in 0..2 {
            session
                .call(Request::new("anthropic", "create_message", message()))
                .await
                .unwrap();
        }
        assert_eq!(asked.load(Ordering::SeqCst), 1);
        // The third call is over the budget: refused before it is sent, and recorded.
        let err = session
            .call(Request::new("anthropic", "list_models", json!({})))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "limit_exceeded");
        let calls = session.log().entries();
        assert_eq!(calls.len(), 3);
        assert_eq!(calls[2]["error"]["message"], "budget spent");
        // A validation error is not counted: nothing was sent.
        let before = counted.load(Ordering::SeqCst);
        let _ = session
            .call(Request::new(
                "anthropic",
                "list_models",
                json!({"limit": "x"}),
            ))
            .await;
        assert_eq!(counted.load(Ordering::SeqCst), before);
        session.shutdown().await;
    });
}

#[test]
fn local_files_follow_the_sessions_policy() {
    let config = TempDir::new().unwrap();
    let allowed = TempDir::new().unwrap();
    runtime().block_on(async {
        let upload = allowed.path().join("notes.txt");
        std::fs::write(&upload, "hello").unwrap();
        let args = json!({"file": upload.to_str().unwrap()});
        // No allowed directory: no local file, whatever the permissions say.
        let session = Session::new(SessionOptions {
            force: true,
            ..offline(&config)
        });
        let err = session
            .call(Request::new("anthropic", "upload_file", args.clone()))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "permission_denied");
        assert!(err.to_string().contains("--allow-path"), "{err}");
        session.shutdown().await;
        let session = Session::new(SessionOptions {
            force: true,
            allow_paths: vec![allowed.path().to_path_buf()],
            ..offline(&config)
        });
        let file = session
            .call(Request::new("anthropic", "upload_file", args))
            .await
            .unwrap();
        assert_eq!(file.value["filename"], "notes.txt");
        session.shutdown().await;
    });
}

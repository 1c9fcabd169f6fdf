//! kosmo as a Rust library: one [`Session`] calls functions with the same validation,
//! permissions, retries and call record as `kosmo integrations:lua`.
//!
//! Runs offline against the built-in simulator, with a fresh config directory (so the default
//! permissions apply: reads allowed, writes `ask`, and with no terminal to ask on, refused):
//!
//! ```sh
//! cargo run --example session
//! ```

use std::process::ExitCode;

use kosmo::{Request, Session, SessionOptions};
use serde_json::json;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let config_dir = std::env::temp_dir().join(format!("kosmo-example-{}", std::process::id()));
    let code = match run(&config_dir).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e} [{}]", e.code());
            ExitCode::FAILURE
        }
    };
    let _ = std::fs::remove_dir_all(&config_dir);
    code
}

async fn run(config_dir: &std::path::Path) -> Result<(), kosmo::Error> {
    let options = SessionOptions {
        offline: true,
        config_dir: Some(config_dir.to_path_buf()),
        ..Default::default()
    };
    let session = Session::new(options.clone());

    // A read: allowed by default.
    let models = session
        .call(Request::new(
            "anthropic",
            "list_models",
            json!({"limit": 2}),
        ))
        .await?;
    for m in models.value["data"].as_array().into_iter().flatten() {
        println!("model: {}", m["id"]);
    }

    // A write: the default policy is `ask`, and a library has no terminal to ask on.
    let message = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "Say hello"}],
    });
    match session
        .call(Request::new("anthropic", "create_message", message.clone()))
        .await
    {
        Err(e) if e.code() == "permission_denied" => println!("refused as expected: {e}"),
        Err(e) => return Err(e),
        Ok(_) => println!("unexpected: the write went through without permission"),
    }

    // Invalid arguments never reach the network: the error lists what is wrong.
    if let Err(e) = session
        .call(Request::new(
            "anthropic",
            "count_message_tokens",
            json!({"model": 5}),
        ))
        .await
    {
        println!("validation: {e} [{}]", e.code());
    }

    // The same write in a session that was told to go ahead (`--force`).
    let forced = Session::new(SessionOptions {
        force: true,
        ..options
    });
    let reply = forced
        .call(Request::new("anthropic", "create_message", message))
        .await?;
    println!("reply: {}", reply.value["content"][0]["text"]);

    // What the `--json` envelope would list as integration_calls.
    for entry in session.log().entries() {
        println!(
            "call: {} {} -> {}",
            entry["function"], entry["class"], entry["status"]
        );
    }
    session.shutdown().await;
    forced.shutdown().await;
    Ok(())
}

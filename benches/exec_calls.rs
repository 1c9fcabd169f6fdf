//! Calls per second through the executor, against a loopback server, next to the official Python
//! SDK against the same server.
//!
//! `cargo bench --bench exec_calls` (optimized). Env: `BENCH_CALLS` (default 20000),
//! `KOSMO_SDK_PYTHON` (a python with `anthropic`; else /tmp/venv/bin/python if present; the SDK
//! half is skipped when neither exists).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use indexmap::IndexMap;
use kosmo::credentials::{CredentialFile, Credentials};
use kosmo::exec::{Call, ExecConfig, Executor};
use kosmo::registry::Registry;
use serde_json::json;

const MESSAGE: &str = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-20250514","content":[{"type":"text","text":"Hi"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":1}}"#;
const MODEL: &str = r#"{"id":"claude-sonnet-4-20250514","type":"model","display_name":"Claude Sonnet 4","created_at":"2025-05-14T00:00:00Z"}"#;

async fn answer(req: axum::extract::Request) -> impl IntoResponse {
    let is_model = req.uri().path().starts_with("/v1/models");
    // Read the request body, as a real server would (and so keep-alive stays clean).
    let _ = axum::body::to_bytes(req.into_body(), usize::MAX).await;
    let body = if is_model { MODEL } else { MESSAGE };
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::HeaderName::from_static("request-id"), "req_bench"),
        ],
        body,
    )
}

fn executor(url: &str) -> Executor {
    let mut file = CredentialFile::new();
    let mut default = IndexMap::new();
    default.insert("api_key".to_string(), "sk-ant-api03-bench".to_string());
    default.insert("url".to_string(), url.to_string());
    file.insert(
        "anthropic".to_string(),
        IndexMap::from([("default".to_string(), default)]),
    );
    Executor::new(
        Arc::new(Registry::builtin().expect("built-in manifests load")),
        Arc::new(Credentials::from_entries(PathBuf::new(), file)),
        ExecConfig::default(),
    )
    .expect("executor")
}

fn args(function: &str) -> serde_json::Value {
    match function {
        "get_model" => json!({"id": "claude-sonnet-4-20250514"}),
        _ => {
            json!({"model": "claude-sonnet-4-20250514", "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]})
        }
    }
}

async fn sequential(ex: &Executor, function: &str, n: usize) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        ex.call(Call::new("anthropic", function, args(function)))
            .await
            .expect("call");
    }
    n as f64 / t.elapsed().as_secs_f64()
}

async fn concurrent(ex: &Executor, function: &'static str, n: usize, workers: usize) -> f64 {
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let ex = ex.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..n / workers {
                ex.call(Call::new("anthropic", function, args(function)))
                    .await
                    .expect("call");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    (n / workers * workers) as f64 / t.elapsed().as_secs_f64()
}

fn sdk_python() -> Option<PathBuf> {
    std::env::var_os("KOSMO_SDK_PYTHON")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from("/tmp/venv/bin/python")).filter(|p| p.exists()))
}

/// Build-only throughput: validation, credentials, request building, no I/O.
async fn dry_runs(ex: &Executor, function: &str, n: usize) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        let mut c = Call::new("anthropic", function, args(function));
        c.dry_run = true;
        ex.call(c).await.expect("dry run");
    }
    n as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    let n: usize = std::env::var("BENCH_CALLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    // The server gets its own thread and runtime, as a separate process would.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("server runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let _ = tx.send(format!("http://{}", listener.local_addr().expect("addr")));
            let app = Router::new().fallback(answer);
            let _ = axum::serve(listener, app).await;
        });
    });
    let url = rx.recv().expect("server url");
    let ex = executor(&url);
    // Sequential calls: one task, so a current-thread runtime (no cross-thread wake-ups).
    let single = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // The floor: the same GET with a bare reqwest client, no executor.
    let raw = single.block_on(async {
        let client = reqwest::Client::new();
        let u = format!("{url}/v1/models/claude-sonnet-4-20250514");
        for _ in 0..500 {
            let _ = client.get(&u).send().await.expect("raw").bytes().await;
        }
        let t = Instant::now();
        for _ in 0..n {
            let _ = client.get(&u).send().await.expect("raw").bytes().await;
        }
        n as f64 / t.elapsed().as_secs_f64()
    });
    println!("bare reqwest GET       sequential {raw:>9.0} calls/s (the loopback floor)");
    let mut results = Vec::new();
    for f in ["create_message", "get_model"] {
        let (dry, seq) = single.block_on(async {
            // Warm up the connection and the lazily compiled validators.
            sequential(&ex, f, 500).await;
            (dry_runs(&ex, f, n).await, sequential(&ex, f, n).await)
        });
        let ex2 = executor(&url);
        let conc = multi.block_on(async {
            concurrent(&ex2, f, 2_000, 8).await;
            concurrent(&ex2, f, n, 8).await
        });
        println!(
            "kosmo {f:<15} sequential {seq:>9.0} calls/s   8 concurrent {conc:>9.0} calls/s   dry run {dry:>9.0} calls/s"
        );
        results.push((f, seq));
    }
    let Some(py) = sdk_python() else {
        println!("SKIP: no Python SDK (set KOSMO_SDK_PYTHON) for the comparison");
        return;
    };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/sdk_calls.py");
    let sdk_n = (n / 10).max(500).to_string();
    for (f, seq) in results {
        let out = std::process::Command::new(&py)
            .args([script, &url, f, &sdk_n])
            .output()
            .expect("python");
        let text = String::from_utf8_lossy(&out.stdout);
        match text.trim().parse::<f64>() {
            Ok(sdk) => println!(
                "sdk   {f:<15} sequential {sdk:>9.0} calls/s   kosmo/sdk = {:.1}x",
                seq / sdk
            ),
            Err(_) => println!(
                "sdk   {f:<15} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }
}

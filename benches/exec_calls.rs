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

/// Median and best of `rounds` sequential runs: loopback round trips on a small VM are bimodal
/// (same core or not), so one run says little. The SDK script reports the same two numbers.
async fn rounds(ex: &Executor, function: &str, n: usize, rounds: usize) -> (f64, f64) {
    let mut rates = Vec::new();
    for _ in 0..rounds {
        rates.push(sequential(ex, function, n / rounds).await);
    }
    rates.sort_by(f64::total_cmp);
    (rates[rates.len() / 2], rates[rates.len() - 1])
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

/// Start the server on the current runtime; returns its base URL.
async fn serve() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let app = Router::new().fallback(answer);
        let _ = axum::serve(listener, app).await;
    });
    url
}

/// The bare-reqwest floor: the same GET without the executor.
async fn bare(url: &str, n: usize) -> f64 {
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
}

/// `(median, best)` calls/s of the SDK script, run while `rt` keeps serving.
fn sdk_rounds(
    rt: &tokio::runtime::Runtime,
    py: &PathBuf,
    url: &str,
    f: &str,
    n: usize,
) -> Option<(f64, f64)> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/sdk_calls.py");
    let out = rt
        .block_on(async {
            tokio::process::Command::new(py)
                .args([script, url, f, &n.to_string()])
                .output()
                .await
        })
        .ok()?;
    let nums: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect();
    match nums[..] {
        [median, best] => Some((median, best)),
        _ => {
            eprintln!("sdk {f} failed: {}", String::from_utf8_lossy(&out.stderr));
            None
        }
    }
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn main() {
    let n: usize = std::env::var("BENCH_CALLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let py = sdk_python();
    if py.is_none() {
        println!("SKIP: no Python SDK (set KOSMO_SDK_PYTHON): kosmo numbers only");
    }
    // Two placements of the same server. "own thread": its own thread and runtime, like a
    // separate process; loopback round trips then cross cores, which on a small VM is often the
    // floor. "client thread": the server shares the client's thread (no cross-core wake-ups);
    // the SDK, a separate process, is measured against it while that thread serves.
    let own = current_thread();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = current_thread();
        rt.block_on(async move {
            let _ = tx.send(serve().await);
            std::future::pending::<()>().await
        });
    });
    let own_url = rx.recv().expect("server url");
    let shared = current_thread();
    let shared_url = shared.block_on(serve());

    for (placement, rt, url) in [
        ("own thread", &own, &own_url),
        ("client thread", &shared, &shared_url),
    ] {
        let ex = executor(url);
        let floor = rt.block_on(bare(url, n));
        println!("[server on {placement}] bare reqwest GET: {floor:.0} calls/s (loopback floor)");
        for f in ["create_message", "get_model"] {
            let (dry, seq) = rt.block_on(async {
                // Warm up the connection and the lazily compiled validators.
                sequential(&ex, f, 500).await;
                (dry_runs(&ex, f, n).await, rounds(&ex, f, n, 5).await)
            });
            let mut line = format!(
                "  {f:<15} kosmo median {:>6.0} best {:>6.0} calls/s (dry run {dry:>6.0})",
                seq.0, seq.1
            );
            if let Some(py) = &py
                && let Some((median, best)) = sdk_rounds(rt, py, url, f, (n / 5).max(1000))
            {
                line.push_str(&format!(
                    " | sdk median {median:>5.0} best {best:>5.0} | kosmo/sdk {:.1}x (median), {:.1}x (best)",
                    seq.0 / median,
                    seq.1 / best
                ));
            }
            println!("{line}");
        }
    }
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let ex = executor(&own_url);
    for f in ["create_message", "get_model"] {
        let conc = multi.block_on(async {
            concurrent(&ex, f, 2_000, 8).await;
            concurrent(&ex, f, n, 8).await
        });
        println!("[server on own thread] {f:<15} kosmo, 8 calls in flight: {conc:.0} calls/s");
    }
}

//! Size caps against hostile servers: endless bodies, floods and lines that never end stop at
//! their cap with `response_too_large` (naming the cap), and kosmo stops reading (the server sees
//! its writes fail soon after the cap: memory stays bounded). Partial downloads never stay.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::kosmo;

const MIB: u64 = 1 << 20;
/// A hostile server stops on its own after this much (so a broken cap fails the test instead
/// of filling the machine's memory).
const GIVE_UP: u64 = 512 * MIB;

/// A server on 127.0.0.1 that answers every request with `respond`; `sent` counts body bytes
/// written over all connections.
struct Hostile {
    url: String,
    sent: Arc<AtomicU64>,
}

type Respond = dyn Fn(&str, &mut TcpStream, &AtomicU64, u64) + Send + Sync;

fn hostile(
    respond: impl Fn(&str, &mut TcpStream, &AtomicU64, u64) + Send + Sync + 'static,
) -> Hostile {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let sent = Arc::new(AtomicU64::new(0));
    let respond: Arc<Respond> = Arc::new(respond);
    let counter = sent.clone();
    std::thread::spawn(move || {
        for (n, conn) in listener.incoming().enumerate() {
            let Ok(mut conn) = conn else { return };
            let (respond, counter) = (respond.clone(), counter.clone());
            let nth = n as u64 + 1;
            std::thread::spawn(move || {
                let head = read_head(&mut conn);
                respond(&head, &mut conn, &counter, nth);
            });
        }
    });
    Hostile { url, sent }
}

fn read_head(conn: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match conn.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Write `first`, then `chunk` again and again until the client hangs up (or `GIVE_UP`).
fn endless(
    conn: &mut TcpStream,
    sent: &AtomicU64,
    status: &str,
    ctype: &str,
    first: &str,
    chunk: &[u8],
) {
    let head =
        format!("HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\nconnection: close\r\n\r\n{first}");
    if conn.write_all(head.as_bytes()).is_err() {
        return;
    }
    let mut total = 0;
    while total < GIVE_UP {
        if conn.write_all(chunk).is_err() {
            return;
        }
        total += chunk.len() as u64;
        sent.fetch_add(chunk.len() as u64, Ordering::SeqCst);
    }
}

fn config(dir: &Path, http: &str) {
    std::fs::write(
        dir.join("config.yaml"),
        format!("http: {{max_retries: 0, {http}}}\n"),
    )
    .unwrap();
}

fn lua(dir: &Path, url: &str, extra: &[&str], code: &str) -> Value {
    let out = kosmo(dir)
        .env("ANTHROPIC_API_KEY", "sk-ant-api03-capstest")
        .env("ANTHROPIC_BASE_URL", url)
        .args(["integrations:lua", "--json", "--force"])
        .args(extra)
        .args(["--eval", code])
        .write_stdin(Vec::new())
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "no envelope; stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn assert_too_large(env: &Value, cap: &str) {
    assert_eq!(env["success"], false, "{env:#}");
    let e = &env["error"];
    assert_eq!(e["code"], "response_too_large", "{env:#}");
    let msg = e["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains(&format!("http: {{{cap}: N}}")),
        "the message says how to raise it: {msg}"
    );
}

/// kosmo stopped reading soon after the cap: what the server managed to write is the cap plus
/// socket buffers, far below what it would have sent.
fn assert_stopped_reading(server: &Hostile, cap: u64) {
    let sent = server.sent.load(Ordering::SeqCst);
    assert!(
        sent < cap + 64 * MIB,
        "the server wrote {sent} bytes past a cap of {cap}"
    );
}

const LIST: &str = "return app.integrations.anthropic.list_models{}";

#[test]
fn an_endless_success_body_stops_at_max_response_bytes() {
    let server = hostile(|_, c, sent, _| {
        endless(
            c,
            sent,
            "200 OK",
            "application/json",
            "{\"data\": [\"",
            &[b'x'; 64 * 1024],
        )
    });
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), "max_response_bytes: 1048576");
    let env = lua(dir.path(), &server.url, &[], LIST);
    assert_too_large(&env, "max_response_bytes");
    assert_eq!(env["error"]["status"], 200, "{env:#}");
    assert_eq!(
        env["integration_calls"][0]["error"]["code"], "response_too_large",
        "{env:#}"
    );
    assert_stopped_reading(&server, MIB);
}

#[test]
fn an_endless_error_body_stops_at_the_default_error_body_cap() {
    let server = hostile(|_, c, sent, _| {
        endless(
            c,
            sent,
            "500 Internal Server Error",
            "text/plain",
            "",
            &[b'e'; 64 * 1024],
        )
    });
    let dir = tempfile::tempdir().unwrap();
    // No size setting: the default cap (1 MiB) holds.
    config(dir.path(), "timeout: 120");
    let env = lua(dir.path(), &server.url, &[], LIST);
    assert_too_large(&env, "max_error_body_bytes");
    assert_eq!(env["error"]["status"], 500, "{env:#}");
    assert_stopped_reading(&server, MIB);
}

const STREAM: &str = r#"local n = 0
return app.integrations.anthropic.create_message{model = "m", max_tokens = 16, stream = true,
  messages = {{role = "user", content = "hi"}}, on_event = function(e) n = n + 1 end}"#;

const STREAM_START: &str = concat!(
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",",
    "\"role\":\"assistant\",\"model\":\"m\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
);

#[test]
fn a_flood_of_text_deltas_stops_at_max_stream_bytes() {
    let delta = format!(
        "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"{}\"}}}}\n\n",
        "y".repeat(4000)
    );
    let server = hostile(move |_, c, sent, _| {
        endless(
            c,
            sent,
            "200 OK",
            "text/event-stream",
            STREAM_START,
            delta.as_bytes(),
        )
    });
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), "max_stream_bytes: 2097152");
    let env = lua(dir.path(), &server.url, &[], STREAM);
    assert_too_large(&env, "max_stream_bytes");
    assert_stopped_reading(&server, 2 * MIB);
}

#[test]
fn an_event_line_that_never_ends_stops_at_max_line_bytes() {
    let start = format!(
        "{STREAM_START}event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"text\":\""
    );
    let server = hostile(move |_, c, sent, _| {
        endless(
            c,
            sent,
            "200 OK",
            "text/event-stream",
            &start,
            &[b'z'; 16 * 1024],
        )
    });
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), "max_line_bytes: 65536");
    let env = lua(dir.path(), &server.url, &[], STREAM);
    assert_too_large(&env, "max_line_bytes");
    assert_stopped_reading(&server, 64 * 1024);
}

#[test]
fn many_data_lines_in_one_event_stop_at_max_line_bytes() {
    let server = hostile(move |_, c, sent, _| {
        endless(
            c,
            sent,
            "200 OK",
            "text/event-stream",
            STREAM_START,
            b"data: {\"a\": 1,\n",
        )
    });
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), "max_line_bytes: 65536");
    let env = lua(dir.path(), &server.url, &[], STREAM);
    assert_too_large(&env, "max_line_bytes");
    assert_stopped_reading(&server, 64 * 1024);
}

#[test]
fn a_jsonl_row_that_never_ends_stops_at_max_line_bytes_and_normal_rows_still_come() {
    let server = hostile(|_, c, sent, _| {
        endless(
            c,
            sent,
            "200 OK",
            "application/x-jsonl",
            "{\"custom_id\": \"a\"}\n{\"custom_id\": \"b\"}\n{\"custom_id\": \"",
            &[b'r'; 16 * 1024],
        )
    });
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), "max_line_bytes: 65536");
    let env = lua(
        dir.path(),
        &server.url,
        &[],
        r#"local ids = {}
local ok, e = pcall(function()
  for row in rows(app.integrations.anthropic.get_message_batch_results, {id = "msgbatch_1"}) do
    ids[#ids + 1] = row.custom_id
  end
end)
return ids, ok, e.code, e.cap"#,
    );
    assert_eq!(env["success"], true, "{env:#}");
    assert_eq!(env["result"][0], serde_json::json!(["a", "b"]), "{env:#}");
    assert_eq!(env["result"][1], false, "{env:#}");
    assert_eq!(env["result"][2], "response_too_large", "{env:#}");
    assert_eq!(env["result"][3], "max_line_bytes", "{env:#}");
    assert_stopped_reading(&server, 64 * 1024);
}

#[test]
fn fetch_all_over_endless_pages_stops_at_max_fetch_all_bytes() {
    let server = hostile(|_, c, _, nth| {
        let pad = "p".repeat(200 * 1024);
        let body = format!(
            "{{\"data\": [{{\"type\": \"model\", \"id\": \"m-{nth}\", \"display_name\": \"{pad}\", \"created_at\": \"2025-01-01T00:00:00Z\"}}], \"has_more\": true, \"first_id\": \"m-{nth}\", \"last_id\": \"m-{nth}\"}}"
        );
        let _ = c.write_all(
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
    });
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), "max_fetch_all_bytes: 1048576");
    let env = lua(
        dir.path(),
        &server.url,
        &[],
        "return app.integrations.anthropic.list_models{fetch_all = true}",
    );
    assert_too_large(&env, "max_fetch_all_bytes");
    assert!(
        env["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_items"),
        "{env:#}"
    );
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn download(target: &Path) -> String {
    format!(
        r#"return app.integrations.anthropic.download_file{{id = "file_1", save_to = "{}"}}"#,
        target.display()
    )
}

#[test]
fn a_download_over_max_download_bytes_fails_and_leaves_no_part_file() {
    let server = hostile(|_, c, sent, _| {
        endless(
            c,
            sent,
            "200 OK",
            "application/octet-stream",
            "",
            &[7u8; 64 * 1024],
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let allowed = tempfile::tempdir().unwrap();
    config(dir.path(), "max_download_bytes: 1048576");
    let target = allowed.path().join("out.bin");
    let allow = allowed.path().to_str().unwrap();
    let env = lua(
        dir.path(),
        &server.url,
        &["--allow-path", allow],
        &download(&target),
    );
    assert_too_large(&env, "max_download_bytes");
    assert_eq!(leftovers(allowed.path()), Vec::<String>::new(), "{env:#}");
    assert_stopped_reading(&server, MIB);
}

#[test]
fn a_download_cut_off_mid_body_leaves_no_part_file() {
    let server = hostile(|_, c, _, _| {
        // Promises more than it sends, then hangs up.
        let _ = c.write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: 1000000\r\n\r\npartial",
        );
    });
    let dir = tempfile::tempdir().unwrap();
    let allowed = tempfile::tempdir().unwrap();
    config(dir.path(), "timeout: 30");
    let target = allowed.path().join("out.bin");
    let allow = allowed.path().to_str().unwrap();
    let env = lua(
        dir.path(),
        &server.url,
        &["--allow-path", allow],
        &download(&target),
    );
    assert_eq!(env["success"], false, "{env:#}");
    assert_eq!(env["error"]["code"], "transport_error", "{env:#}");
    assert_eq!(leftovers(allowed.path()), Vec::<String>::new(), "{env:#}");
}

/// A download in progress (the server sent part and stalls) when the CLI gets a signal: the
/// envelope reports the interruption and the `.kosmo-part` file is gone.
fn interrupted_download(signal: &str, signo: u32) {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let tx = std::sync::Mutex::new(tx);
    let server = hostile(move |_, c, _, _| {
        let _ = c.write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: 1000000\r\n\r\n",
        );
        let _ = c.write_all(&[1u8; 4096]);
        let _ = c.flush();
        if let Ok(tx) = tx.lock() {
            let _ = tx.send(());
        }
        std::thread::sleep(Duration::from_secs(60));
    });
    let dir = tempfile::tempdir().unwrap();
    let allowed = tempfile::tempdir().unwrap();
    let target = allowed.path().join("out.bin");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kosmo"))
        .env("KOSMO_CONFIG_DIR", dir.path())
        .env("HOME", dir.path())
        .env_remove("KOSMO_MANIFEST_PATH")
        .env("ANTHROPIC_API_KEY", "sk-ant-api03-capstest")
        .env("ANTHROPIC_BASE_URL", &server.url)
        .args(["integrations:lua", "--json", "--force", "--allow-path"])
        .arg(allowed.path())
        .args(["--eval", &download(&target)])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the download started");
    // The part file exists while the body is in flight.
    let started = Instant::now();
    while leftovers(allowed.path()).is_empty() && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        leftovers(allowed.path()).len(),
        1,
        "the part file is there mid-download"
    );
    crate::support::wait_for_signal_handler(child.id(), signo);
    let killed = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no exit after {signal}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let env: Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("no envelope: {out}"));
    assert_eq!(env["error"]["code"], "interrupted", "{env:#}");
    assert!(!status.success());
    assert_eq!(leftovers(allowed.path()), Vec::<String>::new(), "{env:#}");
}

#[test]
fn sigint_during_a_download_leaves_no_part_file() {
    interrupted_download("-INT", 2);
}

#[test]
fn sigterm_during_a_download_leaves_no_part_file() {
    interrupted_download("-TERM", 15);
}

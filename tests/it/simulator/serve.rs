//! `kosmo simulator:serve` as a child process: the official SDK in strict mode
//! (`tests/sdk/acceptance.py`), seeds, latency, pinning, concurrency, `--host`, and SIGINT.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Sim, sdk_python};

const KEY: &str = "sk-ant-api03-QA3stdinSECRET0000";

#[test]
fn sdk_strict_acceptance_against_simulator_serve() {
    let Some(py) = sdk_python() else {
        return;
    };
    let sim = Sim::start(&[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/acceptance.py");
    let out = Command::new(py)
        .arg(script)
        .arg(&sim.url)
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("all acceptance cases passed"),
        "acceptance.py failed\n{stdout}\n{stderr}"
    );
}

/// One raw HTTP/1.1 request (Connection: close); returns (status, body).
fn http(addr: &str, method: &str, path: &str, key: &str, extra: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nx-api-key: {key}\r\nanthropic-version: 2023-06-01\r\ncontent-type: application/json\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or("")
        .to_string();
    (status, body)
}

#[test]
fn simulator_seed_latency_pinning_and_concurrency() {
    let body = r#"{"model":"claude-sonnet-4-0","max_tokens":100,"messages":[{"role":"user","content":"Tell me about otters"}]}"#;
    let text = |sim: &Sim| {
        let (status, b) = http(&sim.addr(), "POST", "/v1/messages", KEY, "", body);
        assert_eq!(status, 200, "{b}");
        let v: Value = serde_json::from_str(&b).unwrap();
        v["content"][0]["text"].as_str().unwrap().to_string()
    };
    let (a, b, c) = (
        Sim::start_bare(&["--seed", "7"]),
        Sim::start_bare(&["--seed", "7"]),
        Sim::start_bare(&["--seed", "8"]),
    );
    assert_eq!(text(&a), text(&b));
    assert_ne!(text(&a), text(&c));

    let slow = Sim::start_bare(&["--latency", "300"]);
    let t = Instant::now();
    let (status, _) = http(&slow.addr(), "GET", "/v1/models", KEY, "", "");
    assert_eq!(status, 200);
    assert!(
        t.elapsed() >= Duration::from_millis(290),
        "{:?}",
        t.elapsed()
    );

    let pinned = Sim::start_bare(&[
        "--api-key",
        "sk-ant-api03-PIN",
        "--admin-key",
        "sk-ant-admin01-PIN",
    ]);
    let addr = pinned.addr();
    assert_eq!(
        http(&addr, "GET", "/v1/models", "sk-ant-api03-PIN", "", "").0,
        200
    );
    assert_eq!(
        http(&addr, "GET", "/v1/models", "sk-ant-api03-OTHER", "", "").0,
        401
    );
    assert_eq!(
        http(
            &addr,
            "GET",
            "/v1/organizations/me",
            "sk-ant-admin01-PIN",
            "",
            ""
        )
        .0,
        200
    );
    assert_eq!(
        http(
            &addr,
            "GET",
            "/v1/organizations/me",
            "sk-ant-admin01-OTHER",
            "",
            ""
        )
        .0,
        401
    );
    assert_eq!(
        http(
            &addr,
            "GET",
            "/v1/organizations/me",
            "sk-ant-api03-PIN",
            "",
            ""
        )
        .0,
        403
    );

    // 50 concurrent streaming requests all succeed.
    let stream = body.replace("\"max_tokens\"", "\"stream\":true,\"max_tokens\"");
    let handles: Vec<_> = (0..50)
        .map(|_| {
            let (addr, stream) = (a.addr(), stream.clone());
            std::thread::spawn(move || http(&addr, "POST", "/v1/messages", KEY, "", &stream))
        })
        .collect();
    for h in handles {
        let (status, b) = h.join().unwrap();
        assert_eq!(status, 200);
        assert!(b.contains("event: message_stop"), "{b}");
    }

    // The fault header on a streaming request: an error event after 3 events, no message_stop.
    let (status, b) = http(
        &a.addr(),
        "POST",
        "/v1/messages",
        KEY,
        "x-kosmo-fault: error-event:after=3\r\n",
        &stream,
    );
    assert_eq!(status, 200);
    let events: Vec<&str> = b
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(events.len(), 4, "{b}");
    assert_eq!(events[3], "error");
    let (status, b) = http(
        &a.addr(),
        "POST",
        "/v1/messages",
        KEY,
        "x-kosmo-fault: 529\r\n",
        &stream,
    );
    assert_eq!(status, 529);
    assert!(b.contains("overloaded_error"));
}

#[test]
fn simulator_all_interfaces_warns_and_sigint_exits_cleanly() {
    let mut sim = Sim::start_capturing_stderr(&["--host", "0.0.0.0"]);
    assert!(sim.url.starts_with("http://0.0.0.0:"), "{}", sim.url);
    assert_eq!(http(&sim.addr(), "GET", "/v1/models", KEY, "", "").0, 200);
    crate::support::wait_for_signal_handler(sim.child.id(), 2);
    let pid = sim.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = sim.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let mut err = String::new();
    sim.child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(err.contains("reachable from other machines"), "{err}");
}

//! Signals while a script runs: reported as interruptions in the envelope, a hangup included.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use crate::support::silent_server;

fn spawn_kosmo(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> std::process::Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kosmo"));
    cmd.env("KOSMO_CONFIG_DIR", dir)
        .env("HOME", dir)
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("ANTHROPIC_BASE_URL")
        .env_remove("KOSMO_MANIFEST_PATH")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

fn signal_and_wait(mut child: std::process::Child, signal: &str) -> (i32, Value) {
    drop(child.stdin.take());
    std::thread::sleep(Duration::from_millis(800));
    let signo = match signal {
        "-INT" => 2,
        "-HUP" => 1,
        _ => 15,
    };
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
            started.elapsed() < Duration::from_secs(120),
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
    (
        status.code().unwrap_or(-1),
        serde_json::from_str(&out).unwrap_or_else(|_| panic!("no envelope: {out}")),
    )
}

#[test]
fn signals_are_reported_as_interruptions() {
    let dir = TempDir::new().unwrap();
    let child = spawn_kosmo(
        dir.path(),
        &["integrations:lua", "--json", "--eval", "while true do end"],
        &[],
    );
    let (code, env) = signal_and_wait(child, "-INT");
    assert_eq!(code, 130, "{env}");
    assert_eq!(env["success"], false);
    assert_eq!(env["error"]["code"], "interrupted", "{env}");
    assert_eq!(env["error"]["message"], "interrupted by SIGINT");
    // SIGTERM while waiting on HTTP: the envelope still comes, with the cut-off call.
    let (_server, url) = silent_server();
    let child = spawn_kosmo(
        dir.path(),
        &[
            "integrations:lua",
            "--json",
            "--eval",
            "return app.integrations.anthropic.list_models{}",
        ],
        &[
            ("ANTHROPIC_API_KEY", "sk-ant-api03-test"),
            ("ANTHROPIC_BASE_URL", &url),
        ],
    );
    let (code, env) = signal_and_wait(child, "-TERM");
    assert_eq!(code, 143, "{env}");
    assert_eq!(env["error"]["code"], "interrupted", "{env}");
    assert_eq!(env["error"]["message"], "interrupted by SIGTERM");
    assert_eq!(env["integration_calls"][0]["status"], "error", "{env}");
    assert_eq!(
        env["integration_calls"][0]["error"]["code"], "interrupted",
        "{env}"
    );
}

#[test]
fn a_hangup_still_prints_the_envelope() {
    let dir = TempDir::new().unwrap();
    let child = spawn_kosmo(
        dir.path(),
        &["integrations:lua", "--json", "--eval", "while true do end"],
        &[],
    );
    let (code, env) = signal_and_wait(child, "-HUP");
    assert_eq!(code, 129, "{env}");
    assert_eq!(env["error"]["code"], "interrupted", "{env}");
    assert_eq!(env["error"]["signal"], "SIGHUP", "{env}");
}

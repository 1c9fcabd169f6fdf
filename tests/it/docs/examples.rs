//! Docs that run: every runnable ```lua block of the rendered reference is executed by the real
//! binary against the built-in simulator (`integrations:lua --offline`), and must succeed.

use std::collections::BTreeSet;
use std::sync::Mutex;

use super::{docs, lua_blocks};
use crate::support::kosmo;

/// Whether the Lua runtime can run scripts yet (it is built in parallel with the docs).
fn runtime_ready() -> bool {
    let cfg = tempfile::tempdir().unwrap();
    let out = kosmo(cfg.path())
        .args(["integrations:lua", "--offline", "--json", "--eval", "return 1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    !stderr.contains("is being built")
}

#[test]
fn every_example_in_the_docs_runs_against_the_simulator() {
    if !runtime_ready() {
        assert!(
            std::env::var_os("CI").is_none(),
            "integrations:lua is not implemented, so the docs' examples cannot run"
        );
        eprintln!("SKIP every_example_in_the_docs_runs_against_the_simulator: integrations:lua is not implemented yet");
        return;
    }
    let mut blocks = BTreeSet::new();
    for (file, text) in docs().generate().unwrap() {
        if file.extension().and_then(|e| e.to_str()) != Some("md") {
            continue;
        }
        for (code, runnable) in lua_blocks(&text) {
            if runnable {
                blocks.insert(code);
            }
        }
    }
    assert!(!blocks.is_empty());
    let queue = Mutex::new(blocks.into_iter().collect::<Vec<_>>());
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let Some(code) = queue.lock().unwrap().pop() else { break };
                    let cfg = tempfile::tempdir().unwrap();
                    let out = kosmo(cfg.path())
                        .args(["integrations:lua", "--offline", "--force", "--json"])
                        .arg(format!("--eval={code}"))
                        .output()
                        .unwrap();
                    let envelope: Option<serde_json::Value> = serde_json::from_slice(&out.stdout).ok();
                    let ok = out.status.success()
                        && envelope.as_ref().is_some_and(|v| v["success"] == true);
                    if !ok {
                        failures.lock().unwrap().push(format!(
                            "----- example failed (exit {:?}):\n{code}\nstdout: {}\nstderr: {}",
                            out.status.code(),
                            String::from_utf8_lossy(&out.stdout),
                            String::from_utf8_lossy(&out.stderr)
                        ));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{} example(s) failed:\n{}", failures.len(), failures.join("\n"));
}

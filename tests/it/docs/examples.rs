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
        .args([
            "integrations:lua",
            "--offline",
            "--json",
            "--eval",
            "return 1",
        ])
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
        eprintln!(
            "SKIP every_example_in_the_docs_runs_against_the_simulator: integrations:lua is not implemented yet"
        );
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
                    let Some(code) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    let cfg = tempfile::tempdir().unwrap();
                    // Upload examples name a local file.
                    std::fs::write(cfg.path().join("report.pdf"), b"%PDF-1.4\n%%EOF\n").unwrap();
                    let out = kosmo(cfg.path())
                        .current_dir(cfg.path())
                        .args(["integrations:lua", "--offline", "--force", "--json"])
                        // Scripts get no local file access unless a directory is allowed.
                        .arg("--allow-path")
                        .arg(cfg.path())
                        .arg(format!("--eval={code}"))
                        .output()
                        .unwrap();
                    let envelope: Option<serde_json::Value> =
                        serde_json::from_slice(&out.stdout).ok();
                    let ok = out.status.success()
                        && envelope.as_ref().is_some_and(|v| v["success"] == true);
                    if !ok {
                        let why = envelope
                            .as_ref()
                            .map(|v| v["error"]["message"].to_string())
                            .unwrap_or_else(|| String::from_utf8_lossy(&out.stderr).into_owned());
                        failures.lock().unwrap().push(format!(
                            "- {} => {why}\n{code}",
                            code.lines().next().unwrap_or_default()
                        ));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} example(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Shell words of one command line: plain words, '...' (with the '\'' idiom) and "...".
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    cur.push(q);
                }
            }
            '"' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '"' {
                        break;
                    }
                    cur.push(q);
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

#[test]
fn shell_words_follow_sh_quoting() {
    assert_eq!(
        shell_words(r#"kosmo x --eval 'print("a b")' 'it'\''s' --json"#),
        ["kosmo", "x", "--eval", "print(\"a b\")", "it's", "--json"]
    );
}

/// The headless CLI section's commands, run as written (plus `--offline` for Lua commands), with
/// `workflow.lua` written from the section's own workflow block.
#[test]
fn every_cli_command_in_the_reference_runs() {
    if !runtime_ready() {
        assert!(
            std::env::var_os("CI").is_none(),
            "integrations:lua is not implemented"
        );
        eprintln!(
            "SKIP every_cli_command_in_the_reference_runs: integrations:lua is not implemented yet"
        );
        return;
    }
    let files = docs().generate().unwrap();
    let (_, reference) = files
        .iter()
        .find(|(p, _)| p.to_str() == Some("anthropic.md"))
        .unwrap();
    let cfg = tempfile::tempdir().unwrap();
    let workflow = lua_blocks(reference)
        .into_iter()
        .map(|(code, _)| code)
        .find(|c| c.starts_with("-- workflow.lua\n"))
        .expect("the CLI section has a workflow.lua block");
    std::fs::write(cfg.path().join("workflow.lua"), workflow).unwrap();
    let mut commands = Vec::new();
    let mut in_bash = false;
    for line in reference.lines() {
        match line.trim() {
            "```bash" => in_bash = true,
            "```" => in_bash = false,
            l if in_bash && l.starts_with("kosmo ") => commands.push(l.to_string()),
            _ => {}
        }
    }
    assert!(commands.len() >= 6, "{commands:?}");
    for line in commands {
        let mut words = shell_words(&line);
        words.remove(0);
        // Commands that call the API run against the simulator.
        if words[0].ends_with(":lua")
            || words[0] == "integrations:call"
            || words[0] == "integrations:anthropic"
        {
            words.push("--offline".into());
        }
        let out = kosmo(cfg.path())
            .current_dir(cfg.path())
            .args(&words)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "`{line}` failed ({:?}):\n{stdout}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        if words.iter().any(|w| w == "--json") {
            let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
            assert_eq!(v["success"], true, "`{line}`: {stdout}");
        }
    }
}

//! Command-line conventions: shell completions, colour control, usage errors under `--json`.

use serde_json::Value;
use tempfile::TempDir;

use crate::support::kosmo;

#[test]
fn completions_for_every_shell_name_the_commands() {
    let dir = TempDir::new().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let out = kosmo(dir.path())
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}: {out:?}");
        let script = String::from_utf8_lossy(&out.stdout);
        for command in ["integrations:lua", "manifests:check", "simulator:serve"] {
            assert!(script.contains(command), "{shell} lacks {command}");
        }
    }
    let out = kosmo(dir.path())
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn usage_errors_are_json_envelopes_under_json() {
    let dir = TempDir::new().unwrap();
    for args in [
        &["integrations:lua", "--bogus", "--json"][..],
        &["integrations:list", "extra", "--json"][..],
        &[
            "integrations:lua",
            "--json",
            "--timeout",
            "soon",
            "--eval",
            "return 1",
        ][..],
    ] {
        let out = kosmo(dir.path()).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let env: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: stdout is not JSON ({e}): {out:?}"));
        assert_eq!(env["success"], false);
        assert_eq!(env["error"]["code"], "usage_error");
        assert!(!env["error"]["message"].as_str().unwrap().is_empty());
    }
    // Without --json the error is for a person, on stderr; stdout stays empty.
    let out = kosmo(dir.path())
        .args(["integrations:lua", "--bogus"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bogus"));
}

#[test]
fn color_is_opt_in_and_no_color_is_honoured() {
    let dir = TempDir::new().unwrap();
    let stderr = |color: Option<&str>, no_color: bool| {
        let mut cmd = kosmo(dir.path());
        if no_color {
            cmd.env("NO_COLOR", "1");
        } else {
            cmd.env_remove("NO_COLOR");
        }
        if let Some(c) = color {
            cmd.args(["--color", c]);
        }
        let out = cmd.args(["integrations:lua", "--bogus"]).output().unwrap();
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(stderr(Some("always"), false).contains('\u{1b}'));
    assert!(!stderr(Some("never"), false).contains('\u{1b}'));
    assert!(!stderr(None, true).contains('\u{1b}'));
    assert!(!stderr(None, false).contains('\u{1b}'), "not a terminal");
}

#[test]
fn every_command_has_an_example_in_its_help() {
    let dir = TempDir::new().unwrap();
    let out = kosmo(dir.path()).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    let commands: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // A wrapped description continues on a line indented further.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    assert!(commands.len() >= 12, "{help}");
    for c in commands {
        let out = kosmo(dir.path()).args([&c, "--help"]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Examples:") && text.contains(&format!("kosmo {c}")),
            "{c} --help has no example:\n{text}"
        );
    }
}

fn stdout_of(dir: &TempDir, args: &[&str]) -> (i32, String) {
    let out = kosmo(dir.path()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn call_and_lua_give_the_same_result_and_the_same_error() {
    let dir = TempDir::new().unwrap();
    let envelope = |args: &[&str]| -> Value {
        let (_, out) = stdout_of(&dir, args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
    };
    let call = envelope(&[
        "integrations:call",
        "anthropic.list_models",
        "{\"limit\": 2}",
        "--offline",
        "--json",
    ]);
    let lua = envelope(&[
        "integrations:lua",
        "--offline",
        "--json",
        "--eval",
        "return app.integrations.anthropic.list_models{limit = 2}",
    ]);
    assert_eq!(call["success"], true, "{call}");
    assert_eq!(call["result"], lua["result"]);
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&call), keys(&lua));
    crate::support::check_envelope(&call).unwrap();

    // The same validation error, from flags (kebab-case maps to snake_case).
    let call = envelope(&[
        "integrations:anthropic",
        "list_models",
        "--limit",
        "0",
        "--before-id",
        "x",
        "--offline",
        "--json",
    ]);
    let lua = envelope(&[
        "integrations:lua",
        "--offline",
        "--json",
        "--eval",
        "return app.integrations.anthropic.list_models{limit = 0, before_id = 'x'}",
    ]);
    assert_eq!(call["error"]["code"], "validation_error", "{call}");
    assert_eq!(call["error"]["errors"], lua["error"]["errors"]);

    // Writes need permission, like in Lua: the same error and the same call record.
    let (code, _) = stdout_of(
        &dir,
        &[
            "integrations:call",
            "anthropic.create_message",
            "--model",
            "m",
            "--messages",
            "[{\"role\": \"user\", \"content\": \"hi\"}]",
            "--offline",
        ],
    );
    assert_eq!(code, 1);
    let call = envelope(&[
        "integrations:call",
        "anthropic.create_message",
        "{\"model\": \"m\", \"max_tokens\": 5, \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}",
        "--offline",
        "--json",
    ]);
    let lua = envelope(&[
        "integrations:lua",
        "--offline",
        "--json",
        "--eval",
        "return app.integrations.anthropic.create_message{model = 'm', max_tokens = 5, \
         messages = {{role = 'user', content = 'hi'}}}",
    ]);
    assert_eq!(call["error"]["code"], "permission_denied", "{call}");
    for key in ["message", "function", "account"] {
        assert_eq!(call["error"][key], lua["error"][key], "{key}");
    }
    let record = |v: &Value| {
        let c = &v["integration_calls"][0];
        (
            c["path"].clone(),
            c["function"].clone(),
            c["class"].clone(),
            c["status"].clone(),
            c["error"]["code"].clone(),
        )
    };
    assert_eq!(record(&call), record(&lua));
}

#[test]
fn call_types_values_by_the_schema_and_prints_rows_one_per_line() {
    let dir = TempDir::new().unwrap();
    // A string parameter stays a string, even when it looks like a number.
    let (code, out) = stdout_of(
        &dir,
        &[
            "integrations:call",
            "anthropic.create_message",
            "--model",
            "0123",
            "--max-tokens",
            "5",
            "--messages",
            "[{\"role\": \"user\", \"content\": \"hi\"}]",
            "--dry-run",
            "--offline",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let req: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(req["body"]["model"], "0123", "{out}");
    assert_eq!(req["body"]["max_tokens"], 5, "{out}");
    // --all follows every page.
    let (code, out) = stdout_of(
        &dir,
        &[
            "integrations:anthropic",
            "list_models",
            "--limit",
            "1",
            "--all",
            "--offline",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let all: Value = serde_json::from_str(&out).unwrap();
    assert!(all["data"].as_array().unwrap().len() > 1, "{out}");
    // JSONL results: one row per line.
    let (code, out) = stdout_of(
        &dir,
        &[
            "integrations:anthropic",
            "get_message_batch_results",
            "--id",
            "msgbatch_01HkcTjaV5uDC8jWR4ZsDV8d",
            "--offline",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let rows: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(rows.len(), 3, "{out}");
    assert_eq!(rows[0]["custom_id"], "question-1");
    // Usage errors.
    let (code, _) = stdout_of(
        &dir,
        &["integrations:call", "anthropic.list_models", "{}", "x"],
    );
    assert_eq!(code, 2);
    let (code, out) = stdout_of(&dir, &["integrations:lsit", "--json"]);
    assert_eq!(code, 2);
    assert!(out.contains("integrations:list"), "{out}");
}

#[test]
fn a_misspelt_integration_raises_with_a_suggestion_and_an_unknown_one_is_nil() {
    let dir = TempDir::new().unwrap();
    let (code, out) = stdout_of(
        &dir,
        &[
            "integrations:lua",
            "--json",
            "--eval",
            "return app.integrations.antropic.list_models{}",
        ],
    );
    assert_eq!(code, 1, "{out}");
    let env: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(env["error"]["code"], "unknown_integration", "{env}");
    assert_eq!(env["error"]["suggestions"][0], "anthropic", "{env}");
    // pcall catches it as a structured error.
    let (code, out) = stdout_of(
        &dir,
        &[
            "integrations:lua",
            "--eval",
            "local ok, e = pcall(function() return app.integrations.antropic end) \
             return ok, e.code, app.integrations.no_such_thing_here == nil",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["false", "unknown_integration", "true"]
    );
}

#[test]
fn offline_runs_take_simulator_settings() {
    let dir = TempDir::new().unwrap();
    // A batch that stays in progress until the delay passes: rehearse a slow batch.
    let script = "local b = app.integrations.anthropic.create_message_batch{requests = {{custom_id = 'a', \
                  params = {model = 'claude-sonnet-4-5', max_tokens = 5, messages = {{role = 'user', content = 'hi'}}}}}} \
                  return app.integrations.anthropic.get_message_batch{id = b.id}.processing_status";
    let status_with = |setting: &str| {
        let (code, out) = stdout_of(
            &dir,
            &[
                "integrations:lua",
                "--offline",
                "--force",
                "--sim-set",
                setting,
                "--eval",
                script,
            ],
        );
        (code, out.trim().to_string())
    };
    assert_eq!(
        status_with("anthropic.batch_delay_ms=60000"),
        (0, "in_progress".to_string())
    );
    assert_eq!(status_with("batch_delay_ms=0"), (0, "ended".to_string()));
    // A typo is an error that lists the known options, never a setting silently ignored.
    let (code, out) = stdout_of(
        &dir,
        &[
            "integrations:lua",
            "--offline",
            "--json",
            "--sim-set",
            "batch_dealy_ms=5",
            "--eval",
            "return app.integrations.anthropic.list_models{}",
        ],
    );
    assert_eq!(code, 1, "{out}");
    let env: Value = serde_json::from_str(&out).unwrap();
    assert!(
        env["error"]["message"]
            .as_str()
            .unwrap()
            .contains("batch_delay_ms"),
        "{env}"
    );
    // Only with --offline.
    let (code, _) = stdout_of(
        &dir,
        &[
            "integrations:lua",
            "--sim-set",
            "batch_delay_ms=0",
            "--eval",
            "return 1",
        ],
    );
    assert_eq!(code, 2);
}

/// A script that waits on a slow batch.
const SLOW_BATCH: &str = "local b = app.integrations.anthropic.create_message_batch{requests = {{custom_id = 'a', \
    params = {model = 'claude-sonnet-4-5', max_tokens = 5, messages = {{role = 'user', content = 'hi'}}}}}} \
    return app.integrations.anthropic.wait_for_message_batch{id = b.id, interval_seconds = 0.1}.processing_status";

#[test]
fn long_waits_show_progress_on_a_terminal_only() {
    let dir = TempDir::new().unwrap();
    let args = [
        "integrations:lua",
        "--offline",
        "--force",
        "--sim-set",
        "batch_delay_ms=1500",
        "--eval",
        SLOW_BATCH,
    ];
    // Piped: stdout has the result alone, stderr stays quiet.
    let out = kosmo(dir.path()).args(args).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ended");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("wait_for_message_batch"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // On a terminal (a pseudo-terminal from util-linux `script`), a spinner names the wait.
    let Ok(script) = which("script") else {
        eprintln!("SKIPPED: no `script` command to allocate a terminal");
        return;
    };
    let bin = assert_cmd::cargo::cargo_bin("kosmo");
    let quoted: Vec<String> = std::iter::once(bin.display().to_string())
        .chain(args.iter().map(|a| a.to_string()))
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    let out = std::process::Command::new(script)
        .args(["-qec", &quoted.join(" "), "/dev/null"])
        .env("KOSMO_CONFIG_DIR", dir.path())
        .env_remove("KOSMO_PROGRESS")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("wait_for_message_batch: in_progress"),
        "{text}"
    );
    assert!(text.contains("ended"), "{text}");
}

fn which(name: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or(())
}

//! The `--json` envelope is a contract (docs/json-envelope.md, docs/json-envelope.schema.json):
//! every outcome of the Lua commands prints one envelope that the schema accepts, with the
//! documented exit code.

use std::io::Read as _;
use std::process::{Command, Stdio};

use serde_json::Value;
use tempfile::TempDir;

use crate::support::{check_envelope, kosmo, wait_for_signal_handler};

fn run(dir: &TempDir, args: &[&str]) -> (i32, Value) {
    let out = kosmo(dir.path()).args(args).output().unwrap();
    let env: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: stdout is not JSON ({e}): {out:?}"));
    (out.status.code().unwrap_or(-1), env)
}

fn assert_contract(what: &str, code: i32, env: &Value, want_exit: i32, want_error: Option<&str>) {
    if let Err(p) = check_envelope(env) {
        panic!("{what}: {p}\n{env}");
    }
    assert_eq!(env["schema_version"], 1, "{what}");
    assert_eq!(code, want_exit, "{what}: {env}");
    match want_error {
        None => assert!(
            env["success"] == true && env["error"].is_null(),
            "{what}: {env}"
        ),
        Some(c) => assert_eq!(env["error"]["code"], c, "{what}: {env}"),
    }
}

#[test]
fn every_outcome_is_one_envelope_the_schema_accepts() {
    let dir = TempDir::new().unwrap();
    let cases: &[(&str, &[&str], i32, Option<&str>)] = &[
        (
            "success",
            &["--eval", "print('hi') return 1, {a = 2}"],
            0,
            None,
        ),
        (
            "success with a call",
            &[
                "--offline",
                "--eval",
                "return app.integrations.anthropic.list_models{limit = 1}.data[1].id",
            ],
            0,
            None,
        ),
        (
            "Lua error",
            &["--eval", "error('boom')"],
            1,
            Some("lua_error"),
        ),
        (
            "error table",
            &["--eval", "error({code = 'mine', message = 'custom'})"],
            1,
            Some("mine"),
        ),
        (
            "cpu limit",
            &[
                "--cpu-limit",
                "0.3",
                "--timeout",
                "120",
                "--eval",
                "while true do end",
            ],
            1,
            Some("limit_exceeded"),
        ),
        (
            "call limit",
            &[
                "--offline",
                "--max-calls",
                "1",
                "--eval",
                "for i = 1, 3 do app.integrations.anthropic.get_model('claude-sonnet-4-0') end",
            ],
            1,
            Some("limit_exceeded"),
        ),
        (
            "validation error",
            &[
                "--offline",
                "--eval",
                "return app.integrations.anthropic.list_models{limt = 1}",
            ],
            1,
            Some("validation_error"),
        ),
        (
            "api error",
            &[
                "--offline",
                "--eval",
                "return app.integrations.anthropic.get_message_batch{id = 'msgbatch_nope'}",
            ],
            1,
            Some("not_found_error"),
        ),
        (
            "unknown function",
            &[
                "--offline",
                "--eval",
                "return app.integrations.anthropic.list_modles{}",
            ],
            1,
            Some("unknown_function"),
        ),
        ("usage error (clap)", &["--bogus"], 2, Some("usage_error")),
        (
            "usage error (value)",
            &["--timeout", "soon", "--eval", "return 1"],
            2,
            Some("usage_error"),
        ),
        ("missing script", &["/nonexistent/workflow.lua"], 1, None),
    ];
    for (what, args, exit, error) in cases {
        let mut full = vec!["integrations:lua", "--json"];
        full.extend_from_slice(args);
        let (code, env) = run(&dir, &full);
        match error {
            None if *exit != 0 => {
                // Any failure code, but still the contract.
                check_envelope(&env).unwrap_or_else(|p| panic!("{what}: {p}\n{env}"));
                assert_eq!(code, *exit, "{what}: {env}");
                assert_eq!(env["success"], false);
            }
            _ => assert_contract(what, code, &env, *exit, *error),
        }
    }
    // `limit` names which limit.
    let (_, env) = run(
        &dir,
        &[
            "integrations:lua",
            "--json",
            "--cpu-limit",
            "0.3",
            "--timeout",
            "120",
            "--eval",
            "while true do end",
        ],
    );
    assert_eq!(env["error"]["limit"], "cpu");
    // mcp:lua prints the same envelope.
    let (code, env) = run(&dir, &["mcp:lua", "--json", "--eval", "return 1"]);
    assert_contract("mcp:lua", code, &env, 0, None);
}

#[test]
fn a_signal_ends_the_run_with_an_envelope() {
    let dir = TempDir::new().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kosmo"))
        .env("KOSMO_CONFIG_DIR", dir.path())
        .args([
            "integrations:lua",
            "--json",
            "--cpu-limit",
            "600",
            "--timeout",
            "600",
            "--eval",
            "while true do end",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_signal_handler(child.id(), 15);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let code = child.wait().unwrap().code().unwrap_or(-1);
    let env: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_contract("SIGTERM", code, &env, 143, Some("interrupted"));
    assert_eq!(env["error"]["signal"], "SIGTERM");
}

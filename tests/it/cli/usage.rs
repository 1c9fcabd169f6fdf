//! The `integrations:lua` command line: usage errors (exit 2 with an envelope) and the ways to
//! give code (`--eval`, a file, stdin, `-`) with extra script arguments.

use std::process::{Command, Stdio};

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::lua::{assert_fails, ok, run_in};
use crate::support::{Kosmo, kosmo};

#[test]
fn usage_errors_exit_2_with_an_envelope() {
    let dir = TempDir::new().unwrap();
    let bad: [&[&str]; 14] = [
        &["--memory-limit", "12Q"],
        &["--memory-limit", "-5"],
        &["--memory-limit", "0"],
        &["--memory-limit", "10"],
        &["--memory-limit", "99999999999T"],
        &["--cpu-limit", "-1"],
        &["--cpu-limit", "0"],
        &["--cpu-limit", "NaN"],
        &["--cpu-limit", "inf"],
        &["--timeout", "-3"],
        &["--timeout", "abc"],
        &["--timeout", "1e400"],
        &["--max-calls", "-1"],
        &["--max-calls", "1.5"],
    ];
    for flags in bad {
        let mut args = vec!["integrations:lua", "--eval", "return 1", "--json"];
        args.extend_from_slice(flags);
        let o = Kosmo::cmd(&args).dir(dir.path()).run();
        assert_eq!(o.code, 2, "{flags:?}: {}", o.show());
        assert_eq!(o.env["success"], false, "{flags:?}: {}", o.show());
        assert_eq!(o.err_code(), "usage_error", "{flags:?}");
        assert!(
            o.err_message().contains(flags[0]),
            "{flags:?}: {}",
            o.show()
        );
        // Text mode: same exit code, message on stderr.
        let o = Kosmo::cmd(&[&["integrations:lua", "--eval", "return 1"][..], flags].concat())
            .dir(dir.path())
            .run();
        assert_eq!(o.code, 2, "{flags:?}");
        assert!(o.stderr.contains(flags[0]), "{flags:?}: {}", o.show());
    }
    for good in [
        &["--memory-limit", "64m"][..],
        &["--memory-limit", "1.5G"][..],
        &["--memory-limit", "512K"][..],
        &["--cpu-limit", "0.5"][..],
        &["--timeout", "2.5"][..],
    ] {
        let mut args = vec!["--eval", "return 1"];
        args.extend_from_slice(good);
        let o = Kosmo::lua_args(&args).dir(dir.path()).run();
        assert_eq!(o.env["result"], json!([1]), "{good:?}: {}", o.show());
    }
    // A missing file is a failure with an envelope.
    let o = Kosmo::lua_args(&["/nonexistent/workflow.lua"])
        .dir(dir.path())
        .run();
    assert_eq!(o.code, 1);
    assert_eq!(o.err_code(), "io_error");
}

#[test]
fn code_from_stdin_and_file_forms() {
    let dir = TempDir::new().unwrap();
    let mut cmd = kosmo(dir.path());
    let out = cmd
        .args(["integrations:lua", "-", "--json"])
        .write_stdin("return 6 * 7")
        .output()
        .unwrap();
    let env: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(env["result"], json!([42]));
    let mut cmd = kosmo(dir.path());
    let out = cmd
        .args(["integrations:lua", "--json"])
        .write_stdin("return 'piped'")
        .output()
        .unwrap();
    let env: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(env["result"], json!(["piped"]));
    let o = Kosmo::lua_args(&["--eval", "x = "]).dir(dir.path()).run();
    assert_eq!(o.code, 1);
    assert!(o.err_message().contains("<eof>"), "{}", o.show());
}

#[test]
fn code_sources_and_extra_arguments() {
    let dir = TempDir::new().unwrap();
    // stdin at /dev/null: not code.
    let out = Command::new(env!("CARGO_BIN_EXE_kosmo"))
        .env("KOSMO_CONFIG_DIR", dir.path())
        .args(["integrations:lua", "--json"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let env: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(2), "{env}");
    assert_eq!(env["error"]["code"], "usage_error");
    assert!(
        env["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("no code: pass --eval CODE, a FILE, or pipe code on stdin"),
        "{env}"
    );
    // Extra positional arguments.
    std::fs::write(dir.path().join("a.lua"), "return 1").unwrap();
    let r = run_in(
        dir.path(),
        &["integrations:lua", "--json", "a.lua", "b", "c"],
        None,
    );
    assert_fails(&r, "usage_error");
    assert!(
        r.env["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'b' 'c'"),
        "{}",
        r.env
    );
    // A Latin-1 source file loads as bytes.
    std::fs::write(dir.path().join("latin1.lua"), b"return #'caf\xe9', 'ok'").unwrap();
    let r = run_in(
        dir.path(),
        &["integrations:lua", "--json", "latin1.lua"],
        None,
    );
    assert_eq!(ok(&r), &json!([4, "ok"]));
}

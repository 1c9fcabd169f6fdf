//! `manifests:check` (every problem, located, with did-you-mean and `--json`), a bad user
//! manifest skipped while the others keep working, and `manifests:test`.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::kosmo;

/// A small valid manifest whose functions all answer from the generic simulator.
const GOOD: &str = r#"name: echo
label: Echo
summary: A tiny test integration.
category: testing
base_url: http://127.0.0.1:9
credentials:
  token: {label: Token, header: authorization, scheme: Bearer, hint: "set ECHO_TOKEN", placeholder: "tok_test"}
groups: [{id: things, title: Things}]
functions:
  get_thing:
    group: things
    class: read
    summary: Get one thing.
    method: GET
    path: /things/{id}
    credential: token
    params:
      - {name: id, in: path, required: true, type: string}
    examples:
      - {title: Get one, args: {id: t_1}}
      - {title: Get another, args: {id: t_2}}
    simulator:
      response: {id: t_1, kind: thing}
"#;

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn check_json(file: &Path) -> (Option<i32>, Value) {
    let cfg = tempfile::tempdir().unwrap();
    let out = kosmo(cfg.path())
        .args(["manifests:check", "--json"])
        .arg(file)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), v)
}

/// (line, column, pointer, rule) of each problem, in order.
fn located(v: &Value) -> Vec<(u64, u64, String, String)> {
    v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["line"].as_u64().unwrap_or(0),
                p["column"].as_u64().unwrap_or(0),
                p["pointer"].as_str().unwrap_or("?").to_string(),
                p["rule"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect()
}

#[test]
fn three_problems_are_three_reports_with_lines_and_columns() {
    let dir = tempfile::tempdir().unwrap();
    // Line 12: `class: 7` (a wrong type), line 17: an unknown key, line 20: a bad enum value.
    let text = GOOD
        .replace("    class: read\n", "    class: 7\n")
        .replace(
            "    credential: token\n",
            "    credential: token\n    colour: blue\n",
        )
        .replace(
            "      - {name: id, in: path, required: true, type: string}\n",
            "      - {name: id, in: path, required: true, type: string}\n      - {name: q, in: nowhere}\n",
        );
    let file = write(dir.path(), "echo.yaml", &text);
    let (code, v) = check_json(&file);
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["success"], false);
    assert_eq!(
        located(&v),
        vec![
            (12, 12, "/functions/get_thing/class".into(), "schema".into()),
            (
                17,
                5,
                "/functions/get_thing/colour".into(),
                "unknown_key".into()
            ),
            (
                20,
                23,
                "/functions/get_thing/params/1/in".into(),
                "schema".into()
            ),
        ],
        "{v:#}"
    );
    // The text form says the same, one line each, file first.
    let cfg = tempfile::tempdir().unwrap();
    let out = kosmo(cfg.path())
        .arg("manifests:check")
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    for needle in [
        "echo.yaml: line 12 column 12: /functions/get_thing/class: ",
        "echo.yaml: line 17 column 5: /functions/get_thing/colour: unknown key `colour`",
        "echo.yaml: line 20 column 23: /functions/get_thing/params/1/in: ",
        "3 problem(s) in 1 file(s)",
    ] {
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    }
    assert!(!stderr.contains("more problem"), "{stderr}");
}

#[test]
fn lint_problems_are_all_reported_and_located() {
    let dir = tempfile::tempdir().unwrap();
    // Both lint rules broken at once: a GET marked write and a placeholder without a parameter.
    let text = GOOD
        .replace("class: read", "class: write")
        .replace("/things/{id}", "/things/{thing_id}");
    let file = write(dir.path(), "echo.yaml", &text);
    let (code, v) = check_json(&file);
    assert_eq!(code, Some(1));
    let msgs: Vec<&str> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["message"].as_str().unwrap())
        .collect();
    assert!(
        msgs.iter()
            .any(|m| m.contains("GET function cannot be class 'write'")),
        "{v:#}"
    );
    assert!(
        msgs.iter().any(|m| m.contains("placeholder '{thing_id}'")),
        "{v:#}"
    );
    let class = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pointer"] == "/functions/get_thing/class")
        .unwrap();
    assert_eq!(
        (class["line"].clone(), class["rule"].clone()),
        (json!(12), json!("lint"))
    );
}

#[test]
fn a_misspelt_key_gets_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let text = GOOD.replace(
        "    credential: token\n",
        "    credential: token\n    pagnation: {style: page}\n",
    );
    let file = write(dir.path(), "echo.yaml", &text);
    let (code, v) = check_json(&file);
    assert_eq!(code, Some(1));
    let p = &v["problems"][0];
    assert_eq!(p["pointer"], "/functions/get_thing/pagnation", "{v:#}");
    assert_eq!(p["rule"], "unknown_key");
    assert_eq!(
        (p["line"].clone(), p["column"].clone()),
        (json!(17), json!(5))
    );
    assert!(
        p["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `pagination`?"),
        "{p}"
    );
}

#[test]
fn a_duplicate_key_is_an_error_naming_both_lines() {
    let dir = tempfile::tempdir().unwrap();
    let text = GOOD.replace(
        "    summary: Get one thing.\n",
        "    summary: Get one thing.\n    summary: Get a thing.\n",
    );
    let file = write(dir.path(), "echo.yaml", &text);
    let (code, v) = check_json(&file);
    assert_eq!(code, Some(1), "{v:#}");
    let p = &v["problems"][0];
    assert_eq!(p["rule"], "duplicate_key", "{v:#}");
    assert_eq!(p["pointer"], "/functions/get_thing/summary");
    assert_eq!(
        (p["line"].clone(), p["column"].clone()),
        (json!(14), json!(5))
    );
    let msg = p["message"].as_str().unwrap();
    assert!(
        msg.contains("line 13") && msg.contains("line 14"),
        "both places: {msg}"
    );
}

#[test]
fn check_json_has_the_documented_shape() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "bad.yaml",
        &GOOD.replace("name: echo", "name: Echo!"),
    );
    write(
        dir.path(),
        "good.yaml",
        &GOOD.replace("name: echo", "name: echo2"),
    );
    let (code, v) = check_json(dir.path());
    assert_eq!(code, Some(1));
    assert_eq!(v["checked"].as_array().unwrap().len(), 2, "{v:#}");
    let problems = v["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{v:#}");
    let p = problems[0].as_object().unwrap();
    let mut keys: Vec<&str> = p.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["column", "file", "line", "message", "pointer", "rule"]
    );
    assert_eq!(p["file"], bad.display().to_string());
    assert_eq!(p["pointer"], "/name");
    assert_eq!(
        (p["line"].clone(), p["column"].clone()),
        (json!(1), json!(7))
    );
    // A clean file: success, exit 0, no problems.
    let (code, v) = check_json(&dir.path().join("good.yaml"));
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(v["success"], true);
    assert_eq!(v["problems"], json!([]));
}

#[test]
fn a_bad_user_manifest_is_skipped_and_the_others_keep_working() {
    let cfg = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "broken.yaml",
        &GOOD
            .replace("name: echo", "name: broken")
            .replace("class: read", "class: 7"),
    );
    write(dir.path(), "echo.yaml", GOOD);
    let out = kosmo(cfg.path())
        .env("KOSMO_MANIFEST_PATH", dir.path())
        .args([
            "integrations:lua",
            "--offline",
            "--json",
            "--eval",
            "return app.integrations.anthropic.get_model('claude-sonnet-4-0').type, \
             app.integrations.echo.get_thing{id = 't_1'}.kind, \
             app.integrations.broken == nil",
        ])
        .output()
        .unwrap();
    let env: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        env["result"],
        json!(["model", "thing", true]),
        "{env}\n{stderr}"
    );
    let warnings = env["meta"]["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{env}");
    let w = warnings[0].as_str().unwrap();
    assert!(
        w.contains("broken.yaml")
            && w.contains("line 12 column 12")
            && w.contains("/functions/get_thing/class"),
        "{w}"
    );
    assert!(
        stderr.contains("warning: skipped manifest") && stderr.contains("broken.yaml"),
        "{stderr}"
    );
    // No warning when nothing is skipped.
    let clean = tempfile::tempdir().unwrap();
    write(clean.path(), "echo.yaml", GOOD);
    let out = kosmo(cfg.path())
        .env("KOSMO_MANIFEST_PATH", clean.path())
        .args([
            "integrations:lua",
            "--offline",
            "--json",
            "--eval",
            "return app.integrations.echo ~= nil",
        ])
        .output()
        .unwrap();
    let env: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(env["meta"]["warnings"], json!([]), "{env}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("warning"));
    // A directory on the path that does not exist is skipped the same way.
    let missing = cfg.path().join("no-such-dir");
    let path = std::env::join_paths([missing.as_path(), clean.path()]).unwrap();
    let out = kosmo(cfg.path())
        .env("KOSMO_MANIFEST_PATH", &path)
        .args([
            "integrations:lua",
            "--json",
            "--eval",
            "return app.integrations.echo ~= nil",
        ])
        .output()
        .unwrap();
    let env: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(env["result"], json!([true]), "{env}");
    let w = env["meta"]["warnings"][0].as_str().unwrap_or("");
    assert!(
        w.starts_with("skipped manifest directory") && w.contains("no-such-dir"),
        "{env}"
    );
    // manifests:check still fails on the path's bad manifest, and names it.
    let out = kosmo(cfg.path())
        .env("KOSMO_MANIFEST_PATH", dir.path())
        .args(["manifests:check", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let files: Vec<&str> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["file"].as_str().unwrap())
        .collect();
    assert!(
        !files.is_empty() && files.iter().all(|f| f.ends_with("broken.yaml")),
        "{v:#}"
    );
}

fn test_json(path: &Path) -> (Option<i32>, Value) {
    let cfg = tempfile::tempdir().unwrap();
    let out = kosmo(cfg.path())
        .args(["manifests:test", "--json"])
        .arg(path)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), v)
}

#[test]
fn manifests_test_runs_every_example_against_the_simulator() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "echo.yaml", GOOD);
    let (code, v) = test_json(&file);
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(
        (v["passed"].clone(), v["failed"].clone()),
        (json!(2), json!(0))
    );
    let r = &v["results"][1];
    assert_eq!(r["function"], "get_thing");
    assert_eq!(r["example"], 1);
    assert_eq!(r["title"], "Get another");
    assert_eq!(r["status"], "pass");
    assert_eq!(r["http_status"], 200);
    // Text output: one verdict per example and a total.
    let cfg = tempfile::tempdir().unwrap();
    kosmo(cfg.path())
        .arg("manifests:test")
        .arg(dir.path())
        .assert()
        .success()
        .stdout(predicates::str::contains("PASS echo.get_thing #0 Get one"))
        .stdout(predicates::str::contains("2 passed, 0 failed, 0 skipped"));
}

#[test]
fn manifests_test_reports_a_failing_example_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    // The simulator answers this function with an error status: the example fails.
    let text = GOOD.replace(
        "      response: {id: t_1, kind: thing}\n",
        "      response: {error: {type: not_found_error, message: no such thing}}\n      status: 404\n",
    );
    let file = write(dir.path(), "echo.yaml", &text);
    let (code, v) = test_json(&file);
    assert_eq!(code, Some(1), "{v:#}");
    assert_eq!(v["success"], false);
    assert_eq!(v["failed"], 2, "{v:#}");
    let r = &v["results"][0];
    assert_eq!(r["status"], "fail");
    assert_eq!(r["http_status"], 404);
    assert!(
        r["message"].as_str().unwrap().contains("no such thing"),
        "{r}"
    );
    // A manifest that does not pass the check is a failure too, with its problems.
    let broken = write(
        dir.path(),
        "broken.yaml",
        &GOOD.replace("class: read", "class: 7"),
    );
    let (code, v) = test_json(&broken);
    assert_eq!(code, Some(1));
    assert_eq!(
        v["problems"][0]["pointer"], "/functions/get_thing/class",
        "{v:#}"
    );
    assert_eq!(v["results"], json!([]));
}

#[test]
fn the_builtin_manifest_examples_pass_manifests_test() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/anthropic.yaml");
    let (code, v) = test_json(&file);
    let failed: Vec<&Value> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "fail")
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
    assert_eq!(code, Some(0));
    assert!(v["passed"].as_u64().unwrap() >= 30, "{v:#}");
    // The unsupported function is skipped, not failed; so is the upload of a file not here.
    let skipped: Vec<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "skip")
        .map(|r| r["function"].as_str().unwrap())
        .collect();
    assert!(skipped.contains(&"list_messages"), "{skipped:?}");
}

#[test]
fn two_manifests_with_one_name_in_a_directory_are_refused() {
    let cfg = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/manifests/anthropic.yaml"
    ))
    .unwrap();
    std::fs::write(dir.path().join("a.yaml"), &text).unwrap();
    std::fs::write(
        dir.path().join("b.yaml"),
        text.replace("label: Anthropic (Claude)", "label: Other"),
    )
    .unwrap();
    let out = crate::support::kosmo(cfg.path())
        .arg("manifests:check")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("b.yaml: line ")
            && stderr.contains(": /name: integration 'anthropic' is also declared by"),
        "{stderr}"
    );
    // Loaded from the path, neither file wins by the accident of its name: both are skipped
    // with a warning, and the built-in stays.
    let out = crate::support::kosmo(cfg.path())
        .env("KOSMO_MANIFEST_PATH", dir.path())
        .args(["integrations:list", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("in the same directory"), "{stderr}");
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["providers"]["anthropic"]["source"], "built-in");
    let empty = tempfile::tempdir().unwrap();
    let out = crate::support::kosmo(cfg.path())
        .arg("manifests:check")
        .arg(empty.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "an empty directory is not a passing check"
    );
}

//! The foundation: the registry, schemas and manifest checks, through the real binary.

use predicates::prelude::*;
use serde_json::Value;

use crate::support::kosmo;

/// Every function name and alias on the seed page, with the required fields its schema must have.
const SEED_FUNCTIONS: &[(&str, &[&str])] = &[
    ("list_messages", &[]),
    ("create_message", &["model", "messages"]),
    ("count_message_tokens", &["model", "messages"]),
    ("create_message_batch", &["requests"]),
    ("list_message_batches", &[]),
    ("get_message_batch", &["id"]),
    ("cancel_message_batch", &["id"]),
    ("delete_message_batch", &["id"]),
    ("get_message_batch_results", &["id"]),
    ("list_models", &[]),
    ("get_model", &["id"]),
    ("list_files", &[]),
    ("get_file", &["id"]),
    ("delete_file", &["id"]),
    ("download_file", &["id"]),
    ("get_organization", &[]),
    ("get_current_user", &[]),
    ("get_organization_alias", &[]),
    ("list_workspaces", &[]),
    ("list_organization_workspaces", &[]),
    ("get_workspace", &["id"]),
    ("get_organization_workspace", &["id"]),
    ("list_users", &[]),
    ("get_user", &["id"]),
    ("update_user", &["id", "role"]),
    ("remove_user", &["id"]),
    ("list_api_keys", &[]),
    ("get_api_key", &["id"]),
    // Full names from the seed page's function table.
    ("anthropic_create_message", &["model", "messages"]),
    ("anthropic_list_workspaces", &[]),
    ("anthropic_get_workspace", &["id"]),
    ("anthropic_get_current_user", &[]),
];

fn schema_of(dir: &std::path::Path, name: &str) -> Value {
    let out = kosmo(dir)
        .args(["integrations:schema", &format!("anthropic.{name}")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn every_seed_function_and_alias_has_a_schema_with_its_required_fields() {
    let dir = tempfile::tempdir().unwrap();
    for (name, required) in SEED_FUNCTIONS {
        let schema = schema_of(dir.path(), name);
        assert_eq!(schema["type"], "object", "{name}");
        let got: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for r in *required {
            assert!(
                got.contains(r),
                "{name}: '{r}' should be required, got {got:?}"
            );
            assert!(
                schema["properties"][r].is_object(),
                "{name}: no property {r}"
            );
        }
    }
}

#[test]
fn schemas_carry_real_types_and_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let s = schema_of(dir.path(), "create_message");
    assert_eq!(s["properties"]["model"]["type"], "string");
    assert_eq!(s["properties"]["messages"]["type"], "array");
    assert_eq!(s["properties"]["max_tokens"]["type"], "integer");
    assert_eq!(s["properties"]["max_tokens"]["default"], 4096);
    assert_eq!(s["properties"]["stream"]["type"], "boolean");
    assert_eq!(
        s["additionalProperties"], true,
        "create_message passes unknown fields through"
    );
    let s = schema_of(dir.path(), "list_models");
    assert_eq!(s["properties"]["limit"]["type"], "integer");
    assert_eq!(s["properties"]["limit"]["maximum"], 1000);
    let s = schema_of(dir.path(), "list_workspaces");
    assert_eq!(s["properties"]["include_archived"]["type"], "boolean");
}

#[test]
fn unknown_function_fails_with_suggestions() {
    let dir = tempfile::tempdir().unwrap();
    kosmo(dir.path())
        .args(["integrations:schema", "anthropic.create_mesage"])
        .assert()
        .code(1)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains("create_message"));
    kosmo(dir.path())
        .args(["integrations:schema", "anthropic.create_mesage", "--json"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("unknown_function"))
        .stdout(predicate::str::contains("create_message"));
    kosmo(dir.path())
        .args(["integrations:schema", "nope.create_message", "--json"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("unknown_integration"));
}

#[test]
fn list_shows_builtin_integrations() {
    let dir = tempfile::tempdir().unwrap();
    let out = kosmo(dir.path())
        .args(["integrations:list", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let fns = v["providers"]["anthropic"]["functions"].as_array().unwrap();
    assert!(fns.len() >= 28, "only {} functions", fns.len());
    let cm = fns
        .iter()
        .find(|f| f["function"] == "create_message")
        .unwrap();
    assert_eq!(cm["operation"], "write");
    assert_eq!(cm["full_name"], "anthropic_create_message");
}

const ECHO: &str = r#"
name: echo
label: Echo
summary: A tiny second integration, to prove that adding one is dropping a file.
category: testing
base_url: http://127.0.0.1:9
credentials:
  token: {label: Token, header: authorization, scheme: Bearer, env: ECHO_TOKEN, hint: "set ECHO_TOKEN"}
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
      - {name: id, in: path, required: true, type: string, description: The thing.}
      - {name: verbose, in: query, type: boolean}
    examples:
      - {title: Get, args: {id: t_1}}
"#;

#[test]
fn a_manifest_dropped_on_the_path_shows_up_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = tempfile::tempdir().unwrap();
    std::fs::write(manifests.path().join("echo.yaml"), ECHO).unwrap();
    kosmo(dir.path())
        .env("KOSMO_MANIFEST_PATH", manifests.path())
        .args(["integrations:list"])
        .assert()
        .success()
        .stdout(predicate::str::contains("echo - Echo"))
        .stdout(predicate::str::contains("get_thing"))
        .stdout(predicate::str::contains("anthropic - Anthropic"));
    let out = kosmo(dir.path())
        .args(["--manifests"])
        .arg(manifests.path())
        .args(["integrations:schema", "echo.get_thing"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["required"], serde_json::json!(["id"]));
    assert_eq!(v["properties"]["verbose"]["type"], "boolean");
}

#[test]
fn a_user_manifest_replaces_the_builtin_one_of_the_same_name() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = tempfile::tempdir().unwrap();
    std::fs::write(
        manifests.path().join("anthropic.yaml"),
        ECHO.replace("name: echo", "name: anthropic"),
    )
    .unwrap();
    kosmo(dir.path())
        .env("KOSMO_MANIFEST_PATH", manifests.path())
        .args(["integrations:schema", "anthropic.get_thing"])
        .assert()
        .success();
}

/// Broken manifests, each with what the error must say.
fn broken_cases() -> Vec<(&'static str, String, &'static str)> {
    vec![
        (
            "unknown key",
            ECHO.replace("    class: read\n", "    class: read\n    colour: blue\n"),
            "/functions/get_thing",
        ),
        (
            "bad type",
            ECHO.replace("class: read", "class: 7"),
            "/functions/get_thing/class",
        ),
        (
            "broken placeholder",
            ECHO.replace("/things/{id}", "/things/{thing}"),
            "placeholder '{thing}'",
        ),
        (
            "duplicate alias",
            format!(
                "{ECHO}  other:\n    group: things\n    class: read\n    summary: Other.\n    method: GET\n    path: /o\n    credential: token\n    aliases: [get_thing]\n"
            ),
            "already used by function 'get_thing'",
        ),
        (
            "yaml syntax",
            ECHO.replace("groups: [{", "groups: [{{"),
            "line ",
        ),
        (
            "unknown credential",
            ECHO.replace("credential: token", "credential: nope"),
            "unknown credential type 'nope'",
        ),
        (
            "example that does not validate",
            ECHO.replace("args: {id: t_1}", "args: {verbose: yes}"),
            "/functions/get_thing/examples/0",
        ),
        (
            "get marked write",
            ECHO.replace("class: read", "class: write"),
            "GET function cannot be class 'write'",
        ),
        (
            "not a mapping",
            "- just\n- a list\n".to_string(),
            "echo.yaml: line 1 column 1: /: ",
        ),
        ("empty file", String::new(), "echo.yaml"),
    ]
}

#[test]
fn bad_manifests_are_refused_with_file_and_location() {
    let dir = tempfile::tempdir().unwrap();
    for (what, text, expected) in broken_cases() {
        let manifests = tempfile::tempdir().unwrap();
        let file = manifests.path().join("echo.yaml");
        std::fs::write(&file, &text).unwrap();
        let out = kosmo(dir.path())
            .arg("manifests:check")
            .arg(&file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
        assert!(
            stderr.contains("echo.yaml"),
            "{what}: names the file: {stderr}"
        );
        assert!(
            stderr.contains(expected),
            "{what}: expected {expected:?} in {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
        // Loaded as a user manifest it is skipped with a warning that names it, and the
        // other integrations keep working.
        let out = kosmo(dir.path())
            .env("KOSMO_MANIFEST_PATH", manifests.path())
            .args(["integrations:list", "--json"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{what}");
        let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(listed["providers"]["anthropic"].is_object(), "{what}");
        assert!(listed["providers"]["echo"].is_null(), "{what}");
        assert!(
            listed["warnings"][0]
                .as_str()
                .is_some_and(|w| w.contains("echo.yaml")),
            "{what}: {listed}"
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("warning: skipped manifest") && stderr.contains("echo.yaml"),
            "{what}: {stderr}"
        );
    }
}

#[test]
fn the_builtin_manifests_pass_their_own_check() {
    let dir = tempfile::tempdir().unwrap();
    kosmo(dir.path())
        .arg("manifests:check")
        .assert()
        .success()
        .stdout(predicate::str::contains("ok: 3 manifest(s) checked"));
    kosmo(dir.path())
        .arg("manifests:check")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/manifests"))
        .assert()
        .success();
}

#[test]
fn garbage_input_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = tempfile::tempdir().unwrap();
    let samples: &[&[u8]] = &[
        b"\xff\xfe\x00garbage",
        b"name: x\nfunctions: 7\n",
        b"{{{{",
        b"name: !!binary aGVsbG8=\n",
        b"a: &a [*a, *a]\n",
        b"functions:\n  f:\n    params: [{name: 1, in: nowhere}]\n",
    ];
    for (i, s) in samples.iter().enumerate() {
        let file = manifests.path().join(format!("g{i}.yaml"));
        std::fs::write(&file, s).unwrap();
        let out = kosmo(dir.path())
            .arg("manifests:check")
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "sample {i}");
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("panicked"),
            "sample {i}"
        );
    }
}

/// The README's main job: the offline tour runs end to end on a fresh config dir, with no key.
#[test]
fn the_readme_main_job_runs_offline() {
    let dir = tempfile::tempdir().unwrap();
    let tour = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/examples/tour.lua");
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(
        readme.contains(
            "cargo run --locked -- integrations:lua --offline --force docs/examples/tour.lua"
        ),
        "the README names the main job"
    );
    let out = kosmo(dir.path())
        .args(["integrations:lua", "--offline", "--force", "--json", tour])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["success"], true, "{v:#}");
    let output = v["output"].as_str().unwrap();
    for needle in [
        "== Models",
        "usage: ",
        "text deltas assembled into: ",
        "input_tokens: ",
        "ended: 2 succeeded, 0 errored",
        "ci-1 -> succeeded",
        "ci-2 -> succeeded",
    ] {
        assert!(output.contains(needle), "missing {needle:?} in:\n{output}");
    }
    assert!(
        v["result"][0]["batch"]
            .as_str()
            .unwrap()
            .starts_with("msgbatch_")
    );
    let calls = v["integration_calls"].as_array().unwrap();
    assert!(calls.iter().all(|c| c["status"] == "ok"), "{calls:#?}");
    assert!(
        calls
            .iter()
            .any(|c| c["function"] == "wait_for_message_batch")
    );
    assert_eq!(v["meta"]["offline"], true);
}

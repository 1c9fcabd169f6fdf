//! The docs commands through the real binary: page names and what an unknown one lists,
//! output formats, accounts in the docs, `docs:generate --check`, and every function's schema.

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::configure::configure_anthropic;
use crate::support::{Kosmo, kosmo, out};

const KEY: &str = "sk-ant-api03-QA3stdinSECRET0000";

#[test]
fn docs_names_resolve_and_unknown_pages_list_what_exists() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    let pages = [
        ("anthropic", "# Anthropic (Claude) - Lua API Reference"),
        (
            "integrations.anthropic",
            "# Anthropic (Claude) - Lua API Reference",
        ),
        (
            "app.integrations.anthropic",
            "# Anthropic (Claude) - Lua API Reference",
        ),
        ("anthropic.create_message", "# anthropic.create_message"),
        (
            "integrations.anthropic.create_message",
            "# anthropic.create_message",
        ),
        (
            "app.integrations.anthropic.create_message",
            "# anthropic.create_message",
        ),
        ("anthropic.get_current_user", "# anthropic.get_organization"),
        (
            "anthropic.get_organization_alias",
            "# anthropic.get_organization",
        ),
        (
            "anthropic.anthropic_get_current_user",
            "# anthropic.get_organization",
        ),
        (
            "anthropic.list_organization_workspaces",
            "# anthropic.list_workspaces",
        ),
        (
            "anthropic.anthropic_list_workspaces",
            "# anthropic.list_workspaces",
        ),
        (
            "anthropic.get_organization_workspace",
            "# anthropic.get_workspace",
        ),
        ("overview", "#"),
        ("errors", "#"),
        ("examples", "#"),
    ];
    for (page, head) in pages {
        let o = Kosmo::cmd(&["integrations:docs", page]).dir(d).run();
        assert_eq!(o.code, 0, "{page}: {}", o.show());
        assert!(o.stdout.starts_with(head), "{page}: {}", o.show());
        let o = Kosmo::lua_args(&[
            "--eval",
            &format!("return docs.read('{page}'):sub(1, {})", head.len()),
        ])
        .dir(d)
        .run();
        assert_eq!(
            o.env["result"],
            json!([head]),
            "docs.read({page}): {}",
            o.show()
        );
    }
    let o = Kosmo::lua_args(&[
        "--eval",
        "return lua_read_doc('integrations.anthropic'):sub(1, 11)",
    ])
    .dir(d)
    .run();
    assert_eq!(o.env["result"], json!(["# Anthropic"]));
    // Named accounts get a page once configured.
    let o = Kosmo::cmd(&[
        "integrations:configure",
        "anthropic",
        "--account",
        "work",
        "--set",
        "api_key=sk-ant-api03-x",
    ])
    .dir(d)
    .run();
    assert_eq!(o.code, 0);
    for page in [
        "anthropic.work",
        "integrations.anthropic.work",
        "app.integrations.anthropic.work",
    ] {
        let o = Kosmo::cmd(&["integrations:docs", page]).dir(d).run();
        assert!(
            o.stdout.contains("app.integrations[\"anthropic\"].work"),
            "{page}: {}",
            o.show()
        );
    }
    // Unknown pages fail and list what exists.
    let o = Kosmo::cmd(&["integrations:docs", "nosuchpage"])
        .dir(d)
        .run();
    assert_eq!(o.code, 1, "{}", o.show());
    assert!(o.stderr.contains("integrations.anthropic.create_message"));
    let o = Kosmo::lua_args(&["--eval", "return docs.read('anthropic.nosuch')"])
        .dir(d)
        .run();
    assert_eq!(o.err_code(), "unknown_page", "{}", o.show());
    let o = Kosmo::lua_args(&["--eval", "return docs.search('batch', 2)"])
        .dir(d)
        .run();
    let hits = o.env["result"][0].as_array().unwrap();
    assert_eq!(hits.len(), 2);
    assert!(
        hits.iter()
            .all(|h| h["page"].as_str().unwrap().contains("batch"))
    );
    for format in ["markdown", "text", "json"] {
        let o = Kosmo::cmd(&[
            "integrations:docs",
            "anthropic.get_model",
            "--format",
            format,
        ])
        .dir(d)
        .run();
        assert_eq!(o.code, 0, "{format}: {}", o.show());
        assert!(o.stdout.to_lowercase().contains("get_model"));
    }
}

#[test]
fn docs_formats_accounts_and_generate_check() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    for (fmt, needle) in [
        ("markdown", "# anthropic.get_organization"),
        ("text", "ANTHROPIC.GET_ORGANIZATION"),
    ] {
        let o = kosmo(d)
            .args([
                "integrations:docs",
                "anthropic.get_current_user",
                "--format",
                fmt,
            ])
            .output()
            .unwrap();
        let (code, stdout, _) = out(&o);
        assert!(code == 0 && stdout.starts_with(needle), "{fmt}: {stdout}");
    }
    let o = kosmo(d)
        .args([
            "integrations:docs",
            "app.integrations.anthropic.get_organization_alias",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["page"], "integrations.anthropic.get_organization");
    let o = kosmo(d)
        .args(["integrations:docs", "nosuch.page", "--format", "json"])
        .output()
        .unwrap();
    let (code, stdout, _) = out(&o);
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        (code, &v["error"]["code"]),
        (1, &Value::from("unknown_page"))
    );
    assert_eq!(
        kosmo(d)
            .args(["integrations:docs", "--format", "xml"])
            .output()
            .unwrap()
            .status
            .code(),
        Some(2)
    );
    // An account page exists once configured.
    configure_anthropic(
        d,
        &["--account", "work", "--set", &format!("api_key={KEY}")],
        "",
    );
    let o = kosmo(d)
        .args(["integrations:docs", "integrations.anthropic.work"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("app.integrations[\"anthropic\"].work"));

    // docs:generate into a fresh directory, then --check: clean, then stale both ways.
    let ref_dir = d.join("fresh/ref");
    let generate = |check: bool| {
        let mut c = kosmo(d);
        c.args(["docs:generate", "--out"]).arg(&ref_dir);
        if check {
            c.arg("--check");
        }
        out(&c.output().unwrap())
    };
    assert_eq!(generate(false).0, 0);
    assert!(
        ref_dir.join("kosmo.lua").exists() && ref_dir.join("anthropic/create_message.md").exists()
    );
    assert_eq!(generate(true).0, 0);
    std::fs::write(ref_dir.join("extra.md"), "x").unwrap();
    let (code, _, stderr) = generate(true);
    assert_eq!(code, 1);
    assert!(stderr.contains("extra.md"), "{stderr}");
}

#[test]
fn every_schema_is_a_valid_draft_2020_12_schema() {
    let dir = TempDir::new().unwrap();
    let o = kosmo(dir.path())
        .args(["integrations:list", "--json"])
        .output()
        .unwrap();
    let list: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list["success"], true);
    let fns = list["providers"]["anthropic"]["functions"]
        .as_array()
        .unwrap();
    assert!(fns.len() >= 40);
    for f in fns {
        for key in [
            "function",
            "name",
            "full_name",
            "aliases",
            "group",
            "operation",
            "credential",
        ] {
            assert!(f.get(key).is_some(), "{key} missing in {f}");
        }
        let name = f["name"].as_str().unwrap();
        let o = kosmo(dir.path())
            .args(["integrations:schema", name])
            .output()
            .unwrap();
        let schema: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{name}"
        );
        assert!(
            jsonschema::meta::is_valid(&schema),
            "{name}: not a valid schema"
        );
    }
}

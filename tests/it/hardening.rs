//! Fixes from the second QA round, pinned through the real binary.

use serde_json::Value;

use crate::support::kosmo;

fn run(dir: &std::path::Path, allow: &std::path::Path, code: &str) -> Value {
    let out = kosmo(dir)
        .args([
            "integrations:lua",
            "--offline",
            "--force",
            "--json",
            "--allow-path",
        ])
        .arg(allow)
        .args(["--eval", code])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn save_to_replaces_a_planted_symlink_instead_of_writing_through_it() {
    let cfg = tempfile::tempdir().unwrap();
    let allowed = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    std::fs::write(&victim, "original").unwrap();
    let link = allowed.path().join("evil");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    // The old temp name, in case anything still uses it.
    std::os::unix::fs::symlink(&victim, allowed.path().join("evil.part")).unwrap();
    let code = format!(
        r#"return app.integrations.anthropic.download_file{{id = "file_011downloadable", save_to = "{}"}}"#,
        link.display()
    );
    let v = run(cfg.path(), allowed.path(), &code);
    // Whether the sandbox refuses the link or the write replaces it, the outside file is intact.
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "original",
        "{v:#}"
    );
    if v["success"] == true {
        assert!(
            !std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    } else {
        assert_eq!(v["error"]["code"], "permission_denied", "{v:#}");
    }
}

#[test]
fn save_to_a_directory_is_refused_before_anything_is_written() {
    let cfg = tempfile::tempdir().unwrap();
    let allowed = tempfile::tempdir().unwrap();
    let code = format!(
        r#"return app.integrations.anthropic.download_file{{id = "file_011downloadable", save_to = "{}/"}}"#,
        allowed.path().display()
    );
    let v = run(cfg.path(), allowed.path(), &code);
    assert_eq!(v["success"], false, "{v:#}");
    assert_eq!(v["error"]["code"], "validation_error", "{v:#}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("must name a file"),
        "{v:#}"
    );
    let left: Vec<_> = std::fs::read_dir(allowed.path()).unwrap().collect();
    assert!(left.is_empty(), "nothing left behind: {left:?}");
}

#[test]
fn a_file_saved_in_an_allowed_dir_has_the_body_and_no_temp_file_stays() {
    let cfg = tempfile::tempdir().unwrap();
    let allowed = tempfile::tempdir().unwrap();
    let target = allowed.path().join("out.bin");
    let code = format!(
        r#"return app.integrations.anthropic.download_file{{id = "file_011downloadable", save_to = "{}"}}"#,
        target.display()
    );
    let v = run(cfg.path(), allowed.path(), &code);
    assert_eq!(v["success"], true, "{v:#}");
    let size = std::fs::metadata(&target).unwrap().len();
    assert!(size > 0);
    assert_eq!(v["result"][0]["size_bytes"], size);
    let names: Vec<String> = std::fs::read_dir(allowed.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["out.bin"]);
}

#[test]
fn empty_lua_tables_are_sent_as_empty_arrays_where_the_schema_wants_one() {
    let cfg = tempfile::tempdir().unwrap();
    let out = kosmo(cfg.path())
        .args(["integrations:lua", "--json", "--dry-run", "--eval"])
        .arg(
            r#"return app.integrations.anthropic.create_message{
                model = "claude-sonnet-4-20250514", max_tokens = 4.0 * 4, betas = {},
                stop_sequences = {}, messages = {{role = "user", content = "hi"}}}"#,
        )
        .env("ANTHROPIC_API_KEY", "sk-ant-api03-test")
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["success"], true, "{v:#}");
    let body = &v["result"][0]["body"];
    assert_eq!(body["stop_sequences"], serde_json::json!([]), "{v:#}");
    assert_eq!(body["max_tokens"], serde_json::json!(16), "{v:#}");
    assert!(body["max_tokens"].is_u64(), "an integer on the wire: {v:#}");
    assert!(body.get("betas").is_none(), "betas go in the header: {v:#}");
}

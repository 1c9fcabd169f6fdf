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
    let out = kosmo(cfg.path())
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
    let out = kosmo(cfg.path())
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
    let out = kosmo(cfg.path())
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

#[test]
fn configure_refuses_a_url_that_cannot_work_and_keeps_new_dirs_private() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let cfg = root.path().join("new/cfg");
    for bad in ["not-a-url", "ftp://x", "http://"] {
        let out = kosmo(&cfg)
            .args(["integrations:configure", "anthropic", "--set"])
            .arg(format!("url={bad}"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
    }
    kosmo(&cfg)
        .args([
            "integrations:configure",
            "anthropic",
            "--set",
            "url=http://127.0.0.1:9",
        ])
        .assert()
        .success();
    let mode = std::fs::metadata(&cfg).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "config dir mode {mode:o}");
    let mode = std::fs::metadata(cfg.join("credentials.yaml"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
}

/// A server that echoes the request's headers back in a 200 body, or the key minus its last four
/// characters in an error: neither the key nor any 8-character fragment of its random part
/// reaches stdout or stderr (the envelope, `dump`, the error).
#[test]
fn secrets_echoed_by_a_server_whole_or_in_fragments_never_reach_the_output() {
    use std::io::{Read, Write};
    const KEY: &str = "sk-ant-api03-Q7fR2kL9pX4mN8vB1cZ6wE3tY5uI0oHgJdSaKlMnBvCxZ";
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { return };
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && c.read(&mut b).unwrap_or(0) == 1 {
                head.push(b[0]);
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let (status, body) = if head.starts_with("GET /v1/models/") {
                let minus4 = &KEY[..KEY.len() - 4];
                (
                    "400 Bad Request",
                    serde_json::json!({"type": "error", "error": {"type": "invalid_request_error",
                        "message": format!("bad key {minus4} (half: {})", &KEY[30..])}})
                    .to_string(),
                )
            } else {
                let headers: Vec<&str> = head.lines().skip(1).collect();
                (
                    "200 OK",
                    serde_json::json!({"data": [], "has_more": false, "echo": headers,
                        "url": "http:/admin:Pass word\"1@internal/x"})
                    .to_string(),
                )
            };
            let _ = c.write_all(
                format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    let cfg = tempfile::tempdir().unwrap();
    let out = kosmo(cfg.path())
        .env("ANTHROPIC_API_KEY", KEY)
        .env("ANTHROPIC_BASE_URL", &url)
        .args(["integrations:lua", "--json", "--eval"])
        .arg(
            r#"local r = app.integrations.anthropic.list_models{}
dump(r)
print(json.encode(r.echo))
local ok, e = pcall(app.integrations.anthropic.get_model, {id = "x"})
print(e.message)
return r, e"#,
        )
        .write_stdin(Vec::new())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("{stdout}"));
    assert_eq!(v["success"], true, "{v:#}");
    // The header really was echoed (redacted), and the error really was the server's.
    let echoed = v["result"][0]["echo"].as_array().unwrap();
    assert!(
        echoed
            .iter()
            .any(|h| h.as_str().unwrap().ends_with(": Bearer [redacted]")
                || h.as_str().unwrap().ends_with("x-api-key: [redacted]")),
        "{stdout}"
    );
    assert_eq!(v["result"][1]["code"], "invalid_request_error", "{v:#}");
    assert!(stdout.contains("bad key [redacted]"), "{stdout}");
    assert!(!stdout.contains("Pass word"), "{stdout}");
    let random = &KEY["sk-ant-api03-".len()..];
    for i in 0..=random.len() - 8 {
        let frag = &random[i..i + 8];
        assert!(
            !stdout.contains(frag),
            "fragment {frag} in stdout: {stdout}"
        );
        assert!(
            !stderr.contains(frag),
            "fragment {frag} in stderr: {stderr}"
        );
    }
}

//! Local file access from scripts: none by default; `--allow-path` opens only its directory.

use std::path::Path;

use serde_json::json;
use tempfile::TempDir;

use super::{assert_fails, last_call, ok};
use crate::support::Kosmo;

fn lua_str(p: &Path) -> String {
    format!("{:?}", p.to_str().unwrap())
}

#[test]
fn scripts_have_no_local_file_access_by_default() {
    let dir = TempDir::new().unwrap();
    let outside = TempDir::new().unwrap();
    let victim = outside.path().join("victim.txt");
    std::fs::write(&victim, "keep me").unwrap();
    let new_file = outside.path().join("new.bin");
    let attempts = [
        format!(
            "return app.integrations.anthropic.download_file{{id = 'file_011downloadable', save_to = {}}}",
            lua_str(&victim)
        ),
        format!(
            "return app.integrations.anthropic.download_file{{id = 'file_011downloadable', save_to = {}}}",
            lua_str(&new_file)
        ),
        "return app.integrations.anthropic.upload_file{file = '/etc/passwd'}".to_string(),
        "return app.integrations.anthropic.upload_file{file = {path = '/proc/self/environ'}}"
            .to_string(),
        "return app.integrations.anthropic.upload_file{file = 'notes.txt'}".to_string(),
    ];
    std::fs::write(dir.path().join("notes.txt"), "hi").unwrap();
    for code in &attempts {
        let r = Kosmo::lua(code)
            .offline()
            .flags(&["--force"])
            .dir(dir.path())
            .run();
        assert_fails(&r, "permission_denied");
        let msg = r.env["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains("local file access is off in the sandbox: pass --allow-path DIR"),
            "{msg}"
        );
        let call = last_call(&r);
        assert_eq!(call["status"], "error", "{call}");
        assert_eq!(call["error"]["code"], "permission_denied", "{call}");
        assert!(!r.stdout.contains("ANTHROPIC"), "{}", r.stdout);
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
    assert!(!new_file.exists());
}

#[test]
fn allow_path_allows_only_its_directory() {
    let dir = TempDir::new().unwrap();
    let allowed = dir.path().join("work");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&allowed).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(allowed.join("notes.txt"), "hello").unwrap();
    std::fs::write(outside.join("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(outside.join("secret.txt"), allowed.join("link.txt")).unwrap();
    std::os::unix::fs::symlink(&outside, allowed.join("out")).unwrap();
    let allow = allowed.to_str().unwrap();
    // Inside: an upload by absolute and by relative path (the working directory is `dir`).
    let r = Kosmo::lua(&format!(
            "local a = app.integrations.anthropic.upload_file{{file = {}}} \
             local b = app.integrations.anthropic.upload_file{{file = {{path = 'work/notes.txt'}}}} \
             return a.filename, b.size_bytes",
            lua_str(&allowed.join("notes.txt"))
        )).offline().flags(&["--force", "--allow-path", allow]).dir(dir.path()).run();
    assert_eq!(ok(&r), &json!(["notes.txt", 5]));
    // Escapes: absolute, `..`, symlinks to a file and through a directory, /proc.
    let escapes = [
        format!("{{file = {}}}", lua_str(&outside.join("secret.txt"))),
        "{file = 'work/../outside/secret.txt'}".to_string(),
        format!(
            "{{file = {}}}",
            lua_str(&allowed.join("../outside/secret.txt"))
        ),
        format!("{{file = {}}}", lua_str(&allowed.join("link.txt"))),
        format!(
            "{{file = {{path = {}}}}}",
            lua_str(&allowed.join("out/secret.txt"))
        ),
        "{file = {path = '/proc/self/environ'}}".to_string(),
    ];
    for args in &escapes {
        let r = Kosmo::lua(&format!(
            "return app.integrations.anthropic.upload_file{args}"
        ))
        .offline()
        .flags(&["--force", "--allow-path", allow])
        .dir(dir.path())
        .run();
        assert_fails(&r, "permission_denied");
        assert!(
            r.env["error"]["message"]
                .as_str()
                .unwrap()
                .contains("outside the allowed paths"),
            "{args}: {}",
            r.env["error"]
        );
        assert_eq!(last_call(&r)["error"]["code"], "permission_denied");
    }
    // save_to over an existing file outside, through `..` and through a symlinked directory.
    for target in [
        allowed.join("../outside/secret.txt"),
        allowed.join("out/secret.txt"),
        allowed.join("link.txt"),
        allowed.join("out/new.bin"),
    ] {
        let r = Kosmo::lua(&format!(
                "return app.integrations.anthropic.download_file{{id = 'file_011downloadable', save_to = {}}}",
                lua_str(&target)
            )).offline().flags(&["--allow-path", allow]).dir(dir.path()).run();
        assert_fails(&r, "permission_denied");
    }
    assert_eq!(
        std::fs::read_to_string(outside.join("secret.txt")).unwrap(),
        "secret"
    );
    assert!(!outside.join("new.bin").exists());
    // Inside the allowed directory save_to works, and --read-only refuses it there too.
    let save = format!(
        "return app.integrations.anthropic.download_file{{id = 'file_011downloadable', save_to = {}}}.size_bytes",
        lua_str(&allowed.join("out.bin"))
    );
    let r = Kosmo::lua(&save)
        .offline()
        .flags(&["--allow-path", allow])
        .dir(dir.path())
        .run();
    assert!(ok(&r)[0].as_u64().unwrap() > 0, "{}", r.env);
    assert!(allowed.join("out.bin").exists());
    std::fs::remove_file(allowed.join("out.bin")).unwrap();
    let r = Kosmo::lua(&save)
        .offline()
        .flags(&["--allow-path", allow, "--read-only"])
        .dir(dir.path())
        .run();
    assert_fails(&r, "permission_denied");
    assert!(
        r.env["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--read-only"),
        "{}",
        r.env["error"]
    );
    assert!(!allowed.join("out.bin").exists());
    // A directory that does not exist is a usage error, not a silent "allow nothing".
    let r = Kosmo::lua("return 1")
        .offline()
        .flags(&["--allow-path", "/nonexistent/dir"])
        .dir(dir.path())
        .run();
    assert_fails(&r, "usage_error");
    assert!(
        r.env["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--allow-path")
    );
}

fn run_allowed(dir: &std::path::Path, allow: &std::path::Path, code: &str) -> serde_json::Value {
    let out = crate::support::kosmo(dir)
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
    let v = run_allowed(cfg.path(), allowed.path(), &code);
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
    let v = run_allowed(cfg.path(), allowed.path(), &code);
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
    let v = run_allowed(cfg.path(), allowed.path(), &code);
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

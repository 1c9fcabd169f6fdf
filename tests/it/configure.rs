//! `integrations:configure` as a provisioning script uses it: concurrent runs, secrets from
//! standard input, and mistakes that must not echo a secret.

use tempfile::TempDir;

use crate::support::kosmo;

const KEY: &str = "sk-ant-api03-configure-test-secret-0123456789abcdef";

fn credentials(dir: &TempDir) -> String {
    std::fs::read_to_string(dir.path().join("credentials.yaml")).unwrap_or_default()
}

#[test]
fn concurrent_runs_keep_every_account() {
    let dir = TempDir::new().unwrap();
    let bin = assert_cmd::cargo::cargo_bin("kosmo");
    let children: Vec<_> = (0..10)
        .map(|i| {
            std::process::Command::new(&bin)
                .env("KOSMO_CONFIG_DIR", dir.path())
                .env("HOME", dir.path())
                .args([
                    "integrations:configure",
                    "anthropic",
                    "--account",
                    &format!("acct{i}"),
                    "--set",
                    &format!("api_key_env=KEY_{i}"),
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let file = credentials(&dir);
    for i in 0..10 {
        assert!(
            file.contains(&format!("acct{i}:")) && file.contains(&format!("KEY_{i}")),
            "account acct{i} lost:\n{file}"
        );
    }
}

#[test]
fn set_stdin_reads_the_secret_and_never_shows_it() {
    let dir = TempDir::new().unwrap();
    let out = kosmo(dir.path())
        .args([
            "integrations:configure",
            "anthropic",
            "--account",
            "ci",
            "--set-stdin",
            "api_key",
            "--json",
        ])
        .write_stdin(format!("{KEY}\n"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains(KEY), "{stdout}");
    assert!(stdout.contains("[set]"), "{stdout}");
    assert!(credentials(&dir).contains(KEY));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("credentials.yaml"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn a_mistyped_set_never_repeats_the_secret() {
    let dir = TempDir::new().unwrap();
    for arg in [format!("api_key:{KEY}"), format!("{KEY}=x")] {
        let out = kosmo(dir.path())
            .args([
                "integrations:configure",
                "anthropic",
                "--set",
                &arg,
                "--json",
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains(&KEY[..12]), "secret echoed: {all}");
        assert!(
            all.contains("api_key"),
            "the error should list the known keys: {all}"
        );
    }
}

#[test]
fn accounts_show_where_credentials_come_from_and_never_a_secret() {
    let dir = TempDir::new().unwrap();
    let ok = |args: &[&str], stdin: &str| {
        let out = kosmo(dir.path())
            .args(args)
            .write_stdin(stdin.to_string())
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        out
    };
    ok(
        &[
            "integrations:configure",
            "anthropic",
            "--account",
            "work",
            "--set-stdin",
            "api_key",
        ],
        &format!("{KEY}\n"),
    );
    ok(
        &[
            "integrations:configure",
            "anthropic",
            "--account",
            "work",
            "--set",
            "admin_key_cmd=echo sk-ant-admin01-from-helper",
            "--write",
            "allow",
        ],
        "",
    );
    ok(
        &[
            "integrations:configure",
            "anthropic",
            "--account",
            "ci",
            "--set",
            "api_key_env=KOSMO_TEST_UNSET_VAR",
            "--set",
            "url=https://user:hunter2pw@gw.example.com",
        ],
        "",
    );
    let out = kosmo(dir.path())
        .env("ANTHROPIC_API_KEY", "sk-ant-api03-from-the-environment-xyz")
        .args(["integrations:accounts", "anthropic", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    for secret in [
        &KEY[..16],
        "from-helper",
        "from-the-environment",
        "hunter2pw",
    ] {
        assert!(!text.contains(secret), "{secret} shown: {text}");
    }
    let env: serde_json::Value = serde_json::from_str(&text).unwrap();
    let accounts = env["result"].as_array().unwrap();
    let find = |name: &str| {
        accounts
            .iter()
            .find(|a| a["account"] == name)
            .unwrap_or_else(|| panic!("no account {name}: {text}"))
    };
    let cred = |a: &serde_json::Value, c: &str| {
        a["credentials"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == c)
            .unwrap()["state"]
            .clone()
    };
    assert_eq!(cred(find("default"), "api_key"), "env");
    assert_eq!(cred(find("default"), "admin_key"), "missing");
    assert_eq!(cred(find("work"), "api_key"), "set");
    assert_eq!(cred(find("work"), "admin_key"), "command");
    assert_eq!(find("work")["permissions"]["write"], "allow");
    assert_eq!(find("default")["permissions"]["write"], "ask");
    assert_eq!(cred(find("ci"), "api_key"), "missing");
    assert_eq!(find("ci")["base_url_source"], "configured");
    assert!(
        find("ci")["base_url"]
            .as_str()
            .unwrap()
            .contains("[redacted]")
    );
}

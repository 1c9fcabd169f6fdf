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

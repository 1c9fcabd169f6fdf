//! Named accounts end to end: environment overrides of the default account, `<cred>_env` and
//! `<cred>_cmd` indirections, and `integrations:configure` through the real binary.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use indexmap::IndexMap;
use kosmo::credentials::{CredentialFile, Credentials, EnvSource};
use kosmo::exec::{Call, Executor};
use serde_json::{Value, json};

use super::server::{self, Action};
use super::{SECRET, fast_config, fixture_registry};
use crate::support::kosmo;

fn account(fields: &[(&str, &str)]) -> IndexMap<String, String> {
    fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn environment_overrides_the_default_account_only() {
    let srv = server::start(vec![Action::json(200, "{}")]).await;
    let mut file = CredentialFile::new();
    file.insert(
        "fx".into(),
        IndexMap::from([
            (
                "default".to_string(),
                account(&[("api_key", "sk-from-file"), ("url", "http://127.0.0.1:1")]),
            ),
            (
                "work".to_string(),
                account(&[("api_key_env", "WORK_KEY"), ("url", &srv.url)]),
            ),
            (
                "helper".to_string(),
                account(&[
                    ("api_key_cmd", "printf 'sk-from-cmd\\n'"),
                    ("url", &srv.url),
                ]),
            ),
        ]),
    );
    let env = EnvSource::fixed(HashMap::from([
        ("FX_API_KEY".to_string(), SECRET.to_string()),
        ("FX_BASE_URL".to_string(), format!("{}/v1/", srv.url)),
        ("WORK_KEY".to_string(), "sk-work-key".to_string()),
    ]));
    let creds = Credentials::from_entries(PathBuf::new(), file).with_env(env);
    let ex = Executor::new(fixture_registry(), Arc::new(creds), fast_config()).unwrap();
    for acct in [None, Some("work"), Some("helper")] {
        let out = ex
            .call(Call {
                account: acct,
                ..Call::new("fx", "get_thing", json!({"id": "a"}))
            })
            .await
            .unwrap();
        assert_eq!(out.account, acct.unwrap_or("default"));
    }
    let keys: Vec<String> = srv
        .requests()
        .iter()
        .map(|r| r.header("x-api-key").unwrap().to_string())
        .collect();
    assert_eq!(keys, [SECRET, "sk-work-key", "sk-from-cmd"]);
}

#[tokio::test]
async fn missing_env_indirection_is_a_missing_credential() {
    let mut file = CredentialFile::new();
    file.insert(
        "fx".into(),
        IndexMap::from([(
            "work".to_string(),
            account(&[("api_key_env", "NOPE_NOT_SET")]),
        )]),
    );
    let creds =
        Credentials::from_entries(PathBuf::new(), file).with_env(EnvSource::fixed(HashMap::new()));
    let ex = Executor::new(fixture_registry(), Arc::new(creds), fast_config()).unwrap();
    let e = ex
        .call(Call {
            account: Some("work"),
            ..Call::new("fx", "get_thing", json!({"id": "a"}))
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), "missing_credential");
    let msg = e.to_string();
    assert!(msg.contains("fx account 'work' has no api_key"), "{msg}");
    assert!(msg.contains("NOPE_NOT_SET"), "{msg}");
    assert!(
        msg.contains("integrations:configure fx --account work"),
        "{msg}"
    );
}

#[test]
fn configure_writes_private_files_and_never_echoes_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "sk-ant-api03-CONFIGURESECRET-42";
    let out = kosmo(dir.path())
        .args([
            "integrations:configure",
            "anthropic",
            "--set",
            &format!("api_key={secret}"),
            "--set",
            "url=http://127.0.0.1:9/v1",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stdout.contains("CONFIGURESECRET") && !stderr.contains("CONFIGURESECRET"),
        "{stdout}{stderr}"
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["success"], true);
    assert_eq!(
        v["result"]["fields"],
        json!({"api_key": "[set]", "url": "http://127.0.0.1:9/v1"})
    );
    let cred_path = dir.path().join("credentials.yaml");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&cred_path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    // A secret from stdin, for a named account; setting an indirection replaces a direct value.
    let out = kosmo(dir.path())
        .args([
            "integrations:configure",
            "anthropic",
            "--account",
            "work",
            "--set",
            "admin_key=-",
            "--set",
            "api_key_env=WORK_KEY",
        ])
        .write_stdin("sk-ant-admin01-STDINSECRET\n")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("STDINSECRET"));
    let creds = Credentials::load(Some(dir.path().to_path_buf())).unwrap();
    assert_eq!(creds.accounts("anthropic"), ["default", "work"]);
    let m = &kosmo::registry::Registry::builtin()
        .unwrap()
        .require("anthropic")
        .unwrap()
        .manifest
        .clone();
    let work = creds.clone().with_env(EnvSource::fixed(HashMap::from([(
        "WORK_KEY".to_string(),
        "sk-ant-api03-w".to_string(),
    )])));
    let a = work.resolve(m, "work").unwrap();
    assert_eq!(
        a.secrets["admin_key"].expose(),
        "sk-ant-admin01-STDINSECRET"
    );
    assert_eq!(a.secrets["api_key"].expose(), "sk-ant-api03-w");
    let d = work.resolve(m, "default").unwrap();
    assert_eq!(d.secrets["api_key"].expose(), secret);
    assert_eq!(d.base_url, "http://127.0.0.1:9");

    // Permissions go to config.yaml: the integration's for default, an override for others.
    let out = kosmo(dir.path())
        .args([
            "integrations:configure",
            "anthropic",
            "--write",
            "ask",
            "--read",
            "allow",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = kosmo(dir.path())
        .args([
            "integrations:configure",
            "anthropic",
            "--account",
            "work",
            "--write",
            "allow",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let config: Value = serde_yaml_value(&dir.path().join("config.yaml"));
    assert_eq!(
        config["integrations"]["anthropic"]["permissions"],
        json!({"write": "ask", "read": "allow"})
    );
    assert_eq!(
        config["integrations"]["anthropic"]["accounts"]["work"]["permissions"],
        json!({"write": "allow"})
    );

    // Refusals: unknown field, bad policy.
    let out = kosmo(dir.path())
        .args(["integrations:configure", "anthropic", "--set", "apikey=x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field 'apikey'"));
    let out = kosmo(dir.path())
        .args([
            "integrations:configure",
            "anthropic",
            "--write",
            "sometimes",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    // A group-readable secrets file gets a warning.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cred_path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let out = kosmo(dir.path())
            .args(["integrations:configure", "anthropic", "--unset", "url"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("readable by group or others"), "{stderr}");
        assert_eq!(
            std::fs::metadata(&cred_path).unwrap().permissions().mode() & 0o777,
            0o600,
            "rewritten private"
        );
    }
}

fn serde_yaml_value(path: &std::path::Path) -> Value {
    // The http section (absent here) must not stop the executor's config from loading.
    kosmo::exec::ExecConfig::load(path.parent().unwrap()).unwrap();
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

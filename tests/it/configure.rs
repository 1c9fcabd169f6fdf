//! `integrations:configure` as a provisioning script uses it: concurrent runs, secrets from
//! standard input, and mistakes that must not echo a secret.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tempfile::TempDir;

use serde_json::{Value, json};

use crate::support::{Kosmo, Sim, as_refs, kosmo, sim_env};

const KEY: &str = "sk-ant-api03-configure-test-secret-0123456789abcdef";
const API_KEY: &str = "sk-ant-api03-QAACCEPTANCEapi0000SECRET";
const ADMIN_KEY: &str = "sk-ant-admin01-QAACCEPTANCEadmin000SECRET";
const WORK_KEY: &str = "sk-ant-api03-QAACCEPTANCEwork0000SECRET";

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

/// Run `integrations:doctor ... --json` and return (exit code, envelope).
fn doctor(dir: &TempDir, env: &[(&str, &str)], args: &[&str]) -> (i32, serde_json::Value, String) {
    let mut cmd = kosmo(dir.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .args(["integrations:doctor", "--json"])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let env: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("doctor stdout is not JSON ({e}): {text} {out:?}"));
    (out.status.code().unwrap_or(-1), env, text)
}

fn finding<'a>(env: &'a serde_json::Value, check: &str) -> &'a serde_json::Value {
    env["result"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == check)
        .unwrap_or_else(|| panic!("no check {check}: {env}"))
}

#[test]
fn doctor_checks_each_credential_live_with_the_exact_fix() {
    let dir = TempDir::new().unwrap();
    let good = "sk-ant-api03-doctor-good-key-0000000000";
    let bad = "sk-ant-api03-doctor-revoked-key-99999999";
    // The simulator pins the one key it accepts, like the real API knows its keys.
    let sim = crate::support::Sim::start(&["--key", &format!("api_key={good}")]);
    for (account, key) in [("work", good), ("old", bad)] {
        let out = kosmo(dir.path())
            .args([
                "integrations:configure",
                "anthropic",
                "--account",
                account,
                "--set-stdin",
                "api_key",
                "--set",
                &format!("url={}", sim.url),
            ])
            .write_stdin(format!("{key}\n"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let (code, env, text) = doctor(&dir, &[], &["anthropic", "--account", "work"]);
    assert_eq!(code, 0, "{text}");
    let work = finding(&env, "anthropic.work.api_key");
    assert_eq!(work["status"], "ok", "{text}");
    assert_eq!(work["function"], "list_models");
    assert!(work["latency_ms"].as_f64().is_some());
    assert_eq!(
        finding(&env, "anthropic.work.admin_key")["status"],
        "missing"
    );

    let (code, env, text) = doctor(&dir, &[], &["anthropic", "--account", "old"]);
    assert_eq!(code, 1, "{text}");
    let old = finding(&env, "anthropic.old.api_key");
    assert_eq!(old["status"], "failed", "{text}");
    assert_eq!(old["error"]["code"], "authentication_error", "{text}");
    assert!(
        old["fix"]
            .as_str()
            .unwrap()
            .contains("kosmo integrations:configure anthropic --account old --set-stdin api_key"),
        "{text}"
    );
    for secret in [&good[..20], &bad[..20]] {
        assert!(
            !text.contains(secret),
            "secret in the doctor's output: {text}"
        );
    }

    // Unreachable: the fix points at where the URL comes from.
    let (code, env, text) = doctor(
        &dir,
        &[
            ("ANTHROPIC_API_KEY", good),
            ("ANTHROPIC_BASE_URL", "http://127.0.0.1:9"),
        ],
        &["anthropic", "--account", "default"],
    );
    assert_eq!(code, 1, "{text}");
    let d = finding(&env, "anthropic.default.api_key");
    assert_eq!(d["error"]["code"], "transport_error", "{text}");
    assert!(
        d["fix"].as_str().unwrap().contains("ANTHROPIC_BASE_URL"),
        "{text}"
    );
}

#[test]
fn doctor_offline_rehearses_every_declared_check() {
    let dir = TempDir::new().unwrap();
    let (code, env, text) = doctor(&dir, &[], &["--offline"]);
    assert_eq!(code, 0, "{text}");
    for check in [
        "anthropic.default.api_key",
        "anthropic.default.admin_key",
        "openai.default.api_key",
        "github.default.token",
    ] {
        let f = finding(&env, check);
        assert_eq!(f["status"], "ok", "{check}: {text}");
        assert!(
            f["detail"].as_str().unwrap().contains("simulator"),
            "{text}"
        );
    }
    assert_eq!(env["result"]["failed"], 0);

    // A secrets file others can read is a problem, with the exact command that fixes it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.path().join("credentials.yaml");
        std::fs::write(&path, "anthropic:\n  default:\n    api_key_env: X\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (code, env, text) = doctor(&dir, &[], &["--offline"]);
        assert_eq!(code, 1, "{text}");
        let f = finding(&env, "config");
        assert_eq!(f["status"], "failed");
        assert_eq!(f["fix"], format!("chmod 600 {}", path.display()));
    }
}

#[test]
fn named_accounts_configured_from_the_cli() {
    let sim = Sim::start(&[]);
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    let o = Kosmo::cmd(&[
        "integrations:configure",
        "anthropic",
        "--account",
        "work",
        "--set",
        &format!("api_key={WORK_KEY}"),
        "--set",
        &format!("url={}/v1", sim.url),
    ])
    .dir(d)
    .run();
    assert_eq!(o.code, 0, "{}", o.show());
    assert!(!o.stdout.contains(WORK_KEY) && !o.stderr.contains(WORK_KEY));
    let creds = d.join("credentials.yaml");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&creds).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let code = r#"
local w = app.integrations.anthropic.work.get_model("claude-sonnet-4-0").id
local x = app.integrations["anthropic"]["work"].list_models({limit = 2})
return w, #x.data, app.integrations.anthropic.default.get_model({id = "claude-sonnet-4-0"}).id"#;
    let envs = sim_env(&sim, API_KEY);
    let o = Kosmo::lua_args(&["--eval", code])
        .dir(d)
        .envs(&as_refs(&envs))
        .run();
    assert_eq!(o.code, 0, "{}", o.show());
    let accounts: Vec<&str> = o.env["integration_calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["account"].as_str().unwrap())
        .collect();
    assert_eq!(accounts, ["work", "work", "default"]);

    // --account makes the un-named namespace use that account.
    let o = Kosmo::lua_args(&[
        "--account",
        "work",
        "--eval",
        "return app.integrations.anthropic.get_model('claude-sonnet-4-0').id",
    ])
    .dir(d)
    .run();
    assert_eq!(
        o.env["result"],
        json!(["claude-sonnet-4-20250514"]),
        "{}",
        o.show()
    );
    assert_eq!(o.env["integration_calls"][0]["account"], "work");

    // An admin function on an account with only an API key: fails before any request.
    let o = Kosmo::lua_args(&[
        "--eval",
        "return app.integrations.anthropic.work.get_organization({})",
    ])
    .dir(d)
    .run();
    assert_eq!(o.err_code(), "missing_credential", "{}", o.show());
    assert!(o.err_message().contains("'work'") && o.err_message().contains("admin_key"));
    assert!(o.env["integration_calls"][0]["http_status"].is_null());

    // An account that does not exist is named in the error.
    let o = Kosmo::lua_args(&[
        "--account",
        "nosuch",
        "--eval",
        "return app.integrations.anthropic.get_model('claude-sonnet-4-0')",
    ])
    .dir(d)
    .run();
    assert_eq!(o.code, 1);
    assert!(o.err_message().contains("nosuch"), "{}", o.show());
    let o = Kosmo::lua_args(&[
        "--eval",
        "return app.integrations.anthropic.nosuch.get_model('x')",
    ])
    .dir(d)
    .run();
    assert_eq!(o.code, 1);
    assert!(
        o.err_message().contains("work"),
        "lists accounts: {}",
        o.show()
    );

    // Bad configure input is a usage error.
    for bad in [
        &["--set", "nosuch=1"][..],
        &["--account", "bad name!", "--set", "api_key=x"][..],
        &["--write", "maybe"][..],
    ] {
        let mut args = vec!["integrations:configure", "anthropic"];
        args.extend_from_slice(bad);
        let o = Kosmo::cmd(&args).dir(d).run();
        assert_eq!(o.code, 2, "{bad:?}: {}", o.show());
    }
}

#[test]
fn missing_credentials_say_what_to_set() {
    let dir = TempDir::new().unwrap();
    let sim = Sim::start(&[]);
    let envs = sim_env(&sim, API_KEY);
    let o = Kosmo::lua_args(&[
        "--eval",
        "return app.integrations.anthropic.get_organization({})",
    ])
    .dir(dir.path())
    .envs(&as_refs(&envs))
    .run();
    assert_eq!(o.err_code(), "missing_credential", "{}", o.show());
    let msg = o.err_message();
    assert!(
        msg.contains("admin_key") && msg.contains("ANTHROPIC_ADMIN_KEY"),
        "{msg}"
    );
    assert!(msg.contains("'default'"), "{msg}");

    let o = Kosmo::lua_args(&["--eval", "return app.integrations.anthropic.get_model('x')"])
        .dir(dir.path())
        .run();
    assert_eq!(o.err_code(), "missing_credential", "{}", o.show());
    assert!(
        o.err_message().contains("ANTHROPIC_API_KEY"),
        "{}",
        o.show()
    );

    // With both keys the admin call goes through.
    let mut both = as_refs(&envs);
    both.push(("ANTHROPIC_ADMIN_KEY", ADMIN_KEY));
    let o = Kosmo::lua_args(&[
        "--eval",
        "return app.integrations.anthropic.get_organization({}).type",
    ])
    .dir(dir.path())
    .envs(&both)
    .run();
    assert_eq!(o.env["result"], json!(["organization"]), "{}", o.show());
}

/// `kosmo integrations:configure anthropic ARGS` with `stdin`: (exit code, stdout, stderr).
pub fn configure_anthropic(dir: &Path, args: &[&str], stdin: &str) -> (i32, String, String) {
    let r = Kosmo::cmd(&["integrations:configure", "anthropic"])
        .flags(args)
        .dir(dir)
        .stdin(stdin)
        .run();
    (r.code, r.stdout, r.stderr)
}

/// `integrations:lua --json --eval CODE` with `envs`: (exit code, envelope, stderr).
fn lua_with_env(dir: &Path, envs: &[(&str, &str)], code: &str) -> (i32, Value, String) {
    let r = Kosmo::lua(code).dir(dir).envs(envs).run();
    (r.code, r.env, r.stderr)
}

const STDIN_KEY: &str = "sk-ant-api03-QA3stdinSECRET0000";
const GET: &str = "return app.integrations.anthropic.work.get_model('claude-sonnet-4-0').id";

#[test]
fn configure_from_stdin_modes_permissions_and_secret_sources() {
    let sim = Sim::start(&[]);
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    let (code, stdout, stderr) = configure_anthropic(
        d,
        &[
            "--account",
            "work",
            "--set",
            "api_key=-",
            "--set",
            &format!("url={}", sim.url),
            "--json",
        ],
        &format!("{STDIN_KEY}\n"),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(!stdout.contains(STDIN_KEY) && !stderr.contains(STDIN_KEY));
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["result"]["fields"]["api_key"], "[set]");
    let creds = d.join("credentials.yaml");
    assert_eq!(
        std::fs::metadata(&creds).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(std::fs::read_to_string(&creds).unwrap().contains(STDIN_KEY));
    let (code, env, _) = lua_with_env(d, &[], GET);
    assert_eq!(
        (code, &env["result"][0]),
        (0, &Value::from("claude-sonnet-4-20250514"))
    );

    // An empty stdin value and an unknown --unset field are usage errors.
    assert_eq!(configure_anthropic(d, &["--set", "api_key=-"], "").0, 2);
    assert_eq!(
        configure_anthropic(d, &["--account", "work", "--unset", "nosuch"], "").0,
        2
    );

    // A group-readable file is used, with a warning that says how to fix it.
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o640)).unwrap();
    let (code, _, stderr) = lua_with_env(d, &[], GET);
    assert_eq!(code, 0);
    assert!(stderr.contains("chmod 600"), "{stderr}");
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o600)).unwrap();

    // Per-account permissions: deny read, then ask write with no terminal.
    assert_eq!(
        configure_anthropic(d, &["--account", "work", "--read", "deny"], "").0,
        0
    );
    let (code, env, _) = lua_with_env(d, &[], GET);
    assert_eq!(code, 1);
    assert_eq!(env["error"]["code"], "permission_denied");
    assert!(
        env["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--account work --read allow")
    );
    assert!(env["integration_calls"][0]["http_status"].is_null());
    assert_eq!(
        configure_anthropic(d, &["--account", "work", "--read", "allow"], "").0,
        0
    );
    let write = "return app.integrations.anthropic.work.create_message{model='claude-sonnet-4-0', \
                 max_tokens=5, messages={{role='user', content='hi'}}}.type";
    let (code, env, _) = lua_with_env(d, &[], write);
    assert_eq!(code, 1);
    assert!(
        env["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--write allow"),
        "{env}"
    );
    assert_eq!(
        configure_anthropic(d, &["--account", "work", "--write", "allow"], "").0,
        0
    );
    let (code, env, _) = lua_with_env(d, &[], write);
    assert_eq!((code, &env["result"][0]), (0, &Value::from("message")));

    // api_key_env and api_key_cmd.
    assert_eq!(
        configure_anthropic(
            d,
            &[
                "--account",
                "work",
                "--unset",
                "api_key",
                "--set",
                "api_key_env=QA3_KEY"
            ],
            ""
        )
        .0,
        0
    );
    let (code, env, _) = lua_with_env(d, &[("QA3_KEY", STDIN_KEY)], GET);
    assert_eq!(code, 0, "{env}");
    let (code, env, _) = lua_with_env(d, &[], GET);
    assert_eq!(env["error"]["code"], "missing_credential");
    assert!(
        env["error"]["message"]
            .as_str()
            .unwrap()
            .contains("QA3_KEY")
    );
    assert_eq!(code, 1);
    let cmd = format!("api_key_cmd=printf '%s\\n' {STDIN_KEY}");
    assert_eq!(
        configure_anthropic(
            d,
            &["--account", "work", "--unset", "api_key_env", "--set", &cmd],
            ""
        )
        .0,
        0
    );
    let (code, env, _) = lua_with_env(d, &[], GET);
    assert_eq!(code, 0, "{env}");
    let bad = format!("api_key_cmd=echo {STDIN_KEY}; exit 3");
    assert_eq!(
        configure_anthropic(d, &["--account", "work", "--set", &bad], "").0,
        0
    );
    let (code, env, stderr) = lua_with_env(d, &[], GET);
    assert_eq!(
        (code, &env["error"]["code"]),
        (1, &Value::from("config_error"))
    );
    assert!(
        !env.to_string().contains(STDIN_KEY) && !stderr.contains(STDIN_KEY),
        "secret leaked"
    );
}

#[test]
fn configure_refuses_a_url_that_cannot_work_and_keeps_new_dirs_private() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let cfg = root.path().join("new/cfg");
    for bad in ["not-a-url", "ftp://x", "http://"] {
        let out = crate::support::kosmo(&cfg)
            .args(["integrations:configure", "anthropic", "--set"])
            .arg(format!("url={bad}"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
    }
    crate::support::kosmo(&cfg)
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

//! No secret in any output: a scan of every output with debug logs on, passwords in base URLs,
//! `integrations:configure` with URL passwords and foreign key prefixes, and credential helpers'
//! stderr.

use std::path::PathBuf;
use std::sync::Arc;

use indexmap::IndexMap;
use kosmo::credentials::{CredentialFile, Credentials};
use kosmo::exec::{Call, Executor};
use kosmo::registry::Registry;
use serde_json::json;
use tempfile::TempDir;

use crate::exec::server::{self, Action};
use crate::support::{Kosmo, Sim, as_refs, sim_env};

const API_KEY: &str = "sk-ant-api03-QAACCEPTANCEapi0000SECRET";
const ADMIN_KEY: &str = "sk-ant-admin01-QAACCEPTANCEadmin000SECRET";
const WORK_KEY: &str = "sk-ant-api03-QAACCEPTANCEwork0000SECRET";

#[test]
fn no_secret_in_any_output_even_with_debug_logs() {
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
        &format!("url={}", sim.url),
        "--json",
    ])
    .dir(d)
    .run();
    assert_eq!(o.code, 0, "{}", o.show());
    let base = sim_env(&sim, API_KEY);
    let mut envs = as_refs(&base);
    envs.push(("ANTHROPIC_ADMIN_KEY", ADMIN_KEY));
    envs.push(("KOSMO_LOG", "trace"));
    let scripts = [
        "dump(app.integrations.anthropic.create_message{model = 'm', messages = {{role = 'user', content = 'hi'}}})",
        "dump(app.integrations.anthropic.get_model{id = 'nope'})",
        "dump(app.integrations.anthropic.get_organization{})",
        "dump(app.integrations.anthropic.work.get_organization{})",
        "dump(app.integrations.anthropic.work.list_models{limit = 1})",
        "local ok, e = pcall(app.integrations.anthropic.get_model, {id = 'nope'}) dump(e) return e",
        "dump(app.integrations.anthropic.create_message{model = 'm', messages = {{role = 'user', content = 'hi'}}, stream = true, on_event = function(e) dump(e) end})",
        "dump(app.integrations.anthropic.get_model{id = 'claude-sonnet-4-0', betas = {'bad-beta-x'}})",
        "dump(app.integrations.anthropic.work) dump(app.integrations.anthropic) return tostring(app.integrations.anthropic.work)",
        "error('boom')",
    ];
    for script in scripts {
        for extra in [&["--json"][..], &[][..], &["--dry-run", "--json"][..]] {
            let mut args = vec!["integrations:lua", "--force", "--eval", script];
            args.extend_from_slice(extra);
            let o = Kosmo::cmd(&args).dir(d).envs(&envs).run();
            for secret in [API_KEY, ADMIN_KEY, WORK_KEY, "QAACCEPTANCE"] {
                assert!(
                    !o.stdout.contains(secret) && !o.stderr.contains(secret),
                    "{script} {extra:?} printed a secret: {}",
                    o.show()
                );
            }
        }
    }
    // Wrong and unreachable keys: the error names the problem, not the key.
    let o = Kosmo::cmd(&[
        "integrations:lua",
        "--json",
        "--eval",
        "return app.integrations.anthropic.get_model('claude-sonnet-4-0')",
    ])
    .dir(d)
    .envs(&[
        ("ANTHROPIC_API_KEY", "not-a-key-QAACCEPTANCE-SECRET"),
        ("ANTHROPIC_BASE_URL", sim.url.as_str()),
        ("KOSMO_LOG", "debug"),
    ])
    .run();
    assert_eq!(o.err_code(), "authentication_error", "{}", o.show());
    assert!(!o.stdout.contains("QAACCEPTANCE") && !o.stderr.contains("QAACCEPTANCE"));
    for args in [
        &["integrations:configure", "anthropic", "--account", "work"][..],
        &[
            "integrations:configure",
            "anthropic",
            "--account",
            "work",
            "--json",
        ][..],
        &["integrations:list", "--json"][..],
        &["integrations:docs", "anthropic.work"][..],
    ] {
        let o = Kosmo::cmd(args).dir(d).run();
        assert!(
            !o.stdout.contains("QAACCEPTANCE") && !o.stderr.contains("QAACCEPTANCE"),
            "{args:?}: {}",
            o.show()
        );
    }
}

// ------------------------------------------------------------------ secrets in URLs and helpers

/// The fixture executor with a base URL that carries `user:password@`.
fn exec_with_url_password(url: &str) -> Executor {
    let mut file = CredentialFile::new();
    file.insert(
        "fx".into(),
        IndexMap::from([(
            "default".to_string(),
            IndexMap::from([
                ("api_key".to_string(), crate::exec::SECRET.to_string()),
                ("url".to_string(), url.to_string()),
            ]),
        )]),
    );
    Executor::new(
        crate::exec::fixture_registry(),
        Arc::new(Credentials::from_entries(PathBuf::new(), file)),
        crate::exec::fast_config(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_password_in_the_base_url_is_never_shown() {
    // Dry run.
    let ex = exec_with_url_password("http://gw-user:PASSW0RD-URL@127.0.0.1:9/v1");
    let mut c = Call::new("fx", "get_thing", json!({"id": "x"}));
    c.dry_run = true;
    let v = ex.call(c).await.unwrap().value;
    assert_eq!(
        v["url"],
        "http://gw-user:[redacted]@127.0.0.1:9/v1/things/x"
    );
    // A transport error names the URL.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let ex = exec_with_url_password(&format!("http://gw-user:PASSW0RD-URL@127.0.0.1:{port}"));
    let e = ex
        .call(Call::new("fx", "get_thing", json!({"id": "x"})))
        .await
        .unwrap_err();
    let shown = format!("{e} {e:?} {}", e.to_json());
    assert!(!shown.contains("PASSW0RD"), "{shown}");
    assert!(shown.contains("gw-user:[redacted]@127.0.0.1"), "{shown}");
    // A server that echoes the password (here: percent-encoded in the URL, plain in the body).
    let srv = server::start(vec![Action::json(
        400,
        r#"{"type":"error","error":{"type":"invalid_request_error","message":"bad login gw-user / p@ss-WORD-9"}}"#,
    )])
    .await;
    let ex = exec_with_url_password(&srv.url.replace("://", "://gw-user:p%40ss-WORD-9@"));
    let e = ex
        .call(Call::new("fx", "get_thing", json!({"id": "x"})))
        .await
        .unwrap_err();
    let shown = format!("{e} {e:?} {}", e.to_json());
    assert!(!shown.contains("ss-WORD-9"), "{shown}");
}

#[test]
fn configure_redacts_url_passwords_and_warns_on_a_foreign_key_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::support::kosmo(dir.path())
        .args([
            "integrations:configure",
            "anthropic",
            "--set",
            "api_key=bogus-KEYVALUE",
            "--set",
            "url=http://me:URLPASSWORD@127.0.0.1:9",
            "--json",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !format!("{stdout}{stderr}").contains("URLPASSWORD"),
        "{stdout}{stderr}"
    );
    assert!(
        !format!("{stdout}{stderr}").contains("KEYVALUE"),
        "{stdout}{stderr}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["result"]["fields"]["url"],
        "http://me:[redacted]@127.0.0.1:9"
    );
    assert!(
        stderr.contains("api_key value does not start with 'sk-ant-api'"),
        "{stderr}"
    );
    // Stored anyway.
    let creds = Credentials::load(Some(dir.path().to_path_buf())).unwrap();
    let m = Registry::builtin()
        .unwrap()
        .require("anthropic")
        .unwrap()
        .manifest
        .clone();
    assert_eq!(
        creds.secret(&m, "default", "api_key").unwrap().expose(),
        "bogus-KEYVALUE"
    );
    // An admin key pasted as the API key is named; a well-formed key is quiet.
    let out = crate::support::kosmo(dir.path())
        .args([
            "integrations:configure",
            "anthropic",
            "--set",
            "api_key=sk-ant-admin01-x",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("looks like the admin_key"), "{stderr}");
    let out = crate::support::kosmo(dir.path())
        .args([
            "integrations:configure",
            "anthropic",
            "--set",
            "api_key=sk-ant-api03-x",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn credential_helper_stderr_is_captured_and_scrubbed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("credentials.yaml"),
        "anthropic:\n  default:\n    api_key: sk-ant-api03-FILESECRET\n    admin_key_cmd: \"echo sk-ant-admin01-HALFSECRET; echo 'vault: denied for sk-ant-admin01-HALFSECRET' >&2; echo HELPER-SECOND-LINE >&2; exit 7\"\n",
    )
    .unwrap();
    let out = crate::support::kosmo(dir.path())
        .args([
            "integrations:lua",
            "--eval",
            "app.integrations.anthropic.list_api_keys{}",
        ])
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{all}");
    assert!(
        !all.contains("HALFSECRET") && !all.contains("FILESECRET"),
        "{all}"
    );
    assert!(
        !all.contains("HELPER-SECOND-LINE"),
        "helper stderr passed through: {all}"
    );
    assert!(all.contains("exit status 7"), "{all}");
    assert!(all.contains("vault: denied for [redacted]"), "{all}");
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
    let out = crate::support::kosmo(cfg.path())
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
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("{stdout}"));
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

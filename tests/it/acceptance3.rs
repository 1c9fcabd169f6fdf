//! QA round 3: the REPL, `integrations:configure` and the accounts it writes, the docs commands,
//! and `simulator:serve` flags, driven through the real binary.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use crate::support::kosmo;

const KEY: &str = "sk-ant-api03-QA3stdinSECRET0000";

/// A `kosmo simulator:serve` child; killed when dropped. `stderr` is kept for warning checks.
struct Sim {
    child: Child,
    url: String,
    _dir: TempDir,
}

impl Sim {
    fn start(extra: &[&str]) -> Sim {
        let dir = TempDir::new().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_kosmo"))
            .args(["simulator:serve", "--port", "0"])
            .args(extra)
            .env("KOSMO_CONFIG_DIR", dir.path())
            .env_remove("KOSMO_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        Sim {
            child,
            url: line.trim().to_string(),
            _dir: dir,
        }
    }
    fn addr(&self) -> String {
        let port = self.url.rsplit(':').next().unwrap();
        format!("127.0.0.1:{port}")
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One raw HTTP/1.1 request (Connection: close); returns (status, body).
fn http(addr: &str, method: &str, path: &str, key: &str, extra: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nx-api-key: {key}\r\nanthropic-version: 2023-06-01\r\ncontent-type: application/json\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or("")
        .to_string();
    (status, body)
}

fn out(o: &std::process::Output) -> (i32, String, String) {
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

fn repl(dir: &Path, extra: &[&str], input: &str) -> (i32, String, String) {
    let o = kosmo(dir)
        .args(["integrations:lua", "--repl"])
        .args(extra)
        .write_stdin(input.to_string())
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    out(&o)
}

#[test]
fn repl_multiline_errors_and_per_entry_limits() {
    let dir = TempDir::new().unwrap();
    let input = "t = {\n  a = 1,\n  b = 2,\n}\nreturn t.a + t.b\nerror('boom')\nreturn t.b\n\
                 s = [[x\ny]]\nreturn s\nreturn 1, 'two'\nfor i = 1, 2 do\n  print(i)\nend\n\
                 while true do end\nreturn 'alive'\n  :quit  \nreturn 'after quit'\n";
    let (code, stdout, stderr) = repl(dir.path(), &["--cpu-limit", "1"], input);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout, "3\n2\nx\ny\n1\ntwo\n1\n2\nalive\n",
        "stderr: {stderr}"
    );
    assert!(stderr.contains("boom"), "{stderr}");
    assert!(stderr.contains("cpu limit"), "{stderr}");
    // End of input without a trailing newline still runs the last entry.
    let (code, stdout, _) = repl(dir.path(), &[], "x = 6\nreturn x * 7");
    assert_eq!((code, stdout.as_str()), (0, "42\n"));
}

#[test]
fn repl_on_a_terminal_prompts_and_continues_lines() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("SKIP: no `script` for a pseudo-terminal");
        return;
    }
    let dir = TempDir::new().unwrap();
    let cmd = format!("{} integrations:lua --repl", env!("CARGO_BIN_EXE_kosmo"));
    let o = Command::new("script")
        .args(["-qc", &cmd, "/dev/null"])
        .env("KOSMO_CONFIG_DIR", dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin
                .take()
                .unwrap()
                .write_all(b"x = 2\nfunction g()\nreturn x * 3\nend\ng()\n:quit\n")?;
            c.wait_with_output()
        })
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("lua> "), "{stdout}");
    assert!(stdout.contains("...> "), "continuation prompt: {stdout}");
    assert!(stdout.contains("6\r\n"), "{stdout}");
}

fn configure(dir: &Path, args: &[&str], stdin: &str) -> (i32, String, String) {
    let o = kosmo(dir)
        .arg("integrations:configure")
        .arg("anthropic")
        .args(args)
        .write_stdin(stdin.to_string())
        .output()
        .unwrap();
    out(&o)
}

fn lua(dir: &Path, envs: &[(&str, &str)], code: &str) -> (i32, Value, String) {
    let mut c = kosmo(dir);
    for (k, v) in envs {
        c.env(k, v);
    }
    let o = c
        .args(["integrations:lua", "--json", "--eval", code])
        .write_stdin("")
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let (code, stdout, stderr) = out(&o);
    let env: Value = serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("{stdout}{stderr}"));
    (code, env, stderr)
}

const GET: &str = "return app.integrations.anthropic.work.get_model('claude-sonnet-4-0').id";

#[test]
fn configure_from_stdin_modes_permissions_and_secret_sources() {
    let sim = Sim::start(&[]);
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    let (code, stdout, stderr) = configure(
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
        &format!("{KEY}\n"),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(!stdout.contains(KEY) && !stderr.contains(KEY));
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["result"]["fields"]["api_key"], "[set]");
    let creds = d.join("credentials.yaml");
    assert_eq!(
        std::fs::metadata(&creds).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(std::fs::read_to_string(&creds).unwrap().contains(KEY));
    let (code, env, _) = lua(d, &[], GET);
    assert_eq!(
        (code, &env["result"][0]),
        (0, &Value::from("claude-sonnet-4-20250514"))
    );

    // An empty stdin value and an unknown --unset field are usage errors.
    assert_eq!(configure(d, &["--set", "api_key=-"], "").0, 2);
    assert_eq!(
        configure(d, &["--account", "work", "--unset", "nosuch"], "").0,
        2
    );

    // A group-readable file is used, with a warning that says how to fix it.
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o640)).unwrap();
    let (code, _, stderr) = lua(d, &[], GET);
    assert_eq!(code, 0);
    assert!(stderr.contains("chmod 600"), "{stderr}");
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o600)).unwrap();

    // Per-account permissions: deny read, then ask write with no terminal.
    assert_eq!(
        configure(d, &["--account", "work", "--read", "deny"], "").0,
        0
    );
    let (code, env, _) = lua(d, &[], GET);
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
        configure(d, &["--account", "work", "--read", "allow"], "").0,
        0
    );
    let write = "return app.integrations.anthropic.work.create_message{model='claude-sonnet-4-0', \
                 max_tokens=5, messages={{role='user', content='hi'}}}.type";
    let (code, env, _) = lua(d, &[], write);
    assert_eq!(code, 1);
    assert!(
        env["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--write allow"),
        "{env}"
    );
    assert_eq!(
        configure(d, &["--account", "work", "--write", "allow"], "").0,
        0
    );
    let (code, env, _) = lua(d, &[], write);
    assert_eq!((code, &env["result"][0]), (0, &Value::from("message")));

    // api_key_env and api_key_cmd.
    assert_eq!(
        configure(
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
    let (code, env, _) = lua(d, &[("QA3_KEY", KEY)], GET);
    assert_eq!(code, 0, "{env}");
    let (code, env, _) = lua(d, &[], GET);
    assert_eq!(env["error"]["code"], "missing_credential");
    assert!(
        env["error"]["message"]
            .as_str()
            .unwrap()
            .contains("QA3_KEY")
    );
    assert_eq!(code, 1);
    let cmd = format!("api_key_cmd=printf '%s\\n' {KEY}");
    assert_eq!(
        configure(
            d,
            &["--account", "work", "--unset", "api_key_env", "--set", &cmd],
            ""
        )
        .0,
        0
    );
    let (code, env, _) = lua(d, &[], GET);
    assert_eq!(code, 0, "{env}");
    let bad = format!("api_key_cmd=echo {KEY}; exit 3");
    assert_eq!(configure(d, &["--account", "work", "--set", &bad], "").0, 0);
    let (code, env, stderr) = lua(d, &[], GET);
    assert_eq!(
        (code, &env["error"]["code"]),
        (1, &Value::from("config_error"))
    );
    assert!(
        !env.to_string().contains(KEY) && !stderr.contains(KEY),
        "secret leaked"
    );
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
    configure(
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

#[test]
fn simulator_seed_latency_pinning_and_concurrency() {
    let body = r#"{"model":"claude-sonnet-4-0","max_tokens":100,"messages":[{"role":"user","content":"Tell me about otters"}]}"#;
    let text = |sim: &Sim| {
        let (status, b) = http(&sim.addr(), "POST", "/v1/messages", KEY, "", body);
        assert_eq!(status, 200, "{b}");
        let v: Value = serde_json::from_str(&b).unwrap();
        v["content"][0]["text"].as_str().unwrap().to_string()
    };
    let (a, b, c) = (
        Sim::start(&["--seed", "7"]),
        Sim::start(&["--seed", "7"]),
        Sim::start(&["--seed", "8"]),
    );
    assert_eq!(text(&a), text(&b));
    assert_ne!(text(&a), text(&c));

    let slow = Sim::start(&["--latency", "300"]);
    let t = Instant::now();
    let (status, _) = http(&slow.addr(), "GET", "/v1/models", KEY, "", "");
    assert_eq!(status, 200);
    assert!(
        t.elapsed() >= Duration::from_millis(290),
        "{:?}",
        t.elapsed()
    );

    let pinned = Sim::start(&[
        "--api-key",
        "sk-ant-api03-PIN",
        "--admin-key",
        "sk-ant-admin01-PIN",
    ]);
    let addr = pinned.addr();
    assert_eq!(
        http(&addr, "GET", "/v1/models", "sk-ant-api03-PIN", "", "").0,
        200
    );
    assert_eq!(
        http(&addr, "GET", "/v1/models", "sk-ant-api03-OTHER", "", "").0,
        401
    );
    assert_eq!(
        http(
            &addr,
            "GET",
            "/v1/organizations/me",
            "sk-ant-admin01-PIN",
            "",
            ""
        )
        .0,
        200
    );
    assert_eq!(
        http(
            &addr,
            "GET",
            "/v1/organizations/me",
            "sk-ant-admin01-OTHER",
            "",
            ""
        )
        .0,
        401
    );
    assert_eq!(
        http(
            &addr,
            "GET",
            "/v1/organizations/me",
            "sk-ant-api03-PIN",
            "",
            ""
        )
        .0,
        403
    );

    // 50 concurrent streaming requests all succeed.
    let stream = body.replace("\"max_tokens\"", "\"stream\":true,\"max_tokens\"");
    let handles: Vec<_> = (0..50)
        .map(|_| {
            let (addr, stream) = (a.addr(), stream.clone());
            std::thread::spawn(move || http(&addr, "POST", "/v1/messages", KEY, "", &stream))
        })
        .collect();
    for h in handles {
        let (status, b) = h.join().unwrap();
        assert_eq!(status, 200);
        assert!(b.contains("event: message_stop"), "{b}");
    }

    // The fault header on a streaming request: an error event after 3 events, no message_stop.
    let (status, b) = http(
        &a.addr(),
        "POST",
        "/v1/messages",
        KEY,
        "x-kosmo-fault: error-event:after=3\r\n",
        &stream,
    );
    assert_eq!(status, 200);
    let events: Vec<&str> = b
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(events.len(), 4, "{b}");
    assert_eq!(events[3], "error");
    let (status, b) = http(
        &a.addr(),
        "POST",
        "/v1/messages",
        KEY,
        "x-kosmo-fault: 529\r\n",
        &stream,
    );
    assert_eq!(status, 529);
    assert!(b.contains("overloaded_error"));
}

#[test]
fn simulator_all_interfaces_warns_and_sigint_exits_cleanly() {
    let mut sim = Sim::start(&["--host", "0.0.0.0"]);
    assert!(sim.url.starts_with("http://0.0.0.0:"), "{}", sim.url);
    assert_eq!(http(&sim.addr(), "GET", "/v1/models", KEY, "", "").0, 200);
    crate::support::wait_for_signal_handler(sim.child.id(), 2);
    let pid = sim.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = sim.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let mut err = String::new();
    sim.child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(err.contains("reachable from other machines"), "{err}");
}

//! Regressions for the QA findings on the Lua layer: local file access, offline name lookup,
//! per-integration simulators, cut-off calls, error values as strings, signals, `on_event`,
//! code sources and large integers.

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

use super::{Run, assert_fails, ok, run_in};

/// `integrations:lua --offline --json --eval CODE [extra]` in `dir`.
fn offline_in(dir: &Path, code: &str, extra: &[&str]) -> Run {
    let mut args = vec!["integrations:lua", "--offline", "--json", "--eval", code];
    args.extend_from_slice(extra);
    run_in(dir, &args, None)
}

fn lua_str(p: &Path) -> String {
    format!("{:?}", p.to_str().unwrap())
}

fn last_call(r: &Run) -> &Value {
    let calls = r.env["integration_calls"].as_array().unwrap();
    calls
        .last()
        .unwrap_or_else(|| panic!("no call recorded: {}", r.env))
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
        let r = offline_in(dir.path(), code, &["--force"]);
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
    let r = offline_in(
        dir.path(),
        &format!(
            "local a = app.integrations.anthropic.upload_file{{file = {}}} \
             local b = app.integrations.anthropic.upload_file{{file = {{path = 'work/notes.txt'}}}} \
             return a.filename, b.size_bytes",
            lua_str(&allowed.join("notes.txt"))
        ),
        &["--force", "--allow-path", allow],
    );
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
        let r = offline_in(
            dir.path(),
            &format!("return app.integrations.anthropic.upload_file{args}"),
            &["--force", "--allow-path", allow],
        );
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
        let r = offline_in(
            dir.path(),
            &format!(
                "return app.integrations.anthropic.download_file{{id = 'file_011downloadable', save_to = {}}}",
                lua_str(&target)
            ),
            &["--allow-path", allow],
        );
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
    let r = offline_in(dir.path(), &save, &["--allow-path", allow]);
    assert!(ok(&r)[0].as_u64().unwrap() > 0, "{}", r.env);
    assert!(allowed.join("out.bin").exists());
    std::fs::remove_file(allowed.join("out.bin")).unwrap();
    let r = offline_in(dir.path(), &save, &["--allow-path", allow, "--read-only"]);
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
    let r = offline_in(
        dir.path(),
        "return 1",
        &["--allow-path", "/nonexistent/dir"],
    );
    assert_fails(&r, "usage_error");
    assert!(
        r.env["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--allow-path")
    );
}

#[test]
fn offline_typos_are_unknown_functions_not_accounts() {
    let dir = TempDir::new().unwrap();
    let r = offline_in(
        dir.path(),
        "return app.integrations.anthropic.creat_mesage{}",
        &[],
    );
    assert_fails(&r, "unknown_function");
    let suggestions = r.env["error"]["suggestions"].as_array().unwrap();
    assert!(
        suggestions.contains(&json!("create_message")),
        "{}",
        r.env["error"]
    );
    // An account configured in the user's config dir is still an account offline.
    std::fs::write(
        dir.path().join("credentials.yaml"),
        "anthropic:\n  work:\n    api_key: sk-ant-api03-test\n",
    )
    .unwrap();
    let r = offline_in(
        dir.path(),
        "return app.integrations.anthropic.work.get_model('claude-sonnet-4-0').id ~= nil, tostring(app.integrations.anthropic.default)",
        &[],
    );
    assert_eq!(ok(&r), &json!([true, "app.integrations.anthropic.default"]));
    let r = offline_in(
        dir.path(),
        "return app.integrations.anthropic.wrok.get_model('x')",
        &[],
    );
    assert_fails(&r, "unknown_function");
}

const PETSTORE: &str = r#"
name: petstore
label: Pet Store
summary: A small non-Anthropic fixture.
category: testing
base_url: https://pets.invalid
credentials:
  token: {label: Pet token, header: authorization, scheme: Bearer, prefix: pet_, hint: set PET_TOKEN, placeholder: pet_offline}
errors:
  type_pointer: /code
  message_pointer: /detail
groups: [{id: pets, title: Pets}]
functions:
  get_pet:
    group: pets
    class: read
    summary: Get a pet.
    method: GET
    path: /v2/pets/{pet_id}
    credential: token
    params:
      - {name: pet_id, in: path, required: true, type: string}
    simulator:
      response: {id: "{pet_id}", name: Rex, tags: [good]}
"#;

#[test]
fn offline_user_manifests_get_their_own_simulator() {
    let dir = TempDir::new().unwrap();
    let manifests = dir.path().join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::write(manifests.join("petstore.yaml"), PETSTORE).unwrap();
    let out = crate::support::kosmo(dir.path())
        .current_dir(dir.path())
        .env("KOSMO_MANIFEST_PATH", &manifests)
        .args([
            "integrations:lua",
            "--offline",
            "--json",
            "--eval",
            "local p = app.integrations.petstore.get_pet{pet_id = 'p1'} \
             local m = app.integrations.anthropic.get_model('claude-sonnet-4-0') \
             return p.id, p.name, p.tags[1], m.type",
        ])
        .write_stdin(Vec::new())
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let env: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(
        env["result"],
        json!(["p1", "Rex", "good", "model"]),
        "{env}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A server that accepts connections and never answers.
fn silent_server() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    (l, url)
}

#[test]
fn calls_cut_off_by_the_timeout_are_recorded() {
    let dir = TempDir::new().unwrap();
    let (_server, url) = silent_server();
    let out = crate::support::kosmo(dir.path())
        .env("ANTHROPIC_API_KEY", "sk-ant-api03-test")
        .env("ANTHROPIC_BASE_URL", &url)
        .args([
            "integrations:lua",
            "--json",
            "--timeout",
            "1",
            "--eval",
            "return app.integrations.anthropic.list_models{}",
        ])
        .write_stdin(Vec::new())
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let env: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(env["error"]["code"], "limit_exceeded", "{env}");
    assert_eq!(env["error"]["limit"], "timeout", "{env}");
    let calls = env["integration_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "{env}");
    assert_eq!(calls[0]["function"], "list_models");
    assert_eq!(calls[0]["status"], "error");
    assert_eq!(calls[0]["error"]["code"], "limit_exceeded");
    assert_eq!(calls[0]["error"]["limit"], "timeout");
}

#[test]
fn error_values_behave_like_strings() {
    let dir = TempDir::new().unwrap();
    let r = offline_in(
        dir.path(),
        r#"local ok, e = pcall(function() return app.integrations.anthropic.creat_mesage{} end)
return ok, "x: " .. e == "x: " .. e.message, e .. "!" == e.message .. "!",
  e:find("creat_mesage", 1, true) ~= nil, e:match("unknown %a+"), e:lower() == e.message:lower(),
  e:upper():sub(1, 7), e.code, tostring(e) == e.message, e:len() == #e.message, type(e.nope)"#,
        &[],
    );
    assert_eq!(
        ok(&r),
        &json!([
            false,
            true,
            true,
            true,
            "unknown function",
            true,
            "UNKNOWN",
            "unknown_function",
            true,
            true,
            "nil"
        ])
    );
}

fn spawn_kosmo(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> std::process::Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kosmo"));
    cmd.env("KOSMO_CONFIG_DIR", dir)
        .env("HOME", dir)
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("ANTHROPIC_BASE_URL")
        .env_remove("KOSMO_MANIFEST_PATH")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

fn signal_and_wait(mut child: std::process::Child, signal: &str) -> (i32, Value) {
    drop(child.stdin.take());
    std::thread::sleep(Duration::from_millis(800));
    let signo = match signal {
        "-INT" => 2,
        "-HUP" => 1,
        _ => 15,
    };
    crate::support::wait_for_signal_handler(child.id(), signo);
    let killed = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no exit after {signal}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    (
        status.code().unwrap_or(-1),
        serde_json::from_str(&out).unwrap_or_else(|_| panic!("no envelope: {out}")),
    )
}

#[test]
fn signals_are_reported_as_interruptions() {
    let dir = TempDir::new().unwrap();
    let child = spawn_kosmo(
        dir.path(),
        &["integrations:lua", "--json", "--eval", "while true do end"],
        &[],
    );
    let (code, env) = signal_and_wait(child, "-INT");
    assert_eq!(code, 130, "{env}");
    assert_eq!(env["success"], false);
    assert_eq!(env["error"]["code"], "interrupted", "{env}");
    assert_eq!(env["error"]["message"], "interrupted by SIGINT");
    // SIGTERM while waiting on HTTP: the envelope still comes, with the cut-off call.
    let (_server, url) = silent_server();
    let child = spawn_kosmo(
        dir.path(),
        &[
            "integrations:lua",
            "--json",
            "--eval",
            "return app.integrations.anthropic.list_models{}",
        ],
        &[
            ("ANTHROPIC_API_KEY", "sk-ant-api03-test"),
            ("ANTHROPIC_BASE_URL", &url),
        ],
    );
    let (code, env) = signal_and_wait(child, "-TERM");
    assert_eq!(code, 143, "{env}");
    assert_eq!(env["error"]["code"], "interrupted", "{env}");
    assert_eq!(env["error"]["message"], "interrupted by SIGTERM");
    assert_eq!(env["integration_calls"][0]["status"], "error", "{env}");
    assert_eq!(
        env["integration_calls"][0]["error"]["code"], "interrupted",
        "{env}"
    );
}

#[test]
fn a_hangup_still_prints_the_envelope() {
    let dir = TempDir::new().unwrap();
    let child = spawn_kosmo(
        dir.path(),
        &["integrations:lua", "--json", "--eval", "while true do end"],
        &[],
    );
    let (code, env) = signal_and_wait(child, "-HUP");
    assert_eq!(code, 129, "{env}");
    assert_eq!(env["error"]["code"], "interrupted", "{env}");
    assert_eq!(env["error"]["signal"], "SIGHUP", "{env}");
}

const STREAM: &str =
    "model = 'm', max_tokens = 16, messages = {{role = 'user', content = 'hi'}}, stream = true";

#[test]
fn on_event_is_checked_propagates_errors_and_may_call_integrations() {
    let dir = TempDir::new().unwrap();
    let r = offline_in(
        dir.path(),
        &format!("return app.integrations.anthropic.create_message{{{STREAM}, on_event = 42}}"),
        &["--force"],
    );
    assert_fails(&r, "validation_error");
    assert!(
        r.env["error"]["message"]
            .as_str()
            .unwrap()
            .contains("on_event must be a function"),
        "{}",
        r.env["error"]
    );
    // A table raised in the callback is the error pcall sees.
    let r = offline_in(
        dir.path(),
        &format!(
            "local ok, e = pcall(app.integrations.anthropic.create_message, {{{STREAM}, \
             on_event = function(ev) error({{code = 'my_stop', message = 'halt'}}) end}}) \
             return ok, type(e), e.code, e.message"
        ),
        &["--force"],
    );
    assert_eq!(ok(&r), &json!([false, "table", "my_stop", "halt"]));
    assert_eq!(last_call(&r)["error"]["code"], "my_stop");
    // Unhandled, it is the envelope's error.
    let r = offline_in(
        dir.path(),
        &format!(
            "return app.integrations.anthropic.create_message{{{STREAM}, \
             on_event = function(ev) error({{code = 'my_stop', message = 'halt'}}) end}}"
        ),
        &["--force"],
    );
    assert_fails(&r, "my_stop");
    // Integration calls inside the callback work, in order with the events.
    let r = offline_in(
        dir.path(),
        &format!(
            "local seen = {{}} \
             local m = app.integrations.anthropic.create_message{{{STREAM}, on_event = function(ev) \
               if ev.type == 'message_start' or ev.type == 'message_stop' then \
                 seen[#seen + 1] = ev.type .. ':' .. app.integrations.anthropic.get_model('claude-sonnet-4-0').type \
               end end}} \
             return m.type, seen[1], seen[2]"
        ),
        &["--force"],
    );
    assert_eq!(
        ok(&r),
        &json!(["message", "message_start:model", "message_stop:model"])
    );
    assert_eq!(r.env["integration_calls"].as_array().unwrap().len(), 3);
}

#[test]
fn code_sources_and_extra_arguments() {
    let dir = TempDir::new().unwrap();
    // stdin at /dev/null: not code.
    let out = Command::new(env!("CARGO_BIN_EXE_kosmo"))
        .env("KOSMO_CONFIG_DIR", dir.path())
        .args(["integrations:lua", "--json"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let env: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(2), "{env}");
    assert_eq!(env["error"]["code"], "usage_error");
    assert!(
        env["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("no code: pass --eval CODE, a FILE, or pipe code on stdin"),
        "{env}"
    );
    // Extra positional arguments.
    std::fs::write(dir.path().join("a.lua"), "return 1").unwrap();
    let r = run_in(
        dir.path(),
        &["integrations:lua", "--json", "a.lua", "b", "c"],
        None,
    );
    assert_fails(&r, "usage_error");
    assert!(
        r.env["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'b' 'c'"),
        "{}",
        r.env
    );
    // A Latin-1 source file loads as bytes.
    std::fs::write(dir.path().join("latin1.lua"), b"return #'caf\xe9', 'ok'").unwrap();
    let r = run_in(
        dir.path(),
        &["integrations:lua", "--json", "latin1.lua"],
        None,
    );
    assert_eq!(ok(&r), &json!([4, "ok"]));
}

#[test]
fn large_integers_round_trip_exactly() {
    let dir = TempDir::new().unwrap();
    let r = offline_in(
        dir.path(),
        "local n = 9007199254740993 \
         local d = app.integrations.anthropic.list_models{limit = 4 / 2} \
         return n, json.encode({n = n}), json.decode('9007199254740993') == n, \
           math.type(json.decode('9007199254740993')), 256.0, #d.data <= 2",
        &[],
    );
    assert_eq!(
        ok(&r),
        &json!([
            9007199254740993i64,
            "{\"n\":9007199254740993}",
            true,
            "integer",
            256.0,
            true
        ])
    );
}

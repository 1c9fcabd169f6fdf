//! MCP both ways: configured servers (`mcp:list`), the Lua client (`mcp.*`, `app.mcp.*`,
//! `mcp:lua`) against our deterministic fixture server (tests/fixtures/mcp_server.rs) over stdio
//! and streamable HTTP, and `mcp:serve` driven by an MCP client.

use std::path::Path;

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::lua::{Run, run_in};

const FIXTURE: &str = env!("CARGO_BIN_EXE_kosmo-test-mcp-server");

/// A working dir (also the config dir) whose `.mcp.json` configures the fixture as `fx`, with
/// spawns logged to `spawns.log`.
fn project(extra_yaml: &str) -> TempDir {
    let dir = TempDir::new().unwrap();
    let spawn_log = dir.path().join("spawns.log");
    std::fs::write(
        dir.path().join(".mcp.json"),
        serde_json::to_string(&json!({"mcpServers": {
            "fx": {"command": FIXTURE, "args": [], "env": {"FIXTURE_SPAWN_LOG": spawn_log}}
        }}))
        .unwrap(),
    )
    .unwrap();
    if !extra_yaml.is_empty() {
        std::fs::write(dir.path().join("config.yaml"), extra_yaml).unwrap();
    }
    dir
}

fn spawns(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("spawns.log"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

fn mcp_lua(dir: &Path, code: &str, extra: &[&str]) -> Run {
    let mut args = vec!["mcp:lua", "--json", "--eval", code];
    args.extend_from_slice(extra);
    run_in(dir, &args, None)
}

fn ok(r: &Run) -> &Value {
    crate::lua::assert_envelope(r);
    assert_eq!(
        r.env["success"], true,
        "stdout: {}\nstderr: {}",
        r.stdout, r.stderr
    );
    assert_eq!(r.code, 0);
    &r.env["result"]
}

#[test]
fn list_shows_sources_and_precedence_without_secrets() {
    let dir = project(
        "mcp:\n  servers:\n    fx: {command: shadowed}\n    yaml_one: {command: cat, timeout: 5, permissions: {write: allow}}\n",
    );
    std::fs::write(
        dir.path().join("mcp.json"),
        r#"{"mcpServers": {"remote": {"type": "http", "url": "http://127.0.0.1:9/mcp", "headers": {"Authorization": "Bearer ${SECRET_TOKEN}"}},
                          "broken": {"command": "x", "args": ["${UNSET_FOR_TEST}"]}}}"#,
    )
    .unwrap();
    let mut cmd = crate::support::kosmo(dir.path());
    cmd.current_dir(dir.path())
        .env("SECRET_TOKEN", "hunter2-secret")
        .env_remove("UNSET_FOR_TEST")
        .args(["mcp:list", "--json"]);
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(!stdout.contains("hunter2"), "a secret leaked: {stdout}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let by_name = |n: &str| {
        v["servers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == n)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(by_name("fx")["scope"], "project");
    assert_eq!(by_name("fx")["transport"], "stdio");
    assert_eq!(by_name("fx")["env"], json!(["FIXTURE_SPAWN_LOG"]));
    assert_eq!(by_name("yaml_one")["scope"], "config");
    assert_eq!(by_name("yaml_one")["timeout_s"], 5.0);
    assert_eq!(by_name("yaml_one")["permissions"]["write"], "allow");
    assert_eq!(by_name("remote")["scope"], "user");
    assert_eq!(by_name("remote")["transport"], "http");
    assert_eq!(by_name("remote")["headers"], json!(["Authorization"]));
    assert_eq!(by_name("broken")["status"], "invalid");
    assert!(
        by_name("broken")["error"]
            .as_str()
            .unwrap()
            .contains("UNSET_FOR_TEST")
    );
    assert_eq!(v["shadowed"][0]["name"], "fx");
    assert_eq!(v["shadowed"][0]["scope"], "config");
    // Text output names each server and where it came from.
    let mut cmd = crate::support::kosmo(dir.path());
    cmd.current_dir(dir.path())
        .env("SECRET_TOKEN", "hunter2-secret")
        .args(["mcp:list"]);
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("fx") && text.contains(".mcp.json"), "{text}");
    assert!(
        text.contains("remote") && text.contains("http://127.0.0.1:9/mcp"),
        "{text}"
    );
    assert!(text.contains("UNSET_FOR_TEST"), "{text}");
    assert!(!text.contains("hunter2"), "a secret leaked: {text}");
    // Listing starts nothing.
    assert_eq!(spawns(dir.path()), 0);
}

#[test]
fn servers_are_listed_and_started_only_when_used() {
    let dir = project("");
    let r = mcp_lua(
        dir.path(),
        "return mcp.servers(), json.encode(app.mcp.nope)",
        &[],
    );
    let res = ok(&r);
    assert_eq!(res[0][0]["name"], "fx");
    assert_eq!(res[0][0]["transport"], "stdio");
    assert_eq!(res[0][0]["status"], "configured");
    assert!(res[0][0]["source"].as_str().unwrap().contains(".mcp.json"));
    assert_eq!(res[1], "null");
    assert_eq!(
        spawns(dir.path()),
        0,
        "a script that uses no MCP tool spawned a server"
    );
    // integrations:lua that never touches MCP spawns nothing either.
    let r = run_in(
        dir.path(),
        &["integrations:lua", "--json", "--eval", "return 1"],
        None,
    );
    ok(&r);
    assert_eq!(spawns(dir.path()), 0);

    let r = mcp_lua(
        dir.path(),
        "local t = mcp.tools('fx'); local s = mcp.servers()[1]; return #t, s.status, s.tools, t[1].name, t[1].input_schema.required[1], t[1].annotations.readOnlyHint",
        &[],
    );
    let res = ok(&r);
    assert_eq!(res, &json!([8, "running", 8, "echo", "text", true]));
    assert_eq!(spawns(dir.path()), 1);
}

#[test]
fn tools_are_callable_and_results_are_shaped() {
    let dir = project("");
    let r = mcp_lua(
        dir.path(),
        r#"return app.mcp.fx.echo{text = "hi"},
                  mcp.call("fx", "add", {a = 2, b = 3}),
                  mcp.call("fx.echo", {text = "dotted"}),
                  app.mcp.fx["dashed-name"](),
                  #app.mcp.fx.big{n = 200000}"#,
        &[],
    );
    let res = ok(&r);
    assert_eq!(
        res,
        &json!(["hi", {"sum": 5.0}, "dotted", "dash ok", 200000])
    );
    // Server chatter on stderr never reaches stdout (the one JSON envelope).
    assert!(!r.stdout.contains("fixture:"), "{}", r.stdout);
    // Every call is in integration_calls.
    let calls = r.env["integration_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 5);
    assert_eq!(calls[0]["path"], "mcp.fx.echo");
    assert_eq!(calls[0]["function"], "echo");
    assert_eq!(calls[0]["account"], "default");
    assert_eq!(calls[0]["class"], "read");
    assert_eq!(calls[0]["status"], "ok");
}

#[test]
fn tool_errors_and_bad_arguments_raise_structured_errors() {
    let dir = project("");
    let r = mcp_lua(
        dir.path(),
        r#"local ok1, e1 = pcall(app.mcp.fx.fail)
           local ok2, e2 = pcall(app.mcp.fx.echo, {text = 5})
           local ok3, e3 = pcall(app.mcp.fx.nope)
           local ok4, e4 = pcall(mcp.call, "ghost", "x", {})
           return ok1, e1.code, e1.message, e1.server, e1.tool, e1.content[1].text,
                  ok2, e2.code, ok3, e3.code, ok4, tostring(e4)"#,
        &[],
    );
    let res = ok(&r);
    assert_eq!(res[0], false);
    assert_eq!(res[1], "mcp_tool_error");
    assert!(res[2].as_str().unwrap().contains("it broke on purpose"));
    assert_eq!(res[3], "fx");
    assert_eq!(res[4], "fail");
    assert_eq!(res[5], "it broke on purpose");
    assert_eq!(res[6], false);
    assert_eq!(res[7], "validation_error");
    assert_eq!(res[8], false);
    assert_eq!(res[9], "mcp_unknown_tool");
    assert_eq!(res[10], false);
    assert!(
        res[11]
            .as_str()
            .unwrap()
            .contains("no MCP server named 'ghost'")
    );
    let calls = r.env["integration_calls"].as_array().unwrap();
    assert!(calls.iter().all(|c| c["status"] == "error"), "{calls:?}");
    // Unraised, the tool error fails the run with its code.
    let r = mcp_lua(dir.path(), "return app.mcp.fx.fail()", &[]);
    assert_eq!(r.env["success"], false);
    assert_eq!(r.env["error"]["code"], "mcp_tool_error");
    assert_eq!(r.code, 1);
}

#[test]
fn writes_need_permission_and_read_only_refuses_them() {
    let dir = project("");
    let r = mcp_lua(dir.path(), "return app.mcp.fx.write_note{note = 'n'}", &[]);
    assert_eq!(r.env["error"]["code"], "permission_denied", "{}", r.stdout);
    assert!(
        r.env["error"]["message"]
            .as_str()
            .unwrap()
            .contains("mcp.servers.fx.permissions.write")
    );
    let r = mcp_lua(
        dir.path(),
        "return app.mcp.fx.write_note{note = 'n'}",
        &["--force"],
    );
    assert_eq!(ok(&r), &json!(["saved: n"]));
    assert_eq!(r.env["integration_calls"][0]["class"], "write");
    let r = mcp_lua(
        dir.path(),
        "return app.mcp.fx.write_note{note = 'n'}",
        &["--force", "--read-only"],
    );
    assert_eq!(r.env["error"]["code"], "permission_denied");
    // Reads still work under --read-only.
    let r = mcp_lua(
        dir.path(),
        "return app.mcp.fx.echo{text = 'r'}",
        &["--read-only"],
    );
    assert_eq!(ok(&r), &json!(["r"]));
    // A per-server override in config.yaml allows the write.
    let dir = project("mcp:\n  servers:\n    fx: {permissions: {write: allow}}\n");
    let r = mcp_lua(dir.path(), "return app.mcp.fx.write_note{note = 'ok'}", &[]);
    assert_eq!(ok(&r), &json!(["saved: ok"]));
}

#[test]
fn timeouts_crashes_and_max_calls() {
    let dir = project("mcp:\n  servers:\n    fx: {timeout: 1}\n");
    let r = mcp_lua(
        dir.path(),
        "local ok, e = pcall(app.mcp.fx.slow, {seconds = 30}); return ok, e.code, e.server",
        &[],
    );
    assert_eq!(ok(&r), &json!([false, "mcp_timeout", "fx"]));
    let r = mcp_lua(
        dir.path(),
        "local ok, e = pcall(app.mcp.fx.crash); local ok2, e2 = pcall(app.mcp.fx.echo, {text = 'x'}); return ok, e.code, ok2, e2.code, mcp.servers()[1].status",
        &[],
    );
    let res = ok(&r);
    assert_eq!(res[0], false);
    assert_eq!(res[1], "mcp_server_failed");
    assert_eq!(res[2], false);
    assert_eq!(res[3], "mcp_server_failed");
    assert_eq!(res[4], "failed");
    let r = mcp_lua(
        dir.path(),
        "for i = 1, 3 do app.mcp.fx.echo{text = 'x'} end",
        &["--max-calls", "2"],
    );
    assert_eq!(r.env["error"]["code"], "limit_exceeded", "{}", r.stdout);
    assert_eq!(r.env["error"]["limit"], "calls");
    // The run's --timeout stops a slow tool too (and the server is shut down).
    let dir = project("");
    let r = mcp_lua(
        dir.path(),
        "return app.mcp.fx.slow{seconds = 60}",
        &["--timeout", "2"],
    );
    assert_eq!(r.env["error"]["code"], "limit_exceeded", "{}", r.stdout);
}

/// Whether process `pid` is gone (or a zombie waiting for its new parent to reap it), polling up
/// to 20 s.
fn gone(pid: u32) -> bool {
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(20) {
        match std::fs::read_to_string(format!("/proc/{pid}/status")) {
            Err(_) => return true,
            Ok(s)
                if s.lines()
                    .any(|l| l.starts_with("State:") && l.contains('Z')) =>
            {
                return true;
            }
            Ok(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    }
    false
}

#[test]
fn servers_are_shut_down_at_exit_and_on_a_signal() {
    let dir = project("");
    // A normal end: the server started by the run is gone after it.
    let r = mcp_lua(dir.path(), "return app.mcp.fx.echo{text = 'x'}", &[]);
    ok(&r);
    let log = std::fs::read_to_string(dir.path().join("spawns.log")).unwrap();
    let pid: u32 = log.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(gone(pid), "the MCP server outlived the run");
    // SIGTERM while a tool call is in flight: the envelope says interrupted, the server is gone.
    let _ = std::fs::remove_file(dir.path().join("spawns.log"));
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_kosmo"));
    cmd.args([
        "mcp:lua",
        "--json",
        "--eval",
        "return app.mcp.fx.slow{seconds = 60}",
    ])
    .current_dir(dir.path())
    .env("KOSMO_CONFIG_DIR", dir.path())
    .env("HOME", dir.path())
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    crate::support::wait_for_signal_handler(child.id(), 15);
    let started = std::time::Instant::now();
    let pid = loop {
        if let Some(p) = std::fs::read_to_string(dir.path().join("spawns.log"))
            .ok()
            .and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|p| p.parse::<u32>().ok())
            })
        {
            break p;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "the server never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    // Let the call reach the server (its stderr says so) before the signal.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    let env: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(env["success"], false);
    assert_eq!(env["error"]["code"], "interrupted", "{env}");
    assert_eq!(env["integration_calls"][0]["status"], "error");
    assert!(gone(pid), "the MCP server outlived an interrupted run");
}

#[test]
fn a_server_that_exits_or_hangs_at_start_gives_a_clear_error() {
    let dir = TempDir::new().unwrap();
    std::fs::write(
        dir.path().join(".mcp.json"),
        serde_json::to_string(&json!({"mcpServers": {
            "dies": {"command": FIXTURE, "args": ["--exit"]},
            "hangs": {"command": FIXTURE, "args": ["--hang"]},
            "missing": {"command": "/nonexistent/mcp-server"}
        }}))
        .unwrap(),
    )
    .unwrap();
    let r = mcp_lua(
        dir.path(),
        "local ok, e = pcall(mcp.tools, 'dies'); local ok2, e2 = pcall(app.mcp.missing.x) return ok, e.code, e.message, ok2, e2.code, e2.message",
        &[],
    );
    let res = ok(&r);
    assert_eq!(res[0], false);
    assert_eq!(res[1], "mcp_server_failed");
    // The server's last words are in the message.
    assert!(res[2].as_str().unwrap().contains("giving up"), "{res}");
    assert_eq!(res[3], false);
    assert_eq!(res[4], "mcp_server_failed");
    assert!(
        res[5].as_str().unwrap().contains("/nonexistent/mcp-server"),
        "{res}"
    );
    // A server that never answers the handshake does not hang kosmo: the run's limit stops it.
    let r = mcp_lua(dir.path(), "return mcp.tools('hangs')", &["--timeout", "2"]);
    assert_eq!(r.env["error"]["code"], "limit_exceeded", "{}", r.stdout);
}

#[test]
fn resources_and_prompts() {
    let dir = project("");
    let r = mcp_lua(
        dir.path(),
        r#"local rs = mcp.resources("fx")
           local c = mcp.read_resource("fx", rs[1].uri)
           local ps = mcp.prompts("fx")
           local p = mcp.get_prompt("fx", "greet", {name = "Ada"})
           return rs[1].uri, c[1].text, ps[1].name, p.messages[1].content.text"#,
        &[],
    );
    assert_eq!(
        ok(&r),
        &json!(["memo://one", "memo text", "greet", "Hello, Ada!"])
    );
}

#[test]
fn streamable_http_transport() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(FIXTURE)
        .args(["--http", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.trim().to_string();
    let dir = TempDir::new().unwrap();
    std::fs::write(
        dir.path().join(".mcp.json"),
        serde_json::to_string(&json!({"mcpServers": {
            "web": {"type": "http", "url": format!("http://{addr}/mcp"), "headers": {"X-Test": "${TEST_HEADER:-yes}"}}
        }}))
        .unwrap(),
    )
    .unwrap();
    let r = mcp_lua(
        dir.path(),
        "return app.mcp.web.add{a = 1, b = 2}, mcp.servers()[1].transport",
        &[],
    );
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(ok(&r), &json!([{"sum": 3.0}, "http"]));
}

#[test]
fn integrations_lua_sees_app_mcp_too() {
    let dir = project("");
    let r = run_in(
        dir.path(),
        &[
            "integrations:lua",
            "--json",
            "--eval",
            "return app.mcp.fx.echo{text = 'both'}",
        ],
        None,
    );
    assert_eq!(ok(&r), &json!(["both"]));
}

// ---------------------------------------------------------------------------------------------
// mcp:serve, driven by the official SDK's client.

mod serve {
    use rmcp::ServiceExt;
    use rmcp::model::{CallToolRequestParams, ReadResourceRequestParams};
    use rmcp::transport::TokioChildProcess;
    use serde_json::{Value, json};
    use tempfile::TempDir;

    fn kosmo_serve(dir: &std::path::Path, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_kosmo"));
        cmd.arg("mcp:serve")
            .args(args)
            .current_dir(dir)
            .env("KOSMO_CONFIG_DIR", dir)
            .env("HOME", dir)
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("KOSMO_MANIFEST_PATH")
            .env_remove("KOSMO_LOG")
            .kill_on_drop(true);
        cmd
    }

    async fn call(
        client: &rmcp::service::RunningService<rmcp::RoleClient, ()>,
        name: &str,
        args: Value,
    ) -> Value {
        let p = CallToolRequestParams::new(name.to_string())
            .with_arguments(args.as_object().cloned().unwrap_or_default());
        serde_json::to_value(client.call_tool(p).await.unwrap()).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_builtin_function_is_a_tool_with_hints_and_calls_reach_the_simulator() {
        let dir = TempDir::new().unwrap();
        let transport = TokioChildProcess::new(kosmo_serve(dir.path(), &["--offline"])).unwrap();
        let client = ().serve(transport).await.unwrap();
        let tools = client.list_all_tools().await.unwrap();
        let tools: Vec<Value> = tools
            .iter()
            .map(|t| serde_json::to_value(t).unwrap())
            .collect();
        // Every function of every built-in integration, plus `lua`.
        let reg = kosmo::registry::Registry::load(&kosmo::registry::RegistryOptions {
            dirs: Vec::new(),
            ignore_env: true,
        })
        .unwrap();
        let total: usize = reg.iter().map(|i| i.manifest.functions.len()).sum();
        assert_eq!(tools.len(), total + 1);
        for integ in reg.iter() {
            let m = &integ.manifest;
            for (name, f) in &m.functions {
                let tool_name = m.full_name(name, f);
                let t = tools
                    .iter()
                    .find(|t| t["name"] == tool_name.as_str())
                    .unwrap_or_else(|| panic!("{tool_name} is not served"));
                let read = f.class == kosmo::manifest::Class::Read;
                assert_eq!(t["annotations"]["readOnlyHint"], read, "{tool_name}");
                if read {
                    assert_eq!(t["annotations"]["destructiveHint"], false);
                    assert_eq!(t["annotations"]["idempotentHint"], true);
                }
                assert_eq!(
                    t["inputSchema"],
                    integ.input_schema(name).unwrap(),
                    "{tool_name}"
                );
            }
        }
        let get_model = tools
            .iter()
            .find(|t| t["name"] == "anthropic_get_model")
            .unwrap();
        assert!(get_model["description"].as_str().unwrap().len() > 10);

        // A read against the simulator: structured content.
        let r = call(&client, "anthropic_list_models", json!({"limit": 2})).await;
        assert_ne!(r["isError"], true, "{r}");
        assert!(r["structuredContent"]["data"].is_array(), "{r}");
        // A structured error as a tool error.
        let r = call(&client, "anthropic_get_model", json!({})).await;
        assert_eq!(r["isError"], true, "{r}");
        assert_eq!(
            r["structuredContent"]["error"]["code"], "validation_error",
            "{r}"
        );
        // A write without --force: refused (no terminal to ask on).
        let r = call(
            &client,
            "anthropic_create_message",
            json!({"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
        assert_eq!(r["isError"], true, "{r}");
        assert_eq!(
            r["structuredContent"]["error"]["code"], "permission_denied",
            "{r}"
        );
        // The lua tool answers the envelope.
        let r = call(
            &client,
            "lua",
            json!({"code": "return #app.integrations.anthropic.list_models{limit = 1}.data"}),
        )
        .await;
        assert_eq!(r["structuredContent"]["success"], true, "{r}");
        assert_eq!(r["structuredContent"]["result"], json!([1]), "{r}");
        assert_eq!(
            r["structuredContent"]["integration_calls"][0]["function"],
            "list_models"
        );
        // Docs are resources.
        let resources = client.list_all_resources().await.unwrap();
        let uris: Vec<String> = resources
            .iter()
            .map(|r| {
                serde_json::to_value(r).unwrap()["uri"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert!(
            uris.contains(&"kosmo://docs/errors".to_string()),
            "{uris:?}"
        );
        let page = client
            .read_resource(ReadResourceRequestParams::new("kosmo://docs/errors"))
            .await
            .unwrap();
        let page = serde_json::to_value(page).unwrap();
        assert!(
            page["contents"][0]["text"]
                .as_str()
                .unwrap()
                .contains("mcp_tool_error")
        );
        client.cancel().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn force_integration_filter_and_read_only() {
        let dir = TempDir::new().unwrap();
        let transport = TokioChildProcess::new(kosmo_serve(
            dir.path(),
            &["--offline", "--force", "--integration", "anthropic"],
        ))
        .unwrap();
        let client = ().serve(transport).await.unwrap();
        let tools = client.list_all_tools().await.unwrap();
        assert!(
            tools
                .iter()
                .all(|t| t.name.starts_with("anthropic_") || t.name == "lua")
        );
        let r = call(
            &client,
            "anthropic_create_message",
            json!({"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
        assert_ne!(r["isError"], true, "{r}");
        assert_eq!(r["structuredContent"]["type"], "message", "{r}");
        client.cancel().await.unwrap();

        let transport = TokioChildProcess::new(kosmo_serve(
            dir.path(),
            &["--offline", "--force", "--read-only"],
        ))
        .unwrap();
        let client = ().serve(transport).await.unwrap();
        let r = call(
            &client,
            "anthropic_create_message",
            json!({"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
        assert_eq!(
            r["structuredContent"]["error"]["code"], "permission_denied",
            "{r}"
        );
        client.cancel().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn streamable_http() {
        use rmcp::transport::StreamableHttpClientTransport;
        use tokio::io::AsyncBufReadExt;
        let dir = TempDir::new().unwrap();
        let mut cmd = kosmo_serve(dir.path(), &["--offline", "--http", "127.0.0.1:0"]);
        cmd.stdout(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let line = lines.next_line().await.unwrap().unwrap();
        let url = line.rsplit(' ').next().unwrap().to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "{line}");
        let client = ().serve(StreamableHttpClientTransport::from_uri(url)).await.unwrap();
        let r = call(&client, "openai_list_models", json!({})).await;
        assert_ne!(r["isError"], true, "{r}");
        client.cancel().await.unwrap();
        let _ = child.kill().await;
    }
}

#[test]
fn docs_read_renders_server_and_tool_pages() {
    let dir = project("");
    let r = run_in(
        dir.path(),
        &[
            "integrations:lua",
            "--json",
            "--eval",
            r#"local ok, e = pcall(docs.read, "mcp.fx.nope")
               return docs.read("mcp.fx"), docs.read("mcp.fx.echo"), lua_read_doc("app.mcp.fx.dashed-name"), ok, e.code"#,
        ],
        None,
    );
    let res = ok(&r);
    let server = res[0].as_str().unwrap();
    assert!(server.starts_with("# mcp.fx"), "{server}");
    assert!(server.contains("| `write_note` | write |"), "{server}");
    assert!(server.contains("| `echo` | read |"), "{server}");
    let tool = res[1].as_str().unwrap();
    assert!(tool.contains("# mcp.fx.echo"), "{tool}");
    assert!(tool.contains("`app.mcp.fx.echo`"), "{tool}");
    // The parameter table of the integration pages, from the tool's input schema.
    assert!(tool.contains("| `text` | string | yes |"), "{tool}");
    assert!(tool.contains("What to echo."), "{tool}");
    assert!(
        res[2]
            .as_str()
            .unwrap()
            .contains(r#"app.mcp.fx["dashed-name"]"#)
    );
    assert_eq!(res[3], false);
    assert_eq!(res[4], "unknown_page");
}

// ---------------------------------------------------------------------------------------------
// Real peers from the npm registry (tests/oracle/mcp, installed by .ci/run): the reference
// server-everything driven by kosmo's Lua client, and the MCP Inspector CLI driving mcp:serve.

mod peers {
    use std::path::PathBuf;

    use serde_json::{Value, json};
    use tempfile::TempDir;

    use super::ok;
    use crate::lua::run_in;

    /// `tests/oracle/mcp/node_modules`, or `None` (skipped loudly; under CI a failure).
    fn node_modules() -> Option<PathBuf> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/mcp/node_modules");
        if dir.join("@modelcontextprotocol/server-everything").is_dir() {
            return Some(dir);
        }
        assert!(
            std::env::var_os("CI").is_none(),
            "the MCP peers are not installed: run `npm ci` in tests/oracle/mcp (.ci/run does)"
        );
        eprintln!("SKIPPED: MCP peers not installed (cd tests/oracle/mcp && npm ci)");
        None
    }

    fn everything(modules: &std::path::Path) -> String {
        modules
            .join("@modelcontextprotocol/server-everything/dist/index.js")
            .display()
            .to_string()
    }

    #[test]
    fn server_everything_over_stdio() {
        let Some(modules) = node_modules() else {
            return;
        };
        let dir = TempDir::new().unwrap();
        std::fs::write(
            dir.path().join(".mcp.json"),
            serde_json::to_string(&json!({"mcpServers": {
                "everything": {"command": "node", "args": [everything(&modules), "stdio"]}
            }}))
            .unwrap(),
        )
        .unwrap();
        let r = run_in(
            dir.path(),
            &[
                "mcp:lua",
                "--json",
                "--eval",
                r#"local names = {}
                   for _, t in ipairs(mcp.tools("everything")) do names[t.name] = t.annotations.readOnlyHint or false end
                   local ok, e = pcall(app.mcp.everything["toggle-simulated-logging"])
                   local ok2, e2 = pcall(app.mcp.everything.echo, {})
                   return mcp.servers()[1].name, names.echo, names["toggle-simulated-logging"],
                          app.mcp.everything.echo{message = "hi"},
                          app.mcp.everything["get-sum"]{a = 2, b = 3},
                          app.mcp.everything["get-structured-content"]{location = "New York"},
                          app.mcp.everything["get-tiny-image"]()[2].type,
                          ok, e.code, ok2, e2.code,
                          #mcp.resources("everything") > 0, #mcp.prompts("everything") > 0"#,
            ],
            None,
        );
        let res = ok(&r);
        assert_eq!(res[0], "everything");
        assert_eq!(res[1], true, "echo is read-only: {res}");
        assert_eq!(res[2], false, "toggle-simulated-logging is a write: {res}");
        assert_eq!(res[3], "Echo: hi");
        assert!(res[4].as_str().unwrap().contains('5'), "{res}");
        assert!(res[5].is_object(), "structured content: {res}");
        assert_eq!(res[6], "image");
        // A write needs --force; bad arguments fail before anything is sent.
        assert_eq!(res[7], false);
        assert_eq!(res[8], "permission_denied");
        assert_eq!(res[9], false);
        assert_eq!(res[10], "validation_error");
        assert_eq!(res[11], true);
        assert_eq!(res[12], true);
        // The server's own output never reaches stdout: it is exactly one envelope.
        assert!(serde_json::from_str::<Value>(&r.stdout).is_ok());
        let r = run_in(
            dir.path(),
            &[
                "mcp:lua",
                "--json",
                "--force",
                "--eval",
                r#"return app.mcp.everything["toggle-simulated-logging"]()"#,
            ],
            None,
        );
        ok(&r);
        assert_eq!(r.env["integration_calls"][0]["class"], "write");
    }

    #[test]
    fn server_everything_over_streamable_http() {
        use std::io::BufRead;
        let Some(modules) = node_modules() else {
            return;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = std::process::Command::new("node")
            .args([everything(&modules), "streamableHttp".into()])
            .env("PORT", port.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        while err.read_line(&mut line).unwrap() > 0 && !line.contains("listening") {
            line.clear();
        }
        let dir = TempDir::new().unwrap();
        std::fs::write(
            dir.path().join(".mcp.json"),
            serde_json::to_string(&json!({"mcpServers": {
                "web": {"type": "http", "url": format!("http://127.0.0.1:{port}/mcp")}
            }}))
            .unwrap(),
        )
        .unwrap();
        let r = run_in(
            dir.path(),
            &[
                "mcp:lua",
                "--json",
                "--eval",
                "return app.mcp.web.echo{message = 'over http'}",
            ],
            None,
        );
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(ok(&r), &json!(["Echo: over http"]));
    }

    fn inspector(modules: &std::path::Path, dir: &std::path::Path, args: &[&str]) -> Value {
        let out = std::process::Command::new(modules.join(".bin/mcp-inspector"))
            .arg("--cli")
            .arg(env!("CARGO_BIN_EXE_kosmo"))
            .args(["mcp:serve", "--offline"])
            .args(args)
            .current_dir(dir)
            .env("KOSMO_CONFIG_DIR", dir)
            .env("HOME", dir)
            .env_remove("KOSMO_MANIFEST_PATH")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "inspector output is not JSON ({e}): {stdout}\nstderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    #[test]
    fn inspector_cli_drives_mcp_serve() {
        let Some(modules) = node_modules() else {
            return;
        };
        let dir = TempDir::new().unwrap();
        let list = inspector(&modules, dir.path(), &["--method", "tools/list"]);
        let tools = list["tools"].as_array().unwrap();
        let reg = kosmo::registry::Registry::load(&kosmo::registry::RegistryOptions {
            dirs: Vec::new(),
            ignore_env: true,
        })
        .unwrap();
        let total: usize = reg.iter().map(|i| i.manifest.functions.len()).sum();
        assert_eq!(tools.len(), total + 1);
        let get_model = tools
            .iter()
            .find(|t| t["name"] == "openai_get_model")
            .unwrap();
        assert_eq!(get_model["annotations"]["readOnlyHint"], true);
        let create = tools
            .iter()
            .find(|t| t["name"] == "anthropic_create_message")
            .unwrap();
        assert_eq!(create["annotations"]["readOnlyHint"], false);
        let r = inspector(
            &modules,
            dir.path(),
            &[
                "--method",
                "tools/call",
                "--tool-name",
                "anthropic_list_models",
                "--tool-arg",
                "limit=1",
            ],
        );
        assert_eq!(r["isError"], false, "{r}");
        assert_eq!(
            r["structuredContent"]["data"].as_array().unwrap().len(),
            1,
            "{r}"
        );
        let r = inspector(&modules, dir.path(), &["--method", "resources/list"]);
        assert!(
            r["resources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["uri"] == "kosmo://docs/errors")
        );
    }
}

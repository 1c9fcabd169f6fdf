//! QA acceptance checks: the product driven the way an independent checker drives it, with
//! cases the module owners did not write. The seed page's commands and Lua snippets verbatim
//! (offline and against a `kosmo simulator:serve` child process), every seed function and alias,
//! named accounts, credentials, permissions, dry runs, usage errors, a second sandbox battery,
//! a secret scan of every output, docs names, and the official SDK in strict mode
//! (`tests/sdk/acceptance.py`). Every test here pins behaviour that is correct today.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::support::{Sim, kosmo, sdk_python};

const API_KEY: &str = "sk-ant-api03-QAACCEPTANCEapi0000SECRET";
const ADMIN_KEY: &str = "sk-ant-admin01-QAACCEPTANCEadmin000SECRET";
const WORK_KEY: &str = "sk-ant-api03-QAACCEPTANCEwork0000SECRET";

/// One run of the binary.
struct Out {
    env: Value,
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn err_code(&self) -> &str {
        self.env["error"]["code"].as_str().unwrap_or("")
    }
    fn err_message(&self) -> &str {
        self.env["error"]["message"].as_str().unwrap_or("")
    }
    fn show(&self) -> String {
        format!(
            "exit {}\nstdout: {}\nstderr: {}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Run `kosmo ARGS` in `dir` (also its config dir) with extra environment variables.
fn run_env(dir: &Path, envs: &[(&str, &str)], args: &[&str]) -> Out {
    let mut cmd = kosmo(dir);
    cmd.current_dir(dir)
        .args(args)
        .timeout(Duration::from_secs(90))
        .write_stdin(Vec::new());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("kosmo runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let o = Out {
        env: serde_json::from_str(&stdout).unwrap_or(Value::Null),
        code: out.status.code().unwrap_or(-1),
        stdout,
        stderr,
    };
    assert!(
        (0..=2).contains(&o.code) && !o.stderr.contains("panicked"),
        "the host crashed: {}",
        o.show()
    );
    o
}

fn run(dir: &Path, args: &[&str]) -> Out {
    run_env(dir, &[], args)
}

/// `integrations:lua --json` with an intact envelope whose exit code matches `success`.
fn lua_json(dir: &Path, envs: &[(&str, &str)], args: &[&str]) -> Out {
    let mut all = vec!["integrations:lua"];
    all.extend_from_slice(args);
    if !all.contains(&"--json") {
        all.push("--json");
    }
    let o = run_env(dir, envs, &all);
    let env = o
        .env
        .as_object()
        .unwrap_or_else(|| panic!("no envelope: {}", o.show()));
    for key in [
        "success",
        "output",
        "error",
        "result",
        "execution_time_ms",
        "memory_usage",
        "integration_calls",
        "meta",
    ] {
        assert!(env.contains_key(key), "envelope lacks {key}: {}", o.show());
    }
    let ok = o.env["success"] == true;
    assert_eq!(ok, o.code == 0, "success vs exit code: {}", o.show());
    assert_eq!(
        ok,
        o.env["error"].is_null(),
        "success vs error: {}",
        o.show()
    );
    o
}

fn sim_env(sim: &Sim) -> [(&'static str, String); 2] {
    [
        ("ANTHROPIC_API_KEY", API_KEY.to_string()),
        ("ANTHROPIC_BASE_URL", sim.url.clone()),
    ]
}

fn as_refs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, s)| (*k, s.as_str())).collect()
}

const SEED_INLINE: &str = r#"dump(app.integrations.anthropic.list_messages({model = "example_model", limit = 1, before_id = "example_before_id", after_id = "example_after_id"}))"#;

const WORKFLOW: &str = r#"local anthropic = app.integrations.anthropic
local result = anthropic.list_messages({model = "example_model", limit = 1, before_id = "example_before_id", after_id = "example_after_id"})

dump(result)
"#;

fn assert_unsupported_list_messages(o: &Out) {
    assert_eq!(o.code, 1, "{}", o.show());
    assert_eq!(o.err_code(), "unsupported", "{}", o.show());
    assert!(
        o.err_message().contains("list_message_batches"),
        "{}",
        o.show()
    );
    let calls = o.env["integration_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "{}", o.show());
    assert_eq!(calls[0]["function"], "list_messages");
    assert_eq!(calls[0]["status"], "error");
    assert!(calls[0]["http_status"].is_null(), "no request is sent");
}

#[test]
fn seed_inline_command_offline_and_against_the_simulator() {
    let dir = TempDir::new().unwrap();
    let o = lua_json(
        dir.path(),
        &[],
        &["--eval", SEED_INLINE, "--json", "--offline"],
    );
    assert_unsupported_list_messages(&o);
    assert_eq!(o.env["meta"]["offline"], true);

    let sim = Sim::start(&[]);
    let envs = sim_env(&sim);
    let o = lua_json(
        dir.path(),
        &as_refs(&envs),
        &["--eval", SEED_INLINE, "--json"],
    );
    assert_unsupported_list_messages(&o);
    assert_eq!(o.env["meta"]["offline"], false);

    // Unsupported needs no credential at all.
    let o = lua_json(dir.path(), &[], &["--eval", SEED_INLINE, "--json"]);
    assert_unsupported_list_messages(&o);

    // Text mode: nothing on stdout, the message on stderr, exit 1.
    let o = run_env(
        dir.path(),
        &as_refs(&envs),
        &["integrations:lua", "--eval", SEED_INLINE],
    );
    assert_eq!(o.code, 1);
    assert!(o.stdout.is_empty(), "{}", o.show());
    assert!(o.stderr.contains("not supported"), "{}", o.show());
}

#[test]
fn seed_docs_commands_print_docs() {
    let dir = TempDir::new().unwrap();
    let o = lua_json(
        dir.path(),
        &[],
        &["--eval", r#"print(docs.read("anthropic"))"#, "--json"],
    );
    assert_eq!(o.code, 0, "{}", o.show());
    let out = o.env["output"].as_str().unwrap();
    assert!(
        out.starts_with("# Anthropic (Claude) - Lua API Reference"),
        "{out}"
    );
    for name in [
        "create_message",
        "count_message_tokens",
        "list_message_batches",
        "get_organization",
        "get_current_user",
        "list_organization_workspaces",
        "files-api-2025-04-14",
        "admin_key",
    ] {
        assert!(out.contains(name), "docs.read(anthropic) lacks {name}");
    }
    let o = lua_json(
        dir.path(),
        &[],
        &[
            "--eval",
            r#"print(docs.read("anthropic.list_messages"))"#,
            "--json",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.show());
    let out = o.env["output"].as_str().unwrap();
    assert!(out.contains("list_messages") && out.contains("list_message_batches"));
    assert!(!out.contains("No parameters."), "{out}");
}

#[test]
fn seed_workflow_file_with_and_without_force() {
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("workflow.lua"), WORKFLOW).unwrap();
    let sim = Sim::start(&[]);
    let envs = sim_env(&sim);
    for flags in [&["--json"][..], &["--force", "--json"][..]] {
        let mut args = vec!["workflow.lua"];
        args.extend_from_slice(flags);
        let o = lua_json(dir.path(), &as_refs(&envs), &args);
        assert_unsupported_list_messages(&o);
        let o = lua_json(dir.path(), &[], &[&args[..], &["--offline"]].concat());
        assert_unsupported_list_messages(&o);
    }
    // A workflow that succeeds, in both modes: results after the output in text mode.
    std::fs::write(
        dir.path().join("ok.lua"),
        "local m = app.integrations.anthropic.get_model({id = 'claude-sonnet-4-0'})\nprint(m.id)\nreturn m.type, 7\n",
    )
    .unwrap();
    let o = run_env(dir.path(), &as_refs(&envs), &["integrations:lua", "ok.lua"]);
    assert_eq!(o.code, 0, "{}", o.show());
    assert_eq!(
        o.stdout,
        "claude-sonnet-4-20250514\nmodel\n7\n",
        "{}",
        o.show()
    );
    let o = lua_json(dir.path(), &as_refs(&envs), &["ok.lua", "--force"]);
    assert_eq!(o.env["result"], json!(["model", 7]));
    assert_eq!(o.env["output"], "claude-sonnet-4-20250514");
    assert_eq!(o.env["integration_calls"][0]["http_status"], 200);
    assert!(
        o.env["integration_calls"][0]["request_id"]
            .as_str()
            .unwrap()
            .starts_with("req_")
    );
}

#[test]
fn seed_mcp_lua_command() {
    let dir = TempDir::new().unwrap();
    let o = run(
        dir.path(),
        &["mcp:lua", "--eval", "dump(mcp.servers())", "--json"],
    );
    assert_eq!(o.code, 0, "{}", o.show());
    assert_eq!(o.env["success"], true);
    assert_eq!(o.env["output"], "[]");
    let o = run(
        dir.path(),
        &["mcp:lua", "--eval", "return app.integrations", "--json"],
    );
    assert!(
        o.env["result"] == json!([null]) || o.env["success"] == false,
        "mcp:lua must not expose integrations: {}",
        o.show()
    );
}

/// The Lua snippets of the seed page's "Agent-Facing Lua Docs", character for character.
const SEED_SNIPPETS: [(&str, &str); 7] = [
    (
        r#"local result = app.integrations["anthropic"].create_message({
  model = "claude-sonnet-4-20250514",
  max_tokens = 256,
  messages = {
    { role = "user", content = "Summarize prompt caching in one paragraph." }
  }
})

print(result.id)
print(result.usage.input_tokens)"#,
        "msg_",
    ),
    (
        r#"local result = app.integrations["anthropic"].count_message_tokens({
  payload = {
    model = "claude-sonnet-4-20250514",
    messages = {
      { role = "user", content = "Hello, Claude" }
    }
  }
})

print(result.input_tokens)"#,
        "",
    ),
    (
        r#"local batch = app.integrations["anthropic"].create_message_batch({
  payload = {
    requests = {
      {
        custom_id = "example-1",
        params = {
          model = "claude-sonnet-4-20250514",
          max_tokens = 128,
          messages = {
            { role = "user", content = "Write one sentence about CI." }
          }
        }
      }
    }
  }
})

local current = app.integrations["anthropic"].get_message_batch({
  id = batch.id
})

print(current.processing_status)"#,
        "in_progress",
    ),
    (
        r#"local models = app.integrations["anthropic"].list_models({
  limit = 20
})

for _, model in ipairs(models.data or {}) do
  print(model.id .. " - " .. model.display_name)
end

local sonnet = app.integrations["anthropic"].get_model({
  id = "claude-sonnet-4-20250514"
})"#,
        " - Claude ",
    ),
    (
        r#"local files = app.integrations["anthropic"].list_files({
  query = { limit = 20 }
})

local file = app.integrations["anthropic"].get_file({
  id = "file_011example"
})

local content = app.integrations["anthropic"].download_file({
  id = "file_011downloadable"
})

print(content.content_type)"#,
        "text/csv",
    ),
    (
        r#"local org = app.integrations["anthropic"].get_organization({})

local users = app.integrations["anthropic"].list_users({
  query = { limit = 20 }
})

local keys = app.integrations["anthropic"].list_api_keys({
  query = { limit = 20, status = "active" }
})"#,
        "",
    ),
    (
        r#"local models = app.integrations["anthropic"].list_models({
  limit = 20
})
local n = 0
for _, model in ipairs(models.data or {}) do n = n + 1 end
print(n)"#,
        "20",
    ),
];

#[test]
fn seed_lua_snippets_run_unchanged_offline() {
    let dir = TempDir::new().unwrap();
    for (i, (code, expect)) in SEED_SNIPPETS.iter().enumerate() {
        let o = lua_json(dir.path(), &[], &["--eval", code, "--offline", "--force"]);
        assert_eq!(o.code, 0, "snippet {i}: {}", o.show());
        assert!(
            o.env["output"].as_str().unwrap().contains(expect),
            "snippet {i}: {}",
            o.show()
        );
    }
    // The read-only snippets need no --force.
    for i in [1, 3, 4, 5, 6] {
        let o = lua_json(
            dir.path(),
            &[],
            &["--eval", SEED_SNIPPETS[i].0, "--offline"],
        );
        assert_eq!(o.code, 0, "snippet {i} without --force: {}", o.show());
    }
    // A write without --force and without a terminal is refused, with the way out.
    let o = lua_json(
        dir.path(),
        &[],
        &["--eval", SEED_SNIPPETS[0].0, "--offline"],
    );
    assert_eq!(o.err_code(), "permission_denied", "{}", o.show());
    assert!(o.err_message().contains("--force"), "{}", o.show());
    assert!(
        o.err_message()
            .contains("kosmo integrations:configure anthropic --write allow"),
        "{}",
        o.show()
    );
}

/// Every seed function and alias, in every call shape the seed page and the issues document.
const ALL_FUNCTIONS: &str = r#"
local a = app.integrations.anthropic
local out = {}
local function try(name, want, f)
  local ok, r = pcall(f)
  local got
  if ok then got = tostring(r) else got = "ERR:" .. tostring(type(r) == "table" and r.code or r) end
  if got ~= want then out[#out + 1] = name .. ": want " .. want .. ", got " .. got end
end
local msgs = {{role = "user", content = "Hello"}}
try("create_message flat", "message", function() return a.create_message{model = "claude-sonnet-4-20250514", max_tokens = 16, messages = msgs}.type end)
try("create_message payload", "message", function() return a.create_message{payload = {model = "m", max_tokens = 16, messages = msgs}}.type end)
try("create_message positional", "message", function() return a.create_message("m", msgs).type end)
try("create_message pass-through", "message", function() return a.create_message{model = "m", messages = msgs, some_future_field = {x = 1}}.type end)
try("count flat", "number", function() return type(a.count_message_tokens{model = "m", messages = msgs}.input_tokens) end)
try("count payload", "number", function() return type(a.count_message_tokens{payload = {model = "m", messages = msgs}}.input_tokens) end)
try("list_messages", "ERR:unsupported", function() return a.list_messages{} end)
local b
try("create_batch payload", "in_progress", function() b = a.create_message_batch{payload = {requests = {{custom_id = "x1", params = {model = "m", max_tokens = 10, messages = msgs}}}}} return b.processing_status end)
try("create_batch flat", "message_batch", function() return a.create_message_batch{requests = {{custom_id = "x2", params = {model = "m", max_tokens = 10, messages = msgs}}}}.type end)
try("list_batches query", "true", function() return #a.list_message_batches{query = {limit = 20}}.data >= 2 end)
try("list_batches flat", "2", function() return #a.list_message_batches{limit = 2}.data end)
try("list_batches positional", "1", function() return #a.list_message_batches(1).data end)
try("get_batch", "message_batch", function() return a.get_message_batch{id = b.id}.type end)
try("get_batch positional", "message_batch", function() return a.get_message_batch(b.id).type end)
try("results before end", "ERR:invalid_request_error", function() return a.get_message_batch_results{id = b.id} end)
try("delete before end", "ERR:invalid_request_error", function() return a.delete_message_batch{id = b.id} end)
try("cancel", "canceling", function() return a.cancel_message_batch{id = b.id}.processing_status end)
try("wait", "ended", function() return a.wait_for_message_batch{id = b.id}.processing_status end)
try("results", "application/x-jsonl", function() return a.get_message_batch_results{id = b.id}.content_type end)
try("results rows", "canceled", function() return json.decode((a.get_message_batch_results{id = b.id}.body:gsub("\n$", ""))).result.type end)
try("delete", "message_batch_deleted", function() return a.delete_message_batch{id = b.id}.type end)
try("list_models flat", "20", function() return #a.list_models{limit = 20}.data end)
try("list_models query", "3", function() return #a.list_models{query = {limit = 3}}.data end)
try("list_models positional", "2", function() return #a.list_models(2).data end)
try("list_models fetch_all capped", "5", function() return #a.list_models{fetch_all = true, limit = 2, max_items = 5}.data end)
try("get_model", "claude-sonnet-4-20250514", function() return a.get_model{id = "claude-sonnet-4-20250514"}.id end)
try("get_model alias id", "claude-sonnet-4-20250514", function() return a.get_model("claude-sonnet-4-0").id end)
try("get_model unknown", "ERR:not_found_error", function() return a.get_model("claude-nope").id end)
try("list_files", "true", function() return #a.list_files{query = {limit = 20}}.data >= 3 end)
try("get_file", "file", function() return a.get_file{id = "file_011example"}.type end)
try("download_file", "text/csv", function() return a.download_file{id = "file_011downloadable"}.content_type end)
try("download not downloadable", "ERR:invalid_request_error", function() return a.download_file{id = "file_011example"} end)
try("delete_file", "file_deleted", function() return a.delete_file{id = "file_011example"}.type end)
try("get_organization", "organization", function() return a.get_organization{}.type end)
try("get_organization no args", "organization", function() return a.get_organization().type end)
try("get_current_user", "organization", function() return a.get_current_user({}).type end)
try("get_organization_alias", "organization", function() return a.get_organization_alias({}).type end)
try("anthropic_get_current_user", "organization", function() return a.anthropic_get_current_user{}.type end)
try("list_workspaces", "3", function() return #a.list_workspaces{limit = 20, include_archived = false}.data end)
try("list_workspaces archived", "4", function() return #a.list_workspaces{include_archived = true}.data end)
try("list_organization_workspaces", "3", function() return #a.list_organization_workspaces({ limit = 20, include_archived = false }).data end)
try("anthropic_list_workspaces", "3", function() return #a.anthropic_list_workspaces{}.data end)
try("get_workspace", "workspace", function() return a.get_workspace{id = "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ"}.type end)
try("get_organization_workspace", "workspace", function() return a.get_organization_workspace({ id = "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ" }).type end)
try("list_users", "7", function() return #a.list_users({ query = { limit = 20 } }).data end)
try("get_user", "user", function() return a.get_user({ id = "user_01WCz1FkmYMm4gnmykNKUu3Q" }).type end)
try("update_user payload", "developer", function() return a.update_user({ id = "user_01WCz1FkmYMm4gnmykNKUu3Q", payload = { role = "developer" } }).role end)
try("update_user kept", "developer", function() return a.get_user("user_01WCz1FkmYMm4gnmykNKUu3Q").role end)
try("update_user positional", "user", function() return a.update_user("user_01WCz1FkmYMm4gnmykNKUu3Q", "user").role end)
try("update_user admin refused", "ERR:validation_error", function() return a.update_user{id = "user_01WCz1FkmYMm4gnmykNKUu3Q", role = "admin"} end)
try("remove_user", "user_deleted", function() return a.remove_user({ id = "user_01WCz1FkmYMm4gnmykNKUu3Q" }).type end)
try("removed user gone", "ERR:not_found_error", function() return a.get_user{id = "user_01WCz1FkmYMm4gnmykNKUu3Q"} end)
try("list_api_keys", "3", function() return #a.list_api_keys({ query = { limit = 20, status = "active" } }).data end)
try("get_api_key", "api_key", function() return a.get_api_key({ id = "apikey_01Rj2N8SVvo6BePZj99NhmiT" }).type end)
try("validation before request", "ERR:validation_error", function() return a.get_model{id = 42} end)
try("unknown argument", "ERR:validation_error", function() return a.list_models{limitt = 2} end)
try("flat and payload disagree", "ERR:validation_error", function() return a.count_message_tokens{model = "a", payload = {model = "b", messages = msgs}} end)
try("unknown integration is nil", "nil", function() return app.integrations.nothere end)
return out
"#;

#[test]
fn every_seed_function_and_alias_through_lua() {
    let dir = TempDir::new().unwrap();
    let o = lua_json(
        dir.path(),
        &[],
        &["--eval", ALL_FUNCTIONS, "--offline", "--force"],
    );
    assert_eq!(o.code, 0, "{}", o.show());
    let failures = &o.env["result"][0];
    assert!(
        failures == &json!([]) || failures == &json!({}),
        "{}",
        o.show()
    );
    let calls = o.env["integration_calls"].as_array().unwrap();
    assert!(calls.len() > 50, "{}", calls.len());
    for c in calls {
        for key in [
            "path",
            "function",
            "account",
            "class",
            "status",
            "duration_ms",
            "http_status",
            "request_id",
            "error",
        ] {
            assert!(c.get(key).is_some(), "call record lacks {key}: {c}");
        }
    }
    // Aliases are recorded under their canonical function.
    assert!(
        calls
            .iter()
            .any(|c| c["path"] == "integrations.anthropic.get_current_user"
                || c["function"] == "get_organization")
    );
}

#[test]
fn unknown_function_lists_the_closest_names() {
    let dir = TempDir::new().unwrap();
    for code in [
        "return app.integrations.anthropic.creat_mesage{model = 'x'}",
        "local ok, e = pcall(function() return app.integrations.anthropic.creat_mesage{} end) error(e)",
    ] {
        let o = lua_json(dir.path(), &[], &["--eval", code]);
        assert_eq!(o.err_code(), "unknown_function", "{}", o.show());
        assert_eq!(
            o.env["error"]["suggestions"][0],
            "create_message",
            "{}",
            o.show()
        );
    }
    let o = lua_json(
        dir.path(),
        &[],
        &["--eval", "return app.integrations.nothere == nil"],
    );
    assert_eq!(o.env["result"], json!([true]));
}

#[test]
fn every_seed_name_and_alias_has_a_schema() {
    let dir = TempDir::new().unwrap();
    let cases: [(&str, &[&str]); 16] = [
        ("create_message", &["model", "messages"]),
        ("count_message_tokens", &["model", "messages"]),
        ("list_messages", &[]),
        ("create_message_batch", &["requests"]),
        ("list_message_batches", &[]),
        ("get_message_batch_results", &["id"]),
        ("get_model", &["id"]),
        ("download_file", &["id"]),
        ("get_current_user", &[]),
        ("get_organization_alias", &[]),
        ("list_organization_workspaces", &[]),
        ("get_organization_workspace", &["id"]),
        ("anthropic_list_workspaces", &[]),
        ("anthropic_get_current_user", &[]),
        ("update_user", &["id", "role"]),
        ("list_api_keys", &[]),
    ];
    for (name, required) in cases {
        let full = format!("anthropic.{name}");
        let o = run(dir.path(), &["integrations:schema", &full]);
        assert_eq!(o.code, 0, "{name}: {}", o.show());
        let mut got: Vec<&str> = o.env["required"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        got.sort();
        let mut want = required.to_vec();
        want.sort();
        assert_eq!(got, want, "{name}");
    }
    let o = run(dir.path(), &["integrations:schema", "anthropic.list_users"]);
    assert_eq!(o.env["properties"]["limit"]["type"], "integer");
    let o = run(dir.path(), &["integrations:schema", "anthropic.nope"]);
    assert_eq!(o.code, 1, "{}", o.show());
}

#[test]
fn named_accounts_configured_from_the_cli() {
    let sim = Sim::start(&[]);
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    let o = run(
        d,
        &[
            "integrations:configure",
            "anthropic",
            "--account",
            "work",
            "--set",
            &format!("api_key={WORK_KEY}"),
            "--set",
            &format!("url={}/v1", sim.url),
        ],
    );
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
    let envs = sim_env(&sim);
    let o = lua_json(d, &as_refs(&envs), &["--eval", code]);
    assert_eq!(o.code, 0, "{}", o.show());
    let accounts: Vec<&str> = o.env["integration_calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["account"].as_str().unwrap())
        .collect();
    assert_eq!(accounts, ["work", "work", "default"]);

    // --account makes the un-named namespace use that account.
    let o = lua_json(
        d,
        &[],
        &[
            "--account",
            "work",
            "--eval",
            "return app.integrations.anthropic.get_model('claude-sonnet-4-0').id",
        ],
    );
    assert_eq!(
        o.env["result"],
        json!(["claude-sonnet-4-20250514"]),
        "{}",
        o.show()
    );
    assert_eq!(o.env["integration_calls"][0]["account"], "work");

    // An admin function on an account with only an API key: fails before any request.
    let o = lua_json(
        d,
        &[],
        &[
            "--eval",
            "return app.integrations.anthropic.work.get_organization({})",
        ],
    );
    assert_eq!(o.err_code(), "missing_credential", "{}", o.show());
    assert!(o.err_message().contains("'work'") && o.err_message().contains("admin_key"));
    assert!(o.env["integration_calls"][0]["http_status"].is_null());

    // An account that does not exist is named in the error.
    let o = lua_json(
        d,
        &[],
        &[
            "--account",
            "nosuch",
            "--eval",
            "return app.integrations.anthropic.get_model('claude-sonnet-4-0')",
        ],
    );
    assert_eq!(o.code, 1);
    assert!(o.err_message().contains("nosuch"), "{}", o.show());
    let o = lua_json(
        d,
        &[],
        &[
            "--eval",
            "return app.integrations.anthropic.nosuch.get_model('x')",
        ],
    );
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
        let o = run(d, &args);
        assert_eq!(o.code, 2, "{bad:?}: {}", o.show());
    }
}

#[test]
fn missing_credentials_say_what_to_set() {
    let dir = TempDir::new().unwrap();
    let sim = Sim::start(&[]);
    let envs = sim_env(&sim);
    let o = lua_json(
        dir.path(),
        &as_refs(&envs),
        &[
            "--eval",
            "return app.integrations.anthropic.get_organization({})",
        ],
    );
    assert_eq!(o.err_code(), "missing_credential", "{}", o.show());
    let msg = o.err_message();
    assert!(
        msg.contains("admin_key") && msg.contains("ANTHROPIC_ADMIN_KEY"),
        "{msg}"
    );
    assert!(msg.contains("'default'"), "{msg}");

    let o = lua_json(
        dir.path(),
        &[],
        &["--eval", "return app.integrations.anthropic.get_model('x')"],
    );
    assert_eq!(o.err_code(), "missing_credential", "{}", o.show());
    assert!(
        o.err_message().contains("ANTHROPIC_API_KEY"),
        "{}",
        o.show()
    );

    // With both keys the admin call goes through.
    let mut both = as_refs(&envs);
    both.push(("ANTHROPIC_ADMIN_KEY", ADMIN_KEY));
    let o = lua_json(
        dir.path(),
        &both,
        &[
            "--eval",
            "return app.integrations.anthropic.get_organization({}).type",
        ],
    );
    assert_eq!(o.env["result"], json!(["organization"]), "{}", o.show());
}

#[test]
fn permission_matrix() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    let read = "return app.integrations.anthropic.get_model('claude-sonnet-4-0').id";
    let write = "return app.integrations.anthropic.create_message{model = 'm', messages = {{role = 'user', content = 'x'}}}.type";
    let o = run(
        d,
        &[
            "integrations:configure",
            "anthropic",
            "--read",
            "deny",
            "--write",
            "deny",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.show());
    // (flags, read ok, write ok, permission_bypassed)
    let matrix: [(&[&str], bool, bool, bool); 4] = [
        (&[], false, false, false),
        (&["--force"], true, true, true),
        (&["--read-only"], false, false, false),
        (&["--read-only", "--force"], true, false, true),
    ];
    for (flags, read_ok, write_ok, bypassed) in matrix {
        for (code, ok) in [(read, read_ok), (write, write_ok)] {
            let mut args = vec!["--offline", "--eval", code];
            args.extend_from_slice(flags);
            let o = lua_json(d, &[], &args);
            assert_eq!(o.env["success"], ok, "{flags:?} {code}: {}", o.show());
            if !ok {
                assert_eq!(o.err_code(), "permission_denied");
            }
            assert_eq!(o.env["meta"]["permission_bypassed"], bypassed, "{flags:?}");
            assert_eq!(
                o.env["meta"]["read_only"],
                flags.contains(&"--read-only"),
                "{flags:?}"
            );
        }
    }
    let o = lua_json(
        d,
        &[],
        &["--offline", "--read-only", "--force", "--eval", write],
    );
    assert!(o.err_message().contains("--read-only"), "{}", o.show());
    // pcall cannot turn a refused write into a success of the call.
    let o = lua_json(
        d,
        &[],
        &[
            "--offline",
            "--eval",
            &format!("local ok, e = pcall(function() {write} end) return ok, e.code"),
        ],
    );
    assert_eq!(
        o.env["result"],
        json!([false, "permission_denied"]),
        "{}",
        o.show()
    );
}

#[test]
fn dry_run_redacts_the_key_and_sends_nothing() {
    let sim = Sim::start(&[]);
    let dir = TempDir::new().unwrap();
    let base = sim_env(&sim);
    let mut envs = as_refs(&base);
    envs.push(("ANTHROPIC_ADMIN_KEY", ADMIN_KEY));
    let code = r#"
local a = app.integrations.anthropic
local r1 = a.create_message_batch{requests = {{custom_id = "dry", params = {model = "m", max_tokens = 5, messages = {{role = "user", content = "x"}}}}}}
local r2 = a.get_organization{}
local r3 = a.list_files{query = {limit = 3}, betas = {"extra-beta-1"}}
dump(r1) dump(r2) dump(r3)
return r1.method, r1.url, r3.headers["anthropic-beta"], r3.query.limit"#;
    let o = lua_json(d_path(&dir), &envs, &["--dry-run", "--eval", code]);
    assert_eq!(o.code, 0, "{}", o.show());
    assert_eq!(
        o.env["result"],
        json!([
            "POST",
            format!("{}/v1/messages/batches", sim.url),
            "extra-beta-1,files-api-2025-04-14",
            "3"
        ]),
        "{}",
        o.show()
    );
    assert_eq!(o.env["meta"]["dry_run"], true);
    for secret in [API_KEY, ADMIN_KEY, "QAACCEPTANCE"] {
        assert!(
            !o.stdout.contains(secret) && !o.stderr.contains(secret),
            "{}",
            o.show()
        );
    }
    assert!(o.stdout.contains("[redacted]"));
    // Nothing reached the server: the batch does not exist.
    let o = lua_json(
        d_path(&dir),
        &envs,
        &[
            "--eval",
            "for _, b in ipairs(app.integrations.anthropic.list_message_batches{limit = 100}.data) do if b.request_counts.processing == 1 and b.id ~= 'msgbatch_013Zva2CMHLNnXjNJJKqJ2EF' then return b.id end end return 'none'",
        ],
    );
    assert_eq!(o.env["result"], json!(["none"]), "{}", o.show());
}

fn d_path(dir: &TempDir) -> &Path {
    dir.path()
}

#[test]
fn usage_errors_exit_2_with_an_envelope() {
    let dir = TempDir::new().unwrap();
    let bad: [&[&str]; 14] = [
        &["--memory-limit", "12Q"],
        &["--memory-limit", "-5"],
        &["--memory-limit", "0"],
        &["--memory-limit", "10"],
        &["--memory-limit", "99999999999T"],
        &["--cpu-limit", "-1"],
        &["--cpu-limit", "0"],
        &["--cpu-limit", "NaN"],
        &["--cpu-limit", "inf"],
        &["--timeout", "-3"],
        &["--timeout", "abc"],
        &["--timeout", "1e400"],
        &["--max-calls", "-1"],
        &["--max-calls", "1.5"],
    ];
    for flags in bad {
        let mut args = vec!["integrations:lua", "--eval", "return 1", "--json"];
        args.extend_from_slice(flags);
        let o = run(dir.path(), &args);
        assert_eq!(o.code, 2, "{flags:?}: {}", o.show());
        assert_eq!(o.env["success"], false, "{flags:?}: {}", o.show());
        assert_eq!(o.err_code(), "usage_error", "{flags:?}");
        assert!(
            o.err_message().contains(flags[0]),
            "{flags:?}: {}",
            o.show()
        );
        // Text mode: same exit code, message on stderr.
        let o = run(
            dir.path(),
            &[&["integrations:lua", "--eval", "return 1"][..], flags].concat(),
        );
        assert_eq!(o.code, 2, "{flags:?}");
        assert!(o.stderr.contains(flags[0]), "{flags:?}: {}", o.show());
    }
    for good in [
        &["--memory-limit", "64m"][..],
        &["--memory-limit", "1.5G"][..],
        &["--memory-limit", "512K"][..],
        &["--cpu-limit", "0.5"][..],
        &["--timeout", "2.5"][..],
    ] {
        let mut args = vec!["--eval", "return 1"];
        args.extend_from_slice(good);
        let o = lua_json(dir.path(), &[], &args);
        assert_eq!(o.env["result"], json!([1]), "{good:?}: {}", o.show());
    }
    // A missing file is a failure with an envelope.
    let o = lua_json(dir.path(), &[], &["/nonexistent/workflow.lua"]);
    assert_eq!(o.code, 1);
    assert_eq!(o.err_code(), "io_error");
}

#[test]
fn code_from_stdin_and_file_forms() {
    let dir = TempDir::new().unwrap();
    let mut cmd = kosmo(dir.path());
    let out = cmd
        .args(["integrations:lua", "-", "--json"])
        .write_stdin("return 6 * 7")
        .output()
        .unwrap();
    let env: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(env["result"], json!([42]));
    let mut cmd = kosmo(dir.path());
    let out = cmd
        .args(["integrations:lua", "--json"])
        .write_stdin("return 'piped'")
        .output()
        .unwrap();
    let env: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(env["result"], json!(["piped"]));
    let o = lua_json(dir.path(), &[], &["--eval", "x = "]);
    assert_eq!(o.code, 1);
    assert!(o.err_message().contains("<eof>"), "{}", o.show());
}

#[test]
fn repl_keeps_state_and_prints_values() {
    let dir = TempDir::new().unwrap();
    let mut cmd = kosmo(dir.path());
    let out = cmd
        .args(["integrations:lua", "--repl"])
        .write_stdin("x = 41\nreturn x + 1\nfunction f(a)\n  return a * 2\nend\nf(21)\n:quit\nprint('after quit')\n")
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout, "42\n42\n", "{stdout}");
}

/// Escape and exhaustion attempts beyond tests/it/lua/sandbox.rs.
#[derive(Clone, Copy)]
enum Want {
    /// Any contained outcome (intact envelope, exit 0 or 1, no crash).
    Contained,
    /// Succeeds with this JSON result.
    Result(&'static str),
    /// Fails with this error code.
    Fails(&'static str),
    /// Stopped by this limit.
    Limit(&'static str),
}

const BATTERY: &[(&str, &str, Want)] = &[
    (
        "rawget _G",
        "return rawget(_G, 'io'), rawget(_G, 'package'), rawget(_G, 'debug'), rawget(_G, 'require')",
        Want::Result("[null,null,null,null]"),
    ),
    (
        "os fields",
        "local n = {} for k in pairs(os) do n[#n + 1] = k end table.sort(n) return table.concat(n, ',')",
        Want::Result(r#"["clock,date,time"]"#),
    ),
    (
        "no string.dump via methods",
        "return ('').dump",
        Want::Result("[null]"),
    ),
    (
        "string metatable hidden",
        "return getmetatable('')",
        Want::Result("[false]"),
    ),
    (
        "_G walk has no host escape",
        "for k, v in next, _G do if k == 'io' or k == 'package' or k == 'debug' or k == 'require' or k == 'dofile' or k == 'loadfile' or k == 'collectgarbage' then return k end end return 'clean'",
        Want::Result(r#"["clean"]"#),
    ),
    (
        "load returns _ENV = sandbox",
        "return load('return _ENV')() == _G",
        Want::Result("[true]"),
    ),
    (
        "load with a table env has no io",
        "return load('return io', 'x', 't', setmetatable({}, {__index = function(t, k) return nil end}))()",
        Want::Result("[null]"),
    ),
    (
        "load with a nil env",
        "return pcall(load('return print', 'x', 't', nil))",
        Want::Contained,
    ),
    (
        "load reader returning a table",
        "return load(function() return {} end)",
        Want::Contained,
    ),
    (
        "load reader memory bomb",
        "local n = 0 return load(function() n = n + 1 if n < 2000 then return string.rep('x=1 ', 10000) end end)",
        Want::Contained,
    ),
    (
        "load with a huge chunk name",
        "return load('return 1', string.rep('=', 1e6))()",
        Want::Result("[1]"),
    ),
    (
        "parser nesting",
        "return pcall(load, ('('):rep(1e5) .. '1' .. (')'):rep(1e5))",
        Want::Contained,
    ),
    (
        "table constructor nesting",
        "return pcall(load, 'return ' .. ('{'):rep(1e5) .. ('}'):rep(1e5))",
        Want::Contained,
    ),
    (
        "concat expression nesting",
        "return pcall(load, 'return ' .. ('\"a\"..'):rep(1e5) .. '\"a\"')",
        Want::Contained,
    ),
    (
        "constants bomb",
        "local s = {'return {'} for i = 1, 1e6 do s[#s + 1] = i .. ',' end s[#s + 1] = '}' return #load(table.concat(s))()",
        Want::Contained,
    ),
    (
        "select with huge varargs",
        "local function f(...) return select('#', ...) end return f(table.unpack({}, 1, 1e6))",
        Want::Fails("lua_error"),
    ),
    (
        "select at 2^62",
        "return select(2^62, 1)",
        Want::Result("[]"),
    ),
    (
        "string.rep with a huge separator",
        "return #string.rep('x', 1e5, string.rep('y', 1e5))",
        Want::Contained,
    ),
    (
        "string.rep of empty 2^53 times",
        "return string.rep('', 2^53)",
        Want::Contained,
    ),
    (
        "table.concat bomb",
        "local s = ('x'):rep(1e6) local t = {} for i = 1, 1000 do t[i] = s end return #table.concat(t)",
        Want::Limit("memory"),
    ),
    (
        "table.concat separator bomb",
        "local t = {} for i = 1, 1e6 do t[i] = '' end return #table.concat(t, ('x'):rep(1000))",
        Want::Limit("memory"),
    ),
    (
        "utf8.char bomb",
        "local t = {} for i = 1, 200000 do t[i] = 0x10FFFF end return #utf8.char(table.unpack(t))",
        Want::Result("[800000]"),
    ),
    (
        "utf8.codepoint over a huge range",
        "return utf8.codepoint(('x'):rep(1e6), 1, -1)",
        Want::Fails("lua_error"),
    ),
    (
        "string.byte over a huge range",
        "return select('#', string.byte(('x'):rep(1e6), 1, -1))",
        Want::Fails("lua_error"),
    ),
    (
        "string.char bomb",
        "return pcall(string.char, table.unpack({}, 1, 1e6))",
        Want::Contained,
    ),
    (
        "string.packsize bomb",
        "return string.packsize(('i16'):rep(1e9))",
        Want::Contained,
    ),
    (
        "long __index chain",
        "local t = {} for i = 1, 1e5 do t = setmetatable({}, {__index = t}) end return t.x",
        Want::Contained,
    ),
    (
        "__index cycle",
        "local a, b = {}, {} setmetatable(a, {__index = b}) setmetatable(b, {__index = a}) return a.x",
        Want::Fails("lua_error"),
    ),
    (
        "__newindex cycle",
        "local a, b = {}, {} setmetatable(a, {__newindex = b}) setmetatable(b, {__newindex = a}) a.x = 1",
        Want::Fails("lua_error"),
    ),
    (
        "__eq recursion",
        "local mt = {} mt.__eq = function(a, b) return a == b end return setmetatable({}, mt) == setmetatable({}, mt)",
        Want::Fails("lua_error"),
    ),
    (
        "__concat recursion",
        "local mt = {} mt.__concat = function(a, b) return a .. b end return setmetatable({}, mt) .. 'x'",
        Want::Fails("lua_error"),
    ),
    (
        "__len recursion",
        "local mt = {} mt.__len = function(a) return #a end return #setmetatable({}, mt)",
        Want::Fails("lua_error"),
    ),
    (
        "__call self chain",
        "local t = setmetatable({}, {}) getmetatable(t).__call = t return t()",
        Want::Contained,
    ),
    ("goto loop", "::a:: goto a", Want::Limit("cpu")),
    (
        "coroutine nesting",
        "local function f(n) if n == 0 then return 0 end return coroutine.wrap(function() return f(n - 1) end)() end return f(250)",
        Want::Contained,
    ),
    (
        "coroutine bomb with yields",
        "local t = {} for i = 1, 1e5 do t[i] = coroutine.create(function() coroutine.yield() end) coroutine.resume(t[i]) end return #t",
        Want::Contained,
    ),
    (
        "yield across pcall",
        "local co = coroutine.wrap(function() pcall(coroutine.yield, 1) return 2 end) return co(), co()",
        Want::Result("[1,2]"),
    ),
    (
        "yield across a host callback",
        "local co = coroutine.create(function() return regex.gsub('a', 'a', function() return coroutine.yield(1) end) end) return (coroutine.resume(co))",
        Want::Result("[false]"),
    ),
    (
        "yield inside __tostring of print",
        "local co = coroutine.create(function() print(setmetatable({}, {__tostring = function() coroutine.yield() return 'x' end})) end) return (coroutine.resume(co))",
        Want::Result("[false]"),
    ),
    (
        "__gc on _G",
        "setmetatable(_G, {__gc = function() while true do end end}) return 1",
        Want::Fails("lua_error"),
    ),
    (
        "__close that errors",
        "do local x <close> = setmetatable({}, {__close = function() error('c') end}) end",
        Want::Fails("lua_error"),
    ),
    ("error(nil)", "error(nil)", Want::Fails("lua_error")),
    ("error(42)", "error(42)", Want::Fails("lua_error")),
    (
        "error(function)",
        "error(function() end)",
        Want::Fails("lua_error"),
    ),
    ("error(false)", "error(false)", Want::Fails("lua_error")),
    (
        "error(thread)",
        "error(coroutine.create(print))",
        Want::Fails("lua_error"),
    ),
    (
        "error table whose __index throws",
        "error(setmetatable({}, {__index = function() error('boom') end}))",
        Want::Fails("lua_error"),
    ),
    (
        "error table whose __index loops",
        "error(setmetatable({code = 'x'}, {__index = function() while true do end end}))",
        Want::Contained,
    ),
    (
        "error with a huge level",
        "error('x', 1e9)",
        Want::Fails("lua_error"),
    ),
    (
        "xpcall handler that errors",
        "return xpcall(error, function(e) error(e) end, 'x')",
        Want::Contained,
    ),
    (
        "xpcall handler recursion",
        "local function h(e) return xpcall(error, h, e) end return xpcall(error, h, 'x')",
        Want::Contained,
    ),
    ("os.date '%'", "return pcall(os.date, '%')", Want::Contained),
    (
        "os.date '%Q'",
        "return (pcall(os.date, '%Q'))",
        Want::Result("[false]"),
    ),
    (
        "os.date at 2^62",
        "return (pcall(os.date, '%c', 2^62))",
        Want::Result("[false]"),
    ),
    (
        "os.date *t at -2^62",
        "return (pcall(os.date, '*t', -2^62))",
        Want::Result("[false]"),
    ),
    (
        "os.date !*t at 1e300",
        "return (pcall(os.date, '!*t', 1e300))",
        Want::Result("[false]"),
    ),
    (
        "os.date with a huge format",
        "return #os.date(string.rep('%c', 1e6))",
        Want::Contained,
    ),
    (
        "os.time with a huge year",
        "return (pcall(os.time, {year = 2^40, month = 1, day = 1}))",
        Want::Result("[false]"),
    ),
    (
        "string.format %.99999f",
        "return string.format('%.99999f', 1)",
        Want::Fails("lua_error"),
    ),
    (
        "string.format %q of 10 MB",
        "return #string.format('%q', ('\\0'):rep(1e7))",
        Want::Contained,
    ),
    (
        "string.format %c of 1e9",
        "return #string.format('%c', 1e9)",
        Want::Result("[1]"),
    ),
    (
        "gsub bomb",
        "return ('a'):rep(1e6):gsub('', ('y'):rep(1000))",
        Want::Limit("memory"),
    ),
    (
        "%b bomb",
        "return string.find(('('):rep(1e6), '%b()')",
        Want::Limit("cpu"),
    ),
    (
        "pattern too complex",
        "return string.match(('a'):rep(300000), ('a?'):rep(300000) .. ('a'):rep(300000))",
        Want::Fails("lua_error"),
    ),
    (
        "too many captures",
        "return string.find('a', ('()'):rep(100))",
        Want::Fails("lua_error"),
    ),
    (
        "regex of 1 MB",
        "return (pcall(regex.match, 'a', ('a'):rep(1e6)))",
        Want::Result("[false]"),
    ),
    (
        "nested regex repetition",
        "return (pcall(regex.match, 'a', '((((a{100}){100}){100}){100})'))",
        Want::Result("[false]"),
    ),
    (
        "regex backreference refused",
        "return (pcall(regex.match, 'aa', '(a)\\\\1'))",
        Want::Result("[false]"),
    ),
    (
        "regex /i flag",
        "return regex.match('HeLLo', '/hello/i')[0]",
        Want::Result(r#"["HeLLo"]"#),
    ),
    (
        "regex.split of 1e6 parts",
        "return #regex.split(('a,'):rep(1e6), ',')",
        Want::Result("[1000001]"),
    ),
    (
        "regex.gsub callback error",
        "return (pcall(regex.gsub, 'abc', 'b', function() error({x = 1}) end))",
        Want::Result("[false]"),
    ),
    (
        "json.decode of 1e6 nested arrays",
        "return (pcall(json.decode, ('['):rep(1e6) .. (']'):rep(1e6)))",
        Want::Result("[false]"),
    ),
    (
        "json.decode of 1e5 nested objects",
        "return (pcall(json.decode, ('{\"a\":'):rep(1e5) .. '1' .. ('}'):rep(1e5)))",
        Want::Result("[false]"),
    ),
    (
        "json.decode of a 20 MB string",
        "return #json.decode('\"' .. ('x'):rep(2e7) .. '\"')",
        Want::Contained,
    ),
    (
        "json.decode of bad UTF-8",
        "return (pcall(json.decode, '\"\\xff\"'))",
        Want::Result("[false]"),
    ),
    (
        "json.decode of 1e400",
        "return (pcall(json.decode, '1e400'))",
        Want::Result("[false]"),
    ),
    (
        "json.decode of nil",
        "return (pcall(json.decode, nil))",
        Want::Result("[false]"),
    ),
    (
        "json.encode of an array cycle",
        "local t = {} t[1] = t return (pcall(json.encode, t))",
        Want::Result("[false]"),
    ),
    (
        "json.encode of NaN",
        "return (pcall(json.encode, {0/0}))",
        Want::Result("[false]"),
    ),
    (
        "json.encode of a table key",
        "return (pcall(json.encode, {[{}] = 1}))",
        Want::Result("[false]"),
    ),
    (
        "json.encode of bad UTF-8",
        "return (pcall(json.encode, '\\xff\\xfe'))",
        Want::Result("[false]"),
    ),
    (
        "json.encode with a throwing __pairs",
        "return json.encode(setmetatable({}, {__pairs = function() error('p') end}))",
        Want::Contained,
    ),
    (
        "json round trip of [] and {}",
        "return json.encode(json.decode('{\"a\":[],\"b\":{}}'))",
        Want::Result(r#"["{\"a\":[],\"b\":{}}"]"#),
    ),
    (
        "json.null round trip",
        "return json.encode(json.decode('[null,1]')), json.decode('null') == json.null",
        Want::Result(r#"["[null,1]",true]"#),
    ),
    (
        "dump of a cycle",
        "local t = {} t.self = t t[1] = t dump(t) return 1",
        Want::Result("[1]"),
    ),
    (
        "dump of a mutual cycle",
        "local a, b = {}, {} a.b = b b.a = a dump(a) return 1",
        Want::Result("[1]"),
    ),
    (
        "dump with a throwing __tostring",
        "dump(setmetatable({}, {__tostring = function() error('x') end})) return 1",
        Want::Contained,
    ),
    (
        "dump of mixed key types",
        "dump({[1] = 1, a = 2, [true] = 3, [1.5] = 4, [print] = 5}) return 1",
        Want::Result("[1]"),
    ),
    (
        "dump of 20 MB",
        "dump(('x'):rep(2e7))",
        Want::Limit("output"),
    ),
    (
        "dump of a million keys",
        "local t = {} for i = 1, 1e6 do t['k' .. i] = i end dump(t)",
        Want::Contained,
    ),
    (
        "print of NUL and bad UTF-8",
        "print('a\\0b', '\\xff\\xfe') return 1",
        Want::Result("[1]"),
    ),
    (
        "tostring replaced",
        "tostring = function() return 'x' end print(1) dump({1}) return 1",
        Want::Result("[1]"),
    ),
    (
        "return of a cycle",
        "local t = {} t.t = t return t",
        Want::Contained,
    ),
    (
        "return of functions and threads",
        "return print, coroutine.create(print)",
        Want::Contained,
    ),
    (
        "return of NaN and infinities",
        "return 0/0, 1/0, -1/0, math.mininteger",
        Want::Contained,
    ),
    (
        "return of bad UTF-8",
        "return '\\xff\\xfe'",
        Want::Contained,
    ),
    (
        "return of a million items",
        "local t = {} for i = 1, 1e6 do t[i] = i end return t",
        Want::Contained,
    ),
    (
        "math edge cases",
        "return math.mininteger % -1, math.mininteger // -1, (pcall(function() return 1 // 0 end))",
        Want::Result("[0,-9223372036854775808,false]"),
    ),
    (
        "table.move wrap-around",
        "return (pcall(table.move, {1}, 1, math.maxinteger, 2))",
        Want::Result("[false]"),
    ),
    (
        "table.sort with an invalid order",
        "local t = {} for i = 1, 1000 do t[i] = i end return (pcall(table.sort, t, function() return true end))",
        Want::Contained,
    ),
    (
        "table.unpack of 2^31",
        "return (pcall(table.unpack, {}, 1, 2^31))",
        Want::Result("[false]"),
    ),
    (
        "docs.read of 10 MB",
        "return (pcall(docs.read, ('x'):rep(1e7)))",
        Want::Contained,
    ),
    (
        "docs.search of 2 MB",
        "return (pcall(docs.search, ('x '):rep(1e6), 1e9))",
        Want::Contained,
    ),
    (
        "docs helpers with bad types",
        "return (pcall(docs.list, {})), (pcall(lua_read_doc, {})), (pcall(docs.search, 'x', -1))",
        Want::Result("[false,false,false]"),
    ),
    (
        "parallel of non-functions",
        "return (pcall(parallel, 1, 'x', {}))",
        Want::Result("[false]"),
    ),
    (
        "parallel of 10000 functions",
        "local fs = {} for i = 1, 10000 do fs[i] = function() return i end end return select('#', parallel(table.unpack(fs, 1, 7000)))",
        Want::Contained,
    ),
    (
        "parallel that loops",
        "parallel(function() while true do end end)",
        Want::Limit("cpu"),
    ),
    (
        "call with a cyclic argument",
        "local t = {} t.t = t return (pcall(app.integrations.anthropic.create_message, {model = 'm', messages = {t}}))",
        Want::Result("[false]"),
    ),
    (
        "call with a function argument",
        "local ok, e = pcall(app.integrations.anthropic.get_model, {id = print}) return e.code",
        Want::Result(r#"["validation_error"]"#),
    ),
    (
        "call with method syntax",
        "local ok, e = pcall(function() return app.integrations.anthropic:get_model('x') end) return ok",
        Want::Result("[false]"),
    ),
    (
        "rawset on a namespace",
        "return (pcall(rawset, app.integrations.anthropic, 'x', 1))",
        Want::Result("[false]"),
    ),
    (
        "next on app.integrations",
        "return (pcall(next, app.integrations))",
        Want::Result("[false]"),
    ),
    (
        "pairs on a namespace",
        "for k in pairs(app.integrations.anthropic) do end",
        Want::Fails("lua_error"),
    ),
    (
        "integration call in a coroutine",
        "local co = coroutine.create(function() return app.integrations.anthropic.list_messages{} end) local ok, e = coroutine.resume(co) return ok, e.code",
        Want::Result(r#"[false,"unsupported"]"#),
    ),
    (
        "10000 dry-run calls",
        "for i = 1, 10000 do app.integrations.anthropic.get_model('m') end return 1",
        Want::Result("[1]"),
    ),
];

fn check_case(name: &str, code: &str, want: Want) -> Result<(), String> {
    let dir = TempDir::new().unwrap();
    // Budgets far from each other, so a loaded machine cannot change which limit fires.
    let cpu = if matches!(want, Want::Limit("cpu")) {
        "2"
    } else {
        "60"
    };
    let mut args = vec![
        "--eval",
        code,
        "--cpu-limit",
        cpu,
        "--timeout",
        "120",
        "--max-calls",
        "100000",
    ];
    if code.contains("app.integrations") {
        args.push("--dry-run");
    }
    let started = Instant::now();
    let o = std::panic::catch_unwind(|| lua_json(dir.path(), &[], &args))
        .map_err(|_| format!("{name}: crashed or no envelope"))?;
    // A hang guard, not a speed check: the budgets above end every run well before this.
    if started.elapsed() > Duration::from_secs(300) {
        return Err(format!("{name}: took {:?}", started.elapsed()));
    }
    let env = &o.env;
    let ok = match want {
        Want::Contained => true,
        Want::Result(r) => {
            env["success"] == true && env["result"] == serde_json::from_str::<Value>(r).unwrap()
        }
        Want::Fails(c) => env["error"]["code"] == c,
        Want::Limit(l) => env["error"]["code"] == "limit_exceeded" && env["error"]["limit"] == l,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name}: unexpected outcome: {}",
            serde_json::to_string(env)
                .unwrap()
                .chars()
                .take(600)
                .collect::<String>()
        ))
    }
}

#[test]
fn sandbox_second_battery() {
    let chunks: Vec<&[(&str, &str, Want)]> = BATTERY.chunks(BATTERY.len().div_ceil(4)).collect();
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                s.spawn(move || {
                    chunk
                        .iter()
                        .filter_map(|(n, c, w)| check_case(n, c, *w).err())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|_| vec!["a worker panicked".into()])
            })
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn limits_are_not_dodged() {
    let dir = TempDir::new().unwrap();
    let o = lua_json(
        dir.path(),
        &[],
        &[
            "--offline",
            "--max-calls",
            "1",
            "--eval",
            "app.integrations.anthropic.get_model('claude-sonnet-4-0') local ok = pcall(app.integrations.anthropic.get_model, 'claude-sonnet-4-0') return 'survived'",
        ],
    );
    assert_eq!(o.err_code(), "limit_exceeded", "{}", o.show());
    assert_eq!(o.env["error"]["limit"], "calls");
    let o = lua_json(
        dir.path(),
        &[],
        &[
            "--offline",
            "--force",
            "--cpu-limit",
            "0.5",
            "--eval",
            "return app.integrations.anthropic.create_message{model = 'm', messages = {{role = 'user', content = 'x'}}, stream = true, on_event = function(e) while true do end end}",
        ],
    );
    assert_eq!(o.env["error"]["limit"], "cpu", "{}", o.show());
    assert_eq!(o.env["integration_calls"].as_array().unwrap().len(), 1);
}

#[test]
fn streaming_through_lua() {
    let dir = TempDir::new().unwrap();
    let code = r#"
local kinds = {}
local r = app.integrations.anthropic.create_message{model = "m", max_tokens = 64,
  messages = {{role = "user", content = "stream this"}}, stream = true,
  on_event = function(e) kinds[#kinds + 1] = e.type end}
local plain = app.integrations.anthropic.create_message{model = "m", max_tokens = 64,
  messages = {{role = "user", content = "stream this"}}}
return r.type, r.stop_reason, r.content[1].text == plain.content[1].text, kinds[1], kinds[#kinds],
  r.usage.output_tokens == plain.usage.output_tokens"#;
    let o = lua_json(dir.path(), &[], &["--offline", "--force", "--eval", code]);
    assert_eq!(
        o.env["result"],
        json!([
            "message",
            "end_turn",
            true,
            "message_start",
            "message_stop",
            true
        ]),
        "{}",
        o.show()
    );
    // An error raised in on_event stops the call and is reported for that function.
    let o = lua_json(
        dir.path(),
        &[],
        &[
            "--offline",
            "--force",
            "--eval",
            "return app.integrations.anthropic.create_message{model = 'm', messages = {{role = 'user', content = 'x'}}, stream = true, on_event = function(e) error('stop here') end}",
        ],
    );
    assert!(o.err_message().contains("stop here"), "{}", o.show());
    assert_eq!(o.env["error"]["function"], "create_message");
}

#[test]
fn executor_faults_reported_in_the_envelope() {
    let sim = Sim::start(&[]);
    let dir = TempDir::new().unwrap();
    std::fs::write(
        dir.path().join("config.yaml"),
        "http: {max_retries: 2, connect_timeout: 2, timeout: 2, stream_idle_timeout: 2}\n",
    )
    .unwrap();
    let envs = sim_env(&sim);
    let stream = "return app.integrations.anthropic.create_message{model = 'm', max_tokens = 20, messages = {{role = 'user', content = 'x'}}, stream = true}.stop_reason";
    let get = "return app.integrations.anthropic.get_model('claude-sonnet-4-0').id";
    let upload = "return app.integrations.anthropic.upload_file{file = {content = 'hi', filename = 'a.txt'}}.id";
    let plain = "return app.integrations.anthropic.create_message{model = 'm', max_tokens = 5, messages = {{role = 'user', content = 'x'}}}.stop_reason";
    let cases: [(&str, &str, &str); 17] = [
        ("create_message=429:retry-after=0,ok", stream, "ok"),
        ("get_model=500,529,ok", get, "ok"),
        ("get_model=409,408,ok", get, "ok"),
        ("get_model=503,html,ok", get, "ok"),
        ("get_model=429:retry-after-ms=100,ok", get, "ok"),
        (
            "get_model=529:should-retry=false,ok",
            get,
            "overloaded_error",
        ),
        ("get_model=eof,ok", get, "ok"),
        // A write that is not idempotent is not retried once it may have reached the server.
        ("create_message=500,ok", stream, "api_error"),
        ("create_message=500,ok", plain, "api_error"),
        ("upload_file=500,ok", upload, "api_error"),
        (
            "create_message_batch=429,ok",
            "return app.integrations.anthropic.create_message_batch{requests = {{custom_id = 'a', params = {model = 'm', max_tokens = 5, messages = {{role = 'user', content = 'x'}}}}}}.processing_status",
            "ok",
        ),
        // A gateway's HTML 502 is an error answer with its status, typed by it.
        ("create_message=html", stream, "api_error"),
        ("create_message=eof:after=3", stream, "transport_error"),
        (
            "create_message=error-event:after=3",
            stream,
            "overloaded_error",
        ),
        ("create_message=hang:after=2", stream, "transport_error"),
        ("get_model=stall*3", get, "transport_error"),
        ("get_model=stall", get, "ok"),
    ];
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    for (spec, code, want) in cases {
        let (cleared, scripted) = rt.block_on(async {
            let a = client
                .delete(format!("{}/_kosmo/faults", sim.url))
                .send()
                .await
                .unwrap()
                .status();
            let b = client
                .post(format!("{}/_kosmo/faults", sim.url))
                .body(spec)
                .send()
                .await
                .unwrap()
                .status();
            (a, b)
        });
        assert!(cleared.is_success() && scripted.is_success(), "{spec}");
        let o = lua_json(dir.path(), &as_refs(&envs), &["--force", "--eval", code]);
        if want == "ok" {
            assert_eq!(o.code, 0, "{spec}: {}", o.show());
        } else {
            assert_eq!(o.err_code(), want, "{spec}: {}", o.show());
            let calls = o.env["integration_calls"].as_array().unwrap();
            assert_eq!(calls.len(), 1, "{spec}");
            assert_eq!(calls[0]["status"], "error", "{spec}");
        }
        for s in [API_KEY, "QAACCEPTANCE"] {
            assert!(!o.stdout.contains(s) && !o.stderr.contains(s), "{spec}");
        }
    }
}

#[test]
fn no_secret_in_any_output_even_with_debug_logs() {
    let sim = Sim::start(&[]);
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    let o = run(
        d,
        &[
            "integrations:configure",
            "anthropic",
            "--account",
            "work",
            "--set",
            &format!("api_key={WORK_KEY}"),
            "--set",
            &format!("url={}", sim.url),
            "--json",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.show());
    let base = sim_env(&sim);
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
            let o = run_env(d, &envs, &args);
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
    let o = run_env(
        d,
        &[
            ("ANTHROPIC_API_KEY", "not-a-key-QAACCEPTANCE-SECRET"),
            ("ANTHROPIC_BASE_URL", sim.url.as_str()),
            ("KOSMO_LOG", "debug"),
        ],
        &[
            "integrations:lua",
            "--json",
            "--eval",
            "return app.integrations.anthropic.get_model('claude-sonnet-4-0')",
        ],
    );
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
        let o = run(d, args);
        assert!(
            !o.stdout.contains("QAACCEPTANCE") && !o.stderr.contains("QAACCEPTANCE"),
            "{args:?}: {}",
            o.show()
        );
    }
}

#[test]
fn docs_names_resolve_and_unknown_pages_list_what_exists() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    let pages = [
        ("anthropic", "# Anthropic (Claude) - Lua API Reference"),
        (
            "integrations.anthropic",
            "# Anthropic (Claude) - Lua API Reference",
        ),
        (
            "app.integrations.anthropic",
            "# Anthropic (Claude) - Lua API Reference",
        ),
        ("anthropic.create_message", "# anthropic.create_message"),
        (
            "integrations.anthropic.create_message",
            "# anthropic.create_message",
        ),
        (
            "app.integrations.anthropic.create_message",
            "# anthropic.create_message",
        ),
        ("anthropic.get_current_user", "# anthropic.get_organization"),
        (
            "anthropic.get_organization_alias",
            "# anthropic.get_organization",
        ),
        (
            "anthropic.anthropic_get_current_user",
            "# anthropic.get_organization",
        ),
        (
            "anthropic.list_organization_workspaces",
            "# anthropic.list_workspaces",
        ),
        (
            "anthropic.anthropic_list_workspaces",
            "# anthropic.list_workspaces",
        ),
        (
            "anthropic.get_organization_workspace",
            "# anthropic.get_workspace",
        ),
        ("overview", "#"),
        ("errors", "#"),
        ("examples", "#"),
    ];
    for (page, head) in pages {
        let o = run(d, &["integrations:docs", page]);
        assert_eq!(o.code, 0, "{page}: {}", o.show());
        assert!(o.stdout.starts_with(head), "{page}: {}", o.show());
        let o = lua_json(
            d,
            &[],
            &[
                "--eval",
                &format!("return docs.read('{page}'):sub(1, {})", head.len()),
            ],
        );
        assert_eq!(
            o.env["result"],
            json!([head]),
            "docs.read({page}): {}",
            o.show()
        );
    }
    let o = lua_json(
        d,
        &[],
        &[
            "--eval",
            "return lua_read_doc('integrations.anthropic'):sub(1, 11)",
        ],
    );
    assert_eq!(o.env["result"], json!(["# Anthropic"]));
    // Named accounts get a page once configured.
    let o = run(
        d,
        &[
            "integrations:configure",
            "anthropic",
            "--account",
            "work",
            "--set",
            "api_key=sk-ant-api03-x",
        ],
    );
    assert_eq!(o.code, 0);
    for page in [
        "anthropic.work",
        "integrations.anthropic.work",
        "app.integrations.anthropic.work",
    ] {
        let o = run(d, &["integrations:docs", page]);
        assert!(
            o.stdout.contains("app.integrations[\"anthropic\"].work"),
            "{page}: {}",
            o.show()
        );
    }
    // Unknown pages fail and list what exists.
    let o = run(d, &["integrations:docs", "nosuchpage"]);
    assert_eq!(o.code, 1, "{}", o.show());
    assert!(o.stderr.contains("integrations.anthropic.create_message"));
    let o = lua_json(d, &[], &["--eval", "return docs.read('anthropic.nosuch')"]);
    assert_eq!(o.err_code(), "unknown_page", "{}", o.show());
    let o = lua_json(d, &[], &["--eval", "return docs.search('batch', 2)"]);
    let hits = o.env["result"][0].as_array().unwrap();
    assert_eq!(hits.len(), 2);
    assert!(
        hits.iter()
            .all(|h| h["page"].as_str().unwrap().contains("batch"))
    );
    for format in ["markdown", "text", "json"] {
        let o = run(
            d,
            &[
                "integrations:docs",
                "anthropic.get_model",
                "--format",
                format,
            ],
        );
        assert_eq!(o.code, 0, "{format}: {}", o.show());
        assert!(o.stdout.to_lowercase().contains("get_model"));
    }
}

#[test]
fn generated_reference_is_current() {
    let dir = TempDir::new().unwrap();
    let o = run_env(
        dir.path(),
        &[],
        &[
            "docs:generate",
            "--check",
            "--out",
            concat!(env!("CARGO_MANIFEST_DIR"), "/docs/reference"),
        ],
    );
    assert_eq!(o.code, 0, "{}", o.show());
}

#[test]
fn sdk_strict_acceptance_against_simulator_serve() {
    let Some(py) = sdk_python() else {
        return;
    };
    let sim = Sim::start(&[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/acceptance.py");
    let out = Command::new(py)
        .arg(script)
        .arg(&sim.url)
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("all acceptance cases passed"),
        "acceptance.py failed\n{stdout}\n{stderr}"
    );
}

#[test]
fn lua_error_values_carry_the_documented_fields() {
    let sim = Sim::start(&["--faults", "get_model=429:retry-after=0*20"]);
    let dir = TempDir::new().unwrap();
    let envs = sim_env(&sim);
    let code = r#"
local ok, e = pcall(app.integrations.anthropic.get_model, "claude-sonnet-4-0")
return ok, e.code, e.status, e.type, e.retry_after, e["function"], e.account,
  e.request_id:sub(1, 4), tostring(e) == e.message, tostring(e):find("rate") ~= nil"#;
    let o = lua_json(dir.path(), &as_refs(&envs), &["--eval", code]);
    assert_eq!(
        o.env["result"],
        json!([
            false,
            "rate_limit_error",
            429,
            "rate_limit_error",
            0.0,
            "get_model",
            "default",
            "req_",
            true,
            true
        ]),
        "{}",
        o.show()
    );
    // Re-raised, it keeps its code in the envelope; the call record has the HTTP status.
    let o = lua_json(
        dir.path(),
        &as_refs(&envs),
        &[
            "--eval",
            "local ok, e = pcall(app.integrations.anthropic.get_model, 'claude-sonnet-4-0') error(e)",
        ],
    );
    assert_eq!(o.err_code(), "rate_limit_error", "{}", o.show());
    assert_eq!(o.env["error"]["status"], 429);
    assert_eq!(o.env["integration_calls"][0]["http_status"], 429);
}

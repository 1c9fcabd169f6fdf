//! The seed page's commands and Lua snippets verbatim (offline and against a
//! `kosmo simulator:serve` child process), and every seed function and alias with its schema.

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::support::{Kosmo, Run, Sim, as_refs, sim_env};

const API_KEY: &str = "sk-ant-api03-QAACCEPTANCEapi0000SECRET";

const SEED_INLINE: &str = r#"dump(app.integrations.anthropic.list_messages({model = "example_model", limit = 1, before_id = "example_before_id", after_id = "example_after_id"}))"#;

const WORKFLOW: &str = r#"local anthropic = app.integrations.anthropic
local result = anthropic.list_messages({model = "example_model", limit = 1, before_id = "example_before_id", after_id = "example_after_id"})

dump(result)
"#;

fn assert_unsupported_list_messages(o: &Run) {
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
    let o = Kosmo::lua_args(&["--eval", SEED_INLINE, "--json", "--offline"])
        .dir(dir.path())
        .run();
    assert_unsupported_list_messages(&o);
    assert_eq!(o.env["meta"]["offline"], true);

    let sim = Sim::start(&[]);
    let envs = sim_env(&sim, API_KEY);
    let o = Kosmo::lua_args(&["--eval", SEED_INLINE, "--json"])
        .dir(dir.path())
        .envs(&as_refs(&envs))
        .run();
    assert_unsupported_list_messages(&o);
    assert_eq!(o.env["meta"]["offline"], false);

    // Unsupported needs no credential at all.
    let o = Kosmo::lua_args(&["--eval", SEED_INLINE, "--json"])
        .dir(dir.path())
        .run();
    assert_unsupported_list_messages(&o);

    // Text mode: nothing on stdout, the message on stderr, exit 1.
    let o = Kosmo::cmd(&["integrations:lua", "--eval", SEED_INLINE])
        .dir(dir.path())
        .envs(&as_refs(&envs))
        .run();
    assert_eq!(o.code, 1);
    assert!(o.stdout.is_empty(), "{}", o.show());
    assert!(o.stderr.contains("not supported"), "{}", o.show());
}

#[test]
fn seed_docs_commands_print_docs() {
    let dir = TempDir::new().unwrap();
    let o = Kosmo::lua_args(&["--eval", r#"print(docs.read("anthropic"))"#, "--json"])
        .dir(dir.path())
        .run();
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
    let o = Kosmo::lua_args(&[
        "--eval",
        r#"print(docs.read("anthropic.list_messages"))"#,
        "--json",
    ])
    .dir(dir.path())
    .run();
    assert_eq!(o.code, 0, "{}", o.show());
    let out = o.env["output"].as_str().unwrap();
    assert!(out.contains("list_messages") && out.contains("list_message_batches"));
    assert!(!out.contains("No parameters."), "{out}");
}

#[test]
fn seed_workflow_file_against_the_simulator_and_offline() {
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("workflow.lua"), WORKFLOW).unwrap();
    let sim = Sim::start(&[]);
    let envs = sim_env(&sim, API_KEY);
    for flags in [&["--json"][..], &["--force", "--json"][..]] {
        let mut args = vec!["workflow.lua"];
        args.extend_from_slice(flags);
        let o = Kosmo::lua_args(&args)
            .dir(dir.path())
            .envs(&as_refs(&envs))
            .run();
        assert_unsupported_list_messages(&o);
        let o = Kosmo::lua_args(&[&args[..], &["--offline"]].concat())
            .dir(dir.path())
            .run();
        assert_unsupported_list_messages(&o);
    }
    // A workflow that succeeds, in both modes: results after the output in text mode.
    std::fs::write(
        dir.path().join("ok.lua"),
        "local m = app.integrations.anthropic.get_model({id = 'claude-sonnet-4-0'})\nprint(m.id)\nreturn m.type, 7\n",
    )
    .unwrap();
    let o = Kosmo::cmd(&["integrations:lua", "ok.lua"])
        .dir(dir.path())
        .envs(&as_refs(&envs))
        .run();
    assert_eq!(o.code, 0, "{}", o.show());
    assert_eq!(
        o.stdout,
        "claude-sonnet-4-20250514\nmodel\n7\n",
        "{}",
        o.show()
    );
    let o = Kosmo::lua_args(&["ok.lua", "--force"])
        .dir(dir.path())
        .envs(&as_refs(&envs))
        .run();
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
    let o = Kosmo::cmd(&["mcp:lua", "--eval", "dump(mcp.servers())", "--json"])
        .dir(dir.path())
        .run();
    assert_eq!(o.code, 0, "{}", o.show());
    assert_eq!(o.env["success"], true);
    assert_eq!(o.env["output"], "[]");
    let o = Kosmo::cmd(&["mcp:lua", "--eval", "return app.integrations", "--json"])
        .dir(dir.path())
        .run();
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
        let o = Kosmo::lua_args(&["--eval", code, "--offline", "--force"])
            .dir(dir.path())
            .run();
        assert_eq!(o.code, 0, "snippet {i}: {}", o.show());
        assert!(
            o.env["output"].as_str().unwrap().contains(expect),
            "snippet {i}: {}",
            o.show()
        );
    }
    // The read-only snippets need no --force.
    for i in [1, 3, 4, 5, 6] {
        let o = Kosmo::lua_args(&["--eval", SEED_SNIPPETS[i].0, "--offline"])
            .dir(dir.path())
            .run();
        assert_eq!(o.code, 0, "snippet {i} without --force: {}", o.show());
    }
    // A write without --force and without a terminal is refused, with the way out.
    let o = Kosmo::lua_args(&["--eval", SEED_SNIPPETS[0].0, "--offline"])
        .dir(dir.path())
        .run();
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
    let o = Kosmo::lua_args(&["--eval", ALL_FUNCTIONS, "--offline", "--force"])
        .dir(dir.path())
        .run();
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
        let o = Kosmo::lua_args(&["--eval", code]).dir(dir.path()).run();
        assert_eq!(o.err_code(), "unknown_function", "{}", o.show());
        assert_eq!(
            o.env["error"]["suggestions"][0],
            "create_message",
            "{}",
            o.show()
        );
    }
    let o = Kosmo::lua_args(&["--eval", "return app.integrations.nothere == nil"])
        .dir(dir.path())
        .run();
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
        let o = Kosmo::cmd(&["integrations:schema", &full])
            .dir(dir.path())
            .run();
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
    let o = Kosmo::cmd(&["integrations:schema", "anthropic.list_users"])
        .dir(dir.path())
        .run();
    assert_eq!(o.env["properties"]["limit"]["type"], "integer");
    let o = Kosmo::cmd(&["integrations:schema", "anthropic.nope"])
        .dir(dir.path())
        .run();
    assert_eq!(o.code, 1, "{}", o.show());
}

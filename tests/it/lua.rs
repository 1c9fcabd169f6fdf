//! The Lua runtime and the headless CLI (`integrations:lua`, `mcp:lua`), driven through the real
//! binary: the seed page's commands verbatim, envelopes for every outcome, the Lua surface,
//! permissions, limits. The sandbox battery is in `lua/sandbox.rs`.

use std::path::Path;

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::support::{Kosmo, kosmo};

mod events;
mod files;
mod offline;
mod sandbox;
mod signals;
mod values;

pub use crate::support::Run;

/// Run `kosmo <args>` in `dir` (also its config dir); exits by signal are the caller's to check.
pub fn run_in(dir: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    Kosmo::cmd(args)
        .dir(dir)
        .stdin(stdin.unwrap_or(""))
        .may_crash()
        .run()
}

pub fn run(args: &[&str]) -> Run {
    let dir = TempDir::new().unwrap();
    run_in(dir.path(), args, None)
}

/// `integrations:lua --eval CODE --json [extra]`.
pub fn eval(code: &str, extra: &[&str]) -> Run {
    let mut args = vec!["integrations:lua", "--eval", code, "--json"];
    args.extend_from_slice(extra);
    run(&args)
}

const ENVELOPE_KEYS: [&str; 9] = [
    "schema_version",
    "success",
    "output",
    "error",
    "result",
    "execution_time_ms",
    "memory_usage",
    "integration_calls",
    "meta",
];

/// Every envelope has exactly the documented keys and a consistent `success`/`error`/exit code.
pub fn assert_envelope(r: &Run) {
    let env = r.env.as_object().unwrap_or_else(|| {
        panic!(
            "no JSON envelope on stdout: {}\nstderr: {}",
            r.stdout, r.stderr
        )
    });
    let mut keys: Vec<&str> = env.keys().map(String::as_str).collect();
    keys.sort();
    let mut want = ENVELOPE_KEYS.to_vec();
    want.sort();
    assert_eq!(keys, want, "envelope keys");
    // Every envelope a test sees is checked against the documented contract.
    if let Err(problems) = crate::support::check_envelope(&r.env) {
        panic!(
            "envelope breaks docs/json-envelope.schema.json: {problems}\n{}",
            r.env
        );
    }
    for k in ["permission_bypassed", "dry_run", "read_only", "offline"] {
        assert!(r.env["meta"][k].is_boolean(), "meta.{k}: {}", r.env["meta"]);
    }
    assert!(r.env["integration_calls"].is_array());
    assert!(r.env["execution_time_ms"].is_number());
    assert!(r.env["memory_usage"].is_number());
    let success = r.env["success"].as_bool().unwrap();
    assert_eq!(
        success,
        r.env["error"].is_null(),
        "success iff error is null: {}",
        r.env
    );
    if success {
        assert_eq!(r.code, 0);
        assert!(r.env["result"].is_array());
    } else {
        assert!(r.env["error"]["code"].is_string(), "{}", r.env);
        assert!(r.env["error"]["message"].is_string(), "{}", r.env);
        assert!(r.env["result"].is_null());
        let want = if r.env["error"]["code"] == "usage_error" {
            2
        } else {
            1
        };
        assert_eq!(r.code, want, "exit code for {}", r.env["error"]);
    }
}

/// A run that must fail with `code` (and `limit`, for limit errors).
pub fn assert_fails(r: &Run, code: &str) {
    assert_envelope(r);
    assert_eq!(r.env["error"]["code"], code, "{}", r.env["error"]);
}

pub fn ok(r: &Run) -> &Value {
    assert_envelope(r);
    assert_eq!(r.env["success"], true, "{}\nstderr: {}", r.env, r.stderr);
    &r.env["result"]
}

// ---------------------------------------------------------------------------------------------
// The seed page, verbatim.

#[test]
fn seed_inline_list_messages_is_the_unsupported_error_in_the_envelope() {
    let r = run(&[
        "integrations:lua",
        "--eval",
        r#"dump(app.integrations.anthropic.list_messages({model = "example_model", limit = 1, before_id = "example_before_id", after_id = "example_after_id"}))"#,
        "--json",
    ]);
    assert_fails(&r, "unsupported");
    let msg = r.env["error"]["message"].as_str().unwrap();
    assert!(msg.contains("list_message_batches"), "{msg}");
    assert_eq!(r.env["error"]["function"], "list_messages");
    let calls = r.env["integration_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["path"], "integrations.anthropic.list_messages");
    assert_eq!(calls[0]["status"], "error");
    assert_eq!(calls[0]["class"], "read");
    assert_eq!(calls[0]["error"]["code"], "unsupported");
}

#[test]
fn seed_docs_read_commands_print_docs() {
    let r = run(&[
        "integrations:lua",
        "--eval",
        r#"print(docs.read("anthropic"))"#,
        "--json",
    ]);
    let out = ok(&r);
    assert_eq!(out, &json!([]));
    let text = r.env["output"].as_str().unwrap();
    assert!(text.contains("create_message"), "{text}");
    let r = run(&[
        "integrations:lua",
        "--eval",
        r#"print(docs.read("anthropic.list_messages"))"#,
        "--json",
    ]);
    ok(&r);
    assert!(r.env["output"].as_str().unwrap().contains("list_messages"));
    // The same pages through the agent tool name and the namespaced form.
    let r = eval(
        r#"return lua_read_doc("integrations.anthropic") == docs.read("integrations.anthropic")"#,
        &[],
    );
    assert_eq!(ok(&r), &json!([true]));
    let r = eval(
        r#"local hits = docs.search("batch", 3)
           local pages = docs.list("integrations.anthropic")
           local ok, e = pcall(docs.read, "no.such.page")
           return #hits > 0 and #hits <= 3, type(hits[1].page), #pages > 10, ok, type(tostring(e))"#,
        &[],
    );
    assert_eq!(ok(&r), &json!([true, "string", true, false, "string"]));
}

const WORKFLOW: &str = r#"local anthropic = app.integrations.anthropic
local result = anthropic.list_messages({model = "example_model", limit = 1, before_id = "example_before_id", after_id = "example_after_id"})

dump(result)
"#;

#[test]
fn seed_workflow_file_with_and_without_force() {
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("workflow.lua"), WORKFLOW).unwrap();
    let r = run_in(
        dir.path(),
        &["integrations:lua", "workflow.lua", "--json"],
        None,
    );
    assert_fails(&r, "unsupported");
    assert_eq!(r.env["meta"]["permission_bypassed"], false);
    let r = run_in(
        dir.path(),
        &["integrations:lua", "workflow.lua", "--force", "--json"],
        None,
    );
    assert_fails(&r, "unsupported");
    assert_eq!(r.env["meta"]["permission_bypassed"], true);
    // Unsupported wins over any permission: even a denied read reports it.
    std::fs::write(
        dir.path().join("config.yaml"),
        "integrations:\n  anthropic:\n    permissions: {read: deny}\n",
    )
    .unwrap();
    let r = run_in(
        dir.path(),
        &["integrations:lua", "workflow.lua", "--json"],
        None,
    );
    assert_fails(&r, "unsupported");
}

#[test]
fn seed_mcp_lua_servers() {
    let r = run(&["mcp:lua", "--eval", "dump(mcp.servers())", "--json"]);
    ok(&r);
    assert_eq!(r.env["output"], "[]");
}

// ---------------------------------------------------------------------------------------------
// Envelope shapes and the CLI.

#[test]
fn result_is_the_list_of_return_values() {
    assert_eq!(ok(&eval("return 42", &[])), &json!([42]));
    assert_eq!(ok(&eval("local x = 1", &[])), &json!([]));
    assert_eq!(ok(&eval("return {}", &[])), &json!([{}]));
    assert_eq!(ok(&eval("return json.array{}", &[])), &json!([[]]));
    assert_eq!(
        ok(&eval("return nil, 1, 'a', 2.5, true", &[])),
        &json!([null, 1, "a", 2.5, true])
    );
    assert_eq!(
        ok(&eval("return {1, 2, {x = 1}}", &[])),
        &json!([[1, 2, {"x": 1}]])
    );
    assert_eq!(ok(&eval("return print", &[])), &json!(["<function>"]));
}

#[test]
fn lua_errors_keep_the_envelope() {
    let r = eval("error('boom')", &[]);
    assert_fails(&r, "lua_error");
    assert_eq!(r.env["error"]["message"], "(eval):1: boom");
    let r = eval("local x = ", &[]);
    assert_fails(&r, "lua_error");
    let r = eval("print('before'); local t = nil; return t.x", &[]);
    assert_fails(&r, "lua_error");
    assert_eq!(
        r.env["output"], "before",
        "output printed before the error is kept"
    );
    let r = eval("error({code = 'my_code', message = 'mine'})", &[]);
    assert_fails(&r, "my_code");
    assert_eq!(r.env["error"]["message"], "mine");
    let r = eval("error()", &[]);
    assert_fails(&r, "lua_error");
}

#[test]
fn missing_file_and_usage_errors() {
    let r = run(&["integrations:lua", "nope.lua", "--json"]);
    assert_fails(&r, "io_error");
    assert!(
        r.env["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nope.lua")
    );
    for (flag, value) in [
        ("--memory-limit", "abc"),
        ("--memory-limit", "64X"),
        ("--memory-limit", "0"),
        ("--memory-limit", "1k"),
        ("--cpu-limit", "-1"),
        ("--cpu-limit", "soon"),
        ("--timeout", "0"),
        ("--max-calls", "1.5"),
    ] {
        let r = eval("return 1", &[flag, value]);
        assert_fails(&r, "usage_error");
        assert!(r.env["error"]["message"].as_str().unwrap().contains(flag));
        let dir = TempDir::new().unwrap();
        let t = run_in(
            dir.path(),
            &["integrations:lua", "--eval", "return 1", flag, value],
            None,
        );
        assert_eq!(t.code, 2, "{flag} {value}");
        assert!(t.stderr.contains(flag), "{}", t.stderr);
    }
    // Units are accepted.
    ok(&eval(
        "return 1",
        &[
            "--memory-limit",
            "64M",
            "--cpu-limit",
            "2.5",
            "--timeout",
            "10",
        ],
    ));
    ok(&eval(
        "return 1",
        &["--memory-limit", "1G", "--max-calls", "0"],
    ));
    ok(&eval("return 1", &["--memory-limit", "8388608"]));
}

#[test]
fn text_mode_prints_output_then_results_and_errors_on_stderr() {
    let r = run(&[
        "integrations:lua",
        "--eval",
        "print('a'); print('b', 1, nil); return 42, 'x', {k = 1}",
    ]);
    assert_eq!(r.code, 0);
    assert_eq!(r.stdout, "a\nb\t1\tnil\n42\nx\n{\n  \"k\": 1\n}\n");
    let r = run(&[
        "integrations:lua",
        "--eval",
        "print('partial') error('bad')",
    ]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stdout, "partial\n");
    assert!(r.stderr.contains("(eval):1: bad"), "{}", r.stderr);
}

#[test]
fn code_from_stdin_and_dash() {
    let dir = TempDir::new().unwrap();
    let r = run_in(
        dir.path(),
        &["integrations:lua", "--json"],
        Some("return 1 + 1"),
    );
    assert_eq!(ok(&r), &json!([2]));
    let r = run_in(
        dir.path(),
        &["integrations:lua", "-", "--json"],
        Some("return 'dash'"),
    );
    assert_eq!(ok(&r), &json!(["dash"]));
    // --eval wins over a file; a shebang line is skipped and line numbers stay right.
    std::fs::write(
        dir.path().join("s.lua"),
        "#!/usr/bin/env kosmo\nerror('x')\n",
    )
    .unwrap();
    let r = run_in(dir.path(), &["integrations:lua", "s.lua", "--json"], None);
    assert_eq!(r.env["error"]["message"], "s.lua:2: x");
    let r = run_in(
        dir.path(),
        &["integrations:lua", "s.lua", "-e", "return 3", "--json"],
        None,
    );
    assert_eq!(ok(&r), &json!([3]));
}

#[test]
fn print_streams_in_text_mode() {
    // The first line must arrive before the script ends (it sleeps on the CPU afterwards).
    use std::io::{BufRead, BufReader};
    let dir = TempDir::new().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kosmo"))
        .env("KOSMO_CONFIG_DIR", dir.path())
        .args([
            "integrations:lua",
            "--eval",
            "print('first') local t = os.clock() while os.clock() - t < 1.5 do end print('second')",
        ])
        .stdout(std::process::Stdio::piped())
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "first\n");
    assert!(started.elapsed().as_secs_f64() < 1.4, "print was buffered");
    assert!(child.wait().unwrap().success());
}

#[test]
fn repl_keeps_state_and_takes_multi_line_input() {
    let dir = TempDir::new().unwrap();
    let input = "x = 40\nx + 2\nfunction f(a)\n  return a * 2\nend\nf(21)\nprint('hi')\nerror('oops')\nx\n:quit\nnever = 1\n";
    let r = run_in(dir.path(), &["integrations:lua", "--repl"], Some(input));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "42\n42\nhi\n40\n");
    assert!(r.stderr.contains("oops"), "{}", r.stderr);
    assert!(!r.stderr.contains("lua>"), "no prompt without a terminal");
    // End of input ends it too.
    let r = run_in(
        dir.path(),
        &["integrations:lua", "--repl"],
        Some("return 7\n"),
    );
    assert_eq!(r.stdout, "7\n");
}

// ---------------------------------------------------------------------------------------------
// json, regex, dump.

#[test]
fn json_round_trips_arrays_objects_and_null() {
    let r = eval(
        r#"
        local src = '{"a":[],"b":{},"c":null,"d":[1,null,3],"e":{"1":"x"},"f":1.5}'
        local v = json.decode(src)
        assert(v.c == json.null and v.d[2] == json.null)
        assert(json.encode(json.decode('[]')) == '[]' and json.encode(json.decode('{}')) == '{}')
        return json.encode(v), json.encode({z = 1, a = {2, 1}}), json.encode({}), json.encode(json.array{}),
               json.encode({a = 1}, {pretty = true})
        "#,
        &[],
    );
    assert_eq!(
        ok(&r),
        &json!([
            r#"{"a":[],"b":{},"c":null,"d":[1,null,3],"e":{"1":"x"},"f":1.5}"#,
            r#"{"a":[2,1],"z":1}"#,
            "{}",
            "[]",
            "{\n  \"a\": 1\n}"
        ])
    );
    let r = eval("return json.decode('{bad')", &[]);
    assert_fails(&r, "lua_error");
    assert!(
        r.env["error"]["message"]
            .as_str()
            .unwrap()
            .contains("json.decode")
    );
    let r = eval("return pcall(json.encode, {f = print})", &[]);
    let res = ok(&r);
    assert_eq!(res[0], false);
    assert!(
        res[1]
            .as_str()
            .unwrap()
            .contains("cannot encode a function")
    );
}

#[test]
fn regex_helpers() {
    let r = eval(
        r#"
        local m = regex.match("Order 66 by Palpatine", "/order (?P<num>\\d+)/i")
        local all = regex.match_all("a1 b2 c3", "([a-z])(\\d)")
        local s, n = regex.gsub("a1 b2", "([a-z])(\\d)", "$2$1")
        local f = regex.gsub("a1 b2", "\\d", function(c) return "<" .. c[0] .. ">" end)
        local parts = regex.split("a, b,c", ",\\s*")
        local none = regex.match("abc", "x")
        local fast = regex.match(string.rep("a", 50000) .. "!", "(a+)+$")
        return m[0], m[1], m.num, all[0], all[2], s, n, f, parts, none, fast, regex.escape("a.b")
        "#,
        &[],
    );
    assert_eq!(
        ok(&r),
        &json!([
            "Order 66",
            "66",
            "66",
            ["a1", "b2", "c3"],
            ["1", "2", "3"],
            "1a 2b",
            2,
            "a<1> b<2>",
            ["a", "b", "c"],
            null,
            null,
            "a\\.b"
        ])
    );
    let r = eval("return regex.match(nil, 'x')", &[]);
    assert!(
        r.env["error"]["message"]
            .as_str()
            .unwrap()
            .contains("regex.match: expected string subject, got nil")
    );
    let r = eval("return regex.match('a', '(')", &[]);
    assert_fails(&r, "lua_error");
}

#[test]
fn dump_is_sorted_and_returns_its_argument() {
    let r = eval(
        "local t = {b = 2, a = {c = json.null, list = {3, 1}}} local same = dump(t) == t \
         local cyc = {} cyc.self = cyc dump(cyc) return same",
        &[],
    );
    assert_eq!(ok(&r), &json!([true]));
    assert_eq!(
        r.env["output"],
        "{\n  \"a\": {\n    \"c\": null,\n    \"list\": [\n      3,\n      1\n    ]\n  },\n  \"b\": 2\n}\n{\n  \"self\": \"<cycle>\"\n}"
    );
}

// ---------------------------------------------------------------------------------------------
// app.integrations against the offline simulator.

fn offline(code: &str, extra: &[&str]) -> Run {
    let mut args = vec!["--offline"];
    args.extend_from_slice(extra);
    eval(code, &args)
}

#[test]
fn integration_namespace_lookup_rules() {
    let r = eval(
        r#"
        local a = app.integrations.anthropic
        local names = {"get_current_user", "get_organization_alias", "list_organization_workspaces",
          "get_organization_workspace", "anthropic_create_message", "create_message", "wait_for_message_batch"}
        for _, n in ipairs(names) do assert(type(a[n]) == "function", n) end
        assert(app.integrations.nope == nil)
        assert(app.integrations["anthropic"]["default"].get_model == a.default.get_model)
        assert(a.create_message == a.create_message)
        local ok, e = pcall(function() return a.create_mesage end)
        return ok, e.code, e.suggestions[1], tostring(e):find("create_message") ~= nil
        "#,
        &[],
    );
    assert_eq!(
        ok(&r),
        &json!([false, "unknown_function", "create_message", true])
    );
}

#[test]
fn positional_and_table_arguments_and_dry_run() {
    let r = eval(
        r#"
        local a = app.integrations.anthropic
        local p = a.get_model("claude-sonnet-4-20250514")
        local t = a.get_model{id = "claude-sonnet-4-20250514"}
        return p.url, p.url == t.url, p.method
        "#,
        &["--dry-run"],
    );
    let res = ok(&r);
    assert!(
        res[0]
            .as_str()
            .unwrap()
            .ends_with("/v1/models/claude-sonnet-4-20250514"),
        "{res}"
    );
    assert_eq!(res[1], true);
    assert_eq!(res[2], "GET");
    assert_eq!(r.env["meta"]["dry_run"], true);
    assert_eq!(r.env["integration_calls"].as_array().unwrap().len(), 2);
    // Too many positional arguments is a validation error naming the parameters.
    let r = eval(
        "return app.integrations.anthropic.get_model('a', 'b', 'c', 'd', 'e', 'f')",
        &["--dry-run"],
    );
    assert_fails(&r, "validation_error");
}

#[test]
fn calls_streaming_pagination_batches_rows_and_parallel_offline() {
    let r = offline(
        r#"
        local a = app.integrations.anthropic
        local msg = {model = "claude-sonnet-4-20250514", max_tokens = 32,
                     messages = {{role = "user", content = "hello"}}}
        local m = a.create_message(msg)
        local events, types = 0, {}
        msg.stream = true
        msg.on_event = function(ev) events = events + 1 types[ev.type] = true end
        local s = a.create_message(msg)
        local all = a.list_models{fetch_all = true, max_items = 3}
        local b = a.create_message_batch{requests = {
          {custom_id = "r1", params = {model = "claude-sonnet-4-20250514", max_tokens = 8, messages = {{role = "user", content = "x"}}}},
          {custom_id = "r2", params = {model = "claude-sonnet-4-20250514", max_tokens = 8, messages = {{role = "user", content = "y"}}}},
        }}
        local done = a.wait_for_message_batch{id = b.id}
        local ids = {}
        for row in rows(a.get_message_batch_results, {id = b.id}) do ids[#ids + 1] = row.custom_id end
        table.sort(ids)
        local n2 = 0
        for _ in rows("anthropic.get_message_batch_results", {id = b.id}) do n2 = n2 + 1 end
        local x, y, z = parallel(
          function() return a.get_model("claude-sonnet-4-20250514").id end,
          function() return 2 end,
          function() return a.count_message_tokens{model = "claude-sonnet-4-20250514", messages = {{role = "user", content = "hi"}}}.input_tokens > 0 end)
        return m.type, s.type, s.content[1].type, events > 2, types.message_stop, #all.data, done.processing_status, ids, n2, x, y, z
        "#,
        &["--force"],
    );
    assert_eq!(
        ok(&r),
        &json!([
            "message",
            "message",
            "text",
            true,
            true,
            3,
            "ended",
            ["r1", "r2"],
            2,
            "claude-sonnet-4-20250514",
            2,
            true
        ])
    );
    assert_eq!(r.env["meta"]["offline"], true);
    let calls = r.env["integration_calls"].as_array().unwrap();
    assert!(calls.iter().all(|c| c["status"] == "ok"), "{calls:?}");
    assert!(
        calls
            .iter()
            .any(|c| c["http_status"] == 200 && c["request_id"].is_string())
    );
    let classes: Vec<&str> = calls.iter().map(|c| c["class"].as_str().unwrap()).collect();
    assert_eq!(&classes[..2], ["write", "write"]);
}

#[test]
fn failed_calls_raise_structured_errors() {
    let r = offline(
        r#"
        local a = app.integrations.anthropic
        local ok, e = pcall(a.get_model, "no-such-model")
        assert(not ok)
        local fields = {e.code, e.status, e.type, e.request_id ~= nil, e["function"], e.account,
                        tostring(e) == e.message, tostring(e):find("no%-such%-model") ~= nil}
        local ok2, v = pcall(a.create_message, {model = 1})
        return fields, ok2, v.code
        "#,
        &["--force"],
    );
    assert_eq!(
        ok(&r),
        &json!([
            [
                "not_found_error",
                404,
                "not_found_error",
                true,
                "get_model",
                "default",
                true,
                true
            ],
            false,
            "validation_error"
        ])
    );
    // Uncaught, the same error is the envelope's error.
    let r = offline(
        "return app.integrations.anthropic.get_model('no-such-model')",
        &[],
    );
    assert_fails(&r, "not_found_error");
    assert_eq!(r.env["error"]["status"], 404);
    assert_eq!(r.env["integration_calls"][0]["http_status"], 404);
}

#[test]
fn parallel_raises_the_first_failing_branch_after_all_finish() {
    let r = eval(
        r#"
        local done = {}
        local ok, e = pcall(parallel,
          function() done[1] = true return 1 end,
          function() error({code = "second"}) end,
          function() done[3] = true error("third") end)
        return ok, e.code, done[1], done[3]
        "#,
        &[],
    );
    assert_eq!(ok(&r), &json!([false, "second", true, true]));
}

#[test]
fn named_accounts() {
    let dir = TempDir::new().unwrap();
    std::fs::write(
        dir.path().join("credentials.yaml"),
        "anthropic:\n  default:\n    api_key: sk-ant-api03-default-key\n  work:\n    api_key: sk-ant-api03-work-key\n",
    )
    .unwrap();
    let r = run_in(
        dir.path(),
        &[
            "integrations:lua",
            "--dry-run",
            "--json",
            "--eval",
            r#"local a = app.integrations.anthropic
               a.work.get_model("m1") a["work"].list_models{} a.get_model("m2")
               local ok, e = pcall(function() return a.personal end)
               return ok, e.code"#,
        ],
        None,
    );
    assert_eq!(ok(&r), &json!([false, "unknown_function"]));
    let accounts: Vec<&str> = r.env["integration_calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["account"].as_str().unwrap())
        .collect();
    assert_eq!(&accounts[..3], ["work", "work", "default"]);
    assert!(
        !r.stdout.contains("sk-ant-api03-work-key"),
        "a secret leaked"
    );
    // --account changes the default.
    let r = run_in(
        dir.path(),
        &[
            "integrations:lua",
            "--dry-run",
            "--json",
            "--account",
            "work",
            "--eval",
            "app.integrations.anthropic.get_model('m')",
        ],
        None,
    );
    ok(&r);
    assert_eq!(r.env["integration_calls"][0]["account"], "work");
    assert_eq!(
        r.env["integration_calls"][0]["path"],
        "integrations.anthropic.get_model"
    );
}

// ---------------------------------------------------------------------------------------------
// Permissions.

const WRITE: &str = r#"return app.integrations.anthropic.create_message{model = "claude-sonnet-4-20250514",
    max_tokens = 8, messages = {{role = "user", content = "hi"}}}.type"#;

#[test]
fn writes_ask_by_default_and_fail_without_a_terminal() {
    let r = offline(WRITE, &[]);
    assert_fails(&r, "permission_denied");
    let msg = r.env["error"]["message"].as_str().unwrap();
    assert!(msg.contains("--force"), "{msg}");
    assert!(
        msg.contains("kosmo integrations:configure anthropic --write allow"),
        "{msg}"
    );
    assert_eq!(
        r.env["integration_calls"][0]["error"]["code"],
        "permission_denied"
    );
    // Reads are allowed by default.
    ok(&offline(
        "return app.integrations.anthropic.list_models{}.data ~= nil",
        &[],
    ));
    // --force bypasses and says so.
    let r = offline(WRITE, &["--force"]);
    assert_eq!(ok(&r), &json!(["message"]));
    assert_eq!(r.env["meta"]["permission_bypassed"], true);
    // --read-only refuses writes even with --force, but reads still work.
    let r = offline(WRITE, &["--force", "--read-only"]);
    assert_fails(&r, "permission_denied");
    assert!(
        r.env["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--read-only")
    );
    assert_eq!(r.env["meta"]["read_only"], true);
    ok(&offline(
        "return app.integrations.anthropic.list_models{}.data ~= nil",
        &["--read-only"],
    ));
    // A denied call is catchable.
    let r = offline(
        &format!("local ok, e = pcall(function() {WRITE} end) return ok, e.code"),
        &[],
    );
    assert_eq!(ok(&r), &json!([false, "permission_denied"]));
}

#[test]
fn config_policies_per_integration_and_account() {
    let dir = TempDir::new().unwrap();
    std::fs::write(
        dir.path().join("config.yaml"),
        "integrations:\n  anthropic:\n    permissions: {read: deny, write: allow}\n    accounts:\n      work: {permissions: {read: allow}}\n",
    )
    .unwrap();
    let go = |code: &str, extra: &[&str]| {
        let mut args = vec!["integrations:lua", "--offline", "--json", "--eval", code];
        args.extend_from_slice(extra);
        run_in(dir.path(), &args, None)
    };
    let r = go(WRITE, &[]);
    assert_eq!(ok(&r), &json!(["message"]));
    let r = go("return app.integrations.anthropic.list_models{}", &[]);
    assert_fails(&r, "permission_denied");
    assert!(
        r.env["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--read allow")
    );
    ok(&go(
        "return app.integrations.anthropic.work.list_models{}.data ~= nil",
        &[],
    ));
    ok(&go(
        "return app.integrations.anthropic.list_models{}.data ~= nil",
        &["--force"],
    ));
    std::fs::write(
        dir.path().join("config.yaml"),
        "integrations:\n  anthropic:\n    permissions: {write: sometimes}\n",
    )
    .unwrap();
    assert_fails(
        &go("return 1 + app.integrations.anthropic.list_models{}", &[]),
        "config_error",
    );
}

// ---------------------------------------------------------------------------------------------
// mcp:lua.

#[test]
fn mcp_lua_exposes_only_mcp() {
    let r = run(&[
        "mcp:lua",
        "--json",
        "--eval",
        "local ok, e = pcall(mcp.call, 'files.read', {}) \
         return app.integrations, docs, rows, type(app.mcp), app.mcp.files, #mcp.tools(), ok, e, json.encode(mcp.servers())",
    ]);
    let res = ok(&r);
    assert_eq!(res[0], Value::Null);
    assert_eq!(res[1], Value::Null);
    assert_eq!(res[2], Value::Null);
    assert_eq!(res[3], "userdata");
    assert_eq!(res[4], Value::Null);
    assert_eq!(res[5], 0);
    assert_eq!(res[6], false);
    assert!(
        res[7]
            .as_str()
            .unwrap()
            .contains("no MCP server named 'files'"),
        "{res}"
    );
    assert_eq!(res[8], "[]");
}

// ---------------------------------------------------------------------------------------------
// The library, without the binary.

#[test]
fn runtime_library_api() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = TempDir::new().unwrap();
        let runtime = kosmo::lua::Runtime::new(kosmo::lua::Options {
            config_dir: Some(dir.path().to_path_buf()),
            limits: kosmo::lua::Limits {
                cpu: 0.3,
                ..Default::default()
            },
            ..Default::default()
        })
        .unwrap();
        let out = runtime.run("print('x') return 1 + 1", "=t").await;
        assert!(out.success);
        assert_eq!(out.output, "x");
        assert_eq!(out.result, Some(vec![json!(2)]));
        // State survives between runs; a limit in one run does not poison the next.
        let out = runtime.run("y = 5 while true do end", "=t").await;
        assert_eq!(out.error_code(), Some("limit_exceeded"));
        let out = runtime.run("return y", "=t").await;
        assert_eq!(out.result, Some(vec![json!(5)]));
    });
}

#[test]
fn wall_clock_includes_time_waiting_on_http() {
    // The batch stays in progress for ten minutes, far from the 1 s wall clock, so on a loaded
    // machine too only the wall clock can end the wait.
    let r = offline(
        r#"local a = app.integrations.anthropic
           local b = a.create_message_batch{requests = {{custom_id = "r1", params = {
             model = "claude-sonnet-4-20250514", max_tokens = 8, messages = {{role = "user", content = "x"}}}}}}
           local ok = pcall(a.wait_for_message_batch, {id = b.id})
           return "survived""#,
        &[
            "--force",
            "--timeout",
            "1",
            "--sim-set",
            "batch_delay_ms=600000",
        ],
    );
    assert_fails(&r, "limit_exceeded");
    assert_eq!(r.env["error"]["limit"], "timeout");
    // The time spent waiting counts: at least the 1 s budget (the upper bound is a hang guard
    // far below the batch's ten minutes, not a speed check).
    let ms = r.env["execution_time_ms"].as_f64().unwrap();
    assert!((900.0..120_000.0).contains(&ms), "{ms}");
    assert_eq!(r.env["integration_calls"][0]["status"], "ok");
}

#[test]
fn ask_prompts_on_a_terminal() {
    // `script` gives the binary a pseudo-terminal; without it this cannot be tested here.
    if !Path::new("/usr/bin/script").exists() {
        eprintln!("SKIP ask_prompts_on_a_terminal: /usr/bin/script is not installed");
        return;
    }
    let dir = TempDir::new().unwrap();
    let command = format!(
        "{} integrations:lua --offline --eval '{}'",
        env!("CARGO_BIN_EXE_kosmo"),
        WRITE.replace('\n', " ")
    );
    for (answer, want) in [("y\n", "message"), ("n\n", "was refused at the prompt")] {
        let out = std::process::Command::new("/usr/bin/script")
            .args(["-qec", &command, "/dev/null"])
            .env("KOSMO_CONFIG_DIR", dir.path())
            .env("HOME", dir.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(answer.as_bytes())?;
                child.wait_with_output()
            })
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("allow write call anthropic.create_message"),
            "{text}"
        );
        assert!(text.contains(want), "{answer:?}: {text}");
    }
}

#[test]
fn secrets_never_reach_the_output() {
    let dir = TempDir::new().unwrap();
    let secret = "sk-ant-api03-very-secret-value-0123456789";
    for code in [
        "return app.integrations.anthropic.get_model('m')",
        "print(app.integrations.anthropic.get_model('m')) dump(app.integrations.anthropic.list_models{})",
        "local ok, e = pcall(app.integrations.anthropic.get_model, 'm') dump(e) error(e)",
    ] {
        for extra in [&["--dry-run"][..], &[][..]] {
            let mut cmd = kosmo(dir.path());
            cmd.env("ANTHROPIC_API_KEY", secret)
                .env("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")
                .args(["integrations:lua", "--json", "--eval", code])
                .args(extra)
                .write_stdin(Vec::new());
            let out = cmd.output().unwrap();
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                !all.contains("very-secret"),
                "secret leaked for {code}: {all}"
            );
            assert!(
                serde_json::from_slice::<Value>(&out.stdout).is_ok(),
                "{all}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_calls_overlap_their_http_waits() {
    use wiremock::matchers::{method, path_regex};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_regex("^/v1/models/.+$"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"type": "model", "id": "m", "display_name": "M",
                                      "created_at": "2025-01-01T00:00:00Z"}))
                .set_delay(std::time::Duration::from_millis(400)),
        )
        .mount(&server)
        .await;
    let base = server.uri();
    let time = |code: &'static str| {
        let base = base.clone();
        tokio::task::spawn_blocking(move || {
            let dir = TempDir::new().unwrap();
            let mut cmd = kosmo(dir.path());
            cmd.env("ANTHROPIC_API_KEY", "sk-ant-api03-test")
                .env("ANTHROPIC_BASE_URL", &base)
                .args(["integrations:lua", "--json", "--eval", code])
                .write_stdin(Vec::new());
            let out = cmd.output().unwrap();
            let env: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(env["success"], true, "{env}");
            env["execution_time_ms"].as_f64().unwrap()
        })
    };
    let par = time(
        "local g = app.integrations.anthropic.get_model \
         local a, b, c, d = parallel(function() return g('a') end, function() return g('b') end, \
           function() return g('c') end, function() return g('d') end) return a.id .. b.id",
    )
    .await
    .unwrap();
    let seq = time("local g = app.integrations.anthropic.get_model g('a') g('b') g('c') g('d')")
        .await
        .unwrap();
    assert!(seq >= 1600.0, "sequential took {seq} ms");
    assert!(par < 1200.0, "parallel took {par} ms (sequential {seq} ms)");
}

/// The last entry of the envelope's call log.
pub fn last_call(r: &Run) -> &Value {
    let calls = r.env["integration_calls"].as_array().unwrap();
    calls
        .last()
        .unwrap_or_else(|| panic!("no call recorded: {}", r.env))
}

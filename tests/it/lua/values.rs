//! Values crossing the Lua boundary: error values (their documented fields, and behaving like
//! strings) and large integers that round-trip exactly.

use serde_json::json;
use tempfile::TempDir;

use super::ok;
use crate::support::{Kosmo, Sim, as_refs, sim_env};

const API_KEY: &str = "sk-ant-api03-QAACCEPTANCEapi0000SECRET";

#[test]
fn lua_error_values_carry_the_documented_fields() {
    let sim = Sim::start(&["--faults", "get_model=429:retry-after=0*20"]);
    let dir = TempDir::new().unwrap();
    let envs = sim_env(&sim, API_KEY);
    let code = r#"
local ok, e = pcall(app.integrations.anthropic.get_model, "claude-sonnet-4-0")
return ok, e.code, e.status, e.type, e.retry_after, e["function"], e.account,
  e.request_id:sub(1, 4), tostring(e) == e.message, tostring(e):find("rate") ~= nil"#;
    let o = Kosmo::lua_args(&["--eval", code])
        .dir(dir.path())
        .envs(&as_refs(&envs))
        .run();
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
    let o = Kosmo::lua_args(&[
        "--eval",
        "local ok, e = pcall(app.integrations.anthropic.get_model, 'claude-sonnet-4-0') error(e)",
    ])
    .dir(dir.path())
    .envs(&as_refs(&envs))
    .run();
    assert_eq!(o.err_code(), "rate_limit_error", "{}", o.show());
    assert_eq!(o.env["error"]["status"], 429);
    assert_eq!(o.env["integration_calls"][0]["http_status"], 429);
}

#[test]
fn error_values_behave_like_strings() {
    let dir = TempDir::new().unwrap();
    let r = Kosmo::lua(
        r#"local ok, e = pcall(function() return app.integrations.anthropic.creat_mesage{} end)
return ok, "x: " .. e == "x: " .. e.message, e .. "!" == e.message .. "!",
  e:find("creat_mesage", 1, true) ~= nil, e:match("unknown %a+"), e:lower() == e.message:lower(),
  e:upper():sub(1, 7), e.code, tostring(e) == e.message, e:len() == #e.message, type(e.nope)"#,
    )
    .offline()
    .dir(dir.path())
    .run();
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

#[test]
fn large_integers_round_trip_exactly() {
    let dir = TempDir::new().unwrap();
    let r = Kosmo::lua(
        "local n = 9007199254740993 \
         local d = app.integrations.anthropic.list_models{limit = 4 / 2} \
         return n, json.encode({n = n}), json.decode('9007199254740993') == n, \
           math.type(json.decode('9007199254740993')), 256.0, #d.data <= 2",
    )
    .offline()
    .dir(dir.path())
    .run();
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

#[test]
fn empty_lua_tables_are_sent_as_empty_arrays_where_the_schema_wants_one() {
    let cfg = tempfile::tempdir().unwrap();
    let out = crate::support::kosmo(cfg.path())
        .args(["integrations:lua", "--json", "--dry-run", "--eval"])
        .arg(
            r#"return app.integrations.anthropic.create_message{
                model = "claude-sonnet-4-20250514", max_tokens = 4.0 * 4, betas = {},
                stop_sequences = {}, messages = {{role = "user", content = "hi"}}}"#,
        )
        .env("ANTHROPIC_API_KEY", "sk-ant-api03-test")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["success"], true, "{v:#}");
    let body = &v["result"][0]["body"];
    assert_eq!(body["stop_sequences"], serde_json::json!([]), "{v:#}");
    assert_eq!(body["max_tokens"], serde_json::json!(16), "{v:#}");
    assert!(body["max_tokens"].is_u64(), "an integer on the wire: {v:#}");
    assert!(body.get("betas").is_none(), "betas go in the header: {v:#}");
}

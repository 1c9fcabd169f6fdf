//! The permission matrix (read / write / destructive, allow / ask / deny) and dry runs, through the
//! real binary.

use std::path::Path;

use serde_json::json;
use tempfile::TempDir;

use crate::support::{Kosmo, Sim, as_refs, sim_env};

const API_KEY: &str = "sk-ant-api03-QAACCEPTANCEapi0000SECRET";
const ADMIN_KEY: &str = "sk-ant-admin01-QAACCEPTANCEadmin000SECRET";

#[test]
fn permission_matrix() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    let read = "return app.integrations.anthropic.get_model('claude-sonnet-4-0').id";
    let write = "return app.integrations.anthropic.create_message{model = 'm', messages = {{role = 'user', content = 'x'}}}.type";
    let o = Kosmo::cmd(&[
        "integrations:configure",
        "anthropic",
        "--read",
        "deny",
        "--write",
        "deny",
    ])
    .dir(d)
    .run();
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
            let o = Kosmo::lua_args(&args).dir(d).run();
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
    let o = Kosmo::lua_args(&["--offline", "--read-only", "--force", "--eval", write])
        .dir(d)
        .run();
    assert!(o.err_message().contains("--read-only"), "{}", o.show());
    // pcall cannot turn a refused write into a success of the call.
    let o = Kosmo::lua_args(&[
        "--offline",
        "--eval",
        &format!("local ok, e = pcall(function() {write} end) return ok, e.code"),
    ])
    .dir(d)
    .run();
    assert_eq!(
        o.env["result"],
        json!([false, "permission_denied"]),
        "{}",
        o.show()
    );
}

fn d_path(dir: &TempDir) -> &Path {
    dir.path()
}

#[test]
fn dry_run_redacts_the_key_and_sends_nothing() {
    let sim = Sim::start(&[]);
    let dir = TempDir::new().unwrap();
    let base = sim_env(&sim, API_KEY);
    let mut envs = as_refs(&base);
    envs.push(("ANTHROPIC_ADMIN_KEY", ADMIN_KEY));
    let code = r#"
local a = app.integrations.anthropic
local r1 = a.create_message_batch{requests = {{custom_id = "dry", params = {model = "m", max_tokens = 5, messages = {{role = "user", content = "x"}}}}}}
local r2 = a.get_organization{}
local r3 = a.list_files{query = {limit = 3}, betas = {"extra-beta-1"}}
dump(r1) dump(r2) dump(r3)
return r1.method, r1.url, r3.headers["anthropic-beta"], r3.query.limit"#;
    let o = Kosmo::lua_args(&["--dry-run", "--eval", code])
        .dir(d_path(&dir))
        .envs(&envs)
        .run();
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
    let o = Kosmo::lua_args(&[
            "--eval",
            "for _, b in ipairs(app.integrations.anthropic.list_message_batches{limit = 100}.data) do if b.request_counts.processing == 1 and b.id ~= 'msgbatch_013Zva2CMHLNnXjNJJKqJ2EF' then return b.id end end return 'none'",
        ]).dir(d_path(&dir)).envs(&envs).run();
    assert_eq!(o.env["result"], json!(["none"]), "{}", o.show());
}

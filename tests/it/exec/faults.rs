//! Faults seen through the binary: executor faults reported in the envelope, calls cut off by the
//! timeout recorded in the call log.

use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use crate::support::{Kosmo, Sim, as_refs, silent_server, sim_env};

const API_KEY: &str = "sk-ant-api03-QAACCEPTANCEapi0000SECRET";

#[test]
fn executor_faults_reported_in_the_envelope() {
    let sim = Sim::start(&[]);
    let dir = TempDir::new().unwrap();
    std::fs::write(
        dir.path().join("config.yaml"),
        "http: {max_retries: 2, connect_timeout: 2, timeout: 2, stream_idle_timeout: 2}\n",
    )
    .unwrap();
    let envs = sim_env(&sim, API_KEY);
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
        let o = Kosmo::lua_args(&["--force", "--eval", code])
            .dir(dir.path())
            .envs(&as_refs(&envs))
            .run();
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

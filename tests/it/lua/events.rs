//! `on_event` handlers of streaming calls: checked, errors propagated, and integrations callable
//! from inside them.

use serde_json::json;
use tempfile::TempDir;

use super::{assert_fails, last_call, ok};
use crate::support::Kosmo;

const STREAM: &str =
    "model = 'm', max_tokens = 16, messages = {{role = 'user', content = 'hi'}}, stream = true";

#[test]
fn on_event_is_checked_propagates_errors_and_may_call_integrations() {
    let dir = TempDir::new().unwrap();
    let r = Kosmo::lua(&format!(
        "return app.integrations.anthropic.create_message{{{STREAM}, on_event = 42}}"
    ))
    .offline()
    .flags(&["--force"])
    .dir(dir.path())
    .run();
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
    let r = Kosmo::lua(&format!(
        "local ok, e = pcall(app.integrations.anthropic.create_message, {{{STREAM}, \
             on_event = function(ev) error({{code = 'my_stop', message = 'halt'}}) end}}) \
             return ok, type(e), e.code, e.message"
    ))
    .offline()
    .flags(&["--force"])
    .dir(dir.path())
    .run();
    assert_eq!(ok(&r), &json!([false, "table", "my_stop", "halt"]));
    assert_eq!(last_call(&r)["error"]["code"], "my_stop");
    // Unhandled, it is the envelope's error.
    let r = Kosmo::lua(&format!(
        "return app.integrations.anthropic.create_message{{{STREAM}, \
             on_event = function(ev) error({{code = 'my_stop', message = 'halt'}}) end}}"
    ))
    .offline()
    .flags(&["--force"])
    .dir(dir.path())
    .run();
    assert_fails(&r, "my_stop");
    // Integration calls inside the callback work, in order with the events.
    let r = Kosmo::lua(&format!(
            "local seen = {{}} \
             local m = app.integrations.anthropic.create_message{{{STREAM}, on_event = function(ev) \
               if ev.type == 'message_start' or ev.type == 'message_stop' then \
                 seen[#seen + 1] = ev.type .. ':' .. app.integrations.anthropic.get_model('claude-sonnet-4-0').type \
               end end}} \
             return m.type, seen[1], seen[2]"
        )).offline().flags(&["--force"]).dir(dir.path()).run();
    assert_eq!(
        ok(&r),
        &json!(["message", "message_start:model", "message_stop:model"])
    );
    assert_eq!(r.env["integration_calls"].as_array().unwrap().len(), 3);
}

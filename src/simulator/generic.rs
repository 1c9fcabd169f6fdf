//! The answer for a function with no built-in behaviour: its manifest's `simulator.response`
//! example, so a new manifest gets a working simulator without any Rust.
//!
//! A string value that is exactly `{name}` is replaced by the call's argument of that name (with
//! its JSON type), so `get_thing` can echo the id it was asked for. The response kind shapes the
//! body: `json` as is, `jsonl` one line per array item, `binary` a string's bytes, `sse` an array
//! of `{event, data}` objects. A paginated function pages through the example's items with its
//! declared pagination (see [`super::pagination`]), so page walks work too.

use serde_json::{Map, Value, json};

use super::pagination::{self, Paging};
use super::request::Call;
use super::server::Sim;
use super::wire::{Reply, Tail};
use crate::manifest::ResponseKind;

pub fn answer(sim: &Sim, call: &Call) -> Reply {
    let spec = call.f.simulator.as_ref();
    let status = spec.map(|s| s.status).unwrap_or(200);
    let paging = Paging::of(call.f);
    let example = spec
        .and_then(|s| s.response.clone())
        .unwrap_or_else(|| empty_answer(paging.as_ref()));
    let mut body = fill(example, &call.args);
    let mut headers = vec![];
    if let Some(p) = paging
        && let Some(Value::Array(items)) = body.pointer(&p.items).cloned()
    {
        let id_field = spec.and_then(|s| s.id_field.as_deref()).unwrap_or("id");
        match pagination::page(&sim.base_url, &p, &items, call, body, id_field) {
            Ok((page, h)) => {
                body = page;
                headers = h;
            }
            Err(e) => return e,
        }
    }
    body_reply(call, status, body, headers)
}

/// The answer of a function without a `simulator.response`: `{}`, or for a paginated function
/// an empty page in its declared shape (`[]` for `items: ""`, else an empty list at `items`), so
/// its own page walk reads it.
fn empty_answer(paging: Option<&Paging>) -> Value {
    match paging {
        Some(p) if p.items.is_empty() => json!([]),
        Some(p) => {
            let mut body = Value::Object(Map::new());
            super::wire::set_pointer(&mut body, &p.items, json!([]));
            body
        }
        None => Value::Object(Map::new()),
    }
}

/// A body in the function's response kind.
pub fn body_reply(call: &Call, status: u16, body: Value, headers: Vec<(String, String)>) -> Reply {
    if status == 204 || status == 304 {
        return Reply::Raw {
            status,
            content_type: String::new(),
            body: Vec::new(),
        };
    }
    // A streaming call gets server-sent events folded from the same answer (see `super::sse`).
    if let Some(reply) = super::sse::stream_reply(call, &body, status) {
        return reply;
    }
    match call.f.response {
        ResponseKind::Json => Reply::Json {
            status,
            body,
            headers,
        },
        ResponseKind::Jsonl => {
            let rows = match body {
                Value::Array(rows) => rows,
                other => vec![other],
            };
            let mut text = String::new();
            for r in rows {
                text.push_str(&r.to_string());
                text.push('\n');
            }
            Reply::Raw {
                status,
                content_type: "application/x-jsonl".into(),
                body: text.into_bytes(),
            }
        }
        ResponseKind::Binary => {
            let bytes = match body {
                Value::String(s) => s.into_bytes(),
                other => other.to_string().into_bytes(),
            };
            Reply::Raw {
                status,
                content_type: "application/octet-stream".into(),
                body: bytes,
            }
        }
        ResponseKind::Sse => {
            let events = match body {
                Value::Array(items) => items
                    .into_iter()
                    .map(|e| {
                        let name = e
                            .get("event")
                            .and_then(Value::as_str)
                            .unwrap_or("message")
                            .to_string();
                        (name, e.get("data").cloned().unwrap_or(json!({})))
                    })
                    .collect(),
                other => vec![("message".to_string(), other)],
            };
            Reply::Sse {
                events,
                tail: Tail::Complete,
            }
        }
    }
}

/// The example with every `"{name}"` string replaced by the argument of that name.
pub fn fill(v: Value, args: &Value) -> Value {
    match v {
        Value::String(s) => {
            let name = s.strip_prefix('{').and_then(|r| r.strip_suffix('}'));
            match name.and_then(|n| args.get(n)) {
                Some(arg) => arg.clone(),
                None => Value::String(s),
            }
        }
        Value::Array(items) => Value::Array(items.into_iter().map(|i| fill(i, args)).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, fill(v, args))).collect())
        }
        other => other,
    }
}

//! The answer for a function with no built-in behaviour: its manifest's `simulator.response`
//! example, so a new manifest gets a working simulator without any Rust.
//!
//! A string value that is exactly `{name}` is replaced by the call's argument of that name (with
//! its JSON type), so `get_thing` can echo the id it was asked for. The response kind shapes the
//! body: `json` as is, `jsonl` one line per array item, `binary` a string's bytes, `sse` an array
//! of `{event, data}` objects. An id-cursor paginated function pages through the example's
//! items (`limit`, `after_id`, `before_id`), so page walks work too.

use serde_json::{Map, Value, json};

use super::pagination;
use super::request::Call;
use super::server::Sim;
use super::wire::{Reply, Tail};
use crate::manifest::{PaginationStyle, ResponseKind};

pub fn answer(_sim: &Sim, call: &Call) -> Reply {
    let spec = call.f.simulator.as_ref();
    let status = spec.map(|s| s.status).unwrap_or(200);
    let example = spec
        .and_then(|s| s.response.clone())
        .unwrap_or_else(|| Value::Object(Map::new()));
    let mut body = fill(example, &call.args);
    if let Some(p) = &call.f.pagination
        && p.style == PaginationStyle::Cursor
        && p.reverse.is_some()
        && let Some(Value::Array(items)) = body.pointer(&p.items_pointer()).cloned()
    {
        match pagination::page(&items, call, "id") {
            Ok(Value::Object(page)) => {
                if let Value::Object(b) = &mut body {
                    for (k, v) in page {
                        let k = if k == "data" { p.items_key() } else { k };
                        b.insert(k, v);
                    }
                }
            }
            Ok(_) => {}
            Err(e) => return e,
        }
    }
    if let Some(reply) = super::sse::stream_reply(call, &body, status) {
        return reply;
    }
    match call.f.response {
        ResponseKind::Json => Reply::Json {
            status,
            body,
            headers: vec![],
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

fn fill(v: Value, args: &Value) -> Value {
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

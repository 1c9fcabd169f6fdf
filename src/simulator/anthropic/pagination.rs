//! Id-cursor pages (`limit`, `before_id`, `after_id` → `data`, `has_more`, `first_id`,
//! `last_id`), the shape every Anthropic list shares and the SDKs' auto-pagination relies on:
//! `first_id` / `last_id` are set whenever the page is not empty, and `has_more` tells whether
//! more items exist in the direction of travel.

use serde_json::{Value, json};

use crate::simulator::request::Call;
use crate::simulator::wire::Reply;

/// One page of `items` (already in list order), keyed by `key` (usually `id`).
pub fn page(items: &[Value], call: &Call, key: &str) -> Result<Value, Reply> {
    let limit = match call.text("limit") {
        None => 20,
        Some(s) => s.parse::<i64>().map_err(|_| {
            Reply::invalid(format!("limit: Input should be a valid integer, got '{s}'"))
        })?,
    };
    if !(1..=1000).contains(&limit) {
        return Err(Reply::invalid(format!(
            "limit: Input should be between 1 and 1000, got {limit}"
        )));
    }
    let limit = limit as usize;
    let before = call.text("before_id");
    let after = call.text("after_id").or_else(|| call.text("page"));
    // Mock mode answers every well-formed request: with both, the walk goes forward.
    let before = if call.mock && after.is_some() {
        None
    } else {
        before
    };
    if before.is_some() && after.is_some() {
        return Err(Reply::invalid(
            "before_id and after_id cannot be used together",
        ));
    }
    let id_of = |v: &Value| v.get(key).and_then(Value::as_str).map(str::to_string);
    let position = |cursor: &str| {
        items
            .iter()
            .position(|v| id_of(v).as_deref() == Some(cursor))
    };
    let (slice, has_more) = if let Some(b) = before {
        let end = position(&b).unwrap_or(0);
        let start = end.saturating_sub(limit);
        (&items[start..end], start > 0)
    } else if let Some(a) = after {
        let start = position(&a).map(|p| p + 1).unwrap_or(items.len());
        let end = (start + limit).min(items.len());
        (&items[start..end], end < items.len())
    } else {
        let end = limit.min(items.len());
        (&items[..end], end < items.len())
    };
    let first = slice.first().and_then(id_of);
    let last = slice.last().and_then(id_of);
    Ok(json!({
        "data": slice,
        "has_more": has_more,
        "first_id": first,
        "last_id": last,
    }))
}

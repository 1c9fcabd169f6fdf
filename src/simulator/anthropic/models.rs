//! Models: a realistic catalogue, newest first, with aliases that resolve to canonical ids.

use serde_json::{Value, json};

use super::pagination;
use crate::simulator::request::Call;
use crate::simulator::server::Sim;
use crate::simulator::wire::Reply;

/// (id, display name, release date, max input tokens, max output tokens, lifecycle), newest first:
/// the models the SDK 2.14 names, then the older dated ids. Dates of the undated ids are the
/// simulator's own, chosen only to keep the list in release order.
const MODELS: &[(&str, &str, &str, u64, u64, &str)] = &[
    (
        "claude-opus-5-5",
        "Claude Opus 5.5",
        "2026-11-18T00:00:00Z",
        1_000_000,
        128_000,
        "active",
    ),
    (
        "claude-sonnet-5-5",
        "Claude Sonnet 5.5",
        "2026-11-18T00:00:00Z",
        1_000_000,
        128_000,
        "active",
    ),
    (
        "claude-haiku-5-5",
        "Claude Haiku 5.5",
        "2026-11-18T00:00:00Z",
        400_000,
        64_000,
        "active",
    ),
    (
        "claude-fable-5-2",
        "Claude Fable 5.2",
        "2026-10-20T00:00:00Z",
        400_000,
        64_000,
        "active",
    ),
    (
        "claude-mythos-5-2",
        "Claude Mythos 5.2",
        "2026-10-20T00:00:00Z",
        1_000_000,
        128_000,
        "active",
    ),
    (
        "claude-fable-5-1",
        "Claude Fable 5.1",
        "2026-09-15T00:00:00Z",
        400_000,
        64_000,
        "active",
    ),
    (
        "claude-mythos-5-1",
        "Claude Mythos 5.1",
        "2026-09-15T00:00:00Z",
        1_000_000,
        128_000,
        "active",
    ),
    (
        "claude-opus-5",
        "Claude Opus 5",
        "2026-07-24T00:00:00Z",
        1_000_000,
        128_000,
        "active",
    ),
    (
        "claude-sonnet-5",
        "Claude Sonnet 5",
        "2026-07-24T00:00:00Z",
        1_000_000,
        64_000,
        "active",
    ),
    (
        "claude-fable-5",
        "Claude Fable 5",
        "2026-07-24T00:00:00Z",
        400_000,
        64_000,
        "active",
    ),
    (
        "claude-mythos-5",
        "Claude Mythos 5",
        "2026-07-24T00:00:00Z",
        1_000_000,
        128_000,
        "active",
    ),
    (
        "claude-opus-4-8",
        "Claude Opus 4.8",
        "2026-05-12T00:00:00Z",
        1_000_000,
        128_000,
        "active",
    ),
    (
        "claude-opus-4-7",
        "Claude Opus 4.7",
        "2026-04-07T00:00:00Z",
        1_000_000,
        128_000,
        "active",
    ),
    (
        "claude-mythos-preview",
        "Claude Mythos Preview",
        "2026-03-10T00:00:00Z",
        1_000_000,
        64_000,
        "active",
    ),
    (
        "claude-sonnet-4-6",
        "Claude Sonnet 4.6",
        "2026-02-17T00:00:00Z",
        1_000_000,
        64_000,
        "active",
    ),
    (
        "claude-opus-4-6",
        "Claude Opus 4.6",
        "2026-02-05T00:00:00Z",
        1_000_000,
        128_000,
        "active",
    ),
    (
        "claude-opus-4-5-20251101",
        "Claude Opus 4.5",
        "2025-11-24T00:00:00Z",
        200_000,
        64_000,
        "active",
    ),
    (
        "claude-haiku-4-5-20251001",
        "Claude Haiku 4.5",
        "2025-10-15T00:00:00Z",
        200_000,
        64_000,
        "active",
    ),
    (
        "claude-sonnet-4-5-20250929",
        "Claude Sonnet 4.5",
        "2025-09-29T00:00:00Z",
        200_000,
        64_000,
        "active",
    ),
    (
        "claude-opus-4-1-20250805",
        "Claude Opus 4.1",
        "2025-08-05T00:00:00Z",
        200_000,
        32_000,
        "deprecated",
    ),
    (
        "claude-opus-4-20250514",
        "Claude Opus 4",
        "2025-05-22T00:00:00Z",
        200_000,
        32_000,
        "deprecated",
    ),
    (
        "claude-sonnet-4-20250514",
        "Claude Sonnet 4",
        "2025-05-22T00:00:00Z",
        200_000,
        64_000,
        "active",
    ),
    (
        "claude-3-7-sonnet-20250219",
        "Claude Sonnet 3.7",
        "2025-02-24T00:00:00Z",
        200_000,
        64_000,
        "deprecated",
    ),
    (
        "claude-3-5-haiku-20241022",
        "Claude Haiku 3.5",
        "2024-10-22T00:00:00Z",
        200_000,
        8_192,
        "deprecated",
    ),
    (
        "claude-3-haiku-20240307",
        "Claude Haiku 3",
        "2024-03-07T00:00:00Z",
        200_000,
        4_096,
        "deprecated",
    ),
];

const ALIASES: &[(&str, &str)] = &[
    ("claude-opus-4-5", "claude-opus-4-5-20251101"),
    ("claude-haiku-4-5", "claude-haiku-4-5-20251001"),
    ("claude-sonnet-4-5", "claude-sonnet-4-5-20250929"),
    ("claude-opus-4-1", "claude-opus-4-1-20250805"),
    ("claude-opus-4-0", "claude-opus-4-20250514"),
    ("claude-sonnet-4-0", "claude-sonnet-4-20250514"),
    ("claude-3-7-sonnet-latest", "claude-3-7-sonnet-20250219"),
    ("claude-3-5-haiku-latest", "claude-3-5-haiku-20241022"),
    ("claude-4-opus-20250514", "claude-opus-4-20250514"),
    ("claude-4-sonnet-20250514", "claude-sonnet-4-20250514"),
];

fn info(m: &(&str, &str, &str, u64, u64, &str)) -> Value {
    let (id, name, created, max_in, max_out, lifecycle) = *m;
    json!({
        "type": "model",
        "id": id,
        "display_name": name,
        "created_at": created,
        "max_input_tokens": max_in,
        "max_tokens": max_out,
        "lifecycle": lifecycle,
    })
}

/// Every model, newest first.
pub fn all() -> Vec<Value> {
    MODELS.iter().map(info).collect()
}

/// A model by id or alias.
pub fn find(id: &str) -> Option<Value> {
    let canonical = ALIASES
        .iter()
        .find(|(a, _)| *a == id)
        .map(|(_, c)| *c)
        .unwrap_or(id);
    MODELS.iter().find(|m| m.0 == canonical).map(info)
}

pub fn list(_sim: &Sim, call: &Call) -> Reply {
    match pagination::page(&all(), call, "id") {
        Ok(page) => Reply::json(page),
        Err(e) => e,
    }
}

pub fn get(_sim: &Sim, call: &Call) -> Reply {
    let id = call.path_value(0);
    match find(id) {
        Some(m) => Reply::json(m),
        None => Reply::not_found(format!("model: {id}")),
    }
}

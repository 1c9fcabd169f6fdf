//! Message Batches: `in_progress` until `--batch-delay` has passed, then `ended`; a cancel moves
//! the batch to `canceling` and, half a delay later, to `ended` with its requests `canceled`.
//!
//! Status is computed from the clock on every read, so no background task is needed.
//! `request_counts` keeps everything in `processing` until the end, as the API does. Only the
//! batch's shape is checked at creation (the manifest's schema, unique `custom_id`s); each
//! request's `params` are checked as the API does, later, with `create_message`'s validator and
//! [`messages::check`]: an invalid one (no `max_tokens`, empty `messages`, `stream: true` ...)
//! is accepted and becomes an `errored` row with the full error envelope. A `custom_id` starting with `kosmo-expire` becomes `expired` (the
//! real API expires what is unprocessed after 24 hours; this lets a test see that row).

use std::time::{Duration, SystemTime};

use indexmap::IndexMap;
use serde_json::{Value, json};

use super::messages;
use super::{pagination, store};
use crate::simulator::request::Call;
use crate::simulator::server::Sim;
use crate::simulator::wire::{self, Reply};

/// The `custom_id` prefix that makes a request expire.
pub const EXPIRE_PREFIX: &str = "kosmo-expire";

#[derive(Debug, Clone)]
enum Outcome {
    Valid(Value),
    Invalid(String),
    Expire,
}

#[derive(Debug, Clone)]
struct Item {
    custom_id: String,
    outcome: Outcome,
}

#[derive(Debug, Clone)]
pub struct Batch {
    id: String,
    created: SystemTime,
    delay: Duration,
    cancel_at: Option<SystemTime>,
    /// How long `canceling` lasts: half the server's `--batch-delay`, fixed when the cancel
    /// arrives (a seeded batch's own `delay` may be much longer).
    cancel_delay: Duration,
    items: Vec<Item>,
    /// Rows are generated once, at the first read after the end, then kept.
    results: Option<String>,
}

#[derive(Debug, Default)]
pub struct Batches {
    by_id: IndexMap<String, Batch>,
}

/// The ended batch the reference's examples read, wait for and delete (the ID of the API
/// reference's own examples).
pub const SEEDED_ENDED: &str = "msgbatch_01HkcTjaV5uDC8jWR4ZsDV8d";
/// The batch the reference's cancel example stops: `in_progress` for the 24 hours a real batch
/// may run, so it is still cancelable however long after the start a script runs.
pub const SEEDED_IN_PROGRESS: &str = "msgbatch_013Zva2CMHLNnXjNJJKqJ2EF";

fn seed_request(custom_id: &str, prompt: &str) -> Item {
    Item {
        custom_id: custom_id.into(),
        outcome: Outcome::Valid(json!({
            "model": "claude-sonnet-4-20250514",
            "max_tokens": 1024,
            "messages": [{"role": "user", "content": prompt}],
        })),
    }
}

impl Batches {
    /// Two batches a script can use without creating one first: `SEEDED_ENDED` (created
    /// 2024-09-24, ended with two `succeeded` rows and one `errored`) and `SEEDED_IN_PROGRESS`
    /// (submitted when the server started). Batches created later are listed before them.
    pub fn seeded() -> Self {
        let mut batches = Batches::default();
        // 2024-09-24T18:37:24.100435Z, ended 2024-09-24T18:43:11.560201Z.
        let created = SystemTime::UNIX_EPOCH + Duration::from_micros(1_727_203_044_100_435);
        let ended = Batch {
            id: SEEDED_ENDED.into(),
            created,
            delay: Duration::from_micros(1_727_203_391_560_201 - 1_727_203_044_100_435),
            cancel_at: None,
            cancel_delay: Duration::ZERO,
            items: vec![
                seed_request("question-1", "What is the capital of France?"),
                seed_request(
                    "question-2",
                    "Summarise the plot of Hamlet in one sentence.",
                ),
                Item {
                    custom_id: "question-3".into(),
                    outcome: Outcome::Invalid("max_tokens: Field required".into()),
                },
            ],
            results: None,
        };
        let running = Batch {
            id: SEEDED_IN_PROGRESS.into(),
            created: SystemTime::now(),
            delay: wire::secs(24 * 3600),
            cancel_at: None,
            cancel_delay: Duration::ZERO,
            items: vec![
                seed_request("summary-1", "Summarise the attached release notes."),
                seed_request("summary-2", "List three risks of the migration plan."),
            ],
            results: None,
        };
        for b in [ended, running] {
            batches.by_id.insert(b.id.clone(), b);
        }
        batches
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    InProgress,
    Canceling,
    Ended(SystemTime),
}

impl Batch {
    fn natural_end(&self) -> SystemTime {
        self.created + self.delay
    }

    /// Whether a cancel arrived before the batch would have ended by itself.
    fn canceled(&self) -> bool {
        self.cancel_at.is_some_and(|c| c < self.natural_end())
    }

    fn status(&self, now: SystemTime) -> Status {
        if let Some(c) = self.cancel_at.filter(|_| self.canceled()) {
            let end = c + self.cancel_delay;
            return if now >= end {
                Status::Ended(end)
            } else {
                Status::Canceling
            };
        }
        let end = self.natural_end();
        if now >= end {
            Status::Ended(end)
        } else {
            Status::InProgress
        }
    }

    fn row_kind(&self, item: &Item) -> &'static str {
        match &item.outcome {
            Outcome::Invalid(_) => "errored",
            Outcome::Expire => "expired",
            Outcome::Valid(_) if self.canceled() => "canceled",
            Outcome::Valid(_) => "succeeded",
        }
    }

    fn json(&self, sim: &Sim, now: SystemTime) -> Value {
        let status = self.status(now);
        let n = self.items.len();
        let mut counts =
            json!({"processing": n, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0});
        let (status_name, ended_at, results_url) = match status {
            Status::InProgress => ("in_progress", Value::Null, Value::Null),
            Status::Canceling => ("canceling", Value::Null, Value::Null),
            Status::Ended(t) => {
                counts["processing"] = json!(0);
                for item in &self.items {
                    let k = self.row_kind(item);
                    counts[k] = json!(counts[k].as_u64().unwrap_or(0) + 1);
                }
                (
                    "ended",
                    json!(wire::rfc3339(t)),
                    json!(results_url(sim, &self.id)),
                )
            }
        };
        json!({
            "id": self.id,
            "type": "message_batch",
            "processing_status": status_name,
            "request_counts": counts,
            "ended_at": ended_at,
            "created_at": wire::rfc3339(self.created),
            "expires_at": wire::rfc3339(self.created + wire::secs(24 * 3600)),
            "archived_at": null,
            "cancel_initiated_at": self.cancel_at.map(wire::rfc3339),
            "results_url": results_url,
        })
    }

    fn rows(&self, seed: u64) -> String {
        let mut out = String::new();
        for item in &self.items {
            let result = match (self.row_kind(item), &item.outcome) {
                ("succeeded", Outcome::Valid(params)) => match messages::generate(seed, params) {
                    Ok(mut m) => {
                        m["usage"]["service_tier"] = json!("batch");
                        json!({"type": "succeeded", "message": m})
                    }
                    Err(e) => errored(&e),
                },
                (_, Outcome::Invalid(e)) => errored(e),
                (kind, _) => json!({"type": kind}),
            };
            out.push_str(&json!({"custom_id": item.custom_id, "result": result}).to_string());
            out.push('\n');
        }
        out
    }
}

fn errored(message: &str) -> Value {
    json!({"type": "errored", "error": {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": message},
        "request_id": null,
    }})
}

fn results_url(sim: &Sim, id: &str) -> String {
    sim.url_of("anthropic.get_message_batch_results", &[id])
        .unwrap_or_else(|| format!("{}/v1/messages/batches/{id}/results", sim.base_url))
}

/// Check one request's params as `create_message` would.
fn check_params(sim: &Sim, params: &Value) -> Outcome {
    if !params.is_object() {
        return Outcome::Invalid("params: Input should be an object".into());
    }
    if params.get("stream").and_then(Value::as_bool) == Some(true) {
        return Outcome::Invalid("stream: streaming is not supported in Message Batches; remove `stream` from the request's params".into());
    }
    let manifest = &sim.integration.manifest;
    let target = manifest.functions.iter().find(|(_, f)| {
        f.simulator.as_ref().and_then(|s| s.behaviour.as_deref())
            == Some("anthropic.create_message")
    });
    let Some((name, f)) = target else {
        return Outcome::Valid(params.clone());
    };
    for p in &f.params {
        if p.send_default && params.get(p.wire()).is_none() {
            return Outcome::Invalid(format!("{}: Field required", p.wire()));
        }
    }
    let validator = match sim.integration.validator(name) {
        Ok(v) => v,
        Err(e) => return Outcome::Invalid(e.to_string()),
    };
    match validator.check_wire(name, f, params) {
        Ok(v) => match messages::check(&v, true) {
            Ok(()) => Outcome::Valid(v),
            Err(e) => Outcome::Invalid(e),
        },
        Err(crate::error::Error::Validation { errors, .. }) => Outcome::Invalid(
            errors
                .iter()
                .map(|e| crate::simulator::request::readable(e))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        Err(e) => Outcome::Invalid(e.to_string()),
    }
}

fn valid_custom_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

pub fn create(sim: &Sim, call: &Call) -> Reply {
    let Some(requests) = call.arg("requests").and_then(Value::as_array) else {
        return Reply::invalid("requests: Field required");
    };
    if requests.is_empty() {
        return Reply::invalid("requests: List should have at least 1 item");
    }
    let mut items = Vec::with_capacity(requests.len());
    let mut seen = std::collections::HashSet::new();
    for (i, r) in requests.iter().enumerate() {
        let Some(custom_id) = r.get("custom_id").and_then(Value::as_str) else {
            return Reply::invalid(format!("requests.{i}.custom_id: Field required"));
        };
        if !valid_custom_id(custom_id) {
            return Reply::invalid(format!(
                "requests.{i}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
            ));
        }
        if !seen.insert(custom_id.to_string()) {
            return Reply::invalid(format!(
                "requests.{i}.custom_id: Duplicate custom_id '{custom_id}'; each request in a batch needs a unique custom_id."
            ));
        }
        let outcome = if custom_id.starts_with(EXPIRE_PREFIX) {
            Outcome::Expire
        } else {
            check_params(sim, r.get("params").unwrap_or(&Value::Null))
        };
        items.push(Item {
            custom_id: custom_id.to_string(),
            outcome,
        });
    }
    let delay = store(sim).batch_delay;
    let batch = Batch {
        id: wire::ordered_id("msgbatch_"),
        created: SystemTime::now(),
        delay,
        cancel_at: None,
        cancel_delay: delay / 2,
        items,
        results: None,
    };
    let now = batch.created;
    let body = batch.json(sim, now);
    store(sim).batches.by_id.insert(batch.id.clone(), batch);
    Reply::json(body)
}

pub fn list(sim: &Sim, call: &Call) -> Reply {
    let now = SystemTime::now();
    let all: Vec<Value> = store(sim)
        .batches
        .by_id
        .values()
        .rev()
        .map(|b| b.json(sim, now))
        .collect();
    match pagination::page(&all, call, "id") {
        Ok(page) => Reply::json(page),
        Err(e) => e,
    }
}

fn missing(id: &str) -> Reply {
    Reply::not_found(format!("Message Batch {id} not found"))
}

pub fn get(sim: &Sim, call: &Call) -> Reply {
    let id = call.path_value(0);
    let now = SystemTime::now();
    match store(sim).batches.by_id.get(id) {
        Some(b) => Reply::json(b.json(sim, now)),
        None => missing(id),
    }
}

pub fn cancel(sim: &Sim, call: &Call) -> Reply {
    let id = call.path_value(0);
    let now = SystemTime::now();
    let mut store = store(sim);
    let delay = store.batch_delay;
    let Some(b) = store.batches.by_id.get_mut(id) else {
        return missing(id);
    };
    match b.status(now) {
        Status::Ended(_) => Reply::invalid(format!(
            "Message Batch {id} has already ended and cannot be canceled"
        )),
        Status::Canceling => Reply::json(b.json(sim, now)),
        Status::InProgress => {
            b.cancel_at = Some(now);
            b.cancel_delay = delay / 2;
            Reply::json(b.json(sim, now))
        }
    }
}

pub fn delete(sim: &Sim, call: &Call) -> Reply {
    let id = call.path_value(0);
    let now = SystemTime::now();
    let mut store = store(sim);
    let Some(b) = store.batches.by_id.get(id) else {
        return missing(id);
    };
    if !matches!(b.status(now), Status::Ended(_)) {
        return Reply::invalid(format!(
            "Message Batch {id} cannot be deleted while it is still processing. Cancel it first, then delete it once it has ended."
        ));
    }
    store.batches.by_id.shift_remove(id);
    Reply::json(json!({"id": id, "type": "message_batch_deleted"}))
}

pub fn results(sim: &Sim, call: &Call) -> Reply {
    let id = call.path_value(0);
    let now = SystemTime::now();
    let seed = sim.opts.seed;
    let mut store = store(sim);
    let Some(b) = store.batches.by_id.get_mut(id) else {
        return missing(id);
    };
    if !matches!(b.status(now), Status::Ended(_)) {
        return Reply::invalid(format!(
            "Message Batch {id} has not finished processing; results are available once its processing_status is ended"
        ));
    }
    let rows = match &b.results {
        Some(r) => r.clone(),
        None => {
            let r = b.rows(seed);
            b.results = Some(r.clone());
            r
        }
    };
    Reply::Raw {
        status: 200,
        content_type: "application/x-jsonl".into(),
        body: rows.into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_batches_are_one_ended_and_one_cancelable() {
        let b = Batches::seeded();
        let now = SystemTime::now();
        let ended = &b.by_id[SEEDED_ENDED];
        assert!(matches!(ended.status(now), Status::Ended(_)));
        let kinds: Vec<_> = ended.items.iter().map(|i| ended.row_kind(i)).collect();
        assert_eq!(kinds, ["succeeded", "succeeded", "errored"]);
        // Still running an hour after the server started: a late script can cancel it.
        let running = &b.by_id[SEEDED_IN_PROGRESS];
        assert_eq!(running.status(now + wire::secs(3600)), Status::InProgress);
        // Newest first in lists: the running batch comes before the ended one.
        let order: Vec<_> = b.by_id.keys().rev().map(String::as_str).collect();
        assert_eq!(order, [SEEDED_IN_PROGRESS, SEEDED_ENDED]);
    }
}

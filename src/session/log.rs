//! The record of a session's calls: what the `--json` envelope shows as `integration_calls`.
//!
//! A call is registered when it is sent and finished when its answer is in. A call still in
//! flight when the run stops (a limit, a signal, a callback that failed) stays registered and
//! is flushed at the end with what stopped it, so a cut-off call is never missing.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde_json::{Value as Json, json};

use crate::error::Error;
use crate::manifest::Class;

/// What one call was: the front end's label for it and the function it resolved to.
#[derive(Debug, Clone)]
pub struct CallMeta {
    /// How the front end named the call, e.g. `integrations.<name>.<function>`.
    pub path: String,
    pub function: String,
    pub account: String,
    /// `None` when the function could not be resolved.
    pub class: Option<Class>,
}

/// One finished call.
#[derive(Debug, Clone)]
pub struct CallRecord {
    /// The id [`CallLog::begin`] gave it (`None` for a call refused before it was sent).
    pub id: Option<u64>,
    pub meta: CallMeta,
    pub duration_ms: f64,
    pub http_status: Option<u16>,
    pub request_id: Option<String>,
    /// The error's JSON (`code`, `message`, ...) when the call failed.
    pub error: Option<Json>,
}

impl CallRecord {
    /// The envelope's entry: `path, function, account, class, status, duration_ms,
    /// http_status, request_id, error`.
    pub fn to_json(&self) -> Json {
        json!({
            "path": self.meta.path,
            "function": self.meta.function,
            "account": self.meta.account,
            "class": self.meta.class.map(Class::as_str),
            "status": if self.error.is_some() { "error" } else { "ok" },
            "duration_ms": self.duration_ms,
            "http_status": self.http_status,
            "request_id": self.request_id,
            "error": self.error,
        })
    }
}

/// Milliseconds since `started`, to the microsecond.
fn millis(started: Instant) -> f64 {
    (started.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// The calls of one session.
#[derive(Default)]
pub struct CallLog {
    done: Mutex<Vec<CallRecord>>,
    in_flight: Mutex<BTreeMap<u64, (CallMeta, Instant)>>,
    next: AtomicU64,
}

impl CallLog {
    /// Record a call that is over.
    pub fn record(&self, rec: CallRecord) {
        if let Ok(mut d) = self.done.lock() {
            d.push(rec);
        }
    }

    /// Record a call that failed before it was sent (unknown function, invalid arguments,
    /// refused by the permissions or the file policy).
    pub fn record_failure(&self, meta: CallMeta, err: &Error) {
        self.record(CallRecord {
            id: None,
            meta,
            duration_ms: 0.0,
            http_status: err.status(),
            request_id: err.request_id().map(str::to_string),
            error: Some(err.to_json()),
        });
    }

    /// Register a call being sent; its id finishes it.
    pub fn begin(&self, meta: CallMeta) -> u64 {
        let id = self.next.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut m) = self.in_flight.lock() {
            m.insert(id, (meta, Instant::now()));
        }
        id
    }

    /// The call `id` is over. `false` when it was already recorded (flushed as cut off).
    pub fn finish(
        &self,
        id: u64,
        http_status: Option<u16>,
        request_id: Option<&str>,
        error: Option<Json>,
    ) -> bool {
        let Some((meta, started)) = self.in_flight.lock().ok().and_then(|mut m| m.remove(&id))
        else {
            return false;
        };
        self.record(CallRecord {
            id: Some(id),
            meta,
            duration_ms: millis(started),
            http_status,
            request_id: request_id.map(str::to_string),
            error,
        });
        true
    }

    /// The call `id` failed with `error` after all, whether it is still in flight or already
    /// recorded as a success (a streamed call whose event handler raised after the last event).
    pub fn fail(&self, id: u64, error: Json) {
        if self.finish(id, None, None, Some(error.clone())) {
            return;
        }
        if let Ok(mut done) = self.done.lock()
            && let Some(rec) = done.iter_mut().rev().find(|r| r.id == Some(id))
            && rec.error.is_none()
        {
            rec.error = Some(error);
        }
    }

    /// [`CallLog::finish`] with a call's result.
    pub fn finish_with<T>(
        &self,
        id: u64,
        result: &Result<T, Error>,
        ok: impl Fn(&T) -> (Option<u16>, Option<&str>),
    ) {
        match result {
            Ok(v) => {
                let (status, rid) = ok(v);
                self.finish(id, status, rid, None);
            }
            Err(e) => {
                self.finish(id, e.status(), e.request_id(), Some(e.to_json()));
            }
        }
    }

    /// Record every call still in flight as failed with `err` (what stopped the run).
    pub fn flush_in_flight(&self, err: &Json) {
        let cut: Vec<(u64, (CallMeta, Instant))> = match self.in_flight.lock() {
            Ok(mut m) => std::mem::take(&mut *m).into_iter().collect(),
            Err(_) => Vec::new(),
        };
        for (id, (meta, started)) in cut {
            self.record(CallRecord {
                id: Some(id),
                meta,
                duration_ms: millis(started),
                http_status: None,
                request_id: None,
                error: Some(err.clone()),
            });
        }
    }

    /// Whether calls are in flight.
    pub fn has_in_flight(&self) -> bool {
        self.in_flight
            .lock()
            .map(|m| !m.is_empty())
            .unwrap_or(false)
    }

    /// The finished calls, in the order they ended, as the envelope shows them.
    pub fn entries(&self) -> Vec<Json> {
        self.done
            .lock()
            .map(|d| d.iter().map(CallRecord::to_json).collect())
            .unwrap_or_default()
    }

    /// The finished calls.
    pub fn records(&self) -> Vec<CallRecord> {
        self.done.lock().map(|d| d.clone()).unwrap_or_default()
    }

    /// Forget every call (a new REPL entry starts a new record).
    pub fn clear(&self) {
        if let Ok(mut d) = self.done.lock() {
            d.clear();
        }
        if let Ok(mut m) = self.in_flight.lock() {
            m.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(f: &str) -> CallMeta {
        CallMeta {
            path: format!("integrations.x.{f}"),
            function: f.into(),
            account: "default".into(),
            class: Some(Class::Read),
        }
    }

    #[test]
    fn a_call_cut_off_is_flushed_once_with_the_reason() {
        let log = CallLog::default();
        let a = log.begin(meta("a"));
        let b = log.begin(meta("b"));
        assert!(log.finish(a, Some(200), Some("req_1"), None));
        log.flush_in_flight(&json!({"code": "limit_exceeded"}));
        // Finishing after the flush records nothing more.
        assert!(!log.finish(b, Some(200), None, None));
        let e = log.entries();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0]["status"], "ok");
        assert_eq!(e[0]["request_id"], "req_1");
        assert_eq!(e[1]["function"], "b");
        assert_eq!(e[1]["status"], "error");
        assert_eq!(e[1]["error"]["code"], "limit_exceeded");
        assert!(!log.has_in_flight());
        // A success can still turn into a failure (its event handler raised).
        let c = log.begin(meta("c"));
        log.finish(c, Some(200), None, None);
        log.fail(c, json!({"code": "my_stop"}));
        let e = log.entries();
        assert_eq!(e[2]["status"], "error");
        assert_eq!(e[2]["error"]["code"], "my_stop");
        assert_eq!(e[2]["http_status"], 200);
    }
}

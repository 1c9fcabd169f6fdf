//! Where long waits report how they are going: polling until an operation finishes, and
//! downloads written to a file. The executor only reports; a front end decides what to show
//! (the CLI draws a bar on a terminal, never in `--json` or when stderr is piped).

use std::time::Duration;

use serde_json::Value;

/// Receives progress of long waits. Every method has a do-nothing default.
pub trait Progress: Send + Sync {
    /// One more poll of `function` finished: the state it reported (the value at the
    /// manifest's `until` pointer), how long the wait has taken, and its timeout.
    fn polled(
        &self,
        _function: &str,
        _polls: u32,
        _state: Option<&Value>,
        _elapsed: Duration,
        _timeout: Duration,
    ) {
    }

    /// `bytes` of a download to `path` are written (`total` from `content-length` if sent).
    fn downloaded(&self, _path: &str, _bytes: u64, _total: Option<u64>) {}

    /// The wait on `what` (a function or a path) is over, however it ended.
    fn finished(&self, _what: &str) {}
}

/// A shared [`Progress`] that settings structs can carry (and print as a placeholder).
#[derive(Clone)]
pub struct ProgressHandle(pub std::sync::Arc<dyn Progress>);

impl std::fmt::Debug for ProgressHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressHandle")
    }
}

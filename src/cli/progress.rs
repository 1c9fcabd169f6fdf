//! Progress of long waits on a terminal: a spinner while an operation is polled, a bar while a
//! download is written. Only when stderr is a terminal and `--json` is off; stdout is untouched.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

use crate::exec::Progress;

/// The bars currently drawn, one per wait (parallel branches each get their own).
#[derive(Default)]
pub struct TerminalProgress {
    bars: Mutex<HashMap<String, ProgressBar>>,
}

/// A progress reporter when progress should be shown: stderr is a terminal, `--json` is off
/// and `NO_COLOR`-style quiet is not asked for (`KOSMO_PROGRESS=0`).
pub fn for_terminal(json: bool) -> Option<Arc<dyn Progress>> {
    let off = std::env::var("KOSMO_PROGRESS").is_ok_and(|v| v == "0");
    if json || off || !std::io::stderr().is_terminal() {
        return None;
    }
    Some(Arc::new(TerminalProgress::default()))
}

impl TerminalProgress {
    fn bar(&self, key: &str, make: impl FnOnce() -> ProgressBar) -> Option<ProgressBar> {
        let mut bars = self.bars.lock().ok()?;
        Some(bars.entry(key.to_string()).or_insert_with(make).clone())
    }
}

fn seconds(d: Duration) -> String {
    format!("{:.0}s", d.as_secs_f64())
}

impl Progress for TerminalProgress {
    fn polled(
        &self,
        function: &str,
        polls: u32,
        state: Option<&Value>,
        elapsed: Duration,
        timeout: Duration,
    ) {
        let Some(bar) = self.bar(function, || {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        }) else {
            return;
        };
        let state = match state {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => "waiting".into(),
        };
        bar.set_message(format!(
            "{function}: {state} after {} of {} ({polls} poll{})",
            seconds(elapsed),
            seconds(timeout),
            if polls == 1 { "" } else { "s" }
        ));
    }

    fn downloaded(&self, path: &str, bytes: u64, total: Option<u64>) {
        let Some(bar) = self.bar(path, || {
            let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
            let template = if total.is_some() {
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}"
            } else {
                "{spinner} {msg} {bytes} {bytes_per_sec}"
            };
            bar.set_style(
                ProgressStyle::with_template(template)
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_message(format!("downloading {path}"));
            bar
        }) else {
            return;
        };
        bar.set_position(bytes);
    }

    fn finished(&self, what: &str) {
        if let Some(bar) = self.bars.lock().ok().and_then(|mut b| b.remove(what)) {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_come_and_go_per_wait() {
        let p = TerminalProgress::default();
        p.polled(
            "wait",
            1,
            Some(&Value::from("in_progress")),
            Duration::from_secs(1),
            Duration::from_secs(60),
        );
        p.downloaded("/tmp/x", 10, Some(100));
        assert_eq!(p.bars.lock().unwrap().len(), 2);
        p.finished("wait");
        p.finished("/tmp/x");
        assert!(p.bars.lock().unwrap().is_empty());
    }
}

//! The one `--json` envelope, for every outcome:
//! `{schema_version, success, output, error, result, execution_time_ms, memory_usage,
//! integration_calls, meta}` (the contract: `docs/json-envelope.md`).
//!
//! `error` is null or `{code, message, ...}`; `result` is the list of the chunk's return values
//! (`return 42` → `[42]`, no return → `[]`, null when the run failed); each `integration_calls`
//! entry is `{path, function, account, class, status, duration_ms, http_status, request_id,
//! error}`; `meta` is `{permission_bypassed, dry_run, read_only, offline, warnings}`, where
//! `warnings` lists user manifests that were skipped (and why) when the run loaded the registry. Exit codes: 0 on
//! success, 1 on failure, 2 on usage errors, 130 / 143 / 129 when SIGINT / SIGTERM / SIGHUP stopped the run.

use serde_json::{Value as Json, json};

/// The envelope's contract version (`schema_version`), documented with its JSON Schema in
/// `docs/json-envelope.md`. Adding a field keeps it; removing or retyping one bumps it.
pub const SCHEMA_VERSION: u32 = 1;

/// What the envelope's `meta` records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    /// `--force` was in effect: `ask` and `deny` did not stop calls.
    pub permission_bypassed: bool,
    pub dry_run: bool,
    pub read_only: bool,
    pub offline: bool,
    /// One line per user manifest that was skipped because it has problems (empty when the
    /// run never loaded the registry).
    pub warnings: Vec<String>,
}

impl Meta {
    pub fn to_json(&self) -> Json {
        json!({
            "permission_bypassed": self.permission_bypassed,
            "dry_run": self.dry_run,
            "read_only": self.read_only,
            "offline": self.offline,
            "warnings": self.warnings,
        })
    }
}

/// The outcome of one run.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub success: bool,
    pub output: String,
    pub error: Option<Json>,
    pub result: Option<Vec<Json>>,
    pub execution_time_ms: f64,
    pub memory_usage: u64,
    pub integration_calls: Vec<Json>,
    pub meta: Meta,
}

impl Outcome {
    /// An outcome for a run that never started (usage error, missing file).
    pub fn failed(error: Json, meta: Meta) -> Outcome {
        Outcome {
            success: false,
            output: String::new(),
            error: Some(error),
            result: None,
            execution_time_ms: 0.0,
            memory_usage: 0,
            integration_calls: Vec::new(),
            meta,
        }
    }

    /// A usage error (bad flag value, no code to run): exit code 2.
    pub fn usage(message: impl Into<String>, meta: Meta) -> Outcome {
        Outcome::failed(
            json!({
                "code": "usage_error",
                "message": message.into(),
                "status": null,
                "type": null,
                "request_id": null,
                "retry_after": null,
            }),
            meta,
        )
    }

    pub fn error_code(&self) -> Option<&str> {
        self.error.as_ref()?.get("code")?.as_str()
    }

    pub fn error_message(&self) -> Option<&str> {
        self.error.as_ref()?.get("message")?.as_str()
    }

    pub fn exit_code(&self) -> u8 {
        if self.success {
            0
        } else if self.error_code() == Some("usage_error") {
            2
        } else if self.error_code() == Some("interrupted") {
            // The shell convention for death by a signal: 128 + its number.
            match self.error.as_ref().and_then(|e| e.get("signal")?.as_str()) {
                Some("SIGTERM") => 143,
                Some("SIGHUP") => 129,
                _ => 130,
            }
        } else {
            1
        }
    }

    pub fn to_json(&self) -> Json {
        json!({
            "schema_version": SCHEMA_VERSION,
            "success": self.success,
            "output": self.output,
            "error": self.error,
            "result": self.result,
            "execution_time_ms": self.execution_time_ms,
            "memory_usage": self.memory_usage,
            "integration_calls": self.integration_calls,
            "meta": self.meta.to_json(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_keys_and_exit_codes() {
        let ok = Outcome {
            success: true,
            output: "hi".into(),
            error: None,
            result: Some(vec![json!(42)]),
            execution_time_ms: 1.5,
            memory_usage: 100,
            integration_calls: vec![],
            meta: Meta::default(),
        };
        let j = ok.to_json();
        for k in [
            "success",
            "output",
            "error",
            "result",
            "execution_time_ms",
            "memory_usage",
            "integration_calls",
            "meta",
        ] {
            assert!(j.get(k).is_some(), "missing {k}");
        }
        assert_eq!(j["result"], json!([42]));
        assert_eq!(ok.exit_code(), 0);
        let usage = Outcome::usage("bad", Meta::default());
        assert_eq!(usage.exit_code(), 2);
        assert_eq!(usage.to_json()["error"]["code"], "usage_error");
        assert_eq!(usage.to_json()["result"], Json::Null);
        assert_eq!(usage.to_json()["meta"]["warnings"], json!([]));
        let warned = Meta {
            warnings: vec!["skipped manifest x.yaml: line 1 column 1: /: bad".into()],
            ..Meta::default()
        };
        assert_eq!(
            warned.to_json()["warnings"],
            json!(["skipped manifest x.yaml: line 1 column 1: /: bad"])
        );
    }
}

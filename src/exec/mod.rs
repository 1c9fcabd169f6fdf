//! The generic executor: one code path runs every function of every manifest.
//!
//! It knows HTTP and the manifest, nothing about Lua. (Skeleton: the executor issue fills it in;
//! the signatures here are the contract the Lua runtime and the CLI code against.)

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::credentials::Credentials;
use crate::error::{Error, Result};
use crate::manifest::Class;
use crate::registry::Registry;

/// Transport settings. Defaults follow the official SDKs (2 retries, 5 s connect, 600 s total).
#[derive(Debug, Clone)]
pub struct ExecConfig {
    pub max_retries: u32,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// A stream that sends nothing but pings for this long fails instead of hanging.
    pub stream_idle_timeout: Duration,
    /// Retry writes not marked idempotent even after the request may have reached the server.
    pub retry_non_idempotent: bool,
}

impl Default for ExecConfig {
    fn default() -> Self {
        ExecConfig {
            max_retries: 2,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(600),
            stream_idle_timeout: Duration::from_secs(90),
            retry_non_idempotent: false,
        }
    }
}

/// Receives each streamed event as it arrives; an error aborts the stream.
pub type EventSink<'a> = Box<dyn FnMut(&Value) -> Result<()> + Send + 'a>;

/// One call of one function.
pub struct Call<'a> {
    pub integration: &'a str,
    /// Lua name, full name or alias.
    pub function: &'a str,
    /// Named account; `None` is `default`.
    pub account: Option<&'a str>,
    /// Arguments, flat or with `payload` / `query` wrappers.
    pub args: Value,
    /// Build the request and return it (secrets redacted) instead of sending it.
    pub dry_run: bool,
    /// For streaming calls: each event, as it arrives.
    pub on_event: Option<EventSink<'a>>,
}

/// What a call returned, with what the Lua envelope records about it.
#[derive(Debug, Clone)]
pub struct CallOutput {
    pub value: Value,
    pub function: String,
    pub class: Class,
    pub account: String,
    pub http_status: Option<u16>,
    pub request_id: Option<String>,
}

/// Rows of a JSONL response, read as they arrive, in constant memory.
pub struct RowStream {
    _private: (),
}

impl RowStream {
    pub async fn next(&mut self) -> Option<Result<Value>> {
        None
    }
}

/// The executor. Cheap to clone.
#[derive(Clone)]
pub struct Executor {
    registry: Arc<Registry>,
    #[allow(dead_code)]
    credentials: Arc<Credentials>,
    #[allow(dead_code)]
    config: ExecConfig,
}

impl Executor {
    pub fn new(registry: Arc<Registry>, credentials: Arc<Credentials>, config: ExecConfig) -> Result<Self> {
        Ok(Executor { registry, credentials, config })
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Validate, build, send (with retries), decode.
    pub async fn call(&self, call: Call<'_>) -> Result<CallOutput> {
        Err(Error::Unsupported {
            function: call.function.into(),
            message: "the executor is not built yet".into(),
        })
    }

    /// Open a JSONL function's response as a row stream.
    pub async fn rows(&self, call: Call<'_>) -> Result<RowStream> {
        Err(Error::Unsupported {
            function: call.function.into(),
            message: "the executor is not built yet".into(),
        })
    }
}

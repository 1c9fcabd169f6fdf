//! kosmo: a manifest-driven registry of API integrations, driven from sandboxed Lua.
//!
//! Data flows one way: [`manifest`] (YAML) → [`registry`] (loaded integrations, lazily compiled
//! input schemas) → [`validate`] → [`exec`] (HTTP, retries, streaming, pagination) → the
//! [`session`] (permissions, file policy, the call record) → the front ends: [`lua`], the CLI and
//! MCP. The executor knows nothing about Lua; Lua knows nothing about HTTP. The [`simulator`]
//! answers every manifest function offline, and [`docs`] renders every form of the reference from
//! the same manifests.
//!
//! # Using kosmo as a library
//!
//! The facade re-exported here is the supported surface: [`Session`] (one call path, with the
//! permissions, validation, retries and record every front end gets), [`Registry`] and
//! [`Manifest`] (the loaded integrations), [`Executor`] and [`Call`] (HTTP without the session's
//! policy, for tools that bring their own), [`Docs`] (the reference renderer), [`Runtime`] (the
//! sandboxed Lua runtime) and [`Error`] (one error type, each variant with a stable
//! [`Error::code`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), kosmo::Error> {
//! use kosmo::{Request, Session, SessionOptions};
//! let session = Session::new(SessionOptions { offline: true, ..Default::default() });
//! let out = session
//!     .call(Request::new("anthropic", "count_message_tokens", serde_json::json!({
//!         "model": "claude-sonnet-4-5",
//!         "messages": [{"role": "user", "content": "Hello"}],
//!     })))
//!     .await?;
//! println!("{}", out.value);
//! # Ok(()) }
//! ```
//!
//! `examples/session.rs` is a runnable version (`cargo run --example session`).

#![forbid(unsafe_code)]

mod cli;
pub mod coerce;
pub mod credentials;
pub mod docs;
pub mod error;
pub mod exec;
#[doc(hidden)]
pub mod fuzz;
pub mod import;
pub mod lua;
pub mod manifest;
pub mod manifest_check;
pub mod mcp;
pub mod permissions;
pub mod redact;
pub mod registry;
pub mod session;
pub mod simulator;
pub mod validate;

pub use docs::Docs;
pub use error::{Error, Result};
pub use exec::{Call, CallOutput, Executor};
pub use lua::{Options as LuaOptions, Outcome, Runtime};
pub use manifest::Manifest;
pub use registry::Registry;
pub use session::{Request, Session, SessionOptions};

/// The `kosmo` command line (what the binary runs); not part of the library's API.
#[doc(hidden)]
pub fn cli_main() -> std::process::ExitCode {
    cli::main()
}

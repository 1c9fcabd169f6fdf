//! kosmo: a manifest-driven registry of API integrations, driven from sandboxed Lua.
//!
//! Data flows one way: [`manifest`] (YAML) → [`registry`] (loaded integrations, lazily compiled
//! input schemas) → [`validate`] → [`exec`] (HTTP, retries, streaming, pagination) → [`lua`] and
//! [`cli`]. The executor knows nothing about Lua; Lua knows nothing about HTTP. The [`simulator`]
//! answers every manifest function offline, and [`docs`] renders every form of the reference from
//! the same manifests.

#![forbid(unsafe_code)]

pub mod cli;
pub mod coerce;
pub mod credentials;
pub mod docs;
pub mod error;
pub mod exec;
#[doc(hidden)]
pub mod fuzz;
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

pub use error::{Error, Result};

//! One integration-test binary (it links once): each module drives the real `kosmo` binary or
//! the library against servers the tests start on 127.0.0.1.

mod api_shapes;
mod architecture;
mod caps;
mod cli;
#[path = "cli/repl.rs"]
mod cli_repl;
#[path = "cli/usage.rs"]
mod cli_usage;
mod configure;
mod docs;
mod envelope;
mod exec;
mod foundation;
mod guide;
mod import;
mod integrations;
mod lua;
mod manifests;
mod mcp;
mod permissions;
mod secrets;
mod seed;
mod session;
mod simulator;
mod suite;
mod support;

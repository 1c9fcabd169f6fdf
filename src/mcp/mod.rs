//! MCP, both ways: configured MCP servers used from Lua (`mcp.*`, `app.mcp.*`, `mcp:lua`), and
//! kosmo's integrations served as MCP tools (`mcp:serve`).
//!
//! - [`config`]: where servers are configured (`.mcp.json`, `config.yaml`, `mcp.json`), their
//!   precedence and `${VAR}` expansion;
//! - [`client`]: servers started on first use, timeouts, clean shutdown, tool results;
//! - [`serve`]: the server side.

pub mod client;
pub mod config;
pub mod serve;

pub use client::{Clients, Connection, Status, tool_value};
pub use config::{Config, Locations, Server, Transport};

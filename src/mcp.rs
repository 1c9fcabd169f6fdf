//! MCP servers for `app.mcp.*` and `mcp.*`. None are configured until the MCP issue lands, so
//! the list is empty and scripts that ask for servers get an empty list rather than an error.

/// A configured MCP server (name and the command that starts it).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServerInfo {
    pub name: String,
    pub command: String,
}

/// The configured servers: none yet.
pub fn servers() -> Vec<ServerInfo> {
    Vec::new()
}

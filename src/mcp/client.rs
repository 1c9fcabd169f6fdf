//! Talking to configured MCP servers (the client side), with the official SDK (`rmcp`).
//!
//! [`Clients`] starts a server the first time something uses it (a run that touches no MCP
//! server spawns nothing), keeps it for the rest of the run, and shuts every started server down
//! in [`Clients::shutdown`]. A child's stderr goes to the log (`KOSMO_LOG=kosmo::mcp=debug`) and
//! its last lines into the error when it fails; it never reaches kosmo's stdout. Every request
//! has a timeout (the server's `timeout`, never past the caller's deadline), and a server that
//! exits or hangs gives an error instead of hanging kosmo.
//!
//! Everything here speaks JSON values; callers (Lua, the CLI) know nothing about JSON-RPC.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, GetPromptRequestParams, ReadResourceRequestParams};
use rmcp::service::{Peer, RoleClient, RunningService, ServiceError};
use serde_json::{Map, Value as Json, json};

use super::config::{Config, Locations, STARTUP_TIMEOUT, Server, Transport};
use crate::error::{Error, McpErrorKind};

/// Lines of a child's stderr kept for error messages.
const STDERR_TAIL: usize = 20;

fn mcp_err(kind: McpErrorKind, server: &str, message: impl Into<String>) -> Error {
    Error::Mcp {
        kind,
        server: server.to_string(),
        tool: None,
        message: message.into(),
        detail: None,
    }
}

/// A started server.
pub struct Connection {
    pub server: Server,
    peer: Peer<RoleClient>,
    service: tokio::sync::Mutex<Option<RunningService<RoleClient, ()>>>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    /// The tools, listed once on first need.
    tools: tokio::sync::OnceCell<Vec<Json>>,
    pid: Option<u32>,
}

impl Connection {
    /// The last lines the server wrote on stderr, for an error message.
    fn tail(&self) -> String {
        let lines = self
            .stderr_tail
            .lock()
            .map(|t| t.iter().cloned().collect::<Vec<_>>())
            .unwrap_or_default();
        if lines.is_empty() {
            String::new()
        } else {
            format!("; its stderr ended with: {}", lines.join(" | "))
        }
    }

    fn failure(&self, e: ServiceError, what: &str, timeout: Duration) -> Error {
        let name = &self.server.name;
        match e {
            ServiceError::McpError(m) => mcp_err(
                McpErrorKind::Protocol,
                name,
                format!(
                    "MCP server '{name}' refused {what}: {} (JSON-RPC code {})",
                    m.message, m.code.0
                ),
            ),
            ServiceError::Timeout { .. } => self.timeout(what, timeout),
            ServiceError::TransportClosed | ServiceError::TransportSend(_) => mcp_err(
                McpErrorKind::ServerFailed,
                name,
                format!(
                    "MCP server '{name}' stopped during {what} (it exited or closed the connection){}",
                    self.tail()
                ),
            ),
            other => mcp_err(
                McpErrorKind::Protocol,
                name,
                format!("MCP server '{name}': {what} failed: {other}"),
            ),
        }
    }

    fn timeout(&self, what: &str, timeout: Duration) -> Error {
        let name = &self.server.name;
        mcp_err(
            McpErrorKind::Timeout,
            name,
            format!(
                "MCP server '{name}' did not answer {what} within {:.1}s (raise mcp.servers.{name}.timeout in config.yaml, or --timeout)",
                timeout.as_secs_f64()
            ),
        )
    }

    /// Run one request under the timeout: the server's own, or less when `deadline` is sooner.
    async fn request<T>(
        &self,
        what: &str,
        deadline: Option<Instant>,
        fut: impl std::future::Future<Output = Result<T, ServiceError>>,
    ) -> Result<T, Error> {
        let mut timeout = self.server.timeout;
        if let Some(d) = deadline {
            timeout = timeout.min(d.saturating_duration_since(Instant::now()));
        }
        if self.peer.is_transport_closed() {
            return Err(self.failure(ServiceError::TransportClosed, what, timeout));
        }
        match tokio::time::timeout(timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.failure(e, what, timeout)),
            Err(_) => Err(self.timeout(what, timeout)),
        }
    }

    /// The server's tools as `{name, title, description, inputSchema, outputSchema, annotations}`.
    pub async fn tools(&self, deadline: Option<Instant>) -> Result<&[Json], Error> {
        let list = self
            .tools
            .get_or_try_init(|| async {
                let tools = self
                    .request("tools/list", deadline, self.peer.list_all_tools())
                    .await?;
                Ok::<_, Error>(
                    tools
                        .iter()
                        .filter_map(|t| serde_json::to_value(t).ok())
                        .collect(),
                )
            })
            .await?;
        Ok(list)
    }

    /// One tool's description, or an unknown-tool error naming the close ones.
    pub async fn tool(&self, name: &str, deadline: Option<Instant>) -> Result<Json, Error> {
        let tools = self.tools(deadline).await?;
        if let Some(t) = tools.iter().find(|t| t["name"] == name) {
            return Ok(t.clone());
        }
        let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
        let close = crate::error::closest(name, names.iter().copied());
        let server = &self.server.name;
        let hint = if close.is_empty() {
            format!("its tools: {}", names.join(", "))
        } else {
            format!("did you mean: {}?", close.join(", "))
        };
        Err(Error::Mcp {
            kind: McpErrorKind::UnknownTool,
            server: server.clone(),
            tool: Some(name.to_string()),
            message: format!("MCP server '{server}' has no tool '{name}'; {hint}"),
            detail: None,
        })
    }

    /// Call a tool; `Ok` is the result as the server sent it (`isError` included).
    pub async fn call_tool(
        &self,
        tool: &str,
        args: Map<String, Json>,
        deadline: Option<Instant>,
    ) -> Result<Json, Error> {
        let params = CallToolRequestParams::new(tool.to_string()).with_arguments(args);
        let r = self
            .request(
                &format!("tools/call {tool}"),
                deadline,
                self.peer.call_tool(params),
            )
            .await
            .map_err(|e| with_tool(e, tool))?;
        serde_json::to_value(&r)
            .map_err(|e| mcp_err(McpErrorKind::Protocol, &self.server.name, e.to_string()))
    }

    pub async fn resources(&self, deadline: Option<Instant>) -> Result<Vec<Json>, Error> {
        let list = self
            .request("resources/list", deadline, self.peer.list_all_resources())
            .await?;
        Ok(list
            .iter()
            .filter_map(|r| serde_json::to_value(r).ok())
            .collect())
    }

    pub async fn read_resource(&self, uri: &str, deadline: Option<Instant>) -> Result<Json, Error> {
        let r = self
            .request(
                &format!("resources/read {uri}"),
                deadline,
                self.peer.read_resource(ReadResourceRequestParams::new(uri)),
            )
            .await?;
        serde_json::to_value(&r)
            .map_err(|e| mcp_err(McpErrorKind::Protocol, &self.server.name, e.to_string()))
    }

    pub async fn prompts(&self, deadline: Option<Instant>) -> Result<Vec<Json>, Error> {
        let list = self
            .request("prompts/list", deadline, self.peer.list_all_prompts())
            .await?;
        Ok(list
            .iter()
            .filter_map(|p| serde_json::to_value(p).ok())
            .collect())
    }

    pub async fn get_prompt(
        &self,
        name: &str,
        args: Map<String, Json>,
        deadline: Option<Instant>,
    ) -> Result<Json, Error> {
        let mut params = GetPromptRequestParams::new(name);
        if !args.is_empty() {
            params = params.with_arguments(args);
        }
        let r = self
            .request(
                &format!("prompts/get {name}"),
                deadline,
                self.peer.get_prompt(params),
            )
            .await?;
        serde_json::to_value(&r)
            .map_err(|e| mcp_err(McpErrorKind::Protocol, &self.server.name, e.to_string()))
    }

    /// The number of tools, once they have been listed.
    pub fn tool_count(&self) -> Option<usize> {
        self.tools.get().map(Vec::len)
    }

    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Close the connection: for a child, close its stdin, wait, then SIGTERM, then kill.
    async fn close(&self) {
        let service = self.service.lock().await.take();
        if let Some(mut s) = service {
            let _ = s.close_with_timeout(Duration::from_secs(5)).await;
        }
    }
}

fn with_tool(e: Error, tool: &str) -> Error {
    match e {
        Error::Mcp {
            kind,
            server,
            message,
            detail,
            ..
        } => Error::Mcp {
            kind,
            server,
            tool: Some(tool.to_string()),
            message,
            detail,
        },
        other => other,
    }
}

/// Start a server and complete the MCP handshake.
async fn connect(server: &Server) -> Result<Connection, Error> {
    let name = &server.name;
    let transport = server.transport.as_ref().map_err(|why| {
        mcp_err(
            McpErrorKind::ServerFailed,
            name,
            format!(
                "MCP server '{name}' ({}) cannot start: {why}",
                server.source.describe()
            ),
        )
    })?;
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    let started = match transport {
        Transport::Stdio {
            command,
            args,
            env,
            cwd,
        } => {
            let mut cmd = tokio::process::Command::new(command);
            cmd.args(args).envs(env).kill_on_drop(true);
            if let Some(d) = cwd {
                cmd.current_dir(d);
            }
            let (proc, stderr) = rmcp::transport::TokioChildProcess::builder(cmd)
                .stderr(std::process::Stdio::piped())
                .spawn()
                .map_err(|e| {
                    mcp_err(
                        McpErrorKind::ServerFailed,
                        name,
                        format!(
                            "MCP server '{name}' cannot start: `{command}`: {e} ({})",
                            server.source.describe()
                        ),
                    )
                })?;
            let pid = proc.id();
            if let Some(err) = stderr {
                spawn_stderr_reader(name.clone(), err, tail.clone());
            }
            let handshake = tokio::time::timeout(STARTUP_TIMEOUT, ().serve(proc)).await;
            (handshake.map(|r| r.map_err(|e| e.to_string())), pid)
        }
        Transport::Http { url, headers } => {
            use rmcp::transport::StreamableHttpClientTransport;
            use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
            let mut custom = std::collections::HashMap::new();
            for (k, v) in headers {
                let (Ok(hk), Ok(hv)) = (
                    reqwest::header::HeaderName::from_bytes(k.as_bytes()),
                    reqwest::header::HeaderValue::from_str(v),
                ) else {
                    return Err(mcp_err(
                        McpErrorKind::ServerFailed,
                        name,
                        format!("MCP server '{name}': header '{k}' is not a valid HTTP header"),
                    ));
                };
                custom.insert(hk, hv);
            }
            let config =
                StreamableHttpClientTransportConfig::with_uri(url.as_str()).custom_headers(custom);
            let transport =
                StreamableHttpClientTransport::with_client(reqwest::Client::new(), config);
            let handshake = tokio::time::timeout(STARTUP_TIMEOUT, ().serve(transport)).await;
            (handshake.map(|r| r.map_err(|e| e.to_string())), None)
        }
    };
    let tail_text = |tail: &Arc<Mutex<VecDeque<String>>>| {
        let lines: Vec<String> = tail
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default();
        if lines.is_empty() {
            String::new()
        } else {
            format!("; its stderr ended with: {}", lines.join(" | "))
        }
    };
    let (service, pid) = match started {
        (Ok(Ok(s)), pid) => (s, pid),
        (Ok(Err(e)), _) => {
            // Give the stderr reader a moment to catch the child's last words.
            tokio::time::sleep(Duration::from_millis(50)).await;
            return Err(mcp_err(
                McpErrorKind::ServerFailed,
                name,
                format!(
                    "MCP server '{name}' failed to start: {e}{} ({})",
                    tail_text(&tail),
                    server.source.describe()
                ),
            ));
        }
        (Err(_), _) => {
            return Err(mcp_err(
                McpErrorKind::Timeout,
                name,
                format!(
                    "MCP server '{name}' did not finish the MCP handshake within {}s{} ({})",
                    STARTUP_TIMEOUT.as_secs(),
                    tail_text(&tail),
                    server.source.describe()
                ),
            ));
        }
    };
    Ok(Connection {
        server: server.clone(),
        peer: service.peer().clone(),
        service: tokio::sync::Mutex::new(Some(service)),
        stderr_tail: tail,
        tools: tokio::sync::OnceCell::new(),
        pid,
    })
}

fn spawn_stderr_reader(
    name: String,
    stderr: tokio::process::ChildStderr,
    tail: Arc<Mutex<VecDeque<String>>>,
) {
    use tokio::io::AsyncBufReadExt;
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::debug!(target: "kosmo::mcp", server = %name, "{line}");
            if let Ok(mut t) = tail.lock() {
                if t.len() == STDERR_TAIL {
                    t.pop_front();
                }
                // A runaway line stays short in an error message.
                t.push_back(line.chars().take(300).collect());
            }
        }
    });
}

/// A server's state, for `mcp.servers()` and `mcp:list`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub name: String,
    pub transport: String,
    pub source: String,
    /// `configured` (not started), `running`, `failed` (start or crash) or `invalid` (config).
    pub status: String,
    /// Tool count, once the tools have been listed.
    pub tools: Option<usize>,
    pub error: Option<String>,
}

type Slot = Arc<tokio::sync::OnceCell<Result<Arc<Connection>, (McpErrorKind, String)>>>;

/// The configured servers of one run, each started on first use.
pub struct Clients {
    locations: Locations,
    config: std::sync::OnceLock<Result<Arc<Config>, String>>,
    slots: Mutex<BTreeMap<String, Slot>>,
}

impl Clients {
    pub fn new(locations: Locations) -> Clients {
        Clients {
            locations,
            config: std::sync::OnceLock::new(),
            slots: Mutex::new(BTreeMap::new()),
        }
    }

    /// The configuration, read once.
    pub fn config(&self) -> Result<Arc<Config>, Error> {
        self.config
            .get_or_init(|| {
                Config::load(&self.locations)
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(Error::config)
    }

    fn slot(&self, name: &str) -> Slot {
        let mut slots = match self.slots.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        slots.entry(name.to_string()).or_default().clone()
    }

    /// The server's configuration, or an unknown-server error naming the configured ones.
    pub fn server(&self, name: &str) -> Result<Server, Error> {
        let cfg = self.config()?;
        if let Some(s) = cfg.get(name) {
            return Ok(s.clone());
        }
        let names = cfg.names();
        let known = if names.is_empty() {
            "no MCP servers are configured (see `kosmo mcp:list`)".to_string()
        } else {
            let close = crate::error::closest(name, names.iter().map(String::as_str));
            match close.first() {
                Some(c) => format!("did you mean '{c}'? configured: {}", names.join(", ")),
                None => format!("configured: {}", names.join(", ")),
            }
        };
        Err(mcp_err(
            McpErrorKind::UnknownServer,
            name,
            format!("no MCP server named '{name}' ({known})"),
        ))
    }

    /// The running connection to a server, starting it on first use. A server that failed to
    /// start fails the same way for the rest of the run (no respawn loop).
    pub async fn connect(&self, name: &str) -> Result<Arc<Connection>, Error> {
        let server = self.server(name)?;
        let slot = self.slot(name);
        let r = slot
            .get_or_init(|| async {
                tracing::debug!(target: "kosmo::mcp", server = %name, "starting");
                connect(&server).await.map(Arc::new).map_err(|e| match e {
                    Error::Mcp { kind, message, .. } => (kind, message),
                    other => (McpErrorKind::ServerFailed, other.to_string()),
                })
            })
            .await;
        match r {
            Ok(c) => Ok(c.clone()),
            Err((kind, message)) => Err(mcp_err(*kind, name, message.clone())),
        }
    }

    /// Every configured server with its state; starts nothing.
    pub fn statuses(&self) -> Result<Vec<Status>, Error> {
        let cfg = self.config()?;
        let slots = match self.slots.lock() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        };
        Ok(cfg
            .servers
            .values()
            .map(|s| {
                let (status, tools, error) =
                    match (&s.transport, slots.get(&s.name).and_then(|x| x.get())) {
                        (Err(why), _) => ("invalid", None, Some(why.clone())),
                        (Ok(_), None) => ("configured", None, None),
                        (Ok(_), Some(Ok(c))) if c.peer.is_transport_closed() => (
                            "failed",
                            c.tool_count(),
                            Some("the server exited".to_string()),
                        ),
                        (Ok(_), Some(Ok(c))) => ("running", c.tool_count(), None),
                        (Ok(_), Some(Err((_, m)))) => ("failed", None, Some(m.clone())),
                    };
                Status {
                    name: s.name.clone(),
                    transport: s
                        .transport
                        .as_ref()
                        .map(|t| t.kind().to_string())
                        .unwrap_or_else(|_| "unknown".into()),
                    source: s.source.describe(),
                    status: status.into(),
                    tools,
                    error,
                }
            })
            .collect())
    }

    /// Process ids of the started child servers (for a last-resort kill on an abrupt exit).
    pub fn pids(&self) -> Vec<u32> {
        let slots = match self.slots.lock() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        };
        slots
            .values()
            .filter_map(|s| s.get())
            .filter_map(|r| r.as_ref().ok())
            .filter_map(|c| c.pid())
            .collect()
    }

    /// Shut every started server down (in parallel, each bounded in time).
    pub async fn shutdown(&self) {
        let slots: Vec<Slot> = match self.slots.lock() {
            Ok(s) => s.values().cloned().collect(),
            Err(p) => p.into_inner().values().cloned().collect(),
        };
        let closing = slots
            .iter()
            .filter_map(|s| s.get())
            .filter_map(|r| r.as_ref().ok())
            .map(|c| c.close());
        futures::future::join_all(closing).await;
    }
}

/// What a tool call gives a caller: the structured content when the tool sent it, else the text
/// (all text blocks joined), else the content blocks. A result with `isError` is an error.
pub fn tool_value(server: &str, tool: &str, result: &Json) -> Result<Json, Error> {
    let content = result.get("content").cloned().unwrap_or(json!([]));
    let structured = result.get("structuredContent").cloned();
    let texts: Option<Vec<&str>> = content.as_array().map(|blocks| {
        blocks
            .iter()
            .filter(|b| b["type"] == "text")
            .filter_map(|b| b["text"].as_str())
            .collect()
    });
    let all_text = content
        .as_array()
        .is_some_and(|b| !b.is_empty() && b.iter().all(|b| b["type"] == "text"));
    if result.get("isError") == Some(&Json::Bool(true)) {
        let text = texts.map(|t| t.join("\n")).unwrap_or_default();
        let message = if text.is_empty() {
            format!("MCP tool {server}.{tool} failed (isError, no text)")
        } else {
            format!("MCP tool {server}.{tool} failed: {text}")
        };
        let mut detail = Map::new();
        detail.insert("content".into(), content);
        if let Some(s) = structured {
            detail.insert("structured_content".into(), s);
        }
        return Err(Error::Mcp {
            kind: McpErrorKind::ToolError,
            server: server.to_string(),
            tool: Some(tool.to_string()),
            message,
            detail: Some(Box::new(Json::Object(detail))),
        });
    }
    if let Some(s) = structured {
        return Ok(s);
    }
    if all_text {
        return Ok(Json::String(texts.unwrap_or_default().join("\n")));
    }
    Ok(content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_values() {
        let r = json!({"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]});
        assert_eq!(tool_value("s", "t", &r).unwrap(), json!("a\nb"));
        let r = json!({"content": [{"type": "text", "text": "{}"}], "structuredContent": {"n": 1}});
        assert_eq!(tool_value("s", "t", &r).unwrap(), json!({"n": 1}));
        let r = json!({"content": [{"type": "image", "data": "AA==", "mimeType": "image/png"}]});
        assert_eq!(tool_value("s", "t", &r).unwrap()[0]["type"], "image");
        let r = json!({"content": [{"type": "text", "text": "boom"}], "isError": true});
        let e = tool_value("s", "t", &r).unwrap_err();
        assert_eq!(e.code(), "mcp_tool_error");
        assert!(e.to_string().contains("boom"));
        let j = e.to_json();
        assert_eq!(j["server"], "s");
        assert_eq!(j["tool"], "t");
        assert_eq!(j["content"][0]["text"], "boom");
    }
}

//! `kosmo mcp:serve`: kosmo's manifest functions as MCP tools, over stdio or streamable HTTP.
//!
//! Each function of each served integration is one tool, named by the function's full name
//! (`<integration>_<function>` unless the manifest says otherwise), with the manifest's input
//! schema, its summary and description, and hints from its class and flags: a read is
//! `readOnlyHint`, idempotent and not destructive; a write is destructive when its method is
//! `DELETE` or `PUT`, idempotent when the manifest says so. A `lua` tool runs a sandboxed script
//! under the same limits, and the docs pages are resources (`kosmo://docs/<page>`).
//!
//! Calls go through [`Session::call`], the path of Lua and `integrations:call` (validation,
//! permissions, retries); a failure is an MCP tool error (`isError`) carrying kosmo's error JSON.
//! There is no terminal to ask on (stdin is the protocol), so a write whose permission is `ask`
//! needs `--force` or `write: allow` in config.yaml, exactly as a headless Lua run.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListResourcesResult,
    ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
    ReadResourceResult, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ErrorData, ServerHandler, ServiceExt};
use serde_json::{Value as Json, json};

use crate::docs::Docs;
use crate::error::{Error, Result};
use crate::lua::{Limits, Outcome};
use crate::manifest::{Class, Method};
use crate::registry::Registry;
use crate::session::{Request as SessionRequest, Session, SessionOptions};

/// What `mcp:serve` was asked for.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Integrations to serve; empty serves all.
    pub integrations: Vec<String>,
    pub account: Option<String>,
    pub read_only: bool,
    pub force: bool,
    pub offline: bool,
    pub manifest_dirs: Vec<PathBuf>,
    pub config_dir: Option<PathBuf>,
    /// Limits of each call (and of each `lua` run).
    pub limits: Limits,
}

/// The tool name of the `lua` tool.
pub const LUA_TOOL: &str = "lua";
const DOCS_URI: &str = "kosmo://docs/";

/// One served function.
#[derive(Debug, Clone)]
struct Served {
    integration: String,
    function: String,
}

/// Runs the `lua` tool's scripts: one Lua runtime on its own thread for the server's life (the
/// runtime's futures stay on that thread), one script at a time, each under the limits.
pub struct LuaWorker {
    jobs: std::sync::mpsc::Sender<(String, tokio::sync::oneshot::Sender<Outcome>)>,
}

impl LuaWorker {
    /// Start the worker (its simulators start on its first offline call).
    pub fn start(opts: &ServeOptions) -> Result<LuaWorker> {
        let options = crate::lua::Options {
            mode: crate::lua::Mode::Integrations,
            limits: opts.limits.clone(),
            force: opts.force,
            read_only: opts.read_only,
            dry_run: false,
            offline: opts.offline,
            account: opts.account.clone(),
            capture_output: true,
            manifest_dirs: opts.manifest_dirs.clone(),
            config_dir: opts.config_dir.clone(),
            // stdin carries the protocol: never prompt.
            allow_prompt: false,
            allow_paths: Vec::new(),
            ..Default::default()
        };
        let (tx, rx) =
            std::sync::mpsc::channel::<(String, tokio::sync::oneshot::Sender<Outcome>)>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<()>>();
        std::thread::Builder::new()
            .name("kosmo-mcp-calls".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(Error::config(format!(
                            "cannot start the call worker: {e}"
                        ))));
                        return;
                    }
                };
                let lua = match crate::lua::Runtime::new(options) {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                while let Ok((code, reply)) = rx.recv() {
                    let outcome = rt.block_on(lua.run(&code, "=mcp"));
                    let _ = reply.send(outcome);
                }
                rt.block_on(lua.shared().mcp.shutdown());
                lua.shared().limits.finish();
            })
            .map_err(|e| Error::config(format!("cannot start the call worker: {e}")))?;
        ready_rx
            .recv()
            .map_err(|_| Error::config("the call worker stopped"))??;
        Ok(LuaWorker { jobs: tx })
    }

    /// Run a chunk; the outcome is the `--json` envelope's content.
    pub async fn run(&self, code: String) -> Outcome {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.jobs.send((code, tx)).is_err() {
            return Outcome::failed(
                Error::config("the call worker stopped").to_json(),
                Default::default(),
            );
        }
        match rx.await {
            Ok(o) => o,
            Err(_) => Outcome::failed(
                Error::config("the call worker stopped").to_json(),
                Default::default(),
            ),
        }
    }
}

/// The MCP server.
#[derive(Clone)]
pub struct KosmoServer {
    tools: Arc<Vec<Tool>>,
    served: Arc<BTreeMap<String, Served>>,
    docs: Arc<Docs>,
    /// The call path of every tool call: validation, permissions, retries, records.
    session: Arc<Session>,
    lua: Arc<LuaWorker>,
    /// Wall-clock limit of one call.
    timeout: std::time::Duration,
}

/// The hints of a function: `(readOnly, destructive, idempotent)`.
pub fn hints(class: Class, method: Option<Method>, idempotent: bool) -> (bool, bool, bool) {
    match class {
        Class::Read => (true, false, true),
        Class::Write => (
            false,
            matches!(method, Some(Method::Delete | Method::Put)),
            idempotent,
        ),
    }
}

/// The tools of the served integrations (and `lua`), with what each name calls.
fn build_tools(
    registry: &Registry,
    only: &[String],
) -> Result<(Vec<Tool>, BTreeMap<String, Served>)> {
    for name in only {
        registry.require(name)?;
    }
    let mut tools = Vec::new();
    let mut served = BTreeMap::new();
    for integ in registry.iter() {
        let m = &integ.manifest;
        if !only.is_empty() && !only.contains(&m.name) {
            continue;
        }
        for (name, f) in &m.functions {
            let tool_name = m.full_name(name, f);
            let schema = integ.input_schema(name)?;
            let (read_only, destructive, idempotent) = hints(f.class, f.method, f.idempotent);
            let mut description = f.summary.trim().to_string();
            if !f.description.trim().is_empty() {
                description.push_str("\n\n");
                description.push_str(f.description.trim());
            }
            if let Some(why) = &f.unsupported {
                description.push_str(&format!("\n\nNot supported: {why}"));
            }
            let tool = json!({
                "name": tool_name,
                "title": format!("{} {}", m.label, name),
                "description": description,
                "inputSchema": schema,
                "annotations": {
                    "title": format!("{}.{name}", m.name),
                    "readOnlyHint": read_only,
                    "destructiveHint": destructive,
                    "idempotentHint": idempotent,
                    "openWorldHint": true,
                },
            });
            let tool: Tool = serde_json::from_value(tool).map_err(|e| {
                Error::config(format!("{}.{name}: not a valid MCP tool: {e}", m.name))
            })?;
            if served.contains_key(&tool_name) || tool_name == LUA_TOOL {
                return Err(Error::config(format!(
                    "two functions would be served as the same MCP tool '{tool_name}'"
                )));
            }
            served.insert(
                tool_name,
                Served {
                    integration: m.name.clone(),
                    function: name.clone(),
                },
            );
            tools.push(tool);
        }
    }
    let lua: Tool = serde_json::from_value(json!({
        "name": LUA_TOOL,
        "title": "Run kosmo Lua",
        "description": "Run a sandboxed Lua script against kosmo's integrations (app.integrations.<name>.<function>{...}, docs.read(page), json, rows, parallel) under kosmo's limits and permissions. Returns kosmo's JSON envelope: success, result (the script's return values), output (what it printed), error, integration_calls.",
        "inputSchema": {
            "type": "object",
            "properties": {"code": {"type": "string", "description": "The Lua chunk to run."}},
            "required": ["code"],
            "additionalProperties": false,
        },
        "annotations": {"readOnlyHint": false, "destructiveHint": true, "idempotentHint": false, "openWorldHint": true},
    }))
    .map_err(|e| Error::config(e.to_string()))?;
    tools.push(lua);
    Ok((tools, served))
}

impl KosmoServer {
    pub fn new(opts: &ServeOptions) -> Result<KosmoServer> {
        let session = Session::new(SessionOptions {
            force: opts.force,
            read_only: opts.read_only,
            dry_run: false,
            offline: opts.offline,
            account: opts.account.clone(),
            manifest_dirs: opts.manifest_dirs.clone(),
            config_dir: opts.config_dir.clone(),
            ..Default::default()
        });
        // No hooks: nothing counts against a script's budget, and with no prompt an `ask`
        // permission is refused with the way to allow it (stdin is the protocol).
        let registry = session.registry()?;
        let (tools, served) = build_tools(&registry, &opts.integrations)?;
        let docs = session.docs()?;
        Ok(KosmoServer {
            tools: Arc::new(tools),
            served: Arc::new(served),
            docs: Arc::new(docs),
            session: Arc::new(session),
            lua: Arc::new(LuaWorker::start(opts)?),
            timeout: std::time::Duration::try_from_secs_f64(opts.limits.timeout)
                .unwrap_or(std::time::Duration::from_secs(600)),
        })
    }

    /// One function through the session, under the call timeout.
    async fn call(&self, s: &Served, args: Json) -> std::result::Result<Json, Json> {
        let req = SessionRequest::new(&s.integration, &s.function, args);
        let out = match tokio::time::timeout(self.timeout, self.session.call(req)).await {
            Ok(Ok(out)) => Ok(out.value),
            Ok(Err(e)) => Err(e.to_json()),
            Err(_) => Err(Error::Limit {
                limit: "timeout".into(),
                message: format!(
                    "timeout: the call ran for more than {}s (raise it with mcp:serve --timeout)",
                    self.timeout.as_secs_f64()
                ),
            }
            .to_json()),
        };
        // The server runs for long: its record of calls is not kept.
        if !self.session.log().has_in_flight() {
            self.session.log().clear();
        }
        out
    }

    /// The names of the served tools.
    pub fn tool_names(&self) -> Vec<String> {
        self.tools.iter().map(|t| t.name.to_string()).collect()
    }
}

/// A `lua` run as a tool result: the envelope (structured), `isError` when the run failed.
fn envelope_result(outcome: &Outcome) -> CallToolResult {
    let j = outcome.to_json();
    let text = serde_json::to_string_pretty(&j).unwrap_or_default();
    let mut r = CallToolResult::structured(j);
    r.content = vec![ContentBlock::text(text)];
    if !outcome.success {
        r.is_error = Some(true);
    }
    r
}

/// A function's answer as a tool result: structured when it is an object, else text; an error
/// as a tool error (`message [code]`, and kosmo's error object as `{error}`).
fn call_result(result: std::result::Result<Json, Json>) -> CallToolResult {
    match result {
        Ok(value) if value.is_object() => CallToolResult::structured(value),
        Ok(value) => {
            let text = match &value {
                Json::String(s) => s.clone(),
                other => serde_json::to_string_pretty(other).unwrap_or_default(),
            };
            CallToolResult::success(vec![ContentBlock::text(text)])
        }
        Err(err) => {
            let code = err["code"].as_str().unwrap_or("error");
            let message = err["message"].as_str().unwrap_or("the call failed");
            let mut r =
                CallToolResult::error(vec![ContentBlock::text(format!("{message} [{code}]"))]);
            r.structured_content = Some(json!({ "error": err }));
            r
        }
    }
}

impl ServerHandler for KosmoServer {
    fn get_info(&self) -> ServerConfig {
        let mut info = ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        );
        info.server_info.name = "kosmo".into();
        info.server_info.version = env!("CARGO_PKG_VERSION").into();
        info.instructions = Some(
            "kosmo's API integrations as tools: each tool is one manifest function (arguments per its input schema). \
             The `lua` tool runs a script that can combine calls. Docs are resources under kosmo://docs/."
                .into(),
        );
        info
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> std::result::Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools.as_ref().clone()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools.iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> std::result::Result<CallToolResponse, ErrorData> {
        let args = Json::Object(request.arguments.clone().unwrap_or_default());
        if request.name == LUA_TOOL {
            let Some(code) = args.get("code").and_then(Json::as_str) else {
                return Err(ErrorData::invalid_params("the lua tool needs {code}", None));
            };
            let outcome = self.lua.run(code.to_string()).await;
            return Ok(envelope_result(&outcome).into());
        }
        let Some(s) = self.served.get(request.name.as_ref()) else {
            return Err(ErrorData::invalid_params(
                format!("unknown tool '{}'", request.name),
                None,
            ));
        };
        Ok(call_result(self.call(s, args).await).into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> std::result::Result<ListResourcesResult, ErrorData> {
        let resources: Vec<Json> = self
            .docs
            .pages()
            .into_iter()
            .map(|p| {
                json!({
                    "uri": format!("{DOCS_URI}{}", p.page),
                    "name": p.page,
                    "title": p.title,
                    "description": p.summary,
                    "mimeType": "text/markdown",
                })
            })
            .collect();
        serde_json::from_value(json!({ "resources": resources }))
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> std::result::Result<ReadResourceResponse, ErrorData> {
        let Some(page) = request.uri.strip_prefix(DOCS_URI) else {
            return Err(ErrorData::resource_not_found(
                format!("no resource {} (docs are under {DOCS_URI})", request.uri),
                None,
            ));
        };
        let text = self
            .docs
            .read(page)
            .map_err(|e| ErrorData::resource_not_found(e.to_string(), None))?;
        let r: ReadResourceResult = serde_json::from_value(json!({"contents": [
            {"uri": request.uri, "mimeType": "text/markdown", "text": text}
        ]}))
        .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        Ok(r.into())
    }
}

/// Serve over stdio until the client goes away.
pub async fn serve_stdio(server: KosmoServer) -> Result<()> {
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| Error::config(format!("MCP handshake failed: {e}")))?;
    let _ = running.waiting().await;
    Ok(())
}

/// Serve streamable HTTP at `addr` (path `/mcp`) until interrupted; `on_bound` gets the address
/// actually bound (port 0 picks one).
pub async fn serve_http(
    server: KosmoServer,
    addr: &str,
    on_bound: impl FnOnce(std::net::SocketAddr),
) -> Result<()> {
    use rmcp::transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    };
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        LocalSessionManager::default().into(),
        StreamableHttpServerConfig::default(),
    );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::io(addr, e))?;
    let bound = listener.local_addr().map_err(|e| Error::io(addr, e))?;
    on_bound(bound);
    let app = axum::Router::new().nest_service("/mcp", service);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| Error::io(addr, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::RegistryOptions;

    #[test]
    fn hints_follow_class_and_flags() {
        assert_eq!(
            hints(Class::Read, Some(Method::Get), false),
            (true, false, true)
        );
        assert_eq!(
            hints(Class::Write, Some(Method::Post), false),
            (false, false, false)
        );
        assert_eq!(
            hints(Class::Write, Some(Method::Delete), true),
            (false, true, true)
        );
    }

    #[test]
    fn builtin_functions_become_tools() {
        let reg = Registry::load(&RegistryOptions {
            dirs: Vec::new(),
            ignore_env: true,
        })
        .unwrap();
        let (tools, served) = build_tools(&reg, &[]).unwrap();
        let total: usize = reg.iter().map(|i| i.manifest.functions.len()).sum();
        assert_eq!(tools.len(), total + 1);
        assert_eq!(served.len(), total);
        assert!(tools.iter().any(|t| t.name == LUA_TOOL));
        assert!(build_tools(&reg, &["no-such".into()]).is_err());
    }
}

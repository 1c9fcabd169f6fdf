//! `mcp.*` and `app.mcp.*`: a thin binding of [`crate::mcp::Clients`] (values and errors are
//! converted here; Lua knows nothing about JSON-RPC).
//!
//! - `mcp.servers()` → `{name, transport, source, status, tools?, error?}` per configured server
//!   (starts nothing);
//! - `mcp.tools(server)` → `{name, title?, description, input_schema, output_schema?, annotations}`;
//! - `mcp.call(server, tool, args)` (or `mcp.call("server.tool", args)`) and
//!   `app.mcp.<server>.<tool>(args)` (`app.mcp.s["a-b"]` for other names) → the structured
//!   content when the tool gives it, else its text, else its content blocks;
//! - `mcp.schema(server, tool)` → the tool's input schema;
//! - `mcp.resources(server)`, `mcp.read_resource(server, uri)`, `mcp.prompts(server)`,
//!   `mcp.get_prompt(server, name, args)`.
//!
//! A tool call is checked against the tool's input schema, counted against `--max-calls`,
//! permitted like an integration call (integration `mcp.<server>`; a tool annotated
//! `readOnlyHint: true` is a read, any other a write) and recorded in `integration_calls` with
//! path `mcp.<server>.<tool>`. Failures raise error tables (`code = "mcp_tool_error"`,
//! `"mcp_timeout"`, ...), never a silent nil.

use std::sync::Arc;
use std::time::Instant;

use mlua::{Lua, MetaMethod, MultiValue, UserData, UserDataMethods, Value};
use serde_json::{Map, Value as Json, json};

use super::json::{self as lj, Mode as JsonMode, Nulls};
use super::{HostError, HostResult, Shared, error_table, lift, lift_async, shared_of};
use crate::error::{Error, McpErrorKind};
use crate::manifest::Class;
use crate::mcp::Connection;
use crate::session::{CallLog, CallMeta, CallRecord};

fn raise(lua: &Lua, e: &Error) -> HostError {
    // Naming a server that is not configured is a mistake in the script, like a wrong argument:
    // a message (with the configured names), as `mcp.*` always raised for it.
    if let Error::Mcp {
        kind: McpErrorKind::UnknownServer,
        message,
        ..
    } = e
    {
        return HostError::msg(message.clone());
    }
    match error_table(lua, &e.to_json(), None, None) {
        Ok(t) => HostError::Value(Value::Table(t)),
        Err(e) => HostError::Lua(e),
    }
}

fn str_at(args: &MultiValue, i: usize) -> Option<String> {
    match args.get(i) {
        Some(Value::String(s)) => Some(s.to_string_lossy()),
        _ => None,
    }
}

fn server_arg(args: &MultiValue, func: &str) -> HostResult<String> {
    str_at(args, 0).ok_or_else(|| {
        HostError::msg(format!(
            "mcp.{func}: expected a server name, got {}",
            args.front().map(|v| v.type_name()).unwrap_or("nil")
        ))
    })
}

/// `(server, tool, index of the arguments)` from `("server", "tool", args)` or
/// `("server.tool", args)`.
fn tool_args(args: &MultiValue, func: &str) -> HostResult<(String, String, usize)> {
    let first = server_arg(args, func)?;
    if let Some(tool) = str_at(args, 1) {
        return Ok((first, tool, 2));
    }
    match first.split_once('.') {
        Some((s, t)) => Ok((s.to_string(), t.to_string(), 1)),
        None => Err(HostError::msg(format!(
            "mcp.{func}: expected (server, tool) or 'server.tool', got '{first}'"
        ))),
    }
}

fn to_lua(lua: &Lua, j: &Json) -> HostResult<Value> {
    Ok(lj::from_json(lua, j, Nulls::DropInObjects)?)
}

async fn connect(lua: &Lua, shared: &Shared, server: &str) -> HostResult<Arc<Connection>> {
    if let Some(e) = shared.limits.lua_error() {
        return Err(HostError::Lua(e));
    }
    let fut = shared.mcp.connect(server);
    shared.limits.host(fut).await.map_err(|e| raise(lua, &e))
}

/// Requests are bounded by the server's `timeout`; the run's `--timeout` stops the whole run
/// (reported as the limit, the call recorded as cut off), so it is not a request deadline.
fn deadline(_shared: &Shared) -> Option<Instant> {
    None
}

/// A tool as scripts see it.
fn tool_view(t: &Json) -> Json {
    let mut m = Map::new();
    m.insert("name".into(), t["name"].clone());
    for (from, to) in [
        ("title", "title"),
        ("description", "description"),
        ("inputSchema", "input_schema"),
        ("outputSchema", "output_schema"),
        ("annotations", "annotations"),
    ] {
        if let Some(v) = t.get(from).filter(|v| !v.is_null()) {
            m.insert(to.into(), v.clone());
        }
    }
    m.entry("annotations").or_insert(json!({}));
    m.entry("description").or_insert(json!(""));
    Json::Object(m)
}

/// Read (`readOnlyHint: true`) or write (anything else).
pub fn class_of(tool: &Json) -> Class {
    if tool["annotations"]["readOnlyHint"] == Json::Bool(true) {
        Class::Read
    } else {
        Class::Write
    }
}

/// Lua arguments as a JSON object; `{}` for a property declared as an array becomes `[]`.
fn args_object(lua: &Lua, v: Option<&Value>, schema: &Json) -> Result<Map<String, Json>, String> {
    let j = match v {
        None | Some(Value::Nil) => Json::Object(Map::new()),
        Some(v @ Value::Table(_)) => lj::to_json(lua, v, JsonMode::Strict)?,
        Some(other) => {
            return Err(format!(
                "arguments must be a table of named values, got a {}",
                other.type_name()
            ));
        }
    };
    let mut obj = match j {
        Json::Object(m) => m,
        // An empty Lua table may encode as an empty array.
        Json::Array(a) if a.is_empty() => Map::new(),
        _ => return Err("arguments must be a table of named values, not a list".into()),
    };
    if let Some(props) = schema.get("properties").and_then(Json::as_object) {
        for (k, p) in props {
            if p.get("type").and_then(Json::as_str) == Some("array")
                && let Some(v) = obj.get_mut(k)
                && v.as_object().is_some_and(Map::is_empty)
            {
                *v = json!([]);
            }
        }
    }
    Ok(obj)
}

/// Every problem of `args` against the tool's input schema.
fn validate(schema: &Json, args: &Map<String, Json>) -> Vec<String> {
    let Ok(v) = jsonschema::validator_for(schema) else {
        // A server's broken schema is its problem: the server validates again.
        return Vec::new();
    };
    let value = Json::Object(args.clone());
    v.iter_errors(&value)
        .map(|e| {
            let at = e.instance_path().to_string();
            if at.is_empty() {
                e.to_string()
            } else {
                format!("{at}: {e}")
            }
        })
        .collect()
}

/// Records one tool call in the session's log (the envelope's `integration_calls`). A call in
/// flight when the run stops stays registered and is flushed with what stopped the run.
struct Record<'a> {
    log: &'a CallLog,
    meta: CallMeta,
    id: Option<u64>,
}

impl<'a> Record<'a> {
    fn new(shared: &'a Shared, server: &str, tool: &str) -> Record<'a> {
        Record {
            log: shared.session.log(),
            meta: CallMeta {
                path: format!("mcp.{server}.{tool}"),
                function: tool.to_string(),
                account: "default".to_string(),
                class: None,
            },
            id: None,
        }
    }

    /// The request is being sent.
    fn begin(&mut self) {
        self.id = Some(self.log.begin(self.meta.clone()));
    }

    fn done(self, error: Option<Json>) {
        match self.id {
            Some(id) => {
                self.log.finish(id, None, None, error);
            }
            None => self.log.record(CallRecord {
                id: None,
                meta: self.meta,
                duration_ms: 0.0,
                http_status: None,
                request_id: None,
                error,
            }),
        }
    }
}

/// One tool call, from Lua values to a Lua value.
async fn call_tool(
    lua: &Lua,
    shared: &Arc<Shared>,
    server: &str,
    tool: &str,
    args: Option<&Value>,
) -> HostResult<Value> {
    if let Some(e) = shared.limits.lua_error() {
        return Err(HostError::Lua(e));
    }
    let mut rec = Record::new(shared, server, tool);
    let fail = |rec: Record<'_>, e: Error| -> HostError {
        rec.done(Some(e.to_json()));
        raise(lua, &e)
    };
    let conn = match shared.limits.host(shared.mcp.connect(server)).await {
        Ok(c) => c,
        Err(e) => return Err(fail(rec, e)),
    };
    let desc = match shared.limits.host(conn.tool(tool, deadline(shared))).await {
        Ok(d) => d,
        Err(e) => return Err(fail(rec, e)),
    };
    let class = class_of(&desc);
    rec.meta.class = Some(class);
    let schema = desc.get("inputSchema").cloned().unwrap_or(json!({}));
    let obj = match args_object(lua, args, &schema) {
        Ok(o) => o,
        Err(m) => {
            let e = Error::Validation {
                function: format!("mcp.{server}.{tool}"),
                errors: vec![m],
            };
            return Err(fail(rec, e));
        }
    };
    let problems = validate(&schema, &obj);
    if !problems.is_empty() {
        let e = Error::Validation {
            function: format!("mcp.{server}.{tool}"),
            errors: problems,
        };
        return Err(fail(rec, e));
    }
    if let Err(e) = shared.limits.count_call() {
        rec.done(Some(e.to_json()));
        return Err(HostError::Lua(
            shared
                .limits
                .lua_error()
                .unwrap_or_else(|| mlua::Error::external(e)),
        ));
    }
    let integration = format!("mcp.{server}");
    let req = crate::permissions::Request {
        integration: &integration,
        account: "default",
        function: tool,
        class,
    };
    if let Err(e) = shared.session.permit(req) {
        return Err(fail(rec, e));
    }
    if shared.options.dry_run {
        let plan =
            json!({"dry_run": true, "mcp": {"server": server, "tool": tool, "arguments": obj}});
        rec.done(None);
        return to_lua(lua, &plan);
    }
    rec.begin();
    let result = shared
        .limits
        .host(conn.call_tool(tool, obj, deadline(shared)))
        .await;
    if let Some(e) = shared.limits.lua_error() {
        rec.done(shared.limits.error_json());
        return Err(HostError::Lua(e));
    }
    match result.and_then(|r| crate::mcp::tool_value(server, tool, &r)) {
        Ok(v) => {
            rec.done(None);
            to_lua(lua, &v)
        }
        Err(e) => Err(fail(rec, e)),
    }
}

/// `mcp.tools(server)`; without a server, the tools of every configured server (each with its
/// `server`), which starts them all.
async fn tools(lua: Lua, shared: Arc<Shared>, args: MultiValue) -> HostResult<Value> {
    let servers = match args.front() {
        None | Some(Value::Nil) => shared.mcp.config().map_err(|e| raise(&lua, &e))?.names(),
        _ => vec![server_arg(&args, "tools")?],
    };
    let mut view = Vec::new();
    for server in &servers {
        let conn = connect(&lua, &shared, server).await?;
        let list = shared
            .limits
            .host(conn.tools(deadline(&shared)))
            .await
            .map_err(|e| raise(&lua, &e))?;
        for t in list {
            let mut v = tool_view(t);
            if servers.len() > 1 || args.front().is_none_or(Value::is_nil) {
                v["server"] = json!(server);
            }
            view.push(v);
        }
    }
    list_of(&lua, &view)
}

async fn schema(lua: Lua, shared: Arc<Shared>, args: MultiValue) -> HostResult<Value> {
    let (server, tool, _) = tool_args(&args, "schema")?;
    let conn = connect(&lua, &shared, &server).await?;
    let desc = shared
        .limits
        .host(conn.tool(&tool, deadline(&shared)))
        .await
        .map_err(|e| raise(&lua, &e))?;
    to_lua(&lua, desc.get("inputSchema").unwrap_or(&json!({})))
}

async fn call(lua: Lua, shared: Arc<Shared>, args: MultiValue) -> HostResult<Value> {
    let (server, tool, at) = tool_args(&args, "call")?;
    call_tool(&lua, &shared, &server, &tool, args.get(at)).await
}

fn list_of(lua: &Lua, items: &[Json]) -> HostResult<Value> {
    let t = lj::empty_array(lua)?;
    for (i, v) in items.iter().enumerate() {
        t.raw_set(i + 1, to_lua(lua, v)?)?;
    }
    Ok(Value::Table(t))
}

async fn resources(lua: Lua, shared: Arc<Shared>, args: MultiValue) -> HostResult<Value> {
    let server = server_arg(&args, "resources")?;
    let conn = connect(&lua, &shared, &server).await?;
    let list = shared
        .limits
        .host(conn.resources(deadline(&shared)))
        .await
        .map_err(|e| raise(&lua, &e))?;
    list_of(&lua, &list)
}

async fn read_resource(lua: Lua, shared: Arc<Shared>, args: MultiValue) -> HostResult<Value> {
    let server = server_arg(&args, "read_resource")?;
    let uri = str_at(&args, 1)
        .ok_or_else(|| HostError::msg("mcp.read_resource: expected (server, uri)"))?;
    let conn = connect(&lua, &shared, &server).await?;
    let r = shared
        .limits
        .host(conn.read_resource(&uri, deadline(&shared)))
        .await
        .map_err(|e| raise(&lua, &e))?;
    to_lua(&lua, r.get("contents").unwrap_or(&json!([])))
}

async fn prompts(lua: Lua, shared: Arc<Shared>, args: MultiValue) -> HostResult<Value> {
    let server = server_arg(&args, "prompts")?;
    let conn = connect(&lua, &shared, &server).await?;
    let list = shared
        .limits
        .host(conn.prompts(deadline(&shared)))
        .await
        .map_err(|e| raise(&lua, &e))?;
    list_of(&lua, &list)
}

async fn get_prompt(lua: Lua, shared: Arc<Shared>, args: MultiValue) -> HostResult<Value> {
    let server = server_arg(&args, "get_prompt")?;
    let name = str_at(&args, 1)
        .ok_or_else(|| HostError::msg("mcp.get_prompt: expected (server, name[, args])"))?;
    let obj = args_object(&lua, args.get(2), &json!({}))
        .map_err(|m| HostError::msg(format!("mcp.get_prompt: {m}")))?;
    // Prompt arguments are strings on the wire.
    let obj: Map<String, Json> = obj
        .into_iter()
        .map(|(k, v)| match v {
            Json::String(_) => (k, v),
            other => (k, Json::String(other.to_string())),
        })
        .collect();
    let conn = connect(&lua, &shared, &server).await?;
    let r = shared
        .limits
        .host(conn.get_prompt(&name, obj, deadline(&shared)))
        .await
        .map_err(|e| raise(&lua, &e))?;
    to_lua(&lua, &r)
}

fn servers(lua: &Lua, shared: &Shared) -> HostResult<Value> {
    let list = shared.mcp.statuses().map_err(|e| raise(lua, &e))?;
    let j = serde_json::to_value(&list).map_err(|e| HostError::msg(e.to_string()))?;
    let items: Vec<Json> = j.as_array().cloned().unwrap_or_default();
    list_of(lua, &items)
}

const CALL_TOOL: &str = "kosmo.mcp_call_tool";

pub fn install(lua: &Lua, shared: &Arc<Shared>) -> mlua::Result<()> {
    let m = lua.create_table()?;
    let sh = shared.clone();
    m.raw_set("servers", lift(lua, move |lua, _args| servers(lua, &sh))?)?;
    macro_rules! async_fn {
        ($name:literal, $f:ident) => {{
            let sh = shared.clone();
            m.raw_set(
                $name,
                lift_async(lua, move |lua, args| $f(lua, sh.clone(), args))?,
            )?;
        }};
    }
    async_fn!("tools", tools);
    async_fn!("schema", schema);
    async_fn!("call", call);
    async_fn!("resources", resources);
    async_fn!("read_resource", read_resource);
    async_fn!("prompts", prompts);
    async_fn!("get_prompt", get_prompt);
    lua.globals().raw_set("mcp", m)?;
    // `app.mcp.<server>.<tool>` functions call this with (server, nil, tool, path, args...);
    // a method-style call (`s:tool{}`) puts the namespace before the arguments.
    let sh = shared.clone();
    let f = lift_async(lua, move |lua, args: MultiValue| {
        let sh = sh.clone();
        async move {
            let server = str_at(&args, 0).unwrap_or_default();
            let tool = str_at(&args, 2).unwrap_or_default();
            let mut rest = args.iter().skip(4);
            let mut first = rest.next();
            if matches!(first, Some(Value::UserData(ud)) if ud.is::<McpServerNs>()) {
                first = rest.next();
            }
            call_tool(&lua, &sh, &server, &tool, first).await
        }
    })?;
    lua.set_named_registry_value(CALL_TOOL, f)?;
    Ok(())
}

/// `app.mcp`: configured servers by name; `nil` for a name that is not configured.
pub struct McpNs;

/// `app.mcp.<server>`: its tools by name, as functions (the server starts on the first call).
pub struct McpServerNs {
    name: String,
}

impl UserData for McpNs {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::Index, |lua, _, key: Value| {
            let Value::String(s) = key else {
                return Ok(Value::Nil);
            };
            let name = s.to_string_lossy();
            let shared = shared_of(lua)?;
            Ok(match shared.mcp.server(&name) {
                Ok(_) => Value::UserData(lua.create_userdata(McpServerNs { name })?),
                Err(_) => Value::Nil,
            })
        });
        methods.add_meta_method(
            MetaMethod::NewIndex,
            |_, _, _: MultiValue| -> mlua::Result<()> {
                Err(mlua::Error::runtime("app.mcp is read-only"))
            },
        );
        methods.add_meta_method(MetaMethod::ToString, |_, _, ()| Ok("app.mcp"));
    }
}

impl UserData for McpServerNs {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::Index, |lua, this, key: Value| {
            let Value::String(s) = key else {
                return Ok(Value::Nil);
            };
            let tool = s.to_string_lossy();
            let call: mlua::Function = lua.named_registry_value(CALL_TOOL)?;
            let make: mlua::Function = lua.named_registry_value(super::sandbox::MAKE_FN)?;
            let path = format!("mcp.{}.{tool}", this.name);
            let f: mlua::Function =
                make.call((call, this.name.as_str(), Value::Nil, tool, path))?;
            Ok(Value::Function(f))
        });
        methods.add_meta_method(
            MetaMethod::NewIndex,
            |_, _, _: MultiValue| -> mlua::Result<()> {
                Err(mlua::Error::runtime("an MCP server namespace is read-only"))
            },
        );
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(format!("app.mcp.{}", this.name))
        });
    }
}

/// `app` with only `app.mcp` (for `mcp:lua`).
pub struct McpApp;

impl UserData for McpApp {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::Index, |lua, _, key: Value| {
            Ok(match key {
                Value::String(s) if s.as_bytes().as_ref() == b"mcp" => {
                    Value::UserData(lua.create_userdata(McpNs)?)
                }
                _ => Value::Nil,
            })
        });
        methods.add_meta_method(
            MetaMethod::NewIndex,
            |_, _, _: MultiValue| -> mlua::Result<()> {
                Err(mlua::Error::runtime("app is read-only"))
            },
        );
        methods.add_meta_method(MetaMethod::ToString, |_, _, ()| Ok("app"));
    }
}

pub fn install_app(lua: &Lua) -> mlua::Result<()> {
    lua.globals().raw_set("app", lua.create_userdata(McpApp)?)
}

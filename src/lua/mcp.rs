//! `mcp.*` and `app.mcp.*`, backed by [`crate::mcp`] (no servers until the MCP issue lands).
//!
//! - `mcp.servers()` → list of `{name, command}` (empty: encodes as `[]`)
//! - `mcp.tools([server])` → list of tools (empty); an unknown server is an error
//! - `mcp.call(name, args)`, `mcp.schema(name)` → error `no MCP server named '<server>'`
//! - `app.mcp.<server>` → nil for an unknown server, so scripts can test for one

use mlua::{Lua, MetaMethod, MultiValue, UserData, UserDataMethods, Value};

use super::{HostError, json, lift};

fn no_server(name: &str) -> HostError {
    let servers: Vec<String> = crate::mcp::servers().into_iter().map(|s| s.name).collect();
    let known = if servers.is_empty() {
        "no MCP servers are configured".to_string()
    } else {
        format!("configured: {}", servers.join(", "))
    };
    HostError::msg(format!("no MCP server named '{name}' ({known})"))
}

fn name_arg(args: &MultiValue, func: &str) -> Result<String, HostError> {
    match args.front() {
        Some(Value::String(s)) => Ok(s.to_string_lossy()),
        other => Err(HostError::msg(format!(
            "mcp.{func}: expected a tool name like 'server.tool', got {}",
            other.map(|v| v.type_name()).unwrap_or("nil")
        ))),
    }
}

fn server_of(tool: &str) -> &str {
    tool.split_once('.').map(|(s, _)| s).unwrap_or(tool)
}

pub fn install(lua: &Lua) -> mlua::Result<()> {
    let m = lua.create_table()?;
    m.raw_set(
        "servers",
        lift(lua, |lua, _args: MultiValue| {
            let list = json::empty_array(lua)?;
            for (i, s) in crate::mcp::servers().into_iter().enumerate() {
                let t = lua.create_table()?;
                t.raw_set("name", s.name)?;
                t.raw_set("command", s.command)?;
                list.raw_set(i + 1, t)?;
            }
            Ok(list)
        })?,
    )?;
    m.raw_set(
        "tools",
        lift(lua, |lua, args: MultiValue| {
            if let Some(Value::String(s)) = args.front() {
                let name = s.to_string_lossy();
                if !crate::mcp::servers().iter().any(|x| x.name == name) {
                    return Err(no_server(&name));
                }
            }
            Ok(json::empty_array(lua)?)
        })?,
    )?;
    m.raw_set(
        "call",
        lift(lua, |_, args: MultiValue| -> Result<(), HostError> {
            let name = name_arg(&args, "call")?;
            Err(no_server(server_of(&name)))
        })?,
    )?;
    m.raw_set(
        "schema",
        lift(lua, |_, args: MultiValue| -> Result<(), HostError> {
            let name = name_arg(&args, "schema")?;
            Err(no_server(server_of(&name)))
        })?,
    )?;
    lua.globals().raw_set("mcp", m)?;
    Ok(())
}

/// `app.mcp`: servers by name (none yet).
pub struct McpNs;

impl UserData for McpNs {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::Index, |_, _, _key: Value| Ok(Value::Nil));
        methods.add_meta_method(
            MetaMethod::NewIndex,
            |_, _, _: MultiValue| -> mlua::Result<()> {
                Err(mlua::Error::runtime("app.mcp is read-only"))
            },
        );
        methods.add_meta_method(MetaMethod::ToString, |_, _, ()| Ok("app.mcp"));
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

//! `docs.read(page)`, `docs.list([namespace])`, `docs.search(query[, limit])` and the agent
//! tool name `lua_read_doc(page)`, all answered by [`crate::docs::Docs`] (pages such as
//! `<name>`, `<name>.<function>`, `integrations.<name>`, `app.`-prefixed names). `mcp.<server>`
//! and `mcp.<server>.<tool>` render a configured MCP server's tools (starting the server).

use std::sync::Arc;

use mlua::{Lua, MultiValue, Value};

use super::{HostError, HostResult, Shared, error_table, json, lift, lift_async};

fn docs_of(lua: &Lua, shared: &Shared) -> HostResult<crate::docs::Docs> {
    shared.session.docs().map_err(
        |e| match error_table(lua, &e.to_json(), Some("docs"), None) {
            Ok(t) => HostError::Value(Value::Table(t)),
            Err(e) => HostError::Lua(e),
        },
    )
}

fn page_arg(args: &MultiValue, func: &str) -> HostResult<String> {
    match args.front() {
        Some(Value::String(s)) => Ok(s.to_string_lossy()),
        other => Err(HostError::msg(format!(
            "{func}: expected a page name, got {}",
            other.map(|v| v.type_name()).unwrap_or("nil")
        ))),
    }
}

fn read(lua: &Lua, shared: &Shared, args: MultiValue, func: &str) -> HostResult<String> {
    let page = page_arg(&args, func)?;
    let docs = docs_of(lua, shared)?;
    docs.read(&page)
        .map_err(|e| match error_table(lua, &e.to_json(), Some(func), None) {
            Ok(t) => HostError::Value(Value::Table(t)),
            Err(e) => HostError::Lua(e),
        })
}

/// `mcp.<server>` or `mcp.<server>.<tool>` (also under `app.`): the page of a configured MCP
/// server, rendered from its tools (which starts it).
async fn read_mcp(lua: &Lua, shared: &Shared, page: &str, func: &str) -> HostResult<String> {
    let fail =
        |lua: &Lua, e: &crate::error::Error| match error_table(lua, &e.to_json(), Some(func), None)
        {
            Ok(t) => HostError::Value(Value::Table(t)),
            Err(e) => HostError::Lua(e),
        };
    let rest = page.trim_start_matches("app.").trim_start_matches("mcp.");
    let (server, tool) = match rest.split_once('.') {
        Some((s, t)) => (s, Some(t)),
        None => (rest, None),
    };
    let conn = shared
        .limits
        .host(shared.mcp.connect(server))
        .await
        .map_err(|e| fail(lua, &e))?;
    let tools = shared
        .limits
        .host(conn.tools(None))
        .await
        .map_err(|e| fail(lua, &e))?;
    crate::docs::render_mcp(server, &conn.server.source.describe(), tools, tool)
        .map_err(|e| fail(lua, &e))
}

/// Whether a page names a configured MCP server (`mcp.<server>[.<tool>]`).
fn mcp_page(shared: &Shared, page: &str) -> bool {
    let rest = page.strip_prefix("app.").unwrap_or(page);
    match rest.strip_prefix("mcp.") {
        Some(r) => {
            let server = r.split_once('.').map(|(s, _)| s).unwrap_or(r);
            shared.mcp.server(server).is_ok()
        }
        None => false,
    }
}

async fn read_any(
    lua: Lua,
    shared: Arc<Shared>,
    args: MultiValue,
    func: &str,
) -> HostResult<String> {
    let page = page_arg(&args, func)?;
    if mcp_page(&shared, &page) {
        return read_mcp(&lua, &shared, &page, func).await;
    }
    read(&lua, &shared, args, func)
}

pub fn install(lua: &Lua, shared: &Arc<Shared>) -> mlua::Result<()> {
    let docs = lua.create_table()?;

    let sh = shared.clone();
    docs.raw_set(
        "read",
        lift_async(lua, move |lua, args| {
            read_any(lua, sh.clone(), args, "docs.read")
        })?,
    )?;
    let sh = shared.clone();
    lua.globals().raw_set(
        "lua_read_doc",
        lift_async(lua, move |lua, args| {
            read_any(lua, sh.clone(), args, "lua_read_doc")
        })?,
    )?;

    let sh = shared.clone();
    docs.raw_set(
        "list",
        lift(lua, move |lua, args: MultiValue| {
            let ns = match args.front() {
                Some(Value::String(s)) => Some(s.to_string_lossy()),
                None | Some(Value::Nil) => None,
                Some(other) => {
                    return Err(HostError::msg(format!(
                        "docs.list: expected a namespace string, got {}",
                        other.type_name()
                    )));
                }
            };
            let docs = docs_of(lua, &sh)?;
            let pages = docs.list(ns.as_deref()).map_err(|e| {
                match error_table(lua, &e.to_json(), Some("docs.list"), None) {
                    Ok(t) => HostError::Value(Value::Table(t)),
                    Err(e) => HostError::Lua(e),
                }
            })?;
            Ok(json::string_array(lua, &pages)?)
        })?,
    )?;

    let sh = shared.clone();
    docs.raw_set(
        "search",
        lift(lua, move |lua, args: MultiValue| {
            let q = match args.front() {
                Some(Value::String(s)) => s.to_string_lossy(),
                other => {
                    return Err(HostError::msg(format!(
                        "docs.search: expected a query string, got {}",
                        other.map(|v| v.type_name()).unwrap_or("nil")
                    )));
                }
            };
            let limit = match args.get(1) {
                Some(Value::Integer(n)) if *n > 0 => *n as usize,
                Some(Value::Number(n)) if *n >= 1.0 => *n as usize,
                None | Some(Value::Nil) => 10,
                Some(_) => {
                    return Err(HostError::msg(
                        "docs.search: limit must be a positive integer",
                    ));
                }
            };
            let docs = docs_of(lua, &sh)?;
            let hits = docs.search(&q, limit.min(1000));
            let j = serde_json::to_value(&hits).map_err(|e| HostError::msg(e.to_string()))?;
            Ok(json::from_json(lua, &j, json::Nulls::DropInObjects)?)
        })?,
    )?;

    lua.globals().raw_set("docs", docs)?;
    Ok(())
}

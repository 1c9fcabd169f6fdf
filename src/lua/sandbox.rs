//! The sandboxed state: an explicit allowlist of the standard library, and the trusted bootstrap
//! that wraps every catching primitive so a tripped limit cannot be swallowed.
//!
//! Allowed: the base library minus `dofile`, `loadfile`, `require`, `collectgarbage`; `load` in
//! text mode only (environment: the script's globals unless one is given); `string` without
//! `string.dump`, with its metatable locked; `table`, `math`, `utf8`, `coroutine`; `os.time`,
//! `os.clock`, `os.date`. Not loaded at all: `io`, `package`, `debug`, the rest of `os`.
//!
//! The bootstrap keeps the raw `pcall`, `coroutine.resume` and friends in upvalues that scripts
//! cannot reach (there is no `debug` library), and registers the private helpers below in the
//! Lua registry, which scripts cannot reach either.

use std::sync::Arc;

use mlua::{Function, Lua, LuaOptions, MultiValue, StdLib, Value};

use super::limits::{Kind, LimitState};

/// Registry names of the bootstrap's private helpers.
pub const LIFT: &str = "kosmo.lift";
pub const RUN: &str = "kosmo.run";
pub const MAKE_FN: &str = "kosmo.make_fn";
pub const ERR_MT: &str = "kosmo.err_mt";
pub const TOSTRING: &str = "kosmo.tostring";
pub const PARALLEL: &str = "kosmo.parallel";
pub const ROWS: &str = "kosmo.rows";
pub const CALL_HANDLER: &str = "kosmo.call_handler";
pub const PAGING: &str = "kosmo.paging";
/// Weak-keyed table: coroutine -> its last call's response metadata.
pub const LAST_RESPONSE: &str = "kosmo.last_response";

const BOOTSTRAP: &str = r##"
local G, check, PENDING, tripped = ...
local pcall, xpcall, error, select, type, rawequal, rawget, setmetatable, tostring =
  pcall, xpcall, error, select, type, rawequal, rawget, setmetatable, tostring
local load = load
local co = coroutine
local create, resume, status, yield, close, running, isyieldable =
  co.create, co.resume, co.status, co.yield, co.close, co.running, co.isyieldable
local pack, unpack = table.pack, table.unpack

-- Resume that forwards the host's "pending" signal (an integration call waiting on HTTP inside a
-- coroutine) to the host instead of handing it to the script, and re-raises tripped limits.
local function resume_w(c, ...)
  local r = pack(resume(c, ...))
  while r[1] and r.n == 2 and rawequal(r[2], PENDING) and status(c) == "suspended" do
    r = pack(resume(c, yield(PENDING)))
  end
  return check(unpack(r, 1, r.n))
end

local function wrap_w(f)
  local c = create(f)
  return function(...)
    local r = pack(resume_w(c, ...))
    if r[1] then return unpack(r, 2, r.n) end
    error(r[2], 0)
  end
end

-- Finalizers run with debug hooks off, so no limit could stop one: refuse `__gc`.
G.setmetatable = function(t, mt)
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    error("__gc metamethods are not allowed in the sandbox", 2)
  end
  return setmetatable(t, mt)
end
G.pcall = function(f, ...) return check(pcall(f, ...)) end
-- A limit raised by the instruction hook reaches the message handler with hooks off (Lua calls it
-- from inside the hook), where no limit could stop a loop: once a limit has tripped, the
-- script's handler is skipped and the error passes through unchanged.
G.xpcall = function(f, h, ...)
  if type(h) ~= "function" then return check(xpcall(f, h, ...)) end
  local function handler(e)
    if tripped() then return e end
    return h(e)
  end
  return check(xpcall(f, handler, ...))
end
G.coroutine = {
  create = create, resume = resume_w, status = status, wrap = wrap_w, yield = yield,
  running = running, isyieldable = isyieldable,
  -- A coroutine stopped by a limit died inside the hook, with hooks off: its `__close`
  -- handlers would run unchecked, so once a limit has tripped, closing raises it instead.
  close = function(c) check() return check(close(c)) end,
}
G.load = function(chunk, name, mode, ...)
  if mode == "b" then return nil, "binary chunks are not allowed" end
  if select("#", ...) > 0 then return load(chunk, name, "t", (...)) end
  return load(chunk, name, "t", G)
end

-- Host functions answer (true, ...) or (false, err); this raises err where the script called.
local function lift(f)
  return function(...)
    local r = pack(f(...))
    if r[1] then return unpack(r, 2, r.n) end
    error(r[2], 2)
  end
end

-- Run the script's main chunk in its own coroutine, so a stray top-level yield is an error
-- rather than a hang, and pending signals still reach the host.
local function run(chunk, ...)
  local c = create(chunk)
  local r = pack(resume_w(c, ...))
  if r[1] and status(c) ~= "dead" then
    return false, "attempt to yield from outside a coroutine"
  end
  return unpack(r, 1, r.n)
end

local function err_message(e)
  local m = rawget(e, "message")
  if type(m) == "string" then return m end
  return "kosmo error"
end
local string_lib = string
local getmetatable = getmetatable
-- Error values behave like their message where Lua lets them: `"x: " .. err`, `err:find(...)`,
-- `err:lower()`. Fields (`err.code`) are raw and win over the string methods.
local function as_text(v)
  if type(v) == "table" and getmetatable(v) == "kosmo.error" then return err_message(v) end
  return v
end
local err_mt = {
  __name = "kosmo.error",
  __metatable = "kosmo.error",
  __tostring = err_message,
  __concat = function(a, b) return as_text(a) .. as_text(b) end,
  __index = function(e, k)
    local f = type(k) == "string" and string_lib[k]
    if type(f) == "function" then
      return function(self, ...)
        if rawequal(self, e) then return f(err_message(e), ...) end
        return f(self, ...)
      end
    end
    return nil
  end,
}

local fn_info = setmetatable({}, { __mode = "k" })
local fn_cache = {}
local function make_fn(invoke, integ, account, fname, path)
  local f = fn_cache[path]
  if f then return f end
  f = function(...) return invoke(integ, account, fname, path, ...) end
  fn_info[f] = { integ, account, fname, path }
  fn_cache[path] = f
  return f
end

local function parallel(raw)
  local function branch(f) return pcall(f) end
  return function(...)
    local n = select("#", ...)
    local fns = pack(...)
    for i = 1, n do
      if type(fns[i]) ~= "function" then
        error("parallel: argument #" .. i .. " is not a function", 2)
      end
    end
    local res = raw(fns, branch)
    for i = 1, n do
      local r = res[i]
      if not r[1] then error(r[2], 0) end
    end
    local out = {}
    for i = 1, n do out[i] = res[i][2] end
    return unpack(out, 1, n)
  end
end

local function rows(open, next_row)
  return function(f, args, ...)
    local info = f
    if type(f) ~= "string" then info = fn_info[f] end
    if info == nil then
      error("rows: expected an app.integrations function or a name like '<integration>.<function>'", 2)
    end
    local h = open(info, args, ...)
    return function() return next_row(h) end
  end
end

-- `pages(f, args)` / `items(f, args)`: lazy walks over a paginated function. `open` checks and
-- counts (no request); each `next_page(h)` fetches one page and answers (body, items, count),
-- or nothing at the end.
local function paging(open, next_page)
  local function target(f, who)
    local info = f
    if type(f) ~= "string" then info = fn_info[f] end
    if info == nil then
      error(who .. ": expected an app.integrations function or a name like '<integration>.<function>'", 3)
    end
    return info
  end
  local function pages(f, args, ...)
    local h = open(target(f, "pages"), args, ...)
    return function()
      local body = next_page(h)
      return body
    end
  end
  local function items(f, args, ...)
    local h = open(target(f, "items"), args, ...)
    local list, n, i = nil, 0, 0
    return function()
      while true do
        if i < n then
          i = i + 1
          return list[i]
        end
        local body, its, count = next_page(h)
        if body == nil and its == nil then return nil end
        list, n, i = its, count or 0, 0
      end
    end
  end
  return pages, items
end

-- An `on_event` callback, run from the host: what it raises comes back as a value (tables
-- intact); a tripped limit is still raised.
-- `on_event`: the callback on each of `n` queued events, in order, in one coroutine; stops at
-- the first that raises and answers false and what it raised.
local function call_handler(f, evs, n)
  for i = 1, n do
    local ok, e = check(pcall(f, evs[i]))
    if not ok then return false, e end
  end
  return true
end

return lift, run, err_mt, make_fn, parallel, rows, tostring, call_handler, paging
"##;

/// Create the state with only the allowed libraries, limits installed, bootstrap run.
pub fn new_state(limits: &Arc<LimitState>) -> mlua::Result<Lua> {
    let lua = Lua::new_with(
        StdLib::TABLE
            | StdLib::STRING
            | StdLib::MATH
            | StdLib::UTF8
            | StdLib::COROUTINE
            | StdLib::OS,
        LuaOptions::new(),
    )?;
    let g = lua.globals();

    // `os`: keep only the clock and calendar functions.
    let os: mlua::Table = g.raw_get("os")?;
    let safe_os = lua.create_table()?;
    for name in ["time", "clock", "date"] {
        safe_os.raw_set(name, os.raw_get::<Value>(name)?)?;
    }
    g.raw_set("os", safe_os)?;
    for name in [
        "dofile",
        "loadfile",
        "require",
        "collectgarbage",
        "io",
        "package",
        "debug",
    ] {
        g.raw_set(name, Value::Nil)?;
    }
    let string: mlua::Table = g.raw_get("string")?;
    string.raw_set("dump", Value::Nil)?;
    // Lock the string metatable: `getmetatable("")` returns false, so it cannot be changed.
    if let Some(mt) = lua
        .load("return getmetatable('')")
        .set_name("=kosmo")
        .eval::<Option<mlua::Table>>()?
    {
        mt.raw_set("__metatable", false)?;
    }

    let st = limits.clone();
    let check = lua.create_function(move |_, args: MultiValue| {
        if let Some(e) = st.lua_error() {
            return Err(e);
        }
        if matches!(args.front(), Some(Value::Boolean(false)))
            && args.get(1).is_some_and(is_memory_error)
        {
            st.trip(Kind::Memory);
            if let Some(e) = st.lua_error() {
                return Err(e);
            }
        }
        Ok(args)
    })?;

    let st = limits.clone();
    lua.set_warning_function(move |_, msg, _incomplete| {
        if st.count_output(msg.len() + 1).is_err() {
            return Err(st
                .lua_error()
                .unwrap_or_else(|| mlua::Error::runtime("output limit")));
        }
        tracing::warn!("lua warning: {msg}");
        Ok(())
    });

    let st = limits.clone();
    let tripped = lua.create_function(move |_, ()| Ok(st.tripped().is_some()))?;

    let (lift, run, err_mt, make_fn, parallel, rows, tostring, call_handler, paging): (
        Function,
        Function,
        mlua::Table,
        Function,
        Function,
        Function,
        Function,
        Function,
        Function,
    ) = lua.load(BOOTSTRAP).set_name("=kosmo").call((
        g,
        check,
        Value::LightUserData(Lua::poll_pending()),
        tripped,
    ))?;
    lua.set_named_registry_value(LIFT, lift)?;
    lua.set_named_registry_value(RUN, run)?;
    lua.set_named_registry_value(ERR_MT, err_mt)?;
    lua.set_named_registry_value(MAKE_FN, make_fn)?;
    lua.set_named_registry_value(PARALLEL, parallel)?;
    lua.set_named_registry_value(ROWS, rows)?;
    lua.set_named_registry_value(TOSTRING, tostring)?;
    lua.set_named_registry_value(CALL_HANDLER, call_handler)?;
    lua.set_named_registry_value(PAGING, paging)?;
    let last = lua.create_table()?;
    let weak = lua.create_table()?;
    weak.raw_set("__mode", "k")?;
    last.set_metatable(Some(weak))?;
    lua.set_named_registry_value(LAST_RESPONSE, last)?;
    Ok(lua)
}

/// Whether a caught error value is Lua running out of its memory allowance.
pub fn is_memory_error(v: &Value) -> bool {
    match v {
        Value::String(s) => s.as_bytes().as_ref() == b"not enough memory",
        Value::Error(e) => is_memory(e),
        _ => false,
    }
}

pub fn is_memory(e: &mlua::Error) -> bool {
    match e {
        mlua::Error::MemoryError(_) => true,
        mlua::Error::CallbackError { cause, .. } | mlua::Error::WithContext { cause, .. } => {
            is_memory(cause)
        }
        mlua::Error::BadArgument { cause, .. } => is_memory(cause),
        mlua::Error::RuntimeError(m) => m == "not enough memory",
        _ => false,
    }
}

//! `app.integrations.*`, `rows(...)`, `pages(...)`, `items(...)`, `last_response()` and
//! `parallel(...)`.
//!
//! `app`, `app.integrations` and each integration/account namespace are userdata, so scripts
//! cannot `rawset` into them or swap their metatables. An unknown integration is `nil` (scripts
//! can test for one); an unknown function raises an error listing the closest names.
//!
//! Calls: `fn{...}` (a table of arguments), or positional arguments mapped onto the manifest's
//! parameters in order (`get_model("claude-...")`), with an optional trailing options table.
//! `on_event = function(ev) end` receives each streamed event, in order, on the async side (events
//! travel through a channel; the events queued at a time reach the callback in one coroutine), so
//! the callback may itself call integrations; what it raises stops
//! the call and is raised at the call site (a table as is, a message as the call's error). Every
//! call is checked against the permissions and the sandbox's local file policy (no local file
//! unless under `--allow-path DIR`, see [`super::files`]), counted against `--max-calls`, recorded
//! in the envelope (a call cut off by a limit or a signal too), and a failure raises an error
//! table `{code, message, status, type, request_id, retry_after, function, account, ...}` that
//! behaves like its message where Lua lets it: `tostring(e)`, `"x: " .. e`, `e:find(...)`,
//! `e:lower()` (fields such as `e.code` win over string methods).
//!
//! `rows(f, args)` iterates the rows of a JSONL function in constant memory:
//! `for row in rows(app.integrations.<name>.<jsonl_function>, {id = b.id}) do end`;
//! `f` may be any `app.integrations` function (any account) or a name like
//! `"<name>.<function>"` / `"<name>.<account>.<function>"`.
//!
//! `pages(f, args)` / `items(f, args)` walk a paginated function lazily (one request per page,
//! each permitted once at the start, then counted and recorded like a call); `last_response()`
//! answers `{status, headers, request_id, function, account}` of the calling coroutine's most
//! recent call (kept per Lua thread in a weak table, so `parallel` branches see their own).
//!
//! `parallel(f1, f2, ...)` runs each function in its own coroutine, at most 64 at a time
//! (`Limits::parallel`, `--parallel N`), and returns their first results in order. Every branch runs to the end;
//! if any failed, the error of the first failing branch (by position) is raised.

use std::sync::Arc;

use futures::StreamExt;
use mlua::{
    AnyUserData, Function, Lua, MetaMethod, MultiValue, Table, UserData, UserDataFields,
    UserDataMethods, Value,
};
use serde_json::{Map, Value as Json, json};

use crate::error::{Error, closest};
use crate::exec::{EventSink, RowStream};
use crate::manifest::Function as ManifestFn;
use crate::session::{CallMeta, CallRecord, PageWalk, Pending, Request as SessionRequest};

use super::json::{self as lj, Mode as JsonMode, Nulls};
use super::{HostError, HostResult, Shared, clean_message, error_table, lift, lift_async, sandbox};

const INDEX_INTEGRATIONS: &str = "kosmo.index_integrations";
const INDEX_INTEGRATION: &str = "kosmo.index_integration";
const INVOKE: &str = "kosmo.invoke";

/// `app` in `integrations:lua`.
pub struct AppNs;

/// `app.integrations`.
pub struct IntegrationsNs;

/// `app.integrations.<name>` (account `None`) or `app.integrations.<name>.<account>`.
pub struct IntegrationNs {
    pub integration: String,
    pub account: Option<String>,
}

impl UserData for AppNs {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::Index, |lua, _, key: Value| {
            Ok(match key {
                Value::String(s) if s.as_bytes().as_ref() == b"integrations" => {
                    Value::UserData(lua.create_userdata(IntegrationsNs)?)
                }
                Value::String(s) if s.as_bytes().as_ref() == b"mcp" => {
                    Value::UserData(lua.create_userdata(super::mcp::McpNs)?)
                }
                _ => Value::Nil,
            })
        });
        read_only(methods, "app");
    }
}

fn read_only<T, M: UserDataMethods<T>>(methods: &mut M, name: &'static str) {
    methods.add_meta_method(
        MetaMethod::NewIndex,
        move |_, _, _: MultiValue| -> mlua::Result<()> {
            Err(mlua::Error::runtime(format!("{name} is read-only")))
        },
    );
}

impl UserData for IntegrationsNs {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field_with(MetaMethod::Index, |lua| {
            lua.named_registry_value::<Function>(INDEX_INTEGRATIONS)
        });
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::ToString, |_, _, ()| Ok("app.integrations"));
        read_only(methods, "app.integrations");
    }
}

/// `app.integrations.<name>`: the namespace, or nil for a name that is not installed (so a
/// script can test for one). A name a typo away from an installed one raises
/// `unknown_integration` with the suggestion, like a misspelt function.
fn index_integrations(lua: &Lua, shared: &Shared, args: MultiValue) -> HostResult<Value> {
    let Some(Value::String(name)) = args.get(1) else {
        return Ok(Value::Nil);
    };
    let registry = shared
        .session
        .registry()
        .map_err(|e| raise(lua, &e.to_json(), None, None))?;
    let name = name.to_string_lossy();
    if registry.get(&name).is_some() {
        return Ok(Value::UserData(lua.create_userdata(IntegrationNs {
            integration: name,
            account: None,
        })?));
    }
    let suggestions = closest(&name, registry.iter().map(|i| i.name()));
    if suggestions.is_empty() {
        return Ok(Value::Nil);
    }
    let err = Error::UnknownIntegration { name, suggestions };
    Err(raise(lua, &err.to_json(), None, None))
}

impl UserData for IntegrationNs {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field_with(MetaMethod::Index, |lua| {
            lua.named_registry_value::<Function>(INDEX_INTEGRATION)
        });
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(match &this.account {
                Some(a) => format!("app.integrations.{}.{a}", this.integration),
                None => format!("app.integrations.{}", this.integration),
            })
        });
        read_only(methods, "an integration namespace");
    }
}

fn raise(lua: &Lua, err: &Json, function: Option<&str>, account: Option<&str>) -> HostError {
    match error_table(lua, err, function, account) {
        Ok(t) => HostError::Value(Value::Table(t)),
        Err(e) => HostError::Lua(e),
    }
}

/// `app.integrations.<name>[.<account>].<key>`.
fn index_integration(lua: &Lua, shared: &Shared, args: MultiValue) -> HostResult<Value> {
    let ud = match args.front() {
        Some(Value::UserData(ud)) => ud.clone(),
        _ => return Err(HostError::msg("integration namespace expected")),
    };
    let (integration, account) = {
        let ns = ud.borrow::<IntegrationNs>()?;
        (ns.integration.clone(), ns.account.clone())
    };
    let key = match args.get(1) {
        Some(Value::String(s)) => s.to_string_lossy(),
        _ => return Ok(Value::Nil),
    };
    let registry = shared
        .session
        .registry()
        .map_err(|e| raise(lua, &e.to_json(), None, None))?;
    let Some(integ) = registry.get(&integration) else {
        return Ok(Value::Nil);
    };
    let prefix = match &account {
        Some(a) => format!("integrations.{integration}.{a}"),
        None => format!("integrations.{integration}"),
    };
    if let Some((lua_name, _)) = integ.function(&key) {
        let make: Function = lua.named_registry_value(sandbox::MAKE_FN)?;
        let invoke: Function = lua.named_registry_value(INVOKE)?;
        let f: Function = make.call((
            invoke,
            integration.as_str(),
            account.clone(),
            lua_name,
            format!("{prefix}.{key}"),
        ))?;
        return Ok(Value::Function(f));
    }
    if account.is_none() {
        let accounts = shared.accounts(&integration);
        // Offline too: only configured accounts, so a typo is an unknown function, not an
        // account namespace.
        if key == "default" || accounts.contains(&key) {
            return Ok(Value::UserData(lua.create_userdata(IntegrationNs {
                integration,
                account: Some(key),
            })?));
        }
    }
    let suggestions = closest(&key, integ.all_names());
    let err = Error::UnknownFunction {
        integration: integration.clone(),
        name: key.clone(),
        suggestions: suggestions.clone(),
    };
    let mut j = err.to_json();
    if account.is_none() {
        let accounts = shared.accounts(&integration);
        j["message"] = json!(format!(
            "{} (and no account '{key}' is configured; accounts: {})",
            err,
            accounts.join(", ")
        ));
    }
    shared.session.log().record(CallRecord {
        id: None,
        meta: CallMeta {
            path: format!("{prefix}.{key}"),
            function: key.clone(),
            account: account.clone().unwrap_or_else(|| "default".into()),
            class: None,
        },
        duration_ms: 0.0,
        http_status: None,
        request_id: None,
        error: Some(j.clone()),
    });
    Err(raise(lua, &j, Some(&key), account.as_deref()))
}

/// Arguments of a call as JSON, plus the `on_event` callback if one was given.
fn build_args(
    lua: &Lua,
    f: &ManifestFn,
    args: &[Value],
) -> Result<(Json, Option<Function>), String> {
    let mut obj = Map::new();
    let mut on_event = None;
    let mut merge_table = |t: &Table, obj: &mut Map<String, Json>| -> Result<(), String> {
        let mut err = None;
        t.for_each::<Value, Value>(|k, v| {
            let key = match &k {
                Value::String(s) => s.to_string_lossy(),
                other => {
                    err = Some(format!(
                        "argument keys must be names, got a {} key (pass named arguments as {{name = value}})",
                        other.type_name()
                    ));
                    return Ok(());
                }
            };
            if key == "on_event" {
                match v {
                    Value::Function(func) => on_event = Some(func),
                    Value::Nil => {}
                    other => {
                        err = Some(format!(
                            "on_event must be a function, got a {}",
                            other.type_name()
                        ))
                    }
                }
                return Ok(());
            }
            match lj::to_json(lua, &v, JsonMode::Strict) {
                Ok(j) => {
                    obj.insert(key, j);
                }
                Err(e) => err = Some(format!("argument '{key}': {e}")),
            }
            Ok(())
        })
        .map_err(|e| clean_message(&e))?;
        match err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    };
    match args {
        [] | [Value::Nil] => {}
        [Value::Table(t)] => merge_table(t, &mut obj)?,
        positional => {
            let n = positional.len();
            for (i, v) in positional.iter().enumerate() {
                let param = f.params.get(i);
                let is_container = param.is_some_and(|p| {
                    matches!(
                        p.schema.get("type").and_then(Json::as_str),
                        Some("object" | "array")
                    )
                });
                if i == n - 1 && i > 0 && matches!(v, Value::Table(_)) && !is_container {
                    if let Value::Table(t) = v {
                        merge_table(t, &mut obj)?;
                    }
                    continue;
                }
                let Some(param) = param else {
                    let names: Vec<&str> = f.params.iter().map(|p| p.name.as_str()).collect();
                    return Err(format!(
                        "takes at most {} positional arguments ({}), got {n}",
                        f.params.len(),
                        names.join(", ")
                    ));
                };
                if v.is_nil() {
                    continue;
                }
                let j = lj::to_json(lua, v, JsonMode::Strict)
                    .map_err(|e| format!("argument '{}': {e}", param.name))?;
                obj.insert(param.name.clone(), j);
            }
        }
    }
    // `{}` is an object in Lua's eyes; a parameter declared as an array wants `[]`.
    for p in &f.params {
        if p.schema.get("type").and_then(Json::as_str) == Some("array")
            && let Some(v) = obj.get_mut(&p.name)
            && v.as_object().is_some_and(Map::is_empty)
        {
            *v = Json::Array(Vec::new());
        }
    }
    Ok((Json::Object(obj), on_event))
}

fn str_arg(v: Option<Value>) -> String {
    match v {
        Some(Value::String(s)) => s.to_string_lossy(),
        _ => String::new(),
    }
}

fn opt_str_arg(v: Option<Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) => Some(s.to_string_lossy()),
        _ => None,
    }
}

/// A call as the script made it: the function it names (resolved, for the positional
/// mapping) and its arguments as JSON.
struct Prepared {
    integration: String,
    function: String,
    account: Option<String>,
    path: String,
    args: Json,
    on_event: Option<Function>,
}

impl Prepared {
    /// The session's view of this call.
    fn request(&self) -> SessionRequest<'_> {
        SessionRequest {
            integration: &self.integration,
            function: &self.function,
            account: self.account.as_deref(),
            args: self.args.clone(),
            label: Some(self.path.clone()),
        }
    }

    /// The account the call runs on, for error tables raised before the session resolved it.
    fn account_name(&self, shared: &Shared) -> String {
        self.account
            .clone()
            .or_else(|| shared.options.account.clone())
            .unwrap_or_else(|| "default".into())
    }
}

/// The error the script sees for a failed call: a tripped limit stops the run (it is not a
/// value `pcall` can catch); anything else is an error table naming the function and account.
fn call_error(lua: &Lua, shared: &Shared, e: &Error, function: &str, account: &str) -> HostError {
    if let Some(stop) = shared.limits.lua_error() {
        return HostError::Lua(stop);
    }
    raise(lua, &e.to_json(), Some(function), Some(account))
}

/// Resolve the function (for the positional mapping) and convert the arguments. A failure is
/// recorded like any refused call.
fn prepare(
    lua: &Lua,
    shared: &Arc<Shared>,
    integration: String,
    account: Option<String>,
    fname: String,
    path: String,
    rest: &[Value],
) -> HostResult<Prepared> {
    if let Some(e) = shared.limits.lua_error() {
        return Err(HostError::Lua(e));
    }
    let mut p = Prepared {
        integration,
        function: fname,
        account,
        path,
        args: Json::Null,
        on_event: None,
    };
    let account = p.account_name(shared);
    let mut meta = CallMeta {
        path: p.path.clone(),
        function: p.function.clone(),
        account: account.clone(),
        class: None,
    };
    let resolved = shared.session.registry().and_then(|registry| {
        let integ = registry.require(&p.integration)?;
        let (lua_name, f) = integ.require_function(&p.function)?;
        meta.function = lua_name.to_string();
        meta.class = Some(f.class);
        build_args(lua, f, rest).map_err(|msg| Error::Validation {
            function: format!("{}.{lua_name}", p.integration),
            errors: vec![msg],
        })
    });
    match resolved {
        Ok((args, on_event)) => {
            p.args = args;
            p.on_event = on_event;
            Ok(p)
        }
        Err(e) => {
            shared.session.log().record_failure(meta.clone(), &e);
            Err(call_error(lua, shared, &e, &meta.function, &account))
        }
    }
}

/// The session's checks of a prepared call (counted as host work); a refusal is raised.
async fn start<'s>(lua: &Lua, shared: &'s Shared, p: &Prepared) -> HostResult<Pending<'s>> {
    match shared.limits.host(shared.session.start(p.request())).await {
        Ok(pending) => Ok(pending),
        Err(e) => {
            let account = p.account_name(shared);
            Err(call_error(lua, shared, &e, &p.function, &account))
        }
    }
}

async fn invoke(lua: Lua, shared: Arc<Shared>, args: MultiValue) -> HostResult<Value> {
    let mut it = args.into_iter();
    let integration = str_arg(it.next());
    let account = opt_str_arg(it.next());
    let fname = str_arg(it.next());
    let path = str_arg(it.next());
    let rest: Vec<Value> = it.collect();
    let p = prepare(&lua, &shared, integration, account, fname, path, &rest)?;
    let session = &shared.session;
    let pending = start(&lua, &shared, &p).await?;
    let (function, account) = (
        pending.function().to_string(),
        pending.account().to_string(),
    );
    // Events go through a channel and the callback runs here, on the async side, so it may
    // itself call integrations (a Lua callback inside the executor's sink could not yield).
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Json>();
    let sink: Option<EventSink<'static>> = p.on_event.as_ref().map(|_| {
        let sink: EventSink<'static> = Box::new(move |ev: &Json| {
            tx.send(ev.clone()).map_err(|_| Error::Lua {
                message: "on_event stopped the call".into(),
            })
        });
        sink
    });
    let call_id = std::sync::atomic::AtomicU64::new(u64::MAX);
    let (result, handler_failed) = {
        // Host work while polled; while it waits, other branches run and are counted.
        let fut = shared.limits.host(pending.send_with_id(sink, |id| {
            call_id.store(id, std::sync::atomic::Ordering::SeqCst)
        }));
        tokio::pin!(fut);
        let mut result = None;
        let mut failed = None;
        let mut events_open = p.on_event.is_some();
        while result.is_none() && failed.is_none() {
            tokio::select! {
                biased;
                ev = rx.recv(), if events_open => match (ev, &p.on_event) {
                    (Some(ev), Some(func)) => {
                        // With the events queued behind it: one coroutine for the lot.
                        let mut batch = vec![ev];
                        while batch.len() < EVENT_BATCH
                            && let Ok(more) = rx.try_recv()
                        {
                            batch.push(more);
                        }
                        failed = deliver(&lua, func, &batch).await.err();
                    }
                    _ => events_open = false,
                },
                r = &mut fut => result = Some(r),
            }
        }
        // Events sent before the call returned are still queued: deliver them in order.
        if let Some(func) = &p.on_event {
            while failed.is_none() {
                let mut batch = Vec::new();
                while batch.len() < EVENT_BATCH
                    && let Ok(ev) = rx.try_recv()
                {
                    batch.push(ev);
                }
                if batch.is_empty() {
                    break;
                }
                failed = deliver(&lua, func, &batch).await.err();
            }
        }
        (result, failed)
    };
    let id = call_id.load(std::sync::atomic::Ordering::SeqCst);
    if let Some(e) = shared.limits.lua_error() {
        let err = shared.limits.error_json().unwrap_or(Json::Null);
        session.log().fail(id, err);
        return Err(HostError::Lua(e));
    }
    if let Some(failure) = handler_failed {
        return Err(handler_error(
            &lua, &shared, id, failure, &function, &account,
        ));
    }
    match result {
        Some(Ok(out)) => {
            remember_response(
                &lua,
                &function,
                &account,
                out.http_status,
                out.request_id.as_deref(),
                &out.headers,
            )?;
            Ok(lj::from_json(&lua, &out.value, Nulls::DropInObjects)?)
        }
        Some(Err(e)) => {
            if e.status().is_some() {
                let headers = e
                    .api_detail()
                    .map(|d| d.headers.clone())
                    .unwrap_or_default();
                remember_response(
                    &lua,
                    &function,
                    &account,
                    e.status(),
                    e.request_id(),
                    &headers,
                )?;
            }
            Err(raise(&lua, &e.to_json(), Some(&function), Some(&account)))
        }
        None => {
            let e = Error::Lua {
                message: "the call ended without a result".into(),
            };
            session.log().finish(id, None, None, Some(e.to_json()));
            Err(raise(&lua, &e.to_json(), Some(&function), Some(&account)))
        }
    }
}

/// What `last_response()` answers for one coroutine, kept as Rust data: the Lua table is built
/// only when a script asks (most never do), not on every call.
struct LastResponse {
    status: Option<u16>,
    headers: Vec<(String, String)>,
    request_id: Option<String>,
    function: String,
    account: String,
}

impl UserData for LastResponse {}

/// Keep what `last_response()` answers in the calling coroutine: `{status, headers, request_id,
/// function, account}` (headers already redacted by the executor).
fn remember_response(
    lua: &Lua,
    function: &str,
    account: &str,
    status: Option<u16>,
    request_id: Option<&str>,
    headers: &[(String, String)],
) -> mlua::Result<()> {
    let kept = lua.create_userdata(LastResponse {
        status,
        headers: headers.to_vec(),
        request_id: request_id.map(str::to_string),
        function: function.to_string(),
        account: account.to_string(),
    })?;
    let last: Table = lua.named_registry_value(sandbox::LAST_RESPONSE)?;
    last.raw_set(lua.current_thread(), kept)?;
    Ok(())
}

/// `last_response()`: the calling coroutine's last response metadata, or nil; a fresh table
/// each time, so a script that edits it cannot change what the next caller sees.
fn last_response(lua: &Lua) -> HostResult<Value> {
    let last: Table = lua.named_registry_value(sandbox::LAST_RESPONSE)?;
    let Some(kept) = last.raw_get::<Option<AnyUserData>>(lua.current_thread())? else {
        return Ok(Value::Nil);
    };
    let r = kept.borrow::<LastResponse>()?;
    let t = lua.create_table()?;
    if let Some(s) = r.status {
        t.raw_set("status", s)?;
    }
    let h = lua.create_table()?;
    for (k, v) in &r.headers {
        // Repeated headers are joined as HTTP allows.
        let joined = match h.raw_get::<Option<String>>(k.as_str())? {
            Some(prev) => format!("{prev}, {v}"),
            None => v.clone(),
        };
        h.raw_set(k.as_str(), joined)?;
    }
    t.raw_set("headers", h)?;
    if let Some(id) = &r.request_id {
        t.raw_set("request_id", id.as_str())?;
    }
    t.raw_set("function", r.function.as_str())?;
    t.raw_set("account", r.account.as_str())?;
    Ok(Value::Table(t))
}

/// An open page walk, read by `next_page`.
struct PagesHandle {
    walk: Arc<tokio::sync::Mutex<Option<PageWalk>>>,
}

impl UserData for PagesHandle {}

async fn open_pages(lua: Lua, shared: Arc<Shared>, args: MultiValue) -> HostResult<AnyUserData> {
    let mut it = args.into_iter();
    let info = it.next().unwrap_or(Value::Nil);
    let (integration, account, fname, path) = rows_target(&info)?;
    let rest: Vec<Value> = it.collect();
    let p = prepare(&lua, &shared, integration, account, fname, path, &rest)?;
    match shared.limits.host(shared.session.pages(p.request())).await {
        Ok(walk) => Ok(lua.create_userdata(PagesHandle {
            walk: Arc::new(tokio::sync::Mutex::new(Some(walk))),
        })?),
        Err(e) => {
            let account = p.account_name(&shared);
            Err(call_error(&lua, &shared, &e, &p.function, &account))
        }
    }
}

async fn next_page(lua: Lua, shared: Arc<Shared>, args: MultiValue) -> HostResult<MultiValue> {
    let ud = match args.front() {
        Some(Value::UserData(ud)) => ud.clone(),
        _ => return Err(HostError::msg("pages: invalid iterator state")),
    };
    let walk = ud.borrow::<PagesHandle>()?.walk.clone();
    let mut guard = walk.lock().await;
    let Some(w) = guard.as_mut() else {
        return Ok(MultiValue::new());
    };
    let (function, account) = (w.meta().function.clone(), w.meta().account.clone());
    let next = shared.limits.host(shared.session.next_page(w)).await;
    if let Some(e) = shared.limits.lua_error() {
        *guard = None;
        return Err(HostError::Lua(e));
    }
    match next {
        Ok(None) => {
            *guard = None;
            Ok(MultiValue::new())
        }
        Ok(Some(page)) => {
            let out = page.output;
            remember_response(
                &lua,
                &function,
                &account,
                out.http_status,
                out.request_id.as_deref(),
                &out.headers,
            )?;
            let body = lj::from_json(&lua, &out.value, Nulls::DropInObjects)?;
            let items = lua.create_table_with_capacity(page.items.len(), 0)?;
            for (i, item) in page.items.iter().enumerate() {
                items.raw_set(i + 1, lj::from_json(&lua, item, Nulls::DropInObjects)?)?;
            }
            let n = page.items.len();
            Ok(MultiValue::from_iter([
                body,
                Value::Table(items),
                Value::Integer(n as i64),
            ]))
        }
        Err(e) => {
            *guard = None;
            Err(call_error(&lua, &shared, &e, &function, &account))
        }
    }
}

/// Why the `on_event` callback stopped a call.
enum HandlerFailure {
    /// The callback raised this value.
    Raised(Value),
    /// The Lua machinery failed (a tripped limit, memory).
    Lua(mlua::Error),
}

/// Events handed to the `on_event` callback in one go (one coroutine), at most.
const EVENT_BATCH: usize = 256;

/// Run the callback on each event in order, catching what it raises as a value (the events
/// after that one are not delivered). One coroutine runs the whole batch.
async fn deliver(lua: &Lua, func: &Function, evs: &[Json]) -> Result<(), HandlerFailure> {
    let list = lua
        .create_table_with_capacity(evs.len(), 0)
        .map_err(HandlerFailure::Lua)?;
    for (i, ev) in evs.iter().enumerate() {
        let v = lj::from_json(lua, ev, Nulls::DropInObjects).map_err(HandlerFailure::Lua)?;
        list.raw_set(i + 1, v).map_err(HandlerFailure::Lua)?;
    }
    let call: Function = lua
        .named_registry_value(sandbox::CALL_HANDLER)
        .map_err(HandlerFailure::Lua)?;
    let r = call
        .call_async::<MultiValue>((func.clone(), list, evs.len()))
        .await
        .map_err(HandlerFailure::Lua)?;
    let mut it = r.into_iter();
    match it.next() {
        Some(Value::Boolean(true)) => Ok(()),
        _ => Err(HandlerFailure::Raised(it.next().unwrap_or(Value::Nil))),
    }
}

/// The error a failed callback raises at the call site: a table it raised propagates as is; a
/// message becomes the call's error table (so the envelope names the function). The call, cut
/// off by the callback, is recorded with the callback's error.
fn handler_error(
    lua: &Lua,
    shared: &Shared,
    id: u64,
    failure: HandlerFailure,
    function: &str,
    account: &str,
) -> HostError {
    let log = shared.session.log();
    match failure {
        HandlerFailure::Lua(e) => {
            log.fail(id, super::lua_error_json(&e));
            HostError::Lua(e)
        }
        HandlerFailure::Raised(v @ Value::Table(_)) => {
            let j = lj::result_value(lua, &v);
            let mut rec = json!({"code": "lua_error", "message": "on_event raised an error"});
            if let Some(c) = j.get("code") {
                rec["code"] = c.clone();
            }
            if let Some(m) = j.get("message") {
                rec["message"] = m.clone();
            }
            log.fail(id, rec);
            HostError::Value(v)
        }
        HandlerFailure::Raised(v) => {
            let msg = match &v {
                Value::String(s) => s.to_string_lossy(),
                other => format!("(error object is a {} value)", other.type_name()),
            };
            let j = Error::Lua {
                message: format!("on_event: {msg}"),
            }
            .to_json();
            log.fail(id, j.clone());
            raise(lua, &j, Some(function), Some(account))
        }
    }
}

/// An open row stream, read by `next_row`.
struct RowsHandle {
    stream: Arc<tokio::sync::Mutex<Option<RowStream>>>,
    function: String,
    account: String,
}

impl UserData for RowsHandle {}

/// `info` is the descriptor the bootstrap keeps per function, or a dotted name.
fn rows_target(info: &Value) -> HostResult<(String, Option<String>, String, String)> {
    match info {
        Value::Table(t) => Ok((
            t.raw_get::<String>(1)?,
            t.raw_get::<Option<String>>(2)?,
            t.raw_get::<String>(3)?,
            t.raw_get::<String>(4)?,
        )),
        Value::String(s) => {
            let s = s.to_string_lossy();
            let trimmed = s
                .trim_start_matches("app.")
                .trim_start_matches("integrations.")
                .to_string();
            let parts: Vec<&str> = trimmed.split('.').collect();
            match parts.as_slice() {
                [i, f] => Ok((
                    i.to_string(),
                    None,
                    f.to_string(),
                    format!("integrations.{trimmed}"),
                )),
                [i, a, f] => Ok((
                    i.to_string(),
                    Some(a.to_string()),
                    f.to_string(),
                    format!("integrations.{trimmed}"),
                )),
                _ => Err(HostError::msg(format!(
                    "rows: '{s}' is not a function name like '<integration>.<function>' or '<integration>.<account>.<function>'"
                ))),
            }
        }
        _ => Err(HostError::msg("rows: expected a function")),
    }
}

async fn open_rows(lua: Lua, shared: Arc<Shared>, args: MultiValue) -> HostResult<AnyUserData> {
    let mut it = args.into_iter();
    let info = it.next().unwrap_or(Value::Nil);
    let (integration, account, fname, path) = rows_target(&info)?;
    let rest: Vec<Value> = it.collect();
    let p = prepare(&lua, &shared, integration, account, fname, path, &rest)?;
    let pending = start(&lua, &shared, &p).await?;
    let (function, account) = (
        pending.function().to_string(),
        pending.account().to_string(),
    );
    let result = shared.limits.host(pending.rows()).await;
    if let Some(e) = shared.limits.lua_error() {
        return Err(HostError::Lua(e));
    }
    match result {
        Ok(stream) => Ok(lua.create_userdata(RowsHandle {
            stream: Arc::new(tokio::sync::Mutex::new(Some(stream))),
            function,
            account,
        })?),
        Err(e) => Err(raise(&lua, &e.to_json(), Some(&function), Some(&account))),
    }
}

async fn next_row(lua: Lua, shared: Arc<Shared>, args: MultiValue) -> HostResult<Value> {
    let ud = match args.front() {
        Some(Value::UserData(ud)) => ud.clone(),
        _ => return Err(HostError::msg("rows: invalid iterator state")),
    };
    let (stream, function, account) = {
        let h = ud.borrow::<RowsHandle>()?;
        (h.stream.clone(), h.function.clone(), h.account.clone())
    };
    let mut guard = stream.lock().await;
    let Some(s) = guard.as_mut() else {
        return Ok(Value::Nil);
    };
    let next = shared.limits.host(s.next_line()).await;
    if let Some(e) = shared.limits.lua_error() {
        return Err(HostError::Lua(e));
    }
    // Each row goes from its text straight into Lua values (no JSON tree in between).
    let decoded = match next {
        None => None,
        Some(Ok(line)) => Some(match lj::decode_row(&lua, &line.bytes) {
            Ok(v) => Ok(v),
            Err(lj::RowError::Lua(e)) => return Err(HostError::Lua(e)),
            // A line that is not JSON is an error; the stream goes on with the next line.
            Err(lj::RowError::Invalid(reason)) => {
                let e = line.invalid(&reason);
                return Err(raise(&lua, &e.to_json(), Some(&function), Some(&account)));
            }
        }),
        Some(Err(e)) => Some(Err(e)),
    };
    match decoded {
        None => {
            *guard = None;
            Ok(Value::Nil)
        }
        Some(Ok(row)) => Ok(row),
        Some(Err(e)) => {
            *guard = None;
            Err(raise(&lua, &e.to_json(), Some(&function), Some(&account)))
        }
    }
}

/// Run the branches (`branch(f)` = raw `pcall(f)`) concurrently; answer `{ {ok, v}, ... }`.
async fn parallel_raw(
    lua: Lua,
    shared: Arc<Shared>,
    fns: Table,
    branch: Function,
) -> mlua::Result<Table> {
    let n = fns.raw_len();
    let width = shared.limits.limits.parallel.max(1);
    let mut futs = Vec::with_capacity(n);
    for i in 1..=n {
        let f: Function = fns.raw_get(i)?;
        futs.push(branch.call_async::<MultiValue>(f));
    }
    let results: Vec<mlua::Result<MultiValue>> =
        futures::stream::iter(futs).buffered(width).collect().await;
    if let Some(e) = shared.limits.lua_error() {
        return Err(e);
    }
    let out = lua.create_table_with_capacity(n, 0)?;
    for (i, r) in results.into_iter().enumerate() {
        let entry = lua.create_table()?;
        match r {
            Ok(mv) => {
                let mut it = mv.into_iter();
                let ok = it.next().unwrap_or(Value::Boolean(false));
                entry.raw_set(1, ok)?;
                entry.raw_set(2, it.next().unwrap_or(Value::Nil))?;
            }
            Err(e) => {
                if sandbox::is_memory(&e) {
                    return Err(e);
                }
                entry.raw_set(1, false)?;
                entry.raw_set(2, clean_message(&e))?;
            }
        }
        out.raw_set(i + 1, entry)?;
    }
    Ok(out)
}

pub fn install(lua: &Lua, shared: &Arc<Shared>) -> mlua::Result<()> {
    let sh = shared.clone();
    let index = lift(lua, move |lua, args| index_integrations(lua, &sh, args))?;
    lua.set_named_registry_value(INDEX_INTEGRATIONS, index)?;
    let sh = shared.clone();
    let index = lift(lua, move |lua, args| index_integration(lua, &sh, args))?;
    lua.set_named_registry_value(INDEX_INTEGRATION, index)?;

    let sh = shared.clone();
    let inv = lift_async(lua, move |lua, args| invoke(lua, sh.clone(), args))?;
    lua.set_named_registry_value(INVOKE, inv)?;

    let sh = shared.clone();
    let open = lift_async(lua, move |lua, args| open_rows(lua, sh.clone(), args))?;
    let sh = shared.clone();
    let next = lift_async(lua, move |lua, args| next_row(lua, sh.clone(), args))?;
    let rows_factory: Function = lua.named_registry_value(sandbox::ROWS)?;
    let rows: Function = rows_factory.call((open, next))?;

    let sh = shared.clone();
    let open = lift_async(lua, move |lua, args| open_pages(lua, sh.clone(), args))?;
    let sh = shared.clone();
    let next = lift_async(lua, move |lua, args| next_page(lua, sh.clone(), args))?;
    let paging: Function = lua.named_registry_value(sandbox::PAGING)?;
    let (pages, items): (Function, Function) = paging.call((open, next))?;
    let last = lift(lua, |lua, _args| last_response(lua))?;

    let sh = shared.clone();
    let raw_parallel =
        lua.create_async_function(move |lua, (fns, branch): (Table, Function)| {
            parallel_raw(lua, sh.clone(), fns, branch)
        })?;
    let parallel_factory: Function = lua.named_registry_value(sandbox::PARALLEL)?;
    let parallel: Function = parallel_factory.call(raw_parallel)?;

    let g = lua.globals();
    g.raw_set("app", lua.create_userdata(AppNs)?)?;
    g.raw_set("rows", rows)?;
    g.raw_set("pages", pages)?;
    g.raw_set("items", items)?;
    g.raw_set("last_response", last)?;
    g.raw_set("parallel", parallel)?;
    Ok(())
}

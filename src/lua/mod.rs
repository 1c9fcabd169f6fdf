//! The sandboxed Lua runtime behind `integrations:lua` and `mcp:lua`.
//!
//! One file per Lua module, each with an `install` function: [`sandbox`] (the state, the stdlib
//! allowlist, the trusted bootstrap), [`limits`], [`output`] (`print`, `dump`), [`json`],
//! [`regex`], [`docs`], [`app`] (`app.integrations.*`, `rows`, `parallel`), [`mcp`], and
//! [`envelope`] (the `--json` result). Lua knows nothing about HTTP: every call goes through
//! the runtime's [`Session`], and this layer only converts values and errors at its edge.
//!
//! Host functions answer `(true, ...)` or `(false, err)` and a bootstrap wrapper raises `err` at
//! the script's call site, so errors are plain strings or structured tables (never opaque host
//! userdata) and `pcall` sees exactly what was raised.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use mlua::chunk::ChunkMode;
use mlua::{Function, IntoLuaMulti, Lua, MultiValue, Table, Value};
use serde_json::{Value as Json, json};

use crate::error::Error;
use crate::exec::progress::ProgressHandle;
use crate::session::{Hooks, Session, SessionOptions};
use crate::simulator::OfflineOptions;

pub mod app;
pub mod docs;
pub mod envelope;
pub mod json;
pub mod limits;
pub mod mcp;
pub mod output;
pub mod regex;
pub mod sandbox;

pub use envelope::{Meta, Outcome};
pub use limits::Limits;

/// Which namespaces a script sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `app.integrations.*`, `app.mcp.*`, `mcp.*`, `docs.*`, `json.*`, `regex.*`, `rows`, `parallel`.
    Integrations,
    /// Only `app.mcp.*` and `mcp.*`, plus `json`, `regex`, `dump`, `print`.
    McpOnly,
}

/// Settings of a runtime.
#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode,
    pub limits: Limits,
    /// Bypass `ask` and `deny` permissions (recorded in the envelope).
    pub force: bool,
    /// Refuse every write, even with `force`.
    pub read_only: bool,
    pub dry_run: bool,
    /// Point every account at an in-process simulator.
    pub offline: bool,
    /// Account for calls that do not name one.
    pub account: Option<String>,
    /// Capture `print` into the envelope instead of streaming it to stdout.
    pub capture_output: bool,
    /// Extra manifest directories.
    pub manifest_dirs: Vec<PathBuf>,
    /// Config directory (credentials.yaml, config.yaml); `None` uses the standard lookup.
    pub config_dir: Option<PathBuf>,
    /// May `ask` permissions prompt on the terminal?
    pub allow_prompt: bool,
    /// Directories under which scripts may read and write local files (`save_to`, uploads).
    /// Empty (the default): no local file access at all.
    pub allow_paths: Vec<PathBuf>,
    /// Settings of the simulators of an offline run.
    pub simulator: OfflineOptions,
    /// Where long waits (polls, downloads) report progress; the front end draws it.
    pub progress: Option<ProgressHandle>,
}

impl Options {
    /// The session behind the runtime's calls.
    fn session(&self) -> SessionOptions {
        SessionOptions {
            force: self.force,
            read_only: self.read_only,
            dry_run: self.dry_run,
            offline: self.offline,
            simulator: self.simulator.clone(),
            account: self.account.clone(),
            manifest_dirs: self.manifest_dirs.clone(),
            config_dir: self.config_dir.clone(),
            allow_paths: self.allow_paths.clone(),
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: Mode::Integrations,
            limits: Limits::default(),
            force: false,
            read_only: false,
            dry_run: false,
            offline: false,
            account: None,
            capture_output: true,
            manifest_dirs: Vec::new(),
            config_dir: None,
            allow_prompt: false,
            allow_paths: Vec::new(),
            simulator: OfflineOptions::default(),
            progress: None,
        }
    }
}

/// An error a host function reports to the script.
#[derive(Debug)]
pub enum HostError {
    /// A message, raised as a string with the script's position.
    Msg(String),
    /// A structured error value (an error table), raised as is.
    Value(Value),
    /// An error from the Lua machinery itself (limits, memory), propagated unchanged.
    Lua(mlua::Error),
}

impl HostError {
    pub fn msg(m: impl Into<String>) -> Self {
        HostError::Msg(m.into())
    }
}

impl From<mlua::Error> for HostError {
    fn from(e: mlua::Error) -> Self {
        HostError::Lua(e)
    }
}

pub type HostResult<T> = Result<T, HostError>;

fn answer<R: IntoLuaMulti>(lua: &Lua, r: HostResult<R>) -> mlua::Result<MultiValue> {
    match r {
        Ok(v) => {
            let mut out = v.into_lua_multi(lua)?;
            out.push_front(Value::Boolean(true));
            Ok(out)
        }
        Err(HostError::Msg(m)) => Ok(MultiValue::from_iter([
            Value::Boolean(false),
            Value::String(lua.create_string(&m)?),
        ])),
        Err(HostError::Value(v)) => Ok(MultiValue::from_iter([Value::Boolean(false), v])),
        Err(HostError::Lua(e)) => Err(e),
    }
}

fn lift_fn(lua: &Lua, raw: Function) -> mlua::Result<Function> {
    let lift: Function = lua.named_registry_value(sandbox::LIFT)?;
    lift.call(raw)
}

/// A host function whose errors are raised at the script's call site.
pub(crate) fn lift<F, R>(lua: &Lua, f: F) -> mlua::Result<Function>
where
    F: Fn(&Lua, MultiValue) -> HostResult<R> + Send + 'static,
    R: IntoLuaMulti,
{
    let raw = lua.create_function(move |lua, args: MultiValue| answer(lua, f(lua, args)))?;
    lift_fn(lua, raw)
}

/// Like [`lift`], for host functions that wait (HTTP, row streams).
pub(crate) fn lift_async<F, Fut, R>(lua: &Lua, f: F) -> mlua::Result<Function>
where
    F: Fn(Lua, MultiValue) -> Fut + Send + 'static,
    Fut: Future<Output = HostResult<R>> + Send + 'static,
    R: IntoLuaMulti + 'static,
{
    let raw = lua.create_async_function(move |lua, args: MultiValue| {
        let fut = f(lua.clone(), args);
        async move {
            let r = fut.await;
            answer(&lua, r)
        }
    })?;
    lift_fn(lua, raw)
}

/// State shared by every host function of one runtime.
pub struct Shared {
    pub options: Options,
    pub limits: Arc<limits::LimitState>,
    pub output: output::Output,
    /// The call path: services, permissions, file policy and the record of calls.
    pub session: Arc<Session>,
    /// Configured MCP servers, each started on first use and shut down with the run.
    pub mcp: crate::mcp::Clients,
}

impl Shared {
    fn new(options: Options) -> Arc<Shared> {
        let limits = limits::LimitState::new(options.limits.clone());
        let count = limits.clone();
        let asking = limits.clone();
        let allow_prompt = options.allow_prompt;
        let hooks = Hooks {
            count_call: Some(Arc::new(move || count.count_call())),
            prompt: Some(Arc::new(move |q: &str| {
                // The user's think time is not the script's CPU time.
                let _host = asking.enter_host();
                if allow_prompt {
                    crate::permissions::terminal_prompt(q)
                } else {
                    None
                }
            })),
            progress: options.progress.as_ref().map(|p| p.0.clone()),
        };
        let session = Session::new(options.session()).with_hooks(hooks);
        let mcp = crate::mcp::Clients::new(crate::mcp::Locations::standard(
            options.config_dir.as_deref(),
        ));
        Arc::new(Shared {
            mcp,
            output: output::Output::new(options.capture_output, limits.clone()),
            limits,
            options,
            session: Arc::new(session),
        })
    }

    /// Account names for an integration (see [`Session::accounts`]).
    pub fn accounts(&self, integration: &str) -> Vec<String> {
        self.session.accounts(integration)
    }

    /// Record calls still in flight as failed with what stopped the run, so a cut-off call is
    /// never missing from `integration_calls`.
    pub(crate) fn flush_in_flight(&self) {
        if !self.session.log().has_in_flight() {
            return;
        }
        let err = self.limits.error_json().unwrap_or_else(|| {
            Error::Lua {
                message: "the call was cut off before it finished".into(),
            }
            .to_json()
        });
        self.session.log().flush_in_flight(&err);
    }

    pub fn meta(&self) -> Meta {
        Meta {
            permission_bypassed: self.options.force,
            dry_run: self.options.dry_run,
            read_only: self.options.read_only,
            offline: self.options.offline,
            warnings: match self.session.loaded_registry() {
                Some(reg) => reg.warnings().to_vec(),
                None => Vec::new(),
            },
        }
    }

    /// The envelope of a run stopped from outside the VM (the watchdog): no Lua is touched.
    pub fn emergency_outcome(&self, kind: limits::Kind) -> Outcome {
        let err = self.limits.error_json_for(kind);
        self.flush_in_flight();
        Outcome {
            success: false,
            output: self.output.captured(),
            error: Some(err),
            result: None,
            execution_time_ms: self.limits.elapsed().as_secs_f64() * 1000.0,
            memory_usage: self.limits.peak_memory() as u64,
            integration_calls: self.session.log().entries(),
            meta: self.meta(),
        }
    }
}

/// One Lua state with its host functions installed.
pub struct Runtime {
    lua: Lua,
    shared: Arc<Shared>,
}

impl Runtime {
    pub fn new(options: Options) -> Result<Runtime, Error> {
        let shared = Shared::new(options);
        let lua = Self::build(&shared).map_err(|e| Error::Lua {
            message: format!("cannot create the Lua state: {e}"),
        })?;
        Ok(Runtime { lua, shared })
    }

    fn build(shared: &Arc<Shared>) -> mlua::Result<Lua> {
        let lua = sandbox::new_state(&shared.limits)?;
        lua.set_app_data(shared.clone());
        json::install(&lua)?;
        output::install(&lua, shared)?;
        regex::install(&lua)?;
        match shared.options.mode {
            Mode::Integrations => {
                docs::install(&lua, shared)?;
                app::install(&lua, shared)?;
                mcp::install(&lua, shared)?;
            }
            Mode::McpOnly => {
                mcp::install(&lua, shared)?;
                mcp::install_app(&lua)?;
            }
        }
        // Only now the limits apply: setup itself is trusted and small.
        limits::install(&lua, &shared.limits)?;
        Ok(lua)
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub fn lua(&self) -> &Lua {
        &self.lua
    }

    /// Run one chunk and describe the outcome. Never panics and never returns without an outcome.
    pub async fn run(&self, code: &str, chunk_name: &str) -> Outcome {
        self.run_bytes(code.as_bytes(), chunk_name).await
    }

    /// [`Runtime::run`] for source that need not be UTF-8 (Lua source is bytes: a file may hold
    /// Latin-1 string literals).
    pub async fn run_bytes(&self, code: &[u8], chunk_name: &str) -> Outcome {
        self.shared.limits.reset();
        self.shared.session.log().clear();
        self.shared.output.clear();
        let started = Instant::now();
        let result = self.execute(code, chunk_name).await;
        self.finish(result, started)
    }

    /// Run one REPL entry: `Ok(None)` asks for more input (the chunk is incomplete).
    pub async fn run_repl(&self, code: &str) -> Option<Outcome> {
        // An expression first (so `1 + 1` prints 2), then a statement.
        let as_expr = format!("return {code}");
        let source = if self.compile(as_expr.as_bytes(), "=stdin").is_ok() {
            as_expr
        } else {
            match self.compile(code.as_bytes(), "=stdin") {
                Err(mlua::Error::SyntaxError {
                    incomplete_input: true,
                    ..
                }) => return None,
                _ => code.to_string(),
            }
        };
        Some(self.run(&source, "=stdin").await)
    }

    fn compile(&self, code: &[u8], name: &str) -> mlua::Result<Function> {
        self.lua
            .load(code)
            .set_name(name)
            .set_mode(ChunkMode::Text)
            .into_function()
    }

    async fn execute(&self, code: &[u8], chunk_name: &str) -> Result<Vec<Json>, Json> {
        let limits = &self.shared.limits;
        let chunk = self
            .compile(code, chunk_name)
            .map_err(|e| lua_error_json(&e))?;
        let run: Function = self
            .lua
            .named_registry_value(sandbox::RUN)
            .map_err(|e| lua_error_json(&e))?;
        let mut fut = Box::pin(run.call_async::<MultiValue>(chunk));
        let deadline = tokio::time::Instant::from_std(limits.deadline());
        // The VM runs only while its future is polled: that is when the stall clock (the
        // watchdog's view of a long C call) and the VM-time clock run, even while other
        // branches of the script wait on HTTP.
        let mut vm = std::future::poll_fn(|cx| {
            let _running = limits.enter_running();
            fut.as_mut().poll(cx)
        });
        // A signal stops the run even while it waits on HTTP (the hook only sees running Lua).
        let signalled = async {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                if matches!(
                    limits.tripped(),
                    Some(limits::Kind::Interrupt | limits::Kind::Terminate | limits::Kind::Hangup)
                ) {
                    break;
                }
            }
        };
        let outcome = tokio::select! {
            r = &mut vm => Some(r),
            _ = tokio::time::sleep_until(deadline) => None,
            _ = signalled => None,
        };
        if outcome.is_none() {
            limits.trip(limits::Kind::Timeout);
        }
        // From here on the host runs Lua itself (dropping the future, `__tostring` of an error
        // value, converting the results): all of it inside the CPU limit.
        let _running = limits.enter_running();
        drop(vm);
        drop(fut);
        self.shared.limits.note_memory(self.lua.used_memory());
        if let Some(kind) = limits.tripped()
            && kind != limits::Kind::Done
        {
            return Err(limits.error_json_for(kind));
        }
        let values = match outcome {
            None => return Err(limits.error_for(limits::Kind::Timeout).to_json()),
            Some(Err(e)) => {
                if sandbox::is_memory(&e) {
                    limits.trip(limits::Kind::Memory);
                    return Err(limits.error_for(limits::Kind::Memory).to_json());
                }
                return Err(lua_error_json(&e));
            }
            Some(Ok(values)) => values,
        };
        let mut it = values.into_iter();
        match it.next() {
            Some(Value::Boolean(true)) => Ok(json::result_values(&self.lua, it)),
            _ => {
                let err = it.next().unwrap_or(Value::Nil);
                let j = self.error_value_json(&err);
                // Describing the error runs the script's `__tostring`: a limit it hit (a loop)
                // is what stopped the run, not the error it was describing.
                match limits.tripped() {
                    Some(kind) if kind != limits::Kind::Done => Err(limits.error_json_for(kind)),
                    _ => Err(j),
                }
            }
        }
    }

    /// The envelope's `error` for a value the script raised.
    fn error_value_json(&self, v: &Value) -> Json {
        let limits = &self.shared.limits;
        if sandbox::is_memory_error(v) {
            limits.trip(limits::Kind::Memory);
            return limits.error_for(limits::Kind::Memory).to_json();
        }
        match v {
            Value::Table(t) => {
                let is_ours = match (
                    t.metatable(),
                    self.lua.named_registry_value::<Table>(sandbox::ERR_MT),
                ) {
                    (Some(mt), Ok(ours)) => mt.to_pointer() == ours.to_pointer(),
                    _ => false,
                };
                if is_ours {
                    let mut j = json::result_value(&self.lua, v);
                    if let Json::Object(map) = &mut j {
                        for k in [
                            "code",
                            "message",
                            "status",
                            "type",
                            "request_id",
                            "retry_after",
                        ] {
                            map.entry(k).or_insert(Json::Null);
                        }
                    }
                    return j;
                }
                let code = t
                    .raw_get::<Option<String>>("code")
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| "lua_error".into());
                let message = self.describe(v);
                let mut j = Error::Lua { message }.to_json();
                j["code"] = json!(code);
                j["value"] = json::result_value(&self.lua, v);
                j
            }
            Value::Error(e) => {
                if let Some(k) = e.downcast_ref::<Error>() {
                    return k.to_json();
                }
                lua_error_json(e)
            }
            _ => Error::Lua {
                message: self.describe(v),
            }
            .to_json(),
        }
    }

    /// A message for any error value: `tostring` when it works, a description when it fails.
    fn describe(&self, v: &Value) -> String {
        match v {
            Value::String(s) => s.to_string_lossy(),
            Value::Nil => "(error object is a nil value)".into(),
            Value::Table(t) => {
                let via_tostring = self
                    .lua
                    .named_registry_value::<Function>(sandbox::TOSTRING)
                    .and_then(|f| f.call::<String>(v.clone()));
                match via_tostring {
                    Ok(s) if !s.starts_with("table: 0x") => s,
                    _ => match t.raw_get::<Option<String>>("message") {
                        Ok(Some(m)) => m,
                        _ => "(error object is a table value)".into(),
                    },
                }
            }
            other => format!("(error object is a {} value)", other.type_name()),
        }
    }

    fn finish(&self, result: Result<Vec<Json>, Json>, started: Instant) -> Outcome {
        let shared = &self.shared;
        shared.flush_in_flight();
        let memory = shared.limits.peak_memory().max(self.lua.used_memory());
        let (success, error, result) = match result {
            Ok(values) => (true, None, Some(values)),
            Err(e) => (false, Some(e), None),
        };
        Outcome {
            success,
            output: shared.output.captured(),
            error,
            result,
            execution_time_ms: (started.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
            memory_usage: memory as u64,
            integration_calls: shared.session.log().entries(),
            meta: shared.meta(),
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // Finalizers that run while the state closes stop at their first instruction tick.
        self.shared.limits.finish();
    }
}

/// `{code: "lua_error", message}` for an mlua error, without mlua's decorations.
pub fn lua_error_json(e: &mlua::Error) -> Json {
    if let Some(k) = e.downcast_ref::<Error>() {
        return k.to_json();
    }
    Error::Lua {
        message: clean_message(e),
    }
    .to_json()
}

/// mlua's messages carry a kind prefix and a host traceback; scripts want the Lua message.
pub fn clean_message(e: &mlua::Error) -> String {
    match e {
        mlua::Error::RuntimeError(m) | mlua::Error::MemoryError(m) => strip_traceback(m),
        mlua::Error::SyntaxError { message, .. } => strip_traceback(message),
        mlua::Error::CallbackError { cause, .. } => clean_message(cause),
        mlua::Error::WithContext { cause, .. } => clean_message(cause),
        mlua::Error::ExternalError(x) => x.to_string(),
        other => strip_traceback(&other.to_string()),
    }
}

fn strip_traceback(m: &str) -> String {
    match m.find("\nstack traceback:") {
        Some(i) => m[..i].to_string(),
        None => m.to_string(),
    }
}

/// Build an error table (the value `pcall` returns for a failed integration call).
pub fn error_table(
    lua: &Lua,
    err: &Json,
    function: Option<&str>,
    account: Option<&str>,
) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    if let Json::Object(map) = err {
        for (k, v) in map {
            if v.is_null() {
                continue;
            }
            t.raw_set(
                k.as_str(),
                json::from_json(lua, v, json::Nulls::DropInObjects)?,
            )?;
        }
    }
    if let Some(f) = function {
        t.raw_set("function", f)?;
    }
    if let Some(a) = account {
        t.raw_set("account", a)?;
    }
    let mt: Table = lua.named_registry_value(sandbox::ERR_MT)?;
    t.set_metatable(Some(mt))?;
    Ok(t)
}

/// The shared state of the runtime that owns `lua`.
pub(crate) fn shared_of(lua: &Lua) -> mlua::Result<Arc<Shared>> {
    lua.app_data_ref::<Arc<Shared>>()
        .map(|s| s.clone())
        .ok_or_else(|| mlua::Error::runtime("kosmo runtime state is missing"))
}

//! `print` and `dump`: streamed to stdout line by line in text mode, captured for the `--json`
//! envelope otherwise, and capped (the `output` limit) so a print loop cannot flood either.
//!
//! `print` renders tables with the `dump` format instead of `table: 0x...` (tables with a
//! `__tostring` metamethod use it). `dump(v)` prints pretty JSON with sorted keys (values JSON
//! cannot hold appear as `"<function>"` and the like) and returns its arguments.

use std::io::Write;
use std::sync::{Arc, Mutex};

use mlua::{Function, Lua, MultiValue, Value};

use super::limits::LimitState;
use super::{HostError, Shared, json, lift, sandbox};

/// Where script output goes.
pub struct Output {
    capture: bool,
    buf: Mutex<String>,
    limits: Arc<LimitState>,
}

impl Output {
    pub fn new(capture: bool, limits: Arc<LimitState>) -> Output {
        Output {
            capture,
            buf: Mutex::new(String::new()),
            limits,
        }
    }

    /// Write one line (a newline is added).
    pub fn line(&self, text: &str) -> Result<(), crate::Error> {
        self.limits.count_output(text.len() + 1)?;
        if self.capture {
            if let Ok(mut b) = self.buf.lock() {
                b.push_str(text);
                b.push('\n');
            }
        } else {
            // A slow reader on the other end of the pipe is not the script burning CPU, but
            // output is no sign of life either: a script stuck in C calls between prints must
            // still reach its CPU limit.
            let _waiting = self.limits.enter_quiet();
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.write_all(b"\n");
            let _ = out.flush();
        }
        Ok(())
    }

    /// The captured output, without its final newline.
    pub fn captured(&self) -> String {
        let b = self.buf.lock().map(|b| b.clone()).unwrap_or_default();
        match b.strip_suffix('\n') {
            Some(s) => s.to_string(),
            None => b,
        }
    }

    pub fn clear(&self) {
        if let Ok(mut b) = self.buf.lock() {
            b.clear();
        }
    }
}

/// The `dump` rendering of a value.
pub fn render(lua: &Lua, v: &Value) -> String {
    render_budgeted(lua, v).unwrap_or_else(|e| format!("<{e}>"))
}

/// The `dump` rendering, built in a buffer counted against the memory limit and stopped once it
/// is longer than the output still allowed: a shared 30 MB string referenced a thousand times
/// trips a limit instead of growing to gigabytes.
fn render_budgeted(lua: &Lua, v: &Value) -> Result<String, crate::Error> {
    match v {
        Value::Nil => Ok("nil".into()),
        Value::String(s) => Ok(serde_json::to_string(&s.to_string_lossy()).unwrap_or_default()),
        other => {
            let room = super::shared_of(lua).ok().map(|sh| {
                let l = &sh.limits;
                l.limits
                    .max_output
                    .saturating_sub(l.output_bytes.load(std::sync::atomic::Ordering::SeqCst))
                    .saturating_add(1)
            });
            match json::encode_with(lua, other, json::Mode::Lenient, true, room, |text| {
                String::from_utf8_lossy(text).into_owned()
            }) {
                Ok(s) => Ok(s),
                Err(json::EncodeError::Invalid(e)) => {
                    Ok(serde_json::to_string(&format!("<{e}>")).unwrap_or_default())
                }
                Err(json::EncodeError::Limit(e)) => Err(e),
            }
        }
    }
}
/// A limit hit while rendering: trip it for the run and raise it.
fn limit_error(lua: &Lua, e: crate::Error) -> mlua::Error {
    let Ok(sh) = super::shared_of(lua) else {
        return mlua::Error::external(e);
    };
    if e.to_json()["limit"] == "output" {
        sh.limits.trip(super::limits::Kind::Output);
    }
    sh.limits
        .lua_error()
        .unwrap_or_else(|| mlua::Error::external(e))
}

/// How `print` shows one value.
fn print_text(lua: &Lua, tostring: &Function, v: &Value) -> mlua::Result<String> {
    Ok(match v {
        Value::String(s) => s.to_string_lossy(),
        Value::Integer(i) => i.to_string(),
        Value::Table(t) => {
            let has_tostring = t
                .metatable()
                .map(|mt| mt.raw_get::<Value>("__tostring").map(|f| !f.is_nil()))
                .transpose()?
                .unwrap_or(false);
            if has_tostring {
                tostring
                    .call::<mlua::LuaString>(v.clone())?
                    .to_string_lossy()
            } else {
                render_budgeted(lua, v).map_err(|e| limit_error(lua, e))?
            }
        }
        other => tostring
            .call::<mlua::LuaString>(other.clone())?
            .to_string_lossy(),
    })
}

fn emit(shared: &Shared, text: &str) -> Result<(), HostError> {
    shared.output.line(text).map_err(|_| {
        HostError::Lua(
            shared
                .limits
                .lua_error()
                .unwrap_or_else(|| mlua::Error::runtime("output limit exceeded")),
        )
    })
}

pub fn install(lua: &Lua, shared: &Arc<Shared>) -> mlua::Result<()> {
    let g = lua.globals();
    let tostring: Function = lua.named_registry_value(sandbox::TOSTRING)?;

    let sh = shared.clone();
    let ts = tostring.clone();
    g.raw_set(
        "print",
        lift(lua, move |lua, args: MultiValue| {
            let mut line = String::new();
            for (i, v) in args.iter().enumerate() {
                if i > 0 {
                    line.push('\t');
                }
                line.push_str(&print_text(lua, &ts, v)?);
                // Check as the line grows: `print(s, s, s, ...)` must not build gigabytes first.
                if line.len() > sh.limits.limits.max_output {
                    sh.limits.trip(super::limits::Kind::Output);
                    return Err(HostError::Lua(
                        sh.limits
                            .lua_error()
                            .unwrap_or_else(|| mlua::Error::runtime("output limit exceeded")),
                    ));
                }
            }
            emit(&sh, &line)?;
            Ok(())
        })?,
    )?;

    let sh = shared.clone();
    g.raw_set(
        "dump",
        lift(lua, move |lua, args: MultiValue| {
            if args.is_empty() {
                emit(&sh, "nil")?;
            }
            for v in args.iter() {
                let text = render_budgeted(lua, v).map_err(|e| limit_error(lua, e))?;
                emit(&sh, &text)?;
            }
            Ok(args)
        })?,
    )?;
    Ok(())
}

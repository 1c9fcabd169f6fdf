//! `regex.*` on the `regex` crate: linear time in the subject, so no pattern can backtrack
//! catastrophically, with size limits on the compiled program.
//!
//! Patterns are plain (`\d+`) or in the `/pattern/flags` form existing scripts use (`/abc/i`);
//! flags `i m s x U` (case-insensitive, multi-line, dot-all, verbose, swap greed) may also be
//! passed as the last argument. Captures: `[0]` is the whole match, `[1]..[n]` the groups, named
//! groups also by name; a group that did not take part is absent.
//!
//! - `regex.match(s, p[, flags])` → capture table or nil
//! - `regex.match_all(s, p[, flags])` → `{[0] = {all matches}, [1] = {group 1 of each}, name = {...}}`
//!   (pattern order, as the PHP predecessor), `{}` when nothing matches
//! - `regex.gsub(s, p, repl[, limit])` → new string, count; `repl` is a string with `$1`/`${name}`,
//!   a function of the capture table, or a table looked up by the whole match
//! - `regex.split(s, p[, limit])` → list of pieces
//! - `regex.escape(s)` → `s` with every regex metacharacter escaped

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mlua::{Function, Lua, MultiValue, Table, Value};
use regex::{Captures, Regex, RegexBuilder};

use super::{HostError, HostResult, json, lift};

const MAX_PATTERN: usize = 32 * 1024;
const SIZE_LIMIT: usize = 4 << 20;
const CACHE: usize = 128;

type Cache = Arc<Mutex<HashMap<(String, String), Regex>>>;

fn arg_str(args: &MultiValue, i: usize, func: &str, what: &str) -> HostResult<String> {
    match args.get(i) {
        Some(Value::String(s)) => Ok(s.to_string_lossy()),
        Some(Value::Integer(n)) => Ok(n.to_string()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        other => Err(HostError::msg(format!(
            "regex.{func}: expected string {what}, got {}",
            other.map(|v| v.type_name()).unwrap_or("nil")
        ))),
    }
}

/// Count host bytes held for the script (the subject's copy, a result being built) against the
/// run's memory limit; `None` outside a runtime (unit tests).
fn reserve(lua: &Lua, bytes: usize) -> HostResult<Option<super::limits::Reservation>> {
    match super::shared_of(lua) {
        Ok(sh) => sh
            .limits
            .reserve(lua, bytes)
            .map(Some)
            .map_err(|e| HostError::Lua(mlua::Error::external(e))),
        Err(_) => Ok(None),
    }
}

fn opt_str(args: &MultiValue, i: usize) -> Option<String> {
    match args.get(i) {
        Some(Value::String(s)) => Some(s.to_string_lossy()),
        _ => None,
    }
}

/// Split `/pattern/flags` into its parts; anything else is a plain pattern.
pub fn parse_pattern(p: &str) -> (String, String) {
    if let Some(rest) = p.strip_prefix('/')
        && let Some(end) = rest.rfind('/')
    {
        let flags = &rest[end + 1..];
        if flags.chars().all(|c| "imsxuUD".contains(c)) {
            return (rest[..end].to_string(), flags.to_string());
        }
    }
    (p.to_string(), String::new())
}

fn compile(cache: &Cache, func: &str, pattern: &str, extra_flags: &str) -> HostResult<Regex> {
    let (pat, mut flags) = parse_pattern(pattern);
    flags.push_str(extra_flags);
    if pat.len() > MAX_PATTERN {
        return Err(HostError::msg(format!(
            "regex.{func}: pattern longer than {MAX_PATTERN} bytes"
        )));
    }
    let key = (pat.clone(), flags.clone());
    if let Ok(c) = cache.lock()
        && let Some(r) = c.get(&key)
    {
        return Ok(r.clone());
    }
    let mut b = RegexBuilder::new(&pat);
    b.size_limit(SIZE_LIMIT)
        .dfa_size_limit(SIZE_LIMIT)
        .nest_limit(100);
    for c in flags.chars() {
        match c {
            'i' => b.case_insensitive(true),
            'm' => b.multi_line(true),
            's' => b.dot_matches_new_line(true),
            'x' => b.ignore_whitespace(true),
            'U' => b.swap_greed(true),
            'u' | 'D' => &mut b,
            other => {
                return Err(HostError::msg(format!(
                    "regex.{func}: unknown flag '{other}' (use i, m, s, x, U)"
                )));
            }
        };
    }
    let re = b
        .build()
        .map_err(|e| HostError::msg(format!("regex.{func}: invalid pattern: {e}")))?;
    if let Ok(mut c) = cache.lock() {
        if c.len() >= CACHE {
            c.clear();
        }
        c.insert(key, re.clone());
    }
    Ok(re)
}

fn captures_table(lua: &Lua, re: &Regex, caps: &Captures) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    for (i, name) in re.capture_names().enumerate() {
        if let Some(m) = caps.get(i) {
            t.raw_set(i, m.as_str())?;
            if let Some(n) = name {
                t.raw_set(n, m.as_str())?;
            }
        }
    }
    Ok(t)
}

fn limit_arg(args: &MultiValue, i: usize, func: &str) -> HostResult<Option<usize>> {
    match args.get(i) {
        None | Some(Value::Nil) => Ok(None),
        Some(Value::Integer(n)) if *n < 0 => Ok(None),
        Some(Value::Integer(n)) => Ok(Some(*n as usize)),
        Some(Value::Number(n)) if *n < 0.0 => Ok(None),
        Some(Value::Number(n)) if n.fract() == 0.0 => Ok(Some(*n as usize)),
        Some(other) => Err(HostError::msg(format!(
            "regex.{func}: expected an integer limit, got {}",
            other.type_name()
        ))),
    }
}

pub fn install(lua: &Lua) -> mlua::Result<()> {
    let cache: Cache = Arc::new(Mutex::new(HashMap::new()));
    let m = lua.create_table()?;

    let c = cache.clone();
    m.raw_set(
        "match",
        lift(lua, move |lua, args: MultiValue| {
            let s = arg_str(&args, 0, "match", "subject")?;
            let p = arg_str(&args, 1, "match", "pattern")?;
            let _held = reserve(lua, s.len())?;
            let re = compile(&c, "match", &p, &opt_str(&args, 2).unwrap_or_default())?;
            Ok(match re.captures(&s) {
                Some(caps) => Value::Table(captures_table(lua, &re, &caps)?),
                None => Value::Nil,
            })
        })?,
    )?;

    let c = cache.clone();
    m.raw_set(
        "match_all",
        lift(lua, move |lua, args: MultiValue| {
            let s = arg_str(&args, 0, "match_all", "subject")?;
            let p = arg_str(&args, 1, "match_all", "pattern")?;
            let _held = reserve(lua, s.len())?;
            let re = compile(&c, "match_all", &p, &opt_str(&args, 2).unwrap_or_default())?;
            let out = lua.create_table()?;
            let mut any = false;
            let names: Vec<Option<&str>> = re.capture_names().collect();
            let cols: Vec<Table> = (0..names.len())
                .map(|_| json::empty_array(lua))
                .collect::<mlua::Result<_>>()?;
            for (row, caps) in re.captures_iter(&s).enumerate() {
                any = true;
                for (i, col) in cols.iter().enumerate() {
                    let v = caps.get(i).map(|m| m.as_str()).unwrap_or("");
                    col.raw_set(row + 1, v)?;
                }
            }
            if any {
                for (i, col) in cols.into_iter().enumerate() {
                    if let Some(Some(n)) = names.get(i) {
                        out.raw_set(*n, col.clone())?;
                    }
                    out.raw_set(i, col)?;
                }
            }
            Ok(out)
        })?,
    )?;

    let c = cache.clone();
    m.raw_set(
        "gsub",
        lift(lua, move |lua, args: MultiValue| {
            let s = arg_str(&args, 0, "gsub", "subject")?;
            let p = arg_str(&args, 1, "gsub", "pattern")?;
            let re = compile(&c, "gsub", &p, "")?;
            let limit = limit_arg(&args, 3, "gsub")?;
            let repl = args.get(2).cloned().unwrap_or(Value::Nil);
            let mut held = reserve(lua, s.len().saturating_mul(2))?;
            let mut out = String::with_capacity(s.len());
            let mut last = 0;
            let mut count = 0usize;
            for caps in re.captures_iter(&s) {
                if limit.is_some_and(|l| count >= l) {
                    break;
                }
                let Some(whole) = caps.get(0) else { continue };
                out.push_str(&s[last..whole.start()]);
                let piece = match &repl {
                    Value::String(r) => {
                        let mut dst = String::new();
                        caps.expand(&r.to_string_lossy(), &mut dst);
                        dst
                    }
                    Value::Function(f) => {
                        let f: &Function = f;
                        let t = captures_table(lua, &re, &caps)?;
                        match f.call::<Value>(t)? {
                            Value::String(r) => r.to_string_lossy(),
                            Value::Integer(n) => n.to_string(),
                            Value::Number(n) => n.to_string(),
                            Value::Nil | Value::Boolean(false) => whole.as_str().to_string(),
                            other => {
                                return Err(HostError::msg(format!(
                                    "regex.gsub: replacement function returned a {}",
                                    other.type_name()
                                )));
                            }
                        }
                    }
                    Value::Table(t) => match t.raw_get::<Value>(whole.as_str())? {
                        Value::String(r) => r.to_string_lossy(),
                        Value::Integer(n) => n.to_string(),
                        Value::Number(n) => n.to_string(),
                        _ => whole.as_str().to_string(),
                    },
                    other => {
                        return Err(HostError::msg(format!(
                            "regex.gsub: expected string, function or table replacement, got {}",
                            other.type_name()
                        )));
                    }
                };
                out.push_str(&piece);
                last = whole.end();
                count += 1;
                if let Some(r) = &mut held {
                    r.ensure(s.len().saturating_add(out.capacity()))
                        .map_err(|e| HostError::Lua(mlua::Error::external(e)))?;
                }
            }
            out.push_str(&s[last..]);
            if let Some(r) = &mut held {
                r.ensure(s.len().saturating_add(out.capacity()))
                    .map_err(|e| HostError::Lua(mlua::Error::external(e)))?;
            }
            // Made while the buffer is still counted, so the Lua copy fits the same budget.
            let result = lua.create_string(&out)?;
            drop(out);
            drop(held);
            Ok((result, count))
        })?,
    )?;

    let c = cache.clone();
    m.raw_set(
        "split",
        lift(lua, move |lua, args: MultiValue| {
            let s = arg_str(&args, 0, "split", "subject")?;
            let p = arg_str(&args, 1, "split", "pattern")?;
            let re = compile(&c, "split", &p, "")?;
            let limit = limit_arg(&args, 2, "split")?;
            let _held = reserve(lua, s.len())?;
            // Pieces go straight into the Lua table (Lua's allocator counts them): no host list.
            let t = json::empty_array(lua)?;
            let push = |i: usize, piece: &str| t.raw_set(i + 1, piece);
            match limit {
                Some(l) if l > 0 => {
                    for (i, piece) in re.splitn(&s, l).enumerate() {
                        push(i, piece)?;
                    }
                }
                _ => {
                    for (i, piece) in re.split(&s).enumerate() {
                        push(i, piece)?;
                    }
                }
            }
            Ok(t)
        })?,
    )?;

    m.raw_set(
        "escape",
        lift(lua, |_, args: MultiValue| {
            let s = arg_str(&args, 0, "escape", "argument")?;
            Ok(regex::escape(&s))
        })?,
    )?;

    lua.globals().raw_set("regex", m)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slash_form_and_flags() {
        assert_eq!(parse_pattern("/ab+c/i"), ("ab+c".into(), "i".into()));
        assert_eq!(parse_pattern("/a/b/ms"), ("a/b".into(), "ms".into()));
        assert_eq!(
            parse_pattern("/path/to"),
            ("/path/to".into(), String::new())
        );
        assert_eq!(parse_pattern("plain"), ("plain".into(), String::new()));
        let cache: Cache = Arc::new(Mutex::new(HashMap::new()));
        assert!(
            compile(&cache, "match", "/ABC/i", "")
                .unwrap()
                .is_match("xabcx")
        );
        assert!(compile(&cache, "match", "a", "q").is_err());
        assert!(compile(&cache, "match", "(?:a{1000}){1000}", "").is_err());
    }
}

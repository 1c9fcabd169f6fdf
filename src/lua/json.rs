//! `json.*` and the one Lua ⇄ JSON bridge every other module uses.
//!
//! Lua has one table type for JSON's two containers, so the bridge keeps two marker metatables:
//! tables decoded from JSON (and integration results) carry the array or object marker, and
//! `json.array{}` / `json.object{}` set them by hand. When encoding, a marker decides the shape
//! of a table whose keys fit it (so `[]` and `{}` round-trip); unmarked tables are arrays when
//! their keys are exactly `1..n`, objects otherwise, and `{}` is an object. Object keys are
//! written sorted, so the output is deterministic. `json.null` is a sentinel for JSON `null`:
//! `json.decode` keeps it everywhere; integration results drop null object fields (so
//! `if msg.stop_sequence then` works) and keep it inside arrays (so positions survive).

use std::collections::BTreeMap;

use mlua::{Lua, LuaSerdeExt, MultiValue, ObjectLike, Table, Value};
use serde_json::{Map, Number, Value as Json};

use super::{HostError, HostResult, lift};

/// Nesting deeper than this is refused (and guards the host stack).
pub const MAX_DEPTH: usize = 200;

/// The marker metatables, kept as app data so every module finds them.
#[derive(Clone)]
pub struct Markers {
    pub array: Table,
    pub object: Table,
}

/// What to do with values JSON cannot hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Refuse them (arguments, `json.encode`).
    Strict,
    /// Render them as `"<function>"` and the like (results, `dump`).
    Lenient,
}

/// How `null` becomes Lua.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nulls {
    /// `json.null` everywhere (`json.decode`).
    Keep,
    /// Dropped from objects, `json.null` in arrays (integration results, events).
    DropInObjects,
}

pub fn markers(lua: &Lua) -> mlua::Result<Markers> {
    lua.app_data_ref::<Markers>()
        .map(|m| m.clone())
        .ok_or_else(|| mlua::Error::runtime("json markers are not installed"))
}

fn is_null(v: &Value) -> bool {
    matches!(v, Value::LightUserData(p) if p.0.is_null())
}

/// Lua → JSON.
pub fn to_json(lua: &Lua, value: &Value, mode: Mode) -> Result<Json, String> {
    let m = markers(lua).map_err(|e| e.to_string())?;
    conv(&m, value, mode, 0, &mut Walk::new(lua))
}

/// The `result` list of the envelope, under one shared size budget.
pub fn result_values(lua: &Lua, values: impl IntoIterator<Item = Value>) -> Vec<Json> {
    let mut w = Walk::new(lua);
    let m = markers(lua);
    values
        .into_iter()
        .map(|v| match &m {
            Ok(m) => conv(m, &v, Mode::Lenient, 0, &mut w)
                .unwrap_or_else(|e| Json::String(format!("<{e}>"))),
            Err(e) => Json::String(format!("<{e}>")),
        })
        .collect()
}

/// State of one conversion: the tables being visited (cycles) and the bytes left to produce.
struct Walk {
    stack: Vec<usize>,
    budget: usize,
}

impl Walk {
    /// The same 30 MB string referenced a thousand times is cheap in Lua and 30 GB as JSON: the
    /// host-side tree is capped at the memory the run has left under its limit (plus 8 MiB, so a
    /// small result always fits), so it stays inside the one memory budget plus a fixed overhead.
    fn new(lua: &Lua) -> Walk {
        let left = match lua.app_data_ref::<std::sync::Arc<super::Shared>>() {
            Some(s) => s
                .limits
                .limits
                .memory
                .saturating_sub(lua.used_memory())
                .saturating_sub(s.limits.host_reserved()),
            None => 64 << 20,
        };
        Walk {
            stack: Vec::new(),
            budget: left.saturating_add(8 << 20),
        }
    }

    /// No size budget (the caller counts bytes itself).
    fn unbounded() -> Walk {
        Walk {
            stack: Vec::new(),
            budget: usize::MAX,
        }
    }

    fn charge(&mut self, bytes: usize, depth: usize) -> Result<(), String> {
        let cost = bytes + depth * 2 + 8;
        if cost > self.budget {
            return Err(
                "value too large to encode (larger than the memory left under --memory-limit)"
                    .into(),
            );
        }
        self.budget -= cost;
        Ok(())
    }
}

fn placeholder(kind: &str, mode: Mode) -> Result<Json, String> {
    match mode {
        Mode::Lenient => Ok(Json::String(format!("<{kind}>"))),
        Mode::Strict => Err(format!("cannot encode a {kind} as JSON")),
    }
}

fn conv(
    m: &Markers,
    value: &Value,
    mode: Mode,
    depth: usize,
    w: &mut Walk,
) -> Result<Json, String> {
    let len = match value {
        Value::String(s) => s.as_bytes().len(),
        _ => 0,
    };
    w.charge(len, depth)?;
    Ok(match value {
        Value::Nil => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Integer(i) => Json::from(*i),
        Value::Number(n) => match Number::from_f64(*n) {
            Some(n) => Json::Number(n),
            None if mode == Mode::Lenient => Json::Null,
            None => {
                return Err(format!(
                    "cannot encode {n} as JSON (NaN and infinity have no JSON form)"
                ));
            }
        },
        Value::String(s) => match s.to_str() {
            Ok(s) => Json::String(s.to_string()),
            Err(_) if mode == Mode::Lenient => {
                Json::String(String::from_utf8_lossy(&s.as_bytes()).into_owned())
            }
            Err(_) => return Err("cannot encode a string that is not valid UTF-8 as JSON".into()),
        },
        Value::LightUserData(p) if p.0.is_null() => Json::Null,
        Value::Table(t) => return conv_table(m, t, mode, depth, w),
        Value::Function(_) => return placeholder("function", mode),
        Value::Thread(_) => return placeholder("thread", mode),
        Value::Error(e) if mode == Mode::Lenient => Json::String(e.to_string()),
        Value::UserData(ud) if mode == Mode::Lenient => {
            // Host namespaces have a readable name (`app.integrations.<name>`).
            match ud.to_string() {
                Ok(s) if !s.starts_with("userdata") => Json::String(format!("<{s}>")),
                _ => Json::String("<userdata>".into()),
            }
        }
        _ => return placeholder("userdata", mode),
    })
}

fn key_string(k: &Value, mode: Mode) -> Result<String, String> {
    match k {
        Value::String(s) => match s.to_str() {
            Ok(s) => Ok(s.to_string()),
            Err(_) if mode == Mode::Lenient => {
                Ok(String::from_utf8_lossy(&s.as_bytes()).into_owned())
            }
            Err(_) => Err("cannot encode a key that is not valid UTF-8 as JSON".into()),
        },
        Value::Integer(i) => Ok(i.to_string()),
        Value::Number(n) if n.is_finite() => Ok(if n.fract() == 0.0 && n.abs() < 1e15 {
            format!("{}", *n as i64)
        } else {
            n.to_string()
        }),
        Value::Boolean(b) => Ok(b.to_string()),
        other if mode == Mode::Lenient => Ok(format!("<{}>", other.type_name())),
        other => Err(format!("cannot encode a {} key as JSON", other.type_name())),
    }
}

fn conv_table(
    m: &Markers,
    t: &Table,
    mode: Mode,
    depth: usize,
    w: &mut Walk,
) -> Result<Json, String> {
    let id = t.to_pointer() as usize;
    if w.stack.contains(&id) {
        return match mode {
            Mode::Lenient => Ok(Json::String("<cycle>".into())),
            Mode::Strict => Err("cannot encode a table that contains itself".into()),
        };
    }
    if depth >= MAX_DEPTH {
        return match mode {
            Mode::Lenient => Ok(Json::String("<too deep>".into())),
            Mode::Strict => Err(format!(
                "cannot encode tables nested more than {MAX_DEPTH} deep"
            )),
        };
    }
    let marker = t.metatable().map(|mt| mt.to_pointer());
    let want_array = marker == Some(m.array.to_pointer());
    let want_object = marker == Some(m.object.to_pointer());

    let mut entries: Vec<(Value, Value)> = Vec::new();
    t.for_each::<Value, Value>(|k, v| {
        entries.push((k, v));
        Ok(())
    })
    .map_err(|e| e.to_string())?;

    let n = entries.len();
    let is_sequence = entries.iter().all(|(k, _)| match k {
        Value::Integer(i) => *i >= 1 && (*i as u64) <= n as u64,
        _ => false,
    });
    let as_array = if n == 0 {
        want_array
    } else {
        is_sequence && !want_object
    };

    w.stack.push(id);
    let out = if as_array {
        let mut items: Vec<(i64, &Value)> = entries
            .iter()
            .map(|(k, v)| (if let Value::Integer(i) = k { *i } else { 0 }, v))
            .collect();
        items.sort_by_key(|(i, _)| *i);
        let mut arr = Vec::with_capacity(n);
        for (_, v) in items {
            arr.push(conv(m, v, mode, depth + 1, w)?);
        }
        Json::Array(arr)
    } else {
        let mut sorted = BTreeMap::new();
        for (k, v) in &entries {
            let key = key_string(k, mode)?;
            w.charge(key.len(), depth)?;
            sorted.insert(key, conv(m, v, mode, depth + 1, w)?);
        }
        Json::Object(sorted.into_iter().collect::<Map<String, Json>>())
    };
    w.stack.pop();
    Ok(out)
}

/// JSON → Lua, with markers on every container.
///
/// In a sandboxed run the value is built with Lua's allocator unbounded once an upper bound of
/// its size is reserved against the memory limit ([`super::limits::LimitState::unbounded`]): one
/// check for the whole value instead of a protected call per field.
pub fn from_json(lua: &Lua, value: &Json, nulls: Nulls) -> mlua::Result<Value> {
    let m = markers(lua)?;
    if let Ok(shared) = super::shared_of(lua) {
        let bound = lua_size_bound(value);
        if let Some(built) = shared
            .limits
            .unbounded(lua, bound, || from_json_with(lua, &m, value, nulls))
        {
            return built;
        }
    }
    from_json_with(lua, &m, value, nulls)
}

/// An upper bound of the bytes Lua 5.4 allocates for `value` as [`from_json_with`] builds it
/// (64-bit): a string is a 24-byte header plus its bytes and NUL, plus its share of the string
/// table's growth; a table is a 56-byte header, 16 bytes per array slot and a hash part of 32-byte
/// nodes rounded up to a power of two (so up to 64 bytes a key). Numbers, booleans and `json.null`
/// live in their slot.
pub fn lua_size_bound(value: &Json) -> usize {
    const STRING: usize = 64;
    const TABLE: usize = 128;
    match value {
        Json::Null | Json::Bool(_) | Json::Number(_) => 0,
        Json::String(s) => STRING + s.len(),
        Json::Array(items) => items.iter().fold(TABLE + 32 * items.len(), |acc, v| {
            acc.saturating_add(lua_size_bound(v))
        }),
        Json::Object(map) => map.iter().fold(TABLE, |acc, (k, v)| {
            acc.saturating_add(64 + STRING + k.len())
                .saturating_add(lua_size_bound(v))
        }),
    }
}

fn from_json_with(lua: &Lua, m: &Markers, value: &Json, nulls: Nulls) -> mlua::Result<Value> {
    Ok(match value {
        Json::Null => lua.null(),
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::String(lua.create_string(s)?),
        Json::Array(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, v) in items.iter().enumerate() {
                t.raw_set(i + 1, from_json_with(lua, m, v, nulls)?)?;
            }
            t.set_metatable(Some(m.array.clone()))?;
            Value::Table(t)
        }
        Json::Object(map) => {
            let t = lua.create_table_with_capacity(0, map.len())?;
            for (k, v) in map {
                if v.is_null() && nulls == Nulls::DropInObjects {
                    continue;
                }
                t.raw_set(k.as_str(), from_json_with(lua, m, v, nulls)?)?;
            }
            t.set_metatable(Some(m.object.clone()))?;
            Value::Table(t)
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Host memory inside the run's budget: `json.decode` builds Lua values straight from the parser
// (no intermediate tree on the host), and `json.encode` / `dump` write the text straight from
// the Lua values into a buffer reserved against the memory limit.

/// Builds Lua values while the parser reads: the only host memory is the parser's stack.
struct LuaSeed<'a> {
    lua: &'a Lua,
    m: &'a Markers,
    nulls: Nulls,
    /// The first error from Lua itself (out of memory, a tripped limit), kept intact.
    failed: &'a std::cell::RefCell<Option<mlua::Error>>,
}

impl LuaSeed<'_> {
    fn again(&self) -> Self {
        LuaSeed {
            lua: self.lua,
            m: self.m,
            nulls: self.nulls,
            failed: self.failed,
        }
    }

    fn lua_err<E: serde::de::Error>(&self, e: mlua::Error) -> E {
        let msg = e.to_string();
        let mut slot = self.failed.borrow_mut();
        if slot.is_none() {
            *slot = Some(e);
        }
        E::custom(msg)
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for LuaSeed<'_> {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for LuaSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Boolean(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Integer(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => Value::Integer(i),
            Err(_) => Value::Number(v as f64),
        })
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Number(v))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        match self.lua.create_string(v) {
            Ok(s) => Ok(Value::String(s)),
            Err(e) => Err(self.lua_err(e)),
        }
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(self.lua.null())
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(self.lua.null())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let t = self
            .lua
            .create_table_with_capacity(seq.size_hint().unwrap_or(0).min(1024), 0)
            .map_err(|e| self.lua_err::<A::Error>(e))?;
        let mut i = 0usize;
        while let Some(v) = seq.next_element_seed(self.again())? {
            i += 1;
            t.raw_set(i, v).map_err(|e| self.lua_err::<A::Error>(e))?;
        }
        t.set_metatable(Some(self.m.array.clone()))
            .map_err(|e| self.lua_err::<A::Error>(e))?;
        Ok(Value::Table(t))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        // The first few entries wait here so the table is created at its size (a table grown
        // key by key rehashes at every power of two); a bigger object goes on growing as
        // usual, so the host holds at most this many values per level.
        const FIRST: usize = 32;
        let mut first: Vec<(std::borrow::Cow<'de, str>, Value)> = Vec::new();
        let mut table: Option<Table> = None;
        while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let v = map.next_value_seed(self.again())?;
            // A dropped null still replaces an earlier duplicate of its key (last one wins).
            let v = if is_null(&v) && self.nulls == Nulls::DropInObjects {
                Value::Nil
            } else {
                v
            };
            match &table {
                Some(t) => t
                    .raw_set(k.as_ref(), v)
                    .map_err(|e| self.lua_err::<A::Error>(e))?,
                None if first.len() < FIRST => first.push((k, v)),
                None => {
                    let t = self.table_of(&mut first)?;
                    t.raw_set(k.as_ref(), v)
                        .map_err(|e| self.lua_err::<A::Error>(e))?;
                    table = Some(t);
                }
            }
        }
        let t = match table {
            Some(t) => t,
            None => self.table_of(&mut first)?,
        };
        t.set_metatable(Some(self.m.object.clone()))
            .map_err(|e| self.lua_err::<A::Error>(e))?;
        Ok(Value::Table(t))
    }
}

impl LuaSeed<'_> {
    /// A table sized for `entries`, holding them (in order, so a later duplicate wins).
    fn table_of<E: serde::de::Error>(
        &self,
        entries: &mut Vec<(std::borrow::Cow<'_, str>, Value)>,
    ) -> Result<Table, E> {
        let t = self
            .lua
            .create_table_with_capacity(0, entries.len())
            .map_err(|e| self.lua_err::<E>(e))?;
        for (k, v) in entries.drain(..) {
            t.raw_set(k.as_ref(), v).map_err(|e| self.lua_err::<E>(e))?;
        }
        Ok(t)
    }
}

/// Parse JSON text straight into Lua values (markers on every container).
pub fn decode_bytes(lua: &Lua, text: &[u8], nulls: Nulls) -> HostResult<Value> {
    let m = markers(lua)?;
    let failed = std::cell::RefCell::new(None);
    let seed = LuaSeed {
        lua,
        m: &m,
        nulls,
        failed: &failed,
    };
    let mut de = serde_json::Deserializer::from_slice(text);
    let parsed = serde::de::DeserializeSeed::deserialize(seed, &mut de).and_then(|v| {
        de.end()?;
        Ok(v)
    });
    match parsed {
        Ok(v) => Ok(v),
        Err(e) => match failed.into_inner() {
            Some(lua_err) => Err(HostError::Lua(lua_err)),
            None => Err(HostError::msg(format!("invalid JSON: {e}"))),
        },
    }
}

/// Why a JSONL row did not become a Lua value.
pub enum RowError {
    /// The line is not JSON (the parser's reason).
    Invalid(String),
    /// Lua itself failed (a tripped limit, out of memory).
    Lua(mlua::Error),
}

/// A JSONL row parsed straight into Lua values (nulls dropped from objects, as call results),
/// with no JSON tree in between. Like [`from_json`], it builds with Lua's allocator unbounded
/// when an upper bound of the value's size fits the memory budget: a value takes at most 64
/// bytes of Lua memory per byte of its text (the densest case, `[{},{},...]`, takes about 20).
pub fn decode_row(lua: &Lua, line: &[u8]) -> Result<Value, RowError> {
    let m = markers(lua).map_err(RowError::Lua)?;
    let decode = || {
        let failed = std::cell::RefCell::new(None);
        let seed = LuaSeed {
            lua,
            m: &m,
            nulls: Nulls::DropInObjects,
            failed: &failed,
        };
        let mut de = serde_json::Deserializer::from_slice(line);
        let parsed = serde::de::DeserializeSeed::deserialize(seed, &mut de).and_then(|v| {
            de.end()?;
            Ok(v)
        });
        parsed.map_err(|e| match failed.into_inner() {
            Some(lua_err) => RowError::Lua(lua_err),
            None => RowError::Invalid(e.to_string()),
        })
    };
    if let Ok(shared) = super::shared_of(lua) {
        let bound = line.len().saturating_mul(64).saturating_add(4096);
        if let Some(built) = shared.limits.unbounded(lua, bound, decode) {
            return built;
        }
        return decode();
    }
    decode()
}

/// A buffer whose every byte is reserved against the run's memory limit (and, for output, the
/// output limit), so encoding stops near the limit instead of building gigabytes first.
struct Budgeted {
    buf: Vec<u8>,
    reservation: Option<super::limits::Reservation>,
    /// Bytes the text may reach before the output limit trips (`dump`).
    output_room: Option<usize>,
    failed: Option<Error>,
}

use crate::error::Error;

impl std::io::Write for Budgeted {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let need = self.buf.len().saturating_add(data.len());
        if let Some(room) = self.output_room
            && need > room
        {
            self.failed = Some(Error::Limit {
                limit: "output".into(),
                message: String::new(),
            });
            return Err(std::io::Error::other("output limit"));
        }
        if need > self.buf.capacity() {
            let cap = self.buf.capacity();
            let new_cap = need.max(cap + cap / 2).max(16 * 1024);
            if let Some(r) = &mut self.reservation
                && let Err(e) = r.ensure(new_cap)
            {
                self.failed = Some(e);
                return Err(std::io::Error::other("memory limit"));
            }
            self.buf.reserve_exact(new_cap - self.buf.len());
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Serializes a Lua value in place, with the same rules as [`to_json`].
struct Enc<'a> {
    lua: &'a Lua,
    m: &'a Markers,
    value: &'a Value,
    mode: Mode,
    depth: usize,
    stack: &'a std::cell::RefCell<Vec<usize>>,
    /// The first conversion error (a message for the script).
    failed: &'a std::cell::RefCell<Option<String>>,
}

impl Enc<'_> {
    fn at<'b>(&'b self, value: &'b Value) -> Enc<'b> {
        Enc {
            lua: self.lua,
            m: self.m,
            value,
            mode: self.mode,
            depth: self.depth + 1,
            stack: self.stack,
            failed: self.failed,
        }
    }

    fn fail<E: serde::ser::Error>(&self, msg: String) -> E {
        let mut slot = self.failed.borrow_mut();
        if slot.is_none() {
            *slot = Some(msg.clone());
        }
        E::custom(msg)
    }
}

impl serde::Serialize for Enc<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        let t =
            match self.value {
                Value::Table(t) => t,
                // Strings are written from Lua's own bytes: no host copy of a big string.
                Value::String(text) => {
                    return match text.to_str() {
                        Ok(t) => s.serialize_str(&t),
                        Err(_) if self.mode == Mode::Lenient => {
                            s.serialize_str(&String::from_utf8_lossy(&text.as_bytes()))
                        }
                        Err(_) => Err(self
                            .fail("cannot encode a string that is not valid UTF-8 as JSON".into())),
                    };
                }
                other => {
                    // Other scalars (and placeholders) go through the tree converter: one node.
                    let j = conv(self.m, other, self.mode, self.depth, &mut Walk::unbounded())
                        .map_err(|e| self.fail::<S::Error>(e))?;
                    return j.serialize(s);
                }
            };
        let id = t.to_pointer() as usize;
        if self.stack.borrow().contains(&id) {
            return match self.mode {
                Mode::Lenient => s.serialize_str("<cycle>"),
                Mode::Strict => Err(self.fail("cannot encode a table that contains itself".into())),
            };
        }
        if self.depth >= MAX_DEPTH {
            return match self.mode {
                Mode::Lenient => s.serialize_str("<too deep>"),
                Mode::Strict => Err(self.fail(format!(
                    "cannot encode tables nested more than {MAX_DEPTH} deep"
                ))),
            };
        }
        let marker = t.metatable().map(|mt| mt.to_pointer());
        let want_array = marker == Some(self.m.array.to_pointer());
        let want_object = marker == Some(self.m.object.to_pointer());
        // First pass: the shape only. Holding a reference to every value of a table with
        // millions of entries would exhaust the host's reference slots (and memory), so an
        // array is then read one element at a time.
        let mut n = 0usize;
        let mut int_keys = true;
        let mut max = 0i64;
        t.for_each::<Value, Value>(|k, _| {
            n += 1;
            match k {
                Value::Integer(i) if i >= 1 => max = max.max(i),
                _ => int_keys = false,
            }
            Ok(())
        })
        .map_err(|e| self.fail::<S::Error>(e.to_string()))?;
        // Distinct integer keys from 1 with the largest at most their count are exactly 1..n.
        let is_sequence = int_keys && (max as u64) <= n as u64;
        let as_array = if n == 0 {
            want_array
        } else {
            is_sequence && !want_object
        };
        self.stack.borrow_mut().push(id);
        let out = if as_array {
            let mut seq = s.serialize_seq(Some(n))?;
            for i in 1..=n {
                let v: Value = t
                    .raw_get(i)
                    .map_err(|e| self.fail::<S::Error>(e.to_string()))?;
                seq.serialize_element(&self.at(&v))?;
            }
            seq.end()
        } else {
            let mut entries: Vec<(Value, Value)> = Vec::with_capacity(n);
            t.for_each::<Value, Value>(|k, v| {
                entries.push((k, v));
                Ok(())
            })
            .map_err(|e| self.fail::<S::Error>(e.to_string()))?;
            let mut sorted: BTreeMap<String, &Value> = BTreeMap::new();
            for (k, v) in &entries {
                let key = key_string(k, self.mode).map_err(|e| self.fail::<S::Error>(e))?;
                sorted.insert(key, v);
            }
            let mut map = s.serialize_map(Some(sorted.len()))?;
            for (k, v) in sorted {
                map.serialize_entry(&k, &self.at(v))?;
            }
            map.end()
        };
        self.stack.borrow_mut().pop();
        out
    }
}

/// Why encoding stopped.
pub enum EncodeError {
    /// The value cannot be JSON (a message for the script).
    Invalid(String),
    /// A limit tripped (memory, or output when `output_room` was given).
    Limit(Error),
}

/// Encode a Lua value as JSON text into a buffer reserved against the memory limit, and hand the
/// text to `finish` while the reservation still holds (so a Lua copy of it is counted too).
pub fn encode_with<T>(
    lua: &Lua,
    value: &Value,
    mode: Mode,
    pretty: bool,
    output_room: Option<usize>,
    finish: impl FnOnce(&[u8]) -> T,
) -> Result<T, EncodeError> {
    let m = markers(lua).map_err(|e| EncodeError::Invalid(e.to_string()))?;
    let reservation = match super::shared_of(lua) {
        Ok(sh) => Some(sh.limits.reserve(lua, 0).map_err(EncodeError::Limit)?),
        Err(_) => None,
    };
    let mut w = Budgeted {
        buf: Vec::new(),
        reservation,
        output_room,
        failed: None,
    };
    let stack = std::cell::RefCell::new(Vec::new());
    let failed = std::cell::RefCell::new(None);
    let enc = Enc {
        lua,
        m: &m,
        value,
        mode,
        depth: 0,
        stack: &stack,
        failed: &failed,
    };
    let r = if pretty {
        let mut ser = serde_json::Serializer::pretty(&mut w);
        serde::Serialize::serialize(&enc, &mut ser)
    } else {
        let mut ser = serde_json::Serializer::new(&mut w);
        serde::Serialize::serialize(&enc, &mut ser)
    };
    if let Some(e) = w.failed.take() {
        return Err(EncodeError::Limit(e));
    }
    if let Err(e) = r {
        let msg = failed.into_inner().unwrap_or_else(|| e.to_string());
        return Err(EncodeError::Invalid(msg));
    }
    let out = finish(&w.buf);
    drop(w);
    Ok(out)
}

/// A new empty table that encodes as `[]`.
pub fn empty_array(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set_metatable(Some(markers(lua)?.array))?;
    Ok(t)
}

/// A Lua array of strings (encodes as a JSON array even when empty).
pub fn string_array(lua: &Lua, items: &[String]) -> mlua::Result<Table> {
    let t = empty_array(lua)?;
    for (i, s) in items.iter().enumerate() {
        t.raw_set(i + 1, s.as_str())?;
    }
    Ok(t)
}

fn marked(lua: &Lua, args: MultiValue, array: bool) -> HostResult<Table> {
    let t = match args.into_iter().next() {
        None | Some(Value::Nil) => lua.create_table()?,
        Some(Value::Table(t)) => t,
        Some(other) => {
            return Err(HostError::msg(format!(
                "json.{}: expected a table, got {}",
                if array { "array" } else { "object" },
                other.type_name()
            )));
        }
    };
    let m = markers(lua)?;
    t.set_metatable(Some(if array { m.array } else { m.object }))?;
    Ok(t)
}

pub fn install(lua: &Lua) -> mlua::Result<()> {
    let markers = Markers {
        array: lua.create_table()?,
        object: lua.create_table()?,
    };
    markers.array.raw_set("__name", "json.array")?;
    markers.object.raw_set("__name", "json.object")?;
    lua.set_app_data(markers);

    let json = lua.create_table()?;
    json.raw_set(
        "encode",
        lift(lua, |lua, args: MultiValue| {
            let v = args.front().cloned().unwrap_or(Value::Nil);
            let pretty = match args.get(1) {
                Some(Value::Table(o)) => o.raw_get::<Option<bool>>("pretty")?.unwrap_or(false),
                _ => false,
            };
            match encode_with(lua, &v, Mode::Strict, pretty, None, |text| {
                lua.create_string(text)
            }) {
                Ok(s) => Ok(s?),
                Err(EncodeError::Invalid(e)) => Err(HostError::msg(format!("json.encode: {e}"))),
                Err(EncodeError::Limit(e)) => Err(HostError::Lua(mlua::Error::external(e))),
            }
        })?,
    )?;
    json.raw_set(
        "decode",
        lift(lua, |lua, args: MultiValue| {
            let s = match args.front() {
                Some(Value::String(s)) => s.clone(),
                other => {
                    return Err(HostError::msg(format!(
                        "json.decode: expected string, got {}",
                        other.map(|v| v.type_name()).unwrap_or("no value")
                    )));
                }
            };
            let bytes = s.as_bytes();
            match decode_bytes(lua, &bytes, Nulls::Keep) {
                Err(HostError::Msg(m)) => Err(HostError::msg(format!("json.decode: {m}"))),
                other => other,
            }
        })?,
    )?;
    json.raw_set("null", lua.null())?;
    json.raw_set("array", lift(lua, |lua, args| marked(lua, args, true))?)?;
    json.raw_set("object", lift(lua, |lua, args| marked(lua, args, false))?)?;
    json.raw_set(
        "is_null",
        lua.create_function(|_, v: Value| Ok(is_null(&v)))?,
    )?;
    lua.globals().raw_set("json", json)?;
    Ok(())
}

/// Convert a value for the `result` list of the envelope.
pub fn result_value(lua: &Lua, v: &Value) -> Json {
    to_json(lua, v, Mode::Lenient).unwrap_or_else(|e| Json::String(format!("<{e}>")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lua::limits::{LimitState, Limits};
    use crate::lua::sandbox;
    use serde_json::json;

    fn state() -> Lua {
        let lua = sandbox::new_state(&LimitState::new(Limits::default())).unwrap();
        install(&lua).unwrap();
        lua
    }

    #[test]
    fn empty_containers_round_trip_through_markers() {
        let lua = state();
        let j = json!({"a": [], "b": {}, "c": [1, {"d": []}], "e": "x", "f": 1.5, "g": -3});
        let v = from_json(&lua, &j, Nulls::Keep).unwrap();
        assert_eq!(to_json(&lua, &v, Mode::Strict).unwrap(), j);
    }

    #[test]
    fn nulls_are_kept_or_dropped() {
        let lua = state();
        let j = json!({"a": null, "b": [null, 1]});
        let keep = from_json(&lua, &j, Nulls::Keep).unwrap();
        assert_eq!(to_json(&lua, &keep, Mode::Strict).unwrap(), j);
        let drop = from_json(&lua, &j, Nulls::DropInObjects).unwrap();
        assert_eq!(
            to_json(&lua, &drop, Mode::Strict).unwrap(),
            json!({"b": [null, 1]})
        );
    }

    #[test]
    fn streaming_decode_and_encode_match_the_tree_bridge() {
        let lua = state();
        for text in [
            r#"{"b":[1,2,null,{"c":[]}],"a":{},"d":1.5,"e":"\u00e9x","f":-7,"g":18446744073709551615,"h":true,"a2":1e300}"#,
            r#"[[],[[]],{"k":{"k":{"k":null}}},0.1,-0.0,"\"quoted\""]"#,
            r#""just a string""#,
            r#"{"dup":1,"dup":2}"#,
        ] {
            let tree: Json = serde_json::from_str(text).unwrap();
            for nulls in [Nulls::Keep, Nulls::DropInObjects] {
                let via_tree = from_json(&lua, &tree, nulls).unwrap();
                let streamed = match decode_bytes(&lua, text.as_bytes(), nulls) {
                    Ok(v) => v,
                    Err(_) => panic!("decode failed: {text}"),
                };
                let a = to_json(&lua, &via_tree, Mode::Strict).unwrap();
                let b = to_json(&lua, &streamed, Mode::Strict).unwrap();
                assert_eq!(a, b, "{text}");
                for pretty in [false, true] {
                    let expected = if pretty {
                        serde_json::to_string_pretty(&a).unwrap()
                    } else {
                        serde_json::to_string(&a).unwrap()
                    };
                    let got = match encode_with(&lua, &streamed, Mode::Strict, pretty, None, |t| {
                        String::from_utf8(t.to_vec()).unwrap()
                    }) {
                        Ok(s) => s,
                        Err(_) => panic!("encode failed: {text}"),
                    };
                    assert_eq!(got, expected, "{text}");
                }
            }
        }
        assert!(decode_bytes(&lua, b"[1,", Nulls::Keep).is_err());
        assert!(decode_bytes(&lua, b"[1] x", Nulls::Keep).is_err());
    }

    #[test]
    fn inference_and_strictness() {
        let lua = state();
        let all: Vec<Value> = lua
            .load("return {[1] = 'a', [3] = 'c'}, {}, {[true] = 1}, {f = print}, 0/0, {1, 2, 3}")
            .eval::<MultiValue>()
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(
            to_json(&lua, &all[0], Mode::Strict).unwrap(),
            json!({"1": "a", "3": "c"})
        );
        assert_eq!(to_json(&lua, &all[1], Mode::Strict).unwrap(), json!({}));
        assert_eq!(
            to_json(&lua, &all[2], Mode::Strict).unwrap(),
            json!({"true": 1})
        );
        assert_eq!(
            to_json(&lua, &all[5], Mode::Strict).unwrap(),
            json!([1, 2, 3])
        );
        assert!(to_json(&lua, &all[3], Mode::Strict).is_err());
        assert_eq!(
            to_json(&lua, &all[3], Mode::Lenient).unwrap(),
            json!({"f": "<function>"})
        );
        assert!(to_json(&lua, &all[4], Mode::Strict).is_err());
        assert_eq!(to_json(&lua, &all[4], Mode::Lenient).unwrap(), Json::Null);
    }
}

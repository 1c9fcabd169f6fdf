//! Server-sent events: an incremental parser, the dialect that names events and ends a stream,
//! and the assembler that folds events into the value a non-streaming call would have returned.
//!
//! Everything integration-specific is data in the manifest's `stream:` block: the dialect
//! (`event:` line or a data pointer for the name, a `done` sentinel such as `[DONE]`, keep-alive,
//! error and end events) and the assembly (`events`, `last`, or rules: a start value, `set` /
//! `append` / `merge` / `push` / `accumulate` writes at pointer templates such as
//! `/content/{/index}/text`, and finishing steps). See docs/manifest-format.md, "Streams".

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::manifest::{
    Assemble, AssembleRule, AssembleSpec, EventFrom, FinishStep, RuleOp, Seg, StreamSpec,
    check_spec, parse_pattern, parse_template, unescape,
};

/// One parsed event: its name (per the dialect) and its JSON data.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub name: String,
    pub data: Value,
}

/// How the parser names events and recognises the end sentinel.
#[derive(Debug, Clone)]
pub struct ParseDialect {
    pub event_from: EventFrom,
    pub type_pointer: String,
    pub done: Option<String>,
}

impl Default for ParseDialect {
    fn default() -> Self {
        ParseDialect {
            event_from: EventFrom::EventLine,
            type_pointer: "/type".into(),
            done: None,
        }
    }
}

/// Splits a byte stream into events. Handles `\n`, `\r\n` and `\r` line ends, chunks that split
/// a line or a UTF-8 character anywhere, multi-line `data:`, and comments. After the dialect's
/// `done` sentinel it reports [`SseParser::is_done`] and ignores the rest.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
    /// The previous chunk ended in `\r`: a `\n` starting the next one belongs to it.
    skip_lf: bool,
    dialect: ParseDialect,
    done: bool,
    /// The start of the stream was checked for a UTF-8 byte order mark (skipped, as the SSE
    /// specification says).
    bom_checked: bool,
    /// The longest line and the largest event data accepted (`http.max_line_bytes`); 0: the
    /// default cap.
    max_line: u64,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

impl SseParser {
    pub fn new(dialect: ParseDialect) -> Self {
        SseParser {
            dialect,
            ..Default::default()
        }
    }

    /// The `done` sentinel was seen: the stream ended successfully.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Cap the length of one line and of one event's data (`response_too_large` past it).
    pub fn set_max_line(&mut self, bytes: u64) {
        self.max_line = bytes;
    }

    fn max_line(&self) -> u64 {
        if self.max_line == 0 {
            super::caps::Caps::default().line
        } else {
            self.max_line
        }
    }

    fn too_long(&self, len: usize) -> Result<()> {
        let limit = self.max_line();
        if len as u64 > limit {
            return Err(super::caps::Cap::Line.exceeded(limit, Some(200)));
        }
        Ok(())
    }

    /// Feed a chunk; returns the events completed by it.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Event>> {
        let mut out = Vec::new();
        if self.done {
            return Ok(out);
        }
        let mut chunk = chunk;
        if self.skip_lf {
            if let Some(rest) = chunk.strip_prefix(b"\n") {
                chunk = rest;
            }
            self.skip_lf = false;
        }
        self.buf.extend_from_slice(chunk);
        if !self.bom_checked {
            if self.buf.len() < BOM.len() && BOM.starts_with(&self.buf) {
                return Ok(out);
            }
            if self.buf.starts_with(BOM) {
                self.buf.drain(..BOM.len());
            }
            self.bom_checked = true;
        }
        let mut start = 0;
        let mut i = 0;
        while i < self.buf.len() {
            let b = self.buf[i];
            if b == b'\n' || b == b'\r' {
                self.too_long(i - start)?;
                let line = std::str::from_utf8(&self.buf[start..i])
                    .map_err(|_| bad("an event stream line is not UTF-8"))?
                    .to_string();
                if b == b'\r' {
                    if i + 1 < self.buf.len() {
                        if self.buf[i + 1] == b'\n' {
                            i += 1;
                        }
                    } else {
                        self.skip_lf = true;
                    }
                }
                if let Some(ev) = self.line(&line)? {
                    out.push(ev);
                }
                start = i + 1;
                if self.done {
                    self.buf.clear();
                    return Ok(out);
                }
            }
            i += 1;
        }
        self.buf.drain(..start);
        // What is left is one unfinished line: it may not grow past the cap.
        self.too_long(self.buf.len())?;
        Ok(out)
    }

    /// The stream ended: dispatch a final event that had no blank line after it.
    pub fn finish(&mut self) -> Result<Option<Event>> {
        if self.done {
            return Ok(None);
        }
        if !self.bom_checked && BOM.starts_with(&self.buf) {
            self.buf.clear();
        }
        if !self.buf.is_empty() {
            let line = String::from_utf8(std::mem::take(&mut self.buf))
                .map_err(|_| bad("an event stream line is not UTF-8"))?;
            if let Some(ev) = self.line(&line)? {
                return Ok(Some(ev));
            }
        }
        self.dispatch()
    }

    fn line(&mut self, line: &str) -> Result<Option<Event>> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return Ok(None);
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => {
                // Many `data:` lines make one event: its data is capped like a line.
                let held = self.data.as_ref().map_or(0, |d| d.len() + 1);
                self.too_long(held + value.len())?;
                match &mut self.data {
                    Some(d) => {
                        d.push('\n');
                        d.push_str(value);
                    }
                    None => self.data = Some(value.to_string()),
                }
            }
            _ => {}
        }
        Ok(None)
    }

    fn dispatch(&mut self) -> Result<Option<Event>> {
        let event = self.event.take();
        // An event without data, or with an empty `data:`, is not dispatched (the SSE
        // specification's rule; servers send such events as keep-alives).
        let Some(data) = self.data.take().filter(|d| !d.is_empty()) else {
            return Ok(None);
        };
        if let Some(done) = &self.dialect.done
            && data.trim() == done.as_str()
        {
            self.done = true;
            return Ok(None);
        }
        let data: Value = if data.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&data)
                .map_err(|e| bad(&format!("an event's data is not JSON ({e})")))?
        };
        let from_data = || {
            data.pointer(&self.dialect.type_pointer)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let name = match self.dialect.event_from {
            EventFrom::EventLine => event.filter(|e| !e.is_empty()).or_else(from_data),
            // The data names the event; an `event:` line names a data-less one (a keep-alive
            // written `event: heartbeat`).
            EventFrom::Data => from_data().or_else(|| event.filter(|e| !e.is_empty())),
        }
        .unwrap_or_else(|| "message".into());
        Ok(Some(Event { name, data }))
    }
}

fn bad(msg: &str) -> Error {
    Error::BadResponse {
        status: 200,
        message: format!("bad event stream: {msg}"),
        request_id: None,
    }
}

/// A whole stream as the manifest declares it: parse, classify, fold, and check it ended well.
pub struct StreamFold {
    parser: SseParser,
    keepalive: Vec<String>,
    error_event: String,
    error_pointer: Option<String>,
    ends: Vec<String>,
    done_declared: bool,
    end_seen: bool,
    assembler: Assembler,
}

impl StreamFold {
    /// `None`: a `response: sse` function with no `stream:` block (the `events` builtin).
    pub fn new(spec: Option<&StreamSpec>) -> Result<Self> {
        let default_assemble = Assemble::default_events();
        let (assemble, dialect) = match spec {
            Some(s) => (&s.assemble, Some(&s.dialect)),
            None => (&default_assemble, None),
        };
        Ok(StreamFold {
            parser: SseParser::new(ParseDialect {
                event_from: dialect.map(|d| d.event_from).unwrap_or_default(),
                type_pointer: dialect.map_or("/type", |d| d.type_pointer()).to_string(),
                done: dialect.and_then(|d| d.done.clone()),
            }),
            keepalive: spec.map_or_else(StreamSpec::default_keepalive_events, |s| s.keepalive()),
            error_event: spec.map_or_else(|| "error".into(), |s| s.error_name()),
            error_pointer: dialect.and_then(|d| d.error_pointer.clone()),
            ends: spec.map(StreamSpec::ends).unwrap_or_default(),
            done_declared: dialect.is_some_and(|d| d.done.is_some()),
            end_seen: false,
            assembler: Assembler::new(assemble)?,
        })
    }

    /// Cap one line and one event's data at `bytes` (`http.max_line_bytes`).
    pub fn set_max_line(&mut self, bytes: u64) {
        self.parser.set_max_line(bytes);
    }

    /// Parse a chunk into events (keep-alives included; see [`StreamFold::is_keepalive`]).
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Event>> {
        self.parser.push(chunk)
    }

    /// The end of the body: a final event without a blank line after it.
    pub fn flush(&mut self) -> Result<Option<Event>> {
        self.parser.finish()
    }

    /// The `done` sentinel arrived: nothing after it matters.
    pub fn is_done(&self) -> bool {
        self.parser.is_done()
    }

    /// A keep-alive: not passed to callbacks, not progress for the idle timeout.
    pub fn is_keepalive(&self, ev: &Event) -> bool {
        self.keepalive.contains(&ev.name)
    }

    /// The event reports an error (by name, or by data at the dialect's `error_pointer`).
    pub fn is_error(&self, ev: &Event) -> bool {
        ev.name == self.error_event
            || self
                .error_pointer
                .as_deref()
                .and_then(|p| ev.data.pointer(p))
                .is_some_and(|v| !v.is_null())
    }

    /// Fold one (non-keep-alive, non-error) event.
    pub fn fold(&mut self, ev: &Event) -> Result<()> {
        if self.ends.contains(&ev.name) {
            self.end_seen = true;
        }
        self.assembler.event(ev)
    }

    /// Whether the stream ended as the dialect says a complete stream ends. With neither end
    /// events nor a `done` sentinel declared, any clean end of the body counts.
    pub fn finished(&self) -> bool {
        if self.parser.is_done() || self.end_seen {
            return true;
        }
        self.ends.is_empty() && !self.done_declared
    }

    /// What a complete stream ends with, for error messages.
    pub fn expected_end(&self) -> String {
        let mut names: Vec<String> = self.ends.clone();
        if let Some(d) = &self.parser.dialect.done {
            names.push(format!("'data: {d}'"));
        }
        names.join(" / ")
    }

    /// The assembled value.
    pub fn finish(self) -> Result<Value> {
        self.assembler.finish()
    }
}

/// Folds events into a final value, as `stream.assemble` declares.
pub enum Assembler {
    /// `events`: every event's data, in order, as `{events: [...]}`.
    Events(Vec<Value>),
    /// `last`: the last event's data.
    Last(Option<Value>),
    Rules(Box<RuleAssembler>),
}

impl Assembler {
    pub fn new(assemble: &Assemble) -> Result<Self> {
        match assemble {
            Assemble::Named(n) if n == "events" => Ok(Assembler::Events(Vec::new())),
            Assemble::Named(n) if n == "last" => Ok(Assembler::Last(None)),
            Assemble::Named(other) => Err(Error::config(format!(
                "unknown stream assembler '{other}' (known: {}; or declare rules)",
                Assemble::BUILTINS.join(", ")
            ))),
            Assemble::Rules(spec) => {
                let problems = check_spec(spec);
                if let Some((at, msg)) = problems.into_iter().next() {
                    return Err(Error::config(format!("stream assemble {at}: {msg}")));
                }
                Ok(Assembler::Rules(Box::new(RuleAssembler {
                    spec: spec.clone(),
                    value: None,
                })))
            }
        }
    }

    pub fn event(&mut self, ev: &Event) -> Result<()> {
        match self {
            Assembler::Events(list) => {
                list.push(ev.data.clone());
                Ok(())
            }
            Assembler::Last(last) => {
                *last = Some(ev.data.clone());
                Ok(())
            }
            Assembler::Rules(r) => r.event(ev),
        }
    }

    pub fn finish(self) -> Result<Value> {
        match self {
            Assembler::Events(list) => Ok(json!({ "events": list })),
            Assembler::Last(last) => last.ok_or_else(|| bad("the stream had no events")),
            Assembler::Rules(r) => r.finish(),
        }
    }
}

/// The rule interpreter.
pub struct RuleAssembler {
    spec: AssembleSpec,
    /// `None` until the start event arrived.
    value: Option<Value>,
}

impl RuleAssembler {
    fn event(&mut self, ev: &Event) -> Result<()> {
        let start = self.spec.start.as_ref();
        let starts_here = match start {
            None => {
                if self.value.is_none() {
                    self.value = Some(Value::Object(Map::new()));
                }
                false
            }
            Some(s) => match &s.on {
                // The first event of that name; later ones go through the rules only.
                Some(on) => on == &ev.name && self.value.is_none(),
                None => self.value.is_none(),
            },
        };
        if starts_here && let Some(s) = start {
            let mut v = ev.data.pointer(&s.take).cloned().ok_or_else(|| {
                bad(&format!(
                    "{} has nothing at '{}' to start the result from",
                    ev.name, s.take
                ))
            })?;
            for d in &s.drop {
                remove_at(&mut v, d);
            }
            self.value = Some(v);
        }
        for rule in &self.spec.rules {
            if rule.on.as_ref().is_some_and(|on| !on.contains(&ev.name)) {
                continue;
            }
            let items: Vec<&Value> = match &rule.each {
                None => vec![&ev.data],
                Some(p) => match ev.data.pointer(p) {
                    Some(Value::Array(a)) => a.iter().collect(),
                    _ => continue,
                },
            };
            for item in items {
                if !matches_when(rule, item) {
                    continue;
                }
                let Some(value) = self.value.as_mut() else {
                    // A rule for every event waits for the start; one named for this event
                    // cannot have come before it.
                    if rule.on.is_none() {
                        continue;
                    }
                    let first = start
                        .and_then(|s| s.on.as_deref())
                        .unwrap_or("the first event");
                    return Err(bad(&format!("{} before {first}", ev.name)));
                };
                apply(rule, &ev.name, item, value)?;
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<Value> {
        let mut value = match self.value {
            Some(v) => v,
            None => {
                let what = self
                    .spec
                    .start
                    .as_ref()
                    .and_then(|s| s.on.clone())
                    .unwrap_or_else(|| "events".into());
                return Err(bad(&format!("the stream had no {what}")));
            }
        };
        for step in &self.spec.finish {
            finish_step(step, &mut value)?;
        }
        Ok(value)
    }
}

fn matches_when(rule: &AssembleRule, item: &Value) -> bool {
    match &rule.when {
        None => true,
        Some(w) => match (item.pointer(&w.pointer), &w.equals) {
            (Some(v), Some(want)) => v == want,
            (Some(v), None) => !v.is_null(),
            (None, _) => false,
        },
    }
}

/// Apply one rule to one event (or `each` item).
fn apply(rule: &AssembleRule, event: &str, item: &Value, root: &mut Value) -> Result<()> {
    let Some((op, template)) = rule.ops().into_iter().next() else {
        return Ok(());
    };
    let value = match item.pointer(&rule.value) {
        Some(v) if !v.is_null() => v.clone(),
        _ if rule.required => {
            return Err(bad(&format!(
                "{event} has no '{}' to {}",
                rule.value,
                op.name()
            )));
        }
        _ => return Ok(()),
    };
    let segs = parse_template(template).map_err(|e| bad(&e))?;
    let mut keys = Vec::with_capacity(segs.len());
    for s in segs {
        keys.push(match s {
            Seg::Key(k) => k,
            Seg::Ptr(p) => match item.pointer(&p) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) if n.is_u64() => n.to_string(),
                Some(other) => {
                    return Err(bad(&format!(
                        "{event}: '{p}' is {other}, not an index or a key"
                    )));
                }
                None => return Err(bad(&format!("{event} has no '{p}'"))),
            },
        });
    }
    let target_text = || keys.iter().map(|k| format!("/{k}")).collect::<String>();
    if op == RuleOp::Set {
        let slot = slot(root, &keys, true)
            .ok_or_else(|| bad(&format!("{event}: cannot set '{}'", target_text())))?;
        *slot = value;
        return Ok(());
    }
    // The other writes extend what is there: the target's container must exist.
    let slot = slot(root, &keys, false).ok_or_else(|| {
        bad(&format!(
            "{event}: nothing at '{}' to {} to",
            target_text(),
            op.name()
        ))
    })?;
    match op {
        RuleOp::Set => {}
        RuleOp::Append => {
            if let Value::String(text) = &value {
                match slot {
                    Value::String(s) => s.push_str(text),
                    other => *other = value,
                }
            }
        }
        RuleOp::Merge => {
            if let Value::Object(members) = value {
                if slot.is_null() {
                    *slot = Value::Object(Map::new());
                }
                if let Value::Object(target) = slot {
                    for (k, v) in members {
                        if !(rule.skip_nulls && v.is_null()) {
                            target.insert(k, v);
                        }
                    }
                }
            }
        }
        RuleOp::Push => match slot {
            Value::Array(list) => list.push(value),
            other => *other = Value::Array(vec![value]),
        },
        RuleOp::Accumulate => accumulate(slot, value),
    }
    Ok(())
}

/// Write `v` at `pointer` in `root`, creating objects (arrays for numeric keys) on the way;
/// `""` replaces the root.
pub fn set_pointer(root: &mut Value, pointer: &str, v: Value) {
    let keys: Vec<String> = match pointer.strip_prefix('/') {
        None => Vec::new(),
        Some(rest) => rest.split('/').map(unescape).collect(),
    };
    if let Some(s) = slot(root, &keys, true) {
        *s = v;
    }
}

/// How far past an array's end a write may land (the gap is padded with nulls).
const MAX_ARRAY_GAP: usize = 10_000;

/// The slot at `keys`: with `create`, missing containers are made (an array when the next key
/// is a number) and arrays are padded with nulls; without, every container above the last key
/// must exist (the last key itself may be missing, and is then created as null).
fn slot<'a>(root: &'a mut Value, keys: &[String], create: bool) -> Option<&'a mut Value> {
    let mut cur = root;
    for (i, key) in keys.iter().enumerate() {
        let last = i + 1 == keys.len();
        let may_create = create || last;
        if cur.is_null() && create {
            *cur = if key.parse::<usize>().is_ok() {
                Value::Array(Vec::new())
            } else {
                Value::Object(Map::new())
            };
        }
        cur = match cur {
            Value::Object(map) => {
                if !map.contains_key(key) {
                    if !may_create {
                        return None;
                    }
                    map.insert(key.clone(), Value::Null);
                }
                map.get_mut(key)?
            }
            Value::Array(list) => {
                let idx = if key == "-" {
                    list.len()
                } else {
                    key.parse::<usize>().ok()?
                };
                if idx >= list.len() {
                    // A server-sent index far beyond the end is refused, not allocated.
                    if !may_create || idx - list.len() > MAX_ARRAY_GAP {
                        return None;
                    }
                    list.resize(idx + 1, Value::Null);
                }
                list.get_mut(idx)?
            }
            _ => return None,
        };
        if !last && cur.is_null() && !create {
            return None;
        }
    }
    Some(cur)
}

/// Merge a delta into an accumulated value: strings concatenate, numbers add, objects merge
/// member by member (`index` and `type` members are replaced, not accumulated), arrays of
/// objects with an `index` merge by that index, other arrays extend; anything else is replaced.
pub fn accumulate(acc: &mut Value, delta: Value) {
    match (acc, delta) {
        (acc @ Value::Null, delta) => {
            *acc = if has_indexed_entries(&delta) {
                let mut list = Value::Array(Vec::new());
                accumulate(&mut list, delta);
                list
            } else {
                delta
            };
        }
        (Value::String(a), Value::String(d)) => a.push_str(&d),
        (Value::Number(a), Value::Number(d)) => {
            let sum = match (a.as_i64(), d.as_i64()) {
                (Some(x), Some(y)) => x.checked_add(y).map(Value::from),
                _ => None,
            }
            .or_else(|| {
                let s = a.as_f64().unwrap_or(0.0) + d.as_f64().unwrap_or(0.0);
                serde_json::Number::from_f64(s).map(Value::Number)
            });
            if let Some(Value::Number(n)) = sum {
                *a = n;
            }
        }
        (Value::Object(a), Value::Object(d)) => {
            for (k, v) in d {
                let slot = a.entry(k.clone()).or_insert(Value::Null);
                if k == "index" || k == "type" {
                    *slot = v;
                } else {
                    accumulate(slot, v);
                }
            }
        }
        (Value::Array(a), Value::Array(d)) => {
            let scalars = a.iter().all(|x| !x.is_object() && !x.is_array());
            let indexed = d
                .iter()
                .all(|x| x.get("index").and_then(Value::as_u64).is_some());
            if (scalars && !a.is_empty()) || !indexed || d.is_empty() {
                a.extend(d);
                return;
            }
            for entry in d {
                let idx = entry.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
                match a
                    .iter_mut()
                    .find(|x| x.get("index").and_then(Value::as_u64) == Some(idx as u64))
                {
                    Some(existing) => accumulate(existing, entry),
                    None => a.push(entry),
                }
            }
        }
        // Mismatched kinds: the accumulated value stays (as the official SDKs do).
        _ => {}
    }
}

fn has_indexed_entries(v: &Value) -> bool {
    matches!(v, Value::Array(items) if !items.is_empty()
        && items.iter().all(|x| x.get("index").and_then(Value::as_u64).is_some()))
}

fn remove_at(v: &mut Value, pointer: &str) {
    let Some((parent, key)) = pointer.rsplit_once('/') else {
        return;
    };
    let key = unescape(key);
    match v.pointer_mut(parent) {
        Some(Value::Object(m)) => {
            m.shift_remove(&key);
        }
        Some(Value::Array(a)) => {
            if let Ok(i) = key.parse::<usize>()
                && i < a.len()
            {
                a.remove(i);
            }
        }
        _ => {}
    }
}

/// The concrete paths a finishing pattern matches: `*` expands over what exists; the last
/// literal key is included whether or not it exists (so `set` / `default` can create it).
fn expand(v: &Value, pat: &[Option<String>]) -> Vec<Vec<String>> {
    let Some((first, rest)) = pat.split_first() else {
        return vec![Vec::new()];
    };
    let children: Vec<(String, Option<&Value>)> = match (first, v) {
        (None, Value::Object(m)) => m.iter().map(|(k, c)| (k.clone(), Some(c))).collect(),
        (None, Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, c)| (i.to_string(), Some(c)))
            .collect(),
        (None, _) => Vec::new(),
        (Some(k), Value::Object(m)) => vec![(k.clone(), m.get(k))],
        (Some(k), Value::Array(a)) => match k.parse::<usize>() {
            Ok(i) => vec![(k.clone(), a.get(i))],
            Err(_) => Vec::new(),
        },
        (Some(_), _) => Vec::new(),
    };
    let mut out = Vec::new();
    for (k, child) in children {
        if rest.is_empty() {
            out.push(vec![k]);
        } else if let Some(c) = child {
            for mut tail in expand(c, rest) {
                tail.insert(0, k.clone());
                out.push(tail);
            }
        }
    }
    out
}

fn pointer_of(keys: &[String]) -> String {
    keys.iter()
        .map(|k| format!("/{}", k.replace('~', "~0").replace('/', "~1")))
        .collect()
}

/// The value before the `parse_json` finishing steps: each parsed value written back as JSON
/// text where the rules collected it (`into: input` moves `input` back to the text field). The
/// simulator derives a stream's deltas from this form, since the rules build it, not the
/// finished answer. Other steps are left as they are.
pub fn unfinish(spec: &AssembleSpec, value: &Value) -> Value {
    let mut out = value.clone();
    for step in spec.finish.iter().rev() {
        let Some(path) = step.parse_json.as_deref() else {
            continue;
        };
        let Ok(pat) = parse_pattern(path) else {
            continue;
        };
        match &step.into {
            Some(field) => {
                let Some((Some(text_key), parent_pat)) = pat.split_last() else {
                    continue;
                };
                for keys in expand(&out, parent_pat) {
                    let at = pointer_of(&keys);
                    if let Some(Value::Object(m)) = out.pointer_mut(&at)
                        && let Some(parsed) = m.shift_remove(field)
                    {
                        m.insert(text_key.clone(), json!(parsed.to_string()));
                    }
                }
            }
            None => {
                for keys in expand(&out, &pat) {
                    let at = pointer_of(&keys);
                    if let Some(slot) = out.pointer_mut(&at)
                        && !slot.is_string()
                        && !slot.is_null()
                    {
                        *slot = json!(slot.to_string());
                    }
                }
            }
        }
    }
    out
}

fn finish_step(step: &FinishStep, value: &mut Value) -> Result<()> {
    let Some((name, path)) = step.steps().into_iter().next() else {
        return Ok(());
    };
    let pat = parse_pattern(path).map_err(|e| bad(&e))?;
    let paths = expand(value, &pat);
    for keys in paths {
        let at = pointer_of(&keys);
        match name {
            "parse_json" => {
                let Some(Value::String(text)) = value.pointer(&at).cloned() else {
                    continue;
                };
                let parsed: Value = if text.trim().is_empty() {
                    json!({})
                } else {
                    serde_json::from_str(&text).map_err(|e| {
                        bad(&format!("the JSON collected at {at} is not JSON ({e})"))
                    })?
                };
                match &step.into {
                    Some(field) => {
                        remove_at(value, &at);
                        let parent = pointer_of(&keys[..keys.len().saturating_sub(1)]);
                        if let Some(Value::Object(m)) = value.pointer_mut(&parent) {
                            m.insert(field.clone(), parsed);
                        }
                    }
                    None => {
                        if let Some(slot) = value.pointer_mut(&at) {
                            *slot = parsed;
                        }
                    }
                }
            }
            "remove" => remove_at(value, &at),
            "compact" => {
                if let Some(Value::Array(a)) = value.pointer_mut(&at) {
                    a.retain(|x| !x.is_null());
                }
            }
            "set" | "default" => {
                let to = step.to.clone().unwrap_or(Value::Null);
                if name == "default" && value.pointer(&at).is_some() {
                    continue;
                }
                if let Some(slot) = slot(value, &keys, false) {
                    *slot = to;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message-building stream: a start event, indexed blocks, text / thinking / signature /
    /// citation / partial-JSON deltas, a top-level delta with usage, an end event.
    pub(crate) const STREAM: &str = concat!(
        "event: message_start\r\n",
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"m\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\r\n\r\n",
        ": comment\n",
        "event: content_block_start\n",
        "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"hmm\"}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"sig\"}}\n\n",
        "event: content_block_stop\n",
        "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: content_block_start\n",
        "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: ping\n",
        "data: {\"type\": \"ping\"}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hé\"}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"citations_delta\",\"citation\":{\"type\":\"char_location\",\"cited_text\":\"x\"}}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"llo\"}}\n\n",
        "event: content_block_stop\n",
        "data: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
        "event: content_block_start\n",
        "data: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"get\",\"input\":{}}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\": \\\"Pa\"}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"ris\\\"}\"}}\n\n",
        "event: content_block_stop\n",
        "data: {\"type\":\"content_block_stop\",\"index\":2}\n\n",
        "event: content_block_start\n",
        "data: {\"type\":\"content_block_start\",\"index\":3,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_2\",\"name\":\"now\",\"input\":{}}}\n\n",
        "event: content_block_stop\n",
        "data: {\"type\":\"content_block_stop\",\"index\":3}\n\n",
        "event: brand_new_event\n",
        "data: {\"type\":\"brand_new_event\"}\n\n",
        "event: message_delta\n",
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15,\"cache_read_input_tokens\":null}}\n\n",
        "event: message_stop\n",
        "data: {\"type\":\"message_stop\"}\n\n",
    );

    /// The message rules, as a manifest declares them.
    pub(crate) const MESSAGE_SPEC: &str = r#"
param: stream
dialect: {end_events: [message_stop], error_event: error, keepalive_events: [ping]}
assemble:
  start: {on: message_start, take: /message}
  rules:
    - {on: content_block_start, set: "/content/{/index}", value: /content_block, required: true}
    - on: content_block_delta
      when: {pointer: /delta/type, equals: text_delta}
      append: "/content/{/index}/text"
      value: /delta/text
    - on: content_block_delta
      when: {pointer: /delta/type, equals: thinking_delta}
      append: "/content/{/index}/thinking"
      value: /delta/thinking
    - on: content_block_delta
      when: {pointer: /delta/type, equals: signature_delta}
      set: "/content/{/index}/signature"
      value: /delta/signature
    - on: content_block_delta
      when: {pointer: /delta/type, equals: input_json_delta}
      append: "/content/{/index}/_partial_json"
      value: /delta/partial_json
    - on: content_block_delta
      when: {pointer: /delta/type, equals: citations_delta}
      push: "/content/{/index}/citations"
      value: /delta/citation
    - {on: message_delta, merge: "", value: /delta}
    - {on: message_delta, merge: /usage, value: /usage, skip_nulls: true}
  finish:
    - {parse_json: "/content/*/_partial_json", into: input}
    - {compact: /content}
"#;

    /// A chunk stream: no `event:` lines, `choices[].delta` fragments, tool-call argument
    /// fragments by index, usage on a final chunk with no choices, then `data: [DONE]`.
    pub(crate) const CHUNKS: &str = concat!(
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m\",\"system_fingerprint\":\"fp\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m\",\"system_fingerprint\":\"fp\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Let me \"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m\",\"system_fingerprint\":\"fp\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"check.\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
        ": keep-alive\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m\",\"system_fingerprint\":\"fp\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_a\",\"type\":\"function\",\"function\":{\"name\":\"weather\",\"arguments\":\"\"}}]},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m\",\"system_fingerprint\":\"fp\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"city\\\":\"}}]},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m\",\"system_fingerprint\":\"fp\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_b\",\"type\":\"function\",\"function\":{\"name\":\"time\",\"arguments\":\"{}\"}}]},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m\",\"system_fingerprint\":\"fp\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"Paris\\\"}\"}}]},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m\",\"system_fingerprint\":\"fp\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"tool_calls\"}],\"usage\":null}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m\",\"system_fingerprint\":\"fp\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":12,\"total_tokens\":21}}\n\n",
        "data: [DONE]\n\n",
    );

    /// The chunk rules, as a manifest declares them.
    pub(crate) const CHUNK_SPEC: &str = r#"
param: stream
dialect: {event_from: data, type_pointer: /object, done: "[DONE]", error_pointer: /error}
assemble:
  start: {on: chat.completion.chunk, take: "", drop: [/choices, /obfuscation]}
  rules:
    - {each: /choices, set: "/choices/{/index}/index", value: /index}
    - {each: /choices, accumulate: "/choices/{/index}/message", value: /delta}
    - {each: /choices, accumulate: "/choices/{/index}/logprobs", value: /logprobs}
    - {each: /choices, set: "/choices/{/index}/finish_reason", value: /finish_reason}
    - {set: /usage, value: /usage}
    - {set: /system_fingerprint, value: /system_fingerprint}
  finish:
    - {set: /object, to: chat.completion}
    - {default: "/choices/*/logprobs", to: null}
    - {default: "/choices/*/finish_reason", to: null}
    - {remove: "/choices/*/message/tool_calls/*/index"}
"#;

    pub(crate) fn spec(yaml: &str) -> StreamSpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    /// Fold `text` split into `size`-byte chunks; errors come back as `Err`.
    fn fold_in_chunks(yaml: &str, text: &str, size: usize) -> Result<(Value, Vec<String>)> {
        let spec = spec(yaml);
        let mut f = StreamFold::new(Some(&spec))?;
        let mut seen = Vec::new();
        'read: for chunk in text.as_bytes().chunks(size) {
            for ev in f.push(chunk)? {
                if f.is_keepalive(&ev) {
                    continue;
                }
                if f.is_error(&ev) {
                    return Err(bad("error event"));
                }
                seen.push(ev.name.clone());
                f.fold(&ev)?;
            }
            if f.is_done() {
                break 'read;
            }
        }
        if let Some(ev) = f.flush()? {
            seen.push(ev.name.clone());
            f.fold(&ev)?;
        }
        if !f.finished() {
            return Err(bad(&format!("ended before {}", f.expected_end())));
        }
        Ok((f.finish()?, seen))
    }

    fn message() -> Value {
        json!({"id":"msg_1","type":"message","role":"assistant",
            "content":[
                {"type":"thinking","thinking":"hmm","signature":"sig"},
                {"type":"text","text":"Héllo","citations":[{"type":"char_location","cited_text":"x"}]},
                {"type":"tool_use","id":"toolu_1","name":"get","input":{"city":"Paris"}},
                {"type":"tool_use","id":"toolu_2","name":"now","input":{}}],
            "model":"m","stop_reason":"tool_use","stop_sequence":null,
            "usage":{"input_tokens":25,"output_tokens":15}})
    }

    #[test]
    fn message_rules_assemble_the_final_message_whatever_the_chunking() {
        let (whole, seen) = fold_in_chunks(MESSAGE_SPEC, STREAM, STREAM.len()).unwrap();
        assert_eq!(whole, message());
        assert!(!seen.contains(&"ping".to_string()), "{seen:?}");
        // Key order is kept too (the result prints the same as before).
        assert_eq!(whole.to_string(), message().to_string());
        for size in [1, 2, 3, 7, 64] {
            let (v, _) = fold_in_chunks(MESSAGE_SPEC, STREAM, size).unwrap();
            assert_eq!(v, whole, "chunk size {size}");
        }
    }

    #[test]
    fn chunk_rules_assemble_a_completion_whatever_the_chunking() {
        let want = json!({
            "id": "c1", "object": "chat.completion", "created": 7, "model": "m",
            "system_fingerprint": "fp",
            "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21},
            "choices": [{
                "index": 0,
                "message": {
                    "role": "assistant", "content": "Let me check.", "refusal": null,
                    "tool_calls": [
                        {"id": "call_a", "type": "function",
                         "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                        {"id": "call_b", "type": "function",
                         "function": {"name": "time", "arguments": "{}"}}
                    ]
                },
                "logprobs": null,
                "finish_reason": "tool_calls"
            }]
        });
        for size in [1, 5, 64, CHUNKS.len()] {
            let (v, seen) = fold_in_chunks(CHUNK_SPEC, CHUNKS, size).unwrap();
            assert_eq!(v, want, "chunk size {size}");
            assert_eq!(seen.len(), 9, "{seen:?}");
            assert!(
                seen.iter().all(|n| n == "chat.completion.chunk"),
                "{seen:?}"
            );
        }
    }

    #[test]
    fn events_before_the_named_start_are_ignored_by_rules_for_every_event() {
        // A content-filter style event with an empty object name, before the first chunk.
        let text = format!(
            "data: {{\"id\":\"\",\"object\":\"\",\"created\":0,\"model\":\"\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"x\"}}}}]}}\n\n{CHUNKS}"
        );
        let (with, _) = fold_in_chunks(CHUNK_SPEC, &text, 64).unwrap();
        let (without, _) = fold_in_chunks(CHUNK_SPEC, CHUNKS, 64).unwrap();
        assert_eq!(with, without);
    }

    #[test]
    fn the_done_sentinel_ends_the_stream_and_what_follows_is_ignored() {
        let text = format!("{CHUNKS}data: not json at all\n\n");
        assert!(fold_in_chunks(CHUNK_SPEC, &text, 3).is_ok());
        // Without the sentinel the stream is incomplete.
        let cut = CHUNKS.replace("data: [DONE]\n\n", "");
        let err = fold_in_chunks(CHUNK_SPEC, &cut, 64)
            .unwrap_err()
            .to_string();
        assert!(err.contains("[DONE]"), "{err}");
        // Other non-JSON data is still an error.
        let junk = CHUNKS.replace("data: [DONE]", "data: [DONE");
        let err = fold_in_chunks(CHUNK_SPEC, &junk, 64)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not JSON"), "{err}");
    }

    #[test]
    fn an_error_pointer_marks_error_events() {
        let s = spec(CHUNK_SPEC);
        let f = StreamFold::new(Some(&s)).unwrap();
        let ev = Event {
            name: "message".into(),
            data: json!({"error": {"message": "overloaded", "type": "server_error"}}),
        };
        assert!(f.is_error(&ev));
        let ok = Event {
            name: "message".into(),
            data: json!({"error": null, "choices": []}),
        };
        assert!(!f.is_error(&ok));
    }

    #[test]
    fn event_names_come_from_the_line_or_the_data() {
        let mut p = SseParser::default();
        let evs = p
            .push(b"event: a\ndata: {\"type\":\"b\"}\n\ndata: {\"type\":\"c\"}\n\ndata: {}\n\n")
            .unwrap();
        let names: Vec<&str> = evs.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a", "c", "message"]);
        let mut p = SseParser::new(ParseDialect {
            event_from: EventFrom::Data,
            type_pointer: "/kind/name".into(),
            done: None,
        });
        let evs = p
            .push(b"event: a\ndata: {\"kind\":{\"name\":\"z\"}}\n\n")
            .unwrap();
        assert_eq!(evs[0].name, "z");
        // Data without the type: the `event:` line names it (a keep-alive `event: heartbeat`).
        let evs = p.push(b"event: heartbeat\ndata: {}\n\n").unwrap();
        assert_eq!(evs[0].name, "heartbeat");
    }

    #[test]
    fn unfinish_writes_parsed_json_back_as_text() {
        let spec: AssembleSpec = serde_yaml::from_str(
            "finish:\n  - {parse_json: \"/calls/*/args\", into: input}\n  - {parse_json: /raw}\n  - {compact: /calls}\n",
        )
        .unwrap();
        let done = json!({"calls": [{"id": "a", "input": {"x": 1}}, {"id": "b"}], "raw": [1, 2]});
        let before = unfinish(&spec, &done);
        assert_eq!(
            before,
            json!({"calls": [{"id": "a", "args": "{\"x\":1}"}, {"id": "b"}], "raw": "[1,2]"})
        );
        // Finishing it again gives the answer back (the call without input gets none).
        let mut again = before.clone();
        for step in &spec.finish {
            finish_step(step, &mut again).unwrap();
        }
        assert_eq!(again, done);
    }

    #[test]
    fn a_byte_order_mark_and_empty_data_events_are_skipped() {
        // The BOM may arrive split over chunks.
        let mut p = SseParser::default();
        assert!(p.push(b"\xEF\xBB").unwrap().is_empty());
        let evs = p
            .push(b"\xBFdata: {\"type\":\"a\"}\n\ndata:\n\nevent: x\ndata:\n\ndata: {\"type\":\"b\"}\n\n")
            .unwrap();
        let names: Vec<&str> = evs.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        let mut p = SseParser::default();
        assert!(p.push(b"\xEF\xBB\xBF").unwrap().is_empty());
        assert!(p.finish().unwrap().is_none());
    }

    #[test]
    fn unterminated_final_event_is_dispatched_at_end() {
        let mut p = SseParser::default();
        assert!(p.push(b"event: x\ndata: {\"a\":1}").unwrap().is_empty());
        let ev = p.finish().unwrap().unwrap();
        assert_eq!(ev.name, "x");
        assert_eq!(ev.data, json!({"a": 1}));
    }

    #[test]
    fn stream_without_its_end_event_is_not_finished() {
        let cut = STREAM.split("event: message_stop").next().unwrap();
        let err = fold_in_chunks(MESSAGE_SPEC, cut, 64)
            .unwrap_err()
            .to_string();
        assert!(err.contains("message_stop"), "{err}");
        let mut s = spec(MESSAGE_SPEC);
        s.assemble = Assemble::Named("nope".into());
        assert!(StreamFold::new(Some(&s)).is_err());
    }

    #[test]
    fn old_top_level_dialect_keys_still_work() {
        let s = spec(
            "{param: stream, assemble: events, end_events: [fin], error_event: oops, keepalive_events: [tick]}",
        );
        let mut f = StreamFold::new(Some(&s)).unwrap();
        let evs = f
            .push(b"event: tick\ndata: {}\n\nevent: oops\ndata: {}\n\nevent: fin\ndata: {\"n\":1}\n\n")
            .unwrap();
        assert!(f.is_keepalive(&evs[0]));
        assert!(f.is_error(&evs[1]));
        assert!(!f.finished());
        f.fold(&evs[2]).unwrap();
        assert!(f.finished());
        assert_eq!(f.finish().unwrap(), json!({"events": [{"n": 1}]}));
    }

    #[test]
    fn builtins_events_and_last() {
        let s = spec("{param: stream, assemble: last}");
        let mut f = StreamFold::new(Some(&s)).unwrap();
        for ev in f.push(b"data: {\"a\":1}\n\ndata: {\"a\":2}\n\n").unwrap() {
            f.fold(&ev).unwrap();
        }
        assert!(f.finished(), "no end declared: a clean end counts");
        assert_eq!(f.finish().unwrap(), json!({"a": 2}));
        let f = StreamFold::new(None).unwrap();
        assert_eq!(f.finish().unwrap(), json!({"events": []}));
    }

    #[test]
    fn rule_errors_are_bad_streams_not_panics() {
        // A delta for a block that never started.
        let text = STREAM.replace("\"index\":1,\"delta\"", "\"index\":9,\"delta\"");
        let err = fold_in_chunks(MESSAGE_SPEC, &text, 64)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/content/9"), "{err}");
        // A delta before the start event.
        let text = "event: message_delta\ndata: {\"delta\":{}}\n\n";
        let err = fold_in_chunks(MESSAGE_SPEC, text, 64)
            .unwrap_err()
            .to_string();
        assert!(err.contains("before message_start"), "{err}");
        // No start event at all.
        let err = fold_in_chunks(MESSAGE_SPEC, "event: message_stop\ndata: {}\n\n", 64)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no message_start"), "{err}");
        // Collected JSON that does not parse.
        let text = STREAM.replace("ris\\\"}", "ris");
        let err = fold_in_chunks(MESSAGE_SPEC, &text, 64)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/content/2/_partial_json"), "{err}");
        // A placeholder that is neither a number nor a string.
        let text = STREAM.replace(
            "\"index\":0,\"content_block\"",
            "\"index\":[0],\"content_block\"",
        );
        assert!(fold_in_chunks(MESSAGE_SPEC, &text, 64).is_err());
    }

    #[test]
    fn a_huge_index_is_a_bad_stream_not_an_allocation() {
        for index in ["1000000000000", "18446744073709551615"] {
            let text = STREAM.replace(
                "\"index\":1,\"content_block\"",
                &format!("\"index\":{index},\"content_block\""),
            );
            assert!(text != STREAM);
            let err = fold_in_chunks(MESSAGE_SPEC, &text, 64)
                .unwrap_err()
                .to_string();
            assert!(err.contains("cannot set"), "{err}");
        }
    }

    #[test]
    fn accumulate_follows_the_sdk_delta_rules() {
        let mut acc = Value::Null;
        accumulate(
            &mut acc,
            json!({"a": "x", "n": 1, "type": "t", "list": [1]}),
        );
        accumulate(
            &mut acc,
            json!({"a": "y", "n": 2, "type": "u", "list": [2], "b": null}),
        );
        accumulate(&mut acc, json!({"a": null, "n": "oops"}));
        assert_eq!(
            acc,
            json!({"a": "xy", "n": 3, "type": "u", "list": [1, 2], "b": null})
        );
        let mut acc = json!({"calls": null});
        accumulate(
            &mut acc,
            json!({"calls": [{"index": 1, "f": "a"}, {"index": 0, "f": "b"}]}),
        );
        accumulate(&mut acc, json!({"calls": [{"index": 1, "f": "c"}]}));
        assert_eq!(
            acc,
            json!({"calls": [{"index": 1, "f": "ac"}, {"index": 0, "f": "b"}]})
        );
    }

    #[test]
    fn check_spec_reports_bad_rules_and_pointers() {
        let bad_spec: AssembleSpec = serde_yaml::from_str(
            r#"
start: {take: message}
rules:
  - {set: /a, append: /b}
  - {on: x}
  - {set: "/a/{index}", value: nope}
  - {set: "/a/x{/i}"}
  - {set: /a, each: items, when: {pointer: type}}
  - {append: /a, skip_nulls: true}
finish:
  - {remove: /a, compact: /b}
  - {set: /a}
  - {remove: /a, to: 1}
  - {into: x}
  - {parse_json: nope}
"#,
        )
        .unwrap();
        let problems = check_spec(&bad_spec);
        let at: Vec<&str> = problems.iter().map(|(a, _)| a.as_str()).collect();
        for want in [
            "/start/take",
            "/rules/0",
            "/rules/1",
            "/rules/2/set",
            "/rules/2/value",
            "/rules/3/set",
            "/rules/4/each",
            "/rules/4/when/pointer",
            "/rules/5/skip_nulls",
            "/finish/0",
            "/finish/1",
            "/finish/2",
            "/finish/3",
            "/finish/3/into",
            "/finish/4/parse_json",
        ] {
            assert!(at.contains(&want), "{want} not in {problems:?}");
        }
        assert!(check_spec(&spec(MESSAGE_SPEC).rules_spec()).is_empty());
        assert!(check_spec(&spec(CHUNK_SPEC).rules_spec()).is_empty());
    }

    impl StreamSpec {
        fn rules_spec(&self) -> AssembleSpec {
            match &self.assemble {
                Assemble::Rules(r) => r.clone(),
                Assemble::Named(n) => panic!("not rules: {n}"),
            }
        }
    }
}

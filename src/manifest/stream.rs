//! The `stream:` block of a function: the wire dialect of a server-sent event stream, how its
//! events fold into the result (a builtin or rules), and simulator event templates; with the
//! checks `manifests:check` runs on them. The executor's interpreter is `exec::sse`; the
//! simulator's writer is `simulator::sse`. See docs/manifest-format.md, "Streams".

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Manifest, ResponseKind};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSpec {
    /// The boolean argument that asks for a stream (`stream`). Empty: the function always
    /// streams (`response: sse`).
    #[serde(default)]
    pub param: String,
    /// How events are folded into the final value: a builtin name (`events`, `last`) or rules.
    #[serde(default = "Assemble::default_events")]
    pub assemble: Assemble,
    /// How the wire names events, ends the stream and reports errors.
    #[serde(default)]
    pub dialect: StreamDialect,
    /// Event types that end the stream successfully (old place; `dialect.end_events` wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_events: Option<Vec<String>>,
    /// Event type that carries an error (old place; `dialect.error_event` wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_event: Option<String>,
    /// Keep-alive events (old place; `dialect.keepalive_events` wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalive_events: Option<Vec<String>>,
    /// How the simulator writes a JSON answer as events (templates); derived when absent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub simulate: Vec<SimulatedEvent>,
}

impl StreamSpec {
    pub fn default_keepalive_events() -> Vec<String> {
        vec!["ping".into()]
    }

    /// Events that only keep the connection alive: not passed to callbacks, and not progress
    /// for the stream idle timeout (so a stream of nothing but pings still times out).
    pub fn keepalive(&self) -> Vec<String> {
        self.dialect
            .keepalive_events
            .clone()
            .or_else(|| self.keepalive_events.clone())
            .unwrap_or_else(Self::default_keepalive_events)
    }

    /// Event names that end the stream successfully.
    pub fn ends(&self) -> Vec<String> {
        self.dialect
            .end_events
            .clone()
            .or_else(|| self.end_events.clone())
            .unwrap_or_default()
    }

    /// The event name that carries an error (default `error`).
    pub fn error_name(&self) -> String {
        self.dialect
            .error_event
            .clone()
            .or_else(|| self.error_event.clone())
            .unwrap_or_else(|| "error".into())
    }
}

/// The wire dialect of a stream.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamDialect {
    /// Where an event's name comes from.
    #[serde(default)]
    pub event_from: EventFrom,
    /// Pointer into the data naming the event when the name is taken from the data (`/type`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_pointer: Option<String>,
    /// Data text that ends the stream successfully (`[DONE]`); it is not JSON and not an event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done: Option<String>,
    /// An event whose data has a non-null value at this pointer is an error (`/error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_pointer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalive_events: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_event: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_events: Option<Vec<String>>,
}

impl StreamDialect {
    pub fn type_pointer(&self) -> &str {
        self.type_pointer.as_deref().unwrap_or("/type")
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventFrom {
    /// The `event:` line, else the data's `type_pointer`, else `message`.
    #[default]
    EventLine,
    /// The data's `type_pointer` (else `message`); `event:` lines are ignored.
    Data,
}

/// `assemble:` — a builtin name or rules.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Assemble {
    /// `events` (`{events: [data, ...]}`) or `last` (the last event's data).
    Named(String),
    Rules(AssembleSpec),
}

impl Assemble {
    pub const BUILTINS: [&'static str; 2] = ["events", "last"];

    pub fn default_events() -> Assemble {
        Assemble::Named("events".into())
    }
}

/// Assembly declared as data: an initial value, rules applied to each event, finishing steps.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssembleSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<AssembleStart>,
    #[serde(default)]
    pub rules: Vec<AssembleRule>,
    #[serde(default)]
    pub finish: Vec<FinishStep>,
}

/// The initial value: a pointer into the event named `on` (or into the first event).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssembleStart {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<String>,
    #[serde(default)]
    pub take: String,
    /// Pointers removed from the taken value (rules rebuild them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drop: Vec<String>,
}

/// One event name or several.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EventNames {
    One(String),
    Many(Vec<String>),
}

impl EventNames {
    pub fn contains(&self, name: &str) -> bool {
        match self {
            EventNames::One(n) => n == name,
            EventNames::Many(ns) => ns.iter().any(|n| n == name),
        }
    }

    pub fn first(&self) -> Option<&str> {
        match self {
            EventNames::One(n) => Some(n),
            EventNames::Many(ns) => ns.first().map(String::as_str),
        }
    }
}

/// A rule: on matching events, write the value at `value` (a pointer into the event) to the
/// target pointer template with exactly one of `set`, `append`, `merge`, `push`, `accumulate`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssembleRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<EventNames>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<RuleWhen>,
    /// Apply the rule once per item of the array at this pointer (pointers then start at the item).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub each: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub append: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accumulate: Option<String>,
    /// Pointer into the event (or `each` item) for the value; `""` is all of it.
    #[serde(default)]
    pub value: String,
    /// A missing value is an error instead of skipping the rule.
    #[serde(default)]
    pub required: bool,
    /// `merge` only: null members of the value are not copied.
    #[serde(default)]
    pub skip_nulls: bool,
}

/// Which write a rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleOp {
    Set,
    Append,
    Merge,
    Push,
    Accumulate,
}

impl RuleOp {
    pub fn name(self) -> &'static str {
        match self {
            RuleOp::Set => "set",
            RuleOp::Append => "append",
            RuleOp::Merge => "merge",
            RuleOp::Push => "push",
            RuleOp::Accumulate => "accumulate",
        }
    }
}

impl AssembleRule {
    /// Every `(op, target)` the rule declares (a valid rule has exactly one).
    pub fn ops(&self) -> Vec<(RuleOp, &str)> {
        [
            (RuleOp::Set, &self.set),
            (RuleOp::Append, &self.append),
            (RuleOp::Merge, &self.merge),
            (RuleOp::Push, &self.push),
            (RuleOp::Accumulate, &self.accumulate),
        ]
        .into_iter()
        .filter_map(|(op, t)| t.as_deref().map(|t| (op, t)))
        .collect()
    }
}

/// A condition on the event (or `each` item): the value at `pointer` equals `equals`, or, with
/// no `equals`, is present and not null.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleWhen {
    pub pointer: String,
    #[serde(
        default,
        deserialize_with = "present_value",
        skip_serializing_if = "Option::is_none"
    )]
    pub equals: Option<Value>,
}

/// A finishing step on the assembled value; paths may use `*` for "every member".
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinishStep {
    /// Parse the collected JSON text at each match (empty text is `{}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parse_json: Option<String>,
    /// With `parse_json`: store the parsed value in this sibling field and remove the text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub into: Option<String>,
    /// Remove each match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove: Option<String>,
    /// Drop the null items of each matched array.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compact: Option<String>,
    /// Set each match to `to`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<String>,
    /// Set each match to `to` where it is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// The constant for `set` / `default` (`null` included).
    #[serde(
        default,
        deserialize_with = "present_value",
        skip_serializing_if = "Option::is_none"
    )]
    pub to: Option<Value>,
}

/// Placeholders `"{...}"` in a simulator template whose inside is not a JSON pointer.
fn template_pointers(v: &Value, bad: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            if let Some(inner) = s.strip_prefix('{').and_then(|r| r.strip_suffix('}'))
                && !inner.is_empty()
                && !inner.starts_with('/')
            {
                bad.push(inner.to_string());
            }
        }
        Value::Array(items) => items.iter().for_each(|i| template_pointers(i, bad)),
        Value::Object(m) => m.values().for_each(|i| template_pointers(i, bad)),
        _ => {}
    }
}

/// A key that is present is `Some`, even when its value is `null`.
fn present_value<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl FinishStep {
    /// `(step name, path)` for each step the entry declares (a valid entry has exactly one).
    pub fn steps(&self) -> Vec<(&'static str, &str)> {
        [
            ("parse_json", &self.parse_json),
            ("remove", &self.remove),
            ("compact", &self.compact),
            ("set", &self.set),
            ("default", &self.default),
        ]
        .into_iter()
        .filter_map(|(n, p)| p.as_deref().map(|p| (n, p)))
        .collect()
    }
}

/// A simulator event template: `data` with every string `"{/pointer}"` replaced by the answer's
/// value at that pointer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulatedEvent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    pub data: Value,
}

/// One segment of a target template: a literal key or `{/pointer}` into the event.
#[derive(Debug, Clone, PartialEq)]
pub enum Seg {
    Key(String),
    Ptr(String),
}

/// Parse a target template such as `/content/{/index}/text`. `""` is the root.
pub fn parse_template(t: &str) -> std::result::Result<Vec<Seg>, String> {
    if t.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = t.strip_prefix('/') else {
        return Err(format!("'{t}' must be \"\" or start with '/'"));
    };
    let mut segs = Vec::new();
    let mut cur = String::new();
    let mut depth = 0;
    for c in rest.chars() {
        match c {
            '{' => {
                depth += 1;
                cur.push(c);
            }
            '}' => {
                depth -= 1;
                cur.push(c);
            }
            '/' if depth == 0 => segs.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
        if !(0..=1).contains(&depth) {
            return Err(format!("'{t}' has unbalanced or nested braces"));
        }
    }
    if depth != 0 {
        return Err(format!("'{t}' has an unclosed '{{'"));
    }
    segs.push(cur);
    segs.into_iter()
        .map(|s| {
            if let Some(inner) = s.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
                check_pointer(inner).map(|_| Seg::Ptr(inner.to_string()))
            } else if s.contains(['{', '}']) {
                Err(format!(
                    "'{t}': a placeholder must be a whole segment, like /items/{{/index}}"
                ))
            } else {
                Ok(Seg::Key(unescape(&s)))
            }
        })
        .collect()
}

/// A finishing path: literal segments and `*` (every member).
pub fn parse_pattern(p: &str) -> std::result::Result<Vec<Option<String>>, String> {
    if p.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = p.strip_prefix('/') else {
        return Err(format!("'{p}' must be \"\" or start with '/'"));
    };
    Ok(rest
        .split('/')
        .map(|s| if s == "*" { None } else { Some(unescape(s)) })
        .collect())
}

pub fn check_pointer(p: &str) -> std::result::Result<(), String> {
    if p.is_empty() || p.starts_with('/') {
        Ok(())
    } else {
        Err(format!(
            "'{p}' is not a JSON pointer (use \"\" for all of it, or start with '/')"
        ))
    }
}

pub fn unescape(s: &str) -> String {
    s.replace("~1", "/").replace("~0", "~")
}

/// Every problem in an assembly spec, as `(where, what)`; used by the manifest lint too.
pub fn check_spec(spec: &AssembleSpec) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(s) = &spec.start {
        if let Err(e) = check_pointer(&s.take) {
            out.push(("/start/take".into(), e));
        }
        for (i, d) in s.drop.iter().enumerate() {
            if let Err(e) = check_pointer(d).and_then(|_| {
                if d.is_empty() {
                    Err("cannot drop the whole value".into())
                } else {
                    Ok(())
                }
            }) {
                out.push((format!("/start/drop/{i}"), e));
            }
        }
    }
    for (i, r) in spec.rules.iter().enumerate() {
        let at = format!("/rules/{i}");
        let ops = r.ops();
        if ops.len() != 1 {
            out.push((
                at.clone(),
                format!(
                    "a rule needs exactly one of set, append, merge, push, accumulate (found {})",
                    if ops.is_empty() {
                        "none".to_string()
                    } else {
                        ops.iter()
                            .map(|(o, _)| o.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ),
            ));
        }
        for (op, t) in &ops {
            if let Err(e) = parse_template(t) {
                out.push((format!("{at}/{}", op.name()), e));
            }
        }
        if r.skip_nulls && !ops.iter().any(|(o, _)| *o == RuleOp::Merge) {
            out.push((
                format!("{at}/skip_nulls"),
                "skip_nulls only applies to merge".into(),
            ));
        }
        if let Err(e) = check_pointer(&r.value) {
            out.push((format!("{at}/value"), e));
        }
        if let Some(e) = &r.each
            && let Err(e) = check_pointer(e)
        {
            out.push((format!("{at}/each"), e));
        }
        if let Some(w) = &r.when
            && let Err(e) = check_pointer(&w.pointer)
        {
            out.push((format!("{at}/when/pointer"), e));
        }
    }
    for (i, f) in spec.finish.iter().enumerate() {
        let at = format!("/finish/{i}");
        let steps = f.steps();
        if steps.len() != 1 {
            out.push((
                at.clone(),
                "a finish step needs exactly one of parse_json, remove, compact, set, default"
                    .into(),
            ));
        }
        for (name, p) in &steps {
            if let Err(e) = parse_pattern(p) {
                out.push((format!("{at}/{name}"), e));
            } else if p.is_empty() && *name != "compact" && *name != "set" {
                out.push((
                    format!("{at}/{name}"),
                    format!("{name} needs a path below the root"),
                ));
            }
        }
        let needs_to = steps.iter().any(|(n, _)| *n == "set" || *n == "default");
        if needs_to != f.to.is_some() {
            out.push((
                at.clone(),
                if needs_to {
                    "set and default need 'to' (the constant to write)".into()
                } else {
                    "'to' only goes with set or default".into()
                },
            ));
        }
        if f.into.is_some() && f.parse_json.is_none() {
            out.push((
                format!("{at}/into"),
                "'into' only goes with parse_json".into(),
            ));
        }
    }
    out
}

impl Manifest {
    /// Stream declarations: a known assembler, well-formed rules and pointers, each dialect key
    /// in one place, and a way to ask for the stream.
    pub(super) fn lint_streams(&self, problems: &mut Vec<(String, String)>) {
        for (name, f) in &self.functions {
            let Some(s) = &f.stream else { continue };
            let at = format!("/functions/{name}/stream");
            if s.param.is_empty() && f.response != ResponseKind::Sse {
                problems.push((
                    at.clone(),
                    "a stream needs 'param' (the boolean argument that asks for it) unless the function has 'response: sse'".into(),
                ));
            }
            match &s.assemble {
                Assemble::Named(n) if !Assemble::BUILTINS.contains(&n.as_str()) => {
                    problems.push((
                        format!("{at}/assemble"),
                        format!(
                            "unknown assembler '{n}' (builtins: {}; anything else is declared as rules: start, rules, finish)",
                            Assemble::BUILTINS.join(", ")
                        ),
                    ));
                }
                Assemble::Named(_) => {}
                Assemble::Rules(spec) => {
                    for (sub, msg) in check_spec(spec) {
                        problems.push((format!("{at}/assemble{sub}"), msg));
                    }
                    // Keep-alive and error events never reach the assembler.
                    let (keepalive, error) = (s.keepalive(), s.error_name());
                    let unreachable = |n: &str| keepalive.iter().any(|k| k == n) || n == error;
                    let mut named: Vec<(String, &str)> = Vec::new();
                    if let Some(on) = spec.start.as_ref().and_then(|st| st.on.as_deref()) {
                        named.push(("/start/on".into(), on));
                    }
                    for (i, r) in spec.rules.iter().enumerate() {
                        match &r.on {
                            Some(EventNames::One(n)) => named.push((format!("/rules/{i}/on"), n)),
                            Some(EventNames::Many(ns)) => named
                                .extend(ns.iter().map(|n| (format!("/rules/{i}/on"), n.as_str()))),
                            None => {}
                        }
                    }
                    for (sub, n) in named {
                        if unreachable(n) {
                            problems.push((
                                format!("{at}/assemble{sub}"),
                                format!("'{n}' is a keep-alive or error event: it never reaches the assembler"),
                            ));
                        }
                    }
                }
            }
            let d = &s.dialect;
            for (key, old, new) in [
                ("end_events", s.end_events.is_some(), d.end_events.is_some()),
                (
                    "error_event",
                    s.error_event.is_some(),
                    d.error_event.is_some(),
                ),
                (
                    "keepalive_events",
                    s.keepalive_events.is_some(),
                    d.keepalive_events.is_some(),
                ),
            ] {
                if old && new {
                    problems.push((
                        format!("{at}/{key}"),
                        format!(
                            "'{key}' is given both here and in 'dialect': keep the one in 'dialect'"
                        ),
                    ));
                }
            }
            for (key, p) in [
                ("type_pointer", d.type_pointer.as_deref()),
                ("error_pointer", d.error_pointer.as_deref()),
            ] {
                if let Some(p) = p
                    && !p.starts_with('/')
                {
                    problems.push((
                        format!("{at}/dialect/{key}"),
                        format!("'{p}' is not a JSON pointer (it starts with '/')"),
                    ));
                }
            }
            if d.done.as_deref().is_some_and(|t| t.trim().is_empty()) {
                problems.push((
                    format!("{at}/dialect/done"),
                    "the done sentinel cannot be blank".into(),
                ));
            }
            for (i, t) in s.simulate.iter().enumerate() {
                let mut bad = Vec::new();
                template_pointers(&t.data, &mut bad);
                for p in bad {
                    problems.push((
                        format!("{at}/simulate/{i}/data"),
                        format!(
                            "'{{{p}}}' is not a JSON pointer placeholder (write \"{{/field}}\")"
                        ),
                    ));
                }
            }
        }
    }
}

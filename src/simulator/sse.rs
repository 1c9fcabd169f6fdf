//! Server-sent events for any streaming function, from its manifest's `stream:` declaration.
//!
//! When a call asks for a stream (`stream.param` is `true`, or the function is `response: sse`),
//! the JSON answer the simulator would have sent is written as an event sequence that the
//! declared assembler folds back into that same answer:
//!
//! 1. `stream.simulate` templates when the manifest declares them (strings `"{/pointer}"` are
//!    replaced by the answer's value there), else
//! 2. events derived from the assembly rules: a start event, then, rule by rule, events whose
//!    values are what the rule reads (an `each` rule's items share one event), else
//! 3. a start event holding the whole answer.
//!
//! A derived sequence is used only if folding it with the declared dialect and assembler gives
//! back the answer; then come the end event (the first of `end_events`) and the `done` sentinel.

use indexmap::IndexMap;
use serde_json::{Map, Value, json};

use super::request::Call;
use super::wire::{Reply, Tail};
use crate::exec::sse::{StreamFold, set_pointer};
use crate::manifest::{Assemble, EventFrom, ResponseKind, RuleOp, StreamSpec};

/// The streamed reply for `call`, or `None` when the call does not ask for a stream.
pub fn stream_reply(call: &Call, answer: &Value, status: u16) -> Option<Reply> {
    let spec = call.f.stream.as_ref()?;
    let wanted = if spec.param.is_empty() {
        call.f.response == ResponseKind::Sse
    } else {
        call.args.get(&spec.param) == Some(&Value::Bool(true))
    };
    if !wanted || status >= 400 {
        return None;
    }
    let events = stream_events(spec, answer);
    // Named events and no sentinel: the simulator's own event reply, so scripted stream faults
    // (early end, hang, error event) apply to it too.
    if spec.dialect.done.is_none() && events.iter().all(|(n, _)| n.is_some()) {
        return Some(Reply::Sse {
            events: events
                .into_iter()
                .map(|(n, d)| (n.unwrap_or_default(), d))
                .collect(),
            tail: Tail::Complete,
        });
    }
    Some(Reply::Raw {
        status,
        content_type: "text/event-stream; charset=utf-8".into(),
        body: render(spec, &events),
    })
}

/// The wire bytes of `answer` as the declared stream.
pub fn stream_bytes(spec: &StreamSpec, answer: &Value) -> Vec<u8> {
    render(spec, &stream_events(spec, answer))
}

/// The events (names already written into the data, end event included; not the sentinel).
fn stream_events(spec: &StreamSpec, answer: &Value) -> Vec<(Option<String>, Value)> {
    let candidates: Vec<Vec<(Option<String>, Value)>> = if spec.simulate.is_empty() {
        derived(spec, answer)
    } else {
        vec![
            spec.simulate
                .iter()
                .map(|t| (t.event.clone(), fill(&t.data, answer)))
                .collect(),
        ]
    };
    let mut first = None;
    for events in candidates {
        let events = complete(spec, events);
        if !spec.simulate.is_empty() {
            return events;
        }
        if folds_back(spec, &render(spec, &events), answer) {
            return split_text(spec, answer, events);
        }
        first.get_or_insert(events);
    }
    first.unwrap_or_else(|| complete(spec, vec![(None, answer.clone())]))
}

/// The most pieces a streamed text is cut into.
const MAX_PIECES: usize = 8;

/// Make a stream look like one: the longest multi-word text is sent in word-sized pieces, each
/// piece in an event of its own, if the declared rules fold the pieces back into the answer
/// (they do for `append` / `accumulate` targets). Otherwise `events` as they are.
fn split_text(
    spec: &StreamSpec,
    answer: &Value,
    events: Vec<(Option<String>, Value)>,
) -> Vec<(Option<String>, Value)> {
    let mut best: Option<(usize, String, String)> = None;
    for (i, (_, data)) in events.iter().enumerate() {
        let mut leaves = Vec::new();
        string_leaves(data, String::new(), &mut leaves);
        for (at, text) in leaves {
            if text.trim().contains(char::is_whitespace)
                && best.as_ref().is_none_or(|(_, _, t)| text.len() > t.len())
            {
                best = Some((i, at, text));
            }
        }
    }
    let Some((i, at, text)) = best else {
        return events;
    };
    let pieces = pieces(&text);
    if pieces.len() < 2 {
        return events;
    }
    let (name, data) = events[i].clone();
    let Some((last, early)) = pieces.split_last() else {
        return events;
    };
    // The early pieces alone (the envelope kept), then the whole event with the last piece:
    // what ends a message (a finish reason, tool calls) comes at the end, as on the wire.
    for keep_top_level in [true, false] {
        let mut candidate = events[..i].to_vec();
        for piece in early {
            let mut ev = strip_strings(&data, &at, "", keep_top_level).unwrap_or(Value::Null);
            set_pointer(&mut ev, &at, json!(piece));
            candidate.push((name.clone(), ev));
        }
        let mut full = data.clone();
        set_pointer(&mut full, &at, json!(last));
        candidate.push((name.clone(), full));
        candidate.extend(events[i + 1..].iter().cloned());
        if folds_back(spec, &render(spec, &candidate), answer) {
            return candidate;
        }
    }
    events
}

/// Every string in `v` with its pointer.
fn string_leaves(v: &Value, at: String, out: &mut Vec<(String, String)>) {
    let esc = |k: &str| k.replace('~', "~0").replace('/', "~1");
    match v {
        Value::String(s) => out.push((at, s.clone())),
        Value::Array(items) => {
            for (i, c) in items.iter().enumerate() {
                string_leaves(c, format!("{at}/{i}"), out);
            }
        }
        Value::Object(m) => {
            for (k, c) in m {
                string_leaves(c, format!("{at}/{}", esc(k)), out);
            }
        }
        _ => {}
    }
}

/// `text` cut after whitespace into at most [`MAX_PIECES`] pieces that concatenate back to it.
fn pieces(text: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut after_space = false;
    for c in text.chars() {
        if after_space && !c.is_whitespace() {
            words.push(std::mem::take(&mut cur));
        }
        after_space = c.is_whitespace();
        cur.push(c);
    }
    words.push(cur);
    let per = words.len().div_ceil(MAX_PIECES).max(1);
    words.chunks(per).map(|c| c.concat()).collect()
}

/// `v` without its strings (except the one at `keep`, and top-level ones if asked), and without
/// the objects and arrays that leaves empty; numbers, booleans and nulls stay.
fn strip_strings(v: &Value, keep: &str, at: &str, keep_top_level: bool) -> Option<Value> {
    let esc = |k: &str| k.replace('~', "~0").replace('/', "~1");
    match v {
        Value::String(_) => {
            (at == keep || (keep_top_level && at.matches('/').count() == 1)).then(|| v.clone())
        }
        Value::Array(items) => {
            let kept: Vec<Value> = items
                .iter()
                .enumerate()
                .filter_map(|(i, c)| strip_strings(c, keep, &format!("{at}/{i}"), keep_top_level))
                .collect();
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        Value::Object(m) => {
            let kept: Map<String, Value> = m
                .iter()
                .filter_map(|(k, c)| {
                    strip_strings(c, keep, &format!("{at}/{}", esc(k)), keep_top_level)
                        .map(|c| (k.clone(), c))
                })
                .collect();
            // An item left with nothing but its `index` says nothing: drop it.
            let empty = kept.keys().all(|k| k == "index");
            (!empty || at.is_empty()).then_some(Value::Object(kept))
        }
        other => Some(other.clone()),
    }
}

/// Candidate event sequences for the declared assembler, most plausible first.
fn derived(spec: &StreamSpec, answer: &Value) -> Vec<Vec<(Option<String>, Value)>> {
    match &spec.assemble {
        Assemble::Named(n) if n == "events" => {
            let events = match answer.get("events") {
                Some(Value::Array(list)) => list.iter().map(|d| (None, d.clone())).collect(),
                _ => vec![(None, answer.clone())],
            };
            vec![events]
        }
        Assemble::Named(_) => vec![vec![(None, answer.clone())]],
        Assemble::Rules(r) => {
            // The rules build the value before its finishing steps: derive from that form
            // (tool input back to the JSON text the deltas carry); folding checks the answer.
            let unfinished = crate::exec::sse::unfinish(r, answer);
            let answer = &unfinished;
            let start = r.start.as_ref();
            let on = start.and_then(|s| s.on.clone());
            let snapshot = |drop: bool| {
                let mut taken = answer.clone();
                if drop {
                    for d in start.map(|s| s.drop.as_slice()).unwrap_or(&[]) {
                        remove(&mut taken, d);
                    }
                }
                let mut data = Value::Null;
                set_pointer(&mut data, start.map_or("", |s| s.take.as_str()), taken);
                (on.clone(), data)
            };
            let mut out = Vec::new();
            // Deltas for `accumulate` in the wire's usual form first: list items carrying their
            // `index` (when a finish step removes it again), then as the answer has them.
            for indexed in [true, false] {
                let mut by_rules = Vec::new();
                if start.is_some() {
                    by_rules.push(snapshot(true));
                }
                by_rules.extend(rule_events(spec, answer, indexed));
                // All of it in one event, when the rules allow (a chunk that carries everything).
                let mut one = (on.clone(), Value::Null);
                for (name, data) in &by_rules {
                    if name.is_some() && one.0.is_some() && name != &one.0 {
                        continue;
                    }
                    one.0 = one.0.or_else(|| name.clone());
                    merge_into(&mut one.1, data.clone());
                }
                out.push(vec![one]);
                out.push(by_rules);
            }
            out.push(vec![snapshot(false)]);
            out
        }
    }
}

/// One event per rule match (an `each` rule's matches share one event per rule group).
fn rule_events(spec: &StreamSpec, answer: &Value, indexed: bool) -> Vec<(Option<String>, Value)> {
    let Assemble::Rules(r) = &spec.assemble else {
        return Vec::new();
    };
    // (on, each, when, match index for non-`each` rules) -> event data
    let mut groups: IndexMap<String, (Option<String>, Value)> = IndexMap::new();
    for rule in &r.rules {
        let Some((op, template)) = rule.ops().into_iter().next() else {
            continue;
        };
        if op == RuleOp::Push {
            continue;
        }
        // A rule for every event: its events are named like the start event.
        let name = rule
            .on
            .as_ref()
            .and_then(|o| o.first())
            .or_else(|| r.start.as_ref().and_then(|st| st.on.as_deref()))
            .map(str::to_string);
        let when = rule
            .when
            .as_ref()
            .map(|w| (w.pointer.clone(), w.equals.clone()));
        for (k, (bindings, value)) in matches(answer, template).into_iter().enumerate() {
            if value.is_null() {
                continue;
            }
            let key = json!([
                name,
                rule.each,
                when,
                if rule.each.is_some() { 0 } else { k }
            ])
            .to_string();
            let entry = groups
                .entry(key)
                .or_insert_with(|| (name.clone(), Value::Object(Map::new())));
            let value = if indexed && op == RuleOp::Accumulate {
                with_indexes(value)
            } else {
                value
            };
            let mut item = Value::Object(Map::new());
            set_pointer(&mut item, &rule.value, value);
            for (p, b) in bindings {
                set_pointer(&mut item, &p, b);
            }
            if let Some((p, Some(eq))) = &when {
                set_pointer(&mut item, p, eq.clone());
            }
            match &rule.each {
                Some(each) => {
                    let at = format!("{each}/{k}");
                    let mut merged = entry.1.pointer(&at).cloned().unwrap_or(Value::Null);
                    merge_into(&mut merged, item);
                    set_pointer(&mut entry.1, &at, merged);
                }
                None => merge_into(&mut entry.1, item),
            }
        }
    }
    groups.into_values().collect()
}

/// Objects in lists get their position as `index` (how deltas address list items).
fn with_indexes(v: Value) -> Value {
    match v {
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| match with_indexes(item) {
                    Value::Object(mut m) => {
                        if !m.contains_key("index") {
                            m.insert("index".into(), json!(i));
                        }
                        Value::Object(m)
                    }
                    other => other,
                })
                .collect(),
        ),
        Value::Object(m) => {
            Value::Object(m.into_iter().map(|(k, v)| (k, with_indexes(v))).collect())
        }
        other => other,
    }
}

/// Every place `template` (with `{/pointer}` segments as wildcards) matches in `v`: the
/// placeholder bindings (array positions as numbers, keys as strings) and the value there.
fn matches(v: &Value, template: &str) -> Vec<(Vec<(String, Value)>, Value)> {
    let segs: Vec<String> = if template.is_empty() {
        Vec::new()
    } else {
        split_template(template)
    };
    let mut out = Vec::new();
    walk(v, &segs, Vec::new(), &mut out);
    out
}

fn walk(
    v: &Value,
    segs: &[String],
    bound: Vec<(String, Value)>,
    out: &mut Vec<(Vec<(String, Value)>, Value)>,
) {
    let Some((seg, rest)) = segs.split_first() else {
        out.push((bound, v.clone()));
        return;
    };
    if let Some(p) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
        let children: Vec<(Value, &Value)> = match v {
            Value::Array(a) => a.iter().enumerate().map(|(i, c)| (json!(i), c)).collect(),
            Value::Object(m) => m.iter().map(|(k, c)| (json!(k), c)).collect(),
            _ => Vec::new(),
        };
        for (key, child) in children {
            let mut b = bound.clone();
            b.push((p.to_string(), key));
            walk(child, rest, b, out);
        }
        return;
    }
    let key = seg.replace("~1", "/").replace("~0", "~");
    let child = match v {
        Value::Object(m) => m.get(&key),
        Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    };
    if let Some(c) = child {
        walk(c, rest, bound, out);
    }
}

/// Split `/a/{/b/c}/d` into `a`, `{/b/c}`, `d`.
fn split_template(t: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0i32;
    for c in t.strip_prefix('/').unwrap_or(t).chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => {}
        }
        if c == '/' && depth == 0 {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

/// Deep-merge `from` into `into` (objects member by member; anything else replaces).
fn merge_into(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge_into(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

fn remove(v: &mut Value, pointer: &str) {
    if let Some((parent, key)) = pointer.rsplit_once('/')
        && let Some(Value::Object(m)) = v.pointer_mut(parent)
    {
        m.shift_remove(&key.replace("~1", "/").replace("~0", "~"));
    }
}

/// Replace every string `"{/pointer}"` in a template by the answer's value there (null if absent).
fn fill(template: &Value, answer: &Value) -> Value {
    match template {
        Value::String(s) => match s.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
            Some(p) if p.is_empty() || p.starts_with('/') => {
                answer.pointer(p).cloned().unwrap_or(Value::Null)
            }
            _ => template.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(|i| fill(i, answer)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), fill(v, answer)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Name each event in its data (at the dialect's type pointer, when absent) and add the end
/// event the dialect declares.
fn complete(
    spec: &StreamSpec,
    mut events: Vec<(Option<String>, Value)>,
) -> Vec<(Option<String>, Value)> {
    let ends = spec.ends();
    let has_end = events
        .iter()
        .any(|(n, _)| n.as_ref().is_some_and(|n| ends.contains(n)));
    if let Some(end) = ends.first()
        && !has_end
    {
        events.push((Some(end.clone()), Value::Object(Map::new())));
    }
    // The name goes into the data too: where the dialect reads it (`event_from: data`), and
    // where it is missing (`type` beside the `event:` line, as services usually send it).
    let tp = spec.dialect.type_pointer();
    let from_data = spec.dialect.event_from == EventFrom::Data;
    for (name, data) in &mut events {
        if let Some(n) = name
            && data.is_object()
            && (from_data || data.pointer(tp).is_none())
        {
            set_pointer(data, tp, json!(n));
        }
    }
    events
}

/// Write the events, then the `done` sentinel the dialect declares.
fn render(spec: &StreamSpec, events: &[(Option<String>, Value)]) -> Vec<u8> {
    let d = &spec.dialect;
    let mut out = String::new();
    for (name, data) in events {
        if let Some(n) = name
            && d.event_from == EventFrom::EventLine
        {
            out.push_str(&format!("event: {n}\n"));
        }
        out.push_str(&format!("data: {data}\n\n"));
    }
    if let Some(done) = &d.done {
        out.push_str(&format!("data: {done}\n\n"));
    }
    out.into_bytes()
}

/// Whether the declared dialect and assembler turn `bytes` back into `answer`.
fn folds_back(spec: &StreamSpec, bytes: &[u8], answer: &Value) -> bool {
    let run = || -> crate::error::Result<Value> {
        let mut f = StreamFold::new(Some(spec))?;
        for ev in f.push(bytes)? {
            if f.is_keepalive(&ev) || f.is_error(&ev) {
                continue;
            }
            f.fold(&ev)?;
        }
        if let Some(ev) = f.flush()? {
            f.fold(&ev)?;
        }
        if !f.finished() {
            return Err(crate::error::Error::config("unfinished"));
        }
        f.finish()
    };
    run().is_ok_and(|v| &v == answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> StreamSpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn fold(spec: &StreamSpec, bytes: &[u8]) -> Value {
        let mut f = StreamFold::new(Some(spec)).unwrap();
        for ev in f.push(bytes).unwrap() {
            f.fold(&ev).unwrap();
        }
        assert!(f.finished());
        f.finish().unwrap()
    }

    const CHUNK_SPEC: &str = r#"
param: stream
dialect: {event_from: data, type_pointer: /object, done: "[DONE]", error_pointer: /error}
assemble:
  start: {on: chat.completion.chunk, take: "", drop: [/choices]}
  rules:
    - {each: /choices, set: "/choices/{/index}/index", value: /index}
    - {each: /choices, accumulate: "/choices/{/index}/message", value: /delta}
    - {each: /choices, accumulate: "/choices/{/index}/logprobs", value: /logprobs}
    - {each: /choices, set: "/choices/{/index}/finish_reason", value: /finish_reason}
    - {set: /usage, value: /usage}
  finish:
    - {set: /object, to: chat.completion}
    - {default: "/choices/*/logprobs", to: null}
    - {remove: "/choices/*/message/tool_calls/*/index"}
"#;

    fn completion() -> Value {
        json!({"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "Hi there, how are you today?",
                    "tool_calls": [{"id": "t", "type": "function",
                        "function": {"name": "f", "arguments": "{}"}}]},
                 "logprobs": null, "finish_reason": "stop"},
                {"index": 1, "message": {"role": "assistant", "content": "Yo"},
                 "logprobs": null, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}})
    }

    #[test]
    fn chunk_streams_are_derived_from_the_rules_and_fold_back() {
        let s = spec(CHUNK_SPEC);
        let bytes = stream_bytes(&s, &completion());
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
        assert!(!text.contains("event:"), "{text}");
        assert!(text.contains("\"delta\""), "derived from the rules: {text}");
        assert!(
            text.matches("data: ").count() > 2,
            "the text comes in pieces: {text}"
        );
        assert_eq!(fold(&s, &bytes), completion());
    }

    #[test]
    fn message_streams_fall_back_to_a_start_snapshot_and_end_event() {
        let s = spec(
            r#"
param: stream
dialect: {end_events: [message_stop]}
assemble:
  start: {on: message_start, take: /message}
  rules:
    - {on: content_block_start, set: "/content/{/index}", value: /content_block}
    - {on: content_block_delta, when: {pointer: /delta/type, equals: text_delta}, append: "/content/{/index}/text", value: /delta/text}
  finish:
    - {compact: /content}
"#,
        );
        let answer = json!({"id": "m", "content": [{"type": "text", "text": "Hello"}]});
        let bytes = stream_bytes(&s, &answer);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with("event: message_start\n"), "{text}");
        assert!(text.contains("event: message_stop\n"), "{text}");
        assert_eq!(fold(&s, &bytes), answer);
    }

    #[test]
    fn templates_win_and_fill_pointers_from_the_answer() {
        let mut s = spec(CHUNK_SPEC);
        s.simulate = serde_yaml::from_str(
            r#"
- data: {id: "{/id}", object: chat.completion.chunk, created: "{/created}", model: "{/model}",
         choices: [{index: 0, delta: {role: assistant, content: ""}, finish_reason: null}]}
- data: {id: "{/id}", object: chat.completion.chunk, created: "{/created}", model: "{/model}",
         choices: [{index: 0, delta: {content: "{/choices/0/message/content}"}, finish_reason: "{/choices/0/finish_reason}"}]}
"#,
        )
        .unwrap();
        let answer = json!({"id": "c9", "object": "chat.completion", "created": 5, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hey"},
                         "logprobs": null, "finish_reason": "stop"}]});
        let bytes = stream_bytes(&s, &answer);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert_eq!(text.matches("chat.completion.chunk").count(), 2, "{text}");
        assert_eq!(fold(&s, &bytes), answer);
    }

    #[test]
    fn event_lists_stream_each_event() {
        let s = spec("{param: stream, assemble: events}");
        let answer = json!({"events": [{"type": "a"}, {"type": "b"}]});
        let bytes = stream_bytes(&s, &answer);
        assert_eq!(fold(&s, &bytes), answer);
    }
}

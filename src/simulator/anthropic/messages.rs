//! Messages: deterministic replies, their streams, and token counts.
//!
//! The reply echoes the start of the last user message, then adds filler drawn from a word list
//! by a generator seeded with the request and `--seed`: the same request always gets the same
//! answer, and a test can make a stop sequence fire by putting it in its own prompt. A word is a
//! token. `max_tokens` cuts the reply (`stop_reason: max_tokens`); a forced `tool_choice` (or a
//! prompt that names a tool under `auto`) yields a `tool_use` block whose input is generated from
//! the tool's `input_schema`.

use serde_json::{Map, Value, json};

use super::{Rng, derived_id, stable_hash};
use crate::simulator::request::Call;
use crate::simulator::server::Sim;
use crate::simulator::wire::{self, Reply};

const WORDS: &[&str] = &[
    "the",
    "simulator",
    "answers",
    "offline",
    "with",
    "a",
    "steady",
    "and",
    "repeatable",
    "reply",
    "so",
    "your",
    "workflow",
    "can",
    "be",
    "tested",
    "without",
    "keys",
    "tokens",
    "network",
    "access",
    "every",
    "request",
    "gets",
    "same",
    "words",
    "for",
    "seed",
    "batch",
    "stream",
    "model",
    "message",
    "clear",
    "small",
    "useful",
    "result",
    "check",
    "value",
    "output",
    "input",
    "careful",
    "quick",
    "local",
    "plan",
    "step",
    "next",
    "then",
    "also",
    "here",
    "is",
];

/// Text of a message's content (a string or blocks), tool results included.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| match b.get("type").and_then(Value::as_str) {
                Some("text") => b.get("text").and_then(Value::as_str).map(str::to_string),
                Some("tool_result") => b.get("content").map(content_text),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

fn approx_tokens(chars: usize) -> u64 {
    (chars as u64).div_ceil(4)
}

/// The input token estimate shared by `count_tokens` and `usage.input_tokens`: about four
/// characters a token, a few tokens of framing per message, tool definitions counted as JSON.
pub fn input_tokens(params: &Value) -> u64 {
    let mut total = 3u64;
    if let Some(system) = params.get("system") {
        total += approx_tokens(content_text(system).chars().count()) + 2;
    }
    for m in params
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let content = m.get("content").unwrap_or(&Value::Null);
        let text_chars = content_text(content).chars().count();
        let other_chars = match content {
            Value::Array(blocks) => blocks
                .iter()
                .filter(|b| {
                    !matches!(
                        b.get("type").and_then(Value::as_str),
                        Some("text" | "tool_result")
                    )
                })
                .map(|b| b.to_string().len())
                .sum(),
            _ => 0,
        };
        total += 4 + approx_tokens(text_chars + other_chars);
    }
    if let Some(tools) = params.get("tools").and_then(Value::as_array) {
        if !tools.is_empty() {
            total += 300;
        }
        for t in tools {
            total += approx_tokens(t.to_string().len());
        }
    }
    total
}

/// A value that satisfies a JSON schema, for generated tool input.
pub fn sample(schema: &Value, name: &str, rng: &mut Rng, depth: usize) -> Value {
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    if let Some(Value::Array(e)) = schema.get("enum")
        && let Some(first) = e.first()
    {
        return first.clone();
    }
    if let Some(d) = schema.get("default") {
        return d.clone();
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(alts)) = schema.get(key)
            && let Some(first) = alts.first()
        {
            return sample(first, name, rng, depth);
        }
    }
    let ty = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "string",
    };
    match ty {
        "object" => {
            let mut out = Map::new();
            if depth < 6
                && let Some(Value::Object(props)) = schema.get("properties")
            {
                for (k, s) in props {
                    out.insert(k.clone(), sample(s, k, rng, depth + 1));
                }
            }
            Value::Object(out)
        }
        "array" => {
            let item = schema
                .get("items")
                .cloned()
                .unwrap_or(json!({"type": "string"}));
            let n = schema
                .get("minItems")
                .and_then(crate::simulator::request::as_int)
                .unwrap_or(1)
                .max(1);
            Value::Array(
                (0..n.min(3))
                    .map(|_| sample(&item, name, rng, depth + 1))
                    .collect(),
            )
        }
        "integer" => {
            let min = schema
                .get("minimum")
                .and_then(crate::simulator::request::as_int)
                .unwrap_or(1);
            json!(
                min.max(1).min(
                    schema
                        .get("maximum")
                        .and_then(crate::simulator::request::as_int)
                        .unwrap_or(i64::MAX)
                )
            )
        }
        "number" => {
            let min = schema.get("minimum").and_then(Value::as_f64).unwrap_or(1.5);
            json!(min)
        }
        "boolean" => json!(true),
        "null" => Value::Null,
        _ => json!(format!(
            "{name}_{}",
            WORDS[rng.below(WORDS.len() as u64) as usize]
        )),
    }
}

/// The largest `max_tokens` of a model the catalogue does not know: generous, so any plausible
/// new model works, yet a typo like `max_tokens: 10000000` is still refused.
pub const UNKNOWN_MODEL_MAX_TOKENS: i64 = 128_000;

/// The smallest thinking budget the API accepts.
pub const MIN_THINKING_BUDGET: i64 = 1024;

/// The rules the API applies beyond the JSON Schema, with its wording. `generating` is false for
/// `count_tokens`, which takes no `max_tokens`.
pub fn check(params: &Value, generating: bool) -> Result<(), String> {
    let messages = params.get("messages").and_then(Value::as_array);
    if messages.is_none_or(|m| m.is_empty()) {
        return Err("messages: at least one message is required".into());
    }
    let messages = messages.map(Vec::as_slice).unwrap_or_default();
    for (i, m) in messages.iter().enumerate() {
        let last_assistant =
            i + 1 == messages.len() && m.get("role").and_then(Value::as_str) == Some("assistant");
        let empty = match m.get("content") {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.is_empty(),
            Some(Value::Array(blocks)) => blocks.is_empty(),
            Some(_) => false,
        };
        if empty && !last_assistant {
            return Err(format!(
                "messages.{i}: all messages must have non-empty content except for the optional final assistant message"
            ));
        }
    }
    let tools: Vec<&str> = params
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("name").and_then(Value::as_str))
        .collect();
    let has_tools = params
        .get("tools")
        .and_then(Value::as_array)
        .is_some_and(|t| !t.is_empty());
    if let Some(choice) = params.get("tool_choice").filter(|c| !c.is_null()) {
        if !has_tools {
            return Err("tool_choice may only be specified while providing tools.".into());
        }
        if choice.get("type").and_then(Value::as_str) == Some("tool") {
            let name = choice.get("name").and_then(Value::as_str).unwrap_or("");
            if name.is_empty() {
                return Err("tool_choice.tool.name: Field required".into());
            }
            if !tools.contains(&name) {
                return Err(format!(
                    "tool_choice.name: tool '{name}' is not one of the request's tools ({})",
                    tools.join(", ")
                ));
            }
        }
    }
    let max_tokens = params
        .get("max_tokens")
        .and_then(crate::simulator::request::as_int);
    if generating && let Some(max) = max_tokens {
        let model = params.get("model").and_then(Value::as_str).unwrap_or("");
        let cap = super::models::find(model)
            .and_then(|m| m.get("max_tokens").and_then(Value::as_i64))
            .unwrap_or(UNKNOWN_MODEL_MAX_TOKENS);
        if max > cap {
            return Err(format!(
                "max_tokens: {max} > {cap}, which is the maximum allowed number of output tokens for {model}"
            ));
        }
    }
    let thinking = params.get("thinking").filter(|t| !t.is_null());
    if let Some(t) = thinking
        && t.get("type").and_then(Value::as_str) == Some("enabled")
    {
        let budget = match t.get("budget_tokens") {
            None | Some(Value::Null) => {
                return Err("thinking.enabled.budget_tokens: Field required".into());
            }
            Some(b) => crate::simulator::request::as_int(b).ok_or_else(|| {
                format!("thinking.enabled.budget_tokens: Input should be a valid integer, got {b}")
            })?,
        };
        if budget < MIN_THINKING_BUDGET {
            return Err(format!(
                "thinking.enabled.budget_tokens: Input should be greater than or equal to {MIN_THINKING_BUDGET}"
            ));
        }
        if generating
            && let Some(max) = max_tokens
            && budget >= max
        {
            return Err("`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size".into());
        }
    }
    Ok(())
}

/// A generated message (the `Message` object) for these params.
pub fn generate(seed: u64, params: &Value) -> Result<Value, String> {
    let model = params
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("claude");
    let messages = params.get("messages").and_then(Value::as_array);
    let last_user = messages
        .into_iter()
        .flatten()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .map(|m| content_text(m.get("content").unwrap_or(&Value::Null)))
        .unwrap_or_default();
    let basis = format!(
        "{}|{}|{}",
        model,
        params
            .get("system")
            .map(Value::to_string)
            .unwrap_or_default(),
        params
            .get("messages")
            .map(Value::to_string)
            .unwrap_or_default()
    );
    let mut rng = Rng::new(stable_hash(&basis, seed));
    let max_tokens = params
        .get("max_tokens")
        .and_then(crate::simulator::request::as_int)
        .map_or(4096, |n| n.max(0) as u64);
    let mut content = Vec::new();
    let mut output_tokens = 0u64;

    if params
        .get("thinking")
        .and_then(|t| t.get("type"))
        .and_then(Value::as_str)
        == Some("enabled")
    {
        let thinking = "The request is simulated, so I will answer with a deterministic reply.";
        output_tokens += thinking.split_whitespace().count() as u64;
        content.push(json!({
            "type": "thinking",
            "thinking": thinking,
            "signature": derived_id("sig_", &basis, seed),
        }));
    }

    if let Some((tool, preface)) = chosen_tool(params, &last_user)? {
        let name = tool.get("name").and_then(Value::as_str).unwrap_or("tool");
        let schema = tool
            .get("input_schema")
            .cloned()
            .unwrap_or(json!({"type": "object"}));
        let input = sample(&schema, name, &mut rng, 0);
        if preface {
            let text = format!("I'll use the {name} tool.");
            output_tokens += text.split_whitespace().count() as u64;
            content.push(json!({"type": "text", "text": text}));
        }
        output_tokens += approx_tokens(input.to_string().len()) + 8;
        content.push(json!({
            "type": "tool_use",
            "id": derived_id("toolu_", &format!("{basis}|{name}"), seed),
            "name": name,
            "input": input,
        }));
        return Ok(message(
            params,
            model,
            content,
            "tool_use",
            None,
            output_tokens,
        ));
    }

    let echo: Vec<&str> = last_user.split_whitespace().take(12).collect();
    let mut text = if echo.is_empty() {
        "Hello from the kosmo simulator.".to_string()
    } else {
        let said = echo.join(" ");
        format!("You said: {}.", said.trim_end_matches(['.', '!', '?']))
    };
    let filler = 12 + rng.below(30);
    for i in 0..filler {
        let w = WORDS[rng.below(WORDS.len() as u64) as usize];
        text.push(' ');
        if i == 0 {
            let mut c = w.chars();
            if let Some(f) = c.next() {
                text.push(f.to_ascii_uppercase());
                text.push_str(c.as_str());
            }
        } else {
            text.push_str(w);
        }
    }
    text.push('.');

    let mut stop_reason = "end_turn";
    let mut stop_sequence = None;
    let stops: Vec<&str> = params
        .get("stop_sequences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|s| !s.is_empty())
        .collect();
    if let Some((pos, seq)) = stops
        .iter()
        .filter_map(|s| text.find(s).map(|p| (p, *s)))
        .min_by_key(|(p, _)| *p)
    {
        text.truncate(pos);
        stop_reason = "stop_sequence";
        stop_sequence = Some(seq.to_string());
    }
    let budget = max_tokens.saturating_sub(output_tokens);
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.len() as u64 > budget {
        text = words[..budget as usize].join(" ");
        stop_reason = "max_tokens";
        stop_sequence = None;
    }
    output_tokens += text.split_whitespace().count() as u64;
    content.push(json!({"type": "text", "text": text}));
    Ok(message(
        params,
        model,
        content,
        stop_reason,
        stop_sequence,
        output_tokens,
    ))
}

/// The tool to call, and whether a short text block comes first (under `auto`).
fn chosen_tool<'a>(
    params: &'a Value,
    last_user: &str,
) -> Result<Option<(&'a Value, bool)>, String> {
    let tools: Vec<&Value> = params
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| t.get("name").is_some())
        .collect();
    let choice = params.get("tool_choice");
    let kind = choice
        .and_then(|c| c.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("auto");
    let by_name = |n: &str| {
        tools
            .iter()
            .copied()
            .find(|t| t.get("name").and_then(Value::as_str) == Some(n))
    };
    match kind {
        "tool" => {
            let name = choice
                .and_then(|c| c.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("");
            by_name(name).map(|t| Some((t, false))).ok_or_else(|| {
                format!("tool_choice.name: tool '{name}' is not one of the request's tools")
            })
        }
        "any" => Ok(tools.first().map(|t| (*t, false))),
        "none" => Ok(None),
        _ => Ok(tools
            .iter()
            .copied()
            .find(|t| {
                t.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| last_user.contains(n))
            })
            .map(|t| (t, true))),
    }
}

fn message(
    params: &Value,
    model: &str,
    content: Vec<Value>,
    stop_reason: &str,
    stop_sequence: Option<String>,
    output_tokens: u64,
) -> Value {
    json!({
        "id": wire::random_id("msg_01"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": {
            "input_tokens": input_tokens(params),
            "output_tokens": output_tokens.max(1),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "service_tier": "standard",
        },
    })
}

/// `POST /v1/messages`, as JSON or as a stream.
pub fn create(sim: &Sim, call: &Call) -> Reply {
    let seed = sim.opts.seed;
    if let Err(e) = check(&call.args, true) {
        return Reply::invalid(e);
    }
    let msg = match generate(seed, &call.args) {
        Ok(m) => m,
        Err(e) => return Reply::invalid(e),
    };
    if call.arg("stream").and_then(Value::as_bool) == Some(true) {
        Reply::Sse {
            events: stream_events(&msg),
            tail: wire::Tail::Complete,
        }
    } else {
        Reply::json(msg)
    }
}

fn chunks_of_words(text: &str, per: usize) -> Vec<String> {
    let pieces: Vec<&str> = text.split_inclusive(' ').collect();
    pieces.chunks(per.max(1)).map(|c| c.concat()).collect()
}

fn chunks_of_chars(text: &str, per: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars
        .chunks(per.max(1))
        .map(|c| c.iter().collect())
        .collect()
}

/// The SSE events of a message: `message_start`, per block start / deltas / stop, `ping`,
/// `message_delta` (cumulative usage), `message_stop`.
pub fn stream_events(msg: &Value) -> Vec<(String, Value)> {
    let ev = |name: &str, data: Value| (name.to_string(), data);
    let mut start = msg.clone();
    if let Some(m) = start.as_object_mut() {
        m.insert("content".into(), json!([]));
        m.insert("stop_reason".into(), Value::Null);
        m.insert("stop_sequence".into(), Value::Null);
        if let Some(u) = m.get_mut("usage").and_then(Value::as_object_mut) {
            u.insert("output_tokens".into(), json!(1));
        }
    }
    let mut events = vec![ev(
        "message_start",
        json!({"type": "message_start", "message": start}),
    )];
    let blocks = msg
        .get("content")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, block) in blocks.iter().enumerate() {
        let kind = block.get("type").and_then(Value::as_str).unwrap_or("text");
        let (empty, deltas): (Value, Vec<Value>) = match kind {
            "tool_use" => {
                let input = block
                    .get("input")
                    .map(Value::to_string)
                    .unwrap_or_else(|| "{}".into());
                (
                    json!({"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}),
                    chunks_of_chars(&input, 16)
                        .into_iter()
                        .map(|p| json!({"type": "input_json_delta", "partial_json": p}))
                        .collect(),
                )
            }
            "thinking" => {
                let text = block.get("thinking").and_then(Value::as_str).unwrap_or("");
                let mut d: Vec<Value> = chunks_of_words(text, 4)
                    .into_iter()
                    .map(|p| json!({"type": "thinking_delta", "thinking": p}))
                    .collect();
                d.push(json!({"type": "signature_delta", "signature": block["signature"]}));
                (
                    json!({"type": "thinking", "thinking": "", "signature": ""}),
                    d,
                )
            }
            _ => {
                let text = block.get("text").and_then(Value::as_str).unwrap_or("");
                (
                    json!({"type": "text", "text": ""}),
                    chunks_of_words(text, 3)
                        .into_iter()
                        .map(|p| json!({"type": "text_delta", "text": p}))
                        .collect(),
                )
            }
        };
        events.push(ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": i, "content_block": empty}),
        ));
        if i == 0 {
            events.push(ev("ping", json!({"type": "ping"})));
        }
        for d in deltas {
            events.push(ev(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": i, "delta": d}),
            ));
        }
        events.push(ev(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": i}),
        ));
    }
    let usage = msg.get("usage").cloned().unwrap_or(json!({}));
    events.push(ev(
        "message_delta",
        json!({
            "type": "message_delta",
            "delta": {"stop_reason": msg["stop_reason"], "stop_sequence": msg["stop_sequence"]},
            "usage": {
                "input_tokens": usage["input_tokens"],
                "output_tokens": usage["output_tokens"],
                "cache_creation_input_tokens": usage["cache_creation_input_tokens"],
                "cache_read_input_tokens": usage["cache_read_input_tokens"],
            },
        }),
    ));
    events.push(ev("message_stop", json!({"type": "message_stop"})));
    events
}

/// `POST /v1/messages/count_tokens`.
pub fn count_tokens(_sim: &Sim, call: &Call) -> Reply {
    if let Err(e) = check(&call.args, false) {
        return Reply::invalid(e);
    }
    Reply::json(json!({"input_tokens": input_tokens(&call.args)}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(max: u64) -> Value {
        json!({"model": "claude-sonnet-4-20250514", "max_tokens": max,
               "messages": [{"role": "user", "content": "Summarize prompt caching in one paragraph."}]})
    }

    #[test]
    fn replies_are_deterministic_and_depend_on_the_seed() {
        let a = generate(1, &params(500)).unwrap();
        let b = generate(1, &params(500)).unwrap();
        let c = generate(2, &params(500)).unwrap();
        assert_eq!(a["content"], b["content"]);
        assert_ne!(a["content"], c["content"]);
        assert_eq!(a["stop_reason"], "end_turn");
        let words = a["content"][0]["text"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .count() as u64;
        assert_eq!(a["usage"]["output_tokens"], words);
    }

    #[test]
    fn small_max_tokens_truncates_and_stop_sequences_stop() {
        let m = generate(0, &params(3)).unwrap();
        assert_eq!(m["stop_reason"], "max_tokens");
        assert_eq!(m["usage"]["output_tokens"], 3);
        let mut p = params(500);
        p["stop_sequences"] = json!(["caching"]);
        let m = generate(0, &p).unwrap();
        assert_eq!(m["stop_reason"], "stop_sequence");
        assert_eq!(m["stop_sequence"], "caching");
        assert_eq!(m["content"][0]["text"], "You said: Summarize prompt ");
    }

    #[test]
    fn forced_tool_choice_gives_schema_shaped_input() {
        let mut p = params(500);
        p["tools"] = json!([{"name": "get_weather", "input_schema": {"type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 2},
                           "unit": {"enum": ["c", "f"]}}, "required": ["city"]}}]);
        p["tool_choice"] = json!({"type": "tool", "name": "get_weather"});
        let m = generate(0, &p).unwrap();
        assert_eq!(m["stop_reason"], "tool_use");
        let block = &m["content"][0];
        assert_eq!(block["type"], "tool_use");
        assert_eq!(block["input"]["days"], 2);
        assert_eq!(block["input"]["unit"], "c");
        assert!(block["input"]["city"].is_string());
    }

    #[test]
    fn stream_events_come_in_the_documented_order() {
        let m = generate(0, &params(500)).unwrap();
        let names: Vec<String> = stream_events(&m).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names[0], "message_start");
        assert_eq!(names[1], "content_block_start");
        assert_eq!(names[2], "ping");
        assert_eq!(names[names.len() - 3], "content_block_stop");
        assert_eq!(names[names.len() - 2], "message_delta");
        assert_eq!(names[names.len() - 1], "message_stop");
    }

    #[test]
    fn token_counts_grow_with_the_input() {
        let small = input_tokens(&params(1));
        let mut p = params(1);
        p["messages"][0]["content"] = json!("word ".repeat(400));
        assert!(input_tokens(&p) > small + 300);
    }
}

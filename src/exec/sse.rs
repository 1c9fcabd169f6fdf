//! Server-sent events: an incremental parser, and assemblers that fold events into the value a
//! non-streaming call would have returned.
//!
//! The manifest names the assembler (`stream.assemble`); the executor only knows the name.

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};

/// One parsed event: its name (the `event:` field, else the data's `type`) and its JSON data.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub name: String,
    pub data: Value,
}

/// Splits a byte stream into events. Handles `\n`, `\r\n` and `\r` line ends, chunks that split
/// a line or a UTF-8 character anywhere, multi-line `data:`, and comments.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
    /// The previous chunk ended in `\r`: a `\n` starting the next one belongs to it.
    skip_lf: bool,
}

impl SseParser {
    /// Feed a chunk; returns the events completed by it.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Event>> {
        let mut out = Vec::new();
        let mut chunk = chunk;
        if self.skip_lf {
            if let Some(rest) = chunk.strip_prefix(b"\n") {
                chunk = rest;
            }
            self.skip_lf = false;
        }
        self.buf.extend_from_slice(chunk);
        let mut start = 0;
        let mut i = 0;
        while i < self.buf.len() {
            let b = self.buf[i];
            if b == b'\n' || b == b'\r' {
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
            }
            i += 1;
        }
        self.buf.drain(..start);
        Ok(out)
    }

    /// The stream ended: dispatch a final event that had no blank line after it.
    pub fn finish(&mut self) -> Result<Option<Event>> {
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
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            _ => {}
        }
        Ok(None)
    }

    fn dispatch(&mut self) -> Result<Option<Event>> {
        let event = self.event.take();
        let Some(data) = self.data.take() else {
            return Ok(None);
        };
        let data: Value = if data.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&data)
                .map_err(|e| bad(&format!("an event's data is not JSON ({e})")))?
        };
        let name = event
            .filter(|e| !e.is_empty())
            .or_else(|| data.get("type").and_then(Value::as_str).map(str::to_string))
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

/// Folds events into a final value.
pub trait Assembler: Send {
    fn event(&mut self, ev: &Event) -> Result<()>;
    /// Whether an end event was seen.
    fn finished(&self) -> bool;
    /// The event names that end the stream, for error messages.
    fn end_events(&self) -> &[String];
    fn finish(self: Box<Self>) -> Result<Value>;
}

/// The assembler a manifest names; `end_events` overrides the assembler's own end events.
pub fn assembler(name: &str, end_events: &[String]) -> Result<Box<dyn Assembler>> {
    let ends = |default: &[&str]| -> Vec<String> {
        if end_events.is_empty() {
            default.iter().map(|s| s.to_string()).collect()
        } else {
            end_events.to_vec()
        }
    };
    match name {
        "anthropic_message" => Ok(Box::new(MessageAssembler {
            ends: ends(&["message_stop"]),
            ..Default::default()
        })),
        "events" => Ok(Box::new(EventList {
            ends: ends(&[]),
            events: Vec::new(),
            done: false,
        })),
        other => Err(Error::config(format!(
            "unknown stream assembler '{other}' (known: anthropic_message, events)"
        ))),
    }
}

/// Collects every event's data in order. With no end events, any clean end of stream counts.
struct EventList {
    ends: Vec<String>,
    events: Vec<Value>,
    done: bool,
}

impl Assembler for EventList {
    fn event(&mut self, ev: &Event) -> Result<()> {
        if self.ends.contains(&ev.name) {
            self.done = true;
        }
        self.events.push(ev.data.clone());
        Ok(())
    }
    fn finished(&self) -> bool {
        self.ends.is_empty() || self.done
    }
    fn end_events(&self) -> &[String] {
        &self.ends
    }
    fn finish(self: Box<Self>) -> Result<Value> {
        Ok(json!({"events": self.events}))
    }
}

/// Rebuilds a Messages API `message` from `message_start`, `content_block_*`, `message_delta`.
#[derive(Default)]
struct MessageAssembler {
    ends: Vec<String>,
    message: Option<Map<String, Value>>,
    content: Vec<Value>,
    /// Partial JSON of tool inputs, by block index.
    partial: Vec<Option<String>>,
    done: bool,
}

impl MessageAssembler {
    fn block(&mut self, ev: &Event) -> Result<(usize, &mut Map<String, Value>)> {
        let index =
            ev.data
                .get("index")
                .and_then(Value::as_u64)
                .ok_or_else(|| bad(&format!("{} without an index", ev.name)))? as usize;
        match self.content.get_mut(index).and_then(Value::as_object_mut) {
            Some(b) => Ok((index, b)),
            None => Err(bad(&format!(
                "{} for unknown content block {index}",
                ev.name
            ))),
        }
    }

    fn finish_block(&mut self, index: usize) -> Result<()> {
        if let Some(Some(json_text)) = self.partial.get_mut(index).map(Option::take) {
            let input: Value = if json_text.trim().is_empty() {
                json!({})
            } else {
                serde_json::from_str(&json_text).map_err(|e| {
                    bad(&format!(
                        "tool input of content block {index} is not JSON ({e})"
                    ))
                })?
            };
            if let Some(b) = self.content.get_mut(index).and_then(Value::as_object_mut) {
                b.insert("input".into(), input);
            }
        }
        Ok(())
    }
}

fn append(block: &mut Map<String, Value>, field: &str, text: &str) {
    match block.get_mut(field) {
        Some(Value::String(s)) => s.push_str(text),
        _ => {
            block.insert(field.into(), Value::String(text.into()));
        }
    }
}

impl Assembler for MessageAssembler {
    fn event(&mut self, ev: &Event) -> Result<()> {
        if self.ends.contains(&ev.name) {
            self.done = true;
        }
        match ev.name.as_str() {
            "message_start" => {
                let m = ev
                    .data
                    .get("message")
                    .and_then(Value::as_object)
                    .ok_or_else(|| bad("message_start without a message"))?;
                let mut m = m.clone();
                if let Some(Value::Array(c)) = m.get("content") {
                    self.content = c.clone();
                }
                m.insert("content".into(), json!([]));
                self.message = Some(m);
            }
            "content_block_start" => {
                let index = ev
                    .data
                    .get("index")
                    .and_then(Value::as_u64)
                    .unwrap_or(self.content.len() as u64) as usize;
                let block = ev
                    .data
                    .get("content_block")
                    .cloned()
                    .ok_or_else(|| bad("content_block_start without a content_block"))?;
                if self.content.len() <= index {
                    self.content.resize(index + 1, Value::Null);
                }
                self.content[index] = block;
            }
            "content_block_delta" => {
                let delta = ev.data.get("delta").cloned().unwrap_or(Value::Null);
                let kind = delta.get("type").and_then(Value::as_str).unwrap_or("");
                let text = |k: &str| {
                    delta
                        .get(k)
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string()
                };
                match kind {
                    "text_delta" => {
                        let t = text("text");
                        append(self.block(ev)?.1, "text", &t);
                    }
                    "thinking_delta" => {
                        let t = text("thinking");
                        append(self.block(ev)?.1, "thinking", &t);
                    }
                    "signature_delta" => {
                        let t = text("signature");
                        self.block(ev)?
                            .1
                            .insert("signature".into(), Value::String(t));
                    }
                    "input_json_delta" => {
                        let t = text("partial_json");
                        let (index, _) = self.block(ev)?;
                        if self.partial.len() <= index {
                            self.partial.resize(index + 1, None);
                        }
                        self.partial[index]
                            .get_or_insert_with(String::new)
                            .push_str(&t);
                    }
                    "citations_delta" => {
                        if let Some(c) = delta.get("citation").cloned() {
                            let b = self.block(ev)?.1;
                            match b.get_mut("citations") {
                                Some(Value::Array(list)) => list.push(c),
                                _ => {
                                    b.insert("citations".into(), json!([c]));
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
            "content_block_stop" => {
                let (index, _) = self.block(ev)?;
                self.finish_block(index)?;
            }
            "message_delta" => {
                let m = self
                    .message
                    .as_mut()
                    .ok_or_else(|| bad("message_delta before message_start"))?;
                if let Some(Value::Object(delta)) = ev.data.get("delta") {
                    for (k, v) in delta {
                        m.insert(k.clone(), v.clone());
                    }
                }
                if let Some(Value::Object(usage)) = ev.data.get("usage") {
                    let target = m.entry("usage").or_insert_with(|| json!({}));
                    if let Value::Object(t) = target {
                        for (k, v) in usage {
                            // Usage in message_delta is cumulative; a null means "not reported".
                            if !v.is_null() {
                                t.insert(k.clone(), v.clone());
                            }
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn finished(&self) -> bool {
        self.done
    }
    fn end_events(&self) -> &[String] {
        &self.ends
    }

    fn finish(mut self: Box<Self>) -> Result<Value> {
        for i in 0..self.partial.len() {
            self.finish_block(i)?;
        }
        let mut m = self
            .message
            .take()
            .ok_or_else(|| bad("the stream had no message_start"))?;
        let content: Vec<Value> = std::mem::take(&mut self.content)
            .into_iter()
            .filter(|b| !b.is_null())
            .collect();
        m.insert("content".into(), Value::Array(content));
        Ok(Value::Object(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = concat!(
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
        "event: brand_new_event\n",
        "data: {\"type\":\"brand_new_event\"}\n\n",
        "event: message_delta\n",
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n",
        "event: message_stop\n",
        "data: {\"type\":\"message_stop\"}\n\n",
    );

    fn assemble_in_chunks(size: usize) -> Value {
        let mut p = SseParser::default();
        let mut a = assembler("anthropic_message", &[]).unwrap();
        for chunk in STREAM.as_bytes().chunks(size) {
            for ev in p.push(chunk).unwrap() {
                a.event(&ev).unwrap();
            }
        }
        assert!(p.finish().unwrap().is_none());
        assert!(a.finished());
        a.finish().unwrap()
    }

    #[test]
    fn assembles_the_final_message_whatever_the_chunking() {
        let whole = assemble_in_chunks(STREAM.len());
        assert_eq!(
            whole,
            json!({"id":"msg_1","type":"message","role":"assistant",
                "content":[
                    {"type":"thinking","thinking":"hmm","signature":"sig"},
                    {"type":"text","text":"Héllo"},
                    {"type":"tool_use","id":"toolu_1","name":"get","input":{"city":"Paris"}}],
                "model":"m","stop_reason":"tool_use","stop_sequence":null,
                "usage":{"input_tokens":25,"output_tokens":15}})
        );
        for size in [1, 2, 3, 7, 64] {
            assert_eq!(assemble_in_chunks(size), whole, "chunk size {size}");
        }
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
    fn stream_without_stop_is_not_finished() {
        let mut p = SseParser::default();
        let mut a = assembler("anthropic_message", &[]).unwrap();
        for ev in p
            .push(
                STREAM
                    .split("event: message_stop")
                    .next()
                    .unwrap()
                    .as_bytes(),
            )
            .unwrap()
        {
            a.event(&ev).unwrap();
        }
        assert!(!a.finished());
        assert!(assembler("nope", &[]).is_err());
    }
}

//! JSON values written as Lua source, laid out the way a person writes a call: top-level fields one per
//! line, small nested tables inline (`{ role = "user", content = "Hi" }`), big ones broken over lines.
//! Examples in the manifests are JSON; the docs must show them as Lua that runs unchanged.

use serde_json::Value;

/// Past this width a nested table is broken over several lines.
const INLINE_WIDTH: usize = 80;

/// Lua 5.4 reserved words: a key spelled like one needs the `["end"] = ...` form.
const RESERVED: &[&str] = &[
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
    "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
];

/// Whether `s` can be written as a bare Lua name (`t.s`, `{ s = 1 }`).
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
        && !RESERVED.contains(&s)
}

/// A Lua string literal with every byte that could end or corrupt it escaped.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\{:03}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A table key: `name` or `["not a name"]`.
pub fn key(k: &str) -> String {
    if is_identifier(k) {
        k.to_string()
    } else {
        format!("[{}]", quote(k))
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some("json.null".into()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(quote(s)),
        Value::Array(a) if a.is_empty() => Some("{}".into()),
        Value::Object(o) if o.is_empty() => Some("{}".into()),
        _ => None,
    }
}

fn entries(v: &Value) -> Vec<(Option<String>, &Value)> {
    match v {
        Value::Array(a) => a.iter().map(|x| (None, x)).collect(),
        Value::Object(o) => o.iter().map(|(k, x)| (Some(key(k)), x)).collect(),
        _ => Vec::new(),
    }
}

/// The value on one line: `{ a = 1, b = { 2, 3 } }`.
pub fn inline(v: &Value) -> String {
    if let Some(s) = scalar(v) {
        return s;
    }
    let parts: Vec<String> = entries(v)
        .into_iter()
        .map(|(k, x)| match k {
            Some(k) => format!("{k} = {}", inline(x)),
            None => inline(x),
        })
        .collect();
    format!("{{ {} }}", parts.join(", "))
}

/// The value as it appears after `indent` spaces; tables wider than the line are broken up.
/// `force_break` breaks the outermost table even when it would fit (the argument table of a call).
pub fn block(v: &Value, indent: usize, force_break: bool) -> String {
    if let Some(s) = scalar(v) {
        return s;
    }
    // A list of tables reads best one table per line (`messages = {` / `{ role = ... }` / `}`).
    let list_of_tables =
        matches!(v, Value::Array(a) if a.iter().any(|x| x.is_object() || x.is_array()));
    let one_line = inline(v);
    if !force_break && !list_of_tables && indent + one_line.len() <= INLINE_WIDTH {
        return one_line;
    }
    let pad = " ".repeat(indent + 2);
    let items = entries(v);
    let last = items.len().saturating_sub(1);
    let mut out = String::from("{\n");
    for (i, (k, x)) in items.into_iter().enumerate() {
        out.push_str(&pad);
        let prefix = match k {
            Some(k) => format!("{k} = "),
            None => String::new(),
        };
        out.push_str(&prefix);
        out.push_str(&block(x, indent + 2, false));
        if i != last {
            out.push(',');
        }
        out.push('\n');
    }
    out.push_str(&" ".repeat(indent));
    out.push('}');
    out
}

/// A short call shape for lists of tools: nested tables too long to read at a glance become `...`
/// (`create_message_batch({ payload = { requests = ... } })`).
pub fn shape(v: &Value) -> String {
    fn go(v: &Value, depth: usize) -> String {
        if let Some(s) = scalar(v) {
            return s;
        }
        let full = inline(v);
        if depth >= 2 && full.len() > 36 {
            return "...".into();
        }
        let parts: Vec<String> = entries(v)
            .into_iter()
            .map(|(k, x)| {
                // The `payload` / `query` wrappers are shown open: they are the call's real shape.
                let wrapper = depth == 1 && matches!(k.as_deref(), Some("payload" | "query"));
                let val = match x {
                    Value::String(s) if s.len() > 40 => "\"...\"".to_string(),
                    _ if wrapper => go(x, depth),
                    _ => go(x, depth + 1),
                };
                match k {
                    Some(k) => format!("{k} = {val}"),
                    None => val,
                }
            })
            .collect();
        format!("{{ {} }}", parts.join(", "))
    }
    match v {
        Value::Object(o) if o.is_empty() => "{}".into(),
        _ => go(v, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn calls_are_laid_out_like_the_seed_page() {
        let args = json!({
            "model": "claude-sonnet-4-20250514",
            "max_tokens": 256,
            "messages": [{"role": "user", "content": "Summarize prompt caching in one paragraph."}]
        });
        assert_eq!(
            block(&args, 0, true),
            "{\n  model = \"claude-sonnet-4-20250514\",\n  max_tokens = 256,\n  messages = {\n    { role = \"user\", content = \"Summarize prompt caching in one paragraph.\" }\n  }\n}"
        );
        assert_eq!(block(&json!({}), 0, true), "{}");
    }

    #[test]
    fn odd_keys_and_strings_are_escaped() {
        assert_eq!(
            inline(&json!({"end": 1, "a-b": "x\"\n"})),
            "{ [\"end\"] = 1, [\"a-b\"] = \"x\\\"\\n\" }"
        );
        assert_eq!(
            inline(&json!([null, true, 1.5])),
            "{ json.null, true, 1.5 }"
        );
    }

    #[test]
    fn shapes_elide_big_tables() {
        let args = json!({"payload": {"requests": [{"custom_id": "a", "params": {"model": "m", "max_tokens": 1}}]}});
        assert_eq!(shape(&args), "{ payload = { requests = ... } }");
        assert_eq!(
            shape(&json!({"query": {"limit": 20}})),
            "{ query = { limit = 20 } }"
        );
        assert_eq!(shape(&json!({})), "{}");
    }
}

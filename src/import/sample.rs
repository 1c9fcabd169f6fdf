//! Example values made from schemas, for the simulator's answers and for function examples when
//! the spec gives none: the schema's own `example` / `examples` / `default` / `const` / first
//! `enum` value first, else a value of the declared type (formats respected), objects with
//! every declared property. Bounded: references are followed once per branch (a recursive
//! shape stops), nesting stops at a fixed depth, and arrays hold one item.

use serde_json::{Map, Value, json};

use super::openapi::Spec;

const MAX_DEPTH: usize = 12;

pub fn sample(spec: &Spec, schema: &Value) -> Value {
    let mut stack = Vec::new();
    one(spec, schema, 0, &mut stack)
}

fn one<'a>(spec: &'a Spec, schema: &'a Value, depth: usize, stack: &mut Vec<&'a str>) -> Value {
    let Some(obj) = schema.as_object() else {
        return Value::Null;
    };
    if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
        if stack.contains(&r) || depth > MAX_DEPTH {
            return Value::Null;
        }
        let Some(target) = spec.pointer(r) else {
            return Value::Null;
        };
        stack.push(r);
        let v = one(spec, target, depth + 1, stack);
        stack.pop();
        return v;
    }
    if let Some(v) = obj.get("example") {
        return v.clone();
    }
    if let Some(Value::Array(ex)) = obj.get("examples")
        && let Some(first) = ex.first()
    {
        return first.clone();
    }
    for key in ["const", "default"] {
        if let Some(v) = obj.get(key) {
            return v.clone();
        }
    }
    if let Some(Value::Array(e)) = obj.get("enum")
        && let Some(first) = e.iter().find(|v| !v.is_null())
    {
        return first.clone();
    }
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(alts)) = obj.get(key)
            && let Some(first) = alts
                .iter()
                .find(|a| a.get("type").and_then(Value::as_str) != Some("null"))
        {
            let mut v = one(spec, first, depth + 1, stack);
            if let (Value::Object(base), Some(Value::Object(props))) =
                (&mut v, obj.get("properties"))
            {
                for (k, s) in props {
                    base.entry(k.clone())
                        .or_insert_with(|| one(spec, s, depth + 1, stack));
                }
            }
            return v;
        }
    }
    if let Some(Value::Array(parts)) = obj.get("allOf") {
        let mut merged = Map::new();
        let mut other = None;
        for p in parts {
            match one(spec, p, depth + 1, stack) {
                Value::Object(m) => merged.extend(m),
                v if !v.is_null() => other = Some(v),
                _ => {}
            }
        }
        if let Some(Value::Object(props)) = obj.get("properties") {
            for (k, s) in props {
                merged
                    .entry(k.clone())
                    .or_insert_with(|| one(spec, s, depth + 1, stack));
            }
        }
        return match other {
            Some(v) if merged.is_empty() => v,
            _ => Value::Object(merged),
        };
    }
    let ty = match obj.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if obj.contains_key("properties") => "object",
        _ if obj.contains_key("items") => "array",
        _ => return Value::Null,
    };
    match ty {
        "string" => string_of(obj),
        "integer" => {
            let min = obj.get("minimum").and_then(Value::as_i64).unwrap_or(1);
            json!(
                min.max(1).min(
                    obj.get("maximum")
                        .and_then(Value::as_i64)
                        .unwrap_or(i64::MAX)
                )
            )
        }
        "number" => {
            let min = obj.get("minimum").and_then(Value::as_f64).unwrap_or(1.0);
            json!(
                min.max(1.0).min(
                    obj.get("maximum")
                        .and_then(Value::as_f64)
                        .unwrap_or(f64::MAX)
                )
            )
        }
        "boolean" => json!(true),
        "null" => Value::Null,
        "array" => {
            let min = obj
                .get("minItems")
                .and_then(Value::as_u64)
                .unwrap_or(1)
                .clamp(1, 8) as usize;
            match obj.get("items") {
                Some(items) => {
                    let v = one(spec, items, depth + 1, stack);
                    if v.is_null() {
                        json!([])
                    } else if obj.get("uniqueItems") == Some(&Value::Bool(true)) && min > 1 {
                        // Distinct values cannot be made up reliably: leave it to the spec.
                        Value::Null
                    } else {
                        Value::Array(vec![v; min])
                    }
                }
                None => json!([]),
            }
        }
        _ => {
            let mut m = Map::new();
            if let Some(Value::Object(props)) = obj.get("properties") {
                for (k, s) in props {
                    if s.get("writeOnly") == Some(&Value::Bool(true)) {
                        continue;
                    }
                    let v = one(spec, s, depth + 1, stack);
                    // Unknown is left out rather than written as a null the schema may refuse.
                    if !v.is_null() {
                        m.insert(k.clone(), v);
                    }
                }
            }
            Value::Object(m)
        }
    }
}

fn string_of(obj: &Map<String, Value>) -> Value {
    if obj.contains_key("pattern") {
        // A value matching an arbitrary pattern cannot be made up reliably.
        return Value::Null;
    }
    let s = match obj.get("format").and_then(Value::as_str) {
        Some("date-time") => "2024-01-01T00:00:00Z",
        Some("date") => "2024-01-01",
        Some("time") => "12:00:00",
        Some("email") => "user@example.com",
        Some("uri" | "url" | "uri-reference") => "https://example.com/",
        Some("uuid") => "123e4567-e89b-12d3-a456-426614174000",
        Some("ipv4") => "192.0.2.1",
        Some("ipv6") => "2001:db8::1",
        Some("hostname") => "example.com",
        Some("byte") => "ZXhhbXBsZQ==",
        _ => "string",
    };
    let min = obj.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
    let mut s = s.to_string();
    while s.chars().count() < min.min(256) {
        s.push('x');
    }
    if let Some(max) = obj.get("maxLength").and_then(Value::as_u64) {
        s = s.chars().take(max as usize).collect();
    }
    Value::String(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::openapi::parse;

    #[test]
    fn samples_follow_refs_stop_cycles_and_respect_formats() {
        let spec = parse(
            &json!({"openapi": "3.0.0", "paths": {}, "components": {"schemas": {
                "Node": {"type": "object", "properties": {"id": {"type": "integer"}, "at": {"type": "string", "format": "date-time"}, "kids": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}}},
                "Pick": {"oneOf": [{"type": "null"}, {"type": "string", "enum": ["a", "b"]}]}
            }}})
            .to_string(),
        )
        .unwrap();
        let v = sample(&spec, &json!({"$ref": "#/components/schemas/Node"}));
        assert_eq!(
            v,
            json!({"id": 1, "at": "2024-01-01T00:00:00Z", "kids": []})
        );
        assert_eq!(
            sample(&spec, &json!({"type": "string", "pattern": "^a+$"})),
            Value::Null
        );
        assert_eq!(
            sample(
                &spec,
                &json!({"type": "array", "minItems": 2, "items": {"type": "integer"}})
            ),
            json!([1, 1])
        );
        assert_eq!(
            sample(&spec, &json!({"$ref": "#/components/schemas/Pick"})),
            json!("a")
        );
        assert_eq!(
            sample(&spec, &json!({"type": "string", "minLength": 8})),
            json!("stringxx")
        );
    }
}

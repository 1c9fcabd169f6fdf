//! Lua-shaped values to the types the input schema asks for, before validation.
//!
//! Lua has one table type and one number type, so two shapes are ambiguous on the way to JSON:
//! an empty table (`betas = {}`) arrives as `{}`, and becomes `[]` where the schema wants an
//! array and not an object; and an integral float arrives as a float:
//! Lua numbers that went through arithmetic are floats (`4 / 2` is `2.0`), and JSON Schema
//! accepts `2.0` as an integer, so without this step `limit = 4 / 2` would go on the wire as
//! `limit=2.0` and a body would carry `"max_tokens": 256.0`, which a strict server refuses.
//! Only finite floats with no fractional part are converted, and only where the schema allows
//! `integer` but not `number`; everything else is left for validation to judge.

use serde_json::{Map, Number, Value};

/// Convert, in place, every integral float in `value` that `schema` types as `integer`, and every
/// empty object that it types as an array (not an object) to `[]`. Walks
/// `properties`, `additionalProperties`, `items` / `prefixItems` and the `allOf` / `anyOf` /
/// `oneOf` branches.
pub fn integers(schema: &Value, value: &mut Value) {
    let Some(s) = schema.as_object() else {
        return;
    };
    if value.as_object().is_some_and(Map::is_empty) && array_only(s) {
        *value = Value::Array(Vec::new());
        return;
    }
    match value {
        Value::Number(n) => {
            if integer_only(s)
                && let Some(i) = integral(n)
            {
                *value = Value::Number(i);
                return;
            }
        }
        Value::Object(m) => {
            let props = s.get("properties").and_then(Value::as_object);
            for (k, v) in m.iter_mut() {
                match props.and_then(|p| p.get(k)) {
                    Some(sub) => integers(sub, v),
                    None => {
                        if let Some(extra) = s.get("additionalProperties") {
                            integers(extra, v);
                        }
                    }
                }
            }
        }
        Value::Array(items) => {
            let prefix = s.get("prefixItems").and_then(Value::as_array);
            for (i, v) in items.iter_mut().enumerate() {
                match prefix.and_then(|p| p.get(i)) {
                    Some(sub) => integers(sub, v),
                    None => {
                        if let Some(sub) = s.get("items") {
                            integers(sub, v);
                        }
                    }
                }
            }
        }
        _ => {}
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(branches) = s.get(key).and_then(Value::as_array) {
            // A scalar branch that accepts any number keeps the float as it is.
            if key != "allOf" && value.is_number() && branches.iter().any(accepts_number) {
                continue;
            }
            // Likewise an empty table stays `{}` when some branch takes an object.
            let empty = value.as_object().is_some_and(Map::is_empty);
            if key != "allOf" && empty && branches.iter().any(accepts_object) {
                continue;
            }
            for b in branches {
                integers(b, value);
            }
        }
    }
}

fn types(s: &Map<String, Value>) -> Vec<&str> {
    match s.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn integer_only(s: &Map<String, Value>) -> bool {
    let t = types(s);
    t.contains(&"integer") && !t.contains(&"number")
}

fn array_only(s: &Map<String, Value>) -> bool {
    let t = types(s);
    t.contains(&"array") && !t.contains(&"object")
}

fn accepts_object(b: &Value) -> bool {
    b.as_object().is_some_and(|s| types(s).contains(&"object"))
}

fn accepts_number(b: &Value) -> bool {
    b.as_object().is_some_and(|s| types(s).contains(&"number"))
}

/// `2.0` → `2`; `2.5`, NaN-free but out-of-range values and integers stay as they are.
fn integral(n: &Number) -> Option<Number> {
    if n.is_i64() || n.is_u64() {
        return None;
    }
    let f = n.as_f64()?;
    if !f.is_finite() || f.fract() != 0.0 {
        return None;
    }
    // Exactly representable range of i64 / u64 conversions (beyond 2^63 the cast saturates).
    if (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f) {
        Some(Number::from(f as i64))
    } else if (0.0..1.844_674_407_370_955_2e19).contains(&f) {
        Some(Number::from(f as u64))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn empty_tables_become_arrays_where_the_schema_wants_an_array() {
        let schema = json!({"type": "object", "properties": {
            "betas": {"type": "array", "items": {"type": "string"}},
            "metadata": {"type": "object"},
            "either": {"type": ["array", "object"]},
            "one": {"oneOf": [{"type": "object"}, {"type": "array"}]},
            "messages": {"type": "array", "items": {"type": "object", "properties": {
                "content": {"anyOf": [{"type": "string"}, {"type": "array"}]}
            }}}
        }});
        let mut v = json!({"betas": {}, "metadata": {}, "either": {}, "one": {}, "messages": [{"content": {}}]});
        integers(&schema, &mut v);
        assert_eq!(
            v,
            json!({"betas": [], "metadata": {}, "either": {}, "one": {}, "messages": [{"content": []}]})
        );
    }

    #[test]
    fn integral_floats_become_integers_where_the_schema_says_integer() {
        let schema = json!({
            "type": "object",
            "properties": {
                "limit": {"type": "integer"},
                "temperature": {"type": "number"},
                "maybe": {"type": ["integer", "null"]},
                "requests": {"type": "array", "items": {"type": "object", "properties": {
                    "params": {"type": "object", "properties": {"max_tokens": {"type": "integer"}}}
                }}},
                "either": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
                "num_or_int": {"oneOf": [{"type": "integer"}, {"type": "number"}]}
            },
            "additionalProperties": {"type": "integer"}
        });
        let mut v = json!({
            "limit": 2.0, "temperature": 1.0, "maybe": 3.0,
            "requests": [{"params": {"max_tokens": 256.0}}, {"params": {"max_tokens": 1.5}}],
            "either": 7.0, "num_or_int": 4.0, "extra": 5.0
        });
        integers(&schema, &mut v);
        assert_eq!(
            v.to_string(),
            json!({
                "limit": 2, "temperature": 1.0, "maybe": 3,
                "requests": [{"params": {"max_tokens": 256}}, {"params": {"max_tokens": 1.5}}],
                "either": 7, "num_or_int": 4.0, "extra": 5
            })
            .to_string()
        );
        let mut big = json!(1e300);
        integers(&json!({"type": "integer"}), &mut big);
        assert_eq!(big, json!(1e300));
        let mut neg = json!(-3.0);
        integers(&json!({"type": "integer"}), &mut neg);
        assert_eq!(neg.to_string(), "-3");
    }
}

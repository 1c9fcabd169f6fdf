//! Input schemas and validation.
//!
//! Each function's input schema is derived from its manifest parameters. Callers may pass
//! arguments flat or inside the `payload` / `query` wrappers the seed page documents; both are
//! normalized to one flat object first, so there is exactly one schema to validate and to print.
//! Validation happens before any network I/O and reports every problem with its JSON pointer.

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::manifest::{Function, Manifest, ResponseKind, Wrapper, display_pointer};

/// Call options the executor understands on top of a function's own parameters.
pub const OPTION_FETCH_ALL: &str = "fetch_all";
pub const OPTION_MAX_ITEMS: &str = "max_items";
pub const OPTION_MAX_PAGES: &str = "max_pages";
pub const OPTION_SAVE_TO: &str = "save_to";

/// The JSON Schema of a function's (normalized) input.
pub fn input_schema(manifest: &Manifest, f: &Function) -> Value {
    let mut props = Map::new();
    let mut required = Vec::new();
    for p in &f.params {
        let mut s = p.schema.clone();
        if let Some(req) = s.shift_remove("required_properties") {
            s.insert("required".into(), req);
        }
        if !p.description.is_empty() {
            s.insert("description".into(), json!(p.description));
        }
        if let Some(ex) = &p.example {
            s.insert("examples".into(), json!([ex]));
        }
        if p.deprecated.is_some() {
            s.insert("deprecated".into(), json!(true));
        }
        props.insert(p.name.clone(), Value::Object(s));
        if p.required {
            required.push(json!(p.name));
        }
    }
    if let Some(b) = manifest
        .betas
        .as_ref()
        .filter(|b| !props.contains_key(&b.param))
    {
        props.insert(
            b.param.clone(),
            json!({
                "type": "array",
                "items": {"type": "string"},
                "description": format!("Extra beta feature names, sent in the `{}` header with the function's own.", b.header)
            }),
        );
    }
    if f.pagination.is_some() {
        props.insert(
            OPTION_FETCH_ALL.into(),
            json!({"type": "boolean", "description": "kosmo option: follow the cursor and return every page's items in one `data` list."}),
        );
        props.insert(
            OPTION_MAX_ITEMS.into(),
            json!({"type": "integer", "minimum": 1, "description": "kosmo option: with fetch_all, stop after this many items."}),
        );
        props.insert(
            OPTION_MAX_PAGES.into(),
            json!({"type": "integer", "minimum": 1, "description": "kosmo option: with fetch_all or pages(), stop after this many pages (the result then says whether more remain)."}),
        );
    }
    if matches!(f.response, ResponseKind::Binary | ResponseKind::Jsonl) {
        props.insert(
            OPTION_SAVE_TO.into(),
            json!({"type": "string", "description": "kosmo option: write the body to this file instead of returning it; the result then holds `path` and `size_bytes`."}),
        );
    }
    let mut schema = Map::new();
    schema.insert(
        "$schema".into(),
        json!("https://json-schema.org/draft/2020-12/schema"),
    );
    schema.insert(
        "title".into(),
        json!(format!("{}.{}", manifest.name, function_name(manifest, f))),
    );
    schema.insert("type".into(), json!("object"));
    schema.insert("properties".into(), Value::Object(props));
    schema.insert("required".into(), Value::Array(required));
    schema.insert("additionalProperties".into(), json!(f.passthrough));
    let wrappers: Vec<&str> = f.wrappers.iter().map(|w| w.as_str()).collect();
    if !wrappers.is_empty() {
        schema.insert("x-kosmo-wrappers".into(), json!(wrappers));
    }
    Value::Object(schema)
}

fn function_name<'a>(manifest: &'a Manifest, f: &Function) -> &'a str {
    manifest
        .functions
        .iter()
        .find(|(_, g)| std::ptr::eq(*g, f))
        .map(|(n, _)| n.as_str())
        .unwrap_or("function")
}

/// Flatten `payload` / `query` wrappers into one object and fill `send_default` values.
/// A wrapper is only unwrapped when the function has no real parameter of that name.
pub fn normalize_value(f: &Function, args: &Value) -> std::result::Result<Value, String> {
    let mut flat = match args {
        Value::Null => Map::new(),
        Value::Object(m) => m.clone(),
        Value::Array(a) if a.is_empty() => Map::new(),
        other => {
            return Err(format!(
                "arguments must be an object (a Lua table with named fields), got {}",
                json_type(other)
            ));
        }
    };
    for wrapper in [Wrapper::Payload, Wrapper::Query] {
        let key = wrapper.as_str();
        if f.params.iter().any(|p| p.name == key) {
            continue;
        }
        let Some(inner) = flat.shift_remove(key) else {
            continue;
        };
        let inner = match inner {
            Value::Object(m) => m,
            Value::Array(a) if a.is_empty() => Map::new(),
            Value::Null => Map::new(),
            other => {
                return Err(format!(
                    "/{key}: must be an object, got {}",
                    json_type(&other)
                ));
            }
        };
        for (k, v) in inner {
            match flat.get(&k) {
                Some(existing) if existing != &v => {
                    return Err(format!(
                        "/{k}: given both flat and inside '{key}' with different values"
                    ));
                }
                _ => {
                    flat.insert(k, v);
                }
            }
        }
    }
    for p in f.params.iter().filter(|p| p.send_default) {
        if let (false, Some(d)) = (flat.contains_key(&p.name), p.default_value()) {
            flat.insert(p.name.clone(), d.clone());
        }
    }
    Ok(Value::Object(flat))
}

/// A function's compiled input schema.
pub struct InputValidator {
    schema: Value,
    validator: jsonschema::Validator,
}

impl InputValidator {
    pub fn new(manifest: &Manifest, f: &Function) -> Result<Self> {
        let schema = input_schema(manifest, f);
        let validator = jsonschema::validator_for(&schema).map_err(|e| Error::Manifest {
            file: format!("{}.yaml", manifest.name),
            location: "input schema".into(),
            message: e.to_string(),
        })?;
        Ok(InputValidator { schema, validator })
    }

    pub fn schema(&self) -> &Value {
        &self.schema
    }

    /// Normalize and validate a caller's `args`; returns the flat arguments or every problem
    /// found. Lua-shaped values (`{}` for an empty list, `2.0` for 2) are first brought to the
    /// schema's types, so validation judges, and the wire carries, what the caller meant.
    pub fn check(&self, function: &str, f: &Function, args: &Value) -> Result<Value> {
        self.check_with(function, f, args, true)
    }

    /// Validate arguments as they arrived on the wire (the simulator): no coercion, because a
    /// server must refuse `"betas": {}` or `"limit": 2.5` the way the real API does.
    pub fn check_wire(&self, function: &str, f: &Function, args: &Value) -> Result<Value> {
        self.check_with(function, f, args, false)
    }

    fn check_with(
        &self,
        function: &str,
        f: &Function,
        args: &Value,
        caller: bool,
    ) -> Result<Value> {
        let flat = if caller {
            let mut flat = normalize_value(f, args).map_err(|m| Error::Validation {
                function: function.into(),
                errors: vec![m],
            })?;
            crate::coerce::integers(&self.schema, &mut flat);
            flat
        } else {
            // On the wire there are no wrappers: a `payload` key is just an unknown field.
            args.clone()
        };
        let mut errors: Vec<String> = Vec::new();
        for e in self.validator.iter_errors(&flat) {
            let at = display_pointer(&e.instance_path().to_string());
            match e.kind() {
                // A caller's misspelt argument: name it and suggest the declared one.
                jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected }
                    if caller =>
                {
                    let known = self.known_properties(&e.schema_path().to_string());
                    for name in unexpected {
                        errors.push(format!("{at}: {}", unknown_argument(name, &known)));
                    }
                }
                _ => errors.push(format!("{at}: {e}")),
            }
        }
        if errors.is_empty() {
            Ok(flat)
        } else {
            Err(Error::Validation {
                function: function.into(),
                errors,
            })
        }
    }
}

impl InputValidator {
    /// The property names the object schema owning an `additionalProperties` rule declares.
    fn known_properties(&self, schema_path: &str) -> Vec<String> {
        let owner = schema_path
            .strip_suffix("/additionalProperties")
            .unwrap_or(schema_path);
        self.schema
            .pointer(owner)
            .and_then(|s| s.get("properties"))
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }
}

/// "unknown argument 'limt': did you mean 'limit'?", else the known names (a few).
fn unknown_argument(name: &str, known: &[String]) -> String {
    // The name came from the caller: keep a runaway one short.
    let shown: String = name.chars().take(64).collect();
    let close = crate::error::closest(name, known.iter().map(String::as_str));
    if let Some(best) = close.first() {
        return format!("unknown argument '{shown}': did you mean '{best}'?");
    }
    if known.is_empty() {
        return format!("unknown argument '{shown}': this takes no arguments");
    }
    let mut list: Vec<&str> = known.iter().map(String::as_str).take(12).collect();
    if known.len() > list.len() {
        list.push("...");
    }
    format!("unknown argument '{shown}' (known: {})", list.join(", "))
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest::from_yaml(
            "t.yaml",
            r#"
name: t
label: T
summary: test
category: testing
base_url: http://127.0.0.1:1
credentials: {k: {label: K, header: x-key, hint: h}}
functions:
  make:
    group: g
    class: write
    summary: make
    method: POST
    path: /make
    credential: k
    wrappers: [payload]
    params:
      - {name: model, in: body, required: true, type: string}
      - {name: max_tokens, in: body, type: integer, minimum: 1, default: 4096, send_default: true}
"#,
        )
        .unwrap()
    }

    #[test]
    fn wrappers_and_defaults_normalize() {
        let m = manifest();
        let f = &m.functions["make"];
        let v = InputValidator::new(&m, f).unwrap();
        let out = v
            .check("make", f, &json!({"payload": {"model": "x"}}))
            .unwrap();
        assert_eq!(out, json!({"model": "x", "max_tokens": 4096}));
    }

    #[test]
    fn every_error_has_a_pointer() {
        let m = manifest();
        let f = &m.functions["make"];
        let v = InputValidator::new(&m, f).unwrap();
        let err = v
            .check("make", f, &json!({"max_tokens": 0, "bogus": 1}))
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("/max_tokens: 0 is less than the minimum of 1"),
            "{msg}"
        );
        assert!(msg.contains("\"model\" is a required property"), "{msg}");
        assert!(msg.contains("bogus"), "{msg}");
        assert_eq!(err.code(), "validation_error");
    }

    #[test]
    fn a_misspelt_argument_gets_a_suggestion_and_others_the_known_names() {
        let m = manifest();
        let f = &m.functions["make"];
        let v = InputValidator::new(&m, f).unwrap();
        let msg = v
            .check("make", f, &json!({"model": "x", "max_tokns": 5}))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("unknown argument 'max_tokns': did you mean 'max_tokens'?"),
            "{msg}"
        );
        let msg = v
            .check("make", f, &json!({"model": "x", "qqqqqq": 5}))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("unknown argument 'qqqqqq' (known: model, max_tokens"),
            "{msg}"
        );
        // The simulator judges wire bodies: its wording stays the validator's own.
        let msg = v
            .check_wire("make", f, &json!({"model": "x", "max_tokns": 5}))
            .unwrap_err()
            .to_string();
        assert!(!msg.contains("did you mean"), "{msg}");
    }

    #[test]
    fn conflicting_flat_and_wrapped_values_are_refused() {
        let m = manifest();
        let f = &m.functions["make"];
        let err =
            normalize_value(f, &json!({"model": "a", "payload": {"model": "b"}})).unwrap_err();
        assert!(err.contains("/model"), "{err}");
        assert!(normalize_value(f, &json!("x")).is_err());
    }
}

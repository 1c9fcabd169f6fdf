//! Turn a request back into the executor's input (path parameters + query + JSON body) and check
//! it with the very validator the executor uses, so both sides agree on what is valid.
//!
//! Query and path values arrive as strings; they are coerced to the parameter's schema type
//! first. `send_default` parameters are filled in by the executor, which means the real API
//! requires them: here their absence is an error. Unknown query parameters (`beta=true`, which
//! the SDKs add) are ignored, as the service ignores them.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{FromRequest, Multipart};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Request};
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value, json};

use super::server::Sim;
use super::wire::Reply;
use crate::manifest::{Function, Location, Param};

/// A file part of a multipart upload.
#[derive(Debug, Clone)]
pub struct Upload {
    pub filename: String,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

/// A validated call, as behaviours see it.
pub struct Call<'a> {
    /// The function's Lua name.
    pub function: &'a str,
    pub f: &'a Function,
    /// Path parameters in template order (behaviours read them by position, not by name).
    pub path: Vec<(String, String)>,
    /// Flat, validated arguments (path + query + body), names as in the manifest.
    pub args: Value,
    /// The raw query, decoded; `k[]` keys lose their brackets. Holds unknown keys too.
    pub query: HashMap<String, Vec<String>>,
    pub headers: HeaderMap,
    pub betas: Vec<String>,
    pub upload: Option<Upload>,
    /// The simulator runs in mock mode: answer what is well-formed, refuse nothing else.
    pub mock: bool,
    /// The request's path and query, as sent (for `Link` headers).
    pub uri: String,
}

impl Call<'_> {
    /// The `i`-th path parameter, or "" (behaviours only run on routes that have it).
    pub fn path_value(&self, i: usize) -> &str {
        self.path.get(i).map(|(_, v)| v.as_str()).unwrap_or("")
    }

    pub fn arg(&self, name: &str) -> Option<&Value> {
        self.args.get(name).filter(|v| !v.is_null())
    }

    pub fn str_arg(&self, name: &str) -> Option<&str> {
        self.arg(name).and_then(Value::as_str)
    }

    /// An integer argument; `4.0` counts as `4`, as it does for the service.
    pub fn int_arg(&self, name: &str) -> Option<i64> {
        self.arg(name).and_then(as_int)
    }

    /// A path parameter or argument, else the first query value of that name. Integral floats
    /// read as integers (`4.0` → `"4"`), so numeric parsing downstream sees what the service sees.
    pub fn text(&self, name: &str) -> Option<String> {
        match self.arg(name) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(v @ Value::Number(_)) => {
                Some(as_int(v).map_or_else(|| v.to_string(), |n| n.to_string()))
            }
            Some(v) => Some(v.to_string()),
            None => self.query.get(name).and_then(|v| v.first()).cloned(),
        }
    }
}

/// A JSON number as an integer: JSON Schema (and the service) treat `4.0` as the integer 4, so
/// every number the simulator reads from a request goes through here rather than `as_u64`.
pub fn as_int(v: &Value) -> Option<i64> {
    if let Some(n) = v.as_i64() {
        return Some(n);
    }
    if v.as_u64().is_some() {
        return Some(i64::MAX);
    }
    let f = v.as_f64()?;
    (f.fract() == 0.0 && f.is_finite() && f.abs() < 9.0e15).then_some(f as i64)
}

/// Parse a query string: `k[]=a&k[]=b` and `k=a&k=b` both give `k: [a, b]`.
pub fn parse_query(q: Option<&str>) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let dec = |s: &str| {
            percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        let key = dec(k);
        let key = key.strip_suffix("[]").map(str::to_string).unwrap_or(key);
        out.entry(key).or_default().push(dec(v));
    }
    out
}

/// The nested value of query parameter `name` written with bracketed keys (`name[gte]=1`,
/// `name[0]=a`), if the query has any.
fn nested_query(q: Option<&str>, name: &str) -> Option<Value> {
    let prefix = format!("{name}[");
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str::<Vec<(String, String)>>(q.unwrap_or(""))
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _): &(String, String)| k.starts_with(&prefix))
            .collect();
    if pairs.is_empty() {
        return None;
    }
    nest_pairs(&pairs).remove(name)
}

/// Form pairs with bracketed keys (`a[b][0][c]=v`, `a[]=v`, `a=x&a=y`) as one object of
/// strings: `[]` appends, repeated plain keys collect into a list. Numeric keys stay object
/// keys here; [`coerce_deep`] turns them into arrays where the schema (or their shape) says so.
pub fn nest_pairs(pairs: &[(String, String)]) -> Map<String, Value> {
    let mut root = Map::new();
    for (key, value) in pairs {
        let (head, segments) = match key.find('[') {
            Some(i) if key.ends_with(']') => {
                let segs: Vec<String> = key[i + 1..key.len() - 1]
                    .split("][")
                    .map(str::to_string)
                    .collect();
                (&key[..i], segs)
            }
            _ => (key.as_str(), Vec::new()),
        };
        nest_insert(&mut root, head, &segments, value);
    }
    root
}

fn nest_insert(map: &mut Map<String, Value>, key: &str, rest: &[String], value: &str) {
    let Some((seg, more)) = rest.split_first() else {
        match map.get_mut(key) {
            None => {
                map.insert(key.to_string(), json!(value));
            }
            Some(Value::Array(items)) => items.push(json!(value)),
            Some(other) => {
                let first = other.take();
                *other = json!([first, value]);
            }
        }
        return;
    };
    let child = map
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !child.is_object() {
        *child = Value::Object(Map::new());
    }
    let Value::Object(child) = child else { return };
    if seg.is_empty() {
        // `a[]=v` appends; `a[][x]=1&a[][y]=2` fills the last item until a key repeats.
        let last = child.len().checked_sub(1);
        let reuse = match (more.first(), last) {
            (Some(next), Some(i)) => child
                .get(&i.to_string())
                .and_then(Value::as_object)
                .is_some_and(|o| !o.contains_key(next)),
            _ => false,
        };
        let index = match (reuse, last) {
            (true, Some(i)) => i,
            _ => child.len(),
        };
        nest_insert(child, &index.to_string(), more, value);
    } else {
        nest_insert(child, seg, more, value);
    }
}

fn schema_types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

/// A value rebuilt by [`nest_pairs`], coerced to `schema`: strings to the declared scalar
/// types, objects with keys `0..n` to arrays (where the schema says array, or says nothing).
pub fn coerce_deep(schema: &Value, v: Value) -> Value {
    let types = schema_types(schema);
    let wants_array = types.contains(&"array");
    let items = schema.get("items").cloned().unwrap_or(Value::Null);
    match v {
        Value::String(s) if wants_array => json!([coerce(&items, &s)]),
        Value::String(s) => coerce(schema, &s),
        Value::Array(list) => {
            let item_schema = if wants_array { &items } else { &Value::Null };
            Value::Array(
                list.into_iter()
                    .map(|i| coerce_deep(item_schema, i))
                    .collect(),
            )
        }
        Value::Object(m) => {
            let numeric = !m.is_empty() && m.keys().all(|k| k.parse::<usize>().is_ok());
            if numeric && (wants_array || (types.is_empty() && !m.is_empty())) {
                let mut indexed: Vec<(usize, Value)> = m
                    .into_iter()
                    .filter_map(|(k, v)| k.parse::<usize>().ok().map(|i| (i, v)))
                    .collect();
                indexed.sort_by_key(|(i, _)| *i);
                return Value::Array(
                    indexed
                        .into_iter()
                        .map(|(_, v)| coerce_deep(&items, v))
                        .collect(),
                );
            }
            let props = schema.get("properties");
            let extra = schema.get("additionalProperties").filter(|a| a.is_object());
            Value::Object(
                m.into_iter()
                    .map(|(k, v)| {
                        let sub = props
                            .and_then(|p| p.get(&k))
                            .or(extra)
                            .cloned()
                            .unwrap_or(Value::Null);
                        let v = coerce_deep(&sub, v);
                        (k, v)
                    })
                    .collect(),
            )
        }
        other => other,
    }
}

/// A string from the wire, as the parameter's schema type.
fn coerce(schema: &Value, raw: &str) -> Value {
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    for t in types {
        match t {
            "integer" => {
                if let Ok(n) = raw.parse::<i64>() {
                    return json!(n);
                }
                if let Some(n) = raw.parse::<f64>().ok().and_then(|f| as_int(&json!(f))) {
                    return json!(n);
                }
            }
            "number" => {
                if let Ok(n) = raw.parse::<f64>() {
                    return json!(n);
                }
            }
            "boolean" => match raw {
                "true" => return json!(true),
                "false" => return json!(false),
                _ => {}
            },
            "null" if raw == "null" => return Value::Null,
            _ => {}
        }
    }
    json!(raw)
}

fn param_value(p: &Param, values: &[String]) -> Value {
    let schema = Value::Object(p.schema.clone());
    let is_array = schema.get("type").and_then(Value::as_str) == Some("array");
    if is_array {
        let items = schema.get("items").cloned().unwrap_or(Value::Null);
        Value::Array(values.iter().map(|v| coerce(&items, v)).collect())
    } else {
        values
            .first()
            .map(|v| coerce(&schema, v))
            .unwrap_or(Value::Null)
    }
}

/// Build and validate the call. Errors come back as the 400 the service would send.
pub async fn build<'a>(
    sim: &'a Sim,
    lua_name: &'a str,
    f: &'a Function,
    path_params: Vec<(String, String)>,
    parts: &Parts,
    body: Body,
    betas: Vec<String>,
) -> Result<Call<'a>, Reply> {
    let query = parse_query(parts.uri.query());
    let mut args = Map::new();
    for (name, value) in &path_params {
        let v = match f.params.iter().find(|p| &p.name == name) {
            Some(p) => coerce(&Value::Object(p.schema.clone()), value),
            None => json!(value),
        };
        args.insert(name.clone(), v);
    }
    for p in f.params.iter() {
        match p.location {
            Location::Query => {
                if let Some(values) = query.get(p.wire()) {
                    args.insert(p.name.clone(), param_value(p, values));
                } else if let Some(v) = nested_query(parts.uri.query(), p.wire()) {
                    // `k[sub]=v` / `k[0]=v`: an object (or indexed array) parameter.
                    args.insert(
                        p.name.clone(),
                        coerce_deep(&Value::Object(p.schema.clone()), v),
                    );
                }
            }
            Location::Header => {
                let values: Vec<String> = parts
                    .headers
                    .get_all(p.wire())
                    .iter()
                    .filter_map(|v| v.to_str().ok().map(str::to_string))
                    .collect();
                if !values.is_empty() {
                    args.insert(p.name.clone(), param_value(p, &values));
                }
            }
            _ => {}
        }
    }
    let content_type = parts
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut upload = None;
    let has_form = f.params.iter().any(|p| p.location == Location::Form);
    let limit = body_limit(sim, f, has_form);
    let declared = parts
        .headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        // Read (and drop) what the client sends, so it sees the 413 rather than a reset.
        let _ = read_limited(body, 0).await;
        return Err(too_large(limit));
    }
    if content_type.starts_with("multipart/form-data") {
        let mut req = Request::new(body);
        *req.headers_mut() = parts.headers.clone();
        // axum's extractor would stop at 2 MB; the service's limit applies instead.
        axum::extract::DefaultBodyLimit::max(limit).apply(&mut req);
        let mut form = Multipart::from_request(req, &())
            .await
            .map_err(|e| Reply::invalid(format!("invalid multipart body: {}", e.body_text())))?;
        loop {
            let field = match form.next_field().await {
                Ok(Some(field)) => field,
                Ok(None) => break,
                Err(e) => return Err(multipart_error(&e, limit)),
            };
            let name = field.name().unwrap_or("").to_string();
            let filename = field.file_name().map(str::to_string);
            let ctype = field.content_type().map(str::to_string);
            let bytes = field
                .bytes()
                .await
                .map_err(|e| multipart_error(&e, limit))?;
            // A part for a binary form parameter is the file even without a file name (the
            // SDKs send raw bytes that way).
            let filename = filename.or_else(|| {
                f.params
                    .iter()
                    .any(|p| {
                        p.location == Location::Form
                            && p.wire() == name
                            && p.schema.get("format").and_then(Value::as_str) == Some("binary")
                    })
                    .then(|| "upload".to_string())
            });
            match filename {
                Some(filename) => {
                    upload = Some(Upload {
                        filename,
                        content_type: ctype,
                        bytes: bytes.to_vec(),
                    });
                }
                None => {
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    let v = match f
                        .params
                        .iter()
                        .find(|p| p.wire() == name && p.upload.is_none())
                    {
                        Some(p) => {
                            let v = coerce(&Value::Object(p.schema.clone()), &text);
                            args.insert(p.name.clone(), v);
                            continue;
                        }
                        None => json!(text),
                    };
                    args.insert(name, v);
                }
            }
        }
        if has_form && upload.is_none() {
            return Err(Reply::invalid("file: Field required"));
        }
    } else {
        let bytes = read_limited(body, limit)
            .await
            .map_err(|_| too_large(limit))?;
        if has_form {
            return Err(Reply::invalid(
                "this endpoint expects a multipart/form-data body with a `file` part",
            ));
        }
        if content_type.starts_with("application/x-www-form-urlencoded") {
            let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
                .map_err(|e| Reply::invalid(format!("The request body is not urlencoded: {e}")))?;
            for (k, v) in nest_pairs(&pairs) {
                match f
                    .params
                    .iter()
                    .find(|p| p.location == Location::Body && p.wire() == k)
                {
                    Some(p) => {
                        args.insert(
                            p.name.clone(),
                            coerce_deep(&Value::Object(p.schema.clone()), v),
                        );
                    }
                    None => {
                        args.insert(k, v);
                    }
                }
            }
        } else if let Some(p) = f.params.iter().find(|p| p.raw) {
            // `body: raw`: the whole body is the one raw parameter, as the caller passed it.
            let v = match std::str::from_utf8(&bytes) {
                Ok(text) => json!(text),
                Err(_) => {
                    use base64::Engine as _;
                    json!({"base64": base64::engine::general_purpose::STANDARD.encode(&bytes)})
                }
            };
            args.insert(p.name.clone(), v);
        } else if !bytes.iter().all(u8::is_ascii_whitespace) {
            let body: Value = serde_json::from_slice(&bytes)
                .map_err(|e| Reply::invalid(format!("The request body is not valid JSON: {e}")))?;
            let Value::Object(body) = body else {
                return Err(Reply::invalid("The request body must be a JSON object"));
            };
            for (k, v) in body {
                let name = f
                    .params
                    .iter()
                    .find(|p| p.location == Location::Body && p.wire() == k)
                    .map(|p| p.name.clone())
                    .unwrap_or(k);
                args.insert(name, v);
            }
        }
    }
    // What the executor always sends, the service requires.
    for p in &f.params {
        if p.send_default && !args.contains_key(&p.name) {
            return Err(Reply::invalid(format!("{}: Field required", p.wire())));
        }
    }
    let args = if has_form {
        // The upload's roles (path / text / base64 ...) exist only on the caller's side.
        Value::Object(args)
    } else {
        let validator = if sim.opts.mock {
            sim.relaxed_validator(lua_name, f)
        } else {
            sim.integration.validator(lua_name)
        }
        .map_err(|e| Reply::status(500, format!("simulator: {e}")))?;
        validator
            .check_wire(lua_name, f, &Value::Object(args))
            .map_err(|e| match e {
                crate::error::Error::Validation { errors, .. } => Reply::invalid(
                    errors
                        .iter()
                        .map(|m| readable(m))
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
                other => Reply::invalid(other.to_string()),
            })?
    };
    Ok(Call {
        function: lua_name,
        f,
        path: path_params,
        args,
        query,
        headers: parts.headers.clone(),
        betas,
        upload,
        mock: sim.opts.mock,
        uri: parts.uri.path_and_query().map_or_else(
            || parts.uri.path().to_string(),
            |pq| pq.as_str().to_string(),
        ),
    })
}

/// The largest body this function takes: the behaviour family's limit (Anthropic: 32 MB,
/// batches 256 MB, files 500 MB), else 500 MB for uploads and 256 MB for JSON.
fn body_limit(sim: &Sim, f: &Function, has_form: bool) -> usize {
    let behaviour = f.simulator.as_ref().and_then(|s| s.behaviour.as_deref());
    match sim.family {
        Some(family) => family.body_limit(behaviour, has_form),
        None if has_form => 500 << 20,
        None => 256 << 20,
    }
}

/// The body if it holds at most `limit` bytes; else `Err` once the whole body has been read
/// (up to 4 GB, then it stops): answering before the client finished sending would make it see
/// a broken connection instead of the 413.
async fn read_limited(body: Body, limit: usize) -> Result<Vec<u8>, ()> {
    use futures::StreamExt;
    const DRAIN_CAP: usize = 4 << 30;
    let mut stream = body.into_data_stream();
    let mut out = Vec::new();
    let mut total = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| ())?;
        total = total.saturating_add(chunk.len());
        if total <= limit {
            out.extend_from_slice(&chunk);
        } else if total > DRAIN_CAP {
            return Err(());
        }
    }
    if total > limit { Err(()) } else { Ok(out) }
}

/// Read and drop a request body the answer does not need (up to 4 GB), so the client sees the
/// answer rather than a connection closed under its upload.
pub async fn drain(body: Body) {
    let _ = read_limited(body, 0).await;
}

/// The 413 the service (its proxy, in fact) sends for an oversized body.
fn too_large(limit: usize) -> Reply {
    Reply::status(
        413,
        format!(
            "Request exceeds the maximum allowed number of bytes. The maximum request size for this endpoint is {} MB.",
            limit >> 20
        ),
    )
}

fn multipart_error(e: &axum::extract::multipart::MultipartError, limit: usize) -> Reply {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        too_large(limit)
    } else {
        Reply::invalid(format!("invalid multipart body: {}", e.body_text()))
    }
}

/// The function with every `enum` of its parameters' schemas removed: the SDKs type many
/// enumerated strings as plain strings (new values appear before the SDK knows them), and mock
/// mode takes what the SDK's types allow.
pub fn without_enums(f: &Function) -> Function {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.remove("enum");
                m.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut f = f.clone();
    for p in &mut f.params {
        let mut schema = Value::Object(std::mem::take(&mut p.schema));
        strip(&mut schema);
        if let Value::Object(m) = schema {
            p.schema = m;
        }
    }
    f
}

/// `/messages/0/role: ...` → `messages.0.role: ...`, the way the service names fields.
pub fn readable(message: &str) -> String {
    match message.split_once(": ") {
        Some((ptr, rest)) if ptr.starts_with('/') => {
            let field = ptr.trim_start_matches('/').replace('/', ".");
            if field.is_empty() {
                rest.to_string()
            } else {
                format!("{field}: {rest}")
            }
        }
        _ => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_pairs_nest_and_coerce_by_schema() {
        let pairs: Vec<(String, String)> = [
            ("email", "a@b.c"),
            ("metadata[k]", ""),
            ("items[0][price]", "p"),
            ("items[0][quantity]", "2"),
            ("items[1][price]", "q"),
            ("tags[]", "x"),
            ("tags[]", "y"),
            ("rep", "1"),
            ("rep", "2"),
            ("rows[][a]", "1"),
            ("rows[][b]", "2"),
            ("rows[][a]", "3"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let m = nest_pairs(&pairs);
        let items_schema = json!({"type": "array", "items": {"type": "object",
            "properties": {"quantity": {"type": "integer"}}}});
        assert_eq!(
            coerce_deep(&items_schema, m["items"].clone()),
            json!([{"price": "p", "quantity": 2}, {"price": "q"}])
        );
        assert_eq!(m["metadata"], json!({"k": ""}));
        assert_eq!(
            coerce_deep(&Value::Null, m["tags"].clone()),
            json!(["x", "y"])
        );
        assert_eq!(m["rep"], json!(["1", "2"]));
        assert_eq!(
            coerce_deep(&json!({"type": "array"}), m["rows"].clone()),
            json!([{"a": "1", "b": "2"}, {"a": "3"}])
        );
        // An object schema keeps numeric keys as keys; a lone value for an array is a list.
        assert_eq!(
            coerce_deep(&json!({"type": "object"}), json!({"0": "a"})),
            json!({"0": "a"})
        );
        assert_eq!(
            coerce_deep(
                &json!({"type": "array", "items": {"type": "integer"}}),
                json!("7")
            ),
            json!([7])
        );
        assert_eq!(
            nested_query(Some("created%5Bgte%5D=1&x=2"), "created"),
            Some(json!({"gte": "1"}))
        );
        assert_eq!(nested_query(Some("x=2"), "created"), None);
    }

    #[test]
    fn queries_with_brackets_and_repeats_become_lists() {
        let q = parse_query(Some(
            "limit=5&roles[]=user&roles%5B%5D=developer&beta=true&email=a%40b.c",
        ));
        assert_eq!(q["limit"], vec!["5"]);
        assert_eq!(q["roles"], vec!["user", "developer"]);
        assert_eq!(q["email"], vec!["a@b.c"]);
    }

    #[test]
    fn strings_are_coerced_to_the_schema_type() {
        assert_eq!(coerce(&json!({"type": "integer"}), "20"), json!(20));
        assert_eq!(coerce(&json!({"type": "boolean"}), "false"), json!(false));
        assert_eq!(coerce(&json!({"type": "integer"}), "x"), json!("x"));
        assert_eq!(coerce(&json!({"type": "integer"}), "4.0"), json!(4));
        assert_eq!(coerce(&json!({"type": "integer"}), "4.5"), json!("4.5"));
        assert_eq!(as_int(&json!(4.0)), Some(4));
        assert_eq!(as_int(&json!(-2)), Some(-2));
        assert_eq!(as_int(&json!(4.5)), None);
        assert_eq!(as_int(&json!("4")), None);
        assert_eq!(readable("/messages/0: bad"), "messages.0: bad");
    }
}

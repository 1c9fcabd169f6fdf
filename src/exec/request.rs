//! Building one HTTP request from a manifest function and its validated, flat arguments.
//!
//! Everything comes from the manifest: where each parameter goes, the wire names, the beta
//! header, the credential header. The result is a plain [`Prepared`] value, so the same request
//! can be rendered for a dry run, sent, and rebuilt unchanged on every retry.

use std::path::PathBuf;

use bytes::Bytes;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value};

use crate::credentials::Secret;
use crate::error::{Error, Result};
use crate::manifest::{
    BodyKind, CredentialKind, CredentialType, FormArrayFormat, Function, Location, Manifest,
    Method, QueryArrayFormat,
};
use crate::validate::{OPTION_FETCH_ALL, OPTION_MAX_ITEMS, OPTION_MAX_PAGES, OPTION_SAVE_TO};

/// What `urllib.parse.quote(value, safe="!$&'()*+,;=:@")` leaves alone, as the official SDK
/// encodes path parameters: unreserved characters plus RFC 3986 sub-delims, `:` and `@`.
/// `/` is encoded, so an id can never escape its path segment.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':')
    .remove(b'@');

/// Reserved expansion (`{+path}`): a path segment's safe set plus `/`.
const PATH_RESERVED: &AsciiSet = &PATH_SEGMENT.remove(b'/');

/// The credential of a request; its value is only exposed when sending.
#[derive(Debug, Clone)]
pub struct Auth {
    pub kind: CredentialKind,
    /// The header for header, bearer and basic credentials (lower case).
    pub header: String,
    pub scheme: Option<String>,
    /// The query parameter of a `kind: query` credential.
    pub query_param: Option<String>,
    /// The fixed user of a `kind: basic` credential.
    pub username: Option<String>,
    /// `None` in a dry run without a configured credential.
    pub secret: Option<Secret>,
}

impl Auth {
    /// From the manifest's credential type.
    pub fn new(cred: &CredentialType, secret: Option<Secret>) -> Auth {
        Auth {
            kind: cred.effective_kind(),
            header: cred.header.to_ascii_lowercase(),
            scheme: cred.effective_scheme(),
            query_param: cred.query_param.clone(),
            username: cred.username.clone(),
            secret,
        }
    }

    /// `user:password` of a basic credential.
    fn basic_pair(&self, secret: &str) -> String {
        match &self.username {
            Some(user) => format!("{user}:{secret}"),
            None if secret.contains(':') => secret.to_string(),
            None => format!("{secret}:"),
        }
    }

    /// The header value; `None` for a query credential or without a secret.
    pub fn value(&self) -> Option<String> {
        let s = self.secret.as_ref()?.expose();
        let token = match self.kind {
            CredentialKind::Query => return None,
            CredentialKind::Basic => {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.encode(self.basic_pair(s))
            }
            CredentialKind::Header | CredentialKind::Bearer => s.to_string(),
        };
        Some(match &self.scheme {
            Some(scheme) => format!("{scheme} {token}"),
            None => token,
        })
    }

    /// The query pair of a `kind: query` credential.
    pub fn query_pair(&self) -> Option<(String, String)> {
        if self.kind != CredentialKind::Query {
            return None;
        }
        Some((
            self.query_param.clone()?,
            self.secret.as_ref()?.expose().to_string(),
        ))
    }

    /// Every form of the secret that could be echoed back: the secret, and for basic
    /// credentials the password and the encoded pair.
    pub fn secret_forms(&self) -> Vec<String> {
        let Some(s) = self.secret.as_ref().map(|s| s.expose().to_string()) else {
            return Vec::new();
        };
        let mut out = vec![s.clone()];
        if self.kind == CredentialKind::Basic {
            use base64::Engine;
            let pair = self.basic_pair(&s);
            if let Some((_, password)) = pair.split_once(':') {
                out.push(password.to_string());
            }
            out.push(base64::engine::general_purpose::STANDARD.encode(pair));
        }
        out
    }
}

/// Where a file part's bytes come from. Paths are re-read on each attempt.
#[derive(Debug, Clone)]
pub enum FileSource {
    Path(PathBuf),
    Bytes(Bytes),
}

/// One multipart field.
#[derive(Debug, Clone)]
pub enum FormPart {
    Text {
        name: String,
        value: String,
    },
    File {
        name: String,
        filename: String,
        content_type: String,
        source: FileSource,
    },
}

#[derive(Debug, Clone)]
pub enum Body {
    None,
    Json(Value),
    Multipart(Vec<FormPart>),
    /// `application/x-www-form-urlencoded` pairs, in order.
    Form(Vec<(String, String)>),
    /// One parameter's bytes as the whole body.
    Raw {
        content_type: String,
        bytes: Bytes,
    },
}

/// A fully built request.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub method: Method,
    /// Base URL plus the expanded path, without the query.
    pub url: String,
    pub query: Vec<(String, String)>,
    /// Plain headers (lower-case names), the credential excluded.
    pub headers: Vec<(String, String)>,
    pub auth: Option<Auth>,
    pub body: Body,
}

impl Prepared {
    /// Replace (or add) a query parameter; pagination uses it to move the cursor.
    pub fn set_query(&mut self, key: &str, value: Option<String>) {
        self.query.retain(|(k, _)| k != key);
        if let Some(v) = value {
            self.query.push((key.to_string(), v));
        }
    }

    pub fn query_value(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The secrets this request carries, for scrubbing anything that echoes them.
    pub fn secrets(&self) -> Vec<String> {
        self.auth
            .iter()
            .flat_map(Auth::secret_forms)
            .chain(crate::credentials::url_password(&self.url))
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// The URL as it may be shown: a `user:password@` in the base URL has its password redacted.
    pub fn display_url(&self) -> String {
        crate::credentials::redact_url(&self.url)
    }
}

/// The argument names kosmo itself consumes; they never go on the wire.
pub fn is_kosmo_option(manifest: &Manifest, name: &str) -> bool {
    matches!(
        name,
        OPTION_FETCH_ALL | OPTION_MAX_ITEMS | OPTION_MAX_PAGES | OPTION_SAVE_TO
    ) || manifest.betas.as_ref().is_some_and(|b| b.param == name)
}

/// Build the request for `f` from validated flat `args`.
pub fn build(
    manifest: &Manifest,
    function: &str,
    f: &Function,
    args: &Map<String, Value>,
    base_url: &str,
    auth: Option<Auth>,
) -> Result<Prepared> {
    let (method, template) = match (&f.method, &f.path) {
        (Some(m), Some(p)) => (*m, p.as_str()),
        _ => {
            return Err(Error::Manifest {
                file: format!("{}.yaml", manifest.name),
                location: format!("/functions/{function}"),
                message: "the function has no method and path".into(),
            });
        }
    };
    // A template may carry constant query parameters (`/v1/files?beta=true`).
    let (path_template, fixed_query) = match template.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (template, None),
    };
    let mut query: Vec<(String, String)> = Vec::new();
    if let Some(q) = fixed_query {
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            query.push((k.to_string(), v.to_string()));
        }
    }
    let fixed_len = query.len();

    let mut path = String::with_capacity(path_template.len() + 32);
    let mut rest = path_template;
    while let Some(start) = rest.find('{') {
        path.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else {
            path.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let placeholder = &after[..end];
        let (name, reserved) = match placeholder.strip_prefix('+') {
            Some(n) => (n, true),
            None => (placeholder, false),
        };
        let value = args.get(name).ok_or_else(|| Error::Validation {
            function: function.into(),
            errors: vec![format!("/{name}: required path parameter is missing")],
        })?;
        let text = scalar_text(value).ok_or_else(|| Error::Validation {
            function: function.into(),
            errors: vec![format!(
                "/{name}: a path parameter must be a string, number or boolean"
            )],
        })?;
        if text.is_empty() {
            return Err(Error::Validation {
                function: function.into(),
                errors: vec![format!("/{name}: must not be empty")],
            });
        }
        let set = if reserved {
            PATH_RESERVED
        } else {
            PATH_SEGMENT
        };
        let encoded = utf8_percent_encode(&text, set).to_string();
        // A reserved expansion keeps `/`, so no segment of it may climb out of the path.
        if encoded.split('/').any(|seg| matches!(seg, "." | "..")) {
            return Err(Error::Validation {
                function: function.into(),
                errors: vec![format!("/{name}: '{text}' is not a valid path segment")],
            });
        }
        path.push_str(&encoded);
        rest = &after[end + 1..];
    }
    path.push_str(rest);

    let mut headers: Vec<(String, String)> = Vec::with_capacity(8);
    for (k, v) in &manifest.headers {
        headers.push((k.to_ascii_lowercase(), v.clone()));
    }
    let mut body = Map::new();
    let mut form: Vec<FormPart> = Vec::new();
    let mut urlencoded: Vec<(String, String)> = Vec::new();
    // Which pairs each top-level field produced, to order the body by field name.
    let mut form_groups: Vec<(String, std::ops::Range<usize>)> = Vec::new();
    let mut raw: Option<Bytes> = None;
    let kind = f
        .body
        .unwrap_or(if f.params.iter().any(|p| p.location == Location::Form) {
            BodyKind::Multipart
        } else {
            BodyKind::Json
        });
    let has_form = kind == BodyKind::Multipart;
    let has_json_body = kind == BodyKind::Json
        && !matches!(method, Method::Get | Method::Delete)
        && (f.passthrough || f.params.iter().any(|p| p.location == Location::Body));

    for (key, value) in args {
        match f.params.iter().find(|p| &p.name == key) {
            Some(p) => match p.location {
                Location::Path | Location::Control => {}
                Location::Query => push_query(&mut query, p.wire(), value, manifest.query_arrays),
                Location::Body | Location::Form if kind == BodyKind::Form => {
                    let start = urlencoded.len();
                    push_form(&mut urlencoded, p.wire(), value, manifest.form_arrays);
                    form_groups.push((p.wire().to_string(), start..urlencoded.len()));
                }
                Location::Body if p.raw => {
                    raw = Some(raw_bytes(function, p.wire(), value)?);
                }
                Location::Body => {
                    if has_form {
                        if let Some(text) = form_text(value) {
                            form.push(FormPart::Text {
                                name: p.wire().to_string(),
                                value: text,
                            });
                        }
                    } else if !value.is_null() || has_json_body {
                        body.insert(p.wire().to_string(), value.clone());
                    }
                }
                Location::Header => {
                    if let Some(text) = scalar_text(value) {
                        check_header_value(function, &format!("/{key}"), &text)?;
                        headers.push((p.wire().to_ascii_lowercase(), text));
                    }
                }
                Location::Form => form.push(form_part(function, p.wire(), &p.schema, value)?),
            },
            None if is_kosmo_option(manifest, key) => {}
            None if f.passthrough && kind == BodyKind::Form => {
                let start = urlencoded.len();
                push_form(&mut urlencoded, key, value, manifest.form_arrays);
                form_groups.push((key.clone(), start..urlencoded.len()));
            }
            None if f.passthrough => {
                body.insert(key.clone(), value.clone());
            }
            None => {
                return Err(Error::Validation {
                    function: function.into(),
                    errors: vec![format!("/{key}: unknown parameter")],
                });
            }
        }
    }

    // Arguments come in the caller's (for Lua: arbitrary) order. Sort them by name, stably, so
    // a request is deterministic; it is also the official SDK's order (its query dicts are
    // alphabetical), after the template's constant parameters.
    query[fixed_len..].sort_by(|a, b| a.0.cmp(&b.0));

    if let Some(b) = &manifest.betas {
        let mut betas: Vec<String> = Vec::new();
        if let Some(Value::Array(user)) = args.get(&b.param) {
            for (i, v) in user.iter().enumerate() {
                if let Some(s) = v.as_str() {
                    check_header_value(function, &format!("/{}/{i}", b.param), s)?;
                    betas.extend(s.split(',').map(|s| s.trim().to_string()));
                }
            }
        }
        betas.extend(f.betas.iter().cloned());
        let mut seen = std::collections::HashSet::new();
        betas.retain(|s| !s.is_empty() && seen.insert(s.clone()));
        if !betas.is_empty() {
            headers.push((b.header.to_ascii_lowercase(), betas.join(",")));
        }
    }
    headers.push((
        "user-agent".into(),
        concat!("kosmo/", env!("CARGO_PKG_VERSION")).into(),
    ));

    let body = if has_form {
        Body::Multipart(form)
    } else if kind == BodyKind::Form {
        // Fields sorted by name (arguments arrive in any order), each field's pairs in order.
        form_groups.sort_by(|a, b| a.0.cmp(&b.0));
        let ordered: Vec<(String, String)> = form_groups
            .into_iter()
            .flat_map(|(_, r)| urlencoded[r].to_vec())
            .collect();
        if matches!(method, Method::Get) {
            Body::None
        } else {
            Body::Form(ordered)
        }
    } else if kind == BodyKind::Raw {
        let content_type = f
            .content_type
            .clone()
            .unwrap_or_else(|| "application/octet-stream".into());
        match raw {
            Some(bytes) => Body::Raw {
                content_type,
                bytes,
            },
            None => Body::None,
        }
    } else if has_json_body {
        headers.push(("content-type".into(), "application/json".into()));
        Body::Json(Value::Object(body))
    } else {
        Body::None
    };

    check_url_length(function, f, args, base_url.len() + path.len(), &query)?;

    // A write that is not idempotent by itself gets an idempotency key when the integration
    // declares the header and the caller gave none; built once per call, so every retry carries
    // the same key.
    if let Some(h) = &manifest.retry.idempotency_header
        && f.class == crate::manifest::Class::Write
        && !f.idempotent
        && !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(h))
    {
        headers.push((h.to_ascii_lowercase(), new_idempotency_key()));
    }

    Ok(Prepared {
        method,
        url: format!("{base_url}{path}"),
        query,
        headers,
        auth,
        body,
    })
}

/// The longest URL kosmo sends. The `http` crate refuses URIs from 64 KiB on, which would
/// surface as an opaque "cannot build the request"; servers commonly refuse far less (8 KiB).
pub const MAX_URL_BYTES: usize = 16 * 1024;

/// A header value from the caller's arguments must be sendable; otherwise it is the caller's
/// mistake (`validation_error` naming the argument), not a configuration problem.
fn check_header_value(function: &str, pointer: &str, text: &str) -> Result<()> {
    if reqwest::header::HeaderValue::from_str(text).is_err() {
        return Err(Error::Validation {
            function: function.into(),
            errors: vec![format!(
                "{pointer}: cannot be sent in an HTTP header (control characters such as line breaks are not allowed)"
            )],
        });
    }
    Ok(())
}

/// Refuse a URL longer than [`MAX_URL_BYTES`], naming the longest path or query argument.
fn check_url_length(
    function: &str,
    f: &Function,
    args: &Map<String, Value>,
    base_and_path: usize,
    query: &[(String, String)],
) -> Result<()> {
    let query_len: usize = query
        .iter()
        .map(|(k, v)| {
            // Worst case of form encoding: every byte percent-encoded.
            1 + utf8_percent_encode(k, NON_ALPHANUMERIC).to_string().len()
                + utf8_percent_encode(v, NON_ALPHANUMERIC).to_string().len()
        })
        .sum();
    let total = base_and_path + query_len;
    if total <= MAX_URL_BYTES {
        return Ok(());
    }
    let culprit = f
        .params
        .iter()
        .filter(|p| matches!(p.location, Location::Path | Location::Query))
        .filter_map(|p| {
            args.get(&p.name)
                .map(|v| (p.name.as_str(), v.to_string().len()))
        })
        .max_by_key(|(_, len)| *len)
        .map(|(name, _)| name)
        .unwrap_or("arguments");
    Err(Error::Validation {
        function: function.into(),
        errors: vec![format!(
            "/{culprit}: too long: the request URL would be {total} bytes (at most {MAX_URL_BYTES})"
        )],
    })
}

/// The text of a scalar as the SDK writes it into a URL (`true`/`false`, numbers as JSON).
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(if *b { "true" } else { "false" }.into()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn form_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Array(_) | Value::Object(_) => Some(v.to_string()),
        other => scalar_text(other),
    }
}

/// Form-urlencoded pairs: nulls skipped, objects as `k[sub]`, arrays per `form_arrays`
/// (`k[0]`, `k[]` or `k`), booleans as `true` / `false`.
fn push_form(out: &mut Vec<(String, String)>, key: &str, value: &Value, fmt: FormArrayFormat) {
    match value {
        Value::Null => {}
        Value::Object(m) => {
            for (sub, v) in m {
                push_form(out, &format!("{key}[{sub}]"), v, fmt);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let k = match fmt {
                    FormArrayFormat::Indexed => format!("{key}[{i}]"),
                    FormArrayFormat::Brackets => format!("{key}[]"),
                    FormArrayFormat::Repeat => key.to_string(),
                };
                push_form(out, &k, v, fmt);
            }
        }
        other => {
            if let Some(t) = scalar_text(other) {
                out.push((key.to_string(), t));
            }
        }
    }
}

/// The bytes of a `raw: true` parameter: a string as UTF-8, or `{base64 = "..."}`.
fn raw_bytes(function: &str, name: &str, value: &Value) -> Result<Bytes> {
    let bad = |msg: String| Error::Validation {
        function: function.into(),
        errors: vec![format!("/{name}: {msg}")],
    };
    match value {
        Value::String(s) => Ok(Bytes::from(s.clone())),
        Value::Object(m) => match m.get("base64").and_then(Value::as_str) {
            Some(b64) => {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map(Bytes::from)
                    .map_err(|e| bad(format!("base64 is not valid base64: {e}")))
            }
            None => Err(bad("a raw body is a string or {base64 = \"...\"}".into())),
        },
        _ => Err(bad("a raw body is a string or {base64 = \"...\"}".into())),
    }
}

/// A random idempotency key: `kosmo-` and 32 hex digits (128 random bits).
fn new_idempotency_key() -> String {
    format!("kosmo-{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

/// Query pairs in the SDK's `qs` form: nulls skipped, objects as `k[sub]`, arrays per format.
fn push_query(out: &mut Vec<(String, String)>, key: &str, value: &Value, fmt: QueryArrayFormat) {
    match value {
        Value::Null => {}
        Value::Object(m) => {
            for (sub, v) in m {
                push_query(out, &format!("{key}[{sub}]"), v, fmt);
            }
        }
        Value::Array(items) => match fmt {
            QueryArrayFormat::Comma => {
                let joined: Vec<String> = items.iter().filter_map(scalar_text).collect();
                out.push((key.to_string(), joined.join(",")));
            }
            QueryArrayFormat::Repeat => {
                for v in items {
                    push_query(out, key, v, fmt);
                }
            }
            QueryArrayFormat::Brackets => {
                let k = format!("{key}[]");
                for v in items {
                    push_query(out, &k, v, fmt);
                }
            }
            QueryArrayFormat::Indexed => {
                for (i, v) in items.iter().enumerate() {
                    push_query(out, &format!("{key}[{i}]"), v, fmt);
                }
            }
        },
        other => {
            if let Some(t) = scalar_text(other) {
                out.push((key.to_string(), t));
            }
        }
    }
}

/// The local file a form argument names, if any: a path string for a file parameter
/// (`format: binary` or `x-kosmo-file`), or an object's `path`. Inline `content` /
/// `content_base64` name no file. [`form_part`] reads exactly this path, and
/// [`crate::exec::Executor::local_files`] reports it to the sandbox, so both must agree.
pub fn form_file_path(schema: &Map<String, Value>, value: &Value) -> Option<PathBuf> {
    if !is_file_param(schema) {
        return None;
    }
    match value {
        Value::String(path) => Some(PathBuf::from(path)),
        Value::Object(m) => m.get("path").and_then(Value::as_str).map(PathBuf::from),
        _ => None,
    }
}

fn is_file_param(schema: &Map<String, Value>) -> bool {
    schema.get("format").and_then(Value::as_str) == Some("binary")
        || schema.contains_key("x-kosmo-file")
}

/// A multipart field from a form argument.
///
/// A file parameter (its schema says `format: binary` or `x-kosmo-file`) is given as a path
/// string or an object with `path`, or inline as `{content | content_base64, filename,
/// content_type}`. Anything else is a text field; an object or array is sent as JSON text.
fn form_part(
    function: &str,
    name: &str,
    schema: &Map<String, Value>,
    value: &Value,
) -> Result<FormPart> {
    let bad = |msg: String| Error::Validation {
        function: function.into(),
        errors: vec![format!("/{name}: {msg}")],
    };
    let guess = |filename: &str| {
        mime_guess::from_path(filename)
            .first_raw()
            .unwrap_or("application/octet-stream")
            .to_string()
    };
    let local = form_file_path(schema, value);
    if !is_file_param(schema) {
        return Ok(FormPart::Text {
            name: name.into(),
            value: form_text(value).unwrap_or_default(),
        });
    }
    match value {
        Value::String(path) if local.is_some() => {
            let p = PathBuf::from(path);
            let filename = p
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .ok_or_else(|| bad(format!("'{path}' does not name a file")))?;
            Ok(FormPart::File {
                name: name.into(),
                content_type: guess(&filename),
                filename,
                source: FileSource::Path(p),
            })
        }
        Value::Object(m) => {
            let text = |k: &str| m.get(k).and_then(Value::as_str);
            let ctype = text("content_type").or_else(|| text("mime_type"));
            if let (Some(path), Some(p)) = (text("path"), local) {
                let filename = match text("filename").and_then(last_component) {
                    Some(f) => f,
                    None => p
                        .file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .ok_or_else(|| bad(format!("'{path}' does not name a file")))?,
                };
                return Ok(FormPart::File {
                    name: name.into(),
                    content_type: ctype
                        .map(str::to_string)
                        .unwrap_or_else(|| guess(&filename)),
                    filename,
                    source: FileSource::Path(p),
                });
            }
            let bytes = if let Some(c) = text("content") {
                Bytes::from(c.to_string())
            } else if let Some(b64) = text("content_base64") {
                use base64::Engine;
                Bytes::from(
                    base64::engine::general_purpose::STANDARD
                        .decode(b64.trim())
                        .map_err(|e| bad(format!("content_base64 is not valid base64: {e}")))?,
                )
            } else {
                return Err(bad(
                    "a file is {path = ...} or {content = ... | content_base64 = ..., filename = ..., content_type = ...}"
                        .into(),
                ));
            };
            let filename = text("filename")
                .and_then(last_component)
                .ok_or_else(|| bad("inline file content needs a filename".into()))?;
            Ok(FormPart::File {
                name: name.into(),
                content_type: ctype
                    .map(str::to_string)
                    .unwrap_or_else(|| guess(&filename)),
                filename,
                source: FileSource::Bytes(bytes),
            })
        }
        other => Ok(FormPart::Text {
            name: name.into(),
            value: form_text(other).unwrap_or_default(),
        }),
    }
}

/// Only the last component of a file name goes on the wire (never a local directory).
fn last_component(name: &str) -> Option<String> {
    std::path::Path::new(name)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .filter(|f| !f.is_empty())
}

/// Turn a prepared request into a reqwest request. Multipart forms are rebuilt from their
/// sources each time, because a form body can be sent only once.
/// `url` is `p.url` already parsed, when the caller has it (the executor keeps recent ones).
pub async fn to_reqwest(
    client: &reqwest::Client,
    p: &Prepared,
    url: Option<reqwest::Url>,
) -> Result<reqwest::RequestBuilder> {
    let method = match p.method {
        Method::Get => reqwest::Method::GET,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Patch => reqwest::Method::PATCH,
        Method::Delete => reqwest::Method::DELETE,
    };
    let mut rb = match url {
        Some(u) => client.request(method, u),
        None => client.request(method, &p.url),
    };
    if !p.query.is_empty() {
        rb = rb.query(&p.query);
    }
    if let Some((k, v)) = p.auth.as_ref().and_then(Auth::query_pair) {
        rb = rb.query(&[(k, v)]);
    }
    for (k, v) in &p.headers {
        rb = rb.header(k.as_str(), v.as_str());
    }
    if let Some(auth) = &p.auth
        && auth.kind != CredentialKind::Query
        && let Some(v) = auth.value()
    {
        let mut hv = reqwest::header::HeaderValue::from_str(&v).map_err(|_| {
            Error::config(format!(
                "the configured {} contains characters that cannot go in an HTTP header",
                auth.header
            ))
        })?;
        hv.set_sensitive(true);
        rb = rb.header(auth.header.as_str(), hv);
    }
    match &p.body {
        Body::None => {}
        Body::Json(v) => {
            let bytes = serde_json::to_vec(v)
                .map_err(|e| Error::config(format!("cannot encode the request body: {e}")))?;
            rb = rb.body(bytes);
        }
        Body::Form(pairs) => {
            let text = serde_urlencoded::to_string(pairs)
                .map_err(|e| Error::config(format!("cannot encode the form body: {e}")))?;
            rb = rb
                .header("content-type", "application/x-www-form-urlencoded")
                .body(text);
        }
        Body::Raw {
            content_type,
            bytes,
        } => {
            rb = rb
                .header("content-type", content_type.as_str())
                .body(bytes.clone());
        }
        Body::Multipart(parts) => {
            let mut form = reqwest::multipart::Form::new();
            for part in parts {
                form = match part {
                    FormPart::Text { name, value } => form.text(name.clone(), value.clone()),
                    FormPart::File {
                        name,
                        filename,
                        content_type,
                        source,
                    } => {
                        let bytes = match source {
                            FileSource::Bytes(b) => b.clone(),
                            FileSource::Path(path) => Bytes::from(
                                tokio::fs::read(path)
                                    .await
                                    .map_err(|e| Error::io(path, e))?,
                            ),
                        };
                        let part = reqwest::multipart::Part::stream(bytes)
                            .file_name(filename.clone())
                            .mime_str(content_type)
                            .map_err(|_| Error::Validation {
                                function: name.clone(),
                                errors: vec![format!("'{content_type}' is not a MIME type")],
                            })?;
                        form.part(name.clone(), part)
                    }
                };
            }
            rb = rb.multipart(form);
        }
    }
    Ok(rb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_encoded_like_the_sdk() {
        // urllib.parse.quote("a b/c?d#e%f:g@h+i", safe="!$&'()*+,;=:@")
        let s = utf8_percent_encode("a b/c?d#e%f:g@h+i~é", PATH_SEGMENT).to_string();
        assert_eq!(s, "a%20b%2Fc%3Fd%23e%25f:g@h+i~%C3%A9");
    }

    #[test]
    fn template_constants_come_first_then_sorted_arguments() {
        let m = Manifest::from_yaml(
            "t.yaml",
            r#"
name: t
label: T
summary: s
category: c
base_url: http://127.0.0.1:1
credentials: {}
functions:
  f:
    group: g
    class: read
    summary: f
    method: GET
    path: /things/{id}?beta=true
    params:
      - {name: id, in: path, required: true, type: string}
      - {name: zeta, in: query, type: string}
      - {name: alpha, in: query, type: integer}
"#,
        )
        .unwrap();
        let f = &m.functions["f"];
        let args = serde_json::json!({"zeta": "z", "id": "a/b", "alpha": 1, "fetch_all": true});
        let p = build(&m, "f", f, args.as_object().unwrap(), "http://h", None).unwrap();
        assert_eq!(p.url, "http://h/things/a%2Fb");
        let q: Vec<(&str, &str)> = p
            .query
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(q, [("beta", "true"), ("alpha", "1"), ("zeta", "z")]);
        assert!(matches!(p.body, Body::None));
        let dot = serde_json::json!({"id": ".."});
        assert!(build(&m, "f", f, dot.as_object().unwrap(), "http://h", None).is_err());
    }

    const ENGINE: &str = r#"
name: t
label: T
summary: s
category: c
base_url: http://127.0.0.1:1
credentials:
  basic: {label: B, kind: basic, hint: h}
  named: {label: N, kind: basic, username: bot, hint: h}
  q: {label: Q, kind: query, query_param: key, hint: h}
  b: {label: Bearer, kind: bearer, hint: h}
form_arrays: brackets
functions:
  form:
    group: g
    class: write
    summary: f
    method: POST
    path: /f/{+rest}
    credential: basic
    body: form
    params:
      - {name: rest, in: path, required: true, type: string}
      - {name: z, in: body, type: string}
      - {name: meta, in: body, type: object}
      - {name: tags, in: body, type: array}
      - {name: gone, in: body, type: [string, "null"]}
  raw:
    group: g
    class: write
    summary: r
    method: POST
    path: /r
    credential: q
    body: raw
    content_type: text/csv
    params:
      - {name: data, in: body, raw: true, required: true}
"#;

    #[test]
    fn form_bodies_nest_keys_and_order_fields_by_name() {
        let m = Manifest::from_yaml("t.yaml", ENGINE).unwrap();
        let f = &m.functions["form"];
        let args = serde_json::json!({"z": "last", "tags": ["a", "b"], "gone": null,
            "meta": {"k": {"deep": true}, "n": 1.5}, "rest": "a b/c?d"});
        let p = build(&m, "form", f, args.as_object().unwrap(), "http://h", None).unwrap();
        assert_eq!(p.url, "http://h/f/a%20b/c%3Fd");
        let Body::Form(pairs) = &p.body else {
            panic!("{:?}", p.body)
        };
        let got: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("meta[k][deep]", "true"),
                ("meta[n]", "1.5"),
                ("tags[]", "a"),
                ("tags[]", "b"),
                ("z", "last")
            ]
        );
        let up = serde_json::json!({"rest": "../x"});
        assert!(build(&m, "form", f, up.as_object().unwrap(), "http://h", None).is_err());
        let raw = &m.functions["raw"];
        let args = serde_json::json!({"data": "a,b\n"});
        let p = build(&m, "raw", raw, args.as_object().unwrap(), "http://h", None).unwrap();
        match &p.body {
            Body::Raw {
                content_type,
                bytes,
            } => {
                assert_eq!(content_type, "text/csv");
                assert_eq!(&bytes[..], b"a,b\n");
            }
            other => panic!("{other:?}"),
        }
        let bad = serde_json::json!({"data": 5});
        assert!(build(&m, "raw", raw, bad.as_object().unwrap(), "http://h", None).is_err());
    }

    #[test]
    fn credential_kinds() {
        use base64::Engine;
        let m = Manifest::from_yaml("t.yaml", ENGINE).unwrap();
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let auth =
            |name: &str, secret: &str| Auth::new(&m.credentials[name], Some(Secret::new(secret)));
        assert_eq!(
            auth("basic", "sk_1").value(),
            Some(format!("Basic {}", b64("sk_1:")))
        );
        assert_eq!(
            auth("basic", "me:pw").value(),
            Some(format!("Basic {}", b64("me:pw")))
        );
        let named = auth("named", "pw123");
        assert_eq!(named.value(), Some(format!("Basic {}", b64("bot:pw123"))));
        assert!(named.secret_forms().contains(&b64("bot:pw123")));
        let q = auth("q", "qsecret");
        assert_eq!(q.value(), None);
        assert_eq!(q.query_pair(), Some(("key".into(), "qsecret".into())));
        assert_eq!(auth("b", "tok").value(), Some("Bearer tok".to_string()));
        assert_eq!(auth("b", "tok").header, "authorization");
        // A dry run shows the query credential redacted, never the value.
        let raw = &m.functions["raw"];
        let args = serde_json::json!({"data": "x"});
        let p = build(
            &m,
            "raw",
            raw,
            args.as_object().unwrap(),
            "http://h",
            Some(q),
        )
        .unwrap();
        let shown = crate::exec::dry_run::render(&p);
        assert_eq!(shown["query"]["key"], "[redacted]");
        assert!(!shown.to_string().contains("qsecret"));
        assert_eq!(shown["body"]["raw"], "x");
    }

    #[test]
    fn query_arrays_and_objects() {
        let mut q = Vec::new();
        let v = serde_json::json!({"a": [1, "x"], "b": null, "c": true, "d": {"e": 2.5}});
        for (k, v) in v.as_object().unwrap() {
            push_query(&mut q, k, v, QueryArrayFormat::Brackets);
        }
        let want: Vec<(String, String)> =
            [("a[]", "1"), ("a[]", "x"), ("c", "true"), ("d[e]", "2.5")]
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
        assert_eq!(q, want);
        let mut q = Vec::new();
        push_query(
            &mut q,
            "k",
            &serde_json::json!(["a", "b"]),
            QueryArrayFormat::Comma,
        );
        assert_eq!(q, vec![("k".to_string(), "a,b".to_string())]);
        let mut q = Vec::new();
        push_query(
            &mut q,
            "expand",
            &serde_json::json!(["a", {"b": 1}]),
            QueryArrayFormat::Indexed,
        );
        assert_eq!(
            q,
            vec![
                ("expand[0]".to_string(), "a".to_string()),
                ("expand[1][b]".to_string(), "1".to_string())
            ]
        );
    }
}

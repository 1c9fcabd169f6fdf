//! Turning what came back into a value or a structured error.
//!
//! Error bodies are read through the manifest's pointers (`errors.type_pointer`, ...). Anything
//! that is not the API's envelope (an HTML page from a proxy, truncated JSON) becomes
//! `bad_response`, said plainly. Every message built from server data is scrubbed of the
//! request's secrets, in case a server or proxy echoes them.

use base64::Engine;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::error::{Error, Result, TransportKind};
use crate::manifest::Manifest;

/// Replace every occurrence of a secret with `[redacted]`.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = crate::credentials::redact_url(text);
    for s in secrets {
        if s.len() >= 4 && out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "[redacted]");
        }
    }
    out
}

/// Scrub secrets from every string of an error (used for whatever leaves the executor).
pub fn redact_error(err: Error, secrets: &[String]) -> Error {
    let r = |s: String| redact(&s, secrets);
    match err {
        Error::Api {
            status,
            error_type,
            message,
            request_id,
            retry_after,
        } => Error::Api {
            status,
            error_type: r(error_type),
            message: r(message),
            request_id: request_id.map(r),
            retry_after,
        },
        Error::BadResponse {
            status,
            message,
            request_id,
        } => Error::BadResponse {
            status,
            message: r(message),
            request_id: request_id.map(r),
        },
        Error::Transport { kind, message } => Error::Transport {
            kind,
            message: r(message),
        },
        Error::Config { message } => Error::Config {
            message: r(message),
        },
        Error::Validation { function, errors } => Error::Validation {
            function,
            errors: errors.into_iter().map(r).collect(),
        },
        other => other,
    }
}

pub fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

pub fn request_id(manifest: &Manifest, headers: &HeaderMap) -> Option<String> {
    header_text(headers, &manifest.errors.request_id_header)
}

pub fn content_type(headers: &HeaderMap) -> String {
    header_text(headers, "content-type").unwrap_or_else(|| "application/octet-stream".into())
}

/// The error for a non-2xx response.
/// The API error an error envelope describes (the manifest's `errors` pointers), or `None` when
/// the value has no error type. Shared by error responses and mid-stream `error` events.
pub fn error_from_value(
    manifest: &Manifest,
    status: u16,
    v: &Value,
    request_id: Option<String>,
    retry_after: Option<f64>,
) -> Option<Error> {
    let ptr = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
    let error_type = ptr(&manifest.errors.type_pointer)?;
    Some(Error::Api {
        status,
        message: ptr(&manifest.errors.message_pointer).unwrap_or_else(|| error_type.clone()),
        error_type,
        // Some error bodies carry the request id too; the header wins.
        request_id: request_id.or_else(|| ptr("/request_id")),
        retry_after,
    })
}

pub fn api_error(
    manifest: &Manifest,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[String],
) -> Error {
    let request_id = request_id(manifest, headers);
    let retry_after = super::retry::retry_after(headers);
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    if let Some(e) = parsed
        .as_ref()
        .and_then(|v| error_from_value(manifest, status, v, request_id.clone(), retry_after))
    {
        return redact_error(e, secrets);
    }
    let what = describe_unexpected(headers, body, parsed.is_some());
    redact_error(
        Error::BadResponse {
            status,
            message: format!("HTTP {status}: {what}"),
            request_id,
        },
        secrets,
    )
}

/// Plain words for a body that is not what the API sends.
fn describe_unexpected(headers: &HeaderMap, body: &[u8], is_json: bool) -> String {
    let ctype = content_type(headers);
    let text = String::from_utf8_lossy(&body[..body.len().min(2048)]);
    let trimmed = text.trim_start();
    if ctype.contains("html") || trimmed.starts_with('<') {
        let title = trimmed
            .to_ascii_lowercase()
            .find("<title>")
            .and_then(|i| {
                let rest = &trimmed[i + 7..];
                rest.to_ascii_lowercase()
                    .find("</title>")
                    .map(|j| rest[..j].trim().to_string())
            })
            .filter(|t| !t.is_empty());
        return match title {
            Some(t) => format!(
                "the server answered with an HTML page (\"{t}\") instead of JSON; a proxy or gateway in between may be failing"
            ),
            None => "the server answered with an HTML page instead of JSON; a proxy or gateway in between may be failing".into(),
        };
    }
    if body.is_empty() {
        return "the server answered with an empty body instead of a JSON error".into();
    }
    if is_json {
        return format!(
            "the server answered with JSON that is not an API error envelope: {}",
            snippet(&text)
        );
    }
    format!(
        "the server answered with a body that is not JSON ({} bytes of {ctype}, possibly truncated): {}",
        body.len(),
        snippet(&text)
    )
}

fn snippet(text: &str) -> String {
    let one_line: String = text
        .chars()
        .take(160)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > 160 {
        format!("{one_line}...")
    } else {
        one_line
    }
}

/// The JSON value of a successful response. An empty body (204) is `null`.
pub fn decode_json(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    request_id: Option<String>,
    secrets: &[String],
) -> Result<Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|e| {
        let what = if e.is_eof() {
            format!(
                "HTTP {status}: the JSON response ended early after {} bytes (truncated): {e}",
                body.len()
            )
        } else {
            format!(
                "HTTP {status}: {}",
                describe_unexpected(headers, body, false)
            )
        };
        redact_error(
            Error::BadResponse {
                status,
                message: what,
                request_id,
            },
            secrets,
        )
    })
}

/// `{content_type, body}` for `jsonl` / `binary` responses; non-UTF-8 bodies are base64 with
/// `body_base64: true`.
pub fn content_value(content_type: String, body: &[u8]) -> Value {
    match std::str::from_utf8(body) {
        Ok(text) => json!({"content_type": content_type, "body": text}),
        Err(_) => json!({
            "content_type": content_type,
            "body": base64::engine::general_purpose::STANDARD.encode(body),
            "body_base64": true,
        }),
    }
}

/// Classify a transport failure. Returns the error and whether the request may have reached the
/// server (false only when no connection was made).
pub fn transport_error(e: &reqwest::Error, what: &str) -> (Error, bool) {
    let mut detail = String::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = source {
        let t = s.to_string();
        if !detail.contains(&t) {
            if !detail.is_empty() {
                detail.push_str(": ");
            }
            detail.push_str(&t);
        }
        source = s.source();
    }
    let lower = detail.to_ascii_lowercase();
    let (kind, reached, msg) = if e.is_connect() {
        let m = if e.is_timeout() || lower.contains("timed out") {
            "connect timeout"
        } else {
            "cannot connect"
        };
        (TransportKind::Connect, false, m)
    } else if e.is_timeout() {
        (TransportKind::Timeout, true, "timed out")
    } else if lower.contains("reset")
        || lower.contains("closed")
        || lower.contains("broken pipe")
        || lower.contains("incomplete")
        || lower.contains("eof")
    {
        (TransportKind::Reset, true, "connection reset or closed")
    } else {
        (TransportKind::Other, true, "transport error")
    };
    let message = if detail.is_empty() {
        format!("{what}: {msg}")
    } else {
        format!("{what}: {msg} ({detail})")
    };
    (Error::Transport { kind, message }, reached)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn manifest() -> Manifest {
        Manifest::from_yaml(
            "t.yaml",
            "name: t\nlabel: T\nsummary: s\ncategory: c\nbase_url: http://127.0.0.1:1\ncredentials: {}\nfunctions:\n  f: {group: g, class: read, summary: f, method: GET, path: /f}\n",
        )
        .unwrap()
    }

    #[test]
    fn envelope_html_and_secrets() {
        let m = manifest();
        let mut h = HeaderMap::new();
        h.insert("request-id", HeaderValue::from_static("req_1"));
        h.insert("retry-after", HeaderValue::from_static("2"));
        let body = br#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down sk-secret-1234"}}"#;
        let e = api_error(&m, 429, &h, body, &["sk-secret-1234".into()]);
        assert_eq!(e.code(), "rate_limit_error");
        assert_eq!(e.request_id(), Some("req_1"));
        assert_eq!(e.retry_after(), Some(2.0));
        assert!(!e.to_string().contains("sk-secret"), "{e}");
        let e = api_error(
            &m,
            502,
            &h,
            b"<html><head><title>502 Bad Gateway</title></head></html>",
            &[],
        );
        assert_eq!(e.code(), "bad_response");
        assert!(
            e.to_string().contains("HTML page (\"502 Bad Gateway\")"),
            "{e}"
        );
        let e = decode_json(200, &h, br#"{"id": "x", "da"#, None, &[]).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
    }

    #[test]
    fn binary_bodies() {
        assert_eq!(
            content_value("text/plain".into(), b"hi"),
            json!({"content_type": "text/plain", "body": "hi"})
        );
        let v = content_value("application/octet-stream".into(), &[0xff, 0x00]);
        assert_eq!(v["body_base64"], true);
        assert_eq!(v["body"], "/wA=");
    }
}

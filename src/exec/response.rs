//! Turning what came back into a value or a structured error.
//!
//! Error bodies are read through the manifest's pointers (`errors.type_pointer`, ...). Anything
//! that is not the API's envelope (an HTML page from a proxy, truncated JSON) becomes
//! `bad_response`, said plainly. Every message built from server data is scrubbed of the
//! request's secrets, in case a server or proxy echoes them.

use base64::Engine;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::error::{ApiDetail, Error, Result, TransportKind};
use crate::manifest::Manifest;

/// Replace every secret, every long fragment of one and every URL credential with
/// `[redacted]` (the rules of [`crate::redact`]).
pub fn redact(text: &str, secrets: &[String]) -> String {
    crate::redact::Redactor::for_secrets(secrets).redact(text)
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
            detail,
        } => Error::Api {
            status,
            error_type: r(error_type),
            message: r(message),
            request_id: request_id.map(r),
            retry_after,
            detail: detail.map(|d| {
                Box::new(ApiDetail {
                    code: d.code.map(r),
                    param: d.param.map(r),
                    body: d.body.map(|b| redact_value(b, secrets)),
                    headers: d
                        .headers
                        .into_iter()
                        .map(|(k, v)| (k, redact(&v, secrets)))
                        .collect(),
                })
            }),
        },
        Error::PaginationLimit { function, message } => Error::PaginationLimit {
            function,
            message: r(message),
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

/// Scrub secrets from every string of a JSON value (keys included).
pub fn redact_value(mut v: Value, secrets: &[String]) -> Value {
    crate::redact::Redactor::for_secrets(secrets).redact_value_in_place(&mut v);
    v
}

/// Response headers as `(lower-case name, value)` pairs, secrets redacted; a header whose
/// value is not text is left out.
pub fn header_pairs(headers: &HeaderMap, secrets: &[String]) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(k, v)| {
            let text = v.to_str().ok()?;
            let shown = if v.is_sensitive()
                || matches!(
                    k.as_str(),
                    "set-cookie" | "authorization" | "proxy-authorization"
                ) {
                "[redacted]".to_string()
            } else {
                redact(text, secrets)
            };
            Some((k.as_str().to_ascii_lowercase(), shown))
        })
        .collect()
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

/// The API error an error envelope describes (the manifest's `errors` pointers), or `None` when
/// the value has no error type. Shared by error responses and mid-stream `error` events.
pub fn error_from_value(
    manifest: &Manifest,
    status: u16,
    v: &Value,
    request_id: Option<String>,
    retry_after: Option<f64>,
) -> Option<Error> {
    let errors = &manifest.errors;
    let ptr = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
    let error_type = ptr(&errors.type_pointer)?;
    Some(Error::Api {
        status,
        message: ptr(&errors.message_pointer).unwrap_or_else(|| error_type.clone()),
        error_type,
        // Some error bodies carry the request id too; the header wins.
        request_id: request_id.or_else(|| body_request_id(manifest, v)),
        retry_after,
        detail: Some(Box::new(detail_of(manifest, v))),
    })
}

fn body_request_id(manifest: &Manifest, v: &Value) -> Option<String> {
    let p = manifest
        .errors
        .request_id_pointer
        .as_deref()
        .unwrap_or("/request_id");
    scalar(v.pointer(p))
}

fn scalar(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn detail_of(manifest: &Manifest, v: &Value) -> ApiDetail {
    let at = |p: &Option<String>| p.as_deref().and_then(|p| scalar(v.pointer(p)));
    ApiDetail {
        code: at(&manifest.errors.code_pointer),
        param: at(&manifest.errors.param_pointer),
        body: Some(v.clone()),
        headers: Vec::new(),
    }
}

/// The error type for a status without one in its body: the manifest's `status_types`, else a
/// generic name.
pub fn status_type(manifest: &Manifest, status: u16) -> String {
    if let Some(t) = manifest.errors.status_type(status) {
        return t.to_string();
    }
    // Only what HTTP itself says; an API's own names are declared in its manifest.
    if status == 429 {
        "rate_limit_error".into()
    } else {
        "api_error".into()
    }
}

/// The error for a non-2xx response. Any error body is an API error with its status: the
/// envelope's type when the manifest's pointer finds one, else the status's type; the message
/// from the pointer, else the body's own text. An HTML page from a proxy (or an empty body)
/// stays `bad_response`: that is not the API talking.
pub fn api_error(
    manifest: &Manifest,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[String],
    retry_after: Option<f64>,
    rate_limited: bool,
) -> Error {
    let request_id = request_id(manifest, headers);
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    // The type when the body does not name one: a declared rate limit, else the status's.
    let by_status = || {
        if rate_limited {
            "rate_limit_error".to_string()
        } else {
            status_type(manifest, status)
        }
    };
    let err = if let Some(mut e) = parsed
        .as_ref()
        .and_then(|v| error_from_value(manifest, status, v, request_id.clone(), retry_after))
    {
        if rate_limited && let Error::Api { error_type, .. } = &mut e {
            *error_type = "rate_limit_error".into();
        }
        e
    } else if let Some(v) = parsed.as_ref().filter(|v| !v.is_null()) {
        // JSON, but not the declared envelope: still the API's answer.
        let errors = &manifest.errors;
        let message = v
            .pointer(&errors.message_pointer)
            .and_then(Value::as_str)
            .or_else(|| v.get("message").and_then(Value::as_str))
            .or_else(|| v.pointer("/error/message").and_then(Value::as_str))
            .or_else(|| v.get("error").and_then(Value::as_str))
            .map(str::to_string)
            .unwrap_or_else(|| snippet(&v.to_string()));
        Error::Api {
            status,
            error_type: by_status(),
            message,
            request_id: request_id.or_else(|| body_request_id(manifest, v)),
            retry_after,
            detail: Some(Box::new(detail_of(manifest, v))),
        }
    } else if let Some(text) = plain_text(headers, body) {
        Error::Api {
            status,
            error_type: by_status(),
            message: snippet(text.trim()),
            request_id,
            retry_after,
            detail: Some(Box::new(ApiDetail {
                code: None,
                param: None,
                body: Some(Value::String(text)),
                headers: Vec::new(),
            })),
        }
    } else if status >= 400 {
        // An HTML page (a proxy's or gateway's error) or an empty body: still an error answer
        // with a status, typed by the status like the SDKs do, never `bad_response`.
        let what = describe_unexpected(headers, body, parsed.is_some());
        let kept = String::from_utf8_lossy(&body[..body.len().min(64 * 1024)]).into_owned();
        Error::Api {
            status,
            error_type: by_status(),
            message: format!("HTTP {status}: {what}"),
            request_id,
            retry_after,
            detail: Some(Box::new(ApiDetail {
                code: None,
                param: None,
                body: (!kept.trim().is_empty()).then_some(Value::String(kept)),
                headers: Vec::new(),
            })),
        }
    } else {
        // A redirect or another status that is neither success nor error: not the API talking.
        let what = describe_unexpected(headers, body, parsed.is_some());
        Error::BadResponse {
            status,
            message: format!("HTTP {status}: {what}"),
            request_id,
        }
    };
    let err = match err {
        Error::Api {
            status,
            error_type,
            message,
            request_id,
            retry_after,
            detail: Some(mut d),
        } => {
            d.headers = header_pairs(headers, secrets);
            Error::Api {
                status,
                error_type,
                message,
                request_id,
                retry_after,
                detail: Some(d),
            }
        }
        other => other,
    };
    redact_error(err, secrets)
}

/// The text of a plain-text error body (not HTML, not empty, valid UTF-8).
fn plain_text(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    let ctype = content_type(headers);
    if ctype.contains("html") || body.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let text = std::str::from_utf8(body).ok()?;
    if text.trim_start().starts_with('<') {
        return None;
    }
    // Keep at most 64 KiB of a text body.
    let mut end = text.len().min(64 * 1024);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Some(text[..end].to_string())
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
        let wait = crate::exec::retry::retry_after(&h);
        let e = api_error(&m, 429, &h, body, &["sk-secret-1234".into()], wait, false);
        assert_eq!(e.code(), "rate_limit_error");
        assert_eq!(e.request_id(), Some("req_1"));
        assert_eq!(e.retry_after(), Some(2.0));
        let body = e.api_detail().and_then(|d| d.body.clone()).unwrap();
        assert_eq!(body["error"]["message"], "slow down [redacted]");
        assert!(!e.to_string().contains("sk-secret"), "{e}");
        let e = api_error(
            &m,
            502,
            &h,
            b"<html><head><title>502 Bad Gateway</title></head></html>",
            &[],
            None,
            false,
        );
        // A gateway's HTML page is still an error answer with its status (as the SDKs see it).
        assert_eq!(e.code(), "api_error");
        assert_eq!(e.status(), Some(502));
        assert!(
            e.to_string().contains("HTML page (\"502 Bad Gateway\")"),
            "{e}"
        );
        let e = decode_json(200, &h, br#"{"id": "x", "da"#, None, &[]).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
    }

    fn code_and_param_envelope() -> Manifest {
        Manifest::from_yaml(
            "t.yaml",
            r#"
name: t
label: T
summary: s
category: c
base_url: http://127.0.0.1:1
credentials: {}
errors:
  type_pointer: /error/type
  message_pointer: /error/message
  code_pointer: /error/code
  param_pointer: /error/param
  request_id_pointer: /error/request_log_url
  status_types: {404: not_found, 4xx: invalid_request, 5xx: server_error}
functions:
  f: {group: g, class: read, summary: f, method: GET, path: /f}
"#,
        )
        .unwrap()
    }

    #[test]
    fn pointers_status_types_and_the_whole_body() {
        let m = code_and_param_envelope();
        let h = HeaderMap::new();
        let body = br#"{"error": {"type": "card_error", "code": "card_declined", "param": "source", "message": "declined", "request_log_url": "https://x/req_9"}}"#;
        let e = api_error(&m, 402, &h, body, &[], None, false);
        assert_eq!(e.code(), "card_error");
        assert_eq!(e.request_id(), Some("https://x/req_9"));
        let d = e.api_detail().unwrap();
        assert_eq!(d.code.as_deref(), Some("card_declined"));
        assert_eq!(d.param.as_deref(), Some("source"));
        assert_eq!(d.body.as_ref().unwrap()["error"]["code"], "card_declined");
        let j = e.to_json();
        assert_eq!(j["api_code"], "card_declined");
        assert_eq!(j["param"], "source");
        // JSON without a type (as some APIs send): the status decides, the message is read, the body kept.
        let body = br#"{"message": "Validation Failed", "errors": [{"field": "title", "code": "missing_field"}]}"#;
        let e = api_error(&m, 422, &h, body, &[], None, false);
        assert_eq!(e.code(), "invalid_request");
        assert_eq!(e.status(), Some(422));
        assert!(e.to_string().contains("Validation Failed"), "{e}");
        assert_eq!(
            e.api_detail().unwrap().body.as_ref().unwrap()["errors"][0]["field"],
            "title"
        );
        let e = api_error(
            &m,
            404,
            &h,
            br#"{"message": "Not Found"}"#,
            &[],
            None,
            false,
        );
        assert_eq!(e.code(), "not_found");
        // Plain text: an API error of the status's class, the text kept as the body.
        let e = api_error(&m, 503, &h, b"upstream connect error\n", &[], None, false);
        assert_eq!(e.code(), "server_error");
        assert_eq!(
            e.api_detail().unwrap().body,
            Some(json!("upstream connect error\n"))
        );
        // A declared rate limit under another status.
        let e = api_error(
            &m,
            403,
            &h,
            br#"{"message": "API rate limit exceeded"}"#,
            &[],
            Some(30.0),
            true,
        );
        assert_eq!(e.code(), "rate_limit_error");
        assert_eq!(e.retry_after(), Some(30.0));
        // Without a declared map, HTTP's own meaning only.
        let plain = manifest();
        let e = api_error(
            &plain,
            418,
            &h,
            br#"{"message": "teapot"}"#,
            &[],
            None,
            false,
        );
        assert_eq!(e.code(), "api_error");
        assert_eq!(e.status(), Some(418));
        // An empty body is typed by its status too: never `bad_response` for an error status.
        let e = api_error(&plain, 500, &h, b"", &[], None, false);
        assert_eq!(e.code(), "api_error");
        assert_eq!(e.status(), Some(500));
        assert!(e.api_detail().is_some_and(|d| d.body.is_none()));
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

//! What goes back on the wire: replies, the error envelope, ids, timestamps and the headers
//! every response carries.

use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Response, StatusCode};
use serde_json::{Map, Value, json};

use super::server::Sim;

/// What a behaviour (or a fault) answers; turned into a response by [`respond`].
#[derive(Debug, Clone)]
pub enum Reply {
    Json {
        status: u16,
        body: Value,
        headers: Vec<(String, String)>,
    },
    /// An error in the manifest's envelope; without a `kind`, the type comes from
    /// `errors.status_types`.
    Error {
        status: u16,
        kind: Option<String>,
        message: String,
        headers: Vec<(String, String)>,
    },
    Raw {
        status: u16,
        content_type: String,
        body: Vec<u8>,
    },
    /// Server-sent events, `(event name, data)`, written in order, then `tail`.
    Sse {
        events: Vec<(String, Value)>,
        tail: Tail,
    },
    /// A body that announces `declared` bytes but sends only `body`, then `tail`.
    Broken {
        status: u16,
        content_type: String,
        body: Vec<u8>,
        declared: usize,
        tail: Tail,
    },
}

/// How a body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// Normally.
    Complete,
    /// The connection is dropped.
    Abort,
    /// Nothing more is sent and the connection stays open (a stalled stream).
    Hang,
}

impl Reply {
    pub fn json(body: Value) -> Reply {
        Reply::Json {
            status: 200,
            body,
            headers: vec![],
        }
    }

    /// An error of an explicit type (behaviours that know their service's words).
    pub fn error(status: u16, kind: &str, message: impl Into<String>) -> Reply {
        Reply::Error {
            status,
            kind: Some(kind.into()),
            message: message.into(),
            headers: vec![],
        }
    }

    /// An error whose type is the one the manifest declares for `status`.
    pub fn status(status: u16, message: impl Into<String>) -> Reply {
        Reply::Error {
            status,
            kind: None,
            message: message.into(),
            headers: vec![],
        }
    }

    pub fn invalid(message: impl Into<String>) -> Reply {
        Reply::status(400, message)
    }

    pub fn not_found(message: impl Into<String>) -> Reply {
        Reply::status(404, message)
    }

    /// The HTTP status this reply answers with.
    pub fn status_code(&self) -> u16 {
        match self {
            Reply::Json { status, .. }
            | Reply::Error { status, .. }
            | Reply::Raw { status, .. }
            | Reply::Broken { status, .. } => *status,
            Reply::Sse { .. } => 200,
        }
    }

    /// The bytes and content type this reply would send (used by faults that mangle it).
    pub fn render(&self, sim: &Sim, rid: &str) -> (u16, String, Vec<u8>) {
        match self {
            Reply::Json { status, body, .. } => (
                *status,
                "application/json".into(),
                body.to_string().into_bytes(),
            ),
            Reply::Error {
                status,
                kind,
                message,
                ..
            } => (
                *status,
                "application/json".into(),
                error_body(
                    sim,
                    &error_kind(sim, *status, kind.as_deref()),
                    message,
                    rid,
                )
                .to_string()
                .into_bytes(),
            ),
            Reply::Raw {
                status,
                content_type,
                body,
            }
            | Reply::Broken {
                status,
                content_type,
                body,
                ..
            } => (*status, content_type.clone(), body.clone()),
            Reply::Sse { events, .. } => (200, "text/event-stream".into(), sse_bytes(events)),
        }
    }
}

/// The error type the manifest declares for a status (`errors.status_types`: the exact status,
/// then its class `4xx` / `5xx`); without a declaration, the status's reason in snake case
/// (`not_found`, `internal_server_error`).
pub fn status_type(sim: &Sim, status: u16) -> String {
    let types = &sim.integration.manifest.errors.status_types;
    let class = format!("{}xx", status / 100);
    if let Some(t) = types.get(&status.to_string()).or_else(|| types.get(&class)) {
        return t.clone();
    }
    StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map(|r| {
            r.to_ascii_lowercase()
                .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        })
        .unwrap_or_else(|| "error".into())
}

fn error_kind(sim: &Sim, status: u16, kind: Option<&str>) -> String {
    kind.map_or_else(|| status_type(sim, status), str::to_string)
}

/// The error body: type and message written at the manifest's `errors` pointers; a behaviour
/// family may add the rest of its service's envelope.
pub fn error_body(sim: &Sim, kind: &str, message: &str, rid: &str) -> Value {
    let errors = &sim.integration.manifest.errors;
    let mut root = Value::Object(Map::new());
    set_pointer(&mut root, &errors.type_pointer, json!(kind));
    set_pointer(&mut root, &errors.message_pointer, json!(message));
    if let Some(family) = sim.family {
        family.decorate_error(&mut root, rid);
    }
    root
}

/// Write `value` at an RFC 6901 pointer, creating objects on the way (`""` replaces the root).
pub fn set_pointer(root: &mut Value, pointer: &str, value: Value) {
    // A bare word (`data`) means `/data`, as in the manifest's older keys.
    let pointer = if pointer.is_empty() || pointer.starts_with('/') {
        pointer.to_string()
    } else {
        format!("/{pointer}")
    };
    let keys: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|k| k.replace("~1", "/").replace("~0", "~"))
        .collect();
    if keys.is_empty() {
        *root = value;
        return;
    }
    let mut cur = root;
    for (i, k) in keys.iter().enumerate() {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let Value::Object(map) = cur else { return };
        if i + 1 == keys.len() {
            map.insert(k.clone(), value);
            return;
        }
        cur = map
            .entry(k.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

pub fn sse_bytes(events: &[(String, Value)]) -> Vec<u8> {
    let mut out = String::new();
    for (name, data) in events {
        out.push_str(&format!("event: {name}\ndata: {data}\n\n"));
    }
    out.into_bytes()
}

/// A streamed body: the chunks, then the tail. The pause before an abort lets hyper flush what
/// was sent, so the client sees a body that stops rather than no response.
fn body_with_tail(chunks: Vec<Vec<u8>>, tail: Tail) -> Body {
    use futures::StreamExt;
    let head = futures::stream::iter(chunks.into_iter().map(Ok::<_, std::io::Error>));
    let end = futures::stream::once(async move {
        match tail {
            Tail::Complete => None,
            Tail::Abort => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                Some(Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "simulated early end of body",
                )))
            }
            Tail::Hang => std::future::pending().await,
        }
    })
    .filter_map(|x| async move { x });
    Body::from_stream(head.chain(end))
}

/// Turn a reply into a response with the headers every response carries.
pub fn respond(sim: &Sim, reply: Reply, rid: &str) -> Response<Body> {
    let mut extra: Vec<(String, String)> = Vec::new();
    let (status, content_type, body) = match reply {
        Reply::Json {
            status,
            body,
            headers,
        } => {
            extra.extend(headers);
            (
                status,
                "application/json".to_string(),
                Body::from(body.to_string()),
            )
        }
        Reply::Error {
            status,
            kind,
            message,
            headers,
        } => {
            extra.extend(headers);
            let kind = error_kind(sim, status, kind.as_deref());
            let body = error_body(sim, &kind, &message, rid).to_string();
            (status, "application/json".to_string(), Body::from(body))
        }
        Reply::Raw {
            status,
            content_type,
            body,
        } => (status, content_type, Body::from(body)),
        Reply::Sse { events, tail } => {
            extra.push(("cache-control".into(), "no-cache".into()));
            let chunks: Vec<Vec<u8>> = events
                .iter()
                .map(|e| sse_bytes(std::slice::from_ref(e)))
                .collect();
            (
                200,
                "text/event-stream; charset=utf-8".to_string(),
                body_with_tail(chunks, tail),
            )
        }
        Reply::Broken {
            status,
            content_type,
            body,
            declared,
            tail,
        } => {
            extra.push(("content-length".into(), declared.to_string()));
            (status, content_type, body_with_tail(vec![body], tail))
        }
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = resp.headers_mut();
    let mut put = |k: &str, v: &str| {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
            headers.insert(k, v);
        }
    };
    if !content_type.is_empty() {
        put("content-type", &content_type);
    }
    put(&sim.integration.manifest.errors.request_id_header, rid);
    if let Some(family) = sim.family {
        for (k, v) in family.headers(sim) {
            put(&k, &v);
        }
    }
    for (k, v) in &extra {
        put(k, v);
    }
    resp
}

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A random id like the service's: `prefix` + 24 base62 characters.
pub fn random_id(prefix: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + 24);
    s.push_str(prefix);
    for _ in 0..24 {
        s.push(BASE62[fastrand::usize(..BASE62.len())] as char);
    }
    s
}

pub fn request_id() -> String {
    random_id("req_011C")
}

/// An id that sorts after every id made before it (time-ordered, like the service's), so lists
/// that are newest first are also ordered by id.
pub fn ordered_id(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let micros = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    let mut s = format!("{prefix}01{}", base62_fixed(micros, 10));
    s.push_str(&base62_fixed(n, 4));
    for _ in 0..8 {
        s.push(BASE62[fastrand::usize(..BASE62.len())] as char);
    }
    s
}

fn base62_fixed(mut n: u64, width: usize) -> String {
    let mut out = vec![b'0'; width];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// RFC 3339 with microseconds, as the service writes timestamps.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_micros(t).to_string()
}

pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(s.trim_end_matches('Z').replace('T', " ").as_str())
        .ok()
        .or_else(|| humantime::parse_rfc3339(s).ok())
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

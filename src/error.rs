//! The one error type of the library.
//!
//! Every failure a user can meet carries a stable machine `code` (what scripts branch on) and a
//! message a person can act on. The split follows progenitor's client error: problems with the
//! request we were asked to build (validation, credentials, permissions), the transport, an error
//! the API answered with, and a payload we could not understand.

use serde_json::{Map, Value, json};

/// What went wrong on the wire, so callers can tell a refused connection from a stall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransportKind {
    Connect,
    Timeout,
    Reset,
    Stream,
    Other,
}

/// What went wrong with an MCP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum McpErrorKind {
    /// No server of that name is configured.
    UnknownServer,
    /// The server has no tool (prompt, resource) of that name.
    UnknownTool,
    /// The server could not be started or initialized, or it exited.
    ServerFailed,
    /// A call took longer than the server's timeout.
    Timeout,
    /// The server answered with a JSON-RPC error, or broke the protocol.
    Protocol,
    /// The tool ran and reported a failure (`isError: true`).
    ToolError,
}

impl McpErrorKind {
    pub fn code(self) -> &'static str {
        match self {
            McpErrorKind::UnknownServer => "mcp_unknown_server",
            McpErrorKind::UnknownTool => "mcp_unknown_tool",
            McpErrorKind::ServerFailed => "mcp_server_failed",
            McpErrorKind::Timeout => "mcp_timeout",
            McpErrorKind::Protocol => "mcp_protocol_error",
            McpErrorKind::ToolError => "mcp_tool_error",
        }
    }
}

/// All errors that kosmo's library reports. `Clone`, so a failure to load a shared service (the
/// registry, the credentials) can be kept and handed to every call that needs it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// A manifest file could not be parsed or broke a rule of the manifest format.
    #[error("{file}: {location}: {message}")]
    Manifest {
        file: String,
        location: String,
        message: String,
    },

    /// The input of a call did not match the function's schema. Raised before any network I/O.
    #[error("{function}: {}", .errors.join("; "))]
    Validation {
        function: String,
        errors: Vec<String>,
    },

    /// No integration with that name is loaded.
    #[error("unknown integration '{name}'{}", suggest(.suggestions))]
    UnknownIntegration {
        name: String,
        suggestions: Vec<String>,
    },

    /// The integration has no function (or alias) with that name.
    #[error("unknown function '{integration}.{name}'{}", suggest(.suggestions))]
    UnknownFunction {
        integration: String,
        name: String,
        suggestions: Vec<String>,
    },

    /// A credential the function needs is not configured.
    #[error("{integration} account '{account}' has no {credential} configured: {hint}")]
    MissingCredential {
        integration: String,
        account: String,
        credential: String,
        hint: String,
    },

    /// The local permission policy refused the call.
    #[error("{message}")]
    PermissionDenied { message: String },

    /// The function exists for compatibility but has no endpoint.
    #[error("{function} is not supported: {message}")]
    Unsupported { function: String, message: String },

    /// The request never got a complete answer: connect failure, timeout, reset, broken stream.
    #[error("{message}")]
    Transport {
        kind: TransportKind,
        message: String,
    },

    /// The server answered with something that is not what the API sends (HTML, truncated JSON).
    #[error("{message}")]
    BadResponse {
        status: u16,
        message: String,
        request_id: Option<String>,
    },

    /// The API answered with an error status (its envelope read through the manifest's
    /// `errors:` pointers, or the status alone).
    #[error("{error_type} (HTTP {status}): {message}")]
    Api {
        status: u16,
        error_type: String,
        message: String,
        request_id: Option<String>,
        retry_after: Option<f64>,
        /// The API's own code and parameter, and the whole error body (boxed: rare and large).
        detail: Option<Box<ApiDetail>>,
    },

    /// A server sent more than one of the size caps of the `http:` settings allows (a body, an
    /// error body, a stream, one line, a whole `fetch_all`, a download). `cap` is the setting's
    /// name (`max_response_bytes`, ...), `limit_bytes` its value.
    #[error("{message}")]
    ResponseTooLarge {
        cap: String,
        limit_bytes: u64,
        status: Option<u16>,
        message: String,
    },

    /// A page walk reached the manifest's `max_pages` with pages remaining, and the caller set
    /// no limit of their own.
    #[error("{message}")]
    PaginationLimit { function: String, message: String },

    /// A configuration file or setting is unusable.
    #[error("{message}")]
    Config { message: String },

    /// A script hit one of its limits (memory, cpu, timeout, calls).
    #[error("{message}")]
    Limit { limit: String, message: String },

    /// A docs page or namespace that does not exist; the message lists what does.
    #[error("{message}")]
    UnknownPage { message: String },

    /// The docs templates failed to render (a bug in a template or a manifest's text).
    #[error("{message}")]
    Docs { message: String },

    /// A Lua error that is not one of the above.
    #[error("{message}")]
    Lua { message: String },

    /// An OpenAPI description could not be imported (unreadable, not OpenAPI 3.x, no paths).
    #[error("{message}")]
    Import { message: String },

    /// A local file could not be read or written.
    /// An MCP server (a configured one, or a tool it serves) failed; `kind` is the code.
    #[error("{message}")]
    Mcp {
        kind: McpErrorKind,
        server: String,
        /// The tool, for tool calls.
        tool: Option<String>,
        message: String,
        /// What the server sent with a tool error: `{content, structured_content}`.
        detail: Option<Box<Value>>,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::sync::Arc<std::io::Error>,
    },
}

/// What an API error carries beyond its type and message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApiDetail {
    /// The API's own error code (`errors.code_pointer`), e.g. `card_declined`.
    pub code: Option<String>,
    /// The parameter the error is about (`errors.param_pointer`).
    pub param: Option<String>,
    /// The whole error body: JSON as sent, or the text of a non-JSON body.
    pub body: Option<Value>,
    /// The response headers (lower-case names, secrets redacted), for `last_response()`; not
    /// part of the error's JSON.
    pub headers: Vec<(String, String)>,
}

impl Error {
    /// An API error without detail.
    pub fn api(
        status: u16,
        error_type: impl Into<String>,
        message: impl Into<String>,
        request_id: Option<String>,
        retry_after: Option<f64>,
    ) -> Self {
        Error::Api {
            status,
            error_type: error_type.into(),
            message: message.into(),
            request_id,
            retry_after,
            detail: None,
        }
    }

    /// The detail of an API error, when it has one.
    pub fn api_detail(&self) -> Option<&ApiDetail> {
        match self {
            Error::Api { detail, .. } => detail.as_deref(),
            _ => None,
        }
    }
}

fn suggest(names: &[String]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!("; did you mean: {}?", names.join(", "))
    }
}

/// Shorthand used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The stable machine code of this error, as documented in `docs/errors.md`.
    pub fn code(&self) -> &str {
        match self {
            Error::Manifest { .. } => "manifest_error",
            Error::Validation { .. } => "validation_error",
            Error::UnknownIntegration { .. } => "unknown_integration",
            Error::UnknownFunction { .. } => "unknown_function",
            Error::MissingCredential { .. } => "missing_credential",
            Error::PermissionDenied { .. } => "permission_denied",
            Error::Unsupported { .. } => "unsupported",
            Error::Transport { .. } => "transport_error",
            Error::BadResponse { .. } => "bad_response",
            Error::PaginationLimit { .. } => "pagination_limit",
            Error::ResponseTooLarge { .. } => "response_too_large",
            Error::Api { error_type, .. } => error_type.as_str(),
            Error::Config { .. } => "config_error",
            Error::Limit { .. } => "limit_exceeded",
            Error::UnknownPage { .. } => "unknown_page",
            Error::Docs { .. } => "docs_error",
            Error::Lua { .. } => "lua_error",
            Error::Import { .. } => "import_error",
            Error::Io { .. } => "io_error",
            Error::Mcp { kind, .. } => kind.code(),
        }
    }

    /// The HTTP status when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } | Error::BadResponse { status, .. } => Some(*status),
            Error::ResponseTooLarge { status, .. } => *status,
            _ => None,
        }
    }

    /// The server's `request-id`, worth quoting in a support ticket.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Error::Api { request_id, .. } | Error::BadResponse { request_id, .. } => {
                request_id.as_deref()
            }
            _ => None,
        }
    }

    /// Seconds the server asked us to wait before trying again.
    pub fn retry_after(&self) -> Option<f64> {
        match self {
            Error::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The API error type (`rate_limit_error`, ...) when the server sent one.
    pub fn error_type(&self) -> Option<&str> {
        match self {
            Error::Api { error_type, .. } => Some(error_type),
            _ => None,
        }
    }

    /// A JSON object with `code`, `message` and every field that applies; used by `--json` and Lua.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("code".into(), json!(self.code()));
        map.insert("message".into(), json!(self.to_string()));
        map.insert("status".into(), json!(self.status()));
        map.insert("type".into(), json!(self.error_type()));
        map.insert("request_id".into(), json!(self.request_id()));
        map.insert("retry_after".into(), json!(self.retry_after()));
        match self {
            Error::Validation { errors, .. } => {
                map.insert("errors".into(), json!(errors));
            }
            Error::UnknownFunction { suggestions, .. }
            | Error::UnknownIntegration { suggestions, .. } => {
                map.insert("suggestions".into(), json!(suggestions));
            }
            Error::Limit { limit, .. } => {
                map.insert("limit".into(), json!(limit));
            }
            Error::Mcp {
                server,
                tool,
                detail,
                ..
            } => {
                map.insert("server".into(), json!(server));
                if let Some(t) = tool {
                    map.insert("tool".into(), json!(t));
                }
                if let Some(Value::Object(d)) = detail.as_deref() {
                    for (k, v) in d {
                        map.insert(k.clone(), v.clone());
                    }
                }
            }
            Error::Transport { kind, .. } => {
                map.insert("transport".into(), json!(kind));
            }
            Error::ResponseTooLarge {
                cap, limit_bytes, ..
            } => {
                map.insert("cap".into(), json!(cap));
                map.insert("limit_bytes".into(), json!(limit_bytes));
            }
            Error::Api {
                detail: Some(d), ..
            } => {
                // `code` is kosmo's machine code (the error type for API errors); the API's own
                // code is `api_code`.
                if let Some(c) = &d.code {
                    map.insert("api_code".into(), json!(c));
                }
                if let Some(p) = &d.param {
                    map.insert("param".into(), json!(p));
                }
                if let Some(b) = &d.body {
                    map.insert("body".into(), b.clone());
                }
            }
            _ => {}
        }
        Value::Object(map)
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Error::Config {
            message: message.into(),
        }
    }

    pub(crate) fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().display().to_string(),
            source: std::sync::Arc::new(source),
        }
    }
}

/// Names among `candidates` close to `wanted`, best first, for "did you mean" hints.
pub fn closest<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    // No name is this long; an edit distance against a huge input would only burn time.
    if wanted.len() > 128 {
        return Vec::new();
    }
    let wanted_lc = wanted.to_lowercase();
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .filter_map(|c| {
            let c_lc = c.to_lowercase();
            let d = levenshtein(&wanted_lc, &c_lc);
            let close = d <= wanted.len().max(3) / 3 + 1
                || c_lc.contains(&wanted_lc)
                || (wanted_lc.len() >= 4 && wanted_lc.contains(&c_lc));
            let shared = wanted_lc
                .split('_')
                .filter(|w| w.len() > 2 && c_lc.contains(*w))
                .count();
            (close || shared > 0).then_some((d.saturating_sub(shared * 2), c))
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored
        .into_iter()
        .take(5)
        .map(|(_, c)| c.to_string())
        .collect()
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_error_code_is_the_api_type() {
        let e = Error::Api {
            status: 429,
            error_type: "rate_limit_error".into(),
            message: "slow down".into(),
            request_id: Some("req_1".into()),
            retry_after: Some(2.0),
            detail: Some(Box::new(ApiDetail {
                code: Some("slow".into()),
                param: Some("model".into()),
                body: Some(json!({"error": {"type": "rate_limit_error"}})),
                headers: vec![("x-h".into(), "v".into())],
            })),
        };
        assert_eq!(e.code(), "rate_limit_error");
        let j = e.to_json();
        assert_eq!(j["status"], 429);
        assert_eq!(j["retry_after"], 2.0);
        assert_eq!(j["request_id"], "req_1");
        assert_eq!(j["code"], "rate_limit_error");
        assert_eq!(j["api_code"], "slow");
        assert_eq!(j["param"], "model");
        assert_eq!(j["body"]["error"]["type"], "rate_limit_error");
        assert!(j.get("headers").is_none());
    }

    #[test]
    fn closest_finds_typos_and_shared_words() {
        let names = [
            "create_message",
            "count_message_tokens",
            "list_models",
            "get_model",
        ];
        assert_eq!(closest("create_mesage", names)[0], "create_message");
        assert!(closest("models", names).contains(&"list_models".to_string()));
        assert!(closest("zzzzzzzzzz", names).is_empty());
    }
}

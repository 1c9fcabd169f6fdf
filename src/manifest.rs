//! The manifest format: one YAML file describes one integration and every one of its functions.
//!
//! Loading is three passes, so an author sees the most precise error first: YAML syntax (line and
//! column), the JSON Schema in `manifests/manifest.schema.json` (JSON pointer and rule), then the
//! semantic lint below (a GET marked write, a path placeholder with no path parameter, ...).
//! `docs/manifest-format.md` is the author's guide.

use std::sync::OnceLock;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
pub use crate::manifest_check::Problem;

/// The JSON Schema every manifest must satisfy.
pub const MANIFEST_SCHEMA: &str = include_str!("../manifests/manifest.schema.json");

/// One integration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub label: String,
    pub summary: String,
    #[serde(default)]
    pub description: String,
    pub category: String,
    #[serde(default)]
    pub docs_url: Option<String>,
    /// Base URL without a trailing slash; function paths are appended to it.
    pub base_url: String,
    /// Headers sent on every request (`anthropic-version`).
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    /// Credential types by name (`api_key`, `admin_key`).
    pub credentials: IndexMap<String, CredentialType>,
    /// Account-level settings: where a base URL override comes from.
    #[serde(default)]
    pub account: AccountSettings,
    /// How beta feature flags travel, and which values the service knows.
    #[serde(default)]
    pub betas: Option<BetaSettings>,
    /// Where the API puts the error type, message and request id.
    #[serde(default)]
    pub errors: ErrorEnvelope,
    /// How array query parameters are written (`brackets`: `k[]=a&k[]=b`).
    #[serde(default)]
    pub query_arrays: QueryArrayFormat,
    /// How arrays are written in `application/x-www-form-urlencoded` bodies.
    #[serde(default)]
    pub form_arrays: FormArrayFormat,
    /// Which responses are retried, and how long to wait first.
    #[serde(default)]
    pub retry: RetrySpec,
    /// Documentation groups, in the order the docs show them.
    #[serde(default)]
    pub groups: Vec<DocGroup>,
    /// Free-form notes the rendered docs include (intro, multi-account text, ...).
    #[serde(default)]
    pub docs: IndexMap<String, String>,
    /// Functions by Lua name, in documentation order.
    pub functions: IndexMap<String, Function>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialType {
    /// Human name: "API key".
    pub label: String,
    /// How the secret travels: a header (the default), `bearer`, `basic` or a query parameter.
    #[serde(default)]
    pub kind: Option<CredentialKind>,
    /// Header that carries the secret (`authorization` when not given).
    #[serde(default = "CredentialType::default_header")]
    pub header: String,
    /// For `kind: query`: the query parameter that carries the secret.
    #[serde(default)]
    pub query_param: Option<String>,
    /// For `kind: basic`: the fixed user name; the secret is the password. Without it the secret
    /// is `user:password` (or, without a colon, the user name with an empty password).
    #[serde(default)]
    pub username: Option<String>,
    /// Optional scheme written before the secret (`Bearer`).
    #[serde(default)]
    pub scheme: Option<String>,
    /// The prefix real secrets start with (`sk-ant-api`); the simulator checks it.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Environment variable that overrides the default account's value.
    #[serde(default)]
    pub env: Option<String>,
    /// What to tell a user who has not configured it.
    pub hint: String,
    /// A placeholder value that passes the prefix check, used by `--offline`.
    #[serde(default)]
    pub placeholder: Option<String>,
    /// A cheap read call that proves the credential works: `integrations:doctor` runs it.
    #[serde(default)]
    pub check: Option<CredentialCheck>,
}

/// `credentials.<name>.check`: the function (of this manifest, class read, using this
/// credential) and its arguments.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialCheck {
    pub function: String,
    #[serde(default = "CredentialCheck::no_args")]
    pub args: Value,
}

impl CredentialCheck {
    fn no_args() -> Value {
        Value::Object(serde_json::Map::new())
    }
}

impl CredentialType {
    fn default_header() -> String {
        "authorization".into()
    }

    /// The effective kind: `header` unless declared.
    pub fn effective_kind(&self) -> CredentialKind {
        self.kind.unwrap_or(CredentialKind::Header)
    }

    /// The scheme written before the secret: `Bearer` for `kind: bearer` unless declared.
    pub fn effective_scheme(&self) -> Option<String> {
        match (&self.scheme, self.effective_kind()) {
            (Some(s), _) => Some(s.clone()),
            (None, CredentialKind::Bearer) => Some("Bearer".into()),
            (None, CredentialKind::Basic) => Some("Basic".into()),
            _ => None,
        }
    }
}

/// How a credential travels on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// The secret in `header`, after `scheme` if any.
    Header,
    /// `authorization: Bearer <secret>` (header and scheme may be overridden).
    Bearer,
    /// `authorization: Basic base64(user:password)`.
    Basic,
    /// `?<query_param>=<secret>`.
    Query,
}

/// Whether a function sends its credential.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// The credential must be configured (`missing_credential` otherwise).
    #[default]
    Required,
    /// Sent when the account has it, left out when not.
    Optional,
    /// Never sent.
    None,
}

/// How a function's request body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyKind {
    /// `application/json` (the default).
    Json,
    /// `application/x-www-form-urlencoded`, nested keys as `a[b][c]=v`.
    Form,
    /// `multipart/form-data` (files and plain fields).
    Multipart,
    /// One `raw: true` parameter's bytes, sent with the function's `content_type`.
    Raw,
}

/// How arrays are written in form-urlencoded bodies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FormArrayFormat {
    /// `a[0]=x&a[1]=y` (Stripe).
    #[default]
    Indexed,
    /// `a[]=x&a[]=y`.
    Brackets,
    /// `a=x&a=y`.
    Repeat,
}

/// The `retry:` block: which statuses are retried and where the server says how long to wait.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    /// Statuses retried (default 408, 409, 429 and every status >= 500).
    #[serde(default)]
    pub statuses: Option<Vec<u16>>,
    /// Statuses that mean "refused before any work was done": safe to retry even for writes
    /// that are not idempotent (default 408, 429).
    #[serde(default = "RetrySpec::default_refused")]
    pub refused_statuses: Vec<u16>,
    /// Headers with the wait, in order of preference; a name ending in `-ms` is milliseconds,
    /// others are seconds or an HTTP date.
    #[serde(default = "RetrySpec::default_retry_after_headers")]
    pub retry_after_headers: Vec<String>,
    /// Headers giving when the limit resets.
    #[serde(default)]
    pub reset_headers: Vec<ResetHeader>,
    /// Responses that are rate limits even though their status is not 429.
    #[serde(default)]
    pub rate_limited: Vec<RateLimitedRule>,
    /// A header carrying an idempotency key (`idempotency-key`): kosmo sends a fresh key with
    /// every write not marked `idempotent` that has none from the caller, the same key on each
    /// retry, and retries such writes like idempotent ones.
    #[serde(default)]
    pub idempotency_header: Option<String>,
}

impl RetrySpec {
    fn default_refused() -> Vec<u16> {
        vec![408, 429]
    }
    fn default_retry_after_headers() -> Vec<String> {
        vec!["retry-after-ms".into(), "retry-after".into()]
    }

    /// Whether a status is retried.
    pub fn retries_status(&self, status: u16) -> bool {
        match &self.statuses {
            Some(list) => list.contains(&status),
            None => matches!(status, 408 | 409 | 429) || status >= 500,
        }
    }
}

impl Default for RetrySpec {
    fn default() -> Self {
        RetrySpec {
            statuses: None,
            refused_statuses: Self::default_refused(),
            retry_after_headers: Self::default_retry_after_headers(),
            reset_headers: Vec::new(),
            rate_limited: Vec::new(),
            idempotency_header: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetHeader {
    pub header: String,
    #[serde(default)]
    pub format: ResetFormat,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResetFormat {
    /// Unix time in seconds when the limit resets (GitHub `x-ratelimit-reset`).
    #[default]
    EpochSeconds,
    /// Seconds from now.
    DeltaSeconds,
}

/// A response with `status` whose `header` equals `equals` (or, without `equals`, is present)
/// is a rate limit.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitedRule {
    pub status: u16,
    pub header: String,
    #[serde(default)]
    pub equals: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSettings {
    /// Environment variable that overrides the default account's base URL.
    #[serde(default)]
    pub base_url_env: Option<String>,
    /// A suffix users often include in base URLs that the paths already carry (`/v1`).
    #[serde(default)]
    pub strip_base_url_suffix: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BetaSettings {
    /// Header that carries the comma-joined beta names.
    pub header: String,
    /// The argument name through which callers add betas.
    #[serde(default = "default_beta_param")]
    pub param: String,
    /// Beta names the service accepts; the simulator refuses others.
    #[serde(default)]
    pub known: Vec<String>,
}

fn default_beta_param() -> String {
    "betas".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorEnvelope {
    /// JSON pointer to the error type in an error body.
    #[serde(default = "ErrorEnvelope::default_type")]
    pub type_pointer: String,
    /// JSON pointer to the message.
    #[serde(default = "ErrorEnvelope::default_message")]
    pub message_pointer: String,
    /// Response header with the request id.
    #[serde(default = "ErrorEnvelope::default_request_id_header")]
    pub request_id_header: String,
    /// Response header that tells whether to retry (`x-should-retry`).
    #[serde(default)]
    pub should_retry_header: Option<String>,
    /// JSON pointer to the API's own error code (`card_declined`).
    #[serde(default)]
    pub code_pointer: Option<String>,
    /// JSON pointer to the parameter the error is about.
    #[serde(default)]
    pub param_pointer: Option<String>,
    /// JSON pointer to a request id in the error body (the header wins).
    #[serde(default)]
    pub request_id_pointer: Option<String>,
    /// HTTP status (`"404"`) or class (`"4xx"`, `"5xx"`) -> error type, for bodies without one
    /// (and for the errors the simulator writes).
    #[serde(default)]
    pub status_types: IndexMap<String, String>,
}

impl ErrorEnvelope {
    fn default_type() -> String {
        "/error/type".into()
    }
    fn default_message() -> String {
        "/error/message".into()
    }
    fn default_request_id_header() -> String {
        "request-id".into()
    }
}

impl ErrorEnvelope {
    /// The declared error type for a status: an exact entry, else its class (`4xx`), else none.
    pub fn status_type(&self, status: u16) -> Option<&str> {
        let exact = status.to_string();
        let class = format!("{}xx", status / 100);
        self.status_types
            .get(&exact)
            .or_else(|| {
                self.status_types
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(&class))
                    .map(|(_, v)| v)
            })
            .map(String::as_str)
    }
}

impl Default for ErrorEnvelope {
    fn default() -> Self {
        ErrorEnvelope {
            type_pointer: Self::default_type(),
            message_pointer: Self::default_message(),
            request_id_header: Self::default_request_id_header(),
            should_retry_header: None,
            code_pointer: None,
            param_pointer: None,
            request_id_pointer: None,
            status_types: IndexMap::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryArrayFormat {
    /// `k[]=a&k[]=b` (what the Stainless SDKs send).
    #[default]
    Brackets,
    /// `k=a&k=b`.
    Repeat,
    /// `k=a,b`.
    Comma,
    /// `k[0]=a&k[1]=b`, objects in arrays as `k[0][sub]=v` (what some SDKs send).
    Indexed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocGroup {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
}

/// Read or write: what permissions and `--read-only` look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    Read,
    Write,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Read => "read",
            Class::Write => "write",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// How a response body is decoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseKind {
    #[default]
    Json,
    /// Newline-delimited JSON, returned as `{content_type, body}` or streamed as rows.
    Jsonl,
    /// Raw bytes, returned as `{content_type, body}`.
    Binary,
    /// Server-sent events.
    Sse,
}

/// Where a parameter goes in the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Location {
    Path,
    Query,
    Body,
    Header,
    /// A multipart form field (file uploads).
    Form,
    /// Consumed by kosmo itself (poll timeouts, ...), never sent.
    Control,
}

/// One function.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Function {
    /// Fully qualified name; defaults to `<integration>_<name>`.
    #[serde(default)]
    pub full_name: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub group: String,
    pub class: Class,
    /// A write that is safe to repeat (retries may resend it).
    #[serde(default)]
    pub idempotent: bool,
    pub summary: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub method: Option<Method>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub params: Vec<Param>,
    /// Unknown arguments are sent in the JSON body unchanged.
    #[serde(default)]
    pub passthrough: bool,
    /// Wrapper objects the docs show (`payload`, `query`); flat arguments are always accepted.
    #[serde(default)]
    pub wrappers: Vec<Wrapper>,
    /// Beta names always sent with this function.
    #[serde(default)]
    pub betas: Vec<String>,
    /// Credential type from the manifest's `credentials`.
    #[serde(default)]
    pub credential: Option<String>,
    /// Whether the credential must be configured (`required`), is sent when configured
    /// (`optional`), or is never sent (`none`).
    #[serde(default)]
    pub auth: AuthMode,
    /// How the request body is encoded; absent: multipart when a parameter is `in: form`,
    /// else JSON.
    #[serde(default)]
    pub body: Option<BodyKind>,
    /// The content type of a `body: raw` request.
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub response: ResponseKind,
    /// A boolean argument that switches the response to a stream.
    #[serde(default)]
    pub stream: Option<StreamSpec>,
    #[serde(default)]
    pub pagination: Option<Pagination>,
    /// This function polls another one until a field reaches a value.
    #[serde(default)]
    pub poll: Option<Poll>,
    /// The function exists for compatibility only: calling it fails with this message.
    #[serde(default)]
    pub unsupported: Option<String>,
    #[serde(default)]
    pub deprecated: Option<String>,
    #[serde(default)]
    pub examples: Vec<Example>,
    /// What the generic simulator answers when no built-in behaviour is named.
    #[serde(default)]
    pub simulator: Option<SimulatorSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Wrapper {
    /// `payload = {...}`: fields of the JSON body.
    Payload,
    /// `query = {...}`: query-string fields.
    Query,
}

impl Wrapper {
    pub fn as_str(self) -> &'static str {
        match self {
            Wrapper::Payload => "payload",
            Wrapper::Query => "query",
        }
    }
}

/// One parameter. Besides the keys below it takes JSON Schema keywords inline (`type`, `enum`,
/// `minimum`, `items`, `properties`, `default`, ...), which become its schema.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Param {
    pub name: String,
    #[serde(rename = "in")]
    pub location: Location,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub example: Option<Value>,
    /// The name on the wire when it differs (a header name, `file` for a form field).
    #[serde(default)]
    pub wire_name: Option<String>,
    /// Send `default` when the caller leaves the parameter out (`max_tokens: 4096`).
    #[serde(default)]
    pub send_default: bool,
    #[serde(default)]
    pub deprecated: Option<String>,
    /// For `in: form` parameters of a multipart upload: which part of the file part this argument
    /// supplies. Without it a form parameter is a plain text field.
    #[serde(default)]
    pub upload: Option<UploadRole>,
    /// For a `body: raw` function: this body parameter is the whole body (a string, or
    /// `{base64 = ...}` for bytes).
    #[serde(default)]
    pub raw: bool,
    /// JSON Schema keywords.
    #[serde(flatten)]
    pub schema: serde_json::Map<String, Value>,
}

impl Param {
    /// The name this parameter has on the wire.
    pub fn wire(&self) -> &str {
        self.wire_name.as_deref().unwrap_or(&self.name)
    }

    /// The JSON Schema type name, for docs (`string`, `array`, `string | array`).
    pub fn type_name(&self) -> String {
        schema_type_name(&Value::Object(self.schema.clone()))
    }

    pub fn default_value(&self) -> Option<&Value> {
        self.schema.get("default")
    }
}

/// A readable type name for a schema fragment.
pub fn schema_type_name(schema: &Value) -> String {
    match schema.get("type") {
        Some(Value::String(t)) if t == "array" => match schema.get("items") {
            Some(items) if items.get("type").is_some() => {
                format!("array<{}>", schema_type_name(items))
            }
            _ => "array".into(),
        },
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" | "),
        _ => {
            for key in ["oneOf", "anyOf"] {
                if let Some(Value::Array(alts)) = schema.get(key) {
                    let mut names: Vec<String> = alts.iter().map(schema_type_name).collect();
                    names.dedup();
                    return names.join(" | ");
                }
            }
            "any".into()
        }
    }
}

/// How a form parameter contributes to the multipart file part (named by its `wire_name`).
/// Callers give the bytes one way (`path`, `text` or `base64`); `filename` and `mime_type`
/// describe the part and are never sent as fields of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UploadRole {
    /// A local file path; the executor reads the bytes and, unless given, the file name.
    Path,
    /// The bytes inline, as UTF-8 text.
    Text,
    /// The bytes inline, base64-encoded (binary content from Lua).
    Base64,
    /// The part's file name.
    Filename,
    /// The part's content type; when absent it is guessed from the file name.
    MimeType,
}

mod stream;
pub use stream::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaginationStyle {
    /// A cursor from the body, a header or the last item, sent back in a query parameter.
    Cursor,
    /// A page number in a query parameter.
    Page,
    /// An item offset in a query parameter.
    Offset,
    /// The `Link: <url>; rel="next"` response header (RFC 8288).
    Link,
}

impl PaginationStyle {
    pub fn as_str(self) -> &'static str {
        match self {
            PaginationStyle::Cursor => "cursor",
            PaginationStyle::Page => "page",
            PaginationStyle::Offset => "offset",
            PaginationStyle::Link => "link",
        }
    }
}

/// Where the next cursor comes from and where it goes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CursorSpec {
    /// JSON pointer in the page body (`/last_id`).
    #[serde(default)]
    pub from: Option<String>,
    /// A response header with the cursor.
    #[serde(default)]
    pub header: Option<String>,
    /// JSON pointer inside the page's last item (`/id`, Stripe's `starting_after`); with
    /// `from` too, it is also the cursor a result cut by `max_items` resumes from.
    #[serde(default, alias = "from_last_item")]
    pub item: Option<String>,
    /// The query parameter that carries it.
    pub param: String,
}

/// Whether to keep going, beyond the style's own end (no cursor, no `next` link, an empty page).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopRule {
    /// Stop after a page with no items (always on).
    EmptyPage,
    /// Stop after a page with fewer items than the `size_param` asked for.
    ShortPage,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pagination {
    pub style: PaginationStyle,
    /// JSON pointer to the page's item list; `""` is the whole response. A bare word is a
    /// top-level field (`data` means `/data`).
    #[serde(default = "Pagination::default_items")]
    pub items: String,
    /// `style: cursor`: the forward cursor.
    #[serde(default)]
    pub cursor: Option<CursorSpec>,
    /// `style: cursor`: when the caller starts with `reverse.param`, walk backwards with it.
    #[serde(default)]
    pub reverse: Option<CursorSpec>,
    /// `style: link`: a JSON pointer to the next page's URL in the body (`/next`), instead of
    /// the `Link` header.
    #[serde(default)]
    pub next_url: Option<String>,
    /// JSON pointer to a boolean; `false` ends the walk.
    #[serde(default)]
    pub has_more: Option<String>,
    /// `style: page`: the page-number parameter.
    #[serde(default = "Pagination::default_page_param")]
    pub page_param: String,
    /// `style: page`: the first page's number when the caller gives none.
    #[serde(default = "Pagination::default_start")]
    pub start: i64,
    /// `style: offset`: the offset parameter.
    #[serde(default = "Pagination::default_offset_param")]
    pub offset_param: String,
    /// `style: offset`: the page-size parameter.
    #[serde(default = "Pagination::default_limit_param")]
    pub limit_param: String,
    /// JSON pointer to the total number of items; the walk stops once that many are collected.
    #[serde(default)]
    pub total: Option<String>,
    #[serde(default)]
    pub stop: Vec<StopRule>,
    /// The page-size query parameter (for `stop: [short_page]`).
    #[serde(default)]
    pub size_param: Option<String>,
    /// Reaching this many pages is an error (`pagination_limit`) unless the caller set
    /// `max_items` or `max_pages`, in which case the result is marked as cut.
    #[serde(default = "Pagination::default_max_pages")]
    pub max_pages: u32,
}

impl Pagination {
    fn default_items() -> String {
        "/data".into()
    }
    fn default_page_param() -> String {
        "page".into()
    }
    fn default_start() -> i64 {
        1
    }
    fn default_offset_param() -> String {
        "offset".into()
    }
    fn default_limit_param() -> String {
        "limit".into()
    }
    fn default_max_pages() -> u32 {
        1000
    }

    /// The item list pointer: `data` is read as `/data`.
    pub fn items_pointer(&self) -> String {
        if self.items.is_empty() || self.items.starts_with('/') {
            self.items.clone()
        } else {
            format!("/{}", self.items)
        }
    }

    /// The key the items have in a `fetch_all` result: the pointer's last segment, `data` for
    /// a root list.
    pub fn items_key(&self) -> String {
        let p = self.items_pointer();
        match p.rsplit('/').next() {
            Some(last) if !p.is_empty() && !last.is_empty() => {
                last.replace("~1", "/").replace("~0", "~")
            }
            _ => "data".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Poll {
    /// The function called on every poll, with this function's non-control arguments.
    pub function: String,
    /// JSON pointer into the polled result.
    pub until_pointer: String,
    /// Values at `until_pointer` that end the wait.
    pub until_values: Vec<Value>,
    #[serde(default = "Poll::default_interval")]
    pub interval_seconds: f64,
    #[serde(default = "Poll::default_max_interval")]
    pub max_interval_seconds: f64,
    #[serde(default = "Poll::default_timeout")]
    pub timeout_seconds: f64,
}

impl Poll {
    fn default_interval() -> f64 {
        1.0
    }
    fn default_max_interval() -> f64 {
        30.0
    }
    fn default_timeout() -> f64 {
        3600.0
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    pub title: String,
    /// Arguments; validated against the function's schema by the linter.
    pub args: Value,
    /// Optional Lua to show after the call (`print(result.id)`).
    #[serde(default)]
    pub after: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulatorSpec {
    /// A built-in behaviour by name (`anthropic.messages.create`); absent means the example below.
    #[serde(default)]
    pub behaviour: Option<String>,
    /// The JSON answered by the generic simulator.
    #[serde(default)]
    pub response: Option<Value>,
    #[serde(default = "SimulatorSpec::default_status")]
    pub status: u16,
    /// Generic stateful tier: functions naming the same resource share one collection.
    #[serde(default)]
    pub resource: Option<String>,
    /// What the function does to its resource; guessed from method + path when absent.
    #[serde(default)]
    pub action: Option<SimAction>,
    /// The field holding an item's id (default `id`).
    #[serde(default)]
    pub id_field: Option<String>,
    /// Prefix of generated ids (`iss_` -> `iss_<random>`); without one, an integer id template
    /// gives sequential numbers and a string one random base62 ids.
    #[serde(default)]
    pub id_prefix: Option<String>,
    /// The path parameter naming the item (default: the last path parameter, when the path ends
    /// with it).
    #[serde(default)]
    pub id_param: Option<String>,
}

/// What a function of the generic stateful simulator tier does to its resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SimAction {
    Create,
    Get,
    List,
    Update,
    Delete,
}

impl SimulatorSpec {
    fn default_status() -> u16 {
        200
    }
}

impl Manifest {
    /// Parse, schema-check and lint a manifest. `file` names it in errors; every problem is in
    /// the error (the first names the location, the others follow on their own lines).
    pub fn from_yaml(file: &str, text: &str) -> Result<Manifest> {
        match Manifest::check(file, text) {
            (Some(m), problems) if problems.is_empty() => Ok(m),
            (_, problems) => Err(crate::manifest_check::into_error(file, &problems)),
        }
    }

    /// Every problem of a manifest: YAML syntax, duplicate keys, the JSON Schema (all of its
    /// errors, unknown keys with a did-you-mean), kosmo's types, the lint, and each function's
    /// input schema compiling. Each problem carries its line and column. The manifest is
    /// returned whenever it could be read into kosmo's types, even with lint problems.
    pub fn check(file: &str, text: &str) -> (Option<Manifest>, Vec<Problem>) {
        use crate::manifest_check::{PositionIndex, rule, schema_problems};
        if let Err(e) = check_flow_depth(file, text) {
            return (None, vec![problem_of_error(file, e, rule::YAML)]);
        }
        let raw: Value = match parse_yaml(file, text) {
            Ok(v) => v,
            Err(e) => {
                // Nothing after a syntax error can be read; duplicate keys before it can.
                let index = PositionIndex::build(text);
                let mut problems = duplicate_problems(file, &index);
                problems.push(problem_of_error(file, e, rule::YAML));
                sort_problems(&mut problems);
                return (None, problems);
            }
        };
        let index = PositionIndex::build(text);
        let mut problems = duplicate_problems(file, &index);
        match manifest_validator() {
            Ok(validator) => {
                problems.extend(schema_problems(
                    file,
                    manifest_schema(),
                    validator,
                    &raw,
                    &index,
                ));
            }
            Err(e) => problems
                .push(Problem::new("manifests/manifest.schema.json", "", e).rule(rule::SCHEMA)),
        }
        // Unknown keys are reported already: read the rest, so the lint still sees the file.
        let mut raw = raw;
        for p in problems.iter().filter(|p| p.rule == rule::UNKNOWN_KEY) {
            crate::manifest_check::remove_pointer(&mut raw, &p.pointer);
        }
        let manifest: Manifest = match serde_json::from_value(raw) {
            Ok(m) => m,
            Err(e) => {
                // The schema usually said it already, and better; otherwise locate serde's
                // complaint by reading the text straight into the types.
                if problems.is_empty() {
                    let pos = serde_yaml::from_str::<Manifest>(text)
                        .err()
                        .and_then(|ye| ye.location())
                        .map(|l| crate::manifest_check::Pos {
                            line: l.line(),
                            column: l.column(),
                        });
                    let pointer = pos.and_then(|p| index.pointer_at(p)).unwrap_or_default();
                    problems.push(
                        Problem::new(file, pointer, strip_location(&e.to_string()))
                            .rule(rule::TYPE)
                            .at(pos),
                    );
                }
                sort_problems(&mut problems);
                return (None, problems);
            }
        };
        for (pointer, message) in manifest.lint() {
            let pos = index.position(&pointer);
            problems.push(Problem::new(file, pointer, message).at(pos));
        }
        for (name, f) in &manifest.functions {
            if let Err(e) = crate::validate::InputValidator::new(&manifest, f) {
                let pointer = format!("/functions/{}", crate::manifest_check::escape_segment(name));
                let pos = index.position(&pointer);
                let why = match e {
                    Error::Manifest { message, .. } => message,
                    other => other.to_string(),
                };
                problems.push(
                    Problem::new(
                        file,
                        pointer,
                        format!("input schema does not compile: {why}"),
                    )
                    .rule(rule::INPUT_SCHEMA)
                    .at(pos),
                );
            }
        }
        crate::manifest_check::drop_cascades(&mut problems);
        sort_problems(&mut problems);
        (Some(manifest), problems)
    }

    /// Parse a manifest that is known to pass every check: the built-ins, which the test suite
    /// and `kosmo manifests:check` verify in full. Skipping the schema and lint passes here keeps
    /// a script's first touch of `app.integrations` cheap (they cost most of the load time).
    pub fn from_trusted_yaml(file: &str, text: &str) -> Result<Manifest> {
        parse_yaml(file, text)
    }

    /// The fully qualified name of a function.
    pub fn full_name(&self, name: &str, f: &Function) -> String {
        f.full_name
            .clone()
            .unwrap_or_else(|| format!("{}_{}", self.name, name))
    }

    /// `credentials.<c>.check` names a read function of this manifest that uses `<c>`, with
    /// arguments its schema accepts.
    fn lint_credential_checks(&self, problems: &mut Vec<(String, String)>) {
        for (c, cred) in &self.credentials {
            let Some(check) = &cred.check else { continue };
            let at = format!("/credentials/{c}/check/function");
            let Some(f) = self.functions.get(&check.function) else {
                problems.push((
                    at,
                    format!("'{}' is not a function of this manifest", check.function),
                ));
                continue;
            };
            if f.class != Class::Read {
                problems.push((
                    at.clone(),
                    "a credential check must be a read function".into(),
                ));
            }
            if f.credential.as_deref() != Some(c.as_str()) {
                problems.push((
                    at.clone(),
                    format!("'{}' does not use the credential '{c}'", check.function),
                ));
            }
            if !check.args.is_object() {
                problems.push((
                    format!("/credentials/{c}/check/args"),
                    "args must be a mapping of the function's arguments".into(),
                ));
            }
        }
    }

    /// Semantic rules the JSON Schema cannot express. Each problem is (JSON pointer, message).
    pub fn lint(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        self.lint_credential_checks(&mut problems);
        self.lint_engine(&mut problems);
        let mut seen: IndexMap<String, String> = IndexMap::new();
        let group_ids: Vec<&str> = self.groups.iter().map(|g| g.id.as_str()).collect();
        for (name, f) in &self.functions {
            let at = format!("/functions/{name}");
            let mut names = vec![name.clone(), self.full_name(name, f)];
            names.extend(f.aliases.iter().cloned());
            for n in names {
                if let Some(owner) = seen.get(&n) {
                    let whose = if owner == name {
                        "this function's own name".to_string()
                    } else {
                        format!("function '{owner}'")
                    };
                    problems.push((
                        at.clone(),
                        format!("name or alias '{n}' is already used by {whose}"),
                    ));
                } else {
                    seen.insert(n, name.clone());
                }
            }
            if !group_ids.is_empty() && !group_ids.contains(&f.group.as_str()) {
                problems.push((
                    format!("{at}/group"),
                    format!(
                        "unknown group '{}' (known: {})",
                        f.group,
                        group_ids.join(", ")
                    ),
                ));
            }
            if let Some(c) = &f.credential
                && !self.credentials.contains_key(c)
            {
                problems.push((
                    format!("{at}/credential"),
                    format!(
                        "unknown credential type '{c}' (declared: {})",
                        self.credentials
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            let callable = f.unsupported.is_none() && f.poll.is_none();
            if callable {
                match (&f.method, &f.path) {
                    (Some(m), Some(path)) => {
                        if *m == Method::Get && f.class == Class::Write {
                            problems.push((
                                format!("{at}/class"),
                                "a GET function cannot be class 'write'".into(),
                            ));
                        }
                        self.lint_path(&at, f, path, &mut problems);
                    }
                    _ => problems.push((
                        at.clone(),
                        "a function needs 'method' and 'path' unless it is 'unsupported' or a 'poll'"
                            .into(),
                    )),
                }
                if f.credential.is_none()
                    && !self.credentials.is_empty()
                    && f.auth != AuthMode::None
                {
                    problems.push((
                        at.clone(),
                        "a function of an integration with credentials must name its 'credential'"
                            .into(),
                    ));
                }
            }
            if let Some(poll) = &f.poll
                && !self.functions.contains_key(&poll.function)
            {
                problems.push((
                    format!("{at}/poll/function"),
                    format!(
                        "poll target '{}' is not a function of this manifest",
                        poll.function
                    ),
                ));
            }
            let mut param_names = Vec::new();
            for (i, p) in f.params.iter().enumerate() {
                if param_names.contains(&p.name) {
                    problems.push((
                        format!("{at}/params/{i}"),
                        format!("duplicate parameter '{}'", p.name),
                    ));
                }
                param_names.push(p.name.clone());
                if p.location == Location::Path && !p.required {
                    problems.push((
                        format!("{at}/params/{i}"),
                        format!("path parameter '{}' must be required", p.name),
                    ));
                }
                if p.location == Location::Body
                    && matches!(f.method, Some(Method::Get | Method::Delete))
                {
                    problems.push((
                        format!("{at}/params/{i}"),
                        format!(
                            "body parameter '{}' on a {} function",
                            p.name,
                            f.method.map_or("", |m| m.as_str())
                        ),
                    ));
                }
                if p.upload.is_some() && p.location != Location::Form {
                    problems.push((
                        format!("{at}/params/{i}"),
                        format!(
                            "'{}' has 'upload' but is not an 'in: form' parameter",
                            p.name
                        ),
                    ));
                }
                if p.send_default && p.default_value().is_none() {
                    problems.push((
                        format!("{at}/params/{i}"),
                        format!("'{}' has send_default but no default", p.name),
                    ));
                }
                if let Err(e) = jsonschema::meta::validate(&Value::Object(p.schema.clone())) {
                    problems.push((
                        format!("{at}/params/{i}"),
                        format!("invalid JSON Schema for '{}': {e}", p.name),
                    ));
                }
            }
            if let Some(s) = &f.stream
                && !s.param.is_empty()
                && !f.params.iter().any(|p| p.name == s.param)
            {
                problems.push((
                    format!("{at}/stream/param"),
                    format!("stream parameter '{}' is not declared", s.param),
                ));
            }
            for (i, ex) in f.examples.iter().enumerate() {
                if f.unsupported.is_some() {
                    continue;
                }
                let schema = crate::validate::input_schema(self, f);
                let args = crate::validate::normalize_value(f, &ex.args);
                match args {
                    Err(msg) => problems.push((format!("{at}/examples/{i}"), msg)),
                    Ok(args) => match jsonschema::validator_for(&schema) {
                        Ok(v) => {
                            let errs: Vec<String> = v
                                .iter_errors(&args)
                                .map(|e| {
                                    format!(
                                        "{}: {e}",
                                        display_pointer(&e.instance_path().to_string())
                                    )
                                })
                                .collect();
                            if !errs.is_empty() {
                                problems.push((
                                    format!("{at}/examples/{i}"),
                                    format!(
                                        "example does not validate against the function's schema: {}",
                                        errs.join("; ")
                                    ),
                                ));
                            }
                        }
                        Err(e) => problems
                            .push((at.clone(), format!("input schema does not compile: {e}"))),
                    },
                }
            }
        }
        self.lint_streams(&mut problems);
        problems
    }

    fn lint_path(&self, at: &str, f: &Function, path: &str, problems: &mut Vec<(String, String)>) {
        let placeholders = path_placeholders(path);
        for ph in &placeholders {
            if !f
                .params
                .iter()
                .any(|p| p.location == Location::Path && &p.name == ph)
            {
                problems.push((
                    format!("{at}/path"),
                    format!("path placeholder '{{{ph}}}' has no path parameter named '{ph}'"),
                ));
            }
        }
        for p in f.params.iter().filter(|p| p.location == Location::Path) {
            if !placeholders.contains(&p.name) {
                problems.push((
                    format!("{at}/params"),
                    format!(
                        "path parameter '{}' does not appear in path '{path}'",
                        p.name
                    ),
                ));
            }
        }
        if path.matches('{').count() != path.matches('}').count() {
            problems.push((
                format!("{at}/path"),
                format!("unbalanced braces in path '{path}'"),
            ));
        }
    }
}

impl Manifest {
    /// The engine's rules: credentials, error map, retry, bodies, auth and pagination.
    fn lint_engine(&self, problems: &mut Vec<(String, String)>) {
        for (name, c) in &self.credentials {
            let at = format!("/credentials/{name}");
            if c.effective_kind() == CredentialKind::Query
                && c.query_param.as_deref().is_none_or(str::is_empty)
            {
                problems.push((
                    at.clone(),
                    "a credential of kind 'query' needs 'query_param' (the parameter name)".into(),
                ));
            }
            if c.query_param.is_some() && c.effective_kind() != CredentialKind::Query {
                problems.push((
                    format!("{at}/query_param"),
                    "'query_param' is only used by credentials of kind 'query'".into(),
                ));
            }
            if c.username.is_some() && c.effective_kind() != CredentialKind::Basic {
                problems.push((
                    format!("{at}/username"),
                    "'username' is only used by credentials of kind 'basic'".into(),
                ));
            }
        }
        for key in self.errors.status_types.keys() {
            let b = key.as_bytes();
            let exact =
                key.len() == 3 && key.parse::<u16>().is_ok_and(|s| (100..=599).contains(&s));
            let class = b.len() == 3
                && (b'1'..=b'5').contains(&b[0])
                && key[1..].eq_ignore_ascii_case("xx");
            if !exact && !class {
                problems.push((
                    format!("/errors/status_types/{key}"),
                    format!("'{key}' is not an HTTP status (404) or a class (4xx, 5xx)"),
                ));
            }
        }
        for (i, h) in self.retry.retry_after_headers.iter().enumerate() {
            if reqwest::header::HeaderName::from_bytes(h.as_bytes()).is_err() {
                problems.push((
                    format!("/retry/retry_after_headers/{i}"),
                    format!("'{h}' is not a header name"),
                ));
            }
        }
        for (name, f) in &self.functions {
            let at = format!("/functions/{name}");
            self.lint_body(&at, f, problems);
            if f.auth == AuthMode::Optional && f.credential.is_none() {
                problems.push((
                    format!("{at}/auth"),
                    "'auth: optional' needs the function's 'credential' (what to send when configured)"
                        .into(),
                ));
            }
            if let Some(p) = &f.pagination {
                lint_pagination(&format!("{at}/pagination"), p, problems);
            }
        }
    }

    fn lint_body(&self, at: &str, f: &Function, problems: &mut Vec<(String, String)>) {
        let raw: Vec<&Param> = f.params.iter().filter(|p| p.raw).collect();
        let body = f.body;
        if body == Some(BodyKind::Raw) {
            if raw.len() != 1 {
                problems.push((
                    format!("{at}/body"),
                    format!(
                        "'body: raw' needs exactly one 'in: body' parameter with 'raw: true' (found {})",
                        raw.len()
                    ),
                ));
            }
            if f.content_type.is_none() {
                problems.push((
                    format!("{at}/content_type"),
                    "'body: raw' needs the function's 'content_type'".into(),
                ));
            }
        } else {
            if !raw.is_empty() {
                problems.push((
                    format!("{at}/params"),
                    format!(
                        "'{}' has 'raw: true' but the function's body is not 'raw'",
                        raw[0].name
                    ),
                ));
            }
            if f.content_type.is_some() {
                problems.push((
                    format!("{at}/content_type"),
                    "'content_type' is only used by 'body: raw' functions".into(),
                ));
            }
        }
        for p in raw {
            if p.location != Location::Body {
                problems.push((
                    format!("{at}/params"),
                    format!("raw parameter '{}' must be 'in: body'", p.name),
                ));
            }
        }
        if body.is_some() && matches!(f.method, Some(Method::Get)) {
            problems.push((
                format!("{at}/body"),
                "a GET function sends no body; remove 'body'".into(),
            ));
        }
        if matches!(body, Some(BodyKind::Json | BodyKind::Raw)) {
            for p in f.params.iter().filter(|p| p.location == Location::Form) {
                problems.push((
                    format!("{at}/params"),
                    format!(
                        "'{}' is 'in: form' but the function's body is '{}'; use 'in: body', or 'body: form' / 'body: multipart'",
                        p.name,
                        if body == Some(BodyKind::Json) { "json" } else { "raw" }
                    ),
                ));
            }
        }
        if body == Some(BodyKind::Form) {
            let is_file = |p: &&Param| {
                p.upload.is_some()
                    || p.schema.get("format").and_then(Value::as_str) == Some("binary")
                    || p.schema.contains_key("x-kosmo-file")
            };
            for p in f.params.iter().filter(is_file) {
                problems.push((
                    format!("{at}/params"),
                    format!(
                        "'{}' is a file upload part; a 'body: form' (urlencoded) request cannot carry files, use 'body: multipart'",
                        p.name
                    ),
                ));
            }
        }
    }
}

fn lint_pagination(at: &str, p: &Pagination, problems: &mut Vec<(String, String)>) {
    let ptr_ok = |s: &str| s.is_empty() || s.starts_with('/');
    let items = p.items_pointer();
    if !ptr_ok(&items) {
        problems.push((
            format!("{at}/items"),
            format!("'{}' is not a JSON pointer", p.items),
        ));
    }
    for (key, v) in [("has_more", &p.has_more), ("total", &p.total)] {
        if let Some(v) = v
            && !v.starts_with('/')
        {
            problems.push((
                format!("{at}/{key}"),
                format!("'{v}' is not a JSON pointer (it starts with '/')"),
            ));
        }
    }
    let check_cursor = |key: &str, c: &CursorSpec, problems: &mut Vec<(String, String)>| {
        if c.from.is_none() && c.header.is_none() && c.item.is_none() {
            problems.push((
                format!("{at}/{key}"),
                "a cursor needs 'from' (body pointer), 'header' or 'item' (pointer in the last item)"
                    .into(),
            ));
        }
        if c.from.is_some() && c.header.is_some() {
            problems.push((
                format!("{at}/{key}"),
                "a cursor comes from 'from' or 'header', not both".into(),
            ));
        }
        for (k, v) in [("from", &c.from), ("item", &c.item)] {
            if let Some(v) = v
                && !v.starts_with('/')
            {
                problems.push((
                    format!("{at}/{key}/{k}"),
                    format!("'{v}' is not a JSON pointer (it starts with '/')"),
                ));
            }
        }
    };
    match p.style {
        PaginationStyle::Cursor => match &p.cursor {
            Some(c) => check_cursor("cursor", c, problems),
            None => problems.push((
                at.to_string(),
                "'style: cursor' needs 'cursor: {from | header | item, param}'".into(),
            )),
        },
        other => {
            if p.next_url.is_some() && other != PaginationStyle::Link {
                problems.push((
                    format!("{at}/next_url"),
                    "'next_url' belongs to 'style: link'".into(),
                ));
            }
            if p.cursor.is_some() || p.reverse.is_some() {
                problems.push((
                    at.to_string(),
                    format!(
                        "'cursor' and 'reverse' belong to 'style: cursor', not '{}'",
                        other.as_str()
                    ),
                ));
            }
        }
    }
    if let Some(r) = &p.reverse {
        check_cursor("reverse", r, problems);
    }
    if p.stop.contains(&StopRule::ShortPage)
        && p.size_param.is_none()
        && p.style != PaginationStyle::Offset
    {
        problems.push((
            format!("{at}/stop"),
            "'short_page' needs 'size_param' (the page-size query parameter)".into(),
        ));
    }
    if p.max_pages == 0 {
        problems.push((format!("{at}/max_pages"), "must be at least 1".into()));
    }
}

/// Flow collections (`[`/`{`) nested deeper than any manifest needs. The YAML parser's time grows
/// quadratically with nesting depth, so a hostile 200 KB file on `KOSMO_MANIFEST_PATH` could
/// otherwise stall every command; refusing it up front keeps loading linear.
const MAX_FLOW_DEPTH: usize = 64;

fn check_flow_depth(file: &str, text: &str) -> Result<()> {
    let mut depth = 0usize;
    for (line_no, line) in text.lines().enumerate() {
        for (col, c) in line.char_indices() {
            match c {
                '[' | '{' => depth += 1,
                ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            }
            if depth > MAX_FLOW_DEPTH {
                return Err(Error::Manifest {
                    file: file.into(),
                    location: format!("line {} column {}", line_no + 1, col + 1),
                    message: format!("flow collections nested more than {MAX_FLOW_DEPTH} deep"),
                });
            }
        }
    }
    Ok(())
}

fn parse_yaml<T: serde::de::DeserializeOwned>(file: &str, text: &str) -> Result<T> {
    check_flow_depth(file, text)?;
    serde_yaml::from_str(text).map_err(|e| Error::Manifest {
        file: file.into(),
        location: e
            .location()
            .map(|l| format!("line {} column {}", l.line(), l.column()))
            .unwrap_or_else(|| "document".into()),
        message: strip_location(&e.to_string()),
    })
}

/// `{id}` names in a path template, in order.
pub fn path_placeholders(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        match after.find('}') {
            Some(end) => {
                // `{+name}` is reserved expansion: the same parameter, slashes kept.
                let name = &after[..end];
                out.push(name.strip_prefix('+').unwrap_or(name).to_string());
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    out
}

/// A JSON pointer for messages: the root is `/`.
pub fn display_pointer(p: &str) -> String {
    if p.is_empty() { "/".into() } else { p.into() }
}

/// yaml errors repeat their location inside the message; we already print it in front.
fn strip_location(msg: &str) -> String {
    static RE: OnceLock<Option<regex::Regex>> = OnceLock::new();
    match RE.get_or_init(|| regex::Regex::new(r" at line \d+ column \d+").ok()) {
        Some(re) => re.replace_all(msg, "").into_owned(),
        None => msg.to_string(),
    }
}

/// The manifest JSON Schema as a value (to list the keys allowed where an unknown one is found).
fn manifest_schema() -> &'static Value {
    static S: OnceLock<Value> = OnceLock::new();
    S.get_or_init(|| serde_json::from_str(MANIFEST_SCHEMA).unwrap_or(Value::Null))
}

fn manifest_validator() -> std::result::Result<&'static jsonschema::Validator, String> {
    static V: OnceLock<std::result::Result<jsonschema::Validator, String>> = OnceLock::new();
    V.get_or_init(|| {
        let schema: Value = serde_json::from_str(MANIFEST_SCHEMA).map_err(|e| e.to_string())?;
        jsonschema::validator_for(&schema).map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// In file order; problems without a place keep their order, after those with one.
fn sort_problems(problems: &mut [Problem]) {
    problems.sort_by_key(|p| (p.line.is_none(), p.line, p.column));
}

/// A located problem from an error of the YAML pass (`line L column C` in its location).
fn problem_of_error(file: &str, e: Error, rule: &'static str) -> Problem {
    match e {
        Error::Manifest {
            location, message, ..
        } => {
            let pos = parse_line_column(&location);
            Problem::new(file, "", message).rule(rule).at(pos)
        }
        other => Problem::new(file, "", other.to_string()).rule(rule),
    }
}

fn parse_line_column(location: &str) -> Option<crate::manifest_check::Pos> {
    let rest = location.strip_prefix("line ")?;
    let (line, col) = rest.split_once(" column ")?;
    Some(crate::manifest_check::Pos {
        line: line.trim().parse().ok()?,
        column: col.trim().parse().ok()?,
    })
}

fn duplicate_problems(file: &str, index: &crate::manifest_check::PositionIndex) -> Vec<Problem> {
    index
        .duplicates
        .iter()
        .map(|(pointer, key, at, first)| {
            Problem::new(
                file,
                pointer.clone(),
                format!(
                    "duplicate key `{key}` (first at line {} column {}, again at line {} column {}): keep one",
                    first.line, first.column, at.line, at.column
                ),
            )
            .rule(crate::manifest_check::rule::DUPLICATE_KEY)
            .at(Some(*at))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINI: &str = r#"
name: echo
label: Echo
summary: A tiny test integration.
category: testing
base_url: http://127.0.0.1:1
credentials:
  token: {label: Token, header: authorization, scheme: Bearer, hint: "set ECHO_TOKEN"}
groups: [{id: main, title: Main}]
functions:
  get_thing:
    group: main
    class: read
    summary: Get a thing.
    method: GET
    path: /things/{id}
    credential: token
    params:
      - {name: id, in: path, required: true, type: string}
"#;

    #[test]
    fn loads_a_small_manifest() {
        let m = Manifest::from_yaml("echo.yaml", MINI).unwrap();
        assert_eq!(m.functions["get_thing"].params[0].type_name(), "string");
        assert_eq!(
            m.full_name("get_thing", &m.functions["get_thing"]),
            "echo_get_thing"
        );
    }

    #[test]
    fn yaml_errors_have_line_and_column() {
        let err = Manifest::from_yaml("bad.yaml", "name: [unclosed").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("bad.yaml: line 2 column 1: "), "{msg}");
        assert_eq!(
            msg.matches("line 2").count(),
            1,
            "location said once: {msg}"
        );
    }

    #[test]
    fn unknown_keys_are_refused_with_a_pointer() {
        let text = MINI.replace("    class: read\n", "    class: read\n    colour: blue\n");
        let msg = Manifest::from_yaml("x.yaml", &text)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("/functions/get_thing"), "{msg}");
        assert!(msg.contains("colour"), "{msg}");
    }

    #[test]
    fn lint_catches_get_marked_write_and_broken_placeholders() {
        let text = MINI
            .replace("class: read", "class: write")
            .replace("/things/{id}", "/things/{thing_id}");
        let msg = Manifest::from_yaml("x.yaml", &text)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("GET function cannot be class 'write'"),
            "{msg}"
        );
        let text = MINI.replace("/things/{id}", "/things/{thing_id}");
        let msg = Manifest::from_yaml("x.yaml", &text)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("placeholder '{thing_id}'"), "{msg}");
    }

    #[test]
    fn lint_catches_duplicate_aliases_and_unknown_credentials() {
        let text = MINI.replace(
            "    credential: token\n",
            "    credential: token\n    aliases: [echo_get_thing]\n",
        );
        let msg = Manifest::from_yaml("x.yaml", &text)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("already used by this function's own name"),
            "{msg}"
        );
        let second = "  other:\n    group: main\n    class: read\n    summary: Other.\n    method: GET\n    path: /other\n    credential: token\n    aliases: [get_thing]\n";
        let msg = Manifest::from_yaml("x.yaml", &format!("{MINI}{second}"))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("'get_thing' is already used by function 'get_thing'"),
            "{msg}"
        );
        assert!(
            msg.starts_with("x.yaml: line 20 column 3: /functions/other: "),
            "{msg}"
        );
        let text = MINI.replace("credential: token", "credential: nope");
        let msg = Manifest::from_yaml("x.yaml", &text)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("unknown credential type 'nope'"), "{msg}");
    }

    #[test]
    fn check_reports_each_mistake_once_with_a_suggestion() {
        // One misspelt type would otherwise also fail the lint's meta-schema check and the
        // input schema compile: only the first, precise problem is reported.
        let text = MINI.replace("type: string}", "type: strng}");
        let (m, problems) = Manifest::check("x.yaml", &text);
        assert!(m.is_some());
        assert_eq!(problems.len(), 1, "{problems:#?}");
        let p = &problems[0];
        assert_eq!(p.pointer, "/functions/get_thing/params/0/type");
        assert_eq!((p.line, p.rule), (Some(19), "schema"));
        assert!(
            p.message.ends_with("did you mean `string`?"),
            "{}",
            p.message
        );
        // Independent mistakes are all reported, in file order.
        let text = MINI
            .replace("class: read", "class: write")
            .replace("category: testing", "category: testing\ncolour: blue");
        let (_, problems) = Manifest::check("x.yaml", &text);
        let lines: Vec<Option<usize>> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![Some(6), Some(14)], "{problems:#?}");
        assert_eq!(problems[0].rule, "unknown_key");
        assert_eq!(problems[1].rule, "lint");
    }

    #[test]
    fn a_syntax_error_is_reported_with_the_duplicates_before_it() {
        let text = "name: a\nname: b\nlabel: [unclosed\n";
        let (m, problems) = Manifest::check("x.yaml", text);
        assert!(m.is_none());
        let rules: Vec<&str> = problems.iter().map(|p| p.rule).collect();
        assert_eq!(rules, vec!["duplicate_key", "yaml_syntax"], "{problems:#?}");
        assert_eq!(problems[0].line, Some(2));
    }

    #[test]
    fn upload_roles_belong_to_form_parameters() {
        let text = MINI.replace(
            "{name: id, in: path, required: true, type: string}",
            "{name: id, in: path, required: true, type: string, upload: path}",
        );
        let msg = Manifest::from_yaml("x.yaml", &text)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("'id' has 'upload' but is not an 'in: form' parameter"),
            "{msg}"
        );
    }

    /// The calls the seed page documents, verbatim (as JSON), must validate; near misses must not.
    #[test]
    fn anthropic_manifest_accepts_the_seed_calls() {
        use crate::validate::InputValidator;
        use serde_json::json;
        let m = Manifest::from_yaml(
            "anthropic.yaml",
            include_str!("../manifests/anthropic.yaml"),
        )
        .unwrap();
        let check = |name: &str, args: Value| {
            let f = m
                .functions
                .get(name)
                .or_else(|| {
                    m.functions
                        .values()
                        .find(|f| f.aliases.iter().any(|a| a == name))
                })
                .unwrap_or_else(|| panic!("no function {name}"));
            InputValidator::new(&m, f).unwrap().check(name, f, &args)
        };
        let msgs = json!([{"role": "user", "content": "Hello, Claude"}]);
        let ok = [
            (
                "create_message",
                json!({"model": "claude-sonnet-4-20250514", "max_tokens": 256, "messages": msgs}),
            ),
            (
                "count_message_tokens",
                json!({"payload": {"model": "claude-sonnet-4-20250514", "messages": msgs}}),
            ),
            (
                "list_messages",
                json!({"model": "example_model", "limit": 1, "before_id": "example_before_id", "after_id": "example_after_id"}),
            ),
            (
                "create_message_batch",
                json!({"payload": {"requests": [{"custom_id": "example-1", "params": {"model": "claude-sonnet-4-20250514", "max_tokens": 128, "messages": msgs}}]}}),
            ),
            ("list_message_batches", json!({"query": {"limit": 20}})),
            ("get_message_batch", json!({"id": "msgbatch_x"})),
            ("cancel_message_batch", json!({"id": "msgbatch_x"})),
            ("delete_message_batch", json!({"id": "msgbatch_x"})),
            ("get_message_batch_results", json!({"id": "msgbatch_x"})),
            ("list_models", json!({"limit": 20})),
            ("get_model", json!({"id": "claude-sonnet-4-20250514"})),
            ("list_files", json!({"query": {"limit": 20}})),
            ("get_file", json!({"id": "file_011example"})),
            ("delete_file", json!({"id": "file_x"})),
            ("download_file", json!({"id": "file_011downloadable"})),
            ("get_organization", json!({})),
            ("get_current_user", json!([])),
            (
                "list_workspaces",
                json!({"limit": 20, "include_archived": false}),
            ),
            ("get_workspace", json!({"id": "wrkspc_x"})),
            ("list_users", json!({"query": {"limit": 20}})),
            ("get_user", json!({"id": "user_x"})),
            (
                "update_user",
                json!({"id": "user_x", "payload": {"role": "developer"}}),
            ),
            ("remove_user", json!({"id": "user_x"})),
            (
                "list_api_keys",
                json!({"query": {"limit": 20, "status": "active"}}),
            ),
            ("get_api_key", json!({"id": "apikey_x"})),
            (
                "wait_for_message_batch",
                json!({"id": "msgbatch_x", "timeout_seconds": 600}),
            ),
            ("upload_file", json!({"file": "./report.pdf"})),
            (
                "upload_file",
                json!({"file": {"content": "a,b\n", "filename": "t.csv"}}),
            ),
            (
                "get_usage_report",
                json!({"query": {"starting_at": "2025-08-01T00:00:00Z", "group_by": ["model"]}}),
            ),
        ];
        for (name, args) in ok {
            if let Err(e) = check(name, args.clone()) {
                panic!("{name}({args}) was refused: {e}");
            }
        }
        let out = check("create_message", json!({"model": "m", "messages": msgs})).unwrap();
        assert_eq!(
            out["max_tokens"],
            json!(4096),
            "max_tokens is sent by default"
        );
        let bad = [
            (
                "create_message",
                json!({"model": "m"}),
                "\"messages\" is a required property",
            ),
            (
                "create_message",
                json!({"model": "m", "messages": msgs, "max_tokens": 0}),
                "/max_tokens",
            ),
            (
                "create_message",
                json!({"model": "m", "messages": msgs, "temperature": 1.5}),
                "/temperature",
            ),
            (
                "create_message_batch",
                json!({"requests": [{"custom_id": "has space", "params": {"model": "m", "max_tokens": 1, "messages": msgs}}]}),
                "/requests/0/custom_id",
            ),
            // Params are validated when the batch runs (errored rows), like the real API; only
            // the request shape is checked up front.
            (
                "create_message_batch",
                json!({"requests": [{"custom_id": "a"}]}),
                "\"params\" is a required property",
            ),
            (
                "list_message_batches",
                json!({"query": {"limit": 1001}}),
                "/limit",
            ),
            (
                "update_user",
                json!({"id": "user_x", "payload": {"role": "admin"}}),
                "/role",
            ),
            (
                "get_usage_report",
                json!({"bucket_width": "1d"}),
                "starting_at",
            ),
            (
                "get_message_batch",
                json!({}),
                "\"id\" is a required property",
            ),
            ("upload_file", json!({"file": {"content": "a"}}), "/file"),
            (
                "upload_file",
                json!({"file": {"path": "a", "content": "b", "filename": "c"}}),
                "/file",
            ),
            ("list_files", json!({"before_id": "file_x"}), "before_id"),
        ];
        for (name, args, needle) in bad {
            match check(name, args.clone()) {
                Ok(_) => panic!("{name}({args}) was accepted"),
                Err(e) => assert!(e.to_string().contains(needle), "{name}: {e}"),
            }
        }
    }

    #[test]
    fn deep_flow_nesting_is_refused_quickly() {
        let text = format!("name: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let msg = Manifest::from_yaml("deep.yaml", &text)
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with("deep.yaml: line 1 column 71: flow collections nested"),
            "{msg}"
        );
    }

    #[test]
    fn placeholders_are_found_in_order() {
        assert_eq!(path_placeholders("/a/{x}/b/{y}"), vec!["x", "y"]);
        assert!(path_placeholders("/plain").is_empty());
    }
}

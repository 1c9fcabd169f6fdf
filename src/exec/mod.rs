//! The generic executor: one code path runs every function of every manifest.
//!
//! It knows HTTP and the manifest, nothing about Lua and nothing about any one integration:
//! [`request`] builds the request from the manifest, [`retry`] decides what is safe to repeat,
//! [`response`] decodes results and errors, [`sse`] parses and assembles streams, [`rows`] reads
//! JSONL in constant memory, [`paginate`] follows cursors and polls, [`dry_run`] shows a request
//! without sending it, and [`config`] reads the transport settings.

pub mod caps;
pub mod config;
pub mod dry_run;
pub mod paginate;
pub mod partial;
pub mod progress;
pub mod request;
pub mod response;
pub mod retry;
pub mod rows;
pub mod sse;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use reqwest::header::HeaderMap;
use serde_json::{Map, Value, json};

use crate::credentials::{Credentials, DEFAULT_ACCOUNT};
use crate::error::{Error, Result, TransportKind};
use crate::manifest::{AuthMode, Class, Function, Manifest, ResponseKind};
use crate::registry::{Integration, Registry};
use crate::validate::{OPTION_FETCH_ALL, OPTION_SAVE_TO};

pub use paginate::{PageOut, PageStream};
pub use progress::Progress;
pub use request::Prepared;
pub use rows::RowStream;

/// Transport settings. Defaults follow the official SDKs (2 retries, 5 s connect, 600 s total).
#[derive(Debug, Clone)]
pub struct ExecConfig {
    pub max_retries: u32,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// A stream that sends nothing but pings for this long fails instead of hanging.
    pub stream_idle_timeout: Duration,
    /// Retry writes not marked idempotent even after the request may have reached the server.
    pub retry_non_idempotent: bool,
    /// Size caps on what servers send.
    pub caps: caps::Caps,
}

impl Default for ExecConfig {
    fn default() -> Self {
        ExecConfig {
            max_retries: 2,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(600),
            stream_idle_timeout: Duration::from_secs(90),
            retry_non_idempotent: false,
            caps: caps::Caps::default(),
        }
    }
}

/// The longest server-requested wait (`retry-after`) we sleep through inside a call; a longer one
/// is returned to the caller as the error's `retry_after`.
pub const MAX_SERVER_RETRY_WAIT: Duration = Duration::from_secs(60);

/// Receives each streamed event as it arrives; an error aborts the stream.
pub type EventSink<'a> = Box<dyn FnMut(&Value) -> Result<()> + Send + 'a>;

/// One call of one function.
pub struct Call<'a> {
    pub integration: &'a str,
    /// Lua name, full name or alias.
    pub function: &'a str,
    /// Named account; `None` is `default`.
    pub account: Option<&'a str>,
    /// Arguments, flat or with `payload` / `query` wrappers.
    pub args: Value,
    /// Build the request and return it (secrets redacted) instead of sending it.
    pub dry_run: bool,
    /// For streaming calls: each event, as it arrives.
    pub on_event: Option<EventSink<'a>>,
}

impl<'a> Call<'a> {
    /// A call with no account, no dry run and no event sink.
    pub fn new(integration: &'a str, function: &'a str, args: Value) -> Self {
        Call {
            integration,
            function,
            account: None,
            args,
            dry_run: false,
            on_event: None,
        }
    }
}

/// What a call returned, with what the Lua envelope records about it.
#[derive(Debug, Clone)]
pub struct CallOutput {
    pub value: Value,
    pub function: String,
    pub class: Class,
    pub account: String,
    pub http_status: Option<u16>,
    pub request_id: Option<String>,
    /// The response headers (lower-case names, secrets redacted); empty for a dry run.
    pub headers: Vec<(String, String)>,
}

/// Whether a call reads or writes a local file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileAccess {
    Read,
    /// Written through a fresh hidden sibling (created new, so no planted link is followed),
    /// renamed over `<path>` when complete.
    Write,
}

/// A local file a call would touch. The executor knows which arguments name files; the
/// sandbox policy (which paths a script may use) lives in the Lua layer, which asks
/// [`Executor::local_files`] before every call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFile {
    /// As the caller gave it (not canonicalized).
    pub path: std::path::PathBuf,
    pub access: FileAccess,
    /// JSON pointer-ish name of the argument, e.g. `save_to` or `file` or `file.path`.
    pub argument: String,
}

/// The executor. Cheap to clone.
#[derive(Clone)]
pub struct Executor {
    registry: Arc<Registry>,
    credentials: Arc<Credentials>,
    config: ExecConfig,
    /// For `http://` URLs: built without loading the system's root certificates.
    client: reqwest::Client,
    /// For `https://` URLs: built (reading the root certificates, about 20 ms) on the first
    /// https request, shared by the clones.
    tls_client: Arc<std::sync::OnceLock<std::result::Result<reqwest::Client, String>>>,
    /// Recently sent URLs (base URL plus path, no query), parsed: a script calls the same few
    /// URLs over and over, and parsing one costs more than the rest of building the request.
    urls: Arc<std::sync::Mutex<std::collections::HashMap<String, reqwest::Url>>>,
    progress: Option<Arc<dyn Progress>>,
}

/// How many parsed URLs [`Executor`] keeps (then it starts over).
const PARSED_URLS: usize = 64;

/// A function resolved for one call.
struct Target<'r> {
    integ: &'r Arc<Integration>,
    name: &'r str,
    f: &'r Function,
    account: String,
}

impl Target<'_> {
    fn manifest(&self) -> &Manifest {
        &self.integ.manifest
    }

    fn output(&self, value: Value, status: Option<u16>, request_id: Option<String>) -> CallOutput {
        CallOutput {
            value,
            function: self.name.to_string(),
            class: self.f.class,
            account: self.account.clone(),
            http_status: status,
            request_id,
            headers: Vec::new(),
        }
    }

    /// Safe to send twice: reads, idempotent writes, or when the caller opted in.
    fn repeatable(&self, config: &ExecConfig) -> bool {
        self.f.class == Class::Read || self.f.idempotent || config.retry_non_idempotent
    }
}

/// A call resolved and validated ([`Executor::check_call`]), ready to be sent once.
pub struct Checked<'e> {
    target: Target<'e>,
    args: Map<String, Value>,
}

impl Checked<'_> {
    /// The function's canonical (Lua) name.
    pub fn function(&self) -> &str {
        self.target.name
    }

    /// The function as the manifest declares it.
    pub fn declaration(&self) -> &Function {
        self.target.f
    }

    pub fn class(&self) -> Class {
        self.target.f.class
    }

    pub fn account(&self) -> &str {
        &self.target.account
    }

    /// The normalized, validated arguments the request is built from.
    pub fn args(&self) -> &Map<String, Value> {
        &self.args
    }

    /// Every local path the call would read or write. The executor knows which arguments
    /// name files; which paths a caller may use is the caller's policy.
    pub fn local_files(&self) -> Vec<LocalFile> {
        let (f, args) = (self.target.f, &self.args);
        let mut out = Vec::new();
        // The call honours `save_to` whenever it is present (a passthrough function accepts it
        // as an extra property), so it is listed whatever the response kind.
        if let Some(path) = args.get(OPTION_SAVE_TO).and_then(Value::as_str) {
            out.push(LocalFile {
                path: path.into(),
                access: FileAccess::Write,
                argument: OPTION_SAVE_TO.into(),
            });
        }
        for p in f
            .params
            .iter()
            .filter(|p| p.location == crate::manifest::Location::Form)
        {
            let Some(value) = args.get(&p.name) else {
                continue;
            };
            if let Some(path) = request::form_file_path(&p.schema, value) {
                let argument = if value.is_object() {
                    format!("{}.path", p.name)
                } else {
                    p.name.clone()
                };
                out.push(LocalFile {
                    path,
                    access: FileAccess::Read,
                    argument,
                });
            }
        }
        out
    }
}

/// A buffered response, decoded.
pub(crate) struct Fetched {
    pub value: Value,
    pub status: u16,
    pub request_id: Option<String>,
    pub headers: HeaderMap,
    /// The bytes of the body as sent.
    pub size: usize,
}

/// What the retry loop hands back.
enum Sent {
    /// The whole body was read.
    Full {
        status: u16,
        headers: HeaderMap,
        body: Bytes,
    },
    /// Headers only; the body is read by the caller (streams, rows, downloads to a file).
    Open(reqwest::Response),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Full,
    Open,
}

impl Executor {
    pub fn new(
        registry: Arc<Registry>,
        credentials: Arc<Credentials>,
        config: ExecConfig,
    ) -> Result<Self> {
        // The plain client trusts no certificate at all (`tls_certs_only` of nothing), so it is
        // never used for https; see `client_for`.
        let client = Self::client_builder(&config)
            .tls_certs_only(Vec::<reqwest::Certificate>::new())
            .build()
            .map_err(|e| Error::config(format!("cannot create the HTTP client: {e}")))?;
        Ok(Executor {
            registry,
            credentials,
            config,
            client,
            tls_client: Arc::new(std::sync::OnceLock::new()),
            urls: Arc::default(),
            progress: None,
        })
    }

    /// Report long waits (polls, downloads) to `progress`.
    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = Some(progress);
        self
    }

    pub(crate) fn progress(&self) -> Option<&dyn Progress> {
        self.progress.as_deref()
    }

    fn client_builder(config: &ExecConfig) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .tcp_nodelay(true)
            // Like the SDK (httpx): no redirects. A redirect to another host would carry the
            // credential header (reqwest only strips `authorization` across hosts).
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(60))
    }

    /// `url` parsed, from the cache when it was sent before. `None` when it does not parse:
    /// reqwest then reports it as it always did.
    fn parsed_url(&self, url: &str) -> Option<reqwest::Url> {
        let Ok(mut cache) = self.urls.lock() else {
            return reqwest::Url::parse(url).ok();
        };
        if let Some(u) = cache.get(url) {
            return Some(u.clone());
        }
        let parsed = reqwest::Url::parse(url).ok()?;
        if cache.len() >= PARSED_URLS {
            cache.clear();
        }
        cache.insert(url.to_string(), parsed.clone());
        Some(parsed)
    }

    /// The client for a request's URL: plain http never loads the TLS root certificates.
    fn client_for(&self, url: &str) -> Result<&reqwest::Client> {
        let plain = url
            .get(..7)
            .is_some_and(|s| s.eq_ignore_ascii_case("http://"));
        if plain {
            return Ok(&self.client);
        }
        self.tls_client
            .get_or_init(|| {
                Self::client_builder(&self.config)
                    .build()
                    .map_err(|e| format!("cannot create the HTTPS client: {e}"))
            })
            .as_ref()
            .map_err(|e| Error::config(e.clone()))
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    pub fn credentials(&self) -> &Arc<Credentials> {
        &self.credentials
    }

    pub fn config(&self) -> &ExecConfig {
        &self.config
    }

    /// Validate, build, send (with retries), decode.
    pub async fn call(&self, call: Call<'_>) -> Result<CallOutput> {
        let checked = self.check_call(&call)?;
        self.call_checked(checked, call.dry_run, call.on_event)
            .await
    }

    /// Resolve a call's function and account, refuse an unsupported function and validate the
    /// arguments, all before any I/O. What a caller with its own checks (the session's
    /// permissions and file policy) runs once, then hands to [`Executor::call_checked`] and
    /// friends, so the arguments are validated exactly once.
    pub fn check_call(&self, call: &Call<'_>) -> Result<Checked<'_>> {
        let target = self.target(call)?;
        let args = self.check(&target, &call.args)?;
        Ok(Checked { target, args })
    }

    /// Build, send (with retries) and decode a checked call.
    pub async fn call_checked(
        &self,
        checked: Checked<'_>,
        dry_run: bool,
        mut on_event: Option<EventSink<'_>>,
    ) -> Result<CallOutput> {
        let Checked { target, args } = checked;
        let f = target.f;
        if let Some(poll) = &f.poll {
            return paginate::poll(self, &target, poll, args, dry_run).await;
        }
        let prepared = self.prepare(&target, &args, dry_run)?;
        let secrets = prepared.secrets();
        let result = async {
            if dry_run {
                return Ok(target.output(dry_run::render(&prepared), None, None));
            }
            let streaming = match &f.stream {
                Some(s) if s.param.is_empty() => f.response == ResponseKind::Sse,
                Some(s) => args.get(&s.param) == Some(&Value::Bool(true)),
                None => f.response == ResponseKind::Sse,
            };
            if streaming {
                return self.stream(&target, &prepared, on_event.take()).await;
            }
            if f.pagination.is_some() && args.get(OPTION_FETCH_ALL) == Some(&Value::Bool(true)) {
                return paginate::fetch_all(self, &target, prepared.clone(), &args).await;
            }
            if let Some(path) = args.get(OPTION_SAVE_TO).and_then(Value::as_str) {
                return self.save_to(&target, &prepared, path).await;
            }
            let got = self.fetch(&target, &prepared).await?;
            let mut out = target.output(got.value, Some(got.status), got.request_id);
            out.headers = response::header_pairs(&got.headers, &secrets);
            Ok(out)
        }
        .await;
        match result {
            // A server may echo a secret (an auth header, a URL) into a success body too.
            Ok(mut out) => {
                crate::redact::Redactor::for_secrets(&secrets)
                    .redact_value_in_place(&mut out.value);
                Ok(out)
            }
            Err(e) => Err(response::redact_error(e, &secrets)),
        }
    }

    /// Every local path `call` would read or write (see [`Checked::local_files`]). Fails
    /// exactly where `call` would fail before any I/O (unknown function, unsupported, invalid
    /// arguments).
    pub fn local_files(&self, call: &Call<'_>) -> Result<Vec<LocalFile>> {
        Ok(self.check_call(call)?.local_files())
    }

    /// Open a JSONL function's response as a row stream, read as the rows arrive.
    pub async fn rows(&self, call: Call<'_>) -> Result<RowStream> {
        let target = self.target(&call)?;
        Self::require_jsonl(&target)?;
        let checked = self.check_call(&call)?;
        self.rows_checked(checked, call.dry_run).await
    }

    fn require_jsonl(target: &Target<'_>) -> Result<()> {
        let (name, f) = (target.name, target.f);
        if f.response != ResponseKind::Jsonl {
            return Err(Error::Validation {
                function: name.into(),
                errors: vec![format!(
                    "rows() reads JSONL responses; {name} returns {}",
                    serde_json::to_value(f.response)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                )],
            });
        }
        Ok(())
    }

    /// [`Executor::rows`] for a checked call.
    pub async fn rows_checked(&self, checked: Checked<'_>, dry_run: bool) -> Result<RowStream> {
        let Checked { target, args } = checked;
        Self::require_jsonl(&target)?;
        let prepared = self.prepare(&target, &args, dry_run)?;
        if dry_run {
            return Ok(RowStream::once(dry_run::render(&prepared)));
        }
        let secrets = prepared.secrets();
        match self.send(&target, &prepared, Mode::Open).await {
            Ok(Sent::Open(resp)) => {
                let rid = response::request_id(target.manifest(), resp.headers());
                Ok(RowStream::live(
                    resp,
                    rid,
                    self.config.stream_idle_timeout,
                    self.config.caps.line,
                    secrets,
                ))
            }
            Ok(Sent::Full { .. }) => {
                Err(Error::config("internal: a row stream got a buffered body"))
            }
            Err(e) => Err(response::redact_error(e, &secrets)),
        }
    }

    /// Walk a paginated function's pages lazily: one request per [`PageStream::next`]. A dry
    /// run yields the first request, rendered, once.
    pub fn pages(&self, call: Call<'_>) -> Result<PageStream> {
        let target = self.target(&call)?;
        Self::require_pagination(&target)?;
        let checked = self.check_call(&call)?;
        self.pages_checked(checked, call.dry_run)
    }

    fn require_pagination(target: &Target<'_>) -> Result<()> {
        if target.f.pagination.is_none() {
            let name = target.name;
            return Err(Error::Validation {
                function: name.into(),
                errors: vec![format!(
                    "pages() and items() walk paginated functions; {name} has no `pagination`"
                )],
            });
        }
        Ok(())
    }

    /// [`Executor::pages`] for a checked call.
    pub fn pages_checked(&self, checked: Checked<'_>, dry_run: bool) -> Result<PageStream> {
        let Checked { target, args } = checked;
        Self::require_pagination(&target)?;
        let Some(spec) = &target.f.pagination else {
            return Err(Error::config("internal: pagination vanished"));
        };
        let prepared = self.prepare(&target, &args, dry_run)?;
        let secrets = prepared.secrets();
        if dry_run {
            let shown = dry_run::render(&prepared);
            return Ok(PageStream::new(self, &target, None, Some(shown), secrets));
        }
        let walker = paginate::Walker::new(spec, prepared, &args);
        Ok(PageStream::new(self, &target, Some(walker), None, secrets))
    }

    /// Resolve a call's integration, function (any of its names) and account.
    fn target(&self, call: &Call<'_>) -> Result<Target<'_>> {
        let integ = self.registry.require(call.integration)?;
        let (name, f) = integ.require_function(call.function)?;
        Ok(Target {
            integ,
            name,
            f,
            account: call.account.unwrap_or(DEFAULT_ACCOUNT).to_string(),
        })
    }

    /// Refuse unsupported functions, then validate, all before any I/O.
    fn check(&self, t: &Target<'_>, args: &Value) -> Result<Map<String, Value>> {
        if let Some(message) = &t.f.unsupported {
            return Err(Error::Unsupported {
                function: format!("{}.{}", t.manifest().name, t.name),
                message: message.clone(),
            });
        }
        let validator = t.integ.validator(t.name)?;
        let flat = validator.check(t.name, t.f, args)?;
        match flat {
            Value::Object(m) => Ok(m),
            _ => Ok(Map::new()),
        }
    }

    /// Resolve the account and credential, then build the request. A dry run does not need the
    /// credential to be configured.
    fn prepare(
        &self,
        t: &Target<'_>,
        args: &Map<String, Value>,
        dry_run: bool,
    ) -> Result<Prepared> {
        let manifest = t.manifest();
        let base_url = self.credentials.base_url(manifest, &t.account)?;
        let auth = match (&t.f.credential, t.f.auth) {
            (_, AuthMode::None) | (None, _) => None,
            (Some(c), mode) => {
                let cred = manifest.credentials.get(c).ok_or_else(|| {
                    Error::config(format!("{}: unknown credential type '{c}'", manifest.name))
                })?;
                match self.credentials.secret(manifest, &t.account, c) {
                    Ok(s) => Some(request::Auth::new(cred, Some(s))),
                    // Optional auth: without a configured credential the request goes without.
                    Err(Error::MissingCredential { .. }) if mode == AuthMode::Optional => None,
                    Err(Error::MissingCredential { .. }) if dry_run => {
                        Some(request::Auth::new(cred, None))
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        request::build(manifest, t.name, t.f, args, &base_url, auth)
    }

    /// One request (with retries), decoded by the function's response kind.
    async fn fetch(&self, t: &Target<'_>, p: &Prepared) -> Result<Fetched> {
        let Sent::Full {
            status,
            headers,
            body,
        } = self.send(t, p, Mode::Full).await?
        else {
            return Err(Error::config("internal: expected a buffered body"));
        };
        let rid = response::request_id(t.manifest(), &headers);
        let value = match t.f.response {
            ResponseKind::Json | ResponseKind::Sse => {
                response::decode_json(status, &headers, &body, rid.clone(), &p.secrets())?
            }
            ResponseKind::Jsonl | ResponseKind::Binary => {
                response::content_value(response::content_type(&headers), &body)
            }
        };
        Ok(Fetched {
            value,
            status,
            request_id: rid,
            headers,
            size: body.len(),
        })
    }

    /// Send with the retry policy of [`retry`]. In `Full` mode the body is read inside the loop,
    /// so a body that stalls or breaks is retried like any other transport failure.
    async fn send(&self, t: &Target<'_>, p: &Prepared, mode: Mode) -> Result<Sent> {
        let manifest = t.manifest();
        // A write carrying the integration's idempotency key is safe to send twice.
        let keyed = manifest
            .retry
            .idempotency_header
            .as_deref()
            .is_some_and(|h| p.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(h)));
        let repeatable = t.repeatable(&self.config) || keyed;
        let should_retry_header = manifest.errors.should_retry_header.as_deref();
        let what = format!("{} {}", p.method.as_str(), p.display_url());
        let secrets = p.secrets();
        let mut retries: u32 = 0;
        loop {
            let rb =
                request::to_reqwest(self.client_for(&p.url)?, p, self.parsed_url(&p.url)).await?;
            let sent = match mode {
                Mode::Full => rb.timeout(self.config.timeout).send().await,
                Mode::Open => match tokio::time::timeout(self.config.timeout, rb.send()).await {
                    Ok(r) => r,
                    Err(_) => {
                        return Err(Error::Transport {
                            kind: TransportKind::Timeout,
                            message: format!(
                                "{what}: no response headers within {}s",
                                self.config.timeout.as_secs_f64()
                            ),
                        });
                    }
                },
            };
            let (err, retry, server_wait) = match sent {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let headers = resp.headers().clone();
                    let mut resp = resp;
                    if resp.status().is_success() {
                        if mode == Mode::Open {
                            return Ok(Sent::Open(resp));
                        }
                        let cap = caps::Cap::Response;
                        match caps::read_body(&mut resp, cap, self.config.caps.response).await {
                            Ok(body) => {
                                return Ok(Sent::Full {
                                    status,
                                    headers,
                                    body,
                                });
                            }
                            Err(caps::ReadError::TooLarge(e)) => return Err(e),
                            Err(caps::ReadError::Transport(e)) => {
                                let (err, _) = response::transport_error(
                                    &e,
                                    &format!("{what}: reading the response"),
                                );
                                (err, retry::retry_transport(true, repeatable), None)
                            }
                        }
                    } else {
                        // An error body is small; an endless one stops at its cap, not retried.
                        let cap = caps::Cap::ErrorBody;
                        let body = match tokio::time::timeout(
                            self.config.stream_idle_timeout,
                            caps::read_body(&mut resp, cap, self.config.caps.error_body),
                        )
                        .await
                        {
                            Ok(Ok(b)) => b,
                            Ok(Err(caps::ReadError::TooLarge(e))) => return Err(e),
                            _ => Bytes::new(),
                        };
                        let spec = &manifest.retry;
                        let rate_limited = retry::is_rate_limited(spec, status, &headers);
                        let wait = retry::server_wait(spec, &headers, rate_limited);
                        let err = response::api_error(
                            manifest,
                            status,
                            &headers,
                            &body,
                            &secrets,
                            wait,
                            rate_limited,
                        );
                        let retry = retry::retry_response(
                            spec,
                            status,
                            &headers,
                            should_retry_header,
                            repeatable,
                        );
                        (err, retry, wait)
                    }
                }
                Err(e) if e.is_builder() => {
                    // Nothing was sent: a header value or the account's URL is unusable.
                    let (err, _) = response::transport_error(&e, &what);
                    return Err(Error::config(format!(
                        "cannot build the request: {}",
                        err.to_string()
                            .replace("transport error", "invalid URL or header value")
                    )));
                }
                Err(e) => {
                    let (err, reached) = response::transport_error(&e, &what);
                    (err, retry::retry_transport(reached, repeatable), None)
                }
            };
            if !retry || retries >= self.config.max_retries {
                if !retry && retries < self.config.max_retries && !repeatable {
                    tracing::debug!(
                        "{what}: not retried: a non-idempotent write may have reached the server"
                    );
                }
                return Err(err);
            }
            let Some(wait) = retry::delay(retries, server_wait, MAX_SERVER_RETRY_WAIT) else {
                return Err(err);
            };
            tracing::info!(
                "{what}: {} ({}); retry {} of {} in {:.2}s",
                err.code(),
                response::redact(&err.to_string(), &secrets),
                retries + 1,
                self.config.max_retries,
                wait.as_secs_f64()
            );
            tokio::time::sleep(wait).await;
            retries += 1;
        }
    }

    /// A streamed response, folded by the manifest's assembler; each event goes to `on_event`.
    async fn stream(
        &self,
        t: &Target<'_>,
        p: &Prepared,
        mut on_event: Option<EventSink<'_>>,
    ) -> Result<CallOutput> {
        // Keep-alive events are not passed to `on_event` and are not progress for the idle
        // timeout. (SSE comment lines are keep-alives too; the parser drops them.)
        let mut fold = sse::StreamFold::new(t.f.stream.as_ref())?;
        let Sent::Open(resp) = self.send(t, p, Mode::Open).await? else {
            return Err(Error::config("internal: a stream got a buffered body"));
        };
        let status = resp.status().as_u16();
        let rid = response::request_id(t.manifest(), resp.headers());
        let resp_headers = response::header_pairs(resp.headers(), &p.secrets());
        let ctype = response::content_type(resp.headers());
        if !ctype.contains("event-stream") {
            // Some proxies answer a stream request with a plain JSON body.
            let headers = resp.headers().clone();
            let mut resp = resp;
            let limit = self.config.caps.response;
            let body = tokio::time::timeout(
                self.config.timeout,
                caps::read_body(&mut resp, caps::Cap::Response, limit),
            )
            .await
            .map_err(|_| Error::Transport {
                kind: TransportKind::Timeout,
                message: "timed out reading the response".into(),
            })?
            .map_err(|e| match e {
                caps::ReadError::TooLarge(e) => e,
                caps::ReadError::Transport(e) => {
                    response::transport_error(&e, "reading the response").0
                }
            })?;
            let v = response::decode_json(status, &headers, &body, rid.clone(), &p.secrets())?;
            let mut out = t.output(v, Some(status), rid);
            out.headers = resp_headers;
            return Ok(out);
        }
        let idle = self.config.stream_idle_timeout;
        fold.set_max_line(self.config.caps.line);
        let mut wire = caps::Counter::new(caps::Cap::Stream, &self.config.caps, Some(status));
        let mut body = resp.bytes_stream();
        let mut deadline = tokio::time::Instant::now() + idle;
        let stream_err = |message: String| Error::Transport {
            kind: TransportKind::Stream,
            message,
        };
        let redactor = crate::redact::Redactor::for_secrets(&p.secrets());
        let mut handle = |fold: &mut sse::StreamFold,
                          mut ev: sse::Event,
                          deadline: &mut tokio::time::Instant|
         -> Result<()> {
            if fold.is_keepalive(&ev) {
                return Ok(());
            }
            // What a script sees of an event (and the assembled result) never shows a secret.
            redactor.redact_value_in_place(&mut ev.data);
            *deadline = tokio::time::Instant::now() + idle;
            if fold.is_error(&ev) {
                // An error event with no type is still an error: the server's own fault.
                return Err(response::error_from_value(
                    t.manifest(),
                    status,
                    &ev.data,
                    rid.clone(),
                    None,
                )
                .unwrap_or_else(|| {
                    Error::api(
                        status,
                        "api_error",
                        format!("the stream sent an error event: {}", ev.data),
                        rid.clone(),
                        None,
                    )
                }));
            }
            if let Some(sink) = on_event.as_mut() {
                sink(&ev.data)?;
            }
            fold.fold(&ev)
        };
        loop {
            match tokio::time::timeout_at(deadline, body.next()).await {
                Err(_) => {
                    return Err(Error::Transport {
                        kind: TransportKind::Timeout,
                        message: format!(
                            "{} {}: the stream stalled: no event other than keep-alives for {}s",
                            p.method.as_str(),
                            p.display_url(),
                            idle.as_secs_f64()
                        ),
                    });
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    let (err, _) = response::transport_error(&e, "reading the event stream");
                    return Err(stream_err(err.to_string()));
                }
                Ok(Some(Ok(chunk))) => {
                    // Every byte counts, keep-alives too: the assembled result and the parser's
                    // buffer are built from these bytes, so they stay within the cap.
                    wire.add(chunk.len())?;
                    for ev in fold.push(&chunk)? {
                        handle(&mut fold, ev, &mut deadline)?;
                    }
                    if fold.is_done() {
                        // The dialect's end sentinel: nothing after it belongs to the result.
                        break;
                    }
                }
            }
        }
        if let Some(ev) = fold.flush()? {
            handle(&mut fold, ev, &mut deadline)?;
        }
        if !fold.finished() {
            let expected = fold.expected_end();
            return Err(stream_err(format!(
                "{} {}: the stream ended before {expected}; the result would be incomplete",
                p.method.as_str(),
                p.display_url()
            )));
        }
        let mut out = t.output(fold.finish()?, Some(status), rid);
        out.headers = resp_headers;
        Ok(out)
    }

    /// Write a binary / JSONL body to a file as it arrives; returns `{content_type, path, size_bytes}`.
    async fn save_to(&self, t: &Target<'_>, p: &Prepared, path: &str) -> Result<CallOutput> {
        use tokio::io::AsyncWriteExt;
        let target = std::path::Path::new(path);
        let file_name = target
            .file_name()
            .filter(|_| !path.ends_with('/') && !target.is_dir())
            .ok_or_else(|| Error::Validation {
                function: format!("{}.{}", t.manifest().name, t.name),
                errors: vec![format!(
                    "/save_to: '{path}' must name a file, not a directory"
                )],
            })?;
        let Sent::Open(resp) = self.send(t, p, Mode::Open).await? else {
            return Err(Error::config("internal: a download got a buffered body"));
        };
        let status = resp.status().as_u16();
        let rid = response::request_id(t.manifest(), resp.headers());
        let resp_headers = response::header_pairs(resp.headers(), &p.secrets());
        let ctype = response::content_type(resp.headers());
        // A fresh, unpredictable sibling opened with create-new: it cannot already exist, so a
        // symlink planted under a guessable name cannot redirect the write outside the allowed
        // directory. The rename then replaces `path` itself, never what a link at `path` points to.
        let tmp = target.with_file_name(format!(
            ".{}.{:016x}.kosmo-part",
            file_name.to_string_lossy(),
            fastrand::u64(..)
        ));
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .await
            .map_err(|e| Error::io(&tmp, e))?;
        // Removed on every way out but the rename: an error, a cap, this future dropped.
        let part = partial::PartFile::new(tmp);
        let tmp = part.path();
        let mut size = caps::Counter::new(caps::Cap::Download, &self.config.caps, Some(status));
        let total = resp.content_length();
        let mut body = resp.bytes_stream();
        let idle = self.config.stream_idle_timeout;
        let result: Result<()> = async {
            loop {
                match tokio::time::timeout(idle, body.next()).await {
                    Err(_) => {
                        return Err(Error::Transport {
                            kind: TransportKind::Timeout,
                            message: format!("the download stalled for {}s", idle.as_secs_f64()),
                        });
                    }
                    Ok(None) => return Ok(()),
                    Ok(Some(Err(e))) => {
                        return Err(response::transport_error(&e, "reading the download").0);
                    }
                    Ok(Some(Ok(chunk))) => {
                        size.add(chunk.len())?;
                        file.write_all(&chunk)
                            .await
                            .map_err(|e| Error::io(tmp, e))?;
                        if let Some(progress) = self.progress() {
                            progress.downloaded(path, size.total(), total);
                        }
                    }
                }
            }
        }
        .await;
        if let Some(progress) = self.progress() {
            progress.finished(path);
        }
        result?;
        file.flush().await.map_err(|e| Error::io(tmp, e))?;
        drop(file);
        tokio::fs::rename(tmp, path)
            .await
            .map_err(|e| Error::io(path, e))?;
        part.keep();
        let mut out = t.output(
            json!({"content_type": ctype, "path": path, "size_bytes": size.total()}),
            Some(status),
            rid,
        );
        out.headers = resp_headers;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    /// The Lua runtime and the CLI may spawn calls on a multi-threaded runtime.
    #[test]
    fn call_futures_are_send() {
        let ex = Executor::new(
            Arc::new(Registry::default()),
            Arc::new(Credentials::default()),
            ExecConfig::default(),
        )
        .unwrap();
        let fut = ex.call(Call::new("x", "y", Value::Null));
        assert_send(&fut);
        let rows = ex.rows(Call::new("x", "y", Value::Null));
        assert_send(&rows);
        drop((fut, rows));
    }

    #[test]
    fn local_files_follows_aliases_wrappers_and_passthrough() {
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
  put:
    group: g
    class: write
    summary: put
    method: POST
    path: /put
    aliases: [send_thing]
    wrappers: [payload]
    params:
      - {name: doc, in: form, format: binary, type: string}
      - {name: note, in: form, type: string}
  talk:
    group: g
    class: write
    summary: talk
    method: POST
    path: /talk
    passthrough: true
    params:
      - {name: model, in: body, type: string}
"#,
        )
        .unwrap();
        let mut reg = Registry::default();
        reg.insert(Integration::new(m, crate::registry::Source::Builtin));
        let ex = Executor::new(
            Arc::new(reg),
            Arc::new(Credentials::default()),
            ExecConfig::default(),
        )
        .unwrap();
        let call = Call::new(
            "t",
            "send_thing",
            json!({"payload": {"doc": "a/b.txt", "note": "/etc/x"}}),
        );
        let got = ex.local_files(&call).unwrap();
        assert_eq!(
            got,
            [LocalFile {
                path: "a/b.txt".into(),
                access: FileAccess::Read,
                argument: "doc".into()
            }]
        );
        // A passthrough function accepts `save_to` as an extra property and `call` honours it.
        let call = Call::new(
            "t",
            "talk",
            json!({"model": "m", "save_to": "/etc/cron.d/x"}),
        );
        let got = ex.local_files(&call).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].access, FileAccess::Write);
        // Invalid arguments fail as `call` would, before anything is listed.
        let call = Call::new("t", "put", json!({"doc": 5}));
        assert_eq!(
            ex.local_files(&call).unwrap_err().code(),
            "validation_error"
        );
        let call = Call::new("t", "nope", json!({}));
        assert!(ex.local_files(&call).is_err());
    }
}

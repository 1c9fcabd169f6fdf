//! The one call path every front end uses: the Lua runtime, `integrations:call`, the MCP server
//! and a Rust program using kosmo as a library.
//!
//! A [`Session`] owns the services a call needs, each loaded on first use (so `return 1` parses
//! no manifest): the [`Registry`], the [`Credentials`], the [`Permissions`], the [`Docs`], the
//! [`Executor`] and, offline, one simulator per integration. [`Session::call`] runs
//! resolve -> validate (once) -> count -> permit -> file policy -> execute -> record and answers a
//! typed result or a typed [`Error`]; front ends convert at their edge (Lua into error tables,
//! the CLI into JSON). What a front end adds (counting calls against a script's limits, asking
//! on a terminal) comes in through [`Hooks`].

pub mod files;
pub mod log;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value as Json;

use crate::credentials::{Credentials, DEFAULT_ACCOUNT};
use crate::docs::Docs;
use crate::error::{Error, Result};
use crate::exec::{Call, Progress, RowStream};
use crate::exec::{CallOutput, Checked, EventSink, ExecConfig, Executor, PageOut, PageStream};
use crate::permissions::{self, Answer, Decision, Flags, Permissions};
use crate::registry::{Registry, RegistryOptions};
use crate::simulator::{OfflineOptions, RunningSimulator};

pub use files::FilePolicy;
pub use log::{CallLog, CallMeta, CallRecord};

/// How a session decides and sends calls.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// Bypass `ask` and `deny` permissions.
    pub force: bool,
    /// Refuse every write, even with `force`.
    pub read_only: bool,
    /// Build each request and return it (secrets redacted) instead of sending it.
    pub dry_run: bool,
    /// Point every account at an in-process simulator.
    pub offline: bool,
    /// Settings of those simulators.
    pub simulator: OfflineOptions,
    /// Account for calls that name none (`default` when unset).
    pub account: Option<String>,
    /// Extra manifest directories.
    pub manifest_dirs: Vec<PathBuf>,
    /// Config directory (credentials.yaml, config.yaml); `None` uses the standard lookup.
    pub config_dir: Option<PathBuf>,
    /// Directories under which calls may read and write local files (`save_to`, uploads).
    /// Empty: no local file access at all.
    pub allow_paths: Vec<PathBuf>,
}

/// Counts a call against the front end's budget; an error stops the call.
pub type CountHook = Arc<dyn Fn() -> Result<()> + Send + Sync>;
/// Answers an `ask` permission (the question is a full sentence); `None`: nobody to ask.
pub type PromptHook = Arc<dyn Fn(&str) -> Option<Answer> + Send + Sync>;

/// What a front end adds to the call path.
#[derive(Clone, Default)]
pub struct Hooks {
    /// Called once per request sent (every page of a walk too), before permissions.
    pub count_call: Option<CountHook>,
    /// Without one, an `ask` permission is refused with the command that allows it.
    pub prompt: Option<PromptHook>,
    /// Shown how long waits (polls, downloads) are going.
    pub progress: Option<Arc<dyn Progress>>,
}

/// One call, as a front end asks for it.
pub struct Request<'a> {
    pub integration: &'a str,
    /// Lua name, full name or alias.
    pub function: &'a str,
    /// `None`: the session's account, else `default`.
    pub account: Option<&'a str>,
    /// Arguments, flat or with `payload` / `query` wrappers.
    pub args: Json,
    /// How the call is named in the record (`path`); default `integrations.<name>.<function>`.
    pub label: Option<String>,
}

impl<'a> Request<'a> {
    pub fn new(integration: &'a str, function: &'a str, args: Json) -> Self {
        Request {
            integration,
            function,
            account: None,
            args,
            label: None,
        }
    }

    pub fn account(mut self, account: Option<&'a str>) -> Self {
        self.account = account;
        self
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }
}

/// A session: the services and the record of one run.
pub struct Session {
    options: SessionOptions,
    hooks: Hooks,
    registry: OnceLock<Result<Arc<Registry>>>,
    credentials: OnceLock<Result<Arc<Credentials>>>,
    permissions: OnceLock<Result<Arc<Permissions>>>,
    docs: OnceLock<Result<Docs>>,
    executor: tokio::sync::OnceCell<Result<Executor>>,
    simulators: Mutex<Vec<RunningSimulator>>,
    files: FilePolicy,
    /// `(integration, account, class)` the user allowed for the rest of the run at a prompt.
    allowed_for_run: Mutex<HashSet<(String, String, String)>>,
    log: CallLog,
}

impl Session {
    pub fn new(options: SessionOptions) -> Session {
        Session {
            files: FilePolicy::new(&options.allow_paths, options.read_only),
            options,
            hooks: Hooks::default(),
            registry: OnceLock::new(),
            credentials: OnceLock::new(),
            permissions: OnceLock::new(),
            docs: OnceLock::new(),
            executor: tokio::sync::OnceCell::new(),
            simulators: Mutex::new(Vec::new()),
            allowed_for_run: Mutex::new(HashSet::new()),
            log: CallLog::default(),
        }
    }

    pub fn with_hooks(mut self, hooks: Hooks) -> Session {
        self.hooks = hooks;
        self
    }

    pub fn options(&self) -> &SessionOptions {
        &self.options
    }

    /// The record of this session's calls.
    pub fn log(&self) -> &CallLog {
        &self.log
    }

    pub fn registry(&self) -> Result<Arc<Registry>> {
        self.registry
            .get_or_init(|| {
                Registry::load(&RegistryOptions {
                    dirs: self.options.manifest_dirs.clone(),
                    ignore_env: false,
                })
                .map(Arc::new)
            })
            .clone()
    }

    /// The registry if it was loaded (for warnings in an envelope of a run that made no call).
    pub fn loaded_registry(&self) -> Option<Arc<Registry>> {
        self.registry.get().and_then(|r| r.as_ref().ok().cloned())
    }

    pub fn credentials(&self) -> Result<Arc<Credentials>> {
        self.credentials
            .get_or_init(|| Credentials::load(self.options.config_dir.clone()).map(Arc::new))
            .clone()
    }

    pub fn permissions(&self) -> Result<Arc<Permissions>> {
        self.permissions
            .get_or_init(|| Permissions::load(self.options.config_dir.as_deref()).map(Arc::new))
            .clone()
    }

    /// The docs, with the accounts `app.integrations.<name>.<account>` resolves against.
    pub fn docs(&self) -> Result<Docs> {
        self.docs
            .get_or_init(|| {
                let registry = self.registry()?;
                let accounts = registry
                    .iter()
                    .map(|i| (i.name().to_string(), self.accounts(i.name())))
                    .collect();
                Ok(Docs::new(registry, accounts))
            })
            .clone()
    }

    /// Account names for an integration: `default`, those with credentials, and those with
    /// their own settings in `config.yaml`. The same offline, so an unknown name there is a
    /// typo to report, not an account.
    pub fn accounts(&self, integration: &str) -> Vec<String> {
        let out = match self.credentials() {
            Ok(c) => c.accounts(integration),
            Err(_) => vec![DEFAULT_ACCOUNT.into()],
        };
        match self.permissions() {
            Ok(p) => p.with_accounts(integration, out),
            Err(_) => out,
        }
    }

    /// The executor, created on first use (starting the simulators when offline).
    pub async fn executor(&self) -> Result<&Executor> {
        self.executor
            .get_or_init(|| async {
                let registry = self.registry()?;
                let creds = if self.options.offline {
                    self.options.simulator.check(&registry)?;
                    let (creds, started) = crate::simulator::start_each(
                        &registry,
                        registry.iter().map(|i| i.name().to_string()).collect(),
                        &self.options.simulator,
                    )
                    .await;
                    if let Ok(mut slot) = self.simulators.lock() {
                        slot.extend(started);
                    }
                    Arc::new(creds)
                } else {
                    self.credentials()?
                };
                let dir = self
                    .options
                    .config_dir
                    .clone()
                    .unwrap_or_else(crate::credentials::config_dir);
                let config = ExecConfig::load(&dir)?;
                let exec = Executor::new(registry, creds, config)?;
                Ok(match &self.hooks.progress {
                    Some(p) => exec.with_progress(p.clone()),
                    None => exec,
                })
            })
            .await
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The account a request names, else the session's, else `default`.
    fn account_of(&self, req: &Request<'_>) -> String {
        req.account
            .map(str::to_string)
            .or_else(|| self.options.account.clone())
            .unwrap_or_else(|| DEFAULT_ACCOUNT.into())
    }

    /// Resolve, validate, count, permit and check the local files of one call: everything
    /// before I/O. A refusal is recorded and returned.
    pub async fn start(&self, req: Request<'_>) -> Result<Pending<'_>> {
        let account = self.account_of(&req);
        let label = req
            .label
            .clone()
            .unwrap_or_else(|| format!("integrations.{}.{}", req.integration, req.function));
        let mut meta = CallMeta {
            path: label,
            function: req.function.to_string(),
            account: account.clone(),
            class: None,
        };
        let checked = async {
            let exec = self.executor().await?;
            let call = Call {
                integration: req.integration,
                function: req.function,
                account: Some(&account),
                args: req.args,
                dry_run: self.options.dry_run,
                on_event: None,
            };
            let checked = exec.check_call(&call)?;
            Ok::<_, Error>((exec, checked))
        }
        .await;
        let (exec, checked) = match checked {
            Ok(x) => x,
            Err(e) => {
                // Name the function as resolved when it was (an alias names its function).
                if let Ok(reg) = self.registry()
                    && let Some(i) = reg.get(req.integration)
                    && let Some((name, f)) = i.function(req.function)
                {
                    meta.function = name.to_string();
                    meta.class = Some(f.class);
                }
                self.log.record_failure(meta, &e);
                return Err(e);
            }
        };
        meta.function = checked.function().to_string();
        meta.class = Some(checked.class());
        let admitted = self.count().and_then(|()| {
            self.permit(permissions::Request {
                integration: req.integration,
                account: &account,
                function: checked.function(),
                class: checked.class(),
            })?;
            self.files.check(&checked.local_files())
        });
        if let Err(e) = admitted {
            self.log.record_failure(meta, &e);
            return Err(e);
        }
        Ok(Pending {
            session: self,
            exec,
            checked,
            meta,
        })
    }

    /// One call, start to finish: [`Session::start`], then [`Pending::send`].
    pub async fn call(&self, req: Request<'_>) -> Result<CallOutput> {
        self.start(req).await?.send(None).await
    }

    /// Open a JSONL function's rows: [`Session::start`], then [`Pending::rows`].
    pub async fn rows(&self, req: Request<'_>) -> Result<RowStream> {
        self.start(req).await?.rows().await
    }

    /// Walk a paginated function: [`Session::start`], then [`Pending::pages`].
    pub async fn pages(&self, req: Request<'_>) -> Result<PageWalk> {
        self.start(req).await?.pages()
    }

    /// The next page of a walk: counted as a call (the first was counted when it was opened)
    /// and recorded.
    pub async fn next_page(&self, walk: &mut PageWalk) -> Result<Option<PageOut>> {
        if walk.stream.finished() {
            return Ok(None);
        }
        if walk.fetched > 0
            && let Err(e) = self.count()
        {
            self.log.record_failure(walk.meta.clone(), &e);
            return Err(e);
        }
        walk.fetched += 1;
        let id = self.log.begin(walk.meta.clone());
        let next = walk.stream.next().await;
        self.log.finish_with(id, &next, |page| match page {
            Some(p) => (p.output.http_status, p.output.request_id.as_deref()),
            None => (None, None),
        });
        next
    }

    fn count(&self) -> Result<()> {
        match &self.hooks.count_call {
            Some(count) => count(),
            None => Ok(()),
        }
    }

    /// Decide a call by the permission policy, the flags and (for `ask`) the prompt hook; an
    /// "always" answer holds for the rest of the session. Front ends with their own kind of
    /// call (MCP tools) use it too.
    pub fn permit(&self, req: permissions::Request<'_>) -> Result<()> {
        let key = (
            req.integration.to_string(),
            req.account.to_string(),
            req.class.as_str().to_string(),
        );
        if self
            .allowed_for_run
            .lock()
            .map(|s| s.contains(&key))
            .unwrap_or(false)
        {
            return Ok(());
        }
        let perms = self.permissions()?;
        let flags = Flags {
            force: self.options.force,
            read_only: self.options.read_only,
            dry_run: self.options.dry_run,
        };
        let prompt = self.hooks.prompt.clone();
        let decision = perms.check(req, flags, &mut |q| prompt.as_ref().and_then(|p| p(q)))?;
        if decision == Decision::Confirmed(Answer::Always)
            && let Ok(mut s) = self.allowed_for_run.lock()
        {
            s.insert(key);
        }
        Ok(())
    }

    /// Stop the simulators this session started (they also stop when it is dropped).
    pub async fn shutdown(&self) {
        let sims: Vec<RunningSimulator> = match self.simulators.lock() {
            Ok(mut s) => std::mem::take(&mut *s),
            Err(_) => Vec::new(),
        };
        for sim in sims {
            sim.shutdown().await;
        }
    }
}

/// A call that passed every check and is ready to send.
pub struct Pending<'s> {
    session: &'s Session,
    exec: &'s Executor,
    checked: Checked<'s>,
    meta: CallMeta,
}

impl<'s> Pending<'s> {
    /// The function's canonical name.
    pub fn function(&self) -> &str {
        &self.meta.function
    }

    pub fn account(&self) -> &str {
        &self.meta.account
    }

    /// What the record will say about the call.
    pub fn meta(&self) -> &CallMeta {
        &self.meta
    }

    /// Send the call and record its outcome. `on_event` receives each streamed event. If the
    /// returned future is dropped before it ends, the call stays in flight in the log: the
    /// front end finishes it ([`CallLog::finish`], with the id from `in_flight`) or the run's
    /// end flushes it with what stopped the run.
    pub async fn send(self, on_event: Option<EventSink<'_>>) -> Result<CallOutput> {
        self.send_with_id(on_event, |_| {}).await
    }

    /// [`Pending::send`], telling `registered` the call's id in the log once it is in flight.
    pub async fn send_with_id(
        self,
        on_event: Option<EventSink<'_>>,
        registered: impl FnOnce(u64),
    ) -> Result<CallOutput> {
        let log = &self.session.log;
        let id = log.begin(self.meta);
        registered(id);
        let result = self
            .exec
            .call_checked(self.checked, self.session.options.dry_run, on_event)
            .await;
        log.finish_with(id, &result, |out| {
            (out.http_status, out.request_id.as_deref())
        });
        result
    }

    /// Open the rows of a JSONL function; recorded when the stream opens (or fails to).
    pub async fn rows(self) -> Result<RowStream> {
        let log = &self.session.log;
        let id = log.begin(self.meta);
        let result = self
            .exec
            .rows_checked(self.checked, self.session.options.dry_run)
            .await;
        log.finish_with(id, &result, |_| (None, None));
        result
    }

    /// Open a page walk; each page is recorded by [`Session::next_page`].
    pub fn pages(self) -> Result<PageWalk> {
        match self
            .exec
            .pages_checked(self.checked, self.session.options.dry_run)
        {
            Ok(stream) => Ok(PageWalk {
                stream,
                meta: self.meta,
                fetched: 0,
            }),
            Err(e) => {
                self.session.log.record_failure(self.meta, &e);
                Err(e)
            }
        }
    }
}

/// An open page walk, read with [`Session::next_page`].
pub struct PageWalk {
    stream: PageStream,
    meta: CallMeta,
    /// Pages fetched so far.
    fetched: u32,
}

impl PageWalk {
    pub fn meta(&self) -> &CallMeta {
        &self.meta
    }
}

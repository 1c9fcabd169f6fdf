//! Named accounts and their secrets.
//!
//! Secrets live in `<config dir>/credentials.yaml` (mode 0600), one map per integration and
//! account. A value can also come from a named environment variable (`<credential>_env`) or a
//! command's stdout (`<credential>_cmd`, like git credential helpers), so that a key never has to
//! be written to disk. The default account is overridden by the environment variables the
//! official SDKs use, named in the manifest (`credentials.<name>.env`, `account.base_url_env`).
//! Nothing here ever prints a secret: [`Secret`] redacts itself and errors only name credentials.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use indexmap::IndexMap;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::manifest::Manifest;

/// The file that holds secrets, inside the config dir.
pub const CREDENTIALS_FILE: &str = "credentials.yaml";
/// The file that holds settings (no secrets), inside the config dir.
pub const CONFIG_FILE: &str = "config.yaml";
/// The account used when a script does not name one.
pub const DEFAULT_ACCOUNT: &str = "default";

/// A secret value. Its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The value, for the one place that puts it on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where an account's settings come from (never a secret's value).
#[derive(Debug, Clone)]
pub struct AccountSources {
    /// Redacted.
    pub base_url: String,
    pub base_url_source: String,
    /// Each credential the manifest declares, in order.
    pub credentials: Vec<(String, CredentialSource)>,
}

/// Where one credential's value would come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// Stored in the credentials file.
    Stored,
    /// From this environment variable, which is set.
    Env(String),
    /// From this environment variable, which is not set: the credential is missing.
    EnvUnset(String),
    /// From a `<credential>_cmd` helper (not run to list it).
    Command,
    Missing,
}

impl CredentialSource {
    /// `set`, `env`, `command` or `missing`: the machine-readable state.
    pub fn state(&self) -> &'static str {
        match self {
            CredentialSource::Stored => "set",
            CredentialSource::Env(_) => "env",
            CredentialSource::EnvUnset(_) | CredentialSource::Missing => "missing",
            CredentialSource::Command => "command",
        }
    }

    /// A phrase for people: `set`, `from env ANTHROPIC_API_KEY`, ...
    pub fn describe(&self) -> String {
        match self {
            CredentialSource::Stored => "set (stored)".into(),
            CredentialSource::Env(v) => format!("from env {v}"),
            CredentialSource::EnvUnset(v) => format!("missing: env {v} is not set"),
            CredentialSource::Command => "from a command (<credential>_cmd)".into(),
            CredentialSource::Missing => "missing".into(),
        }
    }
}

/// One resolved account of one integration.
#[derive(Clone)]
pub struct Account {
    pub integration: String,
    pub name: String,
    /// May carry `user:password@`; show it only through [`redact_url`].
    pub base_url: String,
    pub secrets: std::collections::HashMap<String, Secret>,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("integration", &self.integration)
            .field("name", &self.name)
            .field("base_url", &redact_url(&self.base_url))
            .field("secrets", &self.secrets)
            .finish()
    }
}

/// Replace URL credentials in `text` (every spelling the URL parser accepts): see
/// [`crate::redact::redact_url`].
pub fn redact_url(text: &str) -> String {
    crate::redact::redact_url(text)
}

/// The password in a URL's userinfo, raw and percent-decoded, for scrubbing text that echoes
/// it outside a URL (a server's error message, say).
pub fn url_password(url: &str) -> Vec<String> {
    let mut raw: Vec<String> = Vec::new();
    // As written (`scheme://user:pw@host`)...
    if let Some((_, tail)) = url.split_once("://") {
        let authority = tail.split(['/', '?', '#']).next().unwrap_or("");
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            // With no `:`, the lone user name is the secret (a token).
            raw.push(
                userinfo
                    .split_once(':')
                    .map_or(userinfo, |(_, p)| p)
                    .to_string(),
            );
        }
    }
    // ...and as the URL parser reads it, which also accepts `http:/user:pw@host`, backslashes,
    // and spaces or quotes in the password (it percent-encodes them).
    if let Ok(u) = reqwest::Url::parse(url) {
        match u.password() {
            Some(p) => raw.push(p.to_string()),
            None if !u.username().is_empty() => raw.push(u.username().to_string()),
            None => {}
        }
    }
    let mut out: Vec<String> = Vec::new();
    for password in raw {
        if let Ok(decoded) = percent_encoding::percent_decode_str(&password).decode_utf8()
            && decoded != password.as_str()
        {
            out.push(decoded.into_owned());
        }
        out.push(password);
    }
    out.retain(|p| !p.is_empty());
    out.sort();
    out.dedup();
    out
}

/// The raw entries of `credentials.yaml`: integration → account → field → value.
pub type CredentialFile = IndexMap<String, IndexMap<String, IndexMap<String, String>>>;

/// Where calls go: the configured accounts, or offline simulators.
#[derive(Debug, Clone, Default)]
pub enum Mode {
    /// Accounts from `credentials.yaml` and the environment.
    #[default]
    Live,
    /// Every account of every integration points at one simulator, with placeholder keys.
    Offline(String),
    /// One simulator per integration (name to base URL), with placeholder keys; an integration
    /// missing from the map fails instead of reaching another integration's simulator.
    OfflineEach(std::collections::BTreeMap<String, String>),
}

/// All configured accounts.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    pub config_dir: PathBuf,
    /// Real accounts, or simulators with placeholder keys.
    pub mode: Mode,
    file: Arc<CredentialFile>,
    /// Outputs of `<credential>_cmd` helpers, run at most once per process.
    cmd_cache: Arc<Mutex<HashMap<String, String>>>,
    env: EnvSource,
}

/// How long a `<credential>_cmd` helper may run. Like git's credential helpers it should answer
/// at once; one that hangs (waiting on a prompt nobody sees) must not hang every call.
pub const HELPER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Run a credential helper with `sh -c` in its own process group, capturing stdout and stderr,
/// and kill the whole group (the shell and what it started) when it overruns `timeout`.
fn run_helper(
    cmd: &str,
    timeout: std::time::Duration,
) -> std::result::Result<std::process::Output, String> {
    use std::io::Read;
    #[cfg(unix)]
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new("sh");
    command
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    #[cfg(unix)]
    command.process_group(0);
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run the command: {e}"))?;
    // Drain both pipes on threads, so a chatty helper cannot block on a full pipe.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let started = std::time::Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < timeout => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Ok(None) => {
                // The group id is the child's pid (process_group(0)); `kill -- -PGID` ends the
                // shell and everything it started, then the child is reaped.
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", child.id())])
                    .stderr(std::process::Stdio::null())
                    .status();
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "the command did not finish within {}s and was stopped",
                    timeout.as_secs()
                ));
            }
            Err(e) => return Err(format!("cannot wait for the command: {e}")),
        }
    };
    Ok(std::process::Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// `<dir>/config.yaml` as a JSON value: `{}` when the file is missing or empty, a `config_error`
/// naming the file when it is not YAML. The one reader of that file; each section (`http`,
/// `integrations`) is interpreted by its owner.
pub fn read_config_yaml(dir: &Path) -> Result<serde_json::Value> {
    let path = dir.join(CONFIG_FILE);
    match std::fs::read_to_string(&path) {
        Ok(t) if t.trim().is_empty() => Ok(serde_json::json!({})),
        Ok(t) => {
            serde_yaml::from_str(&t).map_err(|e| Error::config(format!("{}: {e}", path.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(serde_json::json!({})),
        Err(e) => Err(Error::io(&path, e)),
    }
}

/// The config directory: `$KOSMO_CONFIG_DIR`, else `$XDG_CONFIG_HOME/kosmo`, else `~/.config/kosmo`.
pub fn config_dir() -> PathBuf {
    let non_empty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(d) = non_empty("KOSMO_CONFIG_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = non_empty("XDG_CONFIG_HOME") {
        return PathBuf::from(d).join("kosmo");
    }
    // Without $HOME, ask the password database (std::env::home_dir); a config dir under the
    // current directory would scatter secrets into whatever project the command ran in, so the
    // last resort is the system temp dir's private-looking corner, and a warning.
    let home = non_empty("HOME")
        .map(PathBuf::from)
        .or_else(std::env::home_dir);
    match home {
        Some(h) => h.join(".config").join("kosmo"),
        None => {
            let dir = std::env::temp_dir().join("kosmo-config");
            tracing::warn!(
                "neither KOSMO_CONFIG_DIR nor HOME is set; using {} (set KOSMO_CONFIG_DIR)",
                dir.display()
            );
            dir
        }
    }
}

impl Credentials {
    /// Load from `dir`, else `$KOSMO_CONFIG_DIR`, else `~/.config/kosmo`. A missing file is no
    /// error (environment variables may carry everything).
    pub fn load(dir: Option<PathBuf>) -> Result<Self> {
        let config_dir = dir.unwrap_or_else(config_dir);
        let path = config_dir.join(CREDENTIALS_FILE);
        let file = read_credential_file(&path)?;
        Ok(Credentials::from_entries(config_dir, file))
    }

    /// Point every account at a simulator, with each credential's placeholder key.
    pub fn offline(base_url: impl Into<String>) -> Self {
        Credentials {
            config_dir: PathBuf::new(),
            mode: Mode::Offline(base_url.into()),
            ..Default::default()
        }
    }

    /// Offline mode with one simulator per integration (`integration name -> base URL`); an
    /// integration missing from the map fails instead of reaching another integration's simulator.
    pub fn offline_each(urls: std::collections::BTreeMap<String, String>) -> Self {
        Credentials {
            config_dir: PathBuf::new(),
            mode: Mode::OfflineEach(urls),
            ..Default::default()
        }
    }

    /// Build from in-memory entries (tests and embedders); no file is read.
    pub fn from_entries(config_dir: PathBuf, file: CredentialFile) -> Self {
        Credentials {
            config_dir,
            mode: Mode::Live,
            file: Arc::new(file),
            cmd_cache: Default::default(),
            env: EnvSource::default(),
        }
    }

    /// Read environment overrides from `env` instead of the process environment.
    pub fn with_env(mut self, env: EnvSource) -> Self {
        self.env = env;
        self
    }

    /// Account names configured for an integration; always includes `default`, which comes first.
    pub fn accounts(&self, integration: &str) -> Vec<String> {
        let mut out = vec![DEFAULT_ACCOUNT.to_string()];
        if let Some(accounts) = self.file.get(integration) {
            out.extend(accounts.keys().filter(|a| *a != DEFAULT_ACCOUNT).cloned());
        }
        out
    }

    /// Resolve an account: base URL and every secret that is configured, environment overrides
    /// applied. Credentials that are not configured are simply absent; [`Credentials::secret`]
    /// says what is missing and how to set it.
    pub fn resolve(&self, manifest: &Manifest, account: &str) -> Result<Account> {
        let base_url = self.base_url(manifest, account)?;
        let mut secrets = HashMap::new();
        for name in manifest.credentials.keys() {
            if let Some(s) = self.lookup(manifest, account, name)? {
                secrets.insert(name.clone(), s);
            }
        }
        Ok(Account {
            integration: manifest.name.clone(),
            name: account.into(),
            base_url,
            secrets,
        })
    }

    /// The base URL of an account, without a trailing slash or the manifest's strippable suffix.
    pub fn base_url(&self, manifest: &Manifest, account: &str) -> Result<String> {
        match &self.mode {
            Mode::Live => {}
            Mode::Offline(url) => return Ok(normalize_base_url(manifest, url)),
            Mode::OfflineEach(urls) => {
                return match urls.get(&manifest.name) {
                    Some(url) => Ok(normalize_base_url(manifest, url)),
                    None => Err(Error::config(format!(
                        "offline mode has no simulator for integration '{}'",
                        manifest.name
                    ))),
                };
            }
        }
        let entry = self.entry(manifest, account)?;
        let from_env = (account == DEFAULT_ACCOUNT)
            .then(|| {
                manifest
                    .account
                    .base_url_env
                    .as_deref()
                    .and_then(|v| self.env.get(v))
            })
            .flatten();
        let url = from_env
            .or_else(|| entry.and_then(|e| e.get("url").cloned()))
            .unwrap_or_else(|| manifest.base_url.clone());
        Ok(normalize_base_url(manifest, &url))
    }

    /// Where each of an account's credentials and its base URL come from, without reading a
    /// secret's value or running a helper: what `integrations:accounts` shows. Live mode only
    /// (offline accounts are placeholders).
    pub fn describe(&self, manifest: &Manifest, account: &str) -> Result<AccountSources> {
        let entry = self.entry(manifest, account)?;
        let default = account == DEFAULT_ACCOUNT;
        let mut credentials = Vec::new();
        for (name, cred) in &manifest.credentials {
            let env_var = cred.env.as_deref().filter(|_| default);
            let source = if let Some(var) = env_var.filter(|v| self.env.get(v).is_some()) {
                CredentialSource::Env(var.to_string())
            } else if let Some(e) = entry {
                if e.get(name).is_some_and(|v| !v.is_empty()) {
                    CredentialSource::Stored
                } else if let Some(var) = e.get(&format!("{name}_env")) {
                    if self.env.get(var).is_some() {
                        CredentialSource::Env(var.clone())
                    } else {
                        CredentialSource::EnvUnset(var.clone())
                    }
                } else if e.contains_key(&format!("{name}_cmd")) {
                    CredentialSource::Command
                } else {
                    CredentialSource::Missing
                }
            } else {
                CredentialSource::Missing
            };
            credentials.push((name.clone(), source));
        }
        let url_env = manifest
            .account
            .base_url_env
            .as_deref()
            .filter(|v| default && self.env.get(v).is_some());
        let base_url_source = match (url_env, entry.and_then(|e| e.get("url"))) {
            (Some(var), _) => format!("env {var}"),
            (None, Some(_)) => "configured".to_string(),
            (None, None) => "manifest default".to_string(),
        };
        Ok(AccountSources {
            base_url: redact_url(&self.base_url(manifest, account)?),
            base_url_source,
            credentials,
        })
    }

    /// One credential of an account, or `MissingCredential` naming the integration, account and
    /// credential, with how to set it.
    pub fn secret(&self, manifest: &Manifest, account: &str, credential: &str) -> Result<Secret> {
        if let Some(s) = self.lookup(manifest, account, credential)? {
            return Ok(s);
        }
        Err(self.missing(manifest, account, credential))
    }

    fn entry(
        &self,
        manifest: &Manifest,
        account: &str,
    ) -> Result<Option<&IndexMap<String, String>>> {
        let entry = self.file.get(&manifest.name).and_then(|a| a.get(account));
        if entry.is_none() && account != DEFAULT_ACCOUNT {
            return Err(Error::config(format!(
                "{} has no account '{account}' (configured: {}); add it with `kosmo integrations:configure {} --account {account} --set <credential>=...`",
                manifest.name,
                self.accounts(&manifest.name).join(", "),
                manifest.name
            )));
        }
        Ok(entry)
    }

    fn lookup(
        &self,
        manifest: &Manifest,
        account: &str,
        credential: &str,
    ) -> Result<Option<Secret>> {
        let cred = manifest.credentials.get(credential).ok_or_else(|| {
            Error::config(format!(
                "{} declares no credential type '{credential}'",
                manifest.name
            ))
        })?;
        if !matches!(self.mode, Mode::Live) {
            let value = cred.placeholder.clone().unwrap_or_else(|| {
                format!(
                    "{}offline-placeholder",
                    cred.prefix.as_deref().unwrap_or("")
                )
            });
            return Ok(Some(Secret::new(value)));
        }
        if account == DEFAULT_ACCOUNT
            && let Some(v) = cred.env.as_deref().and_then(|v| self.env.get(v))
        {
            return Ok(Some(Secret::new(v)));
        }
        let Some(entry) = self.entry(manifest, account)? else {
            return Ok(None);
        };
        if let Some(v) = entry.get(credential).filter(|v| !v.is_empty()) {
            return Ok(Some(Secret::new(v.clone())));
        }
        if let Some(var) = entry.get(&format!("{credential}_env")) {
            return Ok(self.env.get(var).map(Secret::new));
        }
        if let Some(cmd) = entry.get(&format!("{credential}_cmd")) {
            return self
                .run_helper(manifest, account, credential, cmd)
                .map(Some);
        }
        Ok(None)
    }

    fn run_helper(
        &self,
        manifest: &Manifest,
        account: &str,
        credential: &str,
        cmd: &str,
    ) -> Result<Secret> {
        if let Ok(cache) = self.cmd_cache.lock()
            && let Some(v) = cache.get(cmd)
        {
            return Ok(Secret::new(v.clone()));
        }
        let what = format!("{} account '{account}' {credential}_cmd", manifest.name);
        // stderr is captured, not inherited: helpers like `pass` or `op` may print the secret or
        // other credentials there. Only a scrubbed first line is ever shown.
        let out =
            run_helper(cmd, HELPER_TIMEOUT).map_err(|e| Error::config(format!("{what}: {e}")))?;
        let stderr_line = || {
            let mut known: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| l.trim().to_string())
                .collect();
            // Every secret value this manifest's accounts hold (a helper may print another
            // account's key), from the file, the environment and earlier helpers.
            for entry in self
                .file
                .get(&manifest.name)
                .into_iter()
                .flat_map(|a| a.values())
            {
                for (k, v) in entry {
                    let env_named = k
                        .strip_suffix("_env")
                        .is_some_and(|c| manifest.credentials.contains_key(c));
                    if manifest.credentials.contains_key(k) {
                        known.push(v.clone());
                    } else if k == "url" {
                        known.extend(url_password(v));
                    } else if env_named && let Some(val) = self.env.get(v) {
                        known.push(val);
                    }
                }
            }
            for cred in manifest.credentials.values() {
                if let Some(val) = cred.env.as_deref().and_then(|v| self.env.get(v)) {
                    known.push(val);
                }
            }
            if let Ok(cache) = self.cmd_cache.lock() {
                known.extend(cache.values().cloned());
            }
            let prefixes: Vec<&str> = manifest
                .credentials
                .values()
                .filter_map(|c| c.prefix.as_deref())
                .collect();
            first_line_scrubbed(&out.stderr, &known, &prefixes)
        };
        if !out.status.success() {
            let status = match out.status.code() {
                Some(code) => format!("exit status {code}"),
                None => "killed by a signal".to_string(),
            };
            return Err(Error::config(match stderr_line() {
                Some(line) => format!("{what}: the command failed ({status}): {line}"),
                None => format!("{what}: the command failed ({status}) and printed no error"),
            }));
        }
        if let Some(line) = stderr_line() {
            tracing::debug!("{what}: the command said on stderr: {line}");
        }
        let value = String::from_utf8(out.stdout)
            .map_err(|_| Error::config(format!("{what}: the command printed non-UTF-8 output")))?
            .trim()
            .to_string();
        if value.is_empty() {
            return Err(Error::config(format!(
                "{what}: the command printed nothing"
            )));
        }
        if let Ok(mut cache) = self.cmd_cache.lock() {
            cache.insert(cmd.to_string(), value.clone());
        }
        Ok(Secret::new(value))
    }

    /// The error for a credential that is not configured, with how to set it.
    fn missing(&self, manifest: &Manifest, account: &str, credential: &str) -> Error {
        let cred = &manifest.credentials[credential];
        let entry = self.file.get(&manifest.name).and_then(|a| a.get(account));
        let var = entry.and_then(|e| e.get(&format!("{credential}_env")));
        let mut hint = String::new();
        let have: Vec<&str> = manifest
            .credentials
            .iter()
            .filter(|(name, _)| *name != credential)
            .filter(|(name, _)| matches!(self.lookup(manifest, account, name), Ok(Some(_))))
            .map(|(_, c)| c.label.as_str())
            .collect();
        if !have.is_empty() {
            hint.push_str(&format!(
                "this function needs the {} ({credential}); the account only has the {}. ",
                cred.label,
                have.join(", ")
            ));
        }
        if let Some(var) = var {
            hint.push_str(&format!(
                "the environment variable {var} named by {credential}_env is not set; "
            ));
        }
        if account == DEFAULT_ACCOUNT {
            let own = cred.hint.trim();
            hint.push_str(own);
            if !own.contains("integrations:configure") {
                hint.truncate(hint.trim_end_matches('.').len());
                hint.push_str(&format!(
                    ", or run `kosmo integrations:configure {} --set {credential}=-` (reads the value from stdin)",
                    manifest.name
                ));
            }
        } else {
            hint.push_str(&format!(
                "run `kosmo integrations:configure {} --account {account} --set {credential}=-` (reads the value from stdin), or set {credential}_env / {credential}_cmd for that account",
                manifest.name
            ));
        }
        Error::MissingCredential {
            integration: manifest.name.clone(),
            account: account.into(),
            credential: credential.into(),
            hint,
        }
    }
}

/// The first non-blank line of a helper's stderr, at most 200 characters, with every known
/// secret (4 characters or more), every URL password, and anything that looks like a key (it
/// starts with a credential's `prefix`, e.g. `sk-ant-api`) replaced by `[redacted]`. The last
/// rule catches a helper that prints a key we have never seen.
fn first_line_scrubbed(stderr: &[u8], secrets: &[String], prefixes: &[&str]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    let secrets: Vec<&str> = secrets.iter().map(|s| s.trim()).collect();
    // Whole secrets and their long fragments (crate::redact's rules), and URL credentials.
    let mut line = crate::redact::Redactor::new(&secrets).redact(line);
    for prefix in prefixes.iter().filter(|p| p.len() >= 4) {
        line = redact_prefixed(&line, prefix);
    }
    if line.chars().count() > 200 {
        line = line.chars().take(200).collect::<String>() + "...";
    }
    Some(line)
}

/// Replace every token that starts with `prefix` (up to whitespace or a quote) by `[redacted]`.
fn redact_prefixed(text: &str, prefix: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(prefix) {
        out.push_str(&rest[..i]);
        out.push_str("[redacted]");
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`'))
            .unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Where environment variables are read from: the process environment, or a fixed map (tests
/// and embedders that must not depend on the process environment).
#[derive(Clone, Default)]
pub struct EnvSource(Option<Arc<HashMap<String, String>>>);

impl EnvSource {
    /// A fixed environment instead of the process's.
    pub fn fixed(vars: HashMap<String, String>) -> Self {
        EnvSource(Some(Arc::new(vars)))
    }

    /// A non-blank value of `name`.
    pub fn get(&self, name: &str) -> Option<String> {
        let v = match &self.0 {
            Some(map) => map.get(name).cloned(),
            None => std::env::var(name).ok(),
        };
        v.filter(|v| !v.trim().is_empty())
    }
}

impl std::fmt::Debug for EnvSource {
    // The values may be secrets: never print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "EnvSource(fixed)"
        } else {
            "EnvSource(process)"
        })
    }
}

/// Strip a trailing slash and the manifest's suffix (`/v1`), which users often include.
pub fn normalize_base_url(manifest: &Manifest, url: &str) -> String {
    let mut url = url.trim().trim_end_matches('/');
    if let Some(suffix) = manifest.account.strip_base_url_suffix.as_deref() {
        let suffix = suffix.trim_end_matches('/');
        if !suffix.is_empty()
            && let Some(stripped) = url.strip_suffix(suffix)
        {
            url = stripped.trim_end_matches('/');
        }
    }
    url.to_string()
}

/// Read `credentials.yaml`; missing is empty. Warns when group or others can read it.
pub fn read_credential_file(path: &Path) -> Result<CredentialFile> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(CredentialFile::new()),
        Err(e) => return Err(Error::io(path, e)),
    };
    warn_if_readable(path);
    if text.trim().is_empty() {
        return Ok(CredentialFile::new());
    }
    // The YAML error's own text could quote a secret from the file: report only its location.
    let raw: Value = serde_yaml::from_str(&text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!("line {} column {}", l.line(), l.column()))
            .unwrap_or_else(|| "document".into());
        Error::config(format!("{}: {at}: not valid YAML", path.display()))
    })?;
    parse_credential_value(path, &raw)
}

fn parse_credential_value(path: &Path, raw: &Value) -> Result<CredentialFile> {
    let shape = || {
        Error::config(format!(
            "{}: expected `<integration>: {{<account>: {{<field>: <value>}}}}`",
            path.display()
        ))
    };
    let mut out = CredentialFile::new();
    let Value::Object(integrations) = raw else {
        return if raw.is_null() { Ok(out) } else { Err(shape()) };
    };
    for (integ, accounts) in integrations {
        let mut accs = IndexMap::new();
        let Value::Object(accounts) = accounts else {
            if accounts.is_null() {
                continue;
            }
            return Err(shape());
        };
        for (acct, fields) in accounts {
            let mut map = IndexMap::new();
            match fields {
                Value::Null => {}
                Value::Object(fields) => {
                    for (k, v) in fields {
                        let v = match v {
                            Value::String(s) => s.clone(),
                            Value::Number(n) => n.to_string(),
                            Value::Bool(b) => b.to_string(),
                            Value::Null => continue,
                            _ => {
                                return Err(Error::config(format!(
                                    "{}: {integ}.{acct}.{k} must be a string",
                                    path.display()
                                )));
                            }
                        };
                        map.insert(k.clone(), v);
                    }
                }
                _ => return Err(shape()),
            }
            accs.insert(acct.clone(), map);
        }
        out.insert(integ.clone(), accs);
    }
    Ok(out)
}

#[cfg(unix)]
fn warn_if_readable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                "{} holds secrets but is readable by group or others (mode {:o}); run `chmod 600 {}`",
                path.display(),
                mode & 0o777,
                path.display()
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable(_path: &Path) {}

/// Create `dir` (and its parents) if missing. The config dir holds secrets: new directories
/// are the owner's alone (0700 on Unix).
pub fn create_private_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| Error::io(dir, e))
}

/// Write a file that only its owner may read (mode 0600 on Unix), atomically via a rename.
pub fn write_private(path: &Path, contents: &str) -> Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        create_private_dir(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).map_err(|e| Error::io(&tmp, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::io(&tmp, e))?;
    }
    f.write_all(contents.as_bytes())
        .map_err(|e| Error::io(&tmp, e))?;
    f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Serialize the credential entries back to YAML.
pub fn credential_file_yaml(file: &CredentialFile) -> Result<String> {
    serde_yaml::to_string(file)
        .map_err(|e| Error::config(format!("cannot encode credentials: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest::from_yaml(
            "t.yaml",
            r#"
name: credtest
label: T
summary: test
category: testing
base_url: https://api.example.invalid
credentials:
  api_key: {label: API key, header: x-api-key, env: KOSMO_CREDTEST_API_KEY, hint: "set KOSMO_CREDTEST_API_KEY", placeholder: sk-test-placeholder}
  admin_key: {label: Admin API key, header: x-api-key, env: KOSMO_CREDTEST_ADMIN_KEY, hint: "set KOSMO_CREDTEST_ADMIN_KEY"}
account:
  base_url_env: KOSMO_CREDTEST_BASE_URL
  strip_base_url_suffix: /v1
functions:
  f:
    group: g
    class: read
    summary: f
    method: GET
    path: /f
    credential: api_key
"#,
        )
        .unwrap()
    }

    fn creds(yaml: &str) -> Credentials {
        let raw: Value = serde_yaml::from_str(yaml).unwrap();
        Credentials::from_entries(
            PathBuf::new(),
            parse_credential_value(Path::new("c.yaml"), &raw).unwrap(),
        )
    }

    #[test]
    fn a_helpers_stderr_is_scrubbed_of_every_known_secret_and_its_fragments() {
        let m = manifest();
        let env_key = "sk-env-0123456789abcdefghijklmnop";
        let other = "sk-other-ZYXWVUTSRQPONMLKJIHGFEDCBA";
        let yaml = format!(
            "credtest:\n  other:\n    api_key: {other}\n  work:\n    admin_key_cmd: \"echo 'failed: {} and {} ok' >&2; exit 3\"\n",
            &env_key[..env_key.len() - 4],
            &other[6..]
        );
        let c = creds(&yaml).with_env(EnvSource::fixed(HashMap::from([(
            "KOSMO_CREDTEST_API_KEY".to_string(),
            env_key.to_string(),
        )])));
        let msg = c.secret(&m, "work", "admin_key").unwrap_err().to_string();
        assert!(
            msg.contains("failed: [redacted] and [redacted] ok"),
            "{msg}"
        );
        assert!(
            !msg.contains("0123456789") && !msg.contains("ONMLKJ"),
            "{msg}"
        );
    }

    #[test]
    fn failing_helpers_report_status_and_a_scrubbed_stderr_line() {
        let m = manifest();
        let c = creds(
            "credtest:\n  work:\n    api_key: sk-file-SECRET1\n    admin_key_cmd: \"echo sk-partial-SECRET2; echo 'denied sk-file-SECRET1 sk-partial-SECRET2' >&2; echo second-line >&2; exit 3\"\n  quiet:\n    api_key_cmd: \"exit 1\"\n",
        );
        let err = c.secret(&m, "work", "admin_key").unwrap_err();
        assert_eq!(err.code(), "config_error");
        let msg = err.to_string();
        assert!(msg.contains("exit status 3"), "{msg}");
        assert!(msg.contains("denied [redacted] [redacted]"), "{msg}");
        assert!(
            !msg.contains("SECRET") && !msg.contains("second-line"),
            "{msg}"
        );
        let msg = c.secret(&m, "quiet", "api_key").unwrap_err().to_string();
        assert!(
            msg.contains("exit status 1") && msg.contains("printed no error"),
            "{msg}"
        );
        assert_eq!(
            first_line_scrubbed(b"\n  x https://u:pw@h y\n", &[], &[]).as_deref(),
            Some("x https://u:[redacted]@h y")
        );
        // A key the helper printed that we have never seen still looks like a key.
        assert_eq!(
            first_line_scrubbed(
                b"token sk-ant-api03-LEAKME locked; 'sk-ant-admin01-X' too",
                &[],
                &["sk-ant-api", "sk-ant-admin"]
            )
            .as_deref(),
            Some("token [redacted] locked; '[redacted]' too")
        );
    }

    #[test]
    fn url_passwords_are_redacted_wherever_a_url_is_shown() {
        assert_eq!(
            redact_url("GET http://user:PASS@host:8/v1/x?a=b failed"),
            "GET http://user:[redacted]@host:8/v1/x?a=b failed"
        );
        assert_eq!(
            redact_url("(https://u:p%40ss:w@h) and http://plain/x and ftp://only-user@h"),
            "(https://u:[redacted]@h) and http://plain/x and ftp://[redacted]@h"
        );
        assert_eq!(redact_url("no url here"), "no url here");
        assert_eq!(redact_url("tail://"), "tail://");
        assert_eq!(url_password("http://u:p%40ss@h/x"), ["p%40ss", "p@ss"]);
        assert_eq!(url_password("http:/u:PW1@h/x"), ["PW1"]);
        assert_eq!(url_password("http://u:pa ss@h/x"), ["pa ss", "pa%20ss"]);
        assert!(url_password("http://h/x@y").is_empty());
        let acct = Account {
            integration: "i".into(),
            name: "n".into(),
            base_url: "http://u:hunter22@h".into(),
            secrets: HashMap::new(),
        };
        let shown = format!("{acct:?}");
        assert!(
            !shown.contains("hunter22") && shown.contains("u:[redacted]@h"),
            "{shown}"
        );
    }

    #[test]
    fn file_values_env_indirection_and_commands() {
        let m = manifest();
        let c = creds(
            "credtest:\n  work:\n    api_key: sk-file\n    admin_key_cmd: \"printf ' sk-from-cmd\\n'\"\n    url: http://127.0.0.1:9/v1/\n  other:\n    api_key_env: KOSMO_CREDTEST_UNSET_VAR\n",
        );
        let acct = c.resolve(&m, "work").unwrap();
        assert_eq!(acct.secrets["api_key"].expose(), "sk-file");
        assert_eq!(acct.secrets["admin_key"].expose(), "sk-from-cmd");
        assert_eq!(acct.base_url, "http://127.0.0.1:9");
        assert_eq!(c.accounts("credtest"), vec!["default", "work", "other"]);
        let err = c.secret(&m, "other", "api_key").unwrap_err();
        assert_eq!(err.code(), "missing_credential");
        let msg = err.to_string();
        assert!(
            msg.contains("credtest account 'other' has no api_key"),
            "{msg}"
        );
        assert!(msg.contains("KOSMO_CREDTEST_UNSET_VAR"), "{msg}");
        let err = c.resolve(&m, "nope").unwrap_err().to_string();
        assert!(err.contains("no account 'nope'"), "{err}");
    }

    #[test]
    fn admin_function_with_only_an_api_key_says_it_needs_the_admin_key() {
        let m = manifest();
        let c = creds("credtest:\n  work:\n    api_key: sk-file\n");
        let msg = c.secret(&m, "work", "admin_key").unwrap_err().to_string();
        assert!(msg.contains("needs the Admin API key (admin_key)"), "{msg}");
        assert!(msg.contains("only has the API key"), "{msg}");
        assert!(!msg.contains("sk-file"), "{msg}");
    }

    #[test]
    fn a_hanging_helper_is_stopped_with_everything_it_started() {
        let marker = std::env::temp_dir().join(format!("kosmo-helper-{}", std::process::id()));
        let cmd = format!("(sleep 3; touch {}) & sleep 30", marker.display());
        let err = run_helper(&cmd, std::time::Duration::from_millis(300)).unwrap_err();
        assert!(err.contains("did not finish within"), "{err}");
        std::thread::sleep(std::time::Duration::from_millis(3500));
        assert!(
            !marker.exists(),
            "the helper's own children were killed too"
        );
        let out = run_helper("echo sk-ant-api03-x; echo oops >&2", HELPER_TIMEOUT).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "sk-ant-api03-x"
        );
        assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), "oops");
    }

    #[test]
    fn offline_each_routes_every_integration_to_its_own_simulator() {
        let m = Manifest::from_yaml(
            "t.yaml",
            "name: t\nlabel: T\nsummary: s\ncategory: c\nbase_url: http://x.invalid\ncredentials: {}\nfunctions: {f: {group: g, class: read, summary: s, method: GET, path: /f}}\n",
        )
        .unwrap();
        let mut urls = std::collections::BTreeMap::new();
        urls.insert("t".to_string(), "http://127.0.0.1:7/".to_string());
        assert_eq!(
            Credentials::offline_each(urls)
                .base_url(&m, "default")
                .unwrap(),
            "http://127.0.0.1:7"
        );
        let none = Credentials::offline_each(Default::default());
        assert_eq!(
            none.base_url(&m, "default").unwrap_err().code(),
            "config_error"
        );
    }

    #[test]
    fn offline_uses_placeholders() {
        let m = manifest();
        let c = Credentials::offline("http://127.0.0.1:5/");
        let a = c.resolve(&m, "default").unwrap();
        assert_eq!(a.base_url, "http://127.0.0.1:5");
        assert_eq!(a.secrets["api_key"].expose(), "sk-test-placeholder");
        assert_eq!(format!("{:?}", a.secrets["api_key"]), "Secret([redacted])");
    }

    #[cfg(unix)]
    #[test]
    fn private_files_are_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub").join(CREDENTIALS_FILE);
        write_private(&p, "credtest:\n  default:\n    api_key: sk-x\n").unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let c = Credentials::load(Some(p.parent().unwrap().to_path_buf())).unwrap();
        assert_eq!(c.accounts("credtest"), vec!["default"]);
    }
}

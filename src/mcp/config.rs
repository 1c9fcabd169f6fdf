//! Which MCP servers are configured, and where each comes from.
//!
//! Three sources, read in this order; the first that defines a name wins (a later definition of
//! the same name is listed by `mcp:list` as shadowed):
//!
//! 1. `.mcp.json` in the working directory (the project file agent tools use);
//! 2. `mcp.servers` in kosmo's `config.yaml` (the config directory);
//! 3. `mcp.json` in the config directory (the same format as `.mcp.json`, for the user).
//!
//! The `.mcp.json` format is `{"mcpServers": {"NAME": {"command", "args", "env", "cwd"}}}` for a
//! child process (stdio) and `{"type": "http", "url", "headers"}` for streamable HTTP. `${VAR}` and
//! `${VAR:-default}` are expanded in `command`, `args`, `env`, `cwd`, `url` and `headers`, like
//! agent tools do; a variable that is unset and has no default makes the server unusable (its
//! status says which variable).
//!
//! kosmo's own settings for a server (never taken from a project file, which should not grant
//! itself writes) live in `config.yaml` under `mcp.servers.NAME`: `permissions: {read, write}`
//! and `timeout` (seconds per call). An entry there with neither `command` nor `url` only adds
//! these settings to a server defined in a `.mcp.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value as Json, json};

use crate::error::{Error, Result};
use crate::permissions::Policy;

/// The project file, in the working directory.
pub const PROJECT_FILE: &str = ".mcp.json";
/// The user's file, in the config directory.
pub const USER_FILE: &str = "mcp.json";

/// Seconds a call may take when the config says nothing.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Seconds a server may take to start and answer `initialize`.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// How kosmo talks to a server.
#[derive(Debug, Clone, PartialEq)]
pub enum Transport {
    /// A child process speaking JSON-RPC on stdin/stdout.
    Stdio {
        command: String,
        args: Vec<String>,
        env: BTreeMap<String, String>,
        cwd: Option<PathBuf>,
    },
    /// Streamable HTTP.
    Http {
        url: String,
        headers: BTreeMap<String, String>,
    },
}

impl Transport {
    pub fn kind(&self) -> &'static str {
        match self {
            Transport::Stdio { .. } => "stdio",
            Transport::Http { .. } => "http",
        }
    }
}

/// Where a server's definition came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Source {
    /// `project` (`.mcp.json`), `config` (`config.yaml`) or `user` (`mcp.json`).
    pub scope: &'static str,
    pub path: PathBuf,
}

impl Source {
    pub fn describe(&self) -> String {
        format!("{} ({})", self.scope, self.path.display())
    }
}

/// A configured server.
#[derive(Debug, Clone)]
pub struct Server {
    pub name: String,
    /// Expanded; `Err` names what made it unusable (an unset variable, a bad entry).
    pub transport: std::result::Result<Transport, String>,
    /// The entry as written (before `${VAR}` expansion), for `mcp:list`; env and header values
    /// are shown only as names.
    pub raw: Json,
    pub source: Source,
    pub timeout: Duration,
    pub read: Option<Policy>,
    pub write: Option<Policy>,
}

/// Every configured server, by name, plus the definitions that lost to an earlier source.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub servers: BTreeMap<String, Server>,
    /// `(name, source)` of definitions shadowed by an earlier source.
    pub shadowed: Vec<(String, Source)>,
    /// Problems with a whole file (not JSON, wrong shape).
    pub problems: Vec<String>,
}

/// One entry as written in any of the files.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    cwd: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    timeout: Option<f64>,
    #[serde(default)]
    permissions: Option<PolicyPair>,
    /// Some tools write a `disabled` flag; a disabled server is not listed.
    #[serde(default)]
    disabled: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyPair {
    #[serde(default)]
    read: Option<Policy>,
    #[serde(default)]
    write: Option<Policy>,
}

/// Where to look; tests point both somewhere else.
#[derive(Debug, Clone)]
pub struct Locations {
    pub working_dir: PathBuf,
    pub config_dir: PathBuf,
}

impl Locations {
    /// The working directory and the config directory (or `config_dir` when given).
    pub fn standard(config_dir: Option<&Path>) -> Locations {
        Locations {
            working_dir: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            config_dir: config_dir
                .map(Path::to_path_buf)
                .unwrap_or_else(crate::credentials::config_dir),
        }
    }
}

impl Config {
    /// Read every source with the process environment for `${VAR}`.
    pub fn load(loc: &Locations) -> Result<Config> {
        Self::load_with(loc, &|k| std::env::var(k).ok())
    }

    /// Read every source; `env` answers `${VAR}`.
    pub fn load_with(loc: &Locations, env: &dyn Fn(&str) -> Option<String>) -> Result<Config> {
        let mut cfg = Config::default();
        let project = loc.working_dir.join(PROJECT_FILE);
        let user = loc.config_dir.join(USER_FILE);
        let yaml = crate::credentials::read_config_yaml(&loc.config_dir)?;
        let yaml_path = loc.config_dir.join(crate::credentials::CONFIG_FILE);
        let settings = match yaml.get("mcp") {
            None | Some(Json::Null) => serde_json::Map::new(),
            Some(m) => match m.get("servers") {
                None | Some(Json::Null) => serde_json::Map::new(),
                Some(Json::Object(s)) => s.clone(),
                Some(_) => {
                    return Err(Error::config(format!(
                        "{}: mcp.servers must be a map of server names to settings",
                        yaml_path.display()
                    )));
                }
            },
        };
        let mut config_entries = BTreeMap::new();
        for (name, raw) in &settings {
            let entry: Entry = serde_json::from_value(raw.clone()).map_err(|e| {
                Error::config(format!(
                    "{}: mcp.servers.{name}: {e} (keys: command, args, env, cwd, type, url, headers, timeout, permissions)",
                    yaml_path.display()
                ))
            })?;
            config_entries.insert(name.clone(), (entry, raw.clone()));
        }
        let sources: [(&'static str, PathBuf); 3] = [
            ("project", project),
            ("config", yaml_path.clone()),
            ("user", user),
        ];
        for (scope, path) in sources {
            let entries = if scope == "config" {
                config_entries
                    .iter()
                    .filter(|(_, (e, _))| e.command.is_some() || e.url.is_some())
                    .map(|(n, (e, raw))| (n.clone(), e.clone(), raw.clone()))
                    .collect()
            } else {
                match read_json_file(&path) {
                    Ok(list) => list,
                    Err(problem) => {
                        cfg.problems.push(problem);
                        continue;
                    }
                }
            };
            let source = Source { scope, path };
            for (name, entry, raw) in entries {
                if entry.disabled {
                    continue;
                }
                if cfg.servers.contains_key(&name) {
                    cfg.shadowed.push((name, source.clone()));
                    continue;
                }
                // kosmo's settings come only from config.yaml.
                let settings = config_entries.get(&name).map(|(e, _)| e);
                let timeout = settings
                    .and_then(|s| s.timeout)
                    .filter(|t| t.is_finite() && *t > 0.0)
                    .and_then(|t| Duration::try_from_secs_f64(t).ok())
                    .unwrap_or(DEFAULT_TIMEOUT);
                let perms = settings.and_then(|s| s.permissions.clone());
                cfg.servers.insert(
                    name.clone(),
                    Server {
                        transport: transport_of(&entry, env),
                        raw: redact(&raw),
                        name,
                        source: source.clone(),
                        timeout,
                        read: perms.as_ref().and_then(|p| p.read),
                        write: perms.as_ref().and_then(|p| p.write),
                    },
                );
            }
        }
        Ok(cfg)
    }

    pub fn get(&self, name: &str) -> Option<&Server> {
        self.servers.get(name)
    }

    pub fn names(&self) -> Vec<String> {
        self.servers.keys().cloned().collect()
    }
}

/// The entries of a `.mcp.json`-format file: none when it does not exist, `Err` (a problem to
/// report) when it is not that format.
fn read_json_file(path: &Path) -> std::result::Result<Vec<(String, Entry, Json)>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let doc: Json =
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
    let Some(servers) = doc.get("mcpServers") else {
        return Ok(Vec::new());
    };
    let Json::Object(servers) = servers else {
        return Err(format!(
            "{}: mcpServers must be an object of server names to entries",
            path.display()
        ));
    };
    let mut out = Vec::new();
    for (name, raw) in servers {
        // Unknown keys in a file other tools also read are theirs: keep only ours.
        let mut known = serde_json::Map::new();
        if let Json::Object(m) = raw {
            for (k, v) in m {
                if matches!(
                    k.as_str(),
                    "type" | "command" | "args" | "env" | "cwd" | "url" | "headers" | "disabled"
                ) {
                    known.insert(k.clone(), v.clone());
                }
            }
        }
        match serde_json::from_value::<Entry>(Json::Object(known)) {
            Ok(e) => out.push((name.clone(), e, raw.clone())),
            Err(e) => {
                out.push((
                    name.clone(),
                    Entry {
                        // An entry neither stdio nor http: its transport reports the problem.
                        kind: Some(format!("invalid: {e}")),
                        ..Entry::default()
                    },
                    raw.clone(),
                ));
            }
        }
    }
    Ok(out)
}

fn transport_of(
    e: &Entry,
    env: &dyn Fn(&str) -> Option<String>,
) -> std::result::Result<Transport, String> {
    let x = |s: &str| expand(s, env);
    let kind = e
        .kind
        .as_deref()
        .unwrap_or(if e.url.is_some() { "http" } else { "stdio" });
    match kind {
        "stdio" => {
            let command = e
                .command
                .as_deref()
                .ok_or("a stdio server needs a command")?;
            Ok(Transport::Stdio {
                command: x(command)?,
                args: e.args.iter().map(|a| x(a)).collect::<Result<_, _>>()?,
                env: e
                    .env
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), x(v)?)))
                    .collect::<std::result::Result<_, String>>()?,
                cwd: e.cwd.as_deref().map(x).transpose()?.map(PathBuf::from),
            })
        }
        "http" | "streamable-http" | "streamableHttp" => {
            let url = e.url.as_deref().ok_or("an http server needs a url")?;
            Ok(Transport::Http {
                url: x(url)?,
                headers: e
                    .headers
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), x(v)?)))
                    .collect::<std::result::Result<_, String>>()?,
            })
        }
        "sse" => Err(
            "the legacy SSE transport is not supported; use streamable HTTP (type \"http\")".into(),
        ),
        other => Err(match other.strip_prefix("invalid: ") {
            Some(why) => format!("invalid entry: {why}"),
            None => format!("unknown transport type '{other}' (use stdio or http)"),
        }),
    }
}

/// Expand `${VAR}` and `${VAR:-default}`; an unset variable without a default is an error naming it.
pub fn expand(
    s: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            // No closing brace: the text is literal.
            out.push_str(&rest[i..]);
            return Ok(out);
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        match (
            env(name).filter(|v| !v.is_empty() || default.is_none()),
            default,
        ) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                return Err(format!(
                    "environment variable {name} is not set (used as ${{{name}}}; give a default with ${{{name}:-value}})"
                ));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The entry as written, with env and header values replaced by `"…"` (they may hold secrets).
fn redact(raw: &Json) -> Json {
    let mut out = raw.clone();
    for key in ["env", "headers"] {
        if let Some(Json::Object(m)) = out.get_mut(key) {
            for v in m.values_mut() {
                *v = json!("…");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "TOKEN" => Some("t0k".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expansion() {
        assert_eq!(expand("Bearer ${TOKEN}", &env).unwrap(), "Bearer t0k");
        assert_eq!(expand("${NOPE:-x}/${TOKEN}", &env).unwrap(), "x/t0k");
        assert_eq!(expand("${EMPTY:-d}", &env).unwrap(), "d");
        assert_eq!(expand("${EMPTY}", &env).unwrap(), "");
        assert_eq!(
            expand("$HOME ${unterminated", &env).unwrap(),
            "$HOME ${unterminated"
        );
        let e = expand("${NOPE}", &env).unwrap_err();
        assert!(e.contains("NOPE"), "{e}");
    }

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn precedence_and_settings() {
        let wd = tempfile::tempdir().unwrap();
        let cd = tempfile::tempdir().unwrap();
        write(
            wd.path(),
            PROJECT_FILE,
            r#"{"mcpServers": {"a": {"command": "srv", "args": ["--k", "${TOKEN}"], "env": {"K": "${TOKEN}"}, "permissions": {"write": "allow"}},
                               "h": {"type": "http", "url": "http://127.0.0.1:1/mcp", "headers": {"Authorization": "Bearer ${TOKEN}"}},
                               "bad": {"command": "x", "env": {"K": "${NOPE}"}}}}"#,
        );
        write(
            cd.path(),
            "config.yaml",
            "mcp:\n  servers:\n    a: {permissions: {write: deny}, timeout: 5}\n    b: {command: other}\n    h: {command: shadowed}\n",
        );
        write(
            cd.path(),
            USER_FILE,
            r#"{"mcpServers": {"b": {"command": "loses"}, "c": {"url": "http://127.0.0.1:2/mcp"}}}"#,
        );
        let loc = Locations {
            working_dir: wd.path().into(),
            config_dir: cd.path().into(),
        };
        let cfg = Config::load_with(&loc, &env).unwrap();
        assert_eq!(cfg.names(), vec!["a", "b", "bad", "c", "h"]);
        let a = cfg.get("a").unwrap();
        assert_eq!(a.source.scope, "project");
        assert_eq!(
            a.transport,
            Ok(Transport::Stdio {
                command: "srv".into(),
                args: vec!["--k".into(), "t0k".into()],
                env: [("K".to_string(), "t0k".to_string())].into(),
                cwd: None,
            })
        );
        // Settings come from config.yaml, never from the project file.
        assert_eq!(a.write, Some(Policy::Deny));
        assert_eq!(a.timeout, Duration::from_secs(5));
        // The raw entry hides env values.
        assert_eq!(a.raw["env"]["K"], "…");
        assert_eq!(cfg.get("b").unwrap().source.scope, "config");
        assert_eq!(
            cfg.get("c").unwrap().transport.as_ref().unwrap().kind(),
            "http"
        );
        match &cfg.get("h").unwrap().transport {
            Ok(Transport::Http { headers, .. }) => {
                assert_eq!(headers["Authorization"], "Bearer t0k")
            }
            other => panic!("{other:?}"),
        }
        let bad = cfg.get("bad").unwrap().transport.as_ref().unwrap_err();
        assert!(bad.contains("NOPE"), "{bad}");
        let shadowed: Vec<(&str, &str)> = cfg
            .shadowed
            .iter()
            .map(|(n, s)| (n.as_str(), s.scope))
            .collect();
        assert_eq!(shadowed, vec![("h", "config"), ("b", "user")]);
    }

    #[test]
    fn broken_files_are_problems_not_failures() {
        let wd = tempfile::tempdir().unwrap();
        let cd = tempfile::tempdir().unwrap();
        write(wd.path(), PROJECT_FILE, "{not json");
        write(
            cd.path(),
            USER_FILE,
            r#"{"mcpServers": {"s": {"type": "sse", "url": "x"}}}"#,
        );
        let loc = Locations {
            working_dir: wd.path().into(),
            config_dir: cd.path().into(),
        };
        let cfg = Config::load_with(&loc, &env).unwrap();
        assert_eq!(cfg.problems.len(), 1);
        let s = cfg.get("s").unwrap().transport.as_ref().unwrap_err();
        assert!(s.contains("SSE"), "{s}");
    }
}

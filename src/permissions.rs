//! Permissions per integration and account: `read` and `write` each `allow`, `ask` or `deny`.
//!
//! Read from `config.yaml` in the config directory (`$KOSMO_CONFIG_DIR`, else
//! `$XDG_CONFIG_HOME/kosmo`, else `~/.config/kosmo`):
//!
//! ```yaml
//! integrations:
//!   anthropic:
//!     permissions: {read: allow, write: ask}
//!     accounts:
//!       work: {permissions: {write: allow}}
//! ```
//!
//! Defaults: read `allow`, write `ask`, so a fresh headless setup can read but never writes by
//! surprise. `ask` prompts on a terminal; with none it fails with the exact way to allow it.
//! `--force` bypasses `ask` and `deny`; `--read-only` refuses every write, even with `--force`.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::manifest::Class;

/// One permission setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    Allow,
    Ask,
    Deny,
}

impl Policy {
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Allow => "allow",
            Policy::Ask => "ask",
            Policy::Deny => "deny",
        }
    }

    pub fn parse(s: &str) -> Option<Policy> {
        match s.trim().to_ascii_lowercase().as_str() {
            "allow" => Some(Policy::Allow),
            "ask" => Some(Policy::Ask),
            "deny" => Some(Policy::Deny),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
struct PolicyPair {
    #[serde(default)]
    read: Option<Policy>,
    #[serde(default)]
    write: Option<Policy>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct AccountConfig {
    #[serde(default)]
    permissions: PolicyPair,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct IntegrationConfig {
    #[serde(default)]
    permissions: PolicyPair,
    #[serde(default)]
    accounts: HashMap<String, AccountConfig>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    integrations: HashMap<String, IntegrationConfig>,
    #[serde(default)]
    mcp: Option<McpSection>,
}

/// The part of `mcp.servers.NAME` that is policy (the rest belongs to [`crate::mcp::config`]).
#[derive(Debug, Clone, Default, Deserialize)]
struct McpSection {
    #[serde(default)]
    servers: Option<HashMap<String, McpServerPolicy>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct McpServerPolicy {
    #[serde(default)]
    permissions: PolicyPair,
}

/// Tools of MCP server `NAME` are decided as integration `mcp.NAME`.
pub const MCP_PREFIX: &str = "mcp.";

/// The permission settings of every integration.
#[derive(Debug, Clone, Default)]
pub struct Permissions {
    integrations: HashMap<String, IntegrationConfig>,
}

/// The call being decided.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub integration: &'a str,
    pub account: &'a str,
    pub function: &'a str,
    pub class: Class,
}

/// Command-line switches that change the decision.
#[derive(Debug, Clone, Copy, Default)]
pub struct Flags {
    pub force: bool,
    pub read_only: bool,
    /// Nothing is sent, so `ask` does not need an answer (deny and read-only still apply).
    pub dry_run: bool,
}

/// What the user answered at a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Yes,
    No,
    /// Yes, and for the rest of this run.
    Always,
}

/// Why a call may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// `--force` overrode `ask` or `deny`.
    Bypassed,
    /// The user said yes at a prompt.
    Confirmed(Answer),
}

impl Permissions {
    /// Load `config.yaml` from `dir` (or the standard directory). A missing file means defaults.
    pub fn load(dir: Option<&Path>) -> Result<Permissions> {
        let dir = dir
            .map(Path::to_path_buf)
            .unwrap_or_else(crate::credentials::config_dir);
        let raw = crate::credentials::read_config_yaml(&dir)?;
        Self::from_value(raw).map_err(|e| match e {
            Error::Config { message } => Error::config(format!(
                "{}: {message}",
                dir.join(crate::credentials::CONFIG_FILE).display()
            )),
            other => other,
        })
    }

    pub fn from_yaml(text: &str) -> Result<Permissions> {
        if text.trim().is_empty() {
            return Ok(Permissions::default());
        }
        let raw: serde_json::Value =
            serde_yaml::from_str(text).map_err(|e| Error::config(e.to_string()))?;
        Self::from_value(raw)
    }

    /// The `integrations` section of an already parsed `config.yaml`.
    pub fn from_value(raw: serde_json::Value) -> Result<Permissions> {
        let file: ConfigFile = serde_json::from_value(raw).map_err(|e| {
            Error::config(format!(
                "invalid permissions ({e}); use allow, ask or deny, e.g. permissions: {{read: allow, write: ask}}"
            ))
        })?;
        let mut integrations = file.integrations;
        // MCP servers' settings (`mcp.servers.NAME.permissions`) apply to integration `mcp.NAME`.
        if let Some(servers) = file.mcp.and_then(|m| m.servers) {
            for (name, s) in servers {
                integrations.insert(
                    format!("{MCP_PREFIX}{name}"),
                    IntegrationConfig {
                        permissions: s.permissions,
                        accounts: HashMap::new(),
                    },
                );
            }
        }
        Ok(Permissions { integrations })
    }

    /// The policy that applies: account override, then integration, then the default.
    /// Accounts that have their own settings in `config.yaml` (they are configured accounts
    /// even where no credentials are, e.g. offline), sorted.
    pub fn accounts(&self, integration: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .integrations
            .get(integration)
            .map(|i| i.accounts.keys().cloned().collect())
            .unwrap_or_default();
        out.sort();
        out
    }

    /// `accounts` (those with credentials, `default` first) followed by the accounts that only
    /// `config.yaml` knows (permission settings, no credentials yet): every account a user set up.
    pub fn with_accounts(&self, integration: &str, mut accounts: Vec<String>) -> Vec<String> {
        for a in self.accounts(integration) {
            if !accounts.contains(&a) {
                accounts.push(a);
            }
        }
        accounts
    }

    pub fn policy(&self, integration: &str, account: &str, class: Class) -> Policy {
        let pick = |p: &PolicyPair| match class {
            Class::Read => p.read,
            Class::Write => p.write,
        };
        let default = match class {
            Class::Read => Policy::Allow,
            Class::Write => Policy::Ask,
        };
        let Some(ic) = self.integrations.get(integration) else {
            return default;
        };
        ic.accounts
            .get(account)
            .and_then(|a| pick(&a.permissions))
            .or_else(|| pick(&ic.permissions))
            .unwrap_or(default)
    }

    /// Decide a call. `prompt` asks the user (`None`: there is no terminal to ask on).
    pub fn check(
        &self,
        req: Request<'_>,
        flags: Flags,
        prompt: &mut dyn FnMut(&str) -> Option<Answer>,
    ) -> Result<Decision> {
        let what = req.class.as_str();
        if flags.read_only && req.class == Class::Write {
            return Err(Error::PermissionDenied {
                message: format!(
                    "{}.{} is a write call and --read-only refuses every write (even with --force)",
                    req.integration, req.function
                ),
            });
        }
        let policy = self.policy(req.integration, req.account, req.class);
        let configure = configure_hint(req.integration, req.account, req.class);
        match policy {
            Policy::Allow => Ok(Decision::Allowed),
            _ if flags.force => Ok(Decision::Bypassed),
            Policy::Deny => Err(Error::PermissionDenied {
                message: format!(
                    "{}.{} is a {what} call and {what} access to {} (account '{}') is set to deny; \
                     allow it with --force, or permanently with: {configure}",
                    req.integration, req.function, req.integration, req.account
                ),
            }),
            Policy::Ask if flags.dry_run => Ok(Decision::Allowed),
            Policy::Ask => {
                let question = format!(
                    "kosmo: allow {what} call {}.{} (account '{}')? [y]es / [n]o / [a]lways this run: ",
                    req.integration, req.function, req.account
                );
                match prompt(&question) {
                    Some(a @ (Answer::Yes | Answer::Always)) => Ok(Decision::Confirmed(a)),
                    Some(Answer::No) => Err(Error::PermissionDenied {
                        message: format!(
                            "{}.{} was refused at the prompt; to allow it without asking: --force, or {configure}",
                            req.integration, req.function
                        ),
                    }),
                    None => Err(Error::PermissionDenied {
                        message: format!(
                            "{}.{} is a {what} call and {what} access to {} (account '{}') is set to ask, \
                             but there is no terminal to ask on; allow it with --force, or permanently with: {configure}",
                            req.integration, req.function, req.integration, req.account
                        ),
                    }),
                }
            }
        }
    }
}

/// The command that allows a class of calls for good.
pub fn configure_hint(integration: &str, account: &str, class: Class) -> String {
    if let Some(server) = integration.strip_prefix(MCP_PREFIX) {
        return format!(
            "set mcp.servers.{server}.permissions.{}: allow in {}",
            class.as_str(),
            crate::credentials::CONFIG_FILE
        );
    }
    let acct = if account == "default" {
        String::new()
    } else {
        format!(" --account {account}")
    };
    format!(
        "kosmo integrations:configure {integration}{acct} --{} allow",
        class.as_str()
    )
}

/// Ask on the terminal when stdin and stderr are both terminals; `None` otherwise.
pub fn terminal_prompt(question: &str) -> Option<Answer> {
    use std::io::{BufRead, IsTerminal, Write};
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return None;
    }
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(question.as_bytes());
    let _ = err.flush();
    drop(err);
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => Some(Answer::No),
        Ok(_) => Some(match line.trim().to_ascii_lowercase().as_str() {
            "y" | "yes" => Answer::Yes,
            "a" | "always" => Answer::Always,
            _ => Answer::No,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(class: Class) -> Request<'static> {
        Request {
            integration: "anthropic",
            account: "default",
            function: "create_message",
            class,
        }
    }

    #[test]
    fn defaults_read_allow_write_ask() {
        let p = Permissions::default();
        assert_eq!(p.policy("anthropic", "default", Class::Read), Policy::Allow);
        assert_eq!(p.policy("anthropic", "default", Class::Write), Policy::Ask);
        let err = p
            .check(req(Class::Write), Flags::default(), &mut |_| None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--force"), "{err}");
        assert!(
            err.contains("kosmo integrations:configure anthropic --write allow"),
            "{err}"
        );
        assert_eq!(
            p.check(req(Class::Read), Flags::default(), &mut |_| None)
                .unwrap(),
            Decision::Allowed
        );
    }

    #[test]
    fn account_overrides_and_force_and_read_only() {
        let p = Permissions::from_yaml(
            "integrations:\n  anthropic:\n    permissions: {read: deny, write: deny}\n    accounts:\n      work: {permissions: {write: allow}}\nhttp: {max_retries: 2}\n",
        )
        .unwrap();
        assert_eq!(p.policy("anthropic", "work", Class::Write), Policy::Allow);
        assert_eq!(p.policy("anthropic", "work", Class::Read), Policy::Deny);
        assert_eq!(p.policy("anthropic", "default", Class::Write), Policy::Deny);
        let force = Flags {
            force: true,
            ..Flags::default()
        };
        assert_eq!(
            p.check(req(Class::Write), force, &mut |_| None).unwrap(),
            Decision::Bypassed
        );
        let ro = Flags {
            force: true,
            read_only: true,
            dry_run: false,
        };
        let e = p.check(req(Class::Write), ro, &mut |_| None).unwrap_err();
        assert_eq!(e.code(), "permission_denied");
        assert!(e.to_string().contains("--read-only"));
    }

    #[test]
    fn accounts_with_settings_are_listed() {
        let p = Permissions::from_yaml(
            "integrations:\n  anthropic:\n    accounts:\n      work: {permissions: {read: allow}}\n      alt: {}\n",
        )
        .unwrap();
        assert_eq!(p.accounts("anthropic"), vec!["alt", "work"]);
        assert!(p.accounts("other").is_empty());
    }

    #[test]
    fn prompt_answers() {
        let p = Permissions::default();
        assert_eq!(
            p.check(req(Class::Write), Flags::default(), &mut |_| Some(
                Answer::Always
            ))
            .unwrap(),
            Decision::Confirmed(Answer::Always)
        );
        assert!(
            p.check(req(Class::Write), Flags::default(), &mut |_| Some(
                Answer::No
            ))
            .is_err()
        );
    }

    #[test]
    fn bad_policy_is_a_config_error() {
        let e = Permissions::from_yaml(
            "integrations:\n  anthropic:\n    permissions: {write: maybe}\n",
        )
        .unwrap_err();
        assert_eq!(e.code(), "config_error");
    }

    #[test]
    fn mcp_server_policies() {
        let p = Permissions::from_yaml(
            "mcp:\n  servers:\n    files: {command: x, permissions: {write: allow, read: deny}}\n    other: {command: y}\n",
        )
        .unwrap();
        assert_eq!(
            p.policy("mcp.files", "default", Class::Write),
            Policy::Allow
        );
        assert_eq!(p.policy("mcp.files", "default", Class::Read), Policy::Deny);
        assert_eq!(p.policy("mcp.other", "default", Class::Write), Policy::Ask);
        assert_eq!(
            configure_hint("mcp.other", "default", Class::Write),
            "set mcp.servers.other.permissions.write: allow in config.yaml"
        );
    }

    #[test]
    fn account_hint_names_the_account() {
        assert_eq!(
            configure_hint("anthropic", "work", Class::Write),
            "kosmo integrations:configure anthropic --account work --write allow"
        );
    }
}

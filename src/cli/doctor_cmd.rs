//! `kosmo integrations:doctor [NAME] [--account A] [--offline] [--json]`: is the set-up usable?
//!
//! Manifests load; the config directory is readable and private; each account's credentials are
//! there; and each credential that is there works, proved by the cheap read call its manifest
//! declares (`credentials.<name>.check`). Every finding that is not `ok` carries the exact fix.
//! With `--offline` the live checks run against the built-in simulators (placeholder keys), which
//! rehearses everything but the keys themselves.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};

use super::{Context, fail, outln, print_json};
use crate::credentials::{CREDENTIALS_FILE, CredentialSource, Credentials, config_dir};
use crate::error::{Error, Result};
use crate::exec::{Call, ExecConfig, Executor};
use crate::permissions::Permissions;
use crate::registry::Integration;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kosmo integrations:doctor\n  kosmo integrations:doctor NAME --account work --json\n  kosmo integrations:doctor --offline"
)]
pub struct DoctorArgs {
    /// Only this integration.
    pub integration: Option<String>,
    /// Only this account (default: every configured account).
    #[arg(long)]
    pub account: Option<String>,
    /// Run the live checks against the built-in simulators instead of the real APIs.
    #[arg(long)]
    pub offline: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// One finding: `ok`, `missing` (not configured: fine unless you need it), `failed`.
struct Finding {
    check: String,
    status: &'static str,
    detail: String,
    fix: Option<String>,
    extra: Value,
}

impl Finding {
    fn ok(check: impl Into<String>, detail: impl Into<String>) -> Self {
        Finding {
            check: check.into(),
            status: "ok",
            detail: detail.into(),
            fix: None,
            extra: Value::Null,
        }
    }

    fn failed(check: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Finding {
            check: check.into(),
            status: "failed",
            detail: detail.into(),
            fix: Some(fix.into()),
            extra: Value::Null,
        }
    }

    fn to_json(&self) -> Value {
        let mut v = json!({
            "check": self.check,
            "status": self.status,
            "detail": self.detail,
            "fix": self.fix,
        });
        if let (Value::Object(m), Value::Object(extra)) = (&mut v, &self.extra) {
            m.extend(extra.clone());
        }
        v
    }
}

pub async fn run(ctx: &Context, args: DoctorArgs) -> ExitCode {
    let findings = match doctor(ctx, &args).await {
        Ok(f) => f,
        Err(e) => return fail(&e, args.json),
    };
    let failed = findings.iter().filter(|f| f.status == "failed").count();
    if args.json {
        print_json(&json!({
            "success": failed == 0,
            "result": {
                "failed": failed,
                "checks": findings.iter().map(Finding::to_json).collect::<Vec<_>>(),
            },
        }));
    } else {
        for f in &findings {
            outln!("{:<8}{}: {}", f.status, f.check, f.detail);
            if let Some(fix) = &f.fix {
                outln!("        fix: {fix}");
            }
        }
        outln!(
            "{}",
            if failed == 0 {
                "no problems found".to_string()
            } else {
                format!("{failed} problem(s) found")
            }
        );
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

async fn doctor(ctx: &Context, args: &DoctorArgs) -> Result<Vec<Finding>> {
    let mut out = Vec::new();
    let registry = Arc::new(ctx.registry()?);
    if registry.warnings().is_empty() {
        out.push(Finding::ok(
            "manifests",
            format!("{} loaded", registry.iter().count()),
        ));
    }
    for w in registry.warnings() {
        out.push(Finding::failed(
            "manifests",
            w.clone(),
            "fix the manifest (`kosmo manifests:check FILE` lists every problem) or remove it from the manifest path",
        ));
    }
    let integrations: Vec<Arc<Integration>> = match &args.integration {
        Some(name) => vec![registry.require(name)?.clone()],
        None => registry.iter().cloned().collect(),
    };
    let dir = config_dir();
    // Each config file is read once: the findings report what failed, the checks use the rest.
    let loaded = Loaded {
        creds: Credentials::load(Some(dir.clone())),
        perms: Permissions::load(Some(&dir)),
        exec: ExecConfig::load(&dir),
    };
    out.extend(config_findings(&dir, &loaded));
    let Ok(creds) = loaded.creds else {
        // Already reported; nothing below can work without it.
        return Ok(out);
    };
    let perms = loaded.perms.unwrap_or_default();
    let exec_config = loaded.exec.unwrap_or_default();

    // Offline: one simulator per integration, placeholder keys (as `integrations:lua --offline`).
    let (live_creds, simulators) = if args.offline {
        let names = integrations.iter().map(|i| i.name().to_string()).collect();
        crate::simulator::start_each(&registry, names, &Default::default()).await
    } else {
        (creds.clone(), Vec::new())
    };
    let executor = Executor::new(registry.clone(), Arc::new(live_creds), exec_config)?;

    for integ in &integrations {
        let m = &integ.manifest;
        let mut accounts = perms.with_accounts(&m.name, creds.accounts(&m.name));
        if let Some(only) = &args.account {
            if !accounts.contains(only) {
                out.push(Finding::failed(
                    format!("{}.{only}", m.name),
                    format!(
                        "no account '{only}' is configured (known: {})",
                        accounts.join(", ")
                    ),
                    format!(
                        "kosmo integrations:configure {} --account {only} --set-stdin <credential>",
                        m.name
                    ),
                ));
                continue;
            }
            accounts.retain(|a| a == only);
        }
        for account in accounts {
            out.extend(account_findings(&executor, &creds, integ, &account, args.offline).await);
        }
    }
    for sim in simulators {
        sim.shutdown().await;
    }
    Ok(out)
}

/// The config directory: readable, and private where it holds secrets.
/// The config files, each read once.
struct Loaded {
    creds: Result<Credentials>,
    perms: Result<Permissions>,
    exec: Result<ExecConfig>,
}

fn config_findings(dir: &Path, loaded: &Loaded) -> Vec<Finding> {
    let mut out = Vec::new();
    let shown = dir.display().to_string();
    if !dir.exists() {
        out.push(Finding::ok(
            "config",
            format!("{shown} does not exist yet: only environment variables are used"),
        ));
        return out;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The secrets file must be the owner's alone; the directory only shows file names.
        for (path, want) in [(dir.join(CREDENTIALS_FILE), 0o600)] {
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                out.push(Finding::failed(
                    "config",
                    format!(
                        "{} is readable by others (mode {mode:o}) and holds secrets",
                        path.display()
                    ),
                    format!("chmod {want:o} {}", path.display()),
                ));
            }
        }
    }
    if let Err(e) = &loaded.creds {
        out.push(Finding::failed(
            "config",
            e.to_string(),
            format!(
                "fix or remove {} (kosmo integrations:configure rewrites it)",
                dir.join(CREDENTIALS_FILE).display()
            ),
        ));
    }
    if let Err(e) = &loaded.perms {
        out.push(Finding::failed(
            "config",
            e.to_string(),
            "fix config.yaml: permissions are allow, ask or deny",
        ));
    }
    if let Err(e) = &loaded.exec {
        out.push(Finding::failed(
            "config",
            e.to_string(),
            "fix the http section of config.yaml",
        ));
    }
    if out.is_empty() {
        out.push(Finding::ok(
            "config",
            format!("{shown} is readable and private"),
        ));
    }
    out
}

/// Each credential of one account: configured? And does its declared check pass?
async fn account_findings(
    executor: &Executor,
    creds: &Credentials,
    integ: &Integration,
    account: &str,
    offline: bool,
) -> Vec<Finding> {
    let m = &integ.manifest;
    let mut out = Vec::new();
    let sources = match creds.describe(m, account) {
        Ok(s) => s,
        Err(e) => {
            out.push(Finding::failed(
                format!("{}.{account}", m.name),
                e.to_string(),
                format!(
                    "kosmo integrations:configure {} --account {account} ...",
                    m.name
                ),
            ));
            return out;
        }
    };
    let configure = |c: &str| {
        format!(
            "kosmo integrations:configure {} --account {account} --set-stdin {c}",
            m.name
        )
    };
    for (name, source) in &sources.credentials {
        let check_name = format!("{}.{account}.{name}", m.name);
        let Some(cred) = m.credentials.get(name) else {
            continue;
        };
        let available = offline
            || !matches!(
                source,
                CredentialSource::Missing | CredentialSource::EnvUnset(_)
            );
        if !available {
            let detail = source.describe();
            out.push(Finding {
                check: check_name,
                status: "missing",
                detail: format!("{detail} (needed only by functions that use it)"),
                fix: Some(format!("{}; or: {}", configure(name), cred.hint.trim())),
                extra: Value::Null,
            });
            continue;
        }
        let Some(check) = &cred.check else {
            out.push(Finding::ok(
                check_name,
                format!(
                    "{} (the manifest declares no live check)",
                    source.describe()
                ),
            ));
            continue;
        };
        let started = Instant::now();
        let mut call = Call::new(&m.name, &check.function, check.args.clone());
        call.account = Some(account);
        let result = executor.call(call).await;
        let ms = (started.elapsed().as_secs_f64() * 1000.0 * 10.0).round() / 10.0;
        let target = if offline {
            "the simulator".to_string()
        } else {
            sources.base_url.clone()
        };
        let from = if offline {
            "offline placeholder".to_string()
        } else {
            source.describe()
        };
        let mut f = match result {
            Ok(o) => Finding::ok(
                check_name,
                format!(
                    "{from}; {} accepted it ({} -> HTTP {}, {ms} ms)",
                    target,
                    check.function,
                    o.http_status.map_or("-".to_string(), |s| s.to_string())
                ),
            ),
            Err(e) => {
                let url_fix = match sources.base_url_source.strip_prefix("env ") {
                    Some(var) => {
                        format!("check the network or proxy, or {var} (the base URL comes from it)")
                    }
                    None => format!(
                        "check the network or proxy, or the account's base URL: kosmo integrations:configure {} --account {account} --set url=https://...",
                        m.name
                    ),
                };
                let fixes = Fixes {
                    configure: configure(name),
                    hint: cred.hint.trim().to_string(),
                    url: url_fix,
                };
                failed_check(check_name, &e, &target, &check.function, &fixes)
            }
        };
        let mut extra = json!({
            "integration": m.name,
            "account": account,
            "credential": name,
            "function": check.function,
            "latency_ms": ms,
        });
        if let (Value::Object(e), Value::Object(prev)) = (&mut extra, &f.extra) {
            e.extend(prev.clone());
        }
        f.extra = extra;
        out.push(f);
    }
    out
}

/// The fixes a failed check may point to.
struct Fixes {
    configure: String,
    hint: String,
    url: String,
}

/// What a failed live check means, and the one thing to do about it.
fn failed_check(check: String, e: &Error, target: &str, function: &str, fx: &Fixes) -> Finding {
    let code = e.code().to_string();
    let (detail, fix) = match code.as_str() {
        "authentication_error" => (
            format!("{target} rejected the credential ({function}): {e}"),
            format!("store a valid one: {} ({})", fx.configure, fx.hint),
        ),
        "permission_error" => (
            format!("the credential works but may not call {function}: {e}"),
            format!("use a credential with access: {}", fx.configure),
        ),
        "transport_error" => (format!("cannot reach {target}: {e}"), fx.url.clone()),
        "missing_credential" | "config_error" => (e.to_string(), fx.configure.clone()),
        "rate_limit_error" => (
            format!("{target} is rate limiting this credential: {e}"),
            "wait and run the doctor again".to_string(),
        ),
        _ => (
            format!("{function} failed: {e}"),
            "see the message; `kosmo integrations:docs` for the function".to_string(),
        ),
    };
    let mut f = Finding::failed(check, detail, fix);
    if let Value::Object(extra) = json!({"error": e.to_json()}) {
        f.extra = Value::Object(extra);
    }
    f
}

//! `integrations:configure`: write named accounts and their secrets (owned by the executor issue).
//!
//! Secrets go to `credentials.yaml` (mode 0600), permissions to `config.yaml`. A secret given as
//! `-` is read from stdin, so it stays out of shell history and `ps`. Nothing secret is printed:
//! the output lists which fields are set, never their values.

use std::io::BufRead;
use std::process::ExitCode;

use serde_json::{Value, json};

use super::outln;
use super::{Context, EXIT_USAGE, fail, print_json};
use crate::credentials::{
    CONFIG_FILE, CREDENTIALS_FILE, DEFAULT_ACCOUNT, config_dir, credential_file_yaml,
    read_credential_file, redact_url, write_private,
};
use crate::error::{Error, Result};
use crate::manifest::Manifest;

#[derive(Debug, Clone, clap::Args)]
pub struct ConfigureArgs {
    /// The integration's name.
    pub integration: String,
    /// Account name.
    #[arg(long, default_value = "default")]
    pub account: String,
    /// Set a field: api_key=..., admin_key=..., url=..., api_key_env=NAME, api_key_cmd="..." (repeatable).
    /// A value of `-` is read from stdin.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Read a field's value from standard input (one line), so a secret stays out of shell
    /// history and the process list: `--set-stdin api_key`. Same as `--set KEY=-`.
    #[arg(long = "set-stdin", value_name = "KEY")]
    pub set_stdin: Option<String>,
    /// Remove a field (repeatable).
    #[arg(long = "unset", value_name = "KEY")]
    pub unset: Vec<String>,
    /// Permission for read calls: allow, ask or deny.
    #[arg(long, value_name = "POLICY")]
    pub read: Option<String>,
    /// Permission for write calls: allow, ask or deny.
    #[arg(long, value_name = "POLICY")]
    pub write: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// What kind of field a key is, which decides how it is shown.
enum FieldKind {
    Secret,
    Plain,
}

fn field_kind(manifest: &Manifest, key: &str) -> Option<FieldKind> {
    if key == "url" {
        return Some(FieldKind::Plain);
    }
    if manifest.credentials.contains_key(key) {
        return Some(FieldKind::Secret);
    }
    if let Some(c) = key.strip_suffix("_env")
        && manifest.credentials.contains_key(c)
    {
        return Some(FieldKind::Plain);
    }
    if let Some(c) = key.strip_suffix("_cmd")
        && manifest.credentials.contains_key(c)
    {
        // A helper command may embed a token: treat it as secret.
        return Some(FieldKind::Secret);
    }
    None
}

/// Keys have recognisable prefixes (`sk-ant-api...`); a value without it is usually a paste of
/// the wrong key (an admin key as the API key) or of something else. It is still stored (the
/// prefix may change, and proxies may issue their own keys), but the user hears about it now
/// rather than at the first failing call. The warning never shows the value.
fn warn_on_prefix(manifest: &Manifest, key: &str, value: &str) {
    let Some(cred) = manifest.credentials.get(key) else {
        return;
    };
    if let Some(prefix) = cred.prefix.as_deref().filter(|p| !p.is_empty())
        && !value.starts_with(prefix)
    {
        let other = manifest
            .credentials
            .iter()
            .filter(|(name, _)| name.as_str() != key)
            .find(|(_, c)| {
                c.prefix
                    .as_deref()
                    .is_some_and(|p| !p.is_empty() && value.starts_with(p))
            })
            .map(|(name, _)| format!(" (it looks like the {name})"))
            .unwrap_or_default();
        tracing::warn!(
            "{}: the {key} value does not start with '{prefix}' as {} keys do{other}; stored anyway",
            manifest.name,
            cred.label
        );
    }
}

fn valid_keys(manifest: &Manifest) -> String {
    let mut keys = vec!["url".to_string()];
    for c in manifest.credentials.keys() {
        keys.push(c.clone());
        keys.push(format!("{c}_env"));
        keys.push(format!("{c}_cmd"));
    }
    keys.join(", ")
}

pub fn run(ctx: &Context, args: ConfigureArgs) -> ExitCode {
    match configure(ctx, &args) {
        Ok(summary) => {
            if args.json {
                print_json(&json!({"success": true, "result": summary}));
            } else {
                let fields = summary["fields"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default();
                outln!(
                    "{} account '{}' configured: {}",
                    args.integration,
                    args.account,
                    if fields.is_empty() {
                        "(no fields)".to_string()
                    } else {
                        fields
                    }
                );
                if let Some(p) = summary.get("permissions").filter(|p| !p.is_null()) {
                    outln!("permissions: {p}");
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            let code = fail(&e, args.json);
            if matches!(e, Error::Validation { .. }) {
                ExitCode::from(EXIT_USAGE)
            } else {
                code
            }
        }
    }
}

fn usage(message: String) -> Error {
    Error::Validation {
        function: "integrations:configure".into(),
        errors: vec![message],
    }
}

fn configure(ctx: &Context, args: &ConfigureArgs) -> Result<Value> {
    let registry = ctx.registry()?;
    let integ = registry.require(&args.integration)?;
    let manifest = &integ.manifest;
    if args.account.is_empty()
        || !args
            .account
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(usage(format!(
            "account name '{}' must be letters, digits, '_' or '-'",
            args.account
        )));
    }
    for policy in [&args.read, &args.write].into_iter().flatten() {
        if !matches!(policy.as_str(), "allow" | "ask" | "deny") {
            return Err(usage(format!(
                "permission '{policy}' must be allow, ask or deny"
            )));
        }
    }
    let mut sets: Vec<(String, String)> = Vec::new();
    let mut stdin_used = false;
    let from_stdin = args.set_stdin.as_ref().map(|k| format!("{k}=-"));
    for item in args.set.iter().chain(from_stdin.iter()) {
        // The argument may be a mistyped secret (`api_key:sk-ant-...`): never echo it.
        let (k, v) = item.split_once('=').ok_or_else(|| {
            usage(format!(
                "--set takes KEY=VALUE, and this argument has no '=' (its text is not shown, \
                 as it may hold a secret); known keys: {}",
                valid_keys(manifest)
            ))
        })?;
        // `base_url` is what manifests call it; the account's field is `url`.
        let k = match k.trim() {
            "base_url" => "url",
            k => k,
        };
        if field_kind(manifest, k).is_none() {
            // A key that looks like a secret is not repeated either.
            let shown = if k.len() > 40 || k.contains(char::is_whitespace) {
                "(not shown)".to_string()
            } else {
                format!("'{k}'")
            };
            return Err(usage(format!(
                "unknown field {shown} (known: {})",
                valid_keys(manifest)
            )));
        }
        let v = if v == "-" {
            if stdin_used {
                return Err(usage("only one --set value can be read from stdin".into()));
            }
            stdin_used = true;
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| Error::io("<stdin>", e))?;
            line.trim().to_string()
        } else {
            v.to_string()
        };
        if v.is_empty() {
            return Err(usage(format!(
                "an empty value for '{k}'; use --unset {k} to remove it"
            )));
        }
        if k == "url" {
            let ok = reqwest::Url::parse(&v)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            if !ok {
                return Err(usage(format!(
                    "url must be an http(s) URL such as https://api.example.com, got '{}'",
                    crate::credentials::redact_url(&v)
                )));
            }
        }
        warn_on_prefix(manifest, k, &v);
        sets.push((k.to_string(), v));
    }
    let unset: Vec<String> = args
        .unset
        .iter()
        .map(|k| {
            if k == "base_url" {
                "url".to_string()
            } else {
                k.clone()
            }
        })
        .collect();
    for k in &unset {
        if field_kind(manifest, k).is_none() {
            return Err(usage(format!(
                "unknown field '{k}' (known: {})",
                valid_keys(manifest)
            )));
        }
    }

    let dir = config_dir();
    let cred_path = dir.join(CREDENTIALS_FILE);
    // Concurrent runs (ten accounts configured at once by a provisioning script) would each read
    // the old file and the last rename would win; the lock makes each read-modify-write whole.
    let _lock = lock_config_dir(&dir)?;
    let mut file = read_credential_file(&cred_path)?;
    if !sets.is_empty() || !unset.is_empty() || (args.read.is_none() && args.write.is_none()) {
        let accounts = file.entry(manifest.name.clone()).or_default();
        let entry = accounts.entry(args.account.clone()).or_default();
        for (k, v) in &sets {
            // A direct value and its indirections are alternatives: setting one clears the others.
            if let Some(kind) = manifest
                .credentials
                .keys()
                .find(|c| *k == **c || *k == format!("{c}_env") || *k == format!("{c}_cmd"))
            {
                for alt in [kind.clone(), format!("{kind}_env"), format!("{kind}_cmd")] {
                    entry.shift_remove(&alt);
                }
            }
            entry.insert(k.clone(), v.clone());
        }
        for k in &unset {
            entry.shift_remove(k);
        }
        write_private(&cred_path, &credential_file_yaml(&file)?)?;
    }

    let mut permissions = Value::Null;
    if args.read.is_some() || args.write.is_some() {
        permissions =
            write_permissions(&dir.join(CONFIG_FILE), &manifest.name, &args.account, args)?;
    }

    let mut fields = serde_json::Map::new();
    if let Some(entry) = file.get(&manifest.name).and_then(|a| a.get(&args.account)) {
        for (k, v) in entry {
            let shown = match field_kind(manifest, k) {
                // A base URL may carry `user:password@`.
                Some(FieldKind::Plain) => redact_url(v),
                _ => "[set]".into(),
            };
            fields.insert(k.clone(), json!(shown));
        }
    }
    Ok(json!({
        "integration": manifest.name,
        "account": args.account,
        "credentials_file": cred_path.display().to_string(),
        "fields": fields,
        "permissions": permissions,
    }))
}

/// Merge permissions into `config.yaml`, keeping everything else in it. The default account's
/// policy is the integration's; other accounts get a per-account override.
fn write_permissions(
    path: &std::path::Path,
    integration: &str,
    account: &str,
    args: &ConfigureArgs,
) -> Result<Value> {
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    let mut root: Value = crate::credentials::read_config_yaml(dir)?;
    if !root.is_object() {
        return Err(Error::config(format!(
            "{}: expected a mapping at the top",
            path.display()
        )));
    }
    let keys: Vec<&str> = if account == DEFAULT_ACCOUNT {
        vec!["integrations", integration, "permissions"]
    } else {
        vec![
            "integrations",
            integration,
            "accounts",
            account,
            "permissions",
        ]
    };
    let perms = ensure_object(&mut root, &keys)?;
    if let Some(r) = &args.read {
        perms.insert("read".into(), json!(r));
    }
    if let Some(w) = &args.write {
        perms.insert("write".into(), json!(w));
    }
    let result = Value::Object(perms.clone());
    let text = serde_yaml::to_string(&root)
        .map_err(|e| Error::config(format!("cannot encode config: {e}")))?;
    write_private(path, &text)?;
    Ok(result)
}

fn ensure_object<'a>(
    v: &'a mut Value,
    keys: &[&str],
) -> Result<&'a mut serde_json::Map<String, Value>> {
    let mut cur = v;
    for k in keys {
        let map = match cur {
            Value::Object(m) => m,
            _ => {
                return Err(Error::config(format!(
                    "config.yaml: '{k}' must be inside a mapping"
                )));
            }
        };
        let next = map.entry(k.to_string()).or_insert_with(|| json!({}));
        if next.is_null() {
            *next = json!({});
        }
        cur = next;
    }
    match cur {
        Value::Object(m) => Ok(m),
        _ => Err(Error::config(format!(
            "config.yaml: '{}' must be a mapping",
            keys.join(".")
        ))),
    }
}

/// An exclusive advisory lock on `<dir>/.lock`, held until the returned file is dropped. The
/// lock file is created 0600 in a 0700 directory; it stays behind, empty, and is reused.
fn lock_config_dir(dir: &std::path::Path) -> Result<std::fs::File> {
    crate::credentials::create_private_dir(dir)?;
    let path = dir.join(".lock");
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let file = opts.open(&path).map_err(|e| Error::io(&path, e))?;
    file.lock().map_err(|e| Error::io(&path, e))?;
    Ok(file)
}

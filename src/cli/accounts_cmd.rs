//! `kosmo integrations:accounts [NAME] [--json]`: every account of every integration (or of one),
//! where each credential would come from, the base URL and the permissions, so a user can see
//! their set-up at a glance. No secret value is read for it and no credential helper is run.

use std::process::ExitCode;

use serde_json::{Value, json};

use super::{Context, fail, outln, print_json};
use crate::credentials::{Credentials, DEFAULT_ACCOUNT};
use crate::error::Result;
use crate::manifest::Class;
use crate::permissions::Permissions;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kosmo integrations:accounts\n  kosmo integrations:accounts NAME --json"
)]
pub struct AccountsArgs {
    /// Only this integration.
    pub integration: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Context, args: AccountsArgs) -> ExitCode {
    match accounts(ctx, &args) {
        Ok(list) => {
            if args.json {
                print_json(&json!({"success": true, "result": list}));
            } else {
                print_text(&list);
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e, args.json),
    }
}

fn accounts(ctx: &Context, args: &AccountsArgs) -> Result<Vec<Value>> {
    let registry = ctx.registry()?;
    let creds = Credentials::load(None)?;
    let perms = Permissions::load(None)?;
    let integrations: Vec<_> = match &args.integration {
        Some(name) => vec![registry.require(name)?.clone()],
        None => registry.iter().cloned().collect(),
    };
    let mut out = Vec::new();
    for integ in integrations {
        let m = &integ.manifest;
        for account in perms.with_accounts(&m.name, creds.accounts(&m.name)) {
            // An account known only from config.yaml has no credentials entry yet.
            let sources = match creds.describe(m, &account) {
                Ok(s) => s,
                Err(_) if account != DEFAULT_ACCOUNT => creds.describe(m, DEFAULT_ACCOUNT)?,
                Err(e) => return Err(e),
            };
            let credentials: Vec<Value> = sources
                .credentials
                .iter()
                .map(|(name, src)| {
                    let label = m.credentials.get(name).map(|c| c.label.clone());
                    json!({
                        "name": name,
                        "label": label,
                        "state": src.state(),
                        "source": src.describe(),
                    })
                })
                .collect();
            out.push(json!({
                "integration": m.name,
                "account": account,
                "base_url": sources.base_url,
                "base_url_source": sources.base_url_source,
                "credentials": credentials,
                "permissions": {
                    "read": perms.policy(&m.name, &account, Class::Read).as_str(),
                    "write": perms.policy(&m.name, &account, Class::Write).as_str(),
                },
            }));
        }
    }
    Ok(out)
}

fn print_text(list: &[Value]) {
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    let mut last = String::new();
    for a in list {
        let integration = text(&a["integration"]);
        if integration != last {
            outln!("{integration}");
            last = integration;
        }
        outln!(
            "  {}  {} ({})  read: {}, write: {}",
            text(&a["account"]),
            text(&a["base_url"]),
            text(&a["base_url_source"]),
            text(&a["permissions"]["read"]),
            text(&a["permissions"]["write"]),
        );
        for c in a["credentials"].as_array().into_iter().flatten() {
            outln!("    {:<12} {}", text(&c["name"]), text(&c["source"]));
        }
    }
}

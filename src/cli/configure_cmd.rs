//! `integrations:configure`: write named accounts and their secrets (owned by the executor issue).

use std::process::ExitCode;

use super::Context;

#[derive(Debug, Clone, clap::Args)]
pub struct ConfigureArgs {
    /// The integration, e.g. anthropic.
    pub integration: String,
    /// Account name.
    #[arg(long, default_value = "default")]
    pub account: String,
    /// Set a field: api_key=..., admin_key=..., url=..., api_key_env=NAME, api_key_cmd="..." (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
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

pub fn run(_ctx: &Context, _args: ConfigureArgs) -> ExitCode {
    eprintln!("error: integrations:configure is being built (issue 3)");
    ExitCode::from(1)
}

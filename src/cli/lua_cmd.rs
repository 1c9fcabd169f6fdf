//! `integrations:lua` and `mcp:lua`: run Lua, print the output or the `--json` envelope.

use std::path::PathBuf;
use std::process::ExitCode;

use super::Context;

/// Which namespaces a script sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `app.integrations.*`, `app.mcp.*`, `docs.*`, `json.*`, `regex.*`.
    Integrations,
    /// Only `app.mcp.*` and `mcp.*` (plus the helpers).
    McpOnly,
}

#[derive(Debug, Clone, clap::Args)]
pub struct LuaArgs {
    /// A Lua file to run; `-` reads standard input.
    pub file: Option<PathBuf>,
    /// Lua code to run instead of a file.
    #[arg(short = 'e', long = "eval", value_name = "CODE")]
    pub eval: Option<String>,
    /// Print one JSON envelope on stdout.
    #[arg(long)]
    pub json: bool,
    /// Allow calls whose permission is `ask` or `deny` (recorded in the envelope).
    #[arg(long)]
    pub force: bool,
    /// Named account for calls that do not name one.
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,
    /// Memory limit for the Lua state (e.g. 64M, 1G).
    #[arg(long, value_name = "SIZE")]
    pub memory_limit: Option<String>,
    /// CPU budget in seconds (an instruction budget).
    #[arg(long, value_name = "SECONDS")]
    pub cpu_limit: Option<String>,
    /// Wall-clock limit in seconds, including time spent waiting on HTTP.
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<String>,
    /// Maximum integration calls per run.
    #[arg(long, value_name = "N")]
    pub max_calls: Option<String>,
    /// Refuse every write call, even with --force.
    #[arg(long)]
    pub read_only: bool,
    /// Build each request and return it instead of sending it.
    #[arg(long)]
    pub dry_run: bool,
    /// Start the built-in simulator and point every account at it.
    #[arg(long)]
    pub offline: bool,
    /// Interactive read-eval-print loop.
    #[arg(long)]
    pub repl: bool,
}

pub async fn run(_ctx: &Context, _args: LuaArgs, _mode: Mode) -> ExitCode {
    eprintln!("error: integrations:lua is being built (issue 5)");
    ExitCode::from(1)
}

//! `integrations:docs` and `docs:generate`.

use std::path::PathBuf;
use std::process::ExitCode;

use super::Context;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Markdown,
    Text,
    Json,
}

#[derive(Debug, Clone, clap::Args)]
pub struct DocsArgs {
    /// A page: `anthropic`, `anthropic.create_message`, `integrations.anthropic`, `overview`, ...
    pub page: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "markdown")]
    pub format: Format,
    /// Same as --format json.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct GenerateArgs {
    /// Output directory.
    #[arg(long, default_value = "docs/reference")]
    pub out: PathBuf,
    /// Exit 1 if the directory differs from what the manifests render now (writes nothing).
    #[arg(long)]
    pub check: bool,
}

pub fn show(_ctx: &Context, _args: DocsArgs) -> ExitCode {
    eprintln!("error: integrations:docs is being built (issue 6)");
    ExitCode::from(1)
}

pub fn generate(_ctx: &Context, _args: GenerateArgs) -> ExitCode {
    eprintln!("error: docs:generate is being built (issue 6)");
    ExitCode::from(1)
}

//! The headless command line. Each command lives in its own file; this one parses and dispatches.
//!
//! stdout belongs to results and `--json`; diagnostics go to stderr through `tracing`
//! (`KOSMO_LOG=debug` for more). Exit codes: 0 success, 1 failure, 2 usage error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::Result;
use crate::registry::{Registry, RegistryOptions};

pub mod accounts_cmd;
pub mod call_cmd;
pub mod configure_cmd;
pub mod docs_cmd;
pub mod doctor_cmd;
pub mod import_cmd;
pub mod integrations;
pub mod lua_cmd;
pub mod manifests_cmd;
pub mod mcp_cmd;
pub mod progress;
pub mod simulator_cmd;

/// `println!` that survives a closed stdout (`kosmo ... | head`): the reader has gone, so the
/// line is dropped instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}
pub(crate) use outln;

/// Exit code for a usage error (bad flag, bad value).
pub const EXIT_USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "kosmo",
    version,
    about = "Drive API integrations from sandboxed Lua, declared by YAML manifests",
    propagate_version = true
)]
pub struct Cli {
    /// Extra manifest directory (repeatable); also KOSMO_MANIFEST_PATH (colon-separated).
    #[arg(long = "manifests", value_name = "DIR", global = true)]
    pub manifests: Vec<PathBuf>,

    /// Colour in diagnostics and help: auto (a terminal, and NO_COLOR unset), always or never.
    #[arg(long, value_name = "WHEN", global = true, default_value = "auto")]
    pub color: ColorChoice,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the loaded integrations and their functions.
    #[command(
        name = "integrations:list",
        after_help = "Examples:\n  kosmo integrations:list\n  kosmo integrations:list --json"
    )]
    IntegrationsList(integrations::ListArgs),
    /// Print a function's input JSON Schema (NAME.FUNCTION).
    #[command(
        name = "integrations:schema",
        after_help = "Examples:\n  kosmo integrations:schema NAME.FUNCTION\n  kosmo integrations:schema NAME.FUNCTION | jq .properties"
    )]
    IntegrationsSchema(integrations::SchemaArgs),
    /// Check manifest files (or the loaded manifests) and report every problem.
    #[command(
        name = "manifests:check",
        after_help = "Examples:\n  kosmo manifests:check\n  kosmo manifests:check my-manifests/ --json"
    )]
    ManifestsCheck(manifests_cmd::CheckArgs),
    /// Run every example of manifest files against the built-in simulator, one verdict each.
    #[command(
        name = "manifests:test",
        after_help = "Examples:\n  kosmo manifests:test my-manifests/\n  kosmo manifests:test my-manifests/NAME.yaml --json"
    )]
    ManifestsTest(manifests_cmd::TestArgs),
    /// Write a manifest from an OpenAPI description (3.0 or 3.1), reporting what cannot be mapped.
    #[command(
        name = "manifests:import",
        after_help = "Examples:\n  kosmo manifests:import openapi.json --name petstore --out manifests/petstore.yaml\n  kosmo manifests:import api.yaml --include pets --exclude '/admin/**' --json\n  curl -s https://example.com/openapi.yaml | kosmo manifests:import - > petstore.yaml"
    )]
    ManifestsImport(import_cmd::ImportArgs),
    /// List accounts: where each credential comes from, base URL, permissions (never a secret).
    #[command(name = "integrations:accounts")]
    IntegrationsAccounts(accounts_cmd::AccountsArgs),
    /// Check the set-up: manifests, config files, each account's credentials, a live call each.
    #[command(name = "integrations:doctor")]
    IntegrationsDoctor(doctor_cmd::DoctorArgs),
    /// Configure a named account (secrets, base URL) and permissions.
    #[command(
        name = "integrations:configure",
        after_help = "Examples:\n  kosmo integrations:configure NAME --account work --set-stdin api_key < key.txt\n  kosmo integrations:configure NAME --account work --set url=https://proxy.example.com --write allow\n  kosmo integrations:configure NAME --account work --unset url"
    )]
    IntegrationsConfigure(configure_cmd::ConfigureArgs),
    /// Run Lua against the integration registry.
    #[command(
        name = "integrations:lua",
        after_help = "Examples:\n  kosmo integrations:lua --eval 'dump(docs.list())' --json\n  kosmo integrations:lua workflow.lua --json\n  kosmo integrations:lua --offline --force workflow.lua\n  echo 'return 1 + 1' | kosmo integrations:lua --json"
    )]
    IntegrationsLua(lua_cmd::LuaArgs),
    /// Run Lua that only needs MCP servers (app.mcp.*, mcp.*).
    #[command(
        name = "mcp:lua",
        after_help = "Examples:\n  kosmo mcp:lua --eval 'dump(mcp.servers())' --json"
    )]
    McpLua(lua_cmd::LuaArgs),
    /// List the configured MCP servers and where each is configured (starts none).
    #[command(
        name = "mcp:list",
        after_help = "Examples:\n  kosmo mcp:list\n  kosmo mcp:list --json"
    )]
    McpList(mcp_cmd::ListArgs),
    /// Serve kosmo's integration functions as MCP tools (stdio, or --http ADDR).
    #[command(
        name = "mcp:serve",
        after_help = "Examples:\n  kosmo mcp:serve\n  kosmo mcp:serve --integration NAME --account work --read-only\n  kosmo mcp:serve --offline --http 127.0.0.1:8765"
    )]
    McpServe(mcp_cmd::ServeArgs),
    /// Show the rendered docs of an integration, a function or a guide page.
    #[command(
        name = "integrations:docs",
        after_help = "Examples:\n  kosmo integrations:docs NAME\n  kosmo integrations:docs NAME.FUNCTION --format lua\n  kosmo integrations:docs errors"
    )]
    IntegrationsDocs(docs_cmd::DocsArgs),
    /// Write the whole generated reference (markdown and LuaCATS) to a directory.
    #[command(
        name = "docs:generate",
        after_help = "Examples:\n  kosmo docs:generate --out docs/reference\n  kosmo docs:generate --check --out docs/reference"
    )]
    DocsGenerate(docs_cmd::GenerateArgs),
    /// Serve an offline simulator of an integration on loopback.
    #[command(
        name = "simulator:serve",
        after_help = "Examples:\n  kosmo simulator:serve NAME --port 0\n  kosmo simulator:serve NAME --mock --key api_key=sk-test\n  kosmo simulator:serve NAME --set batch_delay_ms=500 --faults 'FUNCTION=429'"
    )]
    SimulatorServe(simulator_cmd::ServeArgs),
    /// Call one function from the shell: NAME.FUNCTION [JSON] [--KEY VALUE]... (see --help).
    #[command(
        name = "integrations:call",
        disable_help_flag = true,
        after_help = "Examples:\n  kosmo integrations:call NAME.FUNCTION --id 0123 --json"
    )]
    IntegrationsCall {
        /// NAME.FUNCTION, an optional JSON payload, --KEY VALUE parameters and options.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<String>,
    },
    /// `integrations:NAME FUNCTION ...`, the shortcut of integrations:call.
    #[command(external_subcommand)]
    External(Vec<String>),
    /// Print a shell completion script: `kosmo completions bash > /etc/bash_completion.d/kosmo`.
    #[command(
        name = "completions",
        after_help = "Examples:\n  kosmo completions bash > ~/.local/share/bash-completion/completions/kosmo\n  kosmo completions zsh > ~/.zfunc/_kosmo\n  kosmo completions fish > ~/.config/fish/completions/kosmo.fish"
    )]
    Completions {
        /// The shell: bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Whether stderr gets ANSI colours: `never` and `NO_COLOR` (any non-empty value, per
    /// no-color.org) win over a terminal; `always` wins over both.
    fn stderr_colors(self) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::IsTerminal::is_terminal(&std::io::stderr())
            }
        }
    }
}

/// What every command gets: the global options.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub manifest_dirs: Vec<PathBuf>,
}

impl Context {
    /// Load the registry: built-ins, KOSMO_MANIFEST_PATH, then `--manifests`.
    pub fn registry(&self) -> Result<Registry> {
        Registry::load(&RegistryOptions {
            dirs: self.manifest_dirs.clone(),
            ignore_env: false,
        })
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let color = early_color(&argv);
    let cmd = {
        use clap::CommandFactory;
        Cli::command().color(match color {
            ColorChoice::Always => clap::ColorChoice::Always,
            ColorChoice::Never => clap::ColorChoice::Never,
            ColorChoice::Auto if !color.stderr_colors() => clap::ColorChoice::Never,
            ColorChoice::Auto => clap::ColorChoice::Auto,
        })
    };
    init_tracing(color.stderr_colors());
    let cli = match cmd
        .try_get_matches_from(&argv)
        .and_then(|m| <Cli as clap::FromArgMatches>::from_arg_matches(&m))
    {
        Ok(cli) => cli,
        Err(e) => return usage_error(e, &argv),
    };
    if let Command::Completions { shell } = cli.command {
        use clap::CommandFactory;
        let mut cmd = Cli::command();
        // Into a buffer first: clap_complete panics on a write error (`| head` closes the pipe).
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut cmd, "kosmo", &mut script);
        use std::io::Write as _;
        let _ = std::io::stdout().lock().write_all(&script);
        return ExitCode::SUCCESS;
    }
    let ctx = Context {
        manifest_dirs: cli.manifests,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Command::IntegrationsList(a) => integrations::list(&ctx, a),
            Command::IntegrationsSchema(a) => integrations::schema(&ctx, a),
            Command::ManifestsCheck(a) => manifests_cmd::check(&ctx, a),
            Command::ManifestsTest(a) => manifests_cmd::test(&ctx, a).await,
            Command::ManifestsImport(a) => import_cmd::run(&ctx, a),
            Command::IntegrationsConfigure(a) => configure_cmd::run(&ctx, a),
            Command::IntegrationsAccounts(a) => accounts_cmd::run(&ctx, a),
            Command::IntegrationsDoctor(a) => doctor_cmd::run(&ctx, a).await,
            Command::IntegrationsLua(a) => lua_cmd::run(&ctx, a, lua_cmd::Mode::Integrations).await,
            Command::McpLua(a) => lua_cmd::run(&ctx, a, lua_cmd::Mode::McpOnly).await,
            Command::McpList(a) => mcp_cmd::list(&ctx, a),
            Command::McpServe(a) => mcp_cmd::serve(&ctx, a).await,
            Command::IntegrationsDocs(a) => docs_cmd::show(&ctx, a),
            Command::DocsGenerate(a) => docs_cmd::generate(&ctx, a),
            Command::SimulatorServe(a) => simulator_cmd::serve(&ctx, a).await,
            Command::Completions { .. } => ExitCode::SUCCESS,
            Command::IntegrationsCall { args } => call_cmd::run(&ctx, args).await,
            Command::External(argv) => external(&ctx, argv).await,
        }
    })
}

/// An unknown subcommand: `integrations:NAME` of a loaded integration is the shortcut of
/// `integrations:call NAME.FUNCTION`; anything else is a usage error with the closest command.
async fn external(ctx: &Context, mut argv: Vec<String>) -> ExitCode {
    let json = argv.iter().any(|a| a == "--json");
    let command = if argv.is_empty() {
        String::new()
    } else {
        argv.remove(0)
    };
    if let Some(name) = command.strip_prefix("integrations:")
        && ctx
            .registry()
            .map(|r| r.get(name).is_some())
            .unwrap_or(false)
    {
        return call_cmd::shortcut(ctx, name, argv).await;
    }
    use clap::CommandFactory;
    let known: Vec<String> = Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    let close = crate::error::closest(&command, known.iter().map(String::as_str));
    let mut message = format!("unrecognized command '{command}'");
    if let Some(best) = close.first() {
        message.push_str(&format!("; did you mean '{best}'?"));
    }
    message.push_str(" (kosmo --help lists the commands; integrations:NAME calls a function of a loaded integration)");
    if json {
        print_usage_json(&message);
    } else {
        eprintln!("error: {message}");
    }
    ExitCode::from(EXIT_USAGE)
}

/// A usage error found after parsing (a bad flag value), on stderr.
pub(crate) fn usage_message(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(EXIT_USAGE)
}

/// A usage error on stdout under `--json`, for the commands whose envelope is `{success, error}`.
fn print_usage_json(message: &str) {
    print_json(&serde_json::json!({
        "success": false,
        "error": {"code": "usage_error", "message": message},
    }));
}

/// `--color` as given, read before clap runs so that clap's own errors honour it too; an
/// invalid value is left for clap to report.
fn early_color(argv: &[std::ffi::OsString]) -> ColorChoice {
    let mut choice = ColorChoice::Auto;
    let mut it = argv.iter().skip(1).map(|a| a.to_string_lossy());
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        let value = match a.strip_prefix("--color") {
            Some("") => it.next().map(|v| v.into_owned()),
            Some(rest) => rest.strip_prefix('=').map(str::to_string),
            None => None,
        };
        match value.as_deref() {
            Some("always") => choice = ColorChoice::Always,
            Some("never") => choice = ColorChoice::Never,
            Some("auto") => choice = ColorChoice::Auto,
            _ => {}
        }
    }
    choice
}

/// A usage error (unknown flag, extra argument, bad value). With `--json` anywhere on the
/// command line it is a JSON envelope on stdout, so a caller that parses stdout always gets
/// JSON; `--help` and `--version` print as usual.
fn usage_error(e: clap::Error, argv: &[std::ffi::OsString]) -> ExitCode {
    if !e.use_stderr() {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let wants_json = argv
        .iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "--json");
    // The Lua commands' usage errors are their one envelope, like every other outcome of theirs.
    let lua_command = argv
        .iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "integrations:lua" || a == "mcp:lua");
    if wants_json {
        let message = e
            .render()
            .to_string()
            .lines()
            .map(str::trim_end)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        let message = message.strip_prefix("error: ").unwrap_or(&message);
        if lua_command {
            let outcome = crate::lua::envelope::Outcome::usage(message, Default::default());
            print_json(&outcome.to_json());
        } else {
            print_usage_json(message);
        }
    } else {
        let _ = e.print();
    }
    ExitCode::from(EXIT_USAGE)
}

fn init_tracing(ansi: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KOSMO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .try_init();
}

/// Print a JSON value to stdout, pretty, with a trailing newline. A closed pipe (`| head`) is
/// not an error worth a panic: the reader has gone, so the output is simply dropped.
pub fn print_json(value: &serde_json::Value) {
    use std::io::Write;
    match serde_json::to_string_pretty(value) {
        Ok(s) => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{s}").and_then(|()| out.flush());
        }
        Err(e) => eprintln!("error: cannot encode JSON output: {e}"),
    }
}

/// Report an error the way every non-Lua command does: `{success:false, error}` with `--json`,
/// `error: ...` on stderr otherwise.
pub fn fail(err: &crate::Error, json: bool) -> ExitCode {
    if json {
        print_json(&serde_json::json!({"success": false, "error": err.to_json()}));
    } else {
        eprintln!("error: {err}");
    }
    ExitCode::from(1)
}

//! `integrations:lua` and `mcp:lua`: run Lua, print the output or the `--json` envelope.
//!
//! Code comes from `--eval`, else FILE, else standard input when FILE is `-` or stdin is a pipe
//! (`--repl` reads entries interactively instead). With `--json` exactly one envelope is printed
//! on stdout for every outcome (usage errors included); without it the output streams as it is
//! printed, then the results, and errors go to stderr. Exit codes: 0, 1 failure, 2 usage.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value as Json;

use super::Context;
use crate::lua::limits::{self, Kind};
use crate::lua::{self, Limits, Meta, Options, Outcome, Runtime, Shared};

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
    /// Memory limit for the Lua state: bytes or 512K, 64M, 1G [default: 64M].
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_limit: Option<String>,
    /// CPU budget in seconds (instructions, and time the VM runs) [default: 30].
    #[arg(long, value_name = "SECONDS", allow_hyphen_values = true)]
    pub cpu_limit: Option<String>,
    /// Wall-clock limit in seconds, including time spent waiting on HTTP [default: 600].
    #[arg(long, value_name = "SECONDS", allow_hyphen_values = true)]
    pub timeout: Option<String>,
    /// Maximum integration calls per run [default: 1000].
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
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

/// Turn the limit flags into [`Limits`]; a bad value is a usage error, never reinterpreted.
pub fn parse_limits(args: &LuaArgs) -> Result<Limits, String> {
    let mut l = Limits::default();
    if let Some(s) = &args.memory_limit {
        l.memory = limits::parse_size(s).map_err(|e| format!("--memory-limit: {e}"))?;
        if l.memory < 256 * 1024 {
            return Err(format!(
                "--memory-limit: {s} is too small (the minimum is 256K)"
            ));
        }
    }
    if let Some(s) = &args.cpu_limit {
        l.cpu = limits::parse_seconds(s).map_err(|e| format!("--cpu-limit: {e}"))?;
    }
    if let Some(s) = &args.timeout {
        l.timeout = limits::parse_seconds(s).map_err(|e| format!("--timeout: {e}"))?;
    }
    if let Some(s) = &args.max_calls {
        l.max_calls = limits::parse_count(s).map_err(|e| format!("--max-calls: {e}"))?;
    }
    Ok(l)
}

enum Source {
    Code(String, String),
    Repl,
}

fn strip_preamble(code: String) -> String {
    let code = code
        .strip_prefix('\u{feff}')
        .map(str::to_string)
        .unwrap_or(code);
    if code.starts_with('#') {
        // A shebang line: keep the newline so line numbers stay right.
        match code.find('\n') {
            Some(i) => code[i..].to_string(),
            None => String::new(),
        }
    } else {
        code
    }
}

fn read_source(args: &LuaArgs) -> Result<Source, Box<Outcome>> {
    let meta = meta_of(args);
    if args.repl {
        return Ok(Source::Repl);
    }
    if let Some(code) = &args.eval {
        return Ok(Source::Code(code.clone(), "=(eval)".into()));
    }
    let from_stdin = match &args.file {
        Some(f) if f.as_os_str() == "-" => true,
        Some(f) => {
            return match std::fs::read_to_string(f) {
                Ok(code) => Ok(Source::Code(
                    strip_preamble(code),
                    format!("@{}", f.display()),
                )),
                Err(e) => Err(Box::new(Outcome::failed(
                    crate::Error::io(f, e).to_json(),
                    meta,
                ))),
            };
        }
        None => !std::io::stdin().is_terminal(),
    };
    if !from_stdin {
        return Err(Box::new(Outcome::usage(
            "nothing to run: pass --eval CODE, a FILE (or - for standard input), pipe code on stdin, or use --repl",
            meta,
        )));
    }
    let mut code = String::new();
    match std::io::stdin().read_to_string(&mut code) {
        Ok(_) => Ok(Source::Code(strip_preamble(code), "=stdin".into())),
        Err(e) => Err(Box::new(Outcome::failed(
            crate::Error::io("<stdin>", e).to_json(),
            meta,
        ))),
    }
}

fn meta_of(args: &LuaArgs) -> Meta {
    Meta {
        permission_bypassed: args.force,
        dry_run: args.dry_run,
        read_only: args.read_only,
        offline: args.offline,
    }
}

/// Print an outcome the way the flags ask for and turn it into an exit code.
pub fn emit(outcome: &Outcome, json: bool) -> ExitCode {
    if json {
        // Not `println!`: a closed pipe (`| head`) must not panic.
        let text = serde_json::to_string_pretty(&outcome.to_json()).unwrap_or_default();
        out_line(&text);
    } else {
        print_text(outcome);
    }
    ExitCode::from(outcome.exit_code())
}

fn out_line(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

fn print_text(outcome: &Outcome) {
    if !outcome.output.is_empty() {
        out_line(&outcome.output);
    }
    if let Some(results) = &outcome.result {
        for v in results {
            match v {
                Json::String(s) => out_line(s),
                other => out_line(&serde_json::to_string_pretty(other).unwrap_or_default()),
            }
        }
    }
    if let Some(msg) = outcome.error_message() {
        match outcome.error_code() {
            Some(code) if code != "lua_error" => eprintln!("error: {msg} [{code}]"),
            _ => eprintln!("error: {msg}"),
        }
    }
}

/// Stops a run stuck where the instruction hook cannot reach (inside one long C call), after
/// its CPU budget or wall clock: prints the envelope (so it is never lost) and exits.
fn spawn_watchdog(shared: Arc<Shared>, json: bool) {
    let cpu = Duration::from_secs_f64(shared.limits.limits.cpu.max(1.0) + 1.0);
    let grace = Duration::from_secs(2);
    let spawned = std::thread::Builder::new()
        .name("kosmo-watchdog".into())
        .spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(50));
                let st = &shared.limits;
                if st.is_finished() {
                    return;
                }
                let kind = if std::time::Instant::now() > st.deadline() + grace {
                    Some(Kind::Timeout)
                } else if st.stalled_for().is_some_and(|d| d > cpu) {
                    Some(Kind::Cpu)
                } else {
                    None
                };
                if let Some(kind) = kind {
                    st.trip(kind);
                    let outcome = shared.emergency_outcome(kind);
                    let code = emit(&outcome, json);
                    let _ = code;
                    std::process::exit(1);
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the watchdog thread: {e}");
    }
}

pub async fn run(ctx: &Context, args: LuaArgs, mode: Mode) -> ExitCode {
    let json = args.json;
    let meta = meta_of(&args);
    let limits = match parse_limits(&args) {
        Ok(l) => l,
        Err(msg) => return emit(&Outcome::usage(msg, meta), json),
    };
    let source = match read_source(&args) {
        Ok(s) => s,
        Err(outcome) => return emit(&outcome, json),
    };
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let options = Options {
        mode: match mode {
            Mode::Integrations => lua::Mode::Integrations,
            Mode::McpOnly => lua::Mode::McpOnly,
        },
        limits,
        force: args.force,
        read_only: args.read_only,
        dry_run: args.dry_run,
        offline: args.offline,
        account: args.account.clone(),
        capture_output: json,
        manifest_dirs: ctx.manifest_dirs.clone(),
        config_dir: None,
        allow_prompt: interactive,
    };
    let rt = match Runtime::new(options) {
        Ok(rt) => rt,
        Err(e) => return emit(&Outcome::failed(e.to_json(), meta), json),
    };
    match source {
        Source::Code(code, name) => {
            spawn_watchdog(rt.shared().clone(), json);
            let outcome = rt.run(&code, &name).await;
            rt.shared().limits.finish();
            emit(&outcome, json)
        }
        Source::Repl => repl(&rt, json, interactive).await,
    }
}

async fn repl(rt: &Runtime, json: bool, interactive: bool) -> ExitCode {
    let stdin = std::io::stdin();
    let mut buf = String::new();
    loop {
        if interactive {
            eprint!("{}", if buf.is_empty() { "lua> " } else { "...> " });
        }
        let mut line = String::new();
        match stdin.lock().read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if buf.is_empty() && matches!(line.trim(), ":quit" | ":q" | ":exit") {
            break;
        }
        if buf.is_empty() && line.trim().is_empty() {
            continue;
        }
        buf.push_str(&line);
        let Some(outcome) = rt.run_repl(&buf).await else {
            continue;
        };
        buf.clear();
        if json {
            match serde_json::to_string(&outcome.to_json()) {
                Ok(s) => out_line(&s),
                Err(e) => eprintln!("error: {e}"),
            }
        } else {
            print_text(&outcome);
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebang_and_bom_are_stripped_keeping_lines() {
        assert_eq!(
            strip_preamble("#!/usr/bin/env kosmo\nreturn 1".into()),
            "\nreturn 1"
        );
        assert_eq!(strip_preamble("\u{feff}return 1".into()), "return 1");
        assert_eq!(strip_preamble("return 1".into()), "return 1");
    }
}

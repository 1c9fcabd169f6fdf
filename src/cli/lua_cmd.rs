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
use crate::simulator::{OfflineOptions, OfflineSetting};

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
    /// Branches of `parallel(...)` that run at the same time, 1 to 1024 [default: 64].
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub parallel: Option<String>,
    /// Refuse every write call, even with --force.
    #[arg(long)]
    pub read_only: bool,
    /// Build each request and return it instead of sending it.
    #[arg(long)]
    pub dry_run: bool,
    /// Start the built-in simulator and point every account at it.
    #[arg(long)]
    pub offline: bool,
    /// With --offline: an option of the simulators, `[INTEGRATION.]OPTION=VALUE` (e.g.
    /// `batch_delay_ms=300` to rehearse a slow batch); repeatable.
    #[arg(
        long = "sim-set",
        value_name = "[NAME.]OPTION=VALUE",
        requires = "offline"
    )]
    pub sim_set: Vec<String>,
    /// With --offline: added latency per simulated response, in milliseconds.
    #[arg(long = "sim-latency", value_name = "MS", requires = "offline")]
    pub sim_latency: Option<u64>,
    /// Interactive read-eval-print loop.
    #[arg(long)]
    pub repl: bool,
    /// Let scripts read and write local files under DIR (`save_to`, file uploads); repeatable.
    /// Without it a script has no local file access.
    #[arg(long = "allow-path", value_name = "DIR")]
    pub allow_path: Vec<PathBuf>,
    /// Anything after FILE: refused with a usage error (in the envelope with --json).
    #[arg(hide = true)]
    pub extra: Vec<String>,
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
    if let Some(s) = &args.parallel {
        let n = limits::parse_count(s).map_err(|e| format!("--parallel: {e}"))?;
        if !(1..=limits::MAX_PARALLEL as u64).contains(&n) {
            return Err(format!(
                "--parallel: {s} is out of range (1 to {})",
                limits::MAX_PARALLEL
            ));
        }
        l.parallel = n as usize;
    }
    Ok(l)
}

enum Source {
    Code(Vec<u8>, String),
    Repl,
}

/// Drop a UTF-8 byte-order mark and a shebang line. Lua source is bytes, so a file need not be
/// UTF-8 (Latin-1 string literals load as they are).
fn strip_preamble(code: Vec<u8>) -> Vec<u8> {
    let code = match code.strip_prefix(b"\xef\xbb\xbf") {
        Some(rest) => rest.to_vec(),
        None => code,
    };
    if code.starts_with(b"#") {
        // A shebang line: keep the newline so line numbers stay right.
        match code.iter().position(|&b| b == b'\n') {
            Some(i) => code[i..].to_vec(),
            None => Vec::new(),
        }
    } else {
        code
    }
}

/// Whether standard input can carry code: a pipe, a socket or a regular file (`< file.lua`).
/// A terminal or a device such as `/dev/null` cannot: running "nothing" there would report a
/// success for a command that was never given code.
fn stdin_has_code() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::FileTypeExt;
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return false;
    }
    let meta = stdin
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata());
    match meta {
        Ok(m) => {
            let t = m.file_type();
            t.is_fifo() || t.is_socket() || t.is_file()
        }
        Err(_) => false,
    }
}

const NO_CODE: &str = "no code: pass --eval CODE, a FILE, or pipe code on stdin";

fn read_source(args: &LuaArgs) -> Result<Source, Box<Outcome>> {
    let meta = meta_of(args);
    if args.repl {
        return Ok(Source::Repl);
    }
    if let Some(code) = &args.eval {
        return Ok(Source::Code(code.clone().into_bytes(), "=(eval)".into()));
    }
    let from_stdin = match &args.file {
        Some(f) if f.as_os_str() == "-" => true,
        Some(f) => {
            return match std::fs::read(f) {
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
        None => stdin_has_code(),
    };
    if !from_stdin {
        return Err(Box::new(Outcome::usage(
            format!("{NO_CODE} (- reads standard input; --repl starts a prompt)"),
            meta,
        )));
    }
    let mut code = Vec::new();
    match std::io::stdin().read_to_end(&mut code) {
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
        warnings: Vec::new(),
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
    let cpu = Duration::try_from_secs_f64(shared.limits.limits.cpu.max(1.0) + 1.0)
        .unwrap_or(Duration::from_secs(u32::MAX as u64));
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
                    crate::exec::partial::remove_all();
                    kill_mcp_servers(&shared);
                    std::process::exit(1);
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the watchdog thread: {e}");
    }
}

/// On an abrupt exit (no clean shutdown is possible any more): SIGTERM to every MCP server
/// process this run started, so none outlives kosmo.
fn kill_mcp_servers(shared: &Shared) {
    for pid in shared.mcp.pids() {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// SIGINT, SIGTERM and SIGHUP stop the run like a limit does (the envelope is still printed),
/// reported as `interrupted`; exit 130 / 143 / 129. A VM stuck inside one long C call cannot see the stop, so
/// after a grace period the envelope is printed from here and the process exits.
///
/// The listener has its own thread and runtime: the run's runtime is single-threaded (see
/// `cli::main`), and a script busy in a loop never yields to it, so a task spawned there would
/// not see the signal until the script waits on something.
fn spawn_signal_handler(shared: Arc<Shared>, json: bool) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        tracing::warn!("cannot listen for SIGINT/SIGTERM/SIGHUP");
        return;
    };
    // Installed here, before the script starts, so a signal that arrives as it starts is not met
    // by the default action (which would end the process without an envelope); received on the
    // listener's own thread.
    let registered = {
        let _context = runtime.enter();
        (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        )
    };
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = registered else {
        tracing::warn!("cannot listen for SIGINT/SIGTERM/SIGHUP");
        return;
    };
    let spawned = std::thread::Builder::new()
        .name("kosmo-signals".into())
        .spawn(move || {
            let kind = runtime.block_on(async {
                tokio::select! {
                    _ = int.recv() => Kind::Interrupt,
                    _ = term.recv() => Kind::Terminate,
                    _ = hup.recv() => Kind::Hangup,
                }
            });
            shared.limits.trip(kind);
            std::thread::sleep(Duration::from_secs(2));
            if !shared.limits.is_finished() {
                let outcome = shared.emergency_outcome(kind);
                let _ = emit(&outcome, json);
                crate::exec::partial::remove_all();
                kill_mcp_servers(&shared);
                std::process::exit(i32::from(outcome.exit_code()));
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the signal thread: {e}");
    }
}

pub async fn run(ctx: &Context, args: LuaArgs, mode: Mode) -> ExitCode {
    let json = args.json;
    let meta = meta_of(&args);
    let limits = match parse_limits(&args) {
        Ok(l) => l,
        Err(msg) => return emit(&Outcome::usage(msg, meta), json),
    };
    if !args.extra.is_empty() {
        let msg = format!(
            "unexpected argument{} {}: pass one FILE (or --eval CODE); script arguments are not supported",
            if args.extra.len() > 1 { "s" } else { "" },
            args.extra
                .iter()
                .map(|a| format!("'{a}'"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        return emit(&Outcome::usage(msg, meta), json);
    }
    if let Some(bad) = args.allow_path.iter().find(|d| !d.is_dir()) {
        let msg = format!("--allow-path {}: not an existing directory", bad.display());
        return emit(&Outcome::usage(msg, meta), json);
    }
    let mut simulator = OfflineOptions {
        latency_ms: args.sim_latency.unwrap_or(0),
        ..Default::default()
    };
    for s in &args.sim_set {
        match OfflineSetting::parse(s) {
            Ok(set) => simulator.settings.push(set),
            Err(msg) => return emit(&Outcome::usage(msg, meta), json),
        }
    }
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
        allow_paths: args.allow_path.clone(),
        simulator,
        progress: super::progress::for_terminal(json).map(crate::exec::progress::ProgressHandle),
    };
    let rt = match Runtime::new(options) {
        Ok(rt) => rt,
        Err(e) => return emit(&Outcome::failed(e.to_json(), meta), json),
    };
    match source {
        Source::Code(code, name) => {
            spawn_watchdog(rt.shared().clone(), json);
            spawn_signal_handler(rt.shared().clone(), json);
            let outcome = rt.run_bytes(&code, &name).await;
            // The run is over (the watchdog stands down), then its MCP servers are shut down.
            rt.shared().limits.finish();
            rt.shared().mcp.shutdown().await;
            emit(&outcome, json)
        }
        Source::Repl => {
            let code = repl(&rt, json, interactive).await;
            rt.shared().mcp.shutdown().await;
            code
        }
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
            strip_preamble(b"#!/usr/bin/env kosmo\nreturn 1".to_vec()),
            b"\nreturn 1"
        );
        assert_eq!(
            strip_preamble("\u{feff}return 1".as_bytes().to_vec()),
            b"return 1"
        );
        assert_eq!(strip_preamble(b"return 1".to_vec()), b"return 1");
        assert_eq!(strip_preamble(b"return '\xe9'".to_vec()), b"return '\xe9'");
    }
}

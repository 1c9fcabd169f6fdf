//! `kosmo integrations:call NAME.FUNCTION [JSON] [--KEY VALUE | --KEY=VALUE]... [--arg KEY=VALUE]...`
//! and its shortcut `kosmo integrations:NAME FUNCTION ...`: one function from the shell, no Lua
//! to write.
//!
//! The call goes through [`Session::call`], the path every front end uses, so validation,
//! permissions, retries, errors and the call record are exactly those of `integrations:lua`, and
//! `--json` prints the same envelope (`result` is the one value returned). Flag values are typed
//! by the function's input schema: a string parameter stays a string (`--id 0123` is `"0123"`),
//! numbers and booleans are parsed, objects and arrays are JSON. The JSON payload comes first and
//! flags override it. Unlike a sandboxed script, the shell's user may name local files
//! (`--save-to`, uploads): they typed the path themselves (`--read-only` still refuses writes).

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::{Context, EXIT_USAGE};
use crate::error::Error;
use crate::lua::envelope::{Meta, Outcome};
use crate::manifest::ResponseKind;
use crate::session::{Hooks, Request, Session, SessionOptions};

/// The usage text (`kosmo integrations:call --help`).
pub const HELP: &str = "\
Call one function from the shell.

Usage: kosmo integrations:call NAME.FUNCTION [JSON] [--KEY VALUE | --KEY=VALUE]... [OPTIONS]
       kosmo integrations:NAME FUNCTION [JSON] [--KEY VALUE]... [OPTIONS]

Arguments are typed by the function's schema (a string stays a string: --id 0123 is \"0123\");
objects and arrays are JSON; --kebab-case names are the snake_case parameters; a JSON object
payload comes first and flags override it. A parameter named like an option below is passed
with --arg KEY=VALUE.

Options:
      --account NAME      the credential account (default: default)
      --all               paginated functions: follow every page (fetch_all)
      --force             run a write without asking
      --read-only         refuse writes
      --dry-run           show the request (secrets redacted) instead of sending it
      --offline           call the built-in simulator
      --json              one envelope on stdout, as integrations:lua --json
      --timeout SECONDS   wall-clock limit
      --arg KEY=VALUE     a parameter whose name is one of these options
  -h, --help              this text

Examples:
  kosmo integrations:call NAME.FUNCTION --id 0123 --json
  kosmo integrations:call NAME.FUNCTION '{\"limit\": 5}' --all
  kosmo integrations:NAME FUNCTION --arg timeout=30 --dry-run";

/// Options the command itself takes (a parameter of the same name needs `--arg`).
const FLAGS: &[&str] = &[
    "all",
    "force",
    "read-only",
    "dry-run",
    "offline",
    "json",
    "help",
];
const VALUED: &[&str] = &["account", "timeout", "arg"];

#[derive(Debug, Default)]
struct Parsed {
    target: String,
    payload: Option<String>,
    params: Vec<(String, String)>,
    account: Option<String>,
    timeout: Option<String>,
    all: bool,
    force: bool,
    read_only: bool,
    dry_run: bool,
    offline: bool,
    json: bool,
    help: bool,
}

/// `integrations:call ARGS...` (everything after the command name).
pub async fn run(ctx: &Context, argv: Vec<String>) -> ExitCode {
    let json = argv.iter().any(|a| a == "--json");
    match plan(ctx, argv) {
        Ok(Plan::Help) => {
            super::outln!("{HELP}");
            ExitCode::SUCCESS
        }
        Ok(Plan::Run(call)) => execute(ctx, *call).await,
        Err(e) => usage(&e, json),
    }
}

/// The shortcut `integrations:NAME FUNCTION ...`.
pub async fn shortcut(ctx: &Context, integration: &str, mut argv: Vec<String>) -> ExitCode {
    let json = argv.iter().any(|a| a == "--json");
    match argv.first().filter(|f| !f.starts_with('-')) {
        Some(f) => {
            let target = format!("{integration}.{f}");
            argv[0] = target;
            run(ctx, argv).await
        }
        None if argv.iter().any(|a| a == "--help" || a == "-h") => {
            super::outln!("{HELP}");
            ExitCode::SUCCESS
        }
        None => usage(
            &format!("kosmo integrations:{integration} FUNCTION ...: name the function to call"),
            json,
        ),
    }
}

fn usage(message: &str, json: bool) -> ExitCode {
    if json {
        super::print_json(&Outcome::usage(message, Meta::default()).to_json());
    } else {
        eprintln!("error: {message}\n\nSee kosmo integrations:call --help");
    }
    ExitCode::from(EXIT_USAGE)
}

enum Plan {
    Help,
    Run(Box<Planned>),
}

/// A call ready to run.
struct Planned {
    integration: String,
    function: String,
    account: Option<String>,
    args: Value,
    /// Print a JSONL function's rows one per line as they arrive.
    jsonl_rows: bool,
    timeout: Option<Duration>,
    force: bool,
    read_only: bool,
    dry_run: bool,
    offline: bool,
    json: bool,
}

fn plan(ctx: &Context, argv: Vec<String>) -> std::result::Result<Plan, String> {
    let p = parse(argv)?;
    if p.help {
        return Ok(Plan::Help);
    }
    let registry = ctx.registry().map_err(|e| e.to_string())?;
    let (integ, name, f) = registry.resolve(&p.target).map_err(|e| e.to_string())?;
    let schema = integ.input_schema(name).map_err(|e| e.to_string())?;
    let mut args = match &p.payload {
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) => m,
            Ok(_) => return Err("the JSON payload must be an object".into()),
            Err(e) => return Err(format!("the JSON payload is not valid JSON: {e}")),
        },
        None => Map::new(),
    };
    for (key, raw) in &p.params {
        let key = key.replace('-', "_");
        let value = typed(&schema, &key, raw);
        args.insert(key, value);
    }
    if p.all {
        if f.pagination.is_none() {
            return Err(format!("--all: {name} is not paginated"));
        }
        args.insert("fetch_all".into(), Value::Bool(true));
    }
    let jsonl = f.response == ResponseKind::Jsonl && !p.json && !args.contains_key("save_to");
    let timeout = match &p.timeout {
        Some(t) => Some(
            crate::lua::limits::parse_seconds(t)
                .ok()
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .ok_or_else(|| format!("--timeout {t}: expected a number of seconds"))?,
        ),
        None => None,
    };
    Ok(Plan::Run(Box::new(Planned {
        integration: integ.name().to_string(),
        function: name.to_string(),
        account: p.account,
        args: Value::Object(args),
        jsonl_rows: jsonl,
        timeout,
        force: p.force,
        read_only: p.read_only,
        dry_run: p.dry_run,
        offline: p.offline,
        json: p.json,
    })))
}

/// Why a call did not end on its own.
enum Stop {
    Timeout(Duration),
    Signal(&'static str),
}

impl Stop {
    fn error(&self) -> Value {
        match self {
            Stop::Timeout(d) => Error::Limit {
                limit: "timeout".into(),
                message: format!(
                    "timeout: the call ran for more than {}s of wall-clock time, including retries (raise it with --timeout)",
                    d.as_secs_f64()
                ),
            }
            .to_json(),
            Stop::Signal(name) => {
                let mut j = Error::Limit {
                    limit: "interrupt".into(),
                    message: format!("interrupted by {name}"),
                }
                .to_json();
                j["code"] = "interrupted".into();
                j["signal"] = (*name).into();
                j
            }
        }
    }
}

/// Resolves when the process gets SIGINT, SIGTERM or SIGHUP (never, if they cannot be caught).
async fn signalled() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
        _ = hup.recv() => "SIGHUP",
    }
}

async fn execute(ctx: &Context, c: Planned) -> ExitCode {
    let started = Instant::now();
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let session = Session::new(SessionOptions {
        force: c.force,
        read_only: c.read_only,
        dry_run: c.dry_run,
        offline: c.offline,
        manifest_dirs: ctx.manifest_dirs.clone(),
        allow_paths: vec!["/".into()],
        ..Default::default()
    })
    .with_hooks(Hooks {
        count_call: None,
        prompt: interactive.then(|| {
            let p: crate::session::PromptHook =
                std::sync::Arc::new(crate::permissions::terminal_prompt);
            p
        }),
        progress: super::progress::for_terminal(c.json),
    });
    let request = Request::new(&c.integration, &c.function, c.args.clone())
        .account(c.account.as_deref())
        .label(match &c.account {
            Some(a) => format!("integrations.{}.{a}.{}", c.integration, c.function),
            None => format!("integrations.{}.{}", c.integration, c.function),
        });
    let work = async {
        if c.jsonl_rows {
            let mut rows = session.rows(request).await?;
            while let Some(row) = rows.next().await {
                super::outln!("{}", serde_json::to_string(&row?).unwrap_or_default());
            }
            Ok(None)
        } else {
            session.call(request).await.map(|out| Some(out.value))
        }
    };
    let deadline = async {
        match c.timeout {
            Some(d) => {
                tokio::time::sleep(d).await;
                Stop::Timeout(d)
            }
            None => std::future::pending().await,
        }
    };
    let ended: Result<Result<Option<Value>, Error>, Stop> = tokio::select! {
        r = work => Ok(r),
        stop = deadline => Err(stop),
        name = signalled() => Err(Stop::Signal(name)),
    };
    let (success, error, result) = match ended {
        Ok(Ok(value)) => (true, None, Some(value.into_iter().collect::<Vec<_>>())),
        Ok(Err(e)) => {
            // As a Lua error table has them: which function and account failed.
            let mut j = e.to_json();
            j["function"] = c.function.clone().into();
            j["account"] = c.account.clone().unwrap_or_else(|| "default".into()).into();
            (false, Some(j), None)
        }
        Err(stop) => {
            let err = stop.error();
            session.log().flush_in_flight(&err);
            (false, Some(err), None)
        }
    };
    let outcome = Outcome {
        success,
        output: String::new(),
        error,
        result,
        execution_time_ms: (started.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0,
        memory_usage: 0,
        integration_calls: session.log().entries(),
        meta: Meta {
            permission_bypassed: c.force,
            dry_run: c.dry_run,
            read_only: c.read_only,
            offline: c.offline,
            warnings: session
                .loaded_registry()
                .map(|r| r.warnings().to_vec())
                .unwrap_or_default(),
        },
    };
    session.shutdown().await;
    super::lua_cmd::emit(&outcome, c.json)
}

fn parse(argv: Vec<String>) -> std::result::Result<Parsed, String> {
    let mut p = Parsed::default();
    let mut it = argv.into_iter().peekable();
    let mut positional = Vec::new();
    while let Some(a) = it.next() {
        if a == "-h" {
            p.help = true;
            continue;
        }
        let Some(flag) = a.strip_prefix("--") else {
            positional.push(a);
            continue;
        };
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (flag.to_string(), None),
        };
        if FLAGS.contains(&name.as_str()) {
            if inline.is_some() {
                return Err(format!("--{name} takes no value"));
            }
            match name.as_str() {
                "all" => p.all = true,
                "force" => p.force = true,
                "read-only" => p.read_only = true,
                "dry-run" => p.dry_run = true,
                "offline" => p.offline = true,
                "json" => p.json = true,
                _ => p.help = true,
            }
            continue;
        }
        let value = match inline {
            Some(v) => v,
            None => match it.next_if(|v| !v.starts_with("--")) {
                Some(v) => v,
                // A flag with no value is `true` (`--stream`).
                None if !VALUED.contains(&name.as_str()) => "true".into(),
                None => return Err(format!("--{name} needs a value")),
            },
        };
        match name.as_str() {
            "account" => p.account = Some(value),
            "timeout" => p.timeout = Some(value),
            "arg" => {
                let (k, v) = value
                    .split_once('=')
                    .ok_or_else(|| "--arg takes KEY=VALUE".to_string())?;
                p.params.push((k.to_string(), v.to_string()));
            }
            _ => p.params.push((name, value)),
        }
    }
    let mut positional = positional.into_iter();
    p.target = match positional.next() {
        Some(t) => t,
        None if p.help => String::new(),
        None => return Err("name the function: NAME.FUNCTION".into()),
    };
    p.payload = positional.next();
    if let Some(extra) = positional.next() {
        return Err(format!(
            "unexpected argument '{extra}': pass at most one JSON payload; parameters are --KEY VALUE"
        ));
    }
    Ok(p)
}

/// A flag's value, typed by the parameter's schema: strings stay strings; integers, numbers and
/// booleans are parsed; objects and arrays (and anything else) are JSON when they parse.
fn typed(schema: &Value, key: &str, raw: &str) -> Value {
    let prop = schema.pointer(&format!("/properties/{key}"));
    let types: Vec<&str> = match prop.and_then(|p| p.get("type")) {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if types == ["string"] {
        return Value::String(raw.to_string());
    }
    if types.contains(&"integer")
        && let Ok(n) = raw.parse::<i64>()
    {
        return Value::from(n);
    }
    if types.contains(&"number")
        && let Ok(n) = raw.parse::<f64>()
        && let Some(n) = serde_json::Number::from_f64(n)
    {
        return Value::Number(n);
    }
    if types.contains(&"boolean") {
        match raw {
            "true" => return Value::Bool(true),
            "false" => return Value::Bool(false),
            _ => {}
        }
    }
    if types.contains(&"string") && !raw.trim_start().starts_with(['{', '[']) {
        return Value::String(raw.to_string());
    }
    serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_typed_by_the_schema() {
        let schema = json!({"properties": {
            "id": {"type": "string"}, "limit": {"type": "integer"}, "t": {"type": "number"},
            "on": {"type": "boolean"}, "meta": {"type": "object"}, "ids": {"type": "array"},
            "any": {}
        }});
        assert_eq!(typed(&schema, "id", "0123"), json!("0123"));
        assert_eq!(typed(&schema, "limit", "5"), json!(5));
        assert_eq!(typed(&schema, "t", "0.5"), json!(0.5));
        assert_eq!(typed(&schema, "on", "true"), json!(true));
        assert_eq!(typed(&schema, "meta", r#"{"a": 1}"#), json!({"a": 1}));
        assert_eq!(typed(&schema, "ids", r#"["a"]"#), json!(["a"]));
        assert_eq!(typed(&schema, "any", "plain words"), json!("plain words"));
        // A value that does not fit stays text, for validation to refuse with its pointer.
        assert_eq!(typed(&schema, "limit", "five"), json!("five"));
    }

    #[test]
    fn flags_payload_and_escape_hatch() {
        let p = parse(
            [
                "x.f",
                r#"{"a": 1}"#,
                "--max-tokens",
                "5",
                "--name=x",
                "--arg",
                "timeout=3",
                "--timeout",
                "9",
                "--stream",
                "--json",
                "--account",
                "work",
            ]
            .map(String::from)
            .to_vec(),
        )
        .unwrap();
        assert_eq!(p.target, "x.f");
        assert_eq!(p.payload.as_deref(), Some(r#"{"a": 1}"#));
        assert_eq!(
            p.params,
            [
                ("max-tokens".to_string(), "5".to_string()),
                ("name".into(), "x".into()),
                ("timeout".into(), "3".into()),
                ("stream".into(), "true".into()),
            ]
        );
        assert_eq!(p.timeout.as_deref(), Some("9"));
        assert_eq!(p.account.as_deref(), Some("work"));
        assert!(p.json);
        assert!(parse(vec!["x.f".into(), "{}".into(), "extra".into()]).is_err());
    }
}

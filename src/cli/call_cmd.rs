//! `kosmo integrations:call NAME.FUNCTION [JSON] [--KEY VALUE | --KEY=VALUE]... [--arg KEY=VALUE]...`
//! and its shortcut `kosmo integrations:NAME FUNCTION ...`: one function from the shell, no Lua
//! to write.
//!
//! The call runs through the same path as a Lua script (it is one: a generated chunk that calls
//! `app.integrations.NAME[.ACCOUNT].FUNCTION` with the arguments as a JSON literal), so validation,
//! permissions, retries, errors and the `--json` envelope are exactly those of
//! `integrations:lua`. Flag values are typed by the function's input schema: a string parameter
//! stays a string (`--id 0123` is `"0123"`), numbers and booleans are parsed, objects and arrays
//! are JSON. The JSON payload comes first and flags override it.

use std::process::ExitCode;

use serde_json::{Map, Value};

use super::lua_cmd::{self, LuaArgs};
use super::{Context, EXIT_USAGE};
use crate::error::{Error, Result};
use crate::lua::envelope::{Meta, Outcome};
use crate::manifest::ResponseKind;

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
        Ok(Plan::Run(args)) => lua_cmd::run(ctx, *args, lua_cmd::Mode::Integrations).await,
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
    Run(Box<LuaArgs>),
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
    let code = chunk(
        integ.name(),
        p.account.as_deref(),
        name,
        &Value::Object(args),
        jsonl,
    )
    .map_err(|e| e.to_string())?;
    Ok(Plan::Run(Box::new(LuaArgs {
        file: None,
        eval: Some(code),
        json: p.json,
        force: p.force,
        account: None,
        memory_limit: None,
        cpu_limit: None,
        timeout: p.timeout,
        max_calls: None,
        parallel: None,
        read_only: p.read_only,
        dry_run: p.dry_run,
        offline: p.offline,
        repl: false,
        allow_path: Vec::new(),
        extra: Vec::new(),
    })))
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

/// The Lua chunk: the arguments travel as a JSON literal in a long bracket no text can close.
fn chunk(
    integration: &str,
    account: Option<&str>,
    function: &str,
    args: &Value,
    jsonl_rows: bool,
) -> Result<String> {
    let text = serde_json::to_string(args)
        .map_err(|e| Error::config(format!("cannot encode the arguments: {e}")))?;
    let mut level = 0;
    while text.contains(&format!("]{}]", "=".repeat(level))) {
        level += 1;
    }
    let eq = "=".repeat(level);
    let mut target = format!("app.integrations[{}]", lua_string(integration));
    if let Some(a) = account {
        target.push_str(&format!("[{}]", lua_string(a)));
    }
    target.push_str(&format!("[{}]", lua_string(function)));
    Ok(if jsonl_rows {
        format!(
            "local args = json.decode([{eq}[{text}]{eq}])\nfor row in rows({target}, args) do print(json.encode(row)) end"
        )
    } else {
        format!("local args = json.decode([{eq}[{text}]{eq}])\nreturn {target}(args)")
    })
}

/// A Lua string literal (names are identifiers, but an account could be anything).
fn lua_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_ascii_graphic() || c == ' ' => out.push(c),
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    out.push('"');
    out
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

    #[test]
    fn the_chunk_cannot_be_broken_out_of() {
        let args = json!({"s": "]]..os.exit()..[[", "t": "]=]"});
        let code = chunk("x", Some("a\"b"), "f", &args, false).unwrap();
        assert!(code.contains("[==["), "{code}");
        assert!(code.contains(r#"["a\"b"]"#), "{code}");
    }
}

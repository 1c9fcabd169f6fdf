//! `mcp:list` (what MCP servers are configured, and where from) and `mcp:serve` (kosmo's
//! integrations as an MCP server).

use std::process::ExitCode;

use serde_json::{Value, json};

use super::outln;
use super::{Context, fail, print_json};
use crate::mcp::{Config, Locations, Transport};

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

fn policy(p: Option<crate::permissions::Policy>) -> Value {
    p.map(|p| json!(p.as_str())).unwrap_or(Value::Null)
}

/// One server for `--json`: the entry as written (env and header values hidden), never the
/// expanded values (they may hold secrets).
fn server_json(s: &crate::mcp::Server) -> Value {
    let mut v = json!({
        "name": s.name,
        "transport": s.transport.as_ref().map(Transport::kind).unwrap_or("unknown"),
        "scope": s.source.scope,
        "source": s.source.path,
        "status": if s.transport.is_ok() { "ok" } else { "invalid" },
        "timeout_s": s.timeout.as_secs_f64(),
        "permissions": {"read": policy(s.read), "write": policy(s.write)},
    });
    for key in ["command", "args", "url", "cwd"] {
        if let Some(x) = s.raw.get(key) {
            v[key] = x.clone();
        }
    }
    for key in ["env", "headers"] {
        if let Some(m) = s.raw.get(key).and_then(Value::as_object) {
            v[key] = json!(m.keys().collect::<Vec<_>>());
        }
    }
    if let Err(why) = &s.transport {
        v["error"] = json!(why);
    }
    v
}

pub fn list(_ctx: &Context, args: ListArgs) -> ExitCode {
    let cfg = match Config::load(&Locations::standard(None)) {
        Ok(c) => c,
        Err(e) => return fail(&e, args.json),
    };
    if args.json {
        print_json(&json!({
            "success": true,
            "servers": cfg.servers.values().map(server_json).collect::<Vec<_>>(),
            "shadowed": cfg.shadowed.iter().map(|(n, s)| json!({"name": n, "scope": s.scope, "source": s.path})).collect::<Vec<_>>(),
            "problems": cfg.problems,
        }));
        return ExitCode::SUCCESS;
    }
    for p in &cfg.problems {
        eprintln!("warning: {p}");
    }
    if cfg.servers.is_empty() {
        outln!(
            "no MCP servers configured (looked in ./.mcp.json, mcp.servers in config.yaml, and mcp.json in the config directory)"
        );
        return ExitCode::SUCCESS;
    }
    for s in cfg.servers.values() {
        let raw = |k: &str| {
            s.raw
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let what = if s.raw.get("url").is_some() {
            format!("http   {}", raw("url"))
        } else {
            let args: Vec<&str> = s
                .raw
                .get("args")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            format!("stdio  {} {}", raw("command"), args.join(" "))
        };
        outln!("{:<20} {}", s.name, what.trim_end());
        outln!("{:<20} from {}", "", s.source.describe());
        if let Err(why) = &s.transport {
            outln!("{:<20} invalid: {why}", "");
        }
    }
    for (name, src) in &cfg.shadowed {
        outln!("(also defined in {}: '{name}', shadowed)", src.describe());
    }
    ExitCode::SUCCESS
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Serve only this integration (repeatable); all by default.
    #[arg(long = "integration", value_name = "NAME")]
    pub integrations: Vec<String>,
    /// Account for every call.
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,
    /// Refuse every write call, even with --force.
    #[arg(long)]
    pub read_only: bool,
    /// Allow calls whose permission is `ask` or `deny` (there is no terminal to ask on).
    #[arg(long)]
    pub force: bool,
    /// Start the built-in simulators and point every account at them.
    #[arg(long)]
    pub offline: bool,
    /// Serve streamable HTTP on ADDR (e.g. 127.0.0.1:8765, path /mcp) instead of stdio.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
    /// Wall-clock limit of each call or `lua` run, in seconds [default: 600].
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<String>,
    /// Maximum integration calls per `lua` run [default: 1000].
    #[arg(long, value_name = "N")]
    pub max_calls: Option<String>,
}

pub async fn serve(ctx: &Context, args: ServeArgs) -> ExitCode {
    use crate::lua::limits;
    let mut l = crate::lua::Limits::default();
    if let Some(s) = &args.timeout {
        match limits::parse_seconds(s) {
            Ok(v) => l.timeout = v,
            Err(e) => return super::usage_message(&format!("--timeout: {e}")),
        }
    }
    if let Some(s) = &args.max_calls {
        match limits::parse_count(s) {
            Ok(v) => l.max_calls = v,
            Err(e) => return super::usage_message(&format!("--max-calls: {e}")),
        }
    }
    let opts = crate::mcp::serve::ServeOptions {
        integrations: args.integrations.clone(),
        account: args.account.clone(),
        read_only: args.read_only,
        force: args.force,
        offline: args.offline,
        manifest_dirs: ctx.manifest_dirs.clone(),
        config_dir: None,
        limits: l,
    };
    // Building the server starts the call worker (its own thread): off the async workers.
    let server =
        match tokio::task::spawn_blocking(move || crate::mcp::serve::KosmoServer::new(&opts)).await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return fail(&e, false),
            Err(e) => return fail(&crate::Error::config(e.to_string()), false),
        };
    let result = match &args.http {
        Some(addr) => {
            crate::mcp::serve::serve_http(server, addr, |bound| {
                // stdout is free with HTTP: say where to connect.
                outln!("kosmo MCP server listening on http://{bound}/mcp");
            })
            .await
        }
        None => crate::mcp::serve::serve_stdio(server).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e, false),
    }
}

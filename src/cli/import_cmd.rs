//! `manifests:import`: write a manifest from an OpenAPI description (see `crate::import`).
//!
//! The manifest goes to `--out` (or stdout); every feature the format cannot express is a
//! `note:` line on stderr, and with `--json` the notes, the function names and (without
//! `--out`) the manifest text are one JSON object on stdout.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use super::{Context, fail, print_json};
use crate::error::Error;
use crate::import::{Filter, Options, import, to_json, today};

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The OpenAPI description (3.0 or 3.1, JSON or YAML): a file, or `-` for standard input.
    pub spec: String,
    /// The integration name (lower-case, digits, `_`); default: the spec's title in snake_case.
    #[arg(long)]
    pub name: Option<String>,
    /// Import only operations with this tag, operation id (as written or in snake_case) or path
    /// glob (`/repos/**`; `*` stays within a segment). Repeatable.
    #[arg(long, value_name = "TAG|PATH-GLOB|OPERATION-ID")]
    pub include: Vec<String>,
    /// Leave out operations matching this (same forms as --include; wins over it). Repeatable.
    #[arg(long, value_name = "TAG|PATH-GLOB|OPERATION-ID")]
    pub exclude: Vec<String>,
    /// Write the manifest to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Machine-readable output: `{success, name, openapi, functions, notes: [{code, message,
    /// count, places}], out, manifest}` (`manifest` only without --out).
    #[arg(long)]
    pub json: bool,
}

pub fn run(_ctx: &Context, args: ImportArgs) -> ExitCode {
    let (text, source) = if args.spec == "-" {
        let mut buf = Vec::new();
        if let Err(e) = std::io::stdin().read_to_end(&mut buf) {
            return fail(&Error::io("standard input", e), args.json);
        }
        (buf, "standard input".to_string())
    } else {
        match std::fs::read(&args.spec) {
            Ok(b) => {
                let base = std::path::Path::new(&args.spec)
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_else(|| args.spec.clone());
                (b, base)
            }
            Err(e) => return fail(&Error::io(&args.spec, e), args.json),
        }
    };
    let text = match String::from_utf8(text) {
        Ok(t) => t,
        Err(_) => {
            return fail(
                &Error::Import {
                    message: format!("{source} is not UTF-8 text"),
                },
                args.json,
            );
        }
    };
    let opts = Options {
        name: args.name,
        filter: Filter {
            include: args.include,
            exclude: args.exclude,
        },
        source,
        date: today(),
    };
    let imported = match import(&text, &opts) {
        Ok(i) => i,
        Err(e) => return fail(&e, args.json),
    };
    for line in imported.report.lines() {
        eprintln!("{line}");
    }
    let out = args.out.as_ref().map(|p| p.display().to_string());
    if let Some(path) = &args.out
        && let Err(e) = std::fs::write(path, &imported.yaml)
    {
        return fail(&Error::io(path, e), args.json);
    }
    if args.json {
        print_json(&to_json(&imported, out.as_deref()));
    } else if args.out.is_none() {
        use std::io::Write as _;
        let _ = std::io::stdout().lock().write_all(imported.yaml.as_bytes());
    } else {
        eprintln!(
            "wrote {} ({} functions, {} note(s)); next: kosmo manifests:check {}",
            out.as_deref().unwrap_or(""),
            imported.functions.len(),
            imported.report.len(),
            out.as_deref().unwrap_or("")
        );
    }
    ExitCode::SUCCESS
}

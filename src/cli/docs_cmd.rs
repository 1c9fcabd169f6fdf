//! `integrations:docs` and `docs:generate`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use serde_json::json;

use super::outln;
use super::{Context, fail, print_json};
use crate::docs::tree::{check_dir, existing_files};
use crate::docs::{Docs, markdown_to_text};
use crate::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Markdown,
    Text,
    Json,
}

#[derive(Debug, Clone, clap::Args)]
pub struct DocsArgs {
    /// A page: `NAME`, `NAME.FUNCTION`, `integrations.NAME`, `overview`, ...
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

/// Named accounts from the credentials file, so `integrations.<name>.work` pages exist. A
/// missing or unreadable file only means there are none to show.
fn configured_accounts(registry: &crate::registry::Registry) -> BTreeMap<String, Vec<String>> {
    match crate::credentials::Credentials::load(None) {
        Ok(creds) => registry
            .iter()
            .map(|i| (i.name().to_string(), creds.accounts(i.name())))
            .collect(),
        Err(e) => {
            tracing::debug!("no named accounts for the docs: {e}");
            BTreeMap::new()
        }
    }
}

pub fn show(ctx: &Context, args: DocsArgs) -> ExitCode {
    let json_out = args.json || args.format == Format::Json;
    let registry = match ctx.registry() {
        Ok(r) => r,
        Err(e) => return fail(&e, json_out),
    };
    let accounts = configured_accounts(&registry);
    let docs = Docs::new(Arc::new(registry), accounts);
    let Some(page) = args.page else {
        let pages = docs.pages();
        if json_out {
            print_json(&json!({ "pages": pages }));
        } else {
            for p in pages {
                outln!("{} - {}", p.page, p.summary);
            }
        }
        return ExitCode::SUCCESS;
    };
    match docs.page(&page) {
        Ok(p) => {
            if json_out {
                print_json(&json!({"page": p.page, "title": p.title, "markdown": p.markdown}));
            } else if args.format == Format::Text {
                outln!("{}", markdown_to_text(&p.markdown).trim_end());
            } else {
                outln!("{}", p.markdown.trim_end());
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e, json_out),
    }
}

pub fn generate(ctx: &Context, args: GenerateArgs) -> ExitCode {
    let registry = match ctx.registry() {
        Ok(r) => r,
        Err(e) => return fail(&e, false),
    };
    // The committed reference never depends on the local machine's accounts.
    let docs = Docs::new(Arc::new(registry), BTreeMap::new());
    let files = match docs.generate() {
        Ok(f) => f,
        Err(e) => return fail(&e, false),
    };
    if args.check {
        let problems = check_dir(&args.out, &files);
        if problems.is_empty() {
            eprintln!("{}: up to date ({} files)", args.out.display(), files.len());
            return ExitCode::SUCCESS;
        }
        for p in &problems {
            eprintln!("{p}");
        }
        eprintln!(
            "error: {} is stale ({} problem(s)); run `kosmo docs:generate --out {}`",
            args.out.display(),
            problems.len(),
            args.out.display()
        );
        return ExitCode::from(1);
    }
    match write_dir(&args.out, &files) {
        Ok(removed) => {
            eprintln!(
                "wrote {} files to {}{}",
                files.len(),
                args.out.display(),
                if removed > 0 {
                    format!(" (removed {removed} stale)")
                } else {
                    String::new()
                }
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e, false),
    }
}

/// Write the files and remove generated-looking leftovers (`.md`, `.lua`) that no longer render.
fn write_dir(dir: &Path, files: &[(PathBuf, String)]) -> Result<usize, Error> {
    for (rel, content) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        if std::fs::read_to_string(&path).ok().as_deref() != Some(content.as_str()) {
            std::fs::write(&path, content).map_err(|e| Error::io(&path, e))?;
        }
    }
    let mut removed = 0;
    for rel in existing_files(dir) {
        let generated_kind = matches!(rel.extension().and_then(|e| e.to_str()), Some("md" | "lua"));
        if generated_kind && !files.iter().any(|(r, _)| *r == rel) {
            let path = dir.join(&rel);
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            removed += 1;
        }
    }
    Ok(removed)
}

//! `integrations:list`, `integrations:schema` and `manifests:check`: looking at the registry.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{Map, Value, json};

use super::outln;
use super::{Context, fail, print_json};
use crate::registry::{Integration, Registry, load_file, manifest_files};

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct SchemaArgs {
    /// The function, as <integration>.<function> (aliases and full names work).
    pub function: String,
    /// Errors as a JSON envelope on stdout (the schema itself is always JSON).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Manifest files or directories; without any, the loaded manifests are checked.
    pub paths: Vec<PathBuf>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

fn function_summary(integ: &Integration) -> Vec<Value> {
    let m = &integ.manifest;
    m.functions
        .iter()
        .map(|(name, f)| {
            json!({
                "function": name,
                "name": format!("{}.{}", m.name, name),
                "full_name": m.full_name(name, f),
                "aliases": f.aliases,
                "group": f.group,
                "operation": f.class.as_str(),
                "summary": f.summary,
                "credential": f.credential,
                "unsupported": f.unsupported.is_some(),
                "deprecated": f.deprecated.is_some(),
            })
        })
        .collect()
}

pub fn list(ctx: &Context, args: ListArgs) -> ExitCode {
    let reg = match ctx.registry() {
        Ok(r) => r,
        Err(e) => return fail(&e, args.json),
    };
    if args.json {
        let mut providers = Map::new();
        for integ in reg.iter() {
            let m = &integ.manifest;
            providers.insert(
                m.name.clone(),
                json!({
                    "name": m.name,
                    "label": m.label,
                    "summary": m.summary,
                    "category": m.category,
                    "source": integ.source.to_string(),
                    "credentials": m.credentials.keys().collect::<Vec<_>>(),
                    "functions": function_summary(integ),
                }),
            );
        }
        print_json(&json!({"success": true, "providers": providers}));
    } else {
        for integ in reg.iter() {
            let m = &integ.manifest;
            let n = m.functions.len();
            let plural = if n == 1 { "" } else { "s" };
            outln!(
                "{} - {} ({n} function{plural}, {})",
                m.name,
                m.label,
                integ.source
            );
            outln!("  {}", m.summary);
            for (name, f) in &m.functions {
                let mut line = format!("  {:<32} {:<5} {}", name, f.class.as_str(), f.summary);
                if !f.aliases.is_empty() {
                    line.push_str(&format!(" (aliases: {})", f.aliases.join(", ")));
                }
                outln!("{line}");
            }
        }
    }
    ExitCode::SUCCESS
}

pub fn schema(ctx: &Context, args: SchemaArgs) -> ExitCode {
    let result = ctx.registry().and_then(|reg| {
        let (integ, name, _) = reg.resolve(&args.function)?;
        integ.input_schema(name)
    });
    match result {
        Ok(schema) => {
            print_json(&schema);
            ExitCode::SUCCESS
        }
        // stdout is for the schema: a pipeline `kosmo integrations:schema x | jq` must not
        // mistake an error for a schema.
        Err(e) => fail(&e, args.json),
    }
}

pub fn check(ctx: &Context, args: CheckArgs) -> ExitCode {
    let mut checked = Vec::new();
    let mut errors = Vec::new();
    if args.paths.is_empty() {
        errors.extend(Registry::check_builtin().iter().map(ToString::to_string));
        match ctx.registry() {
            Ok(reg) => {
                for integ in reg.iter() {
                    checked.push(integ.source.to_string());
                    for name in integ.manifest.functions.keys() {
                        if let Err(e) = integ.validator(name) {
                            errors.push(e.to_string());
                        }
                    }
                }
            }
            Err(e) => errors.push(e.to_string()),
        }
    } else {
        let mut files = Vec::new();
        for p in &args.paths {
            if p.is_dir() {
                match manifest_files(p) {
                    Ok(fs) => files.extend(fs),
                    Err(e) => errors.push(e.to_string()),
                }
            } else {
                files.push(p.clone());
            }
        }
        if files.is_empty() && errors.is_empty() {
            errors.push(format!(
                "no manifest files (*.yaml, *.yml) in {}",
                args.paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let mut names: std::collections::HashMap<String, PathBuf> = Default::default();
        for file in files {
            checked.push(file.display().to_string());
            match load_file(&file) {
                Ok(integ) => {
                    if let Some(first) = names.insert(integ.name().to_string(), file.clone()) {
                        errors.push(format!(
                            "{}: /name: integration '{}' is also declared by {}",
                            file.display(),
                            integ.name(),
                            first.display()
                        ));
                    }
                    for name in integ.manifest.functions.keys() {
                        if let Err(e) = integ.validator(name) {
                            errors.push(e.to_string());
                        }
                    }
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
    }
    if args.json {
        print_json(&json!({"success": errors.is_empty(), "checked": checked, "errors": errors}));
    } else {
        for e in &errors {
            eprintln!("error: {e}");
        }
        if errors.is_empty() {
            outln!("ok: {} manifest(s) checked", checked.len());
        }
    }
    if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

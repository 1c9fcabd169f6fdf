//! `integrations:list` and `integrations:schema`: looking at the registry.

use std::process::ExitCode;

use serde_json::{Map, Value, json};

use super::outln;
use super::{Context, fail, print_json};
use crate::registry::Integration;

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
        print_json(&json!({"success": true, "providers": providers, "warnings": reg.warnings()}));
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

//! `kosmo manifests:import`: from an OpenAPI description (3.0 or 3.1, JSON or YAML) to a
//! manifest that passes `manifests:check`, for a person to curate.
//!
//! - [`openapi`] reads the document (a thin typed view over JSON; why not a typed crate is
//!   explained there);
//! - [`refs`] resolves `$ref`s and converts schemas to the manifest's dialect, cycles cut and
//!   shared schemas shared;
//! - [`map`] turns each operation into a function;
//! - [`sample`] makes example values from schemas;
//! - [`emit`] writes readable YAML with comments and anchors;
//! - [`report`] collects what the format cannot express.
//!
//! The result is checked with the same passes as `manifests:check` before it is returned. A
//! function whose generated example the check refuses loses that example, and one the check
//! refuses outright is left out; both are reported, so the output always checks clean.

pub mod emit;
pub mod map;
pub mod openapi;
pub mod refs;
pub mod report;
pub mod sample;

use serde_json::Value;

use crate::error::Result;
use crate::manifest::Manifest;
use emit::Node;
pub use map::Filter;
pub use report::Report;

/// What the caller chose.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The integration name (`^[a-z][a-z0-9_]*$`); default: the spec's title in snake_case.
    pub name: Option<String>,
    pub filter: Filter,
    /// Where the spec came from, for the header comment (a file name, or `standard input`).
    pub source: String,
    /// The date written in the header comment (`YYYY-MM-DD`).
    pub date: String,
}

/// An imported manifest.
#[derive(Debug)]
pub struct Imported {
    pub yaml: String,
    pub name: String,
    pub functions: Vec<String>,
    pub report: Report,
    pub openapi_version: String,
}

/// Check rounds before giving up on a clean manifest (each round removes what failed).
const CHECK_ROUNDS: usize = 4;

/// Import a description.
pub fn import(text: &str, opts: &Options) -> Result<Imported> {
    let started = std::time::Instant::now();
    let spec = openapi::parse(text)?;
    tracing::debug!("import: parsed in {:?}", started.elapsed());
    let name = match &opts.name {
        Some(n) => {
            let ok = n.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !ok {
                return Err(openapi::import_error(format!(
                    "--name {n:?} is not a Lua-safe integration name (lower-case letters, digits and _, starting with a letter)"
                )));
            }
            n.clone()
        }
        None => {
            let t = map::snake(spec.info("title").unwrap_or("imported"));
            if t == "unnamed" { "imported".into() } else { t }
        }
    };
    let mut mapper = map::Mapper::new(&spec, name.clone());
    let built = mapper.build(&opts.filter);
    let mut report = mapper.into_report();
    tracing::debug!("import: mapped in {:?}", started.elapsed());
    if built.functions.is_empty() {
        let why = if opts.filter.include.is_empty() && opts.filter.exclude.is_empty() {
            "the spec has no operation the manifest format can call"
        } else {
            "no operation matches --include / --exclude"
        };
        return Err(openapi::import_error(why));
    }
    let mut root = built.root;
    let mut functions = built.functions;
    let mut yaml = String::new();
    for round in 0..CHECK_ROUNDS {
        let lines = header(&spec, opts, functions.len(), report.len());
        yaml = emit::write_document(&lines, &root);
        tracing::debug!("import: written in {:?}", started.elapsed());
        let (_, problems) = Manifest::check("imported.yaml", &yaml);
        tracing::debug!("import: checked in {:?}", started.elapsed());
        if problems.is_empty() {
            break;
        }
        if round + 1 == CHECK_ROUNDS {
            for p in &problems {
                report.note(
                    "check_problem",
                    format!("the manifest still fails a check: {}", p.message),
                    p.pointer.clone(),
                );
            }
            break;
        }
        // Removing examples cannot make a new problem: then the next text needs no check.
        let only_examples = problems.iter().all(|p| {
            p.pointer
                .strip_prefix("/functions/")
                .and_then(|r| r.find('/').map(|i| r[i..].starts_with("/examples")))
                .unwrap_or(false)
        });
        for p in problems {
            tracing::debug!("import check: {p}");
            let Some(rest) = p.pointer.strip_prefix("/functions/") else {
                report.note(
                    "check_problem",
                    format!("the manifest fails a check: {}", p.message),
                    p.pointer.clone(),
                );
                continue;
            };
            let fname = rest
                .split('/')
                .next()
                .unwrap_or("")
                .replace("~1", "/")
                .replace("~0", "~");
            let under = &rest[rest.find('/').unwrap_or(rest.len())..];
            if under.starts_with("/examples") {
                remove_examples(&mut root, &fname);
                report.note("example_dropped", format!("a generated example does not satisfy the function's schema and is left out: {}", p.message), fname);
            } else if remove_function(&mut root, &fname) {
                functions.retain(|f| *f != fname);
                report.note(
                    "function_dropped",
                    format!(
                        "the function does not pass the manifest check and is left out: {}",
                        p.message
                    ),
                    fname,
                );
            }
        }
        if only_examples {
            let lines = header(&spec, opts, functions.len(), report.len());
            yaml = emit::write_document(&lines, &root);
            break;
        }
    }
    if functions.is_empty() {
        return Err(openapi::import_error(
            "no operation of the spec could be written as a function that passes the manifest check",
        ));
    }
    Ok(Imported {
        yaml,
        name: built.name,
        functions,
        report,
        openapi_version: spec.version_text.clone(),
    })
}

fn header(spec: &openapi::Spec, opts: &Options, functions: usize, notes: usize) -> Vec<String> {
    let title = spec.info("title").unwrap_or("(untitled)");
    let version = spec
        .info("version")
        .map(|v| format!(" {v}"))
        .unwrap_or_default();
    let mut h = vec![
        format!(
            "Imported by `kosmo manifests:import` from {} on {}.",
            opts.source, opts.date
        ),
        format!(
            "Source: {title}{version} (OpenAPI {}); {functions} functions.",
            spec.version_text
        ),
    ];
    if notes > 0 {
        h.push(format!(
            "{notes} kind(s) of spec features could not be expressed: the import listed them on stderr (`--json` lists them as data)."
        ));
    }
    h.push("Curate it: rename functions, regroup them, mark betas, write examples (docs/adding-an-integration.md).".into());
    h
}

fn functions_mut(root: &mut Node) -> Option<&mut Vec<emit::Entry>> {
    let Node::Map(entries) = root else {
        return None;
    };
    match entries
        .iter_mut()
        .find(|e| e.key == "functions")
        .map(|e| &mut e.value)
    {
        Some(Node::Map(f)) => Some(f),
        _ => None,
    }
}

fn remove_function(root: &mut Node, name: &str) -> bool {
    let Some(fs) = functions_mut(root) else {
        return false;
    };
    let before = fs.len();
    fs.retain(|e| e.key != name);
    fs.len() != before
}

fn remove_examples(root: &mut Node, name: &str) {
    if let Some(fs) = functions_mut(root)
        && let Some(Node::Map(f)) = fs.iter_mut().find(|e| e.key == name).map(|e| &mut e.value)
    {
        f.retain(|e| e.key != "examples");
    }
}

/// Today's date (UTC) as `YYYY-MM-DD`.
pub fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    civil_date(secs / 86_400)
}

/// Days since 1970-01-01 to `YYYY-MM-DD` (Howard Hinnant's civil-from-days).
fn civil_date(days: u64) -> String {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The `--json` envelope of an import.
pub fn to_json(i: &Imported, out: Option<&str>) -> Value {
    let mut v = serde_json::json!({
        "success": true,
        "name": i.name,
        "openapi": i.openapi_version,
        "functions": i.functions,
        "notes": i.report.to_json(),
        "out": out,
    });
    if out.is_none() {
        v["manifest"] = Value::String(i.yaml.clone());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(20_454), "2026-01-01");
        assert_eq!(civil_date(11_016), "2000-02-29");
    }
}

#[cfg(test)]
mod fixture_tests {
    use super::*;

    /// A real-world description (the fixture of tests/it/import.rs) imports whole: no function
    /// is refused by the check.
    #[test]
    fn a_real_description_imports_without_dropping_functions() {
        let text = include_str!("../../tests/fixtures/openapi/anthropic-openapi-2024.json");
        let spec = openapi::parse(text).unwrap();
        let mut m = map::Mapper::new(&spec, "fixture".into());
        let built = m.build(&Filter::default());
        let yaml = emit::write_document(&[], &built.root);
        let (_, problems) = Manifest::check("a.yaml", &yaml);
        if !problems.is_empty() {
            let lines: Vec<&str> = yaml.lines().collect();
            for p in &problems {
                let line = p.line.unwrap_or(1);
                eprintln!("{p}");
                for l in lines.iter().skip(line.saturating_sub(6)).take(8) {
                    eprintln!("  | {l}");
                }
            }
            panic!("{} problem(s)", problems.len());
        }
    }
}

#[cfg(test)]
mod hostile_tests {
    use super::*;

    /// Odd but parseable documents import (or fail with import_error), never panic.
    #[test]
    fn odd_documents_never_panic() {
        let specs = [
            r##"{"openapi":"3.0.0","paths":{"/a":{"post":{"requestBody":{"content":{"*/*":{}}},"responses":{"200":{"content":{"*/*":{}}}}}}}}"##,
            r##"{"openapi":"3.0.0","paths":{"/a":{"get":{"parameters":[1,"x",{"in":"query"},{"name":"q","in":"body"},{"$ref":"#/nope"},{"$ref":"#/paths"}],"responses":[]}}}}"##,
            r##"{"openapi":"3.0.0","paths":{"/a/{b}":{"get":{"security":[1,{"x":[]}],"responses":{"2XX":{"$ref":"#/components/responses/r"}}}}},"components":{"responses":{"r":{"$ref":"#/components/responses/r"}},"securitySchemes":{"x":{"type":"apiKey","in":"header","name":"bad header!"},"y":7}}}"##,
            r##"{"openapi":"3.1.0","servers":[{"url":7}],"paths":{"/a":{"put":{"requestBody":{"content":{"application/json":{"schema":{"$ref":"#/components/schemas/A"}}}}}}},"components":{"schemas":{"A":{"allOf":[{"$ref":"#/components/schemas/A"}],"properties":{"x":{"$ref":"#/components/schemas/A"},"y":{"type":7,"items":[{"type":"string"}],"nullable":"yes"}}}}}}"##,
            r##"{"openapi":"3.0.0","info":{"title":"ÜÜ !!"},"paths":{"/é/{ü}":{"parameters":[{"name":"ü","in":"path","schema":{"enum":[]}}],"delete":{"operationId":"%%%","requestBody":{"content":{"multipart/form-data":{"schema":{"type":"array"}}}}}}}}"##,
            "openapi: 3.0.0\npaths:\n  /a:\n    get:\n      operationId: a\n      parameters:\n        - &p {name: x, in: query, schema: {type: string, example: [1, {a: b}]}}\n        - *p\n",
        ];
        for text in specs {
            match import(text, &Options::default()) {
                Ok(i) => {
                    let (_, problems) = Manifest::check("x.yaml", &i.yaml);
                    assert!(problems.is_empty(), "{text}\n{problems:#?}\n{}", i.yaml);
                }
                Err(e) => assert_eq!(e.code(), "import_error", "{text}: {e}"),
            }
        }
    }
}

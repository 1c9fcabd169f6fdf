//! `manifests:check` and `manifests:test`: what an author runs on a manifest before using it.
//!
//! `manifests:check` lists every problem of every file (YAML syntax, duplicate keys, the JSON
//! Schema with did-you-mean for unknown keys, kosmo's types, the lint, input schemas), each with
//! file, line, column and JSON pointer; `--json` prints them as structured problems.
//! `manifests:test` calls every example of every function against the in-process simulator
//! (as `integrations:lua --offline` does) and reports each one as passed, failed or skipped.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Context, outln, print_json};
use crate::credentials::Credentials;
use crate::exec::{Call, ExecConfig, Executor, FileAccess};
use crate::manifest::Problem;
use crate::manifest_check::rule;
use crate::registry::{
    Integration, Registry, RegistryOptions, check_file, manifest_files, name_problem,
};

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Manifest files or directories; without any, the loaded manifests are checked.
    pub paths: Vec<PathBuf>,
    /// Machine-readable output: `{success, checked, problems: [{file, line, column, pointer,
    /// message, rule}], errors}`.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Manifest files or directories to test (required).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Machine-readable output: `{success, passed, failed, skipped, results: [...]}`.
    #[arg(long)]
    pub json: bool,
    /// Seconds one example may take before it counts as failed.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub timeout: u64,
}

/// The manifest files named by the arguments (directories expanded), and the problems of
/// arguments that name nothing usable.
fn files_of(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<Problem>) {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for p in paths {
        if p.is_dir() {
            match manifest_files(p) {
                Ok(fs) => files.extend(fs),
                Err(e) => problems.push(io_problem(p, e.to_string())),
            }
        } else {
            files.push(p.clone());
        }
    }
    if files.is_empty() && problems.is_empty() {
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        problems.push(io_problem(
            Path::new(&names.join(", ")),
            "no manifest files (*.yaml, *.yml) here".into(),
        ));
    }
    (files, problems)
}

fn io_problem(path: &Path, message: String) -> Problem {
    Problem::new(&path.display().to_string(), "", message).rule(rule::IO)
}

/// Check files; returns the integrations that passed (by file) and every problem.
fn check_files(files: &[PathBuf]) -> (Vec<(PathBuf, Integration)>, Vec<Problem>) {
    let mut ok = Vec::new();
    let mut problems = Vec::new();
    let mut names: HashMap<String, PathBuf> = HashMap::new();
    for file in files {
        let (integ, found) = check_file(file);
        let mut clean = found.is_empty();
        problems.extend(found);
        if let Some(integ) = integ {
            if let Some(first) = names.insert(integ.name().to_string(), file.clone()) {
                problems.push(name_problem(
                    file,
                    format!(
                        "integration '{}' is also declared by {}",
                        integ.name(),
                        first.display()
                    ),
                ));
                clean = false;
            }
            if clean {
                ok.push((file.clone(), integ));
            }
        }
    }
    (ok, problems)
}

pub fn check(ctx: &Context, args: CheckArgs) -> ExitCode {
    let mut checked = Vec::new();
    let mut problems = Vec::new();
    if args.paths.is_empty() {
        problems.extend(Registry::check_builtin());
        checked.extend(
            crate::registry::BUILTIN
                .iter()
                .map(|(f, _)| format!("built-in {f}")),
        );
        let opts = RegistryOptions {
            dirs: ctx.manifest_dirs.clone(),
            ignore_env: false,
        };
        match Registry::load_with_report(&opts) {
            Ok((_, report)) => {
                checked.extend(report.files.iter().map(|p| p.display().to_string()));
                problems.extend(report.problems);
            }
            Err(e) => problems.push(Problem::new("", "", e.to_string()).rule(rule::IO)),
        }
    } else {
        let (files, found) = files_of(&args.paths);
        problems.extend(found);
        checked.extend(files.iter().map(|p| p.display().to_string()));
        let (_, found) = check_files(&files);
        problems.extend(found);
    }
    if args.json {
        print_json(&json!({
            "success": problems.is_empty(),
            "checked": checked,
            "problems": problems.iter().map(Problem::to_json).collect::<Vec<_>>(),
            "errors": problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }));
    } else {
        for p in &problems {
            eprintln!("error: {p}");
        }
        if problems.is_empty() {
            outln!("ok: {} manifest(s) checked", checked.len());
        } else {
            let files: std::collections::BTreeSet<&str> =
                problems.iter().map(|p| p.file.as_str()).collect();
            eprintln!(
                "{} problem(s) in {} file(s); {} manifest(s) checked",
                problems.len(),
                files.len(),
                checked.len()
            );
        }
    }
    if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The outcome of one example.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Pass,
    Fail,
    Skip,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Skip => "skip",
        }
    }
}

struct ExampleResult {
    file: String,
    integration: String,
    function: String,
    index: usize,
    title: String,
    verdict: Verdict,
    message: String,
    http_status: Option<u16>,
}

impl ExampleResult {
    fn to_json(&self) -> Value {
        json!({
            "file": self.file,
            "integration": self.integration,
            "function": self.function,
            "example": self.index,
            "title": self.title,
            "status": self.verdict.as_str(),
            "message": self.message,
            "http_status": self.http_status,
        })
    }
}

/// Run every example of one integration, each against a fresh in-process simulator.
async fn test_integration(
    file: &Path,
    integ: Integration,
    timeout: Duration,
) -> Result<Vec<ExampleResult>, String> {
    let name = integ.name().to_string();
    let mut reg = Registry::builtin().map_err(|e| e.to_string())?;
    reg.insert(integ);
    let reg = Arc::new(reg);
    let integ = reg.require(&name).map_err(|e| e.to_string())?;
    let mut results = Vec::new();
    for (fname, f) in &integ.manifest.functions {
        for (i, ex) in f.examples.iter().enumerate() {
            let mut r = ExampleResult {
                file: file.display().to_string(),
                integration: name.clone(),
                function: fname.clone(),
                index: i,
                title: ex.title.clone(),
                verdict: Verdict::Pass,
                message: String::new(),
                http_status: None,
            };
            if let Some(why) = &f.unsupported {
                r.verdict = Verdict::Skip;
                r.message = format!("the function is unsupported: {why}");
                results.push(r);
                continue;
            }
            // Each example starts from the simulator's initial state, so one example (a delete)
            // cannot break another, whatever their order.
            let opts = crate::simulator::SimulatorOptions {
                integration: name.clone(),
                ..Default::default()
            };
            let sim = crate::simulator::start(reg.clone(), opts)
                .await
                .map_err(|e| format!("the simulator does not start: {e}"))?;
            let creds =
                Credentials::offline_each(BTreeMap::from([(name.clone(), sim.base_url.clone())]));
            // No retries: an example the simulator refuses fails at once, with its reason.
            let config = ExecConfig {
                max_retries: 0,
                ..ExecConfig::default()
            };
            let exec =
                Executor::new(reg.clone(), Arc::new(creds), config).map_err(|e| e.to_string())?;
            // Examples that touch local files: reading one that is not here, or writing into
            // the user's directory, is not what a manifest test should do.
            let call = Call::new(&name, fname, ex.args.clone());
            match exec.local_files(&call) {
                Ok(local) => {
                    if let Some(w) = local.iter().find(|l| l.access == FileAccess::Write) {
                        r.verdict = Verdict::Skip;
                        r.message = format!(
                            "writes the local file {} ({})",
                            w.path.display(),
                            w.argument
                        );
                    } else if let Some(m) = local.iter().find(|l| !l.path.is_file()) {
                        r.verdict = Verdict::Skip;
                        r.message = format!(
                            "reads the local file {} ({}), which does not exist here",
                            m.path.display(),
                            m.argument
                        );
                    }
                }
                Err(e) => {
                    r.verdict = Verdict::Fail;
                    r.message = e.to_string();
                }
            }
            if r.verdict == Verdict::Pass {
                match tokio::time::timeout(timeout, exec.call(call)).await {
                    Ok(Ok(out)) => {
                        r.http_status = out.http_status;
                    }
                    Ok(Err(e)) => {
                        r.verdict = Verdict::Fail;
                        r.http_status = e.status();
                        r.message = e.to_string();
                    }
                    Err(_) => {
                        r.verdict = Verdict::Fail;
                        r.message = format!("no answer within {} s", timeout.as_secs());
                    }
                }
            }
            results.push(r);
            sim.shutdown().await;
        }
    }
    Ok(results)
}

pub async fn test(_ctx: &Context, args: TestArgs) -> ExitCode {
    let timeout = Duration::from_secs(args.timeout.max(1));
    let (files, mut problems) = files_of(&args.paths);
    let (ok, found) = check_files(&files);
    problems.extend(found);
    let mut results = Vec::new();
    let mut empty = Vec::new();
    for (file, integ) in ok {
        let name = integ.name().to_string();
        let examples: usize = integ
            .manifest
            .functions
            .values()
            .map(|f| f.examples.len())
            .sum();
        if examples == 0 {
            empty.push(format!("{}: {name} has no examples", file.display()));
            continue;
        }
        match test_integration(&file, integ, timeout).await {
            Ok(rs) => results.extend(rs),
            Err(message) => problems.push(
                Problem::new(
                    &file.display().to_string(),
                    "",
                    format!("{name}: {message}"),
                )
                .rule(rule::SIMULATOR),
            ),
        }
    }
    let count = |v: Verdict| results.iter().filter(|r| r.verdict == v).count();
    let (passed, failed, skipped) = (
        count(Verdict::Pass),
        count(Verdict::Fail),
        count(Verdict::Skip),
    );
    let success = failed == 0 && problems.is_empty();
    if args.json {
        print_json(&json!({
            "success": success,
            "passed": passed,
            "failed": failed,
            "skipped": skipped,
            "results": results.iter().map(ExampleResult::to_json).collect::<Vec<_>>(),
            "problems": problems.iter().map(Problem::to_json).collect::<Vec<_>>(),
            "notes": empty,
        }));
    } else {
        for p in &problems {
            eprintln!("error: {p}");
        }
        for r in &results {
            let mut line = format!(
                "{} {}.{} #{} {}",
                r.verdict.as_str().to_uppercase(),
                r.integration,
                r.function,
                r.index,
                r.title
            );
            if !r.message.is_empty() {
                line.push_str(&format!(": {}", r.message));
            }
            outln!("{line}");
        }
        for n in &empty {
            outln!("note: {n}");
        }
        outln!("{passed} passed, {failed} failed, {skipped} skipped");
    }
    if success {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

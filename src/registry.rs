//! The set of loaded integrations.
//!
//! Built-in manifests are compiled into the binary. Directories from `KOSMO_MANIFEST_PATH`
//! (colon-separated) and `--manifests DIR` are read at start-up, later ones first, so a user
//! manifest with a built-in's name replaces it. Adding an integration is dropping a YAML file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use indexmap::IndexMap;
use serde_json::Value;

use crate::error::{Error, Result, closest};
use crate::manifest::{Function, Manifest, Problem};
use crate::manifest_check::rule;
use crate::validate::InputValidator;

/// Manifests that ship inside the binary: (file name, YAML).
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "anthropic.yaml",
        include_str!("../manifests/anthropic.yaml"),
    ),
    ("github.yaml", include_str!("../manifests/github.yaml")),
    ("openai.yaml", include_str!("../manifests/openai.yaml")),
];

/// Where a manifest came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Builtin,
    File(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Builtin => write!(f, "built-in"),
            Source::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// One loaded integration, with its name index and lazily compiled validators.
pub struct Integration {
    pub manifest: Manifest,
    pub source: Source,
    /// Every accepted name (Lua name, full name, alias) to the Lua name.
    names: HashMap<String, String>,
    validators: IndexMap<String, OnceLock<std::result::Result<Arc<InputValidator>, String>>>,
}

impl std::fmt::Debug for Integration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Integration")
            .field("name", &self.manifest.name)
            .field("source", &self.source)
            .finish()
    }
}

impl Integration {
    pub fn new(manifest: Manifest, source: Source) -> Self {
        let mut names = HashMap::new();
        for (name, f) in &manifest.functions {
            names.insert(name.clone(), name.clone());
            names.insert(manifest.full_name(name, f), name.clone());
            names.insert(
                format!("{}.{}", manifest.name, manifest.full_name(name, f)),
                name.clone(),
            );
            for a in &f.aliases {
                names.insert(a.clone(), name.clone());
                // The seed page's full names follow the alias (`anthropic_get_current_user`).
                names.insert(format!("{}_{a}", manifest.name), name.clone());
            }
        }
        let validators = manifest
            .functions
            .keys()
            .map(|k| (k.clone(), OnceLock::new()))
            .collect();
        Integration {
            manifest,
            source,
            names,
            validators,
        }
    }

    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// Resolve a Lua name, full name or alias to `(lua name, function)`.
    pub fn function(&self, name: &str) -> Option<(&str, &Function)> {
        let canonical = self.names.get(name)?;
        self.manifest
            .functions
            .get_key_value(canonical)
            .map(|(k, f)| (k.as_str(), f))
    }

    /// Like [`Integration::function`], with a "did you mean" error.
    pub fn require_function(&self, name: &str) -> Result<(&str, &Function)> {
        self.function(name).ok_or_else(|| Error::UnknownFunction {
            integration: self.name().into(),
            name: name.into(),
            suggestions: closest(name, self.all_names()),
        })
    }

    /// Every name a script may use: Lua names first, then aliases.
    pub fn all_names(&self) -> impl Iterator<Item = &str> {
        self.manifest.functions.iter().flat_map(|(n, f)| {
            std::iter::once(n.as_str()).chain(f.aliases.iter().map(String::as_str))
        })
    }

    /// The compiled input validator of a function (by Lua name), built on first use.
    pub fn validator(&self, lua_name: &str) -> Result<Arc<InputValidator>> {
        let (name, f) = self.require_function(lua_name)?;
        let cell = self
            .validators
            .get(name)
            .ok_or_else(|| Error::UnknownFunction {
                integration: self.name().into(),
                name: name.into(),
                suggestions: vec![],
            })?;
        cell.get_or_init(|| {
            InputValidator::new(&self.manifest, f)
                .map(Arc::new)
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|message| Error::Manifest {
            file: self.source.to_string(),
            location: format!("/functions/{name}"),
            message,
        })
    }

    /// The input JSON Schema of a function.
    pub fn input_schema(&self, lua_name: &str) -> Result<Value> {
        Ok(self.validator(lua_name)?.schema().clone())
    }
}

/// Options for loading the registry.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Extra manifest directories (`--manifests`), searched after `KOSMO_MANIFEST_PATH`.
    pub dirs: Vec<PathBuf>,
    /// Skip `KOSMO_MANIFEST_PATH` (tests).
    pub ignore_env: bool,
}

/// All loaded integrations, by name, sorted.
#[derive(Debug, Default)]
pub struct Registry {
    integrations: IndexMap<String, Arc<Integration>>,
    /// One line per user manifest that was skipped, and why (shown on stderr and in the Lua
    /// envelope's `meta.warnings`).
    warnings: Vec<String>,
}

/// What loading the configured manifest directories found wrong: every problem of every
/// skipped file.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// The files that were read, in order.
    pub files: Vec<PathBuf>,
    pub problems: Vec<Problem>,
}

impl Registry {
    /// Built-ins only. They are parsed without the schema and lint passes, which
    /// [`Registry::check_builtin`] runs in tests and in `kosmo manifests:check`.
    pub fn builtin() -> Result<Registry> {
        let mut reg = Registry::default();
        for (file, text) in BUILTIN {
            let m = Manifest::from_trusted_yaml(&format!("manifests/{file}"), text)?;
            reg.insert(Integration::new(m, Source::Builtin));
        }
        Ok(reg)
    }

    /// Every problem of the built-in manifests under the full checks (schema, lint, and each
    /// function's input schema compiling).
    pub fn check_builtin() -> Vec<Problem> {
        BUILTIN
            .iter()
            .flat_map(|(file, text)| Manifest::check(&format!("manifests/{file}"), text).1)
            .collect()
    }

    /// Built-ins plus every `*.yaml` / `*.yml` in the configured directories. A user manifest
    /// with problems is skipped: a warning on stderr names it (and is kept for
    /// [`Registry::warnings`]), and every other integration loads as usual.
    pub fn load(opts: &RegistryOptions) -> Result<Registry> {
        let (reg, _) = Registry::load_with_report(opts)?;
        for w in &reg.warnings {
            eprintln!("warning: {w}");
        }
        Ok(reg)
    }

    /// [`Registry::load`] without printing, with every problem of the skipped files and
    /// directories (a directory that cannot be read is skipped too).
    pub fn load_with_report(opts: &RegistryOptions) -> Result<(Registry, LoadReport)> {
        let mut reg = Registry::builtin()?;
        let mut report = LoadReport::default();
        for dir in manifest_dirs(opts) {
            // Within one directory two files may not claim one name: which would win is an
            // accident of file names, so neither does. Across directories the later one wins,
            // on purpose.
            let mut loaded: Vec<(PathBuf, Integration)> = Vec::new();
            let files = match manifest_files(&dir) {
                Ok(files) => files,
                Err(e) => {
                    // A stale directory on the path must not break the other integrations either.
                    reg.warnings
                        .push(format!("skipped manifest directory {}: {e}", dir.display()));
                    report.problems.push(
                        Problem::new(&dir.display().to_string(), "", e.to_string()).rule(rule::IO),
                    );
                    continue;
                }
            };
            for path in files {
                report.files.push(path.clone());
                match check_file(&path) {
                    (Some(integ), problems) if problems.is_empty() => {
                        loaded.push((path, integ));
                    }
                    (_, problems) => {
                        reg.warnings.push(skip_warning(&path, &problems));
                        report.problems.extend(problems);
                    }
                }
            }
            let mut claims: HashMap<String, Vec<PathBuf>> = HashMap::new();
            for (path, integ) in &loaded {
                claims
                    .entry(integ.name().to_string())
                    .or_default()
                    .push(path.clone());
            }
            for (path, integ) in loaded {
                let owners = claims.get(integ.name()).map_or(&[][..], Vec::as_slice);
                if owners.len() > 1 {
                    let others: Vec<String> = owners
                        .iter()
                        .filter(|p| **p != path)
                        .map(|p| p.display().to_string())
                        .collect();
                    let message = format!(
                        "integration '{}' is also declared by {} in the same directory; neither is loaded",
                        integ.name(),
                        others.join(", ")
                    );
                    reg.warnings
                        .push(format!("skipped manifest {}: {message}", path.display()));
                    report.problems.push(name_problem(&path, message));
                    continue;
                }
                reg.insert(integ);
            }
        }
        reg.integrations.sort_keys();
        Ok((reg, report))
    }

    /// Why user manifests were skipped, one line each.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    pub fn insert(&mut self, integration: Integration) {
        self.integrations
            .insert(integration.name().to_string(), Arc::new(integration));
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Integration>> {
        self.integrations.get(name)
    }

    pub fn require(&self, name: &str) -> Result<&Arc<Integration>> {
        self.get(name).ok_or_else(|| Error::UnknownIntegration {
            name: name.into(),
            suggestions: closest(name, self.integrations.keys().map(String::as_str)),
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Integration>> {
        self.integrations.values()
    }

    /// Resolve `integration.function` (also `app.integrations.x.f` and `x.x_full_name`).
    pub fn resolve(&self, dotted: &str) -> Result<(&Arc<Integration>, &str, &Function)> {
        let trimmed = dotted
            .trim_start_matches("app.")
            .trim_start_matches("integrations.");
        // A bare function name: say which integrations have it.
        let (integration, function) = trimmed.split_once('.').ok_or_else(|| {
            let mut suggestions: Vec<String> = self
                .iter()
                .filter(|i| i.function(trimmed).is_some())
                .map(|i| format!("{}.{trimmed}", i.name()))
                .collect();
            if suggestions.is_empty() {
                // An example of the form from what is loaded, never a hard-coded integration.
                let example = self
                    .iter()
                    .find_map(|i| {
                        let f = i.manifest.functions.keys().next()?;
                        Some(format!("{}.{f}", i.name()))
                    })
                    .unwrap_or_else(|| "<integration>.<function>".into());
                suggestions.push(format!("{example} (the form is <integration>.<function>)"));
            }
            Error::UnknownFunction {
                integration: "<integration>".into(),
                name: trimmed.into(),
                suggestions,
            }
        })?;
        let integ = self.require(integration)?;
        let (name, f) = integ.require_function(function)?;
        Ok((integ, name, f))
    }
}

/// Manifest files in a directory, sorted by name. A missing directory is an error that names it.
pub fn manifest_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// The manifest directories in load order: `KOSMO_MANIFEST_PATH`, then `--manifests`.
pub fn manifest_dirs(opts: &RegistryOptions) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(path) = std::env::var_os("KOSMO_MANIFEST_PATH").filter(|_| !opts.ignore_env) {
        dirs.extend(std::env::split_paths(&path).filter(|p| !p.as_os_str().is_empty()));
    }
    dirs.extend(opts.dirs.iter().cloned());
    dirs
}

/// Load and check one manifest file.
pub fn load_file(path: &Path) -> Result<Integration> {
    match check_file(path) {
        (Some(integ), problems) if problems.is_empty() => Ok(integ),
        (_, problems) => Err(crate::manifest_check::into_error(
            &path.display().to_string(),
            &problems,
        )),
    }
}

/// Read and check one manifest file: the integration when it could be read, and every
/// problem (an unreadable file is one problem).
pub fn check_file(path: &Path) -> (Option<Integration>, Vec<Problem>) {
    let file = path.display().to_string();
    let text = match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count();
                let problem = Problem::new(&file, "", "the file is not valid UTF-8")
                    .rule(rule::YAML)
                    .at(Some(crate::manifest_check::Pos { line, column: 1 }));
                return (None, vec![problem]);
            }
        },
        Err(e) => {
            let problem = Problem::new(&file, "", Error::io(path, e).to_string()).rule(rule::IO);
            return (None, vec![problem]);
        }
    };
    let (m, problems) = Manifest::check(&file, &text);
    (
        m.map(|m| Integration::new(m, Source::File(path.to_path_buf()))),
        problems,
    )
}

/// A problem about the integration name of a file (`/name`, located when the file reads).
pub fn name_problem(path: &Path, message: String) -> Problem {
    let file = path.display().to_string();
    let pos = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| crate::manifest_check::PositionIndex::build(&t).position("/name"));
    Problem::new(&file, "/name", message)
        .rule(rule::DUPLICATE_NAME)
        .at(pos)
}

/// The one-line warning for a skipped manifest: its first problem and how many more.
fn skip_warning(path: &Path, problems: &[Problem]) -> String {
    let first = problems
        .first()
        .map(|p| match p.location() {
            l if l.is_empty() => p.message.clone(),
            l => format!("{l}: {}", p.message),
        })
        .unwrap_or_else(|| "refused".into());
    let more = match problems.len() {
        0 | 1 => String::new(),
        n => format!(" (and {} more problem(s))", n - 1),
    };
    format!(
        "skipped manifest {}: {first}{more}; run `kosmo manifests:check {}` for every problem",
        path.display(),
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_manifests_pass_every_check() {
        let errors: Vec<String> = Registry::check_builtin()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
    }

    #[test]
    fn a_bad_manifest_is_skipped_with_its_problems_and_the_rest_loads() {
        let dir = tempfile::tempdir().unwrap();
        let good = "name: echo\nlabel: Echo\nsummary: S.\ncategory: testing\nbase_url: http://127.0.0.1:9\ncredentials: {}\nfunctions:\n  ping: {group: g, class: read, summary: Ping., method: GET, path: /ping}\n";
        std::fs::write(dir.path().join("echo.yaml"), good).unwrap();
        std::fs::write(
            dir.path().join("bad.yaml"),
            good.replace("name: echo", "name: bad\nnmae: x"),
        )
        .unwrap();
        let opts = RegistryOptions {
            dirs: vec![dir.path().to_path_buf()],
            ignore_env: true,
        };
        let (reg, report) = Registry::load_with_report(&opts).unwrap();
        assert!(reg.get("echo").is_some());
        assert!(reg.get("anthropic").is_some());
        assert!(reg.get("bad").is_none());
        assert_eq!(report.files.len(), 2);
        assert_eq!(report.problems.len(), 1, "{:#?}", report.problems);
        let p = &report.problems[0];
        assert_eq!(
            (p.pointer.as_str(), p.line, p.column),
            ("/nmae", Some(2), Some(1))
        );
        assert!(p.message.contains("did you mean `name`?"), "{}", p.message);
        assert_eq!(reg.warnings().len(), 1);
        assert!(
            reg.warnings()[0].contains("bad.yaml: line 2 column 1: /nmae"),
            "{:?}",
            reg.warnings()
        );
    }

    #[test]
    fn builtin_anthropic_loads_and_resolves_aliases() {
        let reg = Registry::builtin().unwrap();
        let a = reg.require("anthropic").unwrap();
        assert_eq!(
            a.function("anthropic_create_message").unwrap().0,
            "create_message"
        );
        assert!(reg.resolve("anthropic.create_message").is_ok());
        let err = reg
            .resolve("anthropic.create_mesage")
            .unwrap_err()
            .to_string();
        assert!(err.contains("create_message"), "{err}");
    }
}

//! Checks on the test suite itself: every test has a name no other module uses, so a failure
//! names one test and a filter selects one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `fn` names following a `#[test]` or `#[tokio::test...]` attribute.
fn test_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut pending = false;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("#[test]") || t.starts_with("#[tokio::test") {
            pending = true;
        } else if pending && t.contains("fn ") {
            let rest = t.split("fn ").nth(1).unwrap_or("");
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            names.push(name);
            pending = false;
        }
    }
    names
}

#[test]
fn test_names_are_unique_across_modules() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let rel = f.strip_prefix(&root).unwrap().display().to_string();
        for name in test_names(&text) {
            seen.entry(name).or_default().push(rel.clone());
        }
    }
    assert!(seen.len() > 200, "too few tests found: {}", seen.len());
    let dups: Vec<String> = seen
        .iter()
        .filter(|(_, files)| files.len() > 1)
        .map(|(name, files)| format!("{name}: {}", files.join(", ")))
        .collect();
    assert!(
        dups.is_empty(),
        "test names used twice:\n{}",
        dups.join("\n")
    );
}

//! The generated reference on disk: what `docs:generate --check` and the docs drift test compare
//! against the rendered files.

use std::path::{Path, PathBuf};

/// Files under `dir` (relative paths), recursively.
pub fn existing_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else if let Ok(rel) = p.strip_prefix(root) {
                out.push(rel.to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Every difference between `dir` and the rendered files: changed, missing, and stale extras.
pub fn check_dir(dir: &Path, files: &[(PathBuf, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (rel, content) in files {
        match std::fs::read_to_string(dir.join(rel)) {
            Ok(on_disk) if on_disk == *content => {}
            Ok(_) => problems.push(format!("changed: {}", dir.join(rel).display())),
            Err(_) => problems.push(format!("missing: {}", dir.join(rel).display())),
        }
    }
    for rel in existing_files(dir) {
        if !files.iter().any(|(r, _)| *r == rel) {
            problems.push(format!(
                "not generated (stale): {}",
                dir.join(rel).display()
            ));
        }
    }
    problems
}

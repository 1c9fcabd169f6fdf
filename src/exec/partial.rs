//! Partial downloads: a `save_to` body is written to a `.kosmo-part` sibling and renamed into
//! place when complete. [`PartFile`] removes that sibling on every other way out: an error, a cap,
//! a dropped call (a signal or a limit cuts it off), and, through [`remove_all`], a process exit
//! that drops nothing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The partial files open right now, for [`remove_all`].
static OPEN: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// A partial download; removed when dropped unless [`PartFile::keep`] was called.
#[derive(Debug)]
pub struct PartFile {
    path: PathBuf,
    kept: bool,
}

impl PartFile {
    /// Register `path` (already created by the caller).
    pub fn new(path: PathBuf) -> Self {
        if let Ok(mut open) = OPEN.lock() {
            open.insert(path.clone());
        }
        PartFile { path, kept: false }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file was renamed into place: nothing to remove.
    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
        if let Ok(mut open) = OPEN.lock() {
            open.remove(&self.path);
        }
    }
}

/// Remove every partial download still open: for paths that end the process without unwinding
/// (the watchdog, a second signal's grace period).
pub fn remove_all() {
    let paths: Vec<PathBuf> = match OPEN.lock() {
        Ok(mut open) => std::mem::take(&mut *open).into_iter().collect(),
        Err(_) => return,
    };
    for p in paths {
        let _ = std::fs::remove_file(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_files_go_kept_ones_stay_and_remove_all_sweeps() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.kosmo-part");
        std::fs::write(&a, "x").unwrap();
        drop(PartFile::new(a.clone()));
        assert!(!a.exists());
        let b = dir.path().join("b.kosmo-part");
        std::fs::write(&b, "x").unwrap();
        PartFile::new(b.clone()).keep();
        assert!(b.exists(), "kept (the caller renamed it)");
        let c = dir.path().join("c.kosmo-part");
        std::fs::write(&c, "x").unwrap();
        let held = PartFile::new(c.clone());
        remove_all();
        assert!(!c.exists());
        drop(held);
    }
}

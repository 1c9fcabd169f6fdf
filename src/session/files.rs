//! The local file policy of a session: a call may touch no local file unless the embedder
//! allows directories (`--allow-path DIR`). Before every call the session asks the executor for the
//! local files the call would read or write ([`crate::exec::Checked::local_files`]); each must
//! resolve, after following every symlink and `..`, to a place inside an allowed directory.
//! `--read-only` also refuses every write (`save_to`), wherever it points.

use std::path::{Component, Path, PathBuf};

use crate::error::Error;
use crate::exec::{FileAccess, LocalFile};

const OFF: &str = "local file access is off in the sandbox: pass --allow-path DIR to let scripts read or write under DIR";

/// Allowed directories, canonicalized once (a directory that does not exist allows nothing).
#[derive(Debug, Clone, Default)]
pub struct FilePolicy {
    allowed: Vec<PathBuf>,
    read_only: bool,
}

impl FilePolicy {
    pub fn new(dirs: &[PathBuf], read_only: bool) -> FilePolicy {
        let allowed = dirs
            .iter()
            .filter_map(|d| match std::fs::canonicalize(d) {
                Ok(c) if c.is_dir() => Some(c),
                Ok(_) => {
                    tracing::warn!("--allow-path {}: not a directory", d.display());
                    None
                }
                Err(e) => {
                    tracing::warn!("--allow-path {}: {e}", d.display());
                    None
                }
            })
            .collect();
        FilePolicy { allowed, read_only }
    }

    /// `Ok` when every file may be used; otherwise the `permission_denied` error for the first
    /// that may not.
    pub fn check(&self, files: &[LocalFile]) -> Result<(), Error> {
        for f in files {
            self.check_one(f)?;
        }
        Ok(())
    }

    fn check_one(&self, f: &LocalFile) -> Result<(), Error> {
        let shown = f.path.display();
        if self.read_only && f.access == FileAccess::Write {
            return Err(denied(format!(
                "{} '{shown}': --read-only refuses writing local files",
                f.argument
            )));
        }
        if self.allowed.is_empty() {
            return Err(denied(format!("{} '{shown}': {OFF}", f.argument)));
        }
        let inside = resolve(&f.path)
            .is_some_and(|real| self.allowed.iter().any(|dir| real.starts_with(dir)));
        if inside {
            Ok(())
        } else {
            let dirs: Vec<String> = self
                .allowed
                .iter()
                .map(|d| d.display().to_string())
                .collect();
            Err(denied(format!(
                "{} '{shown}' is outside the allowed paths ({}): pass --allow-path DIR to let scripts read or write under DIR",
                f.argument,
                dirs.join(", ")
            )))
        }
    }
}

fn denied(message: String) -> Error {
    Error::PermissionDenied { message }
}

/// Where `path` really is: the canonical path of an existing file (symlinks followed), or the
/// canonical parent plus the file name of one that does not exist yet. `None` when it cannot
/// be told safely (a dangling symlink, a name that is `..`, an unresolvable parent).
fn resolve(path: &Path) -> Option<PathBuf> {
    if path.as_os_str().is_empty() {
        return None;
    }
    if let Ok(real) = std::fs::canonicalize(path) {
        return Some(real);
    }
    // It does not resolve: a dangling symlink would be followed by the write, so refuse it.
    if std::fs::symlink_metadata(path).is_ok() {
        return None;
    }
    let name = match path.components().next_back()? {
        Component::Normal(n) => n.to_os_string(),
        _ => return None,
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let parent = std::fs::canonicalize(parent).ok()?;
    Some(parent.join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: impl Into<PathBuf>, access: FileAccess) -> LocalFile {
        LocalFile {
            path: path.into(),
            access,
            argument: "save_to".into(),
        }
    }

    #[test]
    fn nothing_is_allowed_by_default() {
        let p = FilePolicy::new(&[], false);
        let e = p.check(&[file("/tmp/x", FileAccess::Read)]).unwrap_err();
        assert_eq!(e.code(), "permission_denied");
        assert!(e.to_string().contains("--allow-path DIR"), "{e}");
        assert!(p.check(&[]).is_ok());
    }

    #[test]
    fn escapes_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let allowed = root.path().join("allowed");
        let outside = root.path().join("outside");
        std::fs::create_dir_all(&allowed).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret"), "s").unwrap();
        std::fs::write(allowed.join("ok.txt"), "ok").unwrap();
        std::os::unix::fs::symlink(outside.join("secret"), allowed.join("link")).unwrap();
        std::os::unix::fs::symlink(&outside, allowed.join("dirlink")).unwrap();
        std::os::unix::fs::symlink(outside.join("missing"), allowed.join("dangling")).unwrap();
        let p = FilePolicy::new(std::slice::from_ref(&allowed), false);
        for ok in [allowed.join("ok.txt"), allowed.join("new.bin")] {
            assert!(p.check(&[file(&ok, FileAccess::Write)]).is_ok(), "{ok:?}");
            assert!(p.check(&[file(&ok, FileAccess::Read)]).is_ok(), "{ok:?}");
        }
        for bad in [
            outside.join("secret"),
            allowed.join("../outside/secret"),
            allowed.join("../outside/new"),
            allowed.join("link"),
            allowed.join("dirlink/secret"),
            allowed.join("dirlink/new"),
            allowed.join("dangling"),
            allowed.join(".."),
            PathBuf::from("/etc/passwd"),
            PathBuf::from("/proc/self/environ"),
        ] {
            for access in [FileAccess::Read, FileAccess::Write] {
                let e = p.check(&[file(&bad, access)]).unwrap_err();
                assert_eq!(e.code(), "permission_denied", "{bad:?}");
            }
        }
        let ro = FilePolicy::new(std::slice::from_ref(&allowed), true);
        assert!(
            ro.check(&[file(allowed.join("ok.txt"), FileAccess::Read)])
                .is_ok()
        );
        let e = ro
            .check(&[file(allowed.join("new"), FileAccess::Write)])
            .unwrap_err();
        assert!(e.to_string().contains("--read-only"), "{e}");
    }
}

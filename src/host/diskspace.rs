//! Naming a full disk: when the node fails, the first question is whether the filesystem of
//! its database, run or log directory ran out of space (or inodes). The daemons' own messages
//! say "No space left on device" in passing, or not at all when they crash on it; this says
//! ENOSPC and where.
//!
//! Invariant: only reads (`statvfs`); a directory that cannot be asked counts as not full.

use std::path::{Path, PathBuf};

use nix::sys::statvfs::statvfs;

/// True when nothing more can be written on `dir`'s filesystem by us: no free blocks (no
/// blocks available to a non-root user, when we are not root) or no free inodes.
pub fn is_full(dir: &Path) -> bool {
    let Ok(s) = statvfs(dir) else {
        return false;
    };
    let root = nix::unistd::geteuid().is_root();
    let blocks = if root {
        s.blocks_free()
    } else {
        s.blocks_available()
    };
    blocks == 0 || (s.files() > 0 && s.files_free() == 0)
}

/// The nearest existing ancestor of `p` (a directory we meant to create may not exist).
fn existing(p: &Path) -> Option<&Path> {
    p.ancestors().find(|a| a.exists())
}

/// "ENOSPC: no space left on the filesystem of DIR[, DIR]" for each full one, if any.
pub fn hint(dirs: &[PathBuf]) -> Option<String> {
    let mut full: Vec<String> = Vec::new();
    for d in dirs {
        if let Some(e) = existing(d) {
            if is_full(e) && !full.contains(&d.display().to_string()) {
                full.push(d.display().to_string());
            }
        }
    }
    (!full.is_empty()).then(|| {
        format!(
            "ENOSPC: no space left on the filesystem of {} (free some, then start again)",
            full.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filesystem_with_room_is_not_full() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_full(dir.path()));
        assert_eq!(hint(&[dir.path().join("not/yet/created")]), None);
        assert!(!is_full(Path::new("/no/such/dir")));
    }
}

//! The `/usr/local/var/run/openvswitch` → `/var/run/openvswitch` link that tools built with a
//! `/usr/local` prefix look for.
//!
//! Invariants: the link is replaced atomically (a temp link renamed over the old name), so a
//! reader never sees it missing; a correct link is left alone; a wrong or dangling link, a
//! regular file or an empty directory is replaced; a non-empty directory is refused — never
//! a link nested inside it, which is what `ln -sf` does to a directory and how the old
//! script broke. Two concurrent runs each rename their own temp link: both end correct.
//! Where we may not write ([`SymlinkError::is_not_permitted`]) the caller goes on without it.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, thiserror::Error)]
pub enum SymlinkError {
    #[error("{link} is a non-empty directory; refusing to replace it with a link to {target}: move its contents to {target} and remove it")]
    NonEmptyDir { link: PathBuf, target: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What is at the link's path now, and so what [`ensure`] would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    Correct,
    Missing,
    WrongLink(PathBuf),
    File,
    EmptyDir,
    NonEmptyDir,
}

impl LinkState {
    pub fn describe(&self, target: &Path) -> String {
        match self {
            LinkState::Correct => format!("links to {}", target.display()),
            LinkState::Missing => "missing: will be created".into(),
            LinkState::WrongLink(to) => format!("links to {}: will be replaced", to.display()),
            LinkState::File => "is a file: will be replaced".into(),
            LinkState::EmptyDir => "is an empty directory: will be replaced".into(),
            LinkState::NonEmptyDir => "is a non-empty directory".into(),
        }
    }
}

impl SymlinkError {
    /// We may not write where the link goes (EACCES, EPERM, EROFS): a non-root pod in an image
    /// without a writable `/usr/local/var/run`, as Kube-OVN's (built with prefix /usr, nothing
    /// there looks for the link). Any other error means the path itself is wrong.
    pub fn is_not_permitted(&self) -> bool {
        match self {
            SymlinkError::NonEmptyDir { .. } => false,
            SymlinkError::Io { source, .. } => matches!(
                source.raw_os_error().map(nix::errno::Errno::from_raw),
                Some(
                    nix::errno::Errno::EACCES | nix::errno::Errno::EPERM | nix::errno::Errno::EROFS
                )
            ),
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SymlinkError + '_ {
    move |source| SymlinkError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads the current state without changing anything.
pub fn state(link: &Path, target: &Path) -> Result<LinkState, SymlinkError> {
    let meta = match std::fs::symlink_metadata(link) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(LinkState::Missing),
        Err(e) => return Err(io(link)(e)),
    };
    if meta.file_type().is_symlink() {
        let to = std::fs::read_link(link).map_err(io(link))?;
        return Ok(if to == target {
            LinkState::Correct
        } else {
            LinkState::WrongLink(to)
        });
    }
    if meta.is_dir() {
        let mut entries = std::fs::read_dir(link).map_err(io(link))?;
        return Ok(if entries.next().is_none() {
            LinkState::EmptyDir
        } else {
            LinkState::NonEmptyDir
        });
    }
    Ok(LinkState::File)
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Makes `link` a symlink to `target`; returns the state found before.
pub fn ensure(link: &Path, target: &Path) -> Result<LinkState, SymlinkError> {
    let before = state(link, target)?;
    match before {
        LinkState::Correct => return Ok(before),
        LinkState::NonEmptyDir => {
            return Err(SymlinkError::NonEmptyDir {
                link: link.to_path_buf(),
                target: target.to_path_buf(),
            })
        }
        LinkState::EmptyDir => match std::fs::remove_dir(link) {
            // A concurrent run removed it first: fine, the rename below still lands.
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(io(link)(e)),
            _ => {}
        },
        LinkState::Missing => {
            if let Some(parent) = link.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
        }
        LinkState::WrongLink(_) | LinkState::File => {}
    }
    let name = link
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = link.with_file_name(format!(
        ".{name}.tmp.{}.{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::os::unix::fs::symlink(target, &tmp).map_err(io(&tmp))?;
    if let Err(e) = std::fs::rename(&tmp, link) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(link)(e));
    }
    Ok(before)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_starting_state() {
        type Setup = fn(&Path, &Path);
        let cases: &[(&str, Setup, Result<LinkState, &str>)] = &[
            ("missing, parent too", |_, _| {}, Ok(LinkState::Missing)),
            (
                "correct",
                |l, t| std::os::unix::fs::symlink(t, l).unwrap(),
                Ok(LinkState::Correct),
            ),
            (
                "wrong",
                |l, _| std::os::unix::fs::symlink("/elsewhere", l).unwrap(),
                Ok(LinkState::WrongLink("/elsewhere".into())),
            ),
            (
                "dangling",
                |l, _| std::os::unix::fs::symlink("/no/such/dir", l).unwrap(),
                Ok(LinkState::WrongLink("/no/such/dir".into())),
            ),
            (
                "file",
                |l, _| std::fs::write(l, "x").unwrap(),
                Ok(LinkState::File),
            ),
            (
                "empty dir",
                |l, _| std::fs::create_dir(l).unwrap(),
                Ok(LinkState::EmptyDir),
            ),
            (
                "non-empty dir",
                |l, _| {
                    std::fs::create_dir(l).unwrap();
                    std::fs::write(l.join("db.sock"), "").unwrap()
                },
                Err("non-empty directory"),
            ),
        ];
        for (what, setup, want) in cases {
            let dir = tempfile::tempdir().unwrap();
            let target = dir.path().join("run/openvswitch");
            std::fs::create_dir_all(&target).unwrap();
            let parent = dir.path().join("usr/local/var/run");
            if *what != "missing, parent too" {
                std::fs::create_dir_all(&parent).unwrap();
            }
            let link = parent.join("openvswitch");
            setup(&link, &target);
            match (ensure(&link, &target), want) {
                (Ok(before), Ok(w)) => {
                    assert_eq!(&before, w, "{what}");
                    assert_eq!(std::fs::read_link(&link).unwrap(), target, "{what}");
                    let leftovers: Vec<_> = std::fs::read_dir(&parent)
                        .unwrap()
                        .flatten()
                        .map(|e| e.file_name())
                        .collect();
                    assert_eq!(leftovers.len(), 1, "{what}: temp links left: {leftovers:?}");
                }
                (Err(e), Err(w)) => {
                    assert!(e.to_string().contains(w), "{what}: {e}");
                    // Nothing nested, nothing removed.
                    assert!(link.join("db.sock").exists());
                    assert!(!link.join("openvswitch").exists());
                }
                (got, w) => panic!("{what}: got {got:?}, want {w:?}"),
            }
        }
    }

    #[test]
    fn only_permission_errors_are_not_permitted() {
        use nix::errno::Errno;
        let io = |errno: Errno| SymlinkError::Io {
            path: "/usr/local/var/run".into(),
            source: std::io::Error::from_raw_os_error(errno as i32),
        };
        let cases = [
            (io(Errno::EACCES), true),
            (io(Errno::EPERM), true),
            (io(Errno::EROFS), true),
            (io(Errno::ENOTDIR), false),
            (io(Errno::ENOSPC), false),
            (io(Errno::ELOOP), false),
            (
                SymlinkError::NonEmptyDir {
                    link: "/usr/local/var/run/openvswitch".into(),
                    target: "/var/run/openvswitch".into(),
                },
                false,
            ),
        ];
        for (e, want) in cases {
            assert_eq!(e.is_not_permitted(), want, "{e}");
        }
    }

    #[test]
    fn concurrent_runs_end_with_one_correct_link() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("run/openvswitch");
        let link = dir.path().join("usr/local/var/run/openvswitch");
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink("/wrong", &link).unwrap();
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..50 {
                        ensure(&link, &target).unwrap();
                    }
                });
            }
        });
        assert_eq!(std::fs::read_link(&link).unwrap(), target);
        assert_eq!(
            std::fs::read_dir(link.parent().unwrap()).unwrap().count(),
            1
        );
    }
}

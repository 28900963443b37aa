//! Trusted directories: the run, database and log directories are walked from `/` one
//! component at a time, relative to the parent's file descriptor, before anything is created
//! in them (a planted `run/openvswitch` symlink used to make us create sockets and delete
//! files elsewhere).
//!
//! The rule, for every directory on the path (after following the links we accept):
//! - it is owned by root or by our effective uid (Kube-OVN's init container chowns the host
//!   directories to the pod's uid, 65534; `/`, `/var`, `/run` are root's); outside a sandbox,
//!   also by the uid set with [`trust_owner`] — Kube-OVN's pod uid, whose init container chowns
//!   the host directories to it even when the container itself runs as root (IPsec mode, or
//!   an operator's `runAsUser: 0`);
//! - it is not writable by others, nor by a group other than root's, unless it has the sticky
//!   bit (`/tmp`): then nobody else can rename or delete what we made in it;
//! - a symlink is followed only when root or we own it (its directory has already passed), so
//!   Debian's `/var/run` → `/run` is fine; below a sandbox root no symlink is followed at all,
//!   since we never make one there.
//!
//! Invariant: a path that passes can only be changed by root or by us, so later plain path
//! operations on it cannot be redirected by another user. A missing component is created with
//! `mkdirat` (0755) relative to its checked parent and opened again with `O_NOFOLLOW`, so a
//! link planted in between is refused, not followed. Files we write whole into such a
//! directory go through its descriptor ([`write_atomic`], in `create.rs`).

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, mkdirat, FileStat, Mode, SFlag};

use crate::config::paths::Layout;

mod create;
pub use create::{remove_if_ours, write_atomic, Created};

/// Most symlinks followed on one path (Linux's own limit).
const MAX_LINKS: usize = 40;

#[derive(Debug, thiserror::Error)]
pub enum FsGuardError {
    #[error("{path}: {component} {why}; refusing to use it (nothing was created or removed)")]
    Untrusted {
        path: PathBuf,
        component: PathBuf,
        why: String,
    },
    #[error("{path}: {component}: {errno}")]
    Sys {
        path: PathBuf,
        component: PathBuf,
        errno: Errno,
    },
}

/// One component still to walk; `below` is true for those strictly under a sandbox root.
struct Part {
    name: OsString,
    below: bool,
}

struct Walker<'a> {
    path: &'a Path,
    create: bool,
    euid: u32,
    /// Checked directories from `/` down, with their resolved paths.
    stack: Vec<(OwnedFd, PathBuf)>,
}

fn parts(path: &Path, below_from: usize) -> VecDeque<Part> {
    path.components()
        .filter(|c| !matches!(c, Component::RootDir | Component::CurDir))
        .enumerate()
        .map(|(i, c)| Part {
            name: c.as_os_str().to_os_string(),
            below: i >= below_from,
        })
        .collect()
}

impl Walker<'_> {
    fn here(&self) -> PathBuf {
        self.stack
            .last()
            .map(|(_, p)| p.clone())
            .unwrap_or_default()
    }

    fn untrusted(&self, component: PathBuf, why: impl Into<String>) -> FsGuardError {
        FsGuardError::Untrusted {
            path: self.path.to_path_buf(),
            component,
            why: why.into(),
        }
    }

    fn sys(&self, component: PathBuf, errno: Errno) -> FsGuardError {
        FsGuardError::Sys {
            path: self.path.to_path_buf(),
            component,
            errno,
        }
    }

    /// The trust rule for one directory or link, from its `stat`.
    fn judge(&self, at: &Path, st: &FileStat, is_link: bool) -> Result<(), FsGuardError> {
        let trusted = TRUSTED_OWNER.get() == Some(&st.st_uid);
        if st.st_uid != 0 && st.st_uid != self.euid && !trusted {
            let what = if is_link { "is a symlink" } else { "is" };
            return Err(self.untrusted(
                at.into(),
                format!(
                    "{what} owned by uid {}, neither root nor us (uid {})",
                    st.st_uid, self.euid
                ),
            ));
        }
        if is_link {
            return Ok(());
        }
        let sticky = st.st_mode & 0o1000 != 0;
        if !sticky && st.st_mode & 0o002 != 0 {
            return Err(self.untrusted(at.into(), "is world-writable without the sticky bit"));
        }
        if !sticky && st.st_mode & 0o020 != 0 && st.st_gid != 0 {
            return Err(self.untrusted(
                at.into(),
                format!("is writable by group {} without the sticky bit", st.st_gid),
            ));
        }
        Ok(())
    }

    fn open_dir(&self, name: &OsStr, at: &Path) -> Result<OwnedFd, FsGuardError> {
        let parent = &self.stack.last().expect("root is always on the stack").0;
        let flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY;
        let fd =
            openat(Some(parent.as_raw_fd()), name, flags, Mode::empty()).map_err(|e| match e {
                Errno::ELOOP => self.untrusted(at.into(), "became a symlink while we checked it"),
                e => self.sys(at.into(), e),
            })?;
        // SAFETY: `openat` returned a new descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// Walks `path`; `None` when a missing component stops a check-only walk.
    fn walk(mut self, mut todo: VecDeque<Part>) -> Result<Option<OwnedFd>, FsGuardError> {
        let root = Path::new("/");
        let flags = OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_RDONLY;
        let fd =
            nix::fcntl::open(root, flags, Mode::empty()).map_err(|e| self.sys(root.into(), e))?;
        // SAFETY: `open` returned a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let st = fstat(fd.as_raw_fd()).map_err(|e| self.sys(root.into(), e))?;
        self.judge(root, &st, false)?;
        self.stack.push((fd, root.into()));
        let mut links = 0;
        while let Some(part) = todo.pop_front() {
            if part.name == ".." {
                if self.stack.len() > 1 {
                    self.stack.pop();
                }
                continue;
            }
            let at = self.here().join(&part.name);
            let parent = &self.stack.last().expect("root is always on the stack").0;
            let st = match fstatat(
                Some(parent.as_raw_fd()),
                part.name.as_os_str(),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            ) {
                Ok(st) => st,
                Err(Errno::ENOENT) if !self.create => return Ok(None),
                Err(Errno::ENOENT) => {
                    match mkdirat(
                        Some(parent.as_raw_fd()),
                        part.name.as_os_str(),
                        Mode::from_bits_truncate(0o755),
                    ) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(self.sys(at, e)),
                    }
                    todo.push_front(part);
                    continue;
                }
                Err(e) => return Err(self.sys(at, e)),
            };
            match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
                SFlag::S_IFLNK => {
                    if part.below {
                        return Err(self.untrusted(
                            at,
                            "is a symlink inside the sandbox, which we never make",
                        ));
                    }
                    self.judge(&at, &st, true)?;
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(self.untrusted(at, "has too many levels of symlinks"));
                    }
                    let target = readlinkat(Some(parent.as_raw_fd()), part.name.as_os_str())
                        .map_err(|e| self.sys(at.clone(), e))?;
                    let target = PathBuf::from(target);
                    if target.is_absolute() {
                        self.stack.truncate(1);
                    }
                    for p in parts(&target, usize::MAX).into_iter().rev() {
                        todo.push_front(p);
                    }
                }
                SFlag::S_IFDIR => {
                    let fd = self.open_dir(&part.name, &at)?;
                    // Judge what we opened, not what we stat'ed before: it may have been swapped.
                    let st = fstat(fd.as_raw_fd()).map_err(|e| self.sys(at.clone(), e))?;
                    self.judge(&at, &st, false)?;
                    self.stack.push((fd, at));
                }
                _ => return Err(self.untrusted(at, "is not a directory")),
            }
        }
        Ok(self.stack.pop().map(|(fd, _)| fd))
    }
}

/// A uid besides root and ours whose directories are trusted; set once, for a real node.
static TRUSTED_OWNER: std::sync::OnceLock<u32> = std::sync::OnceLock::new();

/// The uid Kube-OVN's `ovs-ovn` pod runs as; its `hostpath-init` chowns the host paths to it.
pub const KUBE_OVN_POD_UID: u32 = 65534;

/// Trusts directories owned by `uid` from now on (never in a sandbox: call it for real nodes).
pub fn trust_owner(uid: u32) {
    let _ = TRUSTED_OWNER.set(uid);
}

/// Our effective uid.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { nix::libc::geteuid() }
}

/// Checks (and with `create`, makes) the directory `path`, returning its descriptor; `None`
/// when, checking only, part of it does not exist yet (we would create the rest). Components
/// of `path` at index `sandbox_depth` and deeper count as inside a sandbox.
pub fn secure_dir(
    path: &Path,
    create: bool,
    sandbox_depth: Option<usize>,
) -> Result<Option<OwnedFd>, FsGuardError> {
    let abs;
    let path = if path.is_absolute() {
        path
    } else {
        abs = std::env::current_dir()
            .unwrap_or_else(|_| "/".into())
            .join(path);
        abs.as_path()
    };
    let w = Walker {
        path,
        create,
        euid: euid(),
        stack: Vec::new(),
    };
    w.walk(parts(path, sandbox_depth.unwrap_or(usize::MAX)))
}

/// Every directory `run` writes into: the layout's, the system-id's, and the sandbox root.
fn layout_dirs(l: &Layout) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = l.sandbox.iter().cloned().collect();
    v.extend(l.dirs().into_iter().map(Path::to_path_buf));
    v.extend(l.system_id_file().parent().map(Path::to_path_buf));
    v
}

fn depth(p: &Path) -> usize {
    p.components()
        .filter(|c| matches!(c, Component::Normal(_) | Component::ParentDir))
        .count()
}

/// Checks every directory of `l` first, creating nothing; then creates what is missing.
pub fn prepare_layout(l: &Layout) -> Result<(), FsGuardError> {
    check_layout(l, false)?;
    check_layout(l, true)
}

/// Walks every directory of `l`; with `create`, makes what is missing.
pub fn check_layout(l: &Layout, create: bool) -> Result<(), FsGuardError> {
    for d in &layout_dirs(l) {
        // The sandbox root itself follows the general rule; what is under it, the strict one.
        let inside = l
            .sandbox
            .as_deref()
            .filter(|s| d.as_path() != *s)
            .map(depth);
        secure_dir(d, create, inside)?;
    }
    Ok(())
}

/// Opens `d`, one of `l`'s directories, checked as [`check_layout`] checks it (strictly below
/// a sandbox root); `None` when it does not exist.
pub fn open_layout_dir(l: &Layout, d: &Path) -> Result<Option<OwnedFd>, FsGuardError> {
    let inside = l.sandbox.as_deref().filter(|s| d != *s).map(depth);
    secure_dir(d, false, inside)
}

/// Removes the file `path` relative to its checked parent directory, never following a link
/// anywhere on the way; a file already gone counts as removed.
pub fn remove_file(path: &Path) -> std::io::Result<()> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(std::io::Error::other(format!(
            "{}: no file name",
            path.display()
        )));
    };
    let fd = secure_dir(dir, false, None)
        .map_err(std::io::Error::other)?
        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound));
    let fd = match fd {
        Ok(fd) => fd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    match nix::unistd::unlinkat(
        Some(fd.as_raw_fd()),
        name,
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    ) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests;

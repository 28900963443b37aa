//! The files Kube-OVN's `uninstall.sh` removes with `rm -rf DIR/*` (the run, database and log
//! directories), removed from the directories of our layout only.
//!
//! Invariants:
//! - Only inside the layout's directories, each opened through [`fsguard`] (a directory another
//!   user could redirect is refused, as `run` refuses it); everything below is reached relative
//!   to its parent's descriptor with `O_NOFOLLOW`, so a symlink is removed itself, never
//!   followed, and a directory swapped for a link is not entered.
//! - A file some live process holds is left in place and reported: a socket that accepts
//!   connections, a file with an fcntl lock (OVS's pidfiles and database locks). Our daemons
//!   have stopped by then, so what is live belongs to someone else: on a master node the
//!   ovn-central pod keeps `ovnnb_db.*`, `ovnsb_db.*` and `ovn-northd.*` in the same host
//!   `/run/ovn` (Kube-OVN's script deletes them from under it).
//! - The paths in `keep` (the instance lock, which is never unlinked, and the live
//!   supervisor's control socket) stay.
//! - Depth is bounded ([`MAX_DEPTH`]); a failure is recorded with its path and the rest goes on.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{fcntl, openat, FcntlArg, OFlag};
use nix::libc;
use nix::sys::stat::{fstatat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

use crate::config::paths::Layout;
use crate::host::fsguard::{self, FsGuardError};

/// Deepest directory level entered below a layout directory.
pub const MAX_DEPTH: usize = 16;

/// Why a file was left in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// A live process holds it (listens on the socket, holds a lock on the file).
    InUse,
    /// Asked to keep it (the supervisor's own).
    Asked,
    /// Below [`MAX_DEPTH`].
    TooDeep,
}

#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error(transparent)]
    Untrusted(#[from] FsGuardError),
    #[error("cannot remove {path}: {errno}")]
    Sys { path: PathBuf, errno: Errno },
}

/// What [`clear`] did.
#[derive(Debug, Default)]
pub struct Cleared {
    pub removed: Vec<PathBuf>,
    pub kept: Vec<(PathBuf, Kept)>,
    pub errors: Vec<FilesError>,
}

/// The directories to empty: the layout's, and the system-id file where it lives elsewhere.
fn targets(l: &Layout) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut dirs: Vec<PathBuf> = l.dirs().into_iter().map(Path::to_path_buf).collect();
    dirs.sort();
    dirs.dedup();
    let id = l.system_id_file();
    let files = match id.parent() {
        Some(p) if !dirs.iter().any(|d| d == p) => vec![id],
        _ => Vec::new(),
    };
    (dirs, files)
}

/// Empties every directory of `l` (and removes a system-id file kept elsewhere), except
/// what `keep` names and what a live process holds.
pub fn clear(l: &Layout, keep: &[PathBuf]) -> Cleared {
    let mut out = Cleared::default();
    let (dirs, files) = targets(l);
    for d in dirs {
        match fsguard::open_layout_dir(l, &d) {
            Ok(Some(fd)) => clear_dir(&fd, &d, keep, 0, &mut out),
            Ok(None) => {}
            Err(e) => out.errors.push(e.into()),
        }
    }
    for f in files {
        if keep.contains(&f) {
            continue;
        }
        match fsguard::remove_file(&f) {
            Ok(()) => out.removed.push(f),
            Err(e) => out.errors.push(FilesError::Sys {
                path: f,
                errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
            }),
        }
    }
    out
}

/// True when a process accepts connections on the socket at `path` (anything but a refusal
/// or a vanished file counts as in use: when in doubt, keep).
fn socket_in_use(path: &Path) -> bool {
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => true,
        Err(e) => !matches!(
            e.raw_os_error().map(Errno::from_raw),
            Some(Errno::ECONNREFUSED | Errno::ENOENT)
        ),
    }
}

/// True when someone holds an fcntl lock on the regular file `name` in `dir` (OVS locks its
/// pidfiles and databases so); a file we cannot open or ask is kept as in use.
fn file_locked(dir: &OwnedFd, name: &std::ffi::OsStr) -> bool {
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
    let Ok(raw) = openat(Some(dir.as_raw_fd()), name, flags, Mode::empty()) else {
        return true;
    };
    // SAFETY: `openat` returned a new descriptor that nothing else owns.
    let f = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: `flock` is a plain C struct for which all-zero bytes is a valid value; a zero
    // start and length mean the whole file.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    match fcntl(f.as_raw_fd(), FcntlArg::F_GETLK(&mut fl)) {
        Ok(_) => fl.l_type != libc::F_UNLCK as libc::c_short,
        Err(_) => true,
    }
}

fn names(dir: &OwnedFd) -> Result<Vec<std::ffi::OsString>, Errno> {
    let dup = nix::unistd::dup(dir.as_raw_fd())?;
    let mut d = Dir::from_fd(dup)?;
    let mut v = Vec::new();
    for e in d.iter() {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            use std::os::unix::ffi::OsStrExt;
            v.push(std::ffi::OsStr::from_bytes(n).to_os_string());
        }
    }
    Ok(v)
}

fn clear_dir(dir: &OwnedFd, path: &Path, keep: &[PathBuf], depth: usize, out: &mut Cleared) {
    let sys = |p: &Path, errno| FilesError::Sys {
        path: p.to_path_buf(),
        errno,
    };
    let entries = match names(dir) {
        Ok(n) => n,
        Err(e) => return out.errors.push(sys(path, e)),
    };
    for name in entries {
        let p = path.join(&name);
        if keep.contains(&p) {
            out.kept.push((p, Kept::Asked));
            continue;
        }
        let st = match fstatat(
            Some(dir.as_raw_fd()),
            name.as_os_str(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(st) => st,
            Err(Errno::ENOENT) => continue,
            Err(e) => {
                out.errors.push(sys(&p, e));
                continue;
            }
        };
        let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
        let is_dir = kind == SFlag::S_IFDIR;
        let how = match kind {
            SFlag::S_IFDIR => {
                if depth + 1 >= MAX_DEPTH {
                    out.kept.push((p, Kept::TooDeep));
                    continue;
                }
                let flags =
                    OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY;
                match openat(
                    Some(dir.as_raw_fd()),
                    name.as_os_str(),
                    flags,
                    Mode::empty(),
                ) {
                    Ok(raw) => {
                        // SAFETY: `openat` returned a new descriptor that nothing else owns.
                        let sub = unsafe { OwnedFd::from_raw_fd(raw) };
                        clear_dir(&sub, &p, keep, depth + 1, out);
                    }
                    Err(e) => {
                        out.errors.push(sys(&p, e));
                        continue;
                    }
                }
                UnlinkatFlags::RemoveDir
            }
            SFlag::S_IFSOCK if socket_in_use(&p) => {
                out.kept.push((p, Kept::InUse));
                continue;
            }
            SFlag::S_IFREG if file_locked(dir, &name) => {
                out.kept.push((p, Kept::InUse));
                continue;
            }
            _ => UnlinkatFlags::NoRemoveDir,
        };
        match unlinkat(Some(dir.as_raw_fd()), name.as_os_str(), how) {
            Ok(()) => out.removed.push(p),
            Err(Errno::ENOENT) => {}
            // Something in it was kept: the directory stays, and says why through its content.
            Err(Errno::ENOTEMPTY) if is_dir => {}
            Err(e) => out.errors.push(sys(&p, e)),
        }
    }
}

#[cfg(test)]
mod tests;

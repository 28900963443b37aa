//! Stale state left by a crash or a node reboot (pods stuck after a reboot): our daemons'
//! pidfiles, control, management and database sockets, and database lock files.
//!
//! Invariants:
//! - Only the files named in an [`Owned`] allow-list are ever looked at. The run directories are
//!   shared: on a master node the ovn-central pod keeps `ovnnb_db.*`, `ovnsb_db.*` and
//!   `ovn-northd.*` in the same host `/run/ovn`, from its own pid namespace, so nothing is found
//!   by listing a directory.
//! - A pidfile is judged by its lock, never by the pid it holds: every OVS/OVN daemon keeps an
//!   fcntl write lock on its pidfile for its whole life, and the lock is seen across pid
//!   namespaces, whereas the pid inside means nothing outside the writer's namespace. Unlocked =
//!   the writer is gone.
//! - A socket is stale only when connecting is refused (ECONNREFUSED); a lock file only when we
//!   can take its fcntl lock, the lock OVS itself uses.
//! - A live daemon is never touched: it is reported. [`scan`] only reads; [`remove`] is the only
//!   write.

use std::os::fd::AsRawFd;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg};
use nix::libc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    StalePidfile {
        path: PathBuf,
        pid: i32,
        why: String,
    },
    StaleSocket {
        path: PathBuf,
    },
    StaleLock {
        path: PathBuf,
    },
    /// A daemon that holds its pidfile's lock: not ours to touch. `pid` is as seen from here
    /// (0 when the holder lives in another pid namespace).
    LiveDaemon {
        pidfile: PathBuf,
        pid: i32,
        program: String,
    },
}

impl Finding {
    pub fn describe(&self) -> String {
        match self {
            Finding::StalePidfile { path, pid, why } => {
                format!("{}: pid {pid} {why}", path.display())
            }
            Finding::StaleSocket { path } => format!("{}: nobody listens", path.display()),
            Finding::StaleLock { path } => format!("{}: no process holds it", path.display()),
            Finding::LiveDaemon {
                pidfile,
                pid,
                program,
            } => {
                format!("{program} (pid {pid}, {}) is running", pidfile.display())
            }
        }
    }
}

/// The files of one daemon of ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    /// The program, as `/proc/PID/comm` shows it (for the report only).
    pub program: &'static str,
    pub pidfile: PathBuf,
    /// Control sockets named `PREFIX.PID.ctl` (OVS's default) in the pidfile's directory.
    pub ctl_prefix: Option<&'static str>,
    /// Its other sockets (`db.sock`, `br-int.mgmt`, the embedded Southbound's).
    pub sockets: Vec<PathBuf>,
}

/// True for `PREFIX.DIGITS.ctl`, OVS's `NAME.PID.ctl`.
fn is_pid_ctl(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('.'))
        .and_then(|r| r.strip_suffix(".ctl"))
        .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

/// An fcntl write lock over the whole file: the lock OVS takes on its pidfiles and databases.
fn whole_file_write_lock() -> libc::flock {
    // SAFETY: `flock` is a plain C struct for which all-zero bytes is a valid value (and
    // `l_start = l_len = 0` means the whole file).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl
}

/// Who holds the fcntl write lock on `path`. `Unknown` (cannot open or ask) is never taken for
/// stale.
enum LockHolder {
    Nobody,
    Pid(i32),
    Unknown,
}

fn lock_holder(path: &Path) -> LockHolder {
    // A regular file only, never through a link, never a blocking open (a FIFO would hang).
    let Ok(f) = crate::nodefile::open(path, u64::MAX, crate::nodefile::Links::Refuse) else {
        return LockHolder::Unknown;
    };
    let mut fl = whole_file_write_lock();
    match fcntl(f.as_raw_fd(), FcntlArg::F_GETLK(&mut fl)) {
        Ok(_) if fl.l_type == libc::F_UNLCK as libc::c_short => LockHolder::Nobody,
        // The kernel reports 0 for a holder outside our pid namespace.
        Ok(_) => LockHolder::Pid(fl.l_pid),
        Err(_) => LockHolder::Unknown,
    }
}

fn check_pidfile(path: &Path, program: &str) -> Option<Finding> {
    let content = crate::nodefile::read_to_string(path, 64, crate::nodefile::Links::Refuse).ok()?;
    let pid = content.trim().parse::<i32>().unwrap_or(0);
    match lock_holder(path) {
        LockHolder::Nobody => Some(Finding::StalePidfile {
            path: path.to_path_buf(),
            pid,
            why: "is gone (nobody holds the pidfile's lock)".into(),
        }),
        LockHolder::Pid(holder) => Some(Finding::LiveDaemon {
            pidfile: path.to_path_buf(),
            pid: holder,
            program: program.to_string(),
        }),
        LockHolder::Unknown => None,
    }
}

fn socket_is_stale(path: &Path) -> bool {
    matches!(
        std::os::unix::net::UnixStream::connect(path),
        Err(e) if e.raw_os_error() == Some(Errno::ECONNREFUSED as i32)
    )
}

/// True when nobody holds the OVS lock on `path` (we could take its fcntl write lock).
fn lock_is_free(path: &Path) -> bool {
    let Ok(f) = crate::nodefile::open_for(path, u64::MAX, crate::nodefile::Links::Refuse, true)
    else {
        return false;
    };
    let fl = whole_file_write_lock();
    // The lock is released when `f` closes at the end of this function.
    fcntl(f.as_raw_fd(), FcntlArg::F_SETLK(&fl)).is_ok()
}

/// The sockets of `owned` that exist: its named ones, and its `PREFIX.PID.ctl` files (the
/// directory is listed, but only names of that form are kept).
fn owned_sockets(owned: &Owned) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = owned.sockets.clone();
    if let (Some(prefix), Some(dir)) = (owned.ctl_prefix, owned.pidfile.parent()) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            found.extend(
                entries
                    .flatten()
                    .filter(|e| {
                        e.file_name()
                            .to_str()
                            .is_some_and(|n| is_pid_ctl(n, prefix))
                    })
                    .map(|e| e.path()),
            );
        }
    }
    found.retain(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_socket()));
    found.sort();
    found
}

/// Looks at the allow-listed files of `owned` and at `lock_files`; changes nothing.
pub fn scan(owned: &[Owned], lock_files: &[PathBuf]) -> Vec<Finding> {
    let mut found = Vec::new();
    for o in owned {
        found.extend(check_pidfile(&o.pidfile, o.program));
        for sock in owned_sockets(o) {
            if socket_is_stale(&sock) {
                found.push(Finding::StaleSocket { path: sock });
            }
        }
    }
    for lock in lock_files {
        if lock.exists() && lock_is_free(lock) {
            found.push(Finding::StaleLock { path: lock.clone() });
        }
    }
    found
}

/// Removes the stale findings; a file already gone counts as removed.
pub fn remove(findings: &[Finding]) -> Vec<(PathBuf, std::io::Result<()>)> {
    findings
        .iter()
        .filter_map(|f| match f {
            Finding::StalePidfile { path, .. }
            | Finding::StaleSocket { path }
            | Finding::StaleLock { path } => Some(path.clone()),
            Finding::LiveDaemon { .. } => None,
        })
        .map(|p| {
            // Relative to the checked directory: a swapped component cannot redirect it.
            let r = crate::host::fsguard::remove_file(&p);
            (p, r)
        })
        .collect()
}

#[cfg(test)]
mod tests;

//! One supervisor per run directory: an exclusive `flock` on `OVS_RUNDIR/ovs-ovn-supervisor.lock`
//! (without it, of 10 simultaneous starts, the losers deleted the winner's control socket and
//! two vswitchds ran on one run dir).
//!
//! Invariants: the lock is taken before host preparation changes anything (only the
//! directories exist by then) and held for the process's life; the holder writes its pid into
//! the file so a loser can name it. The file is never unlinked: removing a lock file lets two
//! processes lock two different inodes under one name. The descriptor is close-on-exec, so
//! no daemon inherits the lock. In a rolling update the old instance releases it once it has
//! handed over (it idles afterwards) and the new one waits for it, with a deadline.

use std::fs::File;
use std::io::{Seek, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::sys::stat::Mode;

pub const LOCK_NAME: &str = "ovs-ovn-supervisor.lock";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} already runs this node: it holds {}{}; not starting, nothing changed", holder_name(*pid), path.display(), detail.as_ref().map(|d| format!("; {d}")).unwrap_or_default())]
    Held {
        path: PathBuf,
        pid: Option<i32>,
        detail: Option<String>,
    },
}

fn holder_name(pid: Option<i32>) -> String {
    pid.map_or("another ovs-ovn-supervisor (pid unknown)".into(), |p| {
        format!("ovs-ovn-supervisor pid {p}")
    })
}

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub struct InstanceLock {
    lock: Flock<File>,
    path: PathBuf,
}

impl InstanceLock {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LockError + '_ {
    move |source| LockError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Opens (creating, 0600) the lock file in `rundir` without following a link at any step.
fn open(rundir: &Path) -> Result<(File, PathBuf), LockError> {
    let path = rundir.join(LOCK_NAME);
    let dir = crate::host::fsguard::secure_dir(rundir, false, None)
        .map_err(|e| io(&path)(std::io::Error::other(e)))?
        .ok_or_else(|| io(&path)(std::io::ErrorKind::NotFound.into()))?;
    let flags = OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = nix::fcntl::openat(
        Some(std::os::fd::AsRawFd::as_raw_fd(&dir)),
        LOCK_NAME,
        flags,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(|e| io(&path)(e.into()))?;
    // SAFETY: `openat` returned a new descriptor that nothing else owns.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    Ok((file, path))
}

/// The pid the holder wrote; it writes right after locking, so an empty file is retried
/// briefly.
fn holder(path: &Path) -> Option<i32> {
    let t0 = Instant::now();
    loop {
        let read = crate::nodefile::read_to_string(path, 64, crate::nodefile::Links::Refuse);
        if let Some(pid) = read.ok().and_then(|s| s.trim().parse().ok()) {
            return Some(pid);
        }
        if t0.elapsed() > Duration::from_millis(200) {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Takes the lock now, or says who holds it ([`LockError::Held`]).
pub fn try_acquire(rundir: &Path) -> Result<InstanceLock, LockError> {
    let (file, path) = open(rundir)?;
    let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(l) => l,
        Err((_, Errno::EWOULDBLOCK)) => {
            return Err(LockError::Held {
                pid: holder(&path),
                path,
                detail: None,
            })
        }
        Err((_, e)) => return Err(io(&path)(e.into())),
    };
    let pid = std::process::id();
    lock.set_len(0)
        .and_then(|()| lock.rewind())
        .and_then(|()| writeln!(lock, "{pid}"))
        .map_err(io(&path))?;
    Ok(InstanceLock { lock, path })
}

/// Waits for the lock until `deadline` (after a handover the old instance releases it).
pub fn acquire_until(rundir: &Path, deadline: Instant) -> Result<InstanceLock, LockError> {
    loop {
        match try_acquire(rundir) {
            Err(LockError::Held { path, pid, .. }) if Instant::now() >= deadline => {
                return Err(LockError::Held {
                    path,
                    pid,
                    detail: Some("it handed over but did not release the lock in time".into()),
                })
            }
            Err(LockError::Held { .. }) => std::thread::sleep(Duration::from_millis(10)),
            r => return r,
        }
    }
}

/// Drops the lock explicitly (clearer than a bare `drop` at the call site).
pub fn release(lock: InstanceLock) {
    drop(lock.lock);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_claim_names_the_holder_and_gets_it_after_release() {
        let t = tempfile::tempdir().unwrap();
        let first = try_acquire(t.path()).unwrap();
        let me = std::process::id() as i32;
        match try_acquire(t.path()) {
            Err(e @ LockError::Held { pid: Some(p), .. }) if p == me => {
                let msg = e.to_string();
                assert!(
                    msg.contains(LOCK_NAME) && msg.contains(&format!("pid {me}")),
                    "{msg}"
                );
            }
            other => panic!("{other:?}"),
        }
        release(first);
        let again = acquire_until(t.path(), Instant::now() + Duration::from_secs(1)).unwrap();
        assert_eq!(again.path(), t.path().join(LOCK_NAME));
    }

    #[test]
    fn waiting_for_a_lock_never_released_ends_at_the_deadline() {
        let t = tempfile::tempdir().unwrap();
        let _held = try_acquire(t.path()).unwrap();
        let e = acquire_until(t.path(), Instant::now() + Duration::from_millis(50)).unwrap_err();
        assert!(e.to_string().contains("did not release"), "{e}");
    }
}

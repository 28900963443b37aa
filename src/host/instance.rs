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
//!
//! While it runs the node the holder [`keep`]s the file: one deleted (or replaced by a file
//! nobody locks) is locked again under its name — a new file is locked under a temp name and
//! linked into place, so it never appears unlocked. The handed-over instance [`probe`]s it
//! without creating it, to tell whether its successor holds it.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
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

/// `rundir`, checked and opened without following a link at any step.
fn dir_of(rundir: &Path, path: &Path) -> Result<OwnedFd, LockError> {
    crate::host::fsguard::secure_dir(rundir, false, None)
        .map_err(|e| io(path)(std::io::Error::other(e)))?
        .ok_or_else(|| io(path)(std::io::ErrorKind::NotFound.into()))
}

/// Opens `name` in `dir` (0600, `extra` flags: creating, exclusively) without following a link.
fn open_in(dir: &OwnedFd, name: &str, extra: OFlag) -> nix::Result<File> {
    let flags = OFlag::O_RDWR | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | extra;
    let fd = nix::fcntl::openat(
        Some(std::os::fd::AsRawFd::as_raw_fd(dir)),
        name,
        flags,
        Mode::from_bits_truncate(0o600),
    )?;
    // SAFETY: `openat` returned a new descriptor that nothing else owns.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Opens (creating, 0600) the lock file in `rundir` without following a link at any step.
fn open(rundir: &Path) -> Result<(File, PathBuf), LockError> {
    let path = rundir.join(LOCK_NAME);
    let dir = dir_of(rundir, &path)?;
    let file = open_in(&dir, LOCK_NAME, OFlag::O_CREAT).map_err(|e| io(&path)(e.into()))?;
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
    let lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
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
    let mut lock = InstanceLock { lock, path };
    lock.mark()?;
    Ok(lock)
}

impl InstanceLock {
    /// Writes our pid into the file, so a loser can name the holder.
    pub fn mark(&mut self) -> Result<(), LockError> {
        let pid = std::process::id();
        let path = &self.path;
        let lock = &mut self.lock;
        lock.set_len(0)
            .and_then(|()| lock.rewind())
            .and_then(|()| writeln!(lock, "{pid}"))
            .map_err(io(path))
    }

    /// Device and inode of the locked file.
    fn id(&self) -> Result<(u64, u64), LockError> {
        let m = self.lock.metadata().map_err(io(&self.path))?;
        Ok((m.dev(), m.ino()))
    }
}

/// What a try-lock of the lock file found ([`probe`]).
#[derive(Debug)]
pub enum Probe {
    /// Nobody held it: now we do (not yet marked with our pid).
    Free(InstanceLock),
    /// Somebody holds it; the pid written in it, if any.
    Held { pid: Option<i32> },
    /// No lock file.
    Missing,
}

/// Tries the lock in `rundir` without creating the file and without waiting; reads the pid in
/// it once when it is held (a holder writes it right after locking: `None` or a stale pid
/// until then).
pub fn probe(rundir: &Path) -> Result<Probe, LockError> {
    let path = rundir.join(LOCK_NAME);
    let dir = dir_of(rundir, &path)?;
    let file = match open_in(&dir, LOCK_NAME, OFlag::empty()) {
        Ok(f) => f,
        Err(Errno::ENOENT) => return Ok(Probe::Missing),
        Err(e) => return Err(io(&path)(e.into())),
    };
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Probe::Free(InstanceLock { lock, path })),
        Err((mut f, Errno::EWOULDBLOCK)) => {
            let mut s = String::new();
            // Bounded: the holder writes a pid; anything longer is not one.
            let pid = (&mut f)
                .take(32)
                .read_to_string(&mut s)
                .ok()
                .and_then(|_| s.trim().parse().ok());
            Ok(Probe::Held { pid })
        }
        Err((_, e)) => Err(io(&path)(e.into())),
    }
}

/// What [`keep`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// The file at the path is the one we hold.
    Same,
    /// It was gone: a new one, locked, is in place.
    Recreated,
    /// Another file nobody held had taken its place: we hold that one now.
    Adopted,
}

/// Makes sure the lock file at its path is the one `lock` holds (the holder, while it runs
/// the node). [`LockError::Held`] when another process holds the file now at the path.
pub fn keep(lock: &mut InstanceLock, rundir: &Path) -> Result<Kept, LockError> {
    let path = rundir.join(LOCK_NAME);
    match std::fs::symlink_metadata(&path) {
        Ok(m) if (m.dev(), m.ino()) == lock.id()? => Ok(Kept::Same),
        Ok(_) => match probe(rundir)? {
            Probe::Free(mut l) => {
                l.mark()?;
                *lock = l;
                Ok(Kept::Adopted)
            }
            Probe::Held { pid } => Err(LockError::Held {
                path,
                pid,
                detail: Some("the lock file was replaced while this instance ran the node".into()),
            }),
            Probe::Missing => Ok(Kept::Same), // Gone again: the next round recreates it.
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            *lock = recreate(rundir, &path)?;
            Ok(Kept::Recreated)
        }
        Err(e) => Err(io(&path)(e)),
    }
}

/// A new lock file, locked and marked under a temp name of ours, then linked to `path`: it
/// never appears there unlocked. Fails with [`LockError::Held`] if a file appeared at `path`
/// meanwhile (the next [`keep`] judges that one).
fn recreate(rundir: &Path, path: &Path) -> Result<InstanceLock, LockError> {
    let dir = dir_of(rundir, path)?;
    let tmp = format!("{LOCK_NAME}.tmp.{}", std::process::id());
    let at = Some(std::os::fd::AsRawFd::as_raw_fd(&dir));
    // A leftover of ours (same pid) from a round that failed midway.
    let _ = nix::unistd::unlinkat(at, tmp.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir);
    let file =
        open_in(&dir, &tmp, OFlag::O_CREAT | OFlag::O_EXCL).map_err(|e| io(path)(e.into()))?;
    let lock =
        Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| io(path)(e.into()))?;
    let mut lock = InstanceLock {
        lock,
        path: path.to_path_buf(),
    };
    lock.mark()?;
    let linked = nix::unistd::linkat(
        at,
        tmp.as_str(),
        at,
        LOCK_NAME,
        nix::fcntl::AtFlags::empty(),
    );
    let _ = nix::unistd::unlinkat(at, tmp.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir);
    match linked {
        Ok(()) => Ok(lock),
        Err(Errno::EEXIST) => Err(LockError::Held {
            path: path.to_path_buf(),
            pid: None,
            detail: Some("a lock file appeared while this instance recreated its own".into()),
        }),
        Err(e) => Err(io(path)(e.into())),
    }
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

    /// Another process's lock, as a successor's would be (flock locks belong to the open file).
    fn held_elsewhere(dir: &Path) -> Flock<File> {
        let f = File::open(dir.join(LOCK_NAME)).unwrap();
        Flock::lock(f, FlockArg::LockExclusiveNonblock).unwrap()
    }

    #[test]
    fn a_probe_tells_free_from_held_and_missing_without_creating_the_file() {
        let t = tempfile::tempdir().unwrap();
        assert!(matches!(probe(t.path()), Ok(Probe::Missing)));
        assert!(!t.path().join(LOCK_NAME).exists(), "probe created the file");
        let held = try_acquire(t.path()).unwrap();
        let me = std::process::id() as i32;
        assert!(matches!(probe(t.path()), Ok(Probe::Held { pid: Some(p) }) if p == me));
        release(held);
        let Ok(Probe::Free(mut l)) = probe(t.path()) else {
            panic!("not free after release")
        };
        l.mark().unwrap();
        assert!(matches!(try_acquire(t.path()), Err(LockError::Held { .. })));
    }

    #[test]
    fn a_deleted_or_replaced_lock_file_is_locked_again() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join(LOCK_NAME);
        let mut lock = try_acquire(t.path()).unwrap();
        assert_eq!(keep(&mut lock, t.path()).unwrap(), Kept::Same);
        // Deleted: a new file, held by us and naming us, with no temp file left behind.
        std::fs::remove_file(&path).unwrap();
        assert!(
            try_acquire(t.path()).is_ok(),
            "the deleted file's name was free"
        );
        std::fs::remove_file(&path).unwrap();
        assert_eq!(keep(&mut lock, t.path()).unwrap(), Kept::Recreated);
        assert!(matches!(try_acquire(t.path()), Err(LockError::Held { .. })));
        let me = std::process::id().to_string();
        assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), me);
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 1);
        // Replaced by a file nobody holds: adopted.
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, "").unwrap();
        assert_eq!(keep(&mut lock, t.path()).unwrap(), Kept::Adopted);
        assert_eq!(keep(&mut lock, t.path()).unwrap(), Kept::Same);
        // Replaced by a file another holds: said, and not taken.
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, "4242\n").unwrap();
        let _other = held_elsewhere(t.path());
        match keep(&mut lock, t.path()) {
            Err(LockError::Held {
                pid: Some(4242), ..
            }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn waiting_for_a_lock_never_released_ends_at_the_deadline() {
        let t = tempfile::tempdir().unwrap();
        let _held = try_acquire(t.path()).unwrap();
        let e = acquire_until(t.path(), Instant::now() + Duration::from_millis(50)).unwrap_err();
        assert!(e.to_string().contains("did not release"), "{e}");
    }
}

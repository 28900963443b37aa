//! Notices when the TLS key, certificate or CA certificate that ovn-controller reads (with
//! `ENABLE_SSL`) change on disk, so the supervisor can restart it; replaces Kube-OVN's 5-second
//! hash loop with inotify.
//!
//! Why the directory and not the files: in Kubernetes the TLS dir is a secret volume where
//! `key -> ..data/key` and `..data -> ..2026_11_22_12_00_00.123456789`. An update writes a new
//! timestamped dir, points `..data_tmp` at it, renames `..data_tmp` over `..data` and removes the
//! old dir. A watch on the files follows the old inode and goes quiet after the first swap; the
//! directory itself sees every step (create, move, delete), and for plain files it sees the
//! writes (modify, close-write, attrib). An event only says "look again": the verdict comes from
//! comparing contents (resolved through symlinks) with a baseline, so a touch, a chmod or a swap
//! to identical bytes is not a change.
//!
//! Invariants:
//! - The watch is armed before the baseline is read, so a change is either in the baseline or
//!   still queued as an event; none falls in between.
//! - A missing file (or dangling link) is the state "absent", not an error; going from absent to
//!   present is a change.
//! - Reads are bounded ([`MAX_READ`]) and never block on a FIFO ([`digest_file`]). A file that
//!   cannot be read as a regular file (a FIFO, a directory, unreadable) is logged and is not a
//!   change: the baseline stays, the watch goes on, and the next real change is compared with
//!   the baseline (a FIFO appearing once used to end the watch for good).
//! - [`TlsWatch::changed`] is cancel-safe (usable in `select!`): events already consumed are
//!   remembered, and the baseline moves only when a change is returned.
//! - If the directory itself is deleted or moved away, or does not exist yet when the watch
//!   starts (a volume mounted late), it is watched for through its parent and armed as soon
//!   as something appears at the path; its files then read as absent until then.
//!
//! Limit: a file linked to somewhere outside the directory (other than through the `..data`
//! swap) is re-read only when something happens inside the directory.

mod digest;

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use digest::{digest_bytes, digest_file, Digest, MAX_READ};

use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, InotifyEvent, WatchDescriptor};
use tokio::io::unix::AsyncFd;

#[derive(Debug, thiserror::Error)]
pub enum TlsWatchError {
    #[error("TLS directory {} does not exist", path.display())]
    DirMissing { path: PathBuf },
    #[error("TLS path {} is not a directory", path.display())]
    NotADirectory { path: PathBuf },
    #[error("watched file name {name:?} must be a plain name inside the TLS directory")]
    BadName { name: String },
    #[error("TlsWatch::new must be called inside a tokio runtime with IO and timers enabled")]
    NoRuntime,
    #[error("cannot create an inotify instance: {errno}")]
    Init { errno: Errno },
    #[error("cannot watch {}: {errno}", path.display())]
    Watch { path: PathBuf, errno: Errno },
    #[error("cannot read inotify events for {}: {source}", path.display())]
    Events {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is not a regular file", path.display())]
    NotRegular { path: PathBuf },
}

/// Events that may mean a watched file changed. IN_OPEN/IN_ACCESS/IN_CLOSE_NOWRITE are left out
/// on purpose: our own reads would trigger them and wake us forever.
const DIR_EVENTS: AddWatchFlags = AddWatchFlags::IN_CREATE
    .union(AddWatchFlags::IN_MOVED_TO)
    .union(AddWatchFlags::IN_MOVED_FROM)
    .union(AddWatchFlags::IN_DELETE)
    .union(AddWatchFlags::IN_CLOSE_WRITE)
    .union(AddWatchFlags::IN_ATTRIB)
    .union(AddWatchFlags::IN_MODIFY)
    .union(AddWatchFlags::IN_DELETE_SELF)
    .union(AddWatchFlags::IN_MOVE_SELF)
    .union(AddWatchFlags::IN_ONLYDIR);

/// On the parent only the arrival of the directory's name matters (to re-arm after it went away).
const PARENT_EVENTS: AddWatchFlags = AddWatchFlags::IN_CREATE
    .union(AddWatchFlags::IN_MOVED_TO)
    .union(AddWatchFlags::IN_ONLYDIR);

/// The directory's watch is gone (deleted, moved away, unmounted) and must be re-armed.
const DIR_GONE: AddWatchFlags = AddWatchFlags::IN_DELETE_SELF
    .union(AddWatchFlags::IN_MOVE_SELF)
    .union(AddWatchFlags::IN_IGNORED)
    .union(AddWatchFlags::IN_UNMOUNT);

/// `AsyncFd` wants `AsRawFd`, which nix's `Inotify` only offers as `AsFd`.
struct InotifyFd(Inotify);

impl AsRawFd for InotifyFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

pub struct TlsWatch {
    dir: PathBuf,
    files: Vec<String>,
    debounce: Duration,
    fd: AsyncFd<InotifyFd>,
    /// `None` while the directory is missing and we wait for it through the parent.
    dir_wd: Option<WatchDescriptor>,
    /// The directory's parent and the directory's name in it; `None` for `/`.
    parent: Option<(WatchDescriptor, PathBuf)>,
    baseline: Vec<Digest>,
    /// Events were consumed but the contents not yet compared (kept across a cancelled call).
    unsettled: bool,
}

impl std::fmt::Debug for TlsWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsWatch")
            .field("dir", &self.dir)
            .field("files", &self.files)
            .field("debounce", &self.debounce)
            .field("armed", &self.dir_wd.is_some())
            .field("baseline", &self.baseline)
            .finish_non_exhaustive()
    }
}

impl TlsWatch {
    /// Starts watching `dir` for changes to the named files (resolved through symlinks). Reads
    /// and hashes their current contents as the baseline (missing files hash as "absent").
    /// Must be called inside a tokio runtime with IO and timers enabled.
    pub fn new(dir: &Path, files: &[&str], debounce: Duration) -> Result<TlsWatch, TlsWatchError> {
        for name in files {
            let plain = !name.is_empty() && *name != "." && *name != ".." && !name.contains('/');
            if !plain {
                return Err(TlsWatchError::BadName {
                    name: name.to_string(),
                });
            }
        }
        // Registering with the reactor panics outside a runtime; make that an error instead.
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(TlsWatchError::NoRuntime);
        }
        // Nonblocking: the reactor tells us when to read, and a read must never stall the thread.
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .map_err(|errno| TlsWatchError::Init { errno })?;
        // A directory not there yet is waited for through its parent, as one that went away.
        let dir_wd = match inotify.add_watch(dir, DIR_EVENTS) {
            Ok(wd) => Some(wd),
            Err(Errno::ENOENT) => {
                tracing::warn!(dir = %dir.display(), "TLS directory does not exist yet; watching for it");
                None
            }
            Err(errno) => return Err(watch_error(dir, errno)),
        };
        let parent = match (dir.parent(), dir.file_name()) {
            (Some(parent), Some(name)) => {
                let parent = if parent.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    parent
                };
                let wd = inotify
                    .add_watch(parent, PARENT_EVENTS)
                    .map_err(|errno| watch_error(parent, errno))?;
                Some((wd, PathBuf::from(name)))
            }
            _ => None,
        };
        // SAFETY: `InotifyFd` owns the fd (an `OwnedFd` inside `Inotify`), so it stays open and
        // the same for as long as the `AsyncFd` owns it, and `as_raw_fd` always returns it; we
        // never swap the inner value (`get_mut` is not used).
        let fd = unsafe { AsyncFd::register(InotifyFd(inotify)) }.map_err(|e| {
            TlsWatchError::Events {
                path: dir.to_path_buf(),
                source: e.into(),
            }
        })?;
        let mut watch = TlsWatch {
            dir: dir.to_path_buf(),
            files: files.iter().map(|f| f.to_string()).collect(),
            debounce,
            fd,
            dir_wd,
            parent,
            baseline: Vec::new(),
            unsettled: false,
        };
        // After arming (see the module invariants). A file unreadable now counts as absent: its
        // arrival as a regular file is then a change.
        watch.baseline = (watch.read_all().into_iter())
            .map(|d| d.unwrap_or(Digest::Absent))
            .collect();
        Ok(watch)
    }

    /// Resolves when the content of any watched file differs from the baseline, after events
    /// have been quiet for `debounce`, with the names of the files that changed (in the order
    /// given to [`TlsWatch::new`]); the baseline becomes the new contents. Fails only when
    /// inotify itself does; a file that cannot be read as a regular file is logged and waited
    /// out with the baseline kept (see the module invariants).
    pub async fn changed(&mut self) -> Result<Vec<String>, TlsWatchError> {
        loop {
            if !self.unsettled {
                self.next_events().await?;
            }
            // A secret update is several events; compare only once they stop.
            while let Ok(more) = tokio::time::timeout(self.debounce, self.next_events()).await {
                more?;
            }
            let now = self.read_all();
            self.unsettled = false;
            let now = match now.into_iter().collect::<Result<Vec<Digest>, _>>() {
                Ok(now) => now,
                Err(e) => {
                    tracing::warn!("{e}; not a certificate rotation: waiting for the TLS files to be regular files again");
                    continue;
                }
            };
            let names: Vec<String> = self
                .files
                .iter()
                .zip(self.baseline.iter().zip(&now))
                .filter(|(_, (old, new))| old != new)
                .map(|(name, _)| name.clone())
                .collect();
            self.baseline = now;
            if !names.is_empty() {
                return Ok(names);
            }
        }
    }

    /// The contents last compared, in the order of the watched names.
    pub fn baseline(&self) -> &[Digest] {
        &self.baseline
    }

    /// Waits until an event that may concern the files has been handled. Cancel-safe: events
    /// are consumed and handled with no await point in between.
    async fn next_events(&mut self) -> Result<(), TlsWatchError> {
        loop {
            let mut guard = self
                .fd
                .readable()
                .await
                .map_err(|source| self.events_error(source))?;
            match guard.try_io(|fd| fd.get_ref().0.read_events().map_err(io::Error::from)) {
                Ok(Ok(events)) => {
                    drop(guard);
                    if self.handle(events) {
                        return Ok(());
                    }
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(Err(source)) => return Err(self.events_error(source)),
                // Spurious readiness: try_io cleared it, wait again.
                Err(_would_block) => continue,
            }
        }
    }

    /// Re-arms as needed; true when some event may concern the files. Any event in the directory
    /// counts, whatever its name: a swap touches only `..data*` names, never `key` itself.
    fn handle(&mut self, events: Vec<InotifyEvent>) -> bool {
        let mut relevant = false;
        let mut rearm = false;
        for event in events {
            if event.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                // The lost events may have been anything, the directory coming back included.
                relevant = true;
                rearm |= self.dir_wd.is_none();
            } else if Some(event.wd) == self.dir_wd {
                relevant = true;
                if event.mask.intersects(DIR_GONE) {
                    self.disarm();
                    rearm = true;
                }
            } else if let Some((wd, name)) = &self.parent {
                // Other names in the parent (e.g. /var/run) are noise; the stale IN_IGNORED
                // of a watch we removed lands here too and is dropped.
                if event.wd == *wd && event.name.as_deref() == Some(name.as_os_str()) {
                    relevant = true;
                    rearm = true;
                }
            }
        }
        if rearm {
            self.rearm();
        }
        self.unsettled |= relevant;
        relevant
    }

    fn disarm(&mut self) {
        if let Some(wd) = self.dir_wd.take() {
            // EINVAL when the kernel already dropped it (IN_IGNORED); either way it is gone.
            let _ = self.fd.get_ref().0.rm_watch(wd);
        }
    }

    /// Points the watch at whatever directory is at the path now. Failure is not an error: the
    /// parent's watch tells us when to try again, and until then the files read as they are.
    fn rearm(&mut self) {
        match self.fd.get_ref().0.add_watch(&self.dir, DIR_EVENTS) {
            // Same inode as before: the kernel hands back the same descriptor, nothing to drop.
            Ok(wd) if Some(wd) == self.dir_wd => {}
            Ok(wd) => {
                self.disarm();
                self.dir_wd = Some(wd);
            }
            Err(errno) => {
                self.disarm();
                tracing::debug!(dir = %self.dir.display(), %errno, "TLS directory not watchable yet")
            }
        }
    }

    fn events_error(&self, source: io::Error) -> TlsWatchError {
        TlsWatchError::Events {
            path: self.dir.clone(),
            source,
        }
    }

    fn read_all(&self) -> Vec<Result<Digest, TlsWatchError>> {
        (self.files.iter())
            .map(|name| digest_file(&self.dir.join(name)))
            .collect()
    }
}

fn watch_error(path: &Path, errno: Errno) -> TlsWatchError {
    let path = path.to_path_buf();
    match errno {
        Errno::ENOENT => TlsWatchError::DirMissing { path },
        Errno::ENOTDIR => TlsWatchError::NotADirectory { path },
        errno => TlsWatchError::Watch { path, errno },
    }
}

#[cfg(test)]
mod tests;

//! The process's file descriptors: how many it may still open, and telling "we are out of
//! them" from any other failure.
//!
//! Invariants: the limit is the one in force when asked (`getrlimit`), never assumed: another
//! part of the start may have raised it, or an operator lowered it (`ulimit -n`, `prlimit`);
//! running out of fds (or of kernel memory for one) is matched by `Errno`, and is always our
//! own want, never evidence about the process we were trying to reach.

use std::path::Path;

use nix::errno::Errno;
use nix::sys::resource::{getrlimit, Resource};

/// What the supervisor's own work may hold open at once beside its control connections: the
/// daemons' output pipes (2 each), one health check's sockets (a control socket per daemon,
/// the database, br-int.mgmt), a spawn's pipes (a restart, a host tool), a restarted daemon's
/// database session, flows saved to a file, pidfiles and `/proc` files being read.
pub const RESERVE: u64 = 32;

/// The fewest control connections we keep room for, whatever the limit: a probe and a
/// `status` must be served even on a node whose limit leaves nothing spare.
pub const MIN_CONNECTIONS: usize = 4;

/// True when `e` says this process (EMFILE) or the system (ENFILE) has no fd to give, or no
/// kernel memory for one: retrying at once cannot succeed, and the peer is not to blame.
pub fn out_of_fds(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error().map(Errno::from_raw),
        Some(Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM)
    )
}

/// How many connections fit beside our own work: the soft limit, less the fds open now, less
/// [`RESERVE`]; at least [`MIN_CONNECTIONS`], at most `max`.
pub fn connection_cap(soft_limit: u64, in_use: u64, max: usize) -> usize {
    let spare = soft_limit.saturating_sub(in_use).saturating_sub(RESERVE);
    usize::try_from(spare)
        .unwrap_or(usize::MAX)
        .clamp(MIN_CONNECTIONS, max.max(MIN_CONNECTIONS))
}

/// The soft `RLIMIT_NOFILE` in force now (`None`: unreadable, or unlimited).
pub fn soft_limit() -> Option<u64> {
    getrlimit(Resource::RLIMIT_NOFILE)
        .ok()
        .map(|(soft, _)| soft)
        .filter(|s| *s != nix::sys::resource::RLIM_INFINITY)
}

/// Fds this process has open, counted in `proc_root/self/fd` (the directory's own fd, open
/// while it is read, among them: one more than a moment later).
pub fn in_use(proc_root: &Path) -> Option<u64> {
    Some(std::fs::read_dir(proc_root.join("self/fd")).ok()?.count() as u64)
}

/// The connection cap for this process now, from its limit and what it has open; `max` when
/// either cannot be read.
pub fn cap_now(max: usize) -> usize {
    match (soft_limit(), in_use(Path::new("/proc"))) {
        (Some(soft), Some(used)) => connection_cap(soft, used, max),
        _ => max,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_is_the_headroom_less_the_reserve_within_bounds() {
        // (soft limit, fds in use, max, cap)
        let table = [
            // `ulimit -n 64` with a dozen fds open: 20 connections, 32 fds for our work.
            (64, 12, 64, 20),
            (1024, 12, 64, 64),
            (1_048_576, 40, 64, 64),
            // Nothing spare: still room for a probe and a status.
            (40, 12, 64, MIN_CONNECTIONS),
            (10, 30, 64, MIN_CONNECTIONS),
            (u64::MAX, 0, 64, 64),
        ];
        for (soft, used, max, want) in table {
            assert_eq!(connection_cap(soft, used, max), want, "{soft} {used} {max}");
        }
    }

    #[test]
    fn running_out_of_fds_is_told_by_errno() {
        let table = [
            (Errno::EMFILE, true),
            (Errno::ENFILE, true),
            (Errno::ENOBUFS, true),
            (Errno::ENOMEM, true),
            (Errno::ECONNREFUSED, false),
            (Errno::ENOENT, false),
            (Errno::ECONNABORTED, false),
            (Errno::EINTR, false),
        ];
        for (errno, want) in table {
            let e = std::io::Error::from_raw_os_error(errno as i32);
            assert_eq!(out_of_fds(&e), want, "{errno}");
        }
    }

    #[test]
    fn fds_in_use_are_counted_in_proc() {
        let dir = tempfile::tempdir().unwrap();
        let fd = dir.path().join("self/fd");
        std::fs::create_dir_all(&fd).unwrap();
        for n in 0..5 {
            std::fs::write(fd.join(n.to_string()), "").unwrap();
        }
        assert_eq!(in_use(dir.path()), Some(5));
        assert_eq!(in_use(&dir.path().join("nothing")), None);
    }
}

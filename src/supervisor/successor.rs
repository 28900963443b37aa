//! What a handed-over instance sees of its successor each round, for
//! [`crate::takeover::handback::decide`]: is the process that asked still running, who holds the
//! instance lock, who answers at the control socket path, and do the node's daemons answer.
//!
//! Invariants: everything here only looks (a try-lock that succeeds is the one exception: the
//! lock comes back to the caller, who keeps it to take the node back or drops it at once);
//! each question is bounded (500 ms); the daemons are asked only when everything else already
//! says the successor runs the node.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Supervisor;
use crate::config::paths::Layout;
use crate::control::{self, peer::Successor};
use crate::daemon::Daemon;
use crate::host::instance::{self, InstanceLock, Probe};
use crate::ovs::unixctl;
use crate::process::procfs;
use crate::takeover::handback::{AtPath, Lock, Phase, Seen};

/// How long one question to the successor or a daemon may take.
const ASK: Duration = Duration::from_millis(500);

/// Who answers at `sock`, asked off the runtime thread (the ask blocks). Our listener owns the
/// path while the file there is the one it bound.
async fn at_path(sock: PathBuf, ours: Option<control::Bound>) -> AtPath {
    if ours.is_some_and(|b| b.is_at(&sock)) {
        return AtPath::Ours;
    }
    let asked = tokio::task::spawn_blocking(move || {
        // Connecting tells "nobody" (no file, refused) from an instance that is there.
        std::os::unix::net::UnixStream::connect(&sock).ok()?;
        Some(control::ask(&sock, "status", ASK))
    })
    .await;
    match asked {
        Ok(Some(Ok(status))) => AtPath::Other {
            pid: status["pid"].as_i64().and_then(|p| i32::try_from(p).ok()),
            started: status["started"] == true,
        },
        // There, but too busy to answer: not a started node we could trust.
        Ok(Some(Err(_))) => AtPath::Other {
            pid: None,
            started: false,
        },
        _ => AtPath::Nobody,
    }
}

/// Every one of `daemons` runs (its pidfile names a live process that is not our child) and
/// answers `version` on its control socket.
async fn daemons_answer(layout: &Layout, daemons: &[Daemon], proc_root: &Path) -> bool {
    let me = std::process::id() as i32;
    for d in daemons {
        let Ok(Some(pid)) = d.read_pid(layout) else {
            return false;
        };
        if !procfs::identity(proc_root, pid).is_some_and(|i| i.live && i.ppid != me) {
            return false;
        }
        if unixctl::call(&d.ctl(layout, pid), "version", &[], ASK)
            .await
            .is_err()
        {
            return false;
        }
    }
    !daemons.is_empty()
}

impl Supervisor {
    /// One round of looking at `successor`; the lock too when nobody held it.
    pub(super) async fn look(
        &self,
        successor: Successor,
        phase: Phase,
    ) -> (Seen, Option<InstanceLock>) {
        // Our own /proc, as the control socket admitted the successor by it: these are live
        // processes we talk to, not host files a test fakes under the host root.
        let proc_root = Path::new("/proc");
        let successor_alive = successor.alive(proc_root);
        let (lock, free) = match instance::probe(&self.cfg.layout.ovs_rundir) {
            Ok(Probe::Free(l)) => (Lock::Free, Some(l)),
            Ok(Probe::Missing) => (Lock::Missing, None),
            Ok(Probe::Held { pid }) => (Lock::Held { pid }, None),
            Err(e) => {
                // Unknown: as held, so we never start a node beside one that may run.
                tracing::debug!("after the handover: {e}");
                (Lock::Held { pid: None }, None)
            }
        };
        let mut seen = Seen {
            successor_alive,
            lock,
            at: AtPath::Nobody,
            daemons_answer: false,
        };
        if phase == Phase::Confirmed {
            return (seen, free);
        }
        seen.at = at_path(self.cfg.layout.control_sock(), self.control_bound()).await;
        let runs = seen.at
            == AtPath::Other {
                pid: Some(successor.pid),
                started: true,
            };
        if successor_alive
            && runs
            && lock
                == (Lock::Held {
                    pid: Some(successor.pid),
                })
        {
            let daemons: Vec<Daemon> = self.slots.keys().copied().collect();
            seen.daemons_answer = daemons_answer(&self.cfg.layout, &daemons, proc_root).await;
        }
        (seen, free)
    }
}

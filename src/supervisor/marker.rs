//! The readiness marker file (`OVS_OVN_SUPERVISOR_READY_FILE`): present exactly while the node
//! is ready, for dependents on the node that cannot run an exec probe (a CNI plugin waiting
//! for the switch before it wires pods).
//!
//! Invariants:
//! - One verdict: the marker follows [`verdict::readiness`] of the published snapshot, the
//!   very function `probe readiness` is answered with (so flow-restore-wait, a daemon
//!   restarting, a stale health check, a stop and a handover all count). It is judged again in
//!   the same step as every publication ([`Published::send_modify`]): the control socket is
//!   served on the same single-threaded runtime, so no probe can be answered from a snapshot
//!   the marker has not followed yet. A check going stale changes the verdict without a
//!   publication: that is judged every [`RECHECK`].
//! - Written whole through [`fsguard::write_atomic`]: in a directory that passes the trust
//!   checks (`host::prereqs` refuses any other at the start), created `O_EXCL|O_NOFOLLOW` under
//!   an unguessable temp name and renamed into place, so a symlink planted at the marker or at
//!   a temp name never makes us write through it.
//! - Removed when the node stops being ready and when the supervisor ends (SIGTERM, a crash
//!   loop, a failed start: [`Published::end`]); after a death without a word (SIGKILL), by the
//!   next instance as soon as it holds the instance lock ([`clear_leftover`], from `prepare`:
//!   no other instance's marker can be current then). Only our own file is removed otherwise:
//!   after a handover the successor's marker stays.
//! - A failure is a warning, never a reason to stop the node.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::host::fsguard::{self, Created};
use crate::status::{self, verdict, Snapshot};

/// Longest time between two judgements when nothing is published.
pub(super) const RECHECK: Duration = Duration::from_secs(1);

/// Removes whatever marker an earlier instance left at `path` (see the module invariants),
/// not following a link; called once we hold the instance lock.
pub(super) fn clear_leftover(path: Option<&Path>) {
    let Some(path) = path else {
        return;
    };
    if let Err(e) = fsguard::remove_file(path) {
        tracing::warn!(path = %path.display(), error = %e, "readiness marker left by an earlier instance");
    }
}

/// The marker at `path` and what we last made of it.
struct Marker {
    path: PathBuf,
    /// The file we put there, while it is there.
    ours: Option<Created>,
    /// Past the end of the run: never written again.
    ended: bool,
}

impl Marker {
    fn judge(&mut self, snap: &Snapshot) {
        let ready = !self.ended && verdict::readiness(snap, status::unix_ms()).ok;
        let r = match (ready, self.ours) {
            (true, Some(_)) | (false, None) => return,
            (true, None) => {
                let stamp = format!("{}\n", status::unix_ms());
                fsguard::write_atomic(&self.path, stamp.as_bytes(), 0o644, false)
                    .map(|made| self.ours = Some(made))
            }
            (false, Some(made)) => {
                self.ours = None;
                fsguard::remove_if_ours(&self.path, made).map(|_| ())
            }
        };
        if let Err(e) = r {
            tracing::warn!(path = %self.path.display(), error = %e, "readiness marker");
        }
    }
}

/// The published snapshot (what the control socket answers from) with the marker that
/// follows it; the supervisor's only way to publish.
pub(super) struct Published {
    tx: watch::Sender<Snapshot>,
    marker: Option<Arc<Mutex<Marker>>>,
    recheck: Option<JoinHandle<()>>,
}

impl Published {
    /// `first` published; the marker at `ready_file`, if any, follows it.
    pub(super) fn new(first: Snapshot, ready_file: Option<PathBuf>) -> Published {
        let marker = ready_file.map(|path| {
            Arc::new(Mutex::new(Marker {
                path,
                ours: None,
                ended: false,
            }))
        });
        Published {
            tx: watch::Sender::new(first),
            marker,
            recheck: None,
        }
    }

    fn judge(&self) {
        if let Some(m) = &self.marker {
            let snap = self.tx.borrow();
            m.lock().unwrap_or_else(|p| p.into_inner()).judge(&snap);
        }
    }

    /// Changes the snapshot and judges the marker again, in one step.
    pub(super) fn send_modify(&self, f: impl FnOnce(&mut Snapshot)) {
        self.tx.send_modify(f);
        self.judge();
    }

    pub(super) fn borrow(&self) -> watch::Ref<'_, Snapshot> {
        self.tx.borrow()
    }

    pub(super) fn subscribe(&self) -> watch::Receiver<Snapshot> {
        self.tx.subscribe()
    }

    /// A sender for a task of its own that publishes facts readiness never reads (the tunnel
    /// port rule's state): the marker has nothing to follow there, so it is not judged again.
    pub(super) fn unjudged(&self) -> watch::Sender<Snapshot> {
        self.tx.clone()
    }

    /// Judges the marker every [`RECHECK`] too (a health check going stale); needs the runtime.
    pub(super) fn start_rechecks(&mut self) {
        let Some(m) = self.marker.clone() else {
            return;
        };
        let rx = self.tx.subscribe();
        self.recheck = Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(RECHECK).await;
                let snap = rx.borrow().clone();
                m.lock().unwrap_or_else(|p| p.into_inner()).judge(&snap);
            }
        }));
    }

    /// The run is over: the marker goes, for good.
    pub(super) fn end(&mut self) {
        if let Some(task) = self.recheck.take() {
            task.abort();
        }
        if let Some(m) = &self.marker {
            let mut m = m.lock().unwrap_or_else(|p| p.into_inner());
            m.ended = true;
            m.judge(&self.tx.borrow());
        }
    }
}

impl Drop for Published {
    fn drop(&mut self) {
        self.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{DaemonInfo, DaemonState, Health};

    fn ready_snapshot() -> Snapshot {
        let now = status::unix_ms();
        Snapshot {
            started: true,
            stage: "ready".into(),
            health_max_age_ms: 60_000,
            daemons: vec![DaemonInfo {
                name: "ovs-vswitchd".into(),
                state: DaemonState::Running,
                ..Default::default()
            }],
            health: Some(Health {
                checked_at_ms: now,
                unresponsive: vec![],
                not_asked: vec![],
                main_cpu_ms: Default::default(),
                southbound_connected: Some(true),
                liveness: verdict::ok("alive"),
                readiness: verdict::ok("ready"),
            }),
            ..Snapshot::default()
        }
    }

    /// Each publication leaves the marker as the probe's verdict on it, at once.
    #[test]
    fn the_marker_follows_the_probes_verdict_in_the_same_step() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("ready");
        std::fs::write(&path, "left by a dead instance\n").unwrap();
        clear_leftover(Some(&path));
        assert!(!path.exists(), "a leftover marker survived our start");
        let mut p = Published::new(Snapshot::default(), Some(path.clone()));
        p.send_modify(|s| *s = ready_snapshot());
        assert!(path.exists());
        // The health check alone says ready; flow-restore-wait makes the probe say no.
        type Change = fn(&mut Snapshot);
        let rows: [(Change, bool); 6] = [
            (|s| s.flow_restore_wait = true, false),
            (|s| s.flow_restore_wait = false, true),
            (|s| s.daemons[0].state = DaemonState::Restarting, false),
            (|s| s.daemons[0].state = DaemonState::Running, true),
            (|s| s.stopping = true, false),
            (|s| s.stopping = false, true),
        ];
        for (change, present) in rows {
            p.send_modify(change);
            let verdict = verdict::readiness(&p.borrow(), status::unix_ms());
            assert_eq!(verdict.ok, present, "{}", verdict.reason);
            assert_eq!(path.exists(), present, "{}", verdict.reason);
        }
        p.end();
        assert!(!path.exists(), "marker kept after the end");
        p.send_modify(|s| *s = ready_snapshot());
        assert!(!path.exists(), "marker written after the end");
    }

    #[test]
    fn another_instances_marker_is_not_removed() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("ready");
        let mut p = Published::new(ready_snapshot(), Some(path.clone()));
        p.send_modify(|_| {});
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, "the successor's\n").unwrap();
        p.send_modify(|s| s.stopping = true);
        p.end();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "the successor's\n");
    }
}

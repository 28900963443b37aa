//! The readiness marker file (`OVS_OVN_SUPERVISOR_READY_FILE`): present exactly while the node
//! is ready, for dependents on the node that cannot run an exec probe (a CNI plugin waiting
//! for the switch before it wires pods).
//!
//! Invariants:
//! - One verdict: the marker follows [`verdict::readiness`] of the published snapshot, the
//!   very function `probe readiness` is answered with (so flow-restore-wait, a daemon
//!   restarting, a stale health check, a stop and a handover all count), re-judged on every
//!   change of the snapshot and every [`RECHECK`] (a check going stale changes the verdict
//!   without changing the snapshot).
//! - Written whole through [`fsguard::write_atomic`]: in a directory that passes the trust
//!   checks (`host::prereqs` refuses any other at the start), created `O_EXCL|O_NOFOLLOW` under
//!   an unguessable temp name and renamed into place, so a symlink planted at the marker or at
//!   a temp name never makes us write through it.
//! - Removed when the node stops being ready and when the supervisor ends (SIGTERM, a crash
//!   loop, a failed start); after a death without a word (SIGKILL), by the next instance as
//!   soon as it holds the instance lock ([`clear_leftover`], from `prepare`: no other
//!   instance's marker can be current then). Only our own file is removed otherwise: after a
//!   handover the successor's marker stays.
//! - A failure is a warning, never a reason to stop the node.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::host::fsguard::{self, Created};
use crate::status::{self, verdict, Snapshot};

/// Longest time between two judgements when the snapshot does not change.
pub(super) const RECHECK: Duration = Duration::from_secs(1);

/// The marker at `path` and what we last made of it.
struct Marker {
    path: PathBuf,
    /// The file we put there, while it is there.
    ours: Option<Created>,
}

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

impl Marker {
    fn show(&mut self, ready: bool) {
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

/// The task that keeps the marker; [`Following::end`] removes it.
pub(super) struct Following {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Keeps the marker at `path` (none: no marker configured) in step with `snap`'s readiness.
pub(super) fn follow(path: Option<PathBuf>, snap: watch::Receiver<Snapshot>) -> Following {
    let Some(path) = path else {
        return Following {
            stop: None,
            task: None,
        };
    };
    let (stop, stopped) = oneshot::channel();
    let marker = Marker { path, ours: None };
    Following {
        stop: Some(stop),
        task: Some(tokio::spawn(keep(marker, snap, stopped))),
    }
}

async fn keep(
    mut m: Marker,
    mut snap: watch::Receiver<Snapshot>,
    mut stopped: oneshot::Receiver<()>,
) {
    loop {
        let ready = verdict::readiness(&snap.borrow_and_update(), status::unix_ms()).ok;
        m.show(ready);
        tokio::select! {
            _ = &mut stopped => break,
            changed = snap.changed() => if changed.is_err() { break },
            _ = tokio::time::sleep(RECHECK) => {}
        }
    }
    m.show(false);
}

impl Following {
    /// Stops following and removes our marker.
    pub(super) async fn end(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
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
                main_cpu_ms: Default::default(),
                liveness: verdict::ok("alive"),
                readiness: verdict::ok("ready"),
            }),
            ..Snapshot::default()
        }
    }

    /// Waits until the marker's presence is `want`, as the task sees the change.
    async fn until(path: &std::path::Path, want: bool) {
        let t0 = std::time::Instant::now();
        while path.exists() != want {
            assert!(t0.elapsed() < Duration::from_secs(5), "marker never {want}");
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_marker_follows_the_probes_verdict_including_flow_restore_wait() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("ready");
        std::fs::write(&path, "left by a dead instance\n").unwrap();
        clear_leftover(Some(&path));
        assert!(!path.exists(), "a leftover marker survived our start");
        let (tx, rx) = watch::channel(Snapshot::default());
        let f = follow(Some(path.clone()), rx);
        tx.send_replace(ready_snapshot());
        until(&path, true).await;
        // The health check alone says ready; flow-restore-wait makes the probe say no.
        tx.send_modify(|s| s.flow_restore_wait = true);
        until(&path, false).await;
        tx.send_modify(|s| s.flow_restore_wait = false);
        until(&path, true).await;
        tx.send_modify(|s| s.stopping = true);
        until(&path, false).await;
        tx.send_modify(|s| s.stopping = false);
        until(&path, true).await;
        f.end().await;
        assert!(!path.exists(), "marker kept after the end");
    }
}

//! The end of a run and the handed-over state of [`super::Supervisor`]:
//! stop every daemon and say so in `status`; after a handover, watch the successor and take
//! the node back when nobody completes it (the decision is [`crate::takeover::handback::decide`]).
//!
//! Invariants: once stopped, no daemon is listed with a pid or as running; while handed over
//! and unconfirmed, liveness fails (no daemon runs on the node) — once confirmed it passes
//! again, so Kubernetes does not restart the old pod into taking the node back from the new
//! one; a `handover` request in this state is answered at once with "nothing to hand over"
//! and its sender becomes the successor we watch.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::task::JoinHandle;

use super::signals::SigEvent;
use super::Supervisor;
use crate::control;
use crate::daemon::state::Event;
use crate::status::{self, HandedOver};
use crate::takeover::handback::{self, Action, AtPath};

/// How often the successor is looked for until it confirms.
const WATCH_EVERY: Duration = Duration::from_millis(200);

/// Who answers at `sock`, asked off the runtime thread (the ask blocks up to 500 ms). Our
/// listener owns the path while the file there is the one it bound.
async fn at_path(sock: PathBuf, ours: control::Bound) -> AtPath {
    if ours.is_at(&sock) {
        return AtPath::Ours;
    }
    let asked = tokio::task::spawn_blocking(move || {
        // Connecting tells "nobody" (no file, refused) from an instance that is there.
        std::os::unix::net::UnixStream::connect(&sock).ok()?;
        Some(control::ask(&sock, "status", Duration::from_millis(500)))
    })
    .await;
    match asked {
        Ok(Some(Ok(status))) => AtPath::Other {
            started: status["started"] == true,
        },
        // There, but too busy to answer: not a started node we could trust.
        Ok(Some(Err(_))) => AtPath::Other { started: false },
        _ => AtPath::Nobody,
    }
}

/// The successor we watch (its pid if it was visible when it asked) and until when.
fn watch(successor: Option<i32>, confirm: Duration) -> (Option<i32>, Instant) {
    (successor, Instant::now() + confirm)
}

impl Supervisor {
    /// Stops every daemon in order and marks each stopped; true when all stopped cleanly.
    pub(super) async fn stop_everything(&mut self) -> bool {
        self.snap.send_modify(|s| {
            s.stage = "stopping".into();
            s.stopping = true;
        });
        let processes = self.processes().into_iter().collect();
        let budget = self.cfg.stop_budget;
        let clean =
            super::stop::stop_all(&self.cfg, self.reaper, &processes, &mut self.exits, budget)
                .await;
        self.mark_all(false);
        clean
    }

    /// Every daemon in the published status as stopped (`handed_over`: for a newer
    /// instance), with no pid: none of them runs.
    fn mark_all(&mut self, handed_over: bool) {
        let daemons: Vec<_> = self.slots.keys().copied().collect();
        for d in daemons {
            self.event(d, Event::Stopped { handed_over });
        }
    }

    fn publish_handover(&self, successor: Option<i32>, deadline: Instant, confirmed: bool) {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .as_millis() as u64;
        self.snap.send_modify(|s| {
            s.handover = Some(HandedOver {
                successor,
                confirmed,
                take_back_at_ms: status::unix_ms() + left,
            })
        });
    }

    /// Idles after a handover until a stop signal (`Some`), or takes the node back (`None`,
    /// ready for another start). `server` is replaced when the socket path must be bound again.
    pub(super) async fn after_handover(
        &mut self,
        successor: Option<i32>,
        server: &mut JoinHandle<()>,
        ours: &mut control::Bound,
    ) -> Option<&'static str> {
        let sock = self.cfg.layout.control_sock();
        let (mut successor, mut deadline) = watch(successor, self.cfg.handover_confirm);
        let mut confirmed = false;
        self.set_stage("handed-over");
        self.mark_all(true);
        loop {
            self.publish_handover(successor, deadline, confirmed);
            if !confirmed {
                let at = at_path(sock.clone(), *ours).await;
                let alive = successor
                    .map(|p| crate::process::procfs::alive(Path::new("/proc"), p) == Some(true));
                match handback::decide(at, alive, deadline, Instant::now()) {
                    Action::Wait => {}
                    Action::Confirmed => {
                        tracing::info!(
                            ?successor,
                            "the successor runs the node; idle until terminated"
                        );
                        confirmed = true;
                        continue;
                    }
                    Action::TakeBack { reason, rebind } => {
                        tracing::warn!(?successor, "{reason}: taking the node back");
                        if rebind {
                            self.rebind(server, ours);
                        }
                        self.reset_for_takeback();
                        return None;
                    }
                }
            }
            tokio::select! {
                ev = self.signals.next() => if let SigEvent::Stop(sig) = ev {
                    return Some(sig);
                },
                Some(req) = self.handover_rx.recv() => {
                    let _ = req.reply.send(Ok(json!({
                        "handed_over": false,
                        "reason": "this instance handed the node over already and runs no daemon",
                    })));
                    (successor, deadline) = watch(req.successor, self.cfg.handover_confirm);
                    tracing::info!(?successor, "asked again: nothing to hand over; watching the new successor");
                }
                _ = tokio::time::sleep(WATCH_EVERY), if !confirmed => {}
            }
        }
    }

    /// Binds the control socket path again: the successor that had it is gone.
    fn rebind(&self, server: &mut JoinHandle<()>, ours: &mut control::Bound) {
        let sock = self.cfg.layout.control_sock();
        match control::serve(&sock, self.snap.subscribe(), self.handover_tx.clone()) {
            Ok((s, bound)) => {
                server.abort();
                *server = s;
                *ours = bound;
            }
            Err(e) => tracing::error!("{e}; probes cannot reach this instance"),
        }
    }

    /// Back to the state before the first start: a normal start from our own configuration,
    /// restoring no flows; daemons a dead successor left running are stopped first.
    fn reset_for_takeback(&mut self) {
        self.slots.clear();
        self.owned = None;
        self.restore = None;
        self.legacy = crate::takeover::legacy::leftover(&self.cfg);
        if self.legacy.is_none() {
            if let Err(e) = crate::host::prep::remove_stale(&self.cfg) {
                tracing::warn!("after the successor: {e}");
            }
        }
        self.started = Instant::now();
        self.snap.send_modify(|s| {
            s.stage = "starting".into();
            s.started = false;
            s.stopping = false;
            s.started_at_ms = status::unix_ms();
            s.timeline.clear();
            s.health = None;
            s.handover = None;
            s.daemons.clear();
        });
    }

    /// Before taking the node back, the instance lock again (a dead successor's lock went with
    /// it). Held by someone else, a successor is alive after all: idle until terminated rather
    /// than run a second node on the run dir. `Err` carries the stop signal then.
    pub(super) async fn retake_lock(&mut self) -> Result<(), &'static str> {
        match crate::host::instance::try_acquire(&self.cfg.layout.ovs_rundir) {
            Ok(l) => {
                self.lock = Some(l);
                Ok(())
            }
            Err(e) => {
                tracing::error!("cannot take the node back: {e}; idle until terminated");
                self.set_stage("handed-over");
                loop {
                    if let SigEvent::Stop(sig) = self.signals.next().await {
                        return Err(sig);
                    }
                }
            }
        }
    }
}

//! The end of a run and the handed-over state of [`super::Supervisor`]:
//! stop every daemon and say so in `status`; after a handover, watch the successor — before
//! and after it confirms — and take the node back when nobody runs it (the decision is
//! [`crate::takeover::handback::decide`], the facts come from `successor.rs`).
//!
//! Invariants: once stopped, no daemon is listed with a pid or as running; while handed over
//! and unconfirmed, liveness fails (no daemon runs on the node) — once confirmed it passes
//! again, so Kubernetes does not restart the old pod into taking the node back from the new
//! one; a `handover` request in this state is refused: the successor we watch and its
//! deadline never change (before, each request re-armed the deadline, so a request every few
//! seconds kept the node down for good). The node is taken back holding the instance lock,
//! never beside a holder of it.

use std::time::{Duration, Instant};

use super::signals::SigEvent;
use super::Supervisor;
use crate::control::peer::Successor;
use crate::daemon::state::Event;
use crate::status::{self, HandedOver};
use crate::takeover::handback::{self, Action, Phase};

/// How often the successor is looked at, until we are terminated.
const WATCH_EVERY: Duration = Duration::from_millis(200);

impl Supervisor {
    /// Stops every daemon in order and marks each stopped; true when all stopped cleanly.
    pub(super) async fn stop_everything(&mut self) -> bool {
        self.snap.send_modify(|s| {
            s.stage = "stopping".into();
            s.stopping = true;
        });
        let processes = self.processes().into_iter().collect();
        let budget = self.cfg.stop_budget;
        let clean = super::stop::stop_all(
            &self.cfg,
            self.reaper,
            &processes,
            &mut self.exits,
            budget,
            super::stop::StopFor::Restart,
        )
        .await;
        self.mark_all(false);
        clean
    }

    /// Every daemon in the published status as stopped (`handed_over`: for a newer
    /// instance), with no pid: none of them runs.
    pub(super) fn mark_all(&mut self, handed_over: bool) {
        let daemons: Vec<_> = self.slots.keys().copied().collect();
        for d in daemons {
            self.event(d, Event::Stopped { handed_over });
        }
    }

    fn publish_handover(&self, successor: Successor, phase: Phase) {
        let (confirmed, left) = match phase {
            Phase::Waiting { deadline } => {
                (false, deadline.saturating_duration_since(Instant::now()))
            }
            Phase::Confirmed => (true, Duration::ZERO),
        };
        self.snap.send_modify(|s| {
            s.handover = Some(HandedOver {
                successor: Some(successor.pid),
                confirmed,
                take_back_at_ms: status::unix_ms() + left.as_millis() as u64,
            })
        });
    }

    /// Idles after a handover until a stop signal (`Some`), or takes the node back (`None`,
    /// holding the instance lock again, ready for another start).
    pub(super) async fn after_handover(&mut self, successor: Successor) -> Option<&'static str> {
        let deadline = Instant::now() + self.cfg.handover_confirm;
        let mut phase = Phase::Waiting { deadline };
        self.set_stage("handed-over");
        self.mark_all(true);
        loop {
            self.publish_handover(successor, phase);
            let (seen, free) = self.look(successor, phase).await;
            match handback::decide(phase, &seen, successor.pid, Instant::now()) {
                Action::Wait => drop(free),
                Action::Confirmed => {
                    tracing::info!(
                        successor = successor.pid,
                        "the successor runs the node; idle until terminated, watching it"
                    );
                    phase = Phase::Confirmed;
                    continue;
                }
                Action::TakeBack(reason) => {
                    let lock = match free {
                        Some(mut l) => l.mark().map(|()| l),
                        None => crate::host::instance::try_acquire(&self.cfg.layout.ovs_rundir),
                    };
                    match lock {
                        Ok(l) => {
                            tracing::warn!(
                                successor = successor.pid,
                                "{reason}: taking the node back"
                            );
                            self.lock = Some(l);
                            self.take_back();
                            return None;
                        }
                        // Taken meanwhile: look again.
                        Err(e) => tracing::warn!("{reason}, but {e}; watching"),
                    }
                }
            }
            tokio::select! {
                ev = self.signals.next() => if let SigEvent::Stop(sig) = ev {
                    return Some(sig);
                },
                Some(req) = self.handover_rx.recv() => {
                    tracing::warn!(asker = req.successor.pid, successor = successor.pid, "handover refused: handed over already");
                    let _ = req.reply.send(Err(format!(
                        "handover refused: this instance handed the node over to pid {} already and runs no daemon",
                        successor.pid
                    )));
                }
                Some(req) = self.uninstall_rx.recv() => {
                    let _ = req.reply.send(Err("this instance handed the node over and runs no daemon: the instance at the control socket runs it".into()));
                }
                _ = tokio::time::sleep(WATCH_EVERY) => {}
            }
        }
    }

    /// Back to a node of our own: the control socket path bound again unless it is still
    /// ours, then the state before the first start.
    fn take_back(&mut self) {
        let ours = self
            .control_bound()
            .is_some_and(|b| b.is_at(&self.cfg.layout.control_sock()));
        if !ours {
            if let Err(e) = self.bind_control() {
                tracing::error!("{e}; probes cannot reach this instance");
            }
        }
        self.reset_for_takeback();
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
}

//! The background health check's two ends: starting one as its own task (a hung daemon never
//! delays signals or exits in the loop), and carrying out its results — publish both verdicts
//! (the readiness marker follows what is published), feed each serving daemon's answer
//! (answered, silent, or not asked: we were out of fds) and main-thread CPU time to its slot
//! (which decides hung, busy or fine), and let a busy daemon's silence not fail liveness.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::Supervisor;
use crate::daemon::policy::Answer;
use crate::daemon::state::Event;
use crate::daemon::Daemon;
use crate::status::{self, check, DaemonState};

impl Supervisor {
    /// Starts one health check as its own task; its result comes back on `done`.
    pub(super) fn spawn_check(&self, done: mpsc::Sender<status::Health>) {
        let (layout, snap, t) = (
            self.cfg.layout.clone(),
            self.snapshot_for_check(),
            self.health_timeout(),
        );
        tokio::spawn(async move {
            let _ = done
                .send(check::check(&layout, &snap, t, status::unix_ms).await)
                .await;
        });
    }

    /// A health check's results: each serving daemon judged (hung ones killed), liveness
    /// excused for busy ones, then published, logged on change and marked.
    pub(super) fn on_health(&mut self, mut h: status::Health) {
        let running: Vec<Daemon> = (self.slots.iter())
            .filter(|(_, s)| s.running_pid().is_some())
            .map(|(d, _)| *d)
            .collect();
        for d in running {
            let named = |list: &[String]| list.iter().any(|n| n == d.name());
            let answer = if named(&h.not_asked) {
                Answer::NotAsked
            } else if named(&h.unresponsive) {
                Answer::Silent
            } else {
                Answer::Answered
            };
            let cpu = (h.main_cpu_ms.get(d.name())).map(|ms| Duration::from_millis(*ms));
            self.carry_out(d, Event::Health { answer, cpu });
        }
        let busy: Vec<(&str, Option<Duration>)> = (self.slots.iter())
            .filter(|(_, s)| s.state == DaemonState::Busy)
            .map(|(d, s)| (d.name(), s.silent_for(Instant::now())))
            .collect();
        h.liveness = status::verdict::excusing_busy(h.liveness, &h.unresponsive, &busy);
        self.on_southbound(h.southbound_connected);
        log_changes(self.snap.borrow().health.as_ref(), &h);
        let dropped = crate::logging::dropped();
        self.snap.send_modify(|s| {
            s.health = Some(h);
            s.log_lines_dropped = dropped;
        });
    }
}

/// Logs each verdict that changed since the previous check (`was`).
fn log_changes(was: Option<&status::Health>, h: &status::Health) {
    let pairs = [
        ("liveness", &h.liveness, was.map(|w| w.liveness.ok)),
        ("readiness", &h.readiness, was.map(|w| w.readiness.ok)),
    ];
    for (kind, v, old) in pairs {
        match (old == Some(v.ok), v.ok) {
            (true, _) => {}
            (false, true) => tracing::info!(check = kind, "{}", v.reason),
            (false, false) => tracing::warn!(check = kind, "{}", v.reason),
        }
    }
}

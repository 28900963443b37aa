//! One record per daemon: its typed [`DaemonState`], pid, restart track, pending restart,
//! down-since and planned-restart flag — and the pure transition
//! `(slot, event, now, jitter) → action` the supervisor carries out.
//!
//! Invariants:
//! - An event about a process that is no longer the slot's current one (an exit or readiness
//!   report from an older pid) changes nothing ([`Action::Ignore`]).
//! - Every decision to restart or give up comes from [`Track`] (the restart policy); an exit we
//!   asked for ([`Event::PlannedExit`] first, a TLS reload) is restarted at once and is not
//!   counted as a crash.
//! - A slot has a pid exactly while its state says a process exists (starting, running, busy,
//!   restarting after the spawn, hung).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::policy::{Answer, Decision, Judgement, Policy, Track};
use crate::process::ExitStatus;

/// What a daemon is doing, as the supervisor knows it. Serialized in `status` as its kebab-case
/// name (`running`, `handed-over`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DaemonState {
    /// Spawned during the start; its stage has not seen it answer yet.
    #[default]
    Starting,
    /// Answering.
    Running,
    /// Running, but not answering its health checks while its main thread works (ovn-controller
    /// computing a large flow table; [`Slot::silent_for`] says since when): health checks go
    /// on, nothing kills it before the busy limit, and liveness holds.
    Busy,
    /// Exited and waiting out its backoff, or spawned again and not answering yet.
    Restarting,
    /// Failed its health checks for too long (or a restart never answered): killed, its exit
    /// on the way.
    Hung,
    /// Exited for good: a crash loop, or died during the start.
    Exited,
    /// Stopped by us, in order.
    Stopped,
    /// Stopped because a newer instance took the node over.
    HandedOver,
}

impl DaemonState {
    /// Up, or on its way back by our own doing: liveness does not fail on it.
    pub fn is_up_or_coming(self) -> bool {
        matches!(
            self,
            DaemonState::Starting
                | DaemonState::Running
                | DaemonState::Busy
                | DaemonState::Restarting
                | DaemonState::Hung
        )
    }

    /// A process that answered once and is being health-checked.
    pub fn is_serving(self) -> bool {
        matches!(self, DaemonState::Running | DaemonState::Busy)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DaemonState::Starting => "starting",
            DaemonState::Running => "running",
            DaemonState::Busy => "busy",
            DaemonState::Restarting => "restarting",
            DaemonState::Hung => "hung",
            DaemonState::Exited => "exited",
            DaemonState::Stopped => "stopped",
            DaemonState::HandedOver => "handed-over",
        }
    }
}

impl std::fmt::Display for DaemonState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a daemon was restarted: what the `restarts_total` metric is labelled with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestartCause {
    /// It was killed by a signal we did not send (a crash: SIGSEGV, SIGABRT, an OOM kill).
    Signal,
    /// It exited on its own with a status.
    ExitCode,
    /// We killed it: silent with its main thread idle, or never answering after a restart.
    Hung,
    /// We killed it: silent past the busy limit although its main thread kept computing.
    BusyLimit,
    /// We asked it to exit so it restarts (a TLS reload).
    Planned,
}

impl RestartCause {
    pub const ALL: [RestartCause; 5] = [
        RestartCause::Signal,
        RestartCause::ExitCode,
        RestartCause::Hung,
        RestartCause::BusyLimit,
        RestartCause::Planned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RestartCause::Signal => "signal",
            RestartCause::ExitCode => "exit_code",
            RestartCause::Hung => "hung",
            RestartCause::BusyLimit => "busy_limit",
            RestartCause::Planned => "planned",
        }
    }
}

/// Something that happened to one daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// We spawned it as `pid`: during the start, or as a restart.
    Spawned { pid: i32, restart: bool },
    /// Process `pid` answers (its start stage or the restart's readiness wait succeeded).
    Answering { pid: i32 },
    /// Process `pid`, restarted, did not answer within the deadline.
    NeverAnswered { pid: i32 },
    /// One health check's answer for the current process, with its main thread's CPU time
    /// then (`None`: unreadable).
    Health {
        answer: Answer,
        cpu: Option<Duration>,
    },
    /// We asked it to exit so it restarts (a TLS reload).
    PlannedExit,
    /// Process `pid` exited.
    Exited { pid: i32, status: ExitStatus },
    /// Spawning its restart failed: counts as another exit.
    SpawnFailed,
    /// Process `pid` exited during the start: the start fails, nothing restarts it.
    DiedStarting { pid: i32, status: ExitStatus },
    /// Stopped in order (`handed_over`: for a newer instance).
    Stopped { handed_over: bool },
}

/// What the supervisor must do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing to do (also: an event about an older process).
    Ignore,
    /// Nothing to do beyond recording it.
    Recorded,
    /// Spawn it again at this instant.
    RestartAt(Instant),
    /// SIGKILL this pid's process group: it is hung.
    Kill(i32),
    /// It went silent while its main thread works: left alone until the busy limit.
    Busy,
    /// It answers again after being busy this long.
    NoLongerBusy { silent_for: Option<Duration> },
    /// It answers again after a restart; it was down this long.
    Recovered { down_for: Option<Duration> },
    /// Too many restarts within the window: stop the node.
    GiveUp { restarts: u32, window: Duration },
}

/// Everything the supervisor remembers about one daemon.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slot {
    pub state: DaemonState,
    /// The current process, while there is one.
    pub pid: Option<i32>,
    pub track: Track,
    /// When the pending restart is due.
    pub restart_at: Option<Instant>,
    /// Since the exit that the pending or running restart recovers from.
    pub down_since: Option<Instant>,
    /// The next exit was asked for (not a crash).
    pub planned: bool,
    pub last_exit: Option<ExitStatus>,
    /// Unix ms when the current process was spawned, and when the last restart was.
    pub spawned_at_ms: Option<u64>,
    pub restarted_at_ms: Option<u64>,
    /// Restarts so far, by why.
    pub causes: std::collections::BTreeMap<RestartCause, u32>,
    /// We killed the current process, and why: its coming exit is that, not a crash.
    pub killed_as: Option<RestartCause>,
}

impl Slot {
    /// The pid of a process that exists and answered (for checks and log reopening).
    pub fn running_pid(&self) -> Option<i32> {
        self.pid.filter(|_| self.state.is_serving())
    }

    /// How long the current process has failed every health check, if it does.
    pub fn silent_for(&self, now: Instant) -> Option<Duration> {
        (self.track.unresponsive_since).map(|t| now.saturating_duration_since(t))
    }

    /// Applies `event` at `now` (`now_ms` for what is published; `unit` in [0, 1) jitters a
    /// backoff) and says what to do.
    pub fn on(
        &mut self,
        policy: &Policy,
        event: Event,
        now: Instant,
        now_ms: u64,
        unit: f64,
    ) -> Action {
        let current = |pid: i32| self.pid == Some(pid);
        match event {
            Event::Spawned { pid, restart } => {
                self.pid = Some(pid);
                self.killed_as = None;
                self.spawned_at_ms = Some(now_ms);
                self.restart_at = None;
                if restart {
                    self.restarted_at_ms = Some(now_ms);
                }
                self.state = if restart {
                    DaemonState::Restarting
                } else {
                    DaemonState::Starting
                };
                Action::Recorded
            }
            Event::Answering { pid } if current(pid) => {
                let restarted = self.state == DaemonState::Restarting;
                self.state = DaemonState::Running;
                self.track.on_ready(now);
                let down_for = self
                    .down_since
                    .take()
                    .map(|t| now.saturating_duration_since(t));
                if restarted {
                    Action::Recovered { down_for }
                } else {
                    Action::Recorded
                }
            }
            Event::NeverAnswered { pid } if current(pid) => {
                self.state = DaemonState::Hung;
                self.killed_as = Some(RestartCause::Hung);
                Action::Kill(pid)
            }
            Event::Health { answer, cpu } => match self.running_pid() {
                Some(pid) => self.judged(pid, policy, answer, cpu, now),
                None => Action::Ignore,
            },
            Event::PlannedExit => {
                self.planned = true;
                Action::Recorded
            }
            Event::Exited { pid, status } if current(pid) => self.exited(policy, status, now, unit),
            Event::SpawnFailed => self.exited(policy, ExitStatus::Exited(-1), now, unit),
            Event::DiedStarting { pid, status } if current(pid) => {
                self.pid = None;
                self.last_exit = Some(status);
                self.state = DaemonState::Exited;
                Action::Recorded
            }
            Event::Stopped { handed_over } => {
                self.pid = None;
                self.restart_at = None;
                self.state = if handed_over {
                    DaemonState::HandedOver
                } else {
                    DaemonState::Stopped
                };
                Action::Recorded
            }
            Event::Answering { .. }
            | Event::NeverAnswered { .. }
            | Event::Exited { .. }
            | Event::DiedStarting { .. } => Action::Ignore,
        }
    }

    fn judged(
        &mut self,
        pid: i32,
        policy: &Policy,
        answer: Answer,
        cpu: Option<Duration>,
        now: Instant,
    ) -> Action {
        let silent_since = self.track.unresponsive_since;
        let was_busy = self.state == DaemonState::Busy;
        match self.track.on_health(policy, answer, cpu, now) {
            Judgement::Hung => {
                self.state = DaemonState::Hung;
                // Busy until now: silent past the busy limit (a stalled one is Running again).
                self.killed_as = Some(if was_busy {
                    RestartCause::BusyLimit
                } else {
                    RestartCause::Hung
                });
                Action::Kill(pid)
            }
            Judgement::Busy { .. } if was_busy => Action::Ignore,
            Judgement::Busy { .. } => {
                self.state = DaemonState::Busy;
                Action::Busy
            }
            // Silent and idle after being busy: still running as far as anyone can tell, and
            // hung_after now counts.
            Judgement::Stalled => {
                self.state = DaemonState::Running;
                Action::Ignore
            }
            Judgement::Answers if was_busy => {
                self.state = DaemonState::Running;
                Action::NoLongerBusy {
                    silent_for: silent_since.map(|t| now.saturating_duration_since(t)),
                }
            }
            Judgement::Answers => Action::Ignore,
            // We could not ask: nothing changes, whatever its state.
            Judgement::NotAsked => Action::Ignore,
        }
    }

    fn exited(&mut self, policy: &Policy, status: ExitStatus, now: Instant, unit: f64) -> Action {
        self.pid = None;
        self.last_exit = Some(status);
        self.down_since.get_or_insert(now);
        let killed_as = self.killed_as.take();
        if std::mem::take(&mut self.planned) {
            self.state = DaemonState::Restarting;
            self.restart_at = Some(now);
            *self.causes.entry(RestartCause::Planned).or_default() += 1;
            return Action::RestartAt(now);
        }
        match self.track.on_exit(policy, status, now, unit) {
            Decision::RestartIn(delay) => {
                self.state = DaemonState::Restarting;
                self.restart_at = Some(now + delay);
                let cause = killed_as.unwrap_or(match status {
                    ExitStatus::Signaled(_) => RestartCause::Signal,
                    ExitStatus::Exited(_) => RestartCause::ExitCode,
                });
                *self.causes.entry(cause).or_default() += 1;
                Action::RestartAt(now + delay)
            }
            Decision::GiveUp { restarts, window } => {
                self.state = DaemonState::Exited;
                self.restart_at = None;
                Action::GiveUp { restarts, window }
            }
        }
    }
}

#[cfg(test)]
mod tests;

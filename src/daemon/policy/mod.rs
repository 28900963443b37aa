//! Restart decisions for a crashed or hung daemon, as a pure function of
//! (track, event, now, jitter): the executor in `supervisor` only carries them out.
//!
//! Invariants: the first restart waits at most `backoff.base` (full jitter from zero), so a
//! node recovers in well under a second; each further restart's ceiling doubles up to
//! `backoff.cap` while the restarted process never gets to answer; the first time it answers
//! again ([`Track::on_ready`]) the next restart starts from attempt 0 — so a node whose daemons
//! are killed from outside every few seconds recovers each time in `backoff.base` plus the
//! daemon's own start, instead of sitting out a 10 s ceiling; more than
//! `max_restarts` restarts of one daemon within `window` is a crash loop — give up, so
//! Kubernetes sees the pod fail instead of a node that flaps forever.
//! - A daemon that stops answering is killed as hung only after it failed every health check
//!   for `hung_after` while its main thread sat idle (blocked, deadlocked). One whose main thread
//!   keeps using the CPU is busy, not hung — ovn-controller computing a 100,000-flow table does
//!   not answer its control socket for seconds, and killing it then only restarts the
//!   computation (a crash loop that stopped a node at scale, issue 13) — and is killed only if
//!   it stays silent for `busy_limit` (a computation that never ends is a hang too).
//! - A check that could not ask at all — the supervisor itself out of file descriptors
//!   ([`Answer::NotAsked`]) — says nothing about the daemon: it never counts toward hung or
//!   busy, and the silence seen before it is forgotten, so a daemon is killed only after real
//!   questions went unanswered for the whole `hung_after` (before, EMFILE in the supervisor read
//!   as "does not answer" and every healthy daemon was SIGKILLed).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::process::busy::Working;
use crate::process::ExitStatus;

pub use crate::config::restart::Policy;

/// What the supervisor remembers about one daemon between events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Track {
    /// Backoff attempt of the next restart.
    pub attempt: u32,
    /// When restarts happened, within the last `window`.
    pub recent: VecDeque<Instant>,
    /// Since when the current process has been up and ready; `None` from an exit until the
    /// restarted process answers.
    pub running_since: Option<Instant>,
    /// Since when every health check found it unresponsive.
    pub unresponsive_since: Option<Instant>,
    /// Since when it has been unresponsive with its main thread idle.
    pub stalled_since: Option<Instant>,
    /// Its main thread's CPU time at the last health check, and when that was.
    pub cpu: Working,
    pub restarts: u32,
    pub last_exit: Option<ExitStatus>,
    /// The last [`EXITS_KEPT`] exits, oldest first: what a crash loop's message shows.
    pub exits: VecDeque<ExitStatus>,
}

/// How many exits a [`Track`] keeps: a crash loop's causes, bounded whatever the settings.
pub const EXITS_KEPT: usize = 5;

/// What one health check got from a daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Answered,
    /// Asked, and no answer in time (or no connection: refused, gone).
    Silent,
    /// Not asked: the supervisor could not even open a connection for want of its own
    /// resources (EMFILE, ENFILE). No evidence either way.
    NotAsked,
}

/// What one health check makes of a running daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judgement {
    Answers,
    /// Silent since `silent_for` ago, but its main thread worked since the last check.
    Busy {
        silent_for: Duration,
    },
    /// Silent, its main thread idle (or unreadable): hung unless it answers soon.
    Stalled,
    /// Silent too long: kill it.
    Hung,
    /// Nothing learnt (we could not ask): whatever silence came before is forgotten.
    NotAsked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    RestartIn(Duration),
    /// Too many restarts within the window.
    GiveUp {
        restarts: u32,
        window: Duration,
    },
}

impl Track {
    /// The daemon exited (crash, kill, or our own SIGKILL of a hung one).
    pub fn on_exit(&mut self, p: &Policy, status: ExitStatus, now: Instant, unit: f64) -> Decision {
        self.running_since = None;
        self.forget_silence();
        self.last_exit = Some(status);
        if self.exits.len() == EXITS_KEPT {
            self.exits.pop_front();
        }
        self.exits.push_back(status);
        while self
            .recent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= p.window)
        {
            self.recent.pop_front();
        }
        if self.recent.len() as u32 >= p.max_restarts {
            return Decision::GiveUp {
                restarts: self.recent.len() as u32,
                window: p.window,
            };
        }
        self.recent.push_back(now);
        let delay = p.backoff.delay(self.attempt, unit);
        self.attempt = self.attempt.saturating_add(1);
        self.restarts += 1;
        Decision::RestartIn(delay)
    }

    /// The (re)started daemon answers again: it recovered, so the next crash is a new fault,
    /// not the same one recurring, and restarts from the shortest delay. Crash-loop detection
    /// (`recent`) is untouched: a daemon that answers and crashes again and again still
    /// exceeds `max_restarts` within `window`.
    pub fn on_ready(&mut self, now: Instant) {
        self.attempt = 0;
        self.running_since = Some(now);
        self.forget_silence();
    }

    fn forget_silence(&mut self) {
        self.unresponsive_since = None;
        self.stalled_since = None;
        self.cpu.forget();
    }

    /// One health check's answer for this daemon, with its main thread's CPU time then (`None`:
    /// unreadable, which never counts as work).
    pub fn on_health(
        &mut self,
        p: &Policy,
        answer: Answer,
        cpu: Option<Duration>,
        now: Instant,
    ) -> Judgement {
        if answer == Answer::NotAsked {
            self.forget_silence();
            return Judgement::NotAsked;
        }
        let worked = self.cpu.look(now, cpu);
        if answer == Answer::Answered {
            self.unresponsive_since = None;
            self.stalled_since = None;
            return Judgement::Answers;
        }
        let silent_since = *self.unresponsive_since.get_or_insert(now);
        let silent_for = now.saturating_duration_since(silent_since);
        if worked {
            self.stalled_since = None;
        }
        let stalled = self.stalled_since.map(|t| now.saturating_duration_since(t));
        if !worked {
            self.stalled_since.get_or_insert(now);
        }
        if silent_for >= p.busy_limit || stalled.is_some_and(|d| d >= p.hung_after) {
            Judgement::Hung
        } else if worked {
            Judgement::Busy { silent_for }
        } else {
            Judgement::Stalled
        }
    }
}

#[cfg(test)]
mod tests;

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
//! Kubernetes sees the pod fail instead of a node that flaps forever. A daemon is killed as
//! hung only after it failed every health check for `hung_after`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

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
    pub restarts: u32,
    pub last_exit: Option<ExitStatus>,
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
        self.unresponsive_since = None;
        self.last_exit = Some(status);
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
        self.unresponsive_since = None;
    }

    /// One health check's answer for this daemon; true when it must be killed as hung.
    pub fn on_health(&mut self, p: &Policy, answered: bool, now: Instant) -> bool {
        if answered {
            self.unresponsive_since = None;
            return false;
        }
        let since = *self.unresponsive_since.get_or_insert(now);
        now.saturating_duration_since(since) >= p.hung_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::backoff;

    fn policy() -> Policy {
        Policy {
            backoff: backoff::Policy {
                base: Duration::from_millis(50),
                cap: Duration::from_secs(10),
            },
            stable_after: Duration::from_secs(60),
            max_restarts: 5,
            window: Duration::from_secs(60),
            hung_after: Duration::from_secs(6),
        }
    }

    const KILLED: ExitStatus = ExitStatus::Signaled(nix::sys::signal::Signal::SIGKILL);

    /// One event of a table row: an exit (with its jitter unit) or the restarted daemon
    /// answering again.
    #[derive(Clone, Copy)]
    enum Ev {
        Exit(f64),
        Ready,
    }

    /// Runs `(ms after t0, event, decision expected from an exit)` rows through one track.
    fn run(p: &Policy, rows: &[(u64, Ev, Option<Decision>)]) -> Track {
        let t0 = Instant::now();
        let mut t = Track::default();
        for (i, (ms, ev, want)) in rows.iter().enumerate() {
            let now = t0 + Duration::from_millis(*ms);
            match ev {
                Ev::Exit(unit) => {
                    assert_eq!(Some(t.on_exit(p, KILLED, now, *unit)), *want, "row {i}")
                }
                Ev::Ready => t.on_ready(now),
            }
        }
        t
    }

    fn restart_ms(ms: u64) -> Option<Decision> {
        Some(Decision::RestartIn(Duration::from_millis(ms)))
    }

    #[test]
    fn restarts_that_never_answer_back_off_then_give_up_within_the_window() {
        let p = policy();
        let give_up = Some(Decision::GiveUp {
            restarts: 5,
            window: p.window,
        });
        let t = run(
            &p,
            &[
                (
                    0,
                    Ev::Exit(0.999),
                    Some(Decision::RestartIn(Duration::from_micros(49_950))),
                ),
                (1000, Ev::Exit(0.5), restart_ms(50)),
                (2000, Ev::Exit(0.5), restart_ms(100)),
                (3000, Ev::Exit(0.0), restart_ms(0)),
                (4000, Ev::Exit(1.0), restart_ms(800)),
                (5000, Ev::Exit(0.5), give_up),
            ],
        );
        assert_eq!(t.restarts, 5);
        assert_eq!(t.last_exit, Some(KILLED));
    }

    #[test]
    fn answering_again_resets_the_backoff_but_not_crash_loop_detection() {
        let p = policy();
        let give_up = Some(Decision::GiveUp {
            restarts: 5,
            window: p.window,
        });
        run(
            &p,
            &[
                // Killed from outside every 1.5 s, back within 0.3 s each time: every restart
                // comes from the shortest ceiling (it used to climb
                // to a 10 s ceiling, so a node killed often was down for seconds each time).
                (0, Ev::Exit(1.0), restart_ms(50)),
                (300, Ev::Ready, None),
                (1500, Ev::Exit(1.0), restart_ms(50)),
                (1800, Ev::Ready, None),
                (3000, Ev::Exit(1.0), restart_ms(50)),
                // Never answers after this one: the ceiling doubles again.
                (3200, Ev::Exit(1.0), restart_ms(100)),
                (3500, Ev::Exit(1.0), restart_ms(200)),
                (3900, Ev::Ready, None),
                // The sixth exit within 60 s is a crash loop, answering or not.
                (4500, Ev::Exit(1.0), give_up),
            ],
        );
    }

    #[test]
    fn old_restarts_leave_the_window() {
        let mut p = policy();
        p.max_restarts = 3;
        run(
            &p,
            &[
                (0, Ev::Exit(1.0), restart_ms(50)),
                (1000, Ev::Exit(1.0), restart_ms(100)),
                (2000, Ev::Exit(1.0), restart_ms(200)),
                // 60 s after the first restart it has left the window: a fourth is allowed,
                // and the backoff, never reset by an answer, keeps growing.
                (60_000, Ev::Exit(1.0), restart_ms(400)),
                (60_500, Ev::Ready, None),
                (61_000, Ev::Exit(1.0), restart_ms(50)),
                (
                    61_500,
                    Ev::Exit(1.0),
                    Some(Decision::GiveUp {
                        restarts: 3,
                        window: p.window,
                    }),
                ),
            ],
        );
    }

    #[test]
    fn hung_only_after_failing_every_check_for_hung_after() {
        let p = policy();
        let t0 = Instant::now();
        let mut t = Track::default();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert!(!t.on_health(&p, false, at(0)));
        assert!(!t.on_health(&p, false, at(4)));
        // One good answer resets the clock.
        assert!(!t.on_health(&p, true, at(5)));
        assert!(!t.on_health(&p, false, at(6)));
        assert!(!t.on_health(&p, false, at(11)));
        assert!(t.on_health(&p, false, at(12)));
    }
}

//! Restart decisions for a crashed or hung daemon, as a pure function of
//! (track, event, now, jitter): the executor in `supervisor` only carries them out.
//!
//! Invariants: the first restart waits at most `backoff.base` (full jitter from zero), so a
//! node recovers in well under a second; each further restart's ceiling doubles up to
//! `backoff.cap`; a daemon that ran for `stable_after` starts again from attempt 0; more than
//! `max_restarts` restarts of one daemon within `window` is a crash loop — give up, so
//! Kubernetes sees the pod fail instead of a node that flaps forever. A daemon is killed as
//! hung only after it failed every health check for `hung_after`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::backoff;
use crate::process::ExitStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub backoff: backoff::Policy,
    pub stable_after: Duration,
    pub max_restarts: u32,
    pub window: Duration,
    pub hung_after: Duration,
}

/// What the supervisor remembers about one daemon between events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Track {
    /// Backoff attempt of the next restart.
    pub attempt: u32,
    /// When restarts happened, within the last `window`.
    pub recent: VecDeque<Instant>,
    /// Since when the current process has been up and ready.
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
        if self
            .running_since
            .is_some_and(|since| now.saturating_duration_since(since) >= p.stable_after)
        {
            self.attempt = 0;
        }
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

    /// The (re)started daemon answers again.
    pub fn on_ready(&mut self, now: Instant) {
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

    #[test]
    fn restarts_back_off_then_give_up_within_the_window() {
        let p = policy();
        let t0 = Instant::now();
        let mut t = Track::default();
        // (seconds after t0 of the exit, jitter unit, expected decision)
        let table: &[(u64, f64, Decision)] = &[
            (0, 0.999, Decision::RestartIn(Duration::from_micros(49_950))),
            (1, 0.5, Decision::RestartIn(Duration::from_millis(50))),
            (2, 0.5, Decision::RestartIn(Duration::from_millis(100))),
            (3, 0.0, Decision::RestartIn(Duration::ZERO)),
            (4, 1.0, Decision::RestartIn(Duration::from_millis(800))),
            (
                5,
                0.5,
                Decision::GiveUp {
                    restarts: 5,
                    window: p.window,
                },
            ),
        ];
        for (secs, unit, want) in table {
            let got = t.on_exit(&p, KILLED, t0 + Duration::from_secs(*secs), *unit);
            assert_eq!(got, *want, "exit at +{secs}s");
            t.on_ready(t0 + Duration::from_secs(*secs));
        }
        assert_eq!(t.restarts, 5);
        assert_eq!(t.last_exit, Some(KILLED));
    }

    #[test]
    fn old_restarts_leave_the_window_and_stability_resets_the_backoff() {
        let p = policy();
        let t0 = Instant::now();
        let mut t = Track::default();
        for i in 0..5 {
            assert!(matches!(
                t.on_exit(&p, KILLED, t0 + Duration::from_secs(i), 0.5),
                Decision::RestartIn(_)
            ));
            t.on_ready(t0 + Duration::from_secs(i));
        }
        // 61 s later the first restarts are out of the window, and the daemon ran 57 s: not
        // stable yet, so the backoff keeps growing.
        let d = t.on_exit(&p, KILLED, t0 + Duration::from_secs(61), 1.0);
        assert_eq!(d, Decision::RestartIn(Duration::from_millis(1600)));
        // Ran for 60 s: attempt resets, the next restart is near-immediate again.
        t.on_ready(t0 + Duration::from_secs(62));
        let d = t.on_exit(
            &p,
            ExitStatus::Exited(1),
            t0 + Duration::from_secs(122),
            1.0,
        );
        assert_eq!(d, Decision::RestartIn(Duration::from_millis(50)));
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

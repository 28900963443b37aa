//! How long `flow-restore-wait` is held for a table that is still coming: a deadline that moves
//! while ovn-controller shows progress, bounded by a cap.
//!
//! Why: a fixed deadline from ovn-controller's start cleared the flag on a table that was
//! still being installed. At 105,143 rules under QEMU TCG ovn-controller computed for 13 s and
//! then installed for 18 s; the 30 s stage deadline fell in between (docs/benchmarks.md §7.1),
//! and with no restored table under it the flush that clearing the flag causes cut the pods
//! off (the `keep` takeovers lost 362–1044 pings). Holding the flag forever is worse: a node
//! whose own networking runs through an OVS bridge cannot reach the Southbound while new flows
//! wait, which is why OVN reverted its own flow-restore-wait handling. So the flag is cleared
//! once nothing has moved for `quiet` (the stage deadline, as before: an ovn-controller that
//! cannot reach the Southbound neither computes nor installs) and in any case at `cap` (the
//! busy limit, past which a silent computing daemon counts as hung too).
//!
//! Invariants: pure (time comes in as an argument); the moment it is due never passes the cap,
//! and never comes earlier than `quiet` after the last progress.

use std::time::{Duration, Instant};

/// The deadline of one wait for a complete table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patience {
    quiet: Duration,
    cap: Instant,
    due: Instant,
}

impl Patience {
    /// Starting `now`: due after `quiet` without progress, and at `now + cap` at the latest
    /// (never before `quiet`).
    pub fn new(now: Instant, quiet: Duration, cap: Duration) -> Patience {
        let cap = now + cap.max(quiet);
        Patience {
            quiet,
            cap,
            due: now + quiet,
        }
    }

    /// One look at `now`: `progress` when the table or ovn-controller moved since the last
    /// look. True once the wait is over.
    pub fn due(&mut self, now: Instant, progress: bool) -> bool {
        if progress {
            self.due = (now + self.quiet).min(self.cap);
        }
        now >= self.due
    }

    /// When the wait ends if nothing moves from now on.
    pub fn at(&self) -> Instant {
        self.due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (ms since start of the look, progress) → due?; quiet 30 s, cap 120 s.
    #[test]
    fn the_deadline_moves_with_progress_up_to_the_cap() {
        let t0 = Instant::now();
        let s = |ms: u64| t0 + Duration::from_millis(ms);
        type Row = &'static [(u64, bool, bool)];
        let rows: [(&str, Row); 5] = [
            (
                "nothing moves: due at quiet, as the fixed deadline was",
                &[
                    (0, false, false),
                    (29_999, false, false),
                    (30_000, false, true),
                ],
            ),
            (
                "computing for 13 s then installing for 18 s: never due while it moves",
                &[
                    (13_000, true, false),
                    (31_000, true, false),
                    (60_999, false, false),
                    (61_000, false, true),
                ],
            ),
            (
                "progress that never ends: due at the cap",
                &[
                    (50_000, true, false),
                    (100_000, true, false),
                    (119_999, true, false),
                    (120_000, true, true),
                ],
            ),
            (
                "progress after being due does not take it back before the cap",
                &[
                    (30_000, false, true),
                    (30_001, true, false),
                    (60_001, false, true),
                ],
            ),
            (
                "a late progress cannot push the end past the cap",
                &[(110_000, true, false), (120_000, false, true)],
            ),
        ];
        for (what, looks) in rows {
            let mut p = Patience::new(t0, Duration::from_secs(30), Duration::from_secs(120));
            for &(ms, progress, want) in looks {
                assert_eq!(p.due(s(ms), progress), want, "{what}: at {ms} ms");
            }
        }
    }

    #[test]
    fn a_cap_below_quiet_is_quiet() {
        let t0 = Instant::now();
        let mut p = Patience::new(t0, Duration::from_secs(30), Duration::from_secs(5));
        assert!(!p.due(t0 + Duration::from_secs(29), true));
        assert!(p.due(t0 + Duration::from_secs(30), true));
    }
}

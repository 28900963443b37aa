//! Whether a daemon's main thread is working, from its CPU time between two looks: the one
//! rule both the health policy (a silent daemon that computes is not hung) and the
//! flow-restore-wait patience (ovn-controller computing the table still to come) go by.
//!
//! Invariants: pure (time and CPU time come in as arguments); the first look, a look after
//! the process was gone, and a CPU time that went backwards (a new pid) never count as work.

use std::time::{Duration, Instant};

/// The share of wall time a main thread must spend on the CPU between two looks to count as
/// working: a computation takes nearly all of a core (or what a loaded node leaves it), a
/// blocked thread none.
pub const BUSY_SHARE: u32 = 10;

/// The last look at one daemon's main-thread CPU time.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Working {
    last: Option<(Instant, Duration)>,
}

impl Working {
    /// As if looked at `at`, with `cpu` of main-thread CPU time so far.
    pub fn seen(at: Instant, cpu: Duration) -> Working {
        Working {
            last: Some((at, cpu)),
        }
    }

    /// One look at `now` with the main thread's CPU time so far (`None`: unreadable, or no
    /// such process, e.g. between a crash and its restart). True when it used at least
    /// 1/[`BUSY_SHARE`] of the wall time since the last look.
    pub fn look(&mut self, now: Instant, cpu: Option<Duration>) -> bool {
        let before = std::mem::replace(&mut self.last, cpu.map(|c| (now, c)));
        match (before, cpu) {
            (Some((then, was)), Some(c)) => {
                let wall = now.saturating_duration_since(then);
                // A restarted process's CPU time starts again from zero: not work.
                !wall.is_zero() && c.saturating_sub(was) >= wall / BUSY_SHARE
            }
            _ => false,
        }
    }

    /// Forgets the last look: the next one says no.
    pub fn forget(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (ms, cpu ms or none) → working?
    #[test]
    fn a_main_thread_works_when_it_used_a_tenth_of_the_wall_time() {
        let t0 = Instant::now();
        type Looks = &'static [(u64, Option<u64>, bool)];
        let rows: [(&str, Looks); 4] = [
            (
                "busy, then idle",
                &[
                    (0, Some(100), false),
                    (500, Some(500), true),
                    (1000, Some(510), false),
                ],
            ),
            (
                "exactly a tenth",
                &[(0, Some(0), false), (1000, Some(100), true)],
            ),
            (
                "gone, then restarted from zero",
                &[
                    (0, Some(900), false),
                    (500, None, false),
                    (1000, Some(10), false),
                    (1500, Some(300), true),
                ],
            ),
            (
                "a new pid whose CPU time is below the old one's",
                &[(0, Some(900), false), (500, Some(50), false)],
            ),
        ];
        for (what, looks) in rows {
            let mut w = Working::default();
            for &(ms, cpu, want) in looks {
                let got = w.look(
                    t0 + Duration::from_millis(ms),
                    cpu.map(Duration::from_millis),
                );
                assert_eq!(got, want, "{what}: at {ms} ms");
            }
        }
    }
}

//! Full-jitter exponential backoff for retry loops (waiting for a socket, a
//! pidfile, a daemon to come back).
//!
//! We keep our own few lines instead of the `backoff` crate, which is
//! unmaintained (RUSTSEC-2025-0012).
//!
//! Invariants:
//! - `Policy::ceiling(n)` is `min(cap, base * 2^n)`, computed saturating, so
//!   any `attempt` up to `u32::MAX` is safe and simply yields `cap`.
//! - `Policy::delay` is "full jitter" (AWS architecture blog): a uniform pick
//!   in `[0, ceiling)`, which spreads retries of many clients instead of
//!   having them hammer a restarting daemon in lock-step.
//! - `Retry::next_delay` never returns a delay that sleeps past the deadline,
//!   and returns `None` once the deadline is reached.
//! - Randomness and the clock are parameters (`unit`, `now`) so everything but
//!   `delay_random` is deterministic and testable.

use std::time::{Duration, Instant};

/// A policy that cannot produce a sensible schedule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("backoff base must be > 0 (base {base:?}, cap {cap:?})")]
    ZeroBase { base: Duration, cap: Duration },
    #[error("backoff base {base:?} exceeds cap {cap:?}")]
    BaseAboveCap { base: Duration, cap: Duration },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub base: Duration,
    pub cap: Duration,
}

impl Policy {
    /// Builds a validated policy.
    pub fn new(base: Duration, cap: Duration) -> Result<Self, PolicyError> {
        let p = Policy { base, cap };
        p.validate()?;
        Ok(p)
    }

    /// The fields are public (so policies can be `const`), hence a separate
    /// check for values that came from configuration.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.base.is_zero() {
            return Err(PolicyError::ZeroBase {
                base: self.base,
                cap: self.cap,
            });
        }
        if self.base > self.cap {
            return Err(PolicyError::BaseAboveCap {
                base: self.base,
                cap: self.cap,
            });
        }
        Ok(())
    }

    /// Upper bound of the delay before retry number `attempt` (0-based):
    /// `min(cap, base * 2^attempt)`, saturating.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let base = self.base.as_nanos();
        let cap = self.cap.as_nanos();
        // u128 holds Duration::MAX in nanoseconds (~1.8e28) with room to
        // spare; any shift that would leave u128 is certainly above the cap.
        let scaled = if attempt >= 127 {
            None
        } else {
            base.checked_mul(1u128 << attempt)
        };
        let nanos = match scaled {
            Some(n) => n.min(cap),
            None => cap,
        };
        from_nanos_u128(nanos)
    }

    /// Full jitter: `ceiling(attempt) * unit`, with `unit` meant to be uniform
    /// in `[0, 1)`. Out-of-range or NaN units are clamped rather than
    /// trusted, so the result never exceeds the ceiling.
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let unit = if unit.is_nan() {
            0.0
        } else {
            unit.clamp(0.0, 1.0)
        };
        let ceiling = self.ceiling(attempt).as_nanos();
        // f64 rounding may nudge the product a hair above the ceiling for
        // huge values; `as` saturates and `min` puts it back.
        let nanos = ((ceiling as f64) * unit) as u128;
        from_nanos_u128(nanos.min(ceiling))
    }

    /// `delay` with a fresh random unit.
    pub fn delay_random(&self, attempt: u32) -> Duration {
        self.delay(attempt, fastrand::f64())
    }
}

fn from_nanos_u128(nanos: u128) -> Duration {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    let secs = u64::try_from(nanos / NANOS_PER_SEC).unwrap_or(u64::MAX);
    // The remainder is < 1e9 and therefore fits u32.
    let sub = (nanos % NANOS_PER_SEC) as u32;
    Duration::new(secs, sub)
}

/// Retry schedule bounded by a deadline. Not an `Iterator` because each step
/// needs the current time and a random unit from the caller.
#[derive(Clone, Debug)]
pub struct Retry {
    policy: Policy,
    deadline: Instant,
    attempt: u32,
}

impl Retry {
    pub fn new(policy: Policy, deadline: Instant) -> Self {
        Retry {
            policy,
            deadline,
            attempt: 0,
        }
    }

    /// How many delays have been handed out so far.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The delay before the next try, or `None` when `now` is at or past the
    /// deadline. The delay is cut so that `now + delay <= deadline`, which
    /// gives the caller one last try right at the deadline.
    pub fn next_delay(&mut self, now: Instant, unit: f64) -> Option<Duration> {
        if now >= self.deadline {
            return None;
        }
        let remaining = self.deadline - now;
        let delay = self.policy.delay(self.attempt, unit).min(remaining);
        self.attempt = self.attempt.saturating_add(1);
        Some(delay)
    }

    /// `next_delay` with a fresh random unit.
    pub fn next_delay_random(&mut self, now: Instant) -> Option<Duration> {
        self.next_delay(now, fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn policy(base_ms: u64, cap_ms: u64) -> Policy {
        Policy::new(ms(base_ms), ms(cap_ms)).unwrap()
    }

    #[test]
    fn ceilings_double_until_cap() {
        let p = policy(100, 5_000);
        let table: &[(u32, u64)] = &[
            (0, 100),
            (1, 200),
            (2, 400),
            (3, 800),
            (4, 1_600),
            (5, 3_200),
            (6, 5_000),
            (7, 5_000),
            (30, 5_000),
        ];
        for &(attempt, want) in table {
            assert_eq!(p.ceiling(attempt), ms(want), "attempt {attempt}");
        }
    }

    #[test]
    fn huge_attempts_saturate_at_cap() {
        // (policy, first attempt whose ceiling is the cap)
        let table = [
            (
                Policy {
                    base: ms(1),
                    cap: ms(10),
                },
                4,
            ),
            (
                Policy {
                    base: Duration::MAX,
                    cap: Duration::MAX,
                },
                0,
            ),
            // 1 ns * 2^94 is the first power of two above Duration::MAX.
            (
                Policy {
                    base: Duration::from_nanos(1),
                    cap: Duration::MAX,
                },
                94,
            ),
        ];
        for (p, first) in table {
            assert!(first == 0 || p.ceiling(first - 1) < p.cap, "{p:?}");
            for attempt in [
                first,
                first + 1,
                126,
                127,
                128,
                1_000,
                u32::MAX - 1,
                u32::MAX,
            ] {
                assert_eq!(p.ceiling(attempt), p.cap, "{p:?} attempt {attempt}");
                assert!(p.delay(attempt, 0.999_999) <= p.cap);
            }
        }
    }

    #[test]
    fn delay_is_ceiling_times_unit() {
        let p = policy(100, 1_000);
        let table: &[(u32, f64, u64)] = &[
            (0, 0.0, 0),
            (0, 0.5, 50),
            (3, 0.25, 200),
            (10, 0.5, 500),
            // Out-of-range units are clamped, never trusted.
            (0, -1.0, 0),
            (0, f64::NAN, 0),
            (0, 7.0, 100),
        ];
        for &(attempt, unit, want) in table {
            assert_eq!(p.delay(attempt, unit), ms(want), "{attempt} {unit}");
        }
        let near_one = p.delay(2, 1.0 - f64::EPSILON);
        assert!(near_one <= ms(400) && near_one > ms(399), "{near_one:?}");
    }

    #[test]
    fn delay_random_stays_below_ceiling() {
        let p = policy(10, 80);
        for attempt in 0..10 {
            assert!(p.delay_random(attempt) <= p.ceiling(attempt));
        }
    }

    #[test]
    fn validation_names_both_values() {
        let zero = Policy::new(Duration::ZERO, ms(5)).unwrap_err();
        assert_eq!(
            zero,
            PolicyError::ZeroBase {
                base: Duration::ZERO,
                cap: ms(5)
            }
        );
        let inverted = Policy::new(ms(10), ms(5)).unwrap_err();
        let text = inverted.to_string();
        assert!(text.contains("10ms") && text.contains("5ms"), "{text}");
        assert!(Policy::new(ms(5), ms(5)).is_ok());
    }

    #[test]
    fn retry_counts_and_truncates_at_deadline() {
        let start = Instant::now();
        let mut r = Retry::new(policy(100, 10_000), start + ms(1_000));
        assert_eq!(r.attempt(), 0);
        // (time since start, unit, expected delay)
        let table: &[(u64, f64, u64)] = &[
            (0, 0.99, 99),
            (100, 0.5, 100),
            (200, 1.0, 400),
            // Ceiling 800 would overshoot: cut to the 100 ms left.
            (900, 1.0, 100),
            (999, 0.0, 0),
        ];
        for (i, &(at, unit, want)) in table.iter().enumerate() {
            let d = r.next_delay(start + ms(at), unit).unwrap();
            assert_eq!(d, ms(want), "step {i}");
            assert_eq!(r.attempt(), i as u32 + 1);
        }
        assert_eq!(r.next_delay(start + ms(1_000), 0.5), None);
        assert_eq!(r.next_delay(start + ms(5_000), 0.5), None);
        assert_eq!(r.attempt(), table.len() as u32, "None does not count");
    }

    #[test]
    fn retry_with_past_deadline_is_none_at_once() {
        let start = Instant::now();
        let mut r = Retry::new(policy(1, 2), start);
        assert_eq!(r.next_delay_random(start), None);
        assert_eq!(r.deadline(), start);
    }
}

//! The tunnel port rule as `status` shows it: in place at the last check, or missing since
//! when and why. Readiness never depends on it (a node without the rule forwards all but
//! tunnel traffic a restrictive INPUT drops); the operator sees it here and in the log.
//!
//! Invariant: [`FirewallState::after`] is a pure function of the previous state and one
//! attempt's result, so a run of failures keeps the time of the first.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum FirewallState {
    /// The rule was in place at the last attempt.
    InPlace { checked_at_ms: u64 },
    /// The last attempt could not set it; the recheck tries again (unless turned off).
    Missing {
        error: String,
        since_ms: u64,
        checked_at_ms: u64,
    },
}

impl FirewallState {
    /// The state after one attempt at `now_ms` (`Err`: its error, as the log says it).
    pub fn after(prev: Option<&FirewallState>, result: Result<(), String>, now_ms: u64) -> Self {
        match (result, prev) {
            (Ok(()), _) => FirewallState::InPlace {
                checked_at_ms: now_ms,
            },
            (Err(error), Some(FirewallState::Missing { since_ms, .. })) => FirewallState::Missing {
                error,
                since_ms: *since_ms,
                checked_at_ms: now_ms,
            },
            (Err(error), _) => FirewallState::Missing {
                error,
                since_ms: now_ms,
                checked_at_ms: now_ms,
            },
        }
    }

    /// One line of the `status` table.
    pub fn line(&self, now_ms: u64) -> String {
        match self {
            FirewallState::InPlace { checked_at_ms } => format!(
                "firewall: tunnel port rule in place (checked {} ago)",
                super::human(now_ms.saturating_sub(*checked_at_ms))
            ),
            FirewallState::Missing {
                error,
                since_ms,
                checked_at_ms,
            } => format!(
                "firewall: tunnel port rule MISSING for {} (last tried {} ago): {error}",
                super::human(now_ms.saturating_sub(*since_ms)),
                super::human(now_ms.saturating_sub(*checked_at_ms))
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::FirewallState::{self, InPlace, Missing};

    fn missing(error: &str, since_ms: u64, checked_at_ms: u64) -> FirewallState {
        Missing {
            error: error.into(),
            since_ms,
            checked_at_ms,
        }
    }

    #[test]
    fn a_run_of_failures_keeps_its_first_time_and_a_success_ends_it() {
        let e = |s: &str| Err(s.to_string());
        let cases: &[(Option<FirewallState>, Result<(), String>, FirewallState)] = &[
            (None, Ok(()), InPlace { checked_at_ms: 50 }),
            (None, e("locked"), missing("locked", 50, 50)),
            (
                Some(InPlace { checked_at_ms: 1 }),
                e("locked"),
                missing("locked", 50, 50),
            ),
            (
                Some(missing("locked", 7, 20)),
                e("gone"),
                missing("gone", 7, 50),
            ),
            (
                Some(missing("locked", 7, 20)),
                Ok(()),
                InPlace { checked_at_ms: 50 },
            ),
        ];
        for (prev, result, want) in cases {
            let got = FirewallState::after(prev.as_ref(), result.clone(), 50);
            assert_eq!(&got, want, "{prev:?} then {result:?}");
        }
    }

    #[test]
    fn status_line_and_json() {
        let m = missing(
            "`iptables-legacy -w 5 -C INPUT ...` failed (exit status 4)",
            0,
            60_000,
        );
        assert_eq!(
            m.line(125_000),
            "firewall: tunnel port rule MISSING for 2m05s (last tried 1m05s ago): `iptables-legacy -w 5 -C INPUT ...` failed (exit status 4)"
        );
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["state"], "missing");
        assert_eq!(json["since_ms"], 0);
        let back: FirewallState = serde_json::from_value(json).unwrap();
        assert_eq!(back, m);
        let ok = InPlace {
            checked_at_ms: 1_000,
        };
        assert_eq!(serde_json::to_value(&ok).unwrap()["state"], "in_place");
        assert_eq!(
            ok.line(4_000),
            "firewall: tunnel port rule in place (checked 3s ago)"
        );
    }
}

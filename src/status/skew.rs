//! ovn-controller's version skew with ovn-northd, which readiness must report.
//!
//! With `external_ids:ovn-match-northd-version=true` (Kube-OVN's upgrade hook sets it), an
//! ovn-controller whose internal version differs from the one ovn-northd wrote in `SB_Global`
//! stops applying changes. It says so only in its log ("controller version - X mismatch with
//! northd version - Y", at most once a second, on every main-loop iteration) — there is no
//! unixctl command for it in OVN 23.03 to 25.03. So the relayed log is watched.
//!
//! Invariants: a skew counts as current only while such lines keep coming. The line is rate
//! limited to one a minute (`VLOG_RATE_LIMIT_INIT(1, 1)`: the rate is per minute), and every
//! health check asks ovn-controller over unixctl, which runs its main loop and so the version
//! check; a skew that is still there is therefore logged again within [`LOG_EVERY`] plus one
//! health interval. Once ovn-northd matches, the lines stop and the skew ages out after
//! [`max_age`] — readiness lags the fix by about a minute, the price of having no better
//! signal. A new ovn-controller process starts clean.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionSkew {
    pub controller: String,
    pub northd: String,
    pub seen_at_ms: u64,
}

impl VersionSkew {
    pub fn describe(&self) -> String {
        let northd = if self.northd.is_empty() {
            "none (ovn-northd has not written its version)"
        } else {
            &self.northd
        };
        format!(
            "ovn-controller's version {} does not match ovn-northd's ({northd}): with \
             ovn-match-northd-version=true it applies no changes until they match",
            self.controller
        )
    }
}

/// How often ovn-controller logs a persisting mismatch at most.
pub const LOG_EVERY: Duration = Duration::from_secs(60);

/// How long after its last line a skew still counts as current, with health checks every
/// `health_interval` waking ovn-controller's main loop.
pub fn max_age(health_interval: Duration) -> Duration {
    LOG_EVERY + 3 * health_interval + Duration::from_secs(1)
}

const MARK: &str = "controller version - ";
const MIDDLE: &str = " mismatch with northd version - ";

/// The two versions in ovn-controller's mismatch line, if `line` is one.
pub fn parse_mismatch(line: &str) -> Option<(String, String)> {
    let rest = &line[line.find(MARK)? + MARK.len()..];
    let (controller, northd) = rest.split_once(MIDDLE)?;
    Some((controller.trim().to_string(), northd.trim().to_string()))
}

/// The last mismatch seen, shared between the log relay and the supervisor.
#[derive(Debug, Clone, Default)]
pub struct SkewWatch(Arc<Mutex<Option<VersionSkew>>>);

impl SkewWatch {
    pub fn observe(&self, line: &str, now_ms: u64) {
        if let Some((controller, northd)) = parse_mismatch(line) {
            if let Ok(mut s) = self.0.lock() {
                *s = Some(VersionSkew {
                    controller,
                    northd,
                    seen_at_ms: now_ms,
                });
            }
        }
    }

    pub fn clear(&self) {
        if let Ok(mut s) = self.0.lock() {
            *s = None;
        }
    }

    /// The skew, if one was logged within `max_age_ms` of `now_ms`.
    pub fn current(&self, now_ms: u64, max_age_ms: u64) -> Option<VersionSkew> {
        let s = self.0.lock().ok()?.clone()?;
        (now_ms.saturating_sub(s.seen_at_ms) <= max_age_ms).then_some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mismatch_lines() {
        let line = "2026-11-24T08:00:00.123Z|00042|main|WARN|controller version - 23.03.1-20.27.0-70.6 mismatch with northd version - 24.03.0-20.33.0-72.4";
        assert_eq!(
            parse_mismatch(line),
            Some((
                "23.03.1-20.27.0-70.6".to_string(),
                "24.03.0-20.33.0-72.4".to_string()
            ))
        );
        let empty =
            "|main|WARN|controller version - 25.03.0-20.41.0-76.8 mismatch with northd version - ";
        assert_eq!(parse_mismatch(empty).unwrap().1, "");
        for other in [
            "",
            "controller version - ",
            "|main|INFO|OVNSB commit failed, force recompute next time.",
            "mismatch with northd version - x",
        ] {
            assert_eq!(parse_mismatch(other), None, "{other}");
        }
    }

    #[test]
    fn a_skew_ages_out_and_a_new_process_starts_clean() {
        let w = SkewWatch::default();
        assert_eq!(w.current(1_000, 500), None);
        w.observe(
            "x|WARN|controller version - a mismatch with northd version - b",
            1_000,
        );
        w.observe("x|INFO|unrelated", 1_100);
        let s = w.current(1_400, 500).unwrap();
        assert_eq!((s.controller.as_str(), s.northd.as_str()), ("a", "b"));
        assert!(s.describe().contains("ovn-match-northd-version=true"));
        assert_eq!(w.current(1_501, 500), None);
        w.observe(
            "x|WARN|controller version - a mismatch with northd version - c",
            2_000,
        );
        w.clear();
        assert_eq!(w.current(2_000, 500), None);
    }
}

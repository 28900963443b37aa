//! ovn-controller's version skew with ovn-northd, which readiness must report.
//!
//! With `external_ids:ovn-match-northd-version=true` (ours, as start-ovs.sh set it; Kube-OVN's
//! upgrade hook sets it too), an ovn-controller whose internal version differs from the one
//! ovn-northd wrote in `SB_Global` stops applying changes. It says so only in its log, as a WARN
//! line from its main loop — there is no unixctl command for it in OVN 23.03 to 25.03 — so the
//! relayed log is watched. OVN 23.03 writes, with ovn-northd's version:
//!
//! ```text
//! 2026-12-03T06:46:43Z|00009|main|WARN|controller version - 23.03.1-20.27.0-70.6 mismatch with northd version - 25.03.2+g0123456789ab-20.41.0-78.9
//! ```
//!
//! and without one (a fresh or restored Southbound), the same line ending in
//! `mismatch with northd version - ` (a space after the dash, then the newline).
//!
//! The relay trims the line's end, so the second arrives ending in `version -`: both forms are
//! a mismatch. With no `SB_Global` row at all ovn-controller applies nothing without a word;
//! readiness cannot see that case (ovn-northd creates the row when it first runs).
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
/// Without the space ovn-controller writes after it: a relayed line has its end trimmed.
const MIDDLE: &str = " mismatch with northd version -";

/// The two versions in ovn-controller's mismatch line, if `line` is one (trimmed or not).
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
        // As OVN 23.03 prints it with no northd version, and as the relay hands it on.
        let empty = "2026-12-03T06:46:39Z|00009|main|WARN|controller version - 23.03.1-20.27.0-70.6 mismatch with northd version - ";
        for line in [empty, empty.trim_end()] {
            let (controller, northd) = parse_mismatch(line).unwrap();
            assert_eq!(
                (controller.as_str(), northd.as_str()),
                ("23.03.1-20.27.0-70.6", "")
            );
        }
        for other in [
            "",
            "controller version - ",
            "|main|INFO|OVNSB commit failed, force recompute next time.",
            "mismatch with northd version - x",
        ] {
            assert_eq!(parse_mismatch(other), None, "{other}");
        }
    }

    /// The exact bytes OVN 23.03's ovn-controller writes while ovn-northd has written no
    /// version, through the relay that feeds the watch in a running node.
    #[test]
    fn the_relay_hands_on_a_mismatch_with_no_northd_version() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let w = SkewWatch::default();
        let (rx, tx) = nix::unistd::pipe().unwrap();
        let bytes = b"2026-12-03T06:46:39Z|00004|main|INFO|OVN internal version is : [23.03.1-20.27.0-70.6]\n\
            2026-12-03T06:46:39Z|00009|main|WARN|controller version - 23.03.1-20.27.0-70.6 mismatch with northd version - \n";
        nix::unistd::write(&tx, bytes).unwrap();
        drop(tx);
        let seen = rt.block_on(async {
            let watch = w.clone();
            let observe = Box::new(move |line: &str| watch.observe(line, 1_000));
            crate::logging::relay_observed("ovn-controller", rx, Some(observe));
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(s) = w.current(1_000, 0) {
                    return Some(s);
                }
                if tokio::time::Instant::now() >= deadline {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        let s = seen.expect("the mismatch line was not seen through the relay");
        assert_eq!(
            (s.controller.as_str(), s.northd.as_str()),
            ("23.03.1-20.27.0-70.6", "")
        );
        assert!(s.describe().contains("has not written its version"));
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

//! What the node looks like: the [`Snapshot`] the supervisor publishes on every change, which
//! the control socket serves (`status`) and the probes judge ([`verdict`]).
//!
//! Invariants: everything here is data plus pure functions of it; the I/O that gathers a
//! health check is [`check`]. A daemon's state is the typed [`DaemonState`], never a string.

pub mod check;
pub mod firewall;
pub mod skew;
pub mod verdict;

use serde::{Deserialize, Serialize};

pub use crate::daemon::state::DaemonState;
pub use firewall::FirewallState;

/// What a daemon is doing, as the supervisor knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DaemonInfo {
    pub name: String,
    pub pid: Option<i32>,
    pub state: DaemonState,
    /// Unix time in ms of the current process's start.
    pub since_ms: Option<u64>,
    pub restarts: u32,
    pub last_exit: Option<String>,
    /// Unix time in ms of the last restart (spawn after an exit); `None` if never restarted.
    #[serde(default)]
    pub restarted_at_ms: Option<u64>,
    /// How long ago that was, filled in when `status` is answered.
    #[serde(default)]
    pub since_restart_ms: Option<u64>,
}

/// The supervisor's live knowledge, published on every change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Snapshot {
    pub pid: i32,
    pub version: String,
    /// The stage in progress, or "ready" / "stopping".
    pub stage: String,
    /// The first full start has finished.
    pub started: bool,
    pub stopping: bool,
    pub started_at_ms: u64,
    pub daemons: Vec<DaemonInfo>,
    /// Completed start stages and their durations, ms.
    pub timeline: Vec<(String, u64)>,
    /// The last background health check; `None` until the first one after the start.
    pub health: Option<Health>,
    /// After this long without a health check the verdicts are stale (the checker is stuck).
    pub health_max_age_ms: u64,
    /// The `ovn-remote` ovn-controller connects to, for readiness reasons.
    #[serde(default)]
    pub southbound: String,
    /// ovn-controller's version skew with ovn-northd, while its log keeps reporting one.
    #[serde(default)]
    pub version_skew: Option<crate::status::skew::VersionSkew>,
    /// ovs-vswitchd keeps the datapath's flows (`flow-restore-wait`) until ovn-controller's
    /// table is complete: not ready meanwhile.
    #[serde(default)]
    pub flow_restore_wait: bool,
    /// Set once this instance has handed the node over.
    #[serde(default)]
    pub handover: Option<HandedOver>,
    /// The tunnel port rule; `None` when we do not manage it.
    #[serde(default)]
    pub firewall: Option<FirewallState>,
}

/// Verdicts of one background health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub checked_at_ms: u64,
    /// Daemons that did not answer their control socket in this check.
    #[serde(default)]
    pub unresponsive: Vec<String>,
    /// CPU time of each checked daemon's main thread at this check, ms: tells a silent daemon
    /// that computes from one that is blocked.
    #[serde(default)]
    pub main_cpu_ms: std::collections::BTreeMap<String, u64>,
    pub liveness: Verdict,
    pub readiness: Verdict,
}

impl Snapshot {
    pub fn daemon(&self, name: &str) -> Option<&DaemonInfo> {
        self.daemons.iter().find(|d| d.name == name)
    }

    /// The `status` table: the tunnel port rule if we manage it, one line per daemon, then the
    /// start timeline.
    pub fn render(&self, now_ms: u64) -> String {
        let mut out = format!(
            "supervisor pid {} (v{}), stage {}, up {}\n",
            self.pid,
            self.version,
            self.stage,
            human(now_ms.saturating_sub(self.started_at_ms))
        );
        if let Some(f) = &self.firewall {
            out.push_str(&f.line(now_ms));
            out.push('\n');
        }
        out.push('\n');
        let rows: Vec<[String; 7]> = self
            .daemons
            .iter()
            .map(|d| {
                [
                    d.name.clone(),
                    d.pid.map_or("-".into(), |p| p.to_string()),
                    d.state.to_string(),
                    d.since_ms
                        .filter(|_| d.state.is_serving())
                        .map_or("-".into(), |t| human(now_ms.saturating_sub(t))),
                    d.restarts.to_string(),
                    d.restarted_at_ms
                        .map_or("-".into(), |t| human(now_ms.saturating_sub(t)) + " ago"),
                    d.last_exit.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        let head = [
            "DAEMON",
            "PID",
            "STATE",
            "UPTIME",
            "RESTARTS",
            "LAST RESTART",
            "LAST EXIT",
        ]
        .map(String::from);
        let mut width = head.clone().map(|h| h.len());
        for r in &rows {
            for (w, c) in width.iter_mut().zip(r) {
                *w = (*w).max(c.len());
            }
        }
        for r in std::iter::once(&head).chain(&rows) {
            let line: Vec<String> = r
                .iter()
                .zip(width)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
        }
        out.push_str("\nstart timeline:");
        let total: u64 = self.timeline.iter().map(|(_, ms)| ms).sum();
        for (stage, ms) in &self.timeline {
            out.push_str(&format!(" {stage} {ms} ms;"));
        }
        out.push_str(&format!(" total {total} ms\n"));
        out
    }
}

/// 0s, 42s, 5m03s, 2h07m, 3d04h.
fn human(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86399 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub ok: bool,
    pub reason: String,
}

pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Published in `status` while handed over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandedOver {
    /// The successor's pid as it told us, if we can see it.
    pub successor: Option<i32>,
    /// The successor answers at the socket path as started.
    pub confirmed: bool,
    /// Unix ms after which nobody answering means we take the node back.
    pub take_back_at_ms: u64,
}

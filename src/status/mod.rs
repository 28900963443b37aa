//! What the node looks like: the [`Snapshot`] the supervisor publishes on every change, which
//! the control socket serves (`status`) and the probes judge ([`verdict`]).
//!
//! Invariants: everything here is data plus pure functions of it; the I/O that gathers a
//! health check is [`check`]. A daemon's state is the typed [`DaemonState`], never a string.

pub mod check;
pub mod firewall;
pub mod session;
pub mod skew;
pub mod stale_sb;
pub mod takeover;
pub mod verdict;

use serde::{Deserialize, Serialize};

pub use crate::daemon::state::DaemonState;
pub use firewall::FirewallState;
pub use takeover::{TakeoverFrom, TookOver};

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
    /// Restarts so far, by why (`signal`, `exit_code`, `hung`, `busy_limit`, `planned`).
    #[serde(default)]
    pub restarts_by_cause: std::collections::BTreeMap<crate::daemon::state::RestartCause, u32>,
    /// The last exit's status, typed: its exit code, or the signal that killed it.
    #[serde(default)]
    pub last_exit_code: Option<i32>,
    #[serde(default)]
    pub last_exit_signal: Option<i32>,
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
    /// ovn-controller refusing a rebuilt or restored clustered Southbound, and our resets.
    #[serde(default)]
    pub stale_southbound: stale_sb::StaleSouthbound,
    /// ovs-vswitchd keeps the datapath's flows (`flow-restore-wait`) until ovn-controller's
    /// table is complete: not ready meanwhile.
    #[serde(default)]
    pub flow_restore_wait: bool,
    /// Set once this instance has handed the node over.
    #[serde(default)]
    pub handover: Option<HandedOver>,
    /// Set once this instance has begun to take a running node over.
    #[serde(default)]
    pub takeover: Option<TookOver>,
    /// Where the HTTP endpoint listens, once it does (filled in when `status` is answered).
    #[serde(default)]
    pub http_addr: Option<String>,
    /// Lines of our log dropped because stderr was not read fast enough (never waited for).
    #[serde(default)]
    pub log_lines_dropped: u64,
    /// Set once `uninstall` has stopped the node for good.
    #[serde(default)]
    pub uninstalled: Option<Uninstalled>,
    /// The tunnel port rule; `None` when we do not manage it.
    #[serde(default)]
    pub firewall: Option<FirewallState>,
    /// Tunnel port rules put back while the node ran, after someone else removed them.
    #[serde(default)]
    pub firewall_restores: u64,
}

/// Verdicts of one background health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub checked_at_ms: u64,
    /// Daemons that did not answer their control socket in this check.
    #[serde(default)]
    pub unresponsive: Vec<String>,
    /// Daemons this check could not even ask: the supervisor was out of file descriptors
    /// (EMFILE/ENFILE). Not evidence against them: never counted toward hung.
    #[serde(default)]
    pub not_asked: Vec<String>,
    /// CPU time of each checked daemon's main thread at this check, ms: tells a silent daemon
    /// that computes from one that is blocked.
    #[serde(default)]
    pub main_cpu_ms: std::collections::BTreeMap<String, u64>,
    /// ovn-controller's `connection-status` to the Southbound, when it answered.
    #[serde(default)]
    pub southbound_connected: Option<bool>,
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
        if let Some(t) = &self.takeover {
            out.push_str(&t.line());
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
                    restarts_column(d),
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
        if let Some(line) = self.stale_southbound.render(now_ms) {
            out.push('\n');
            out.push_str(&line);
            out.push('\n');
        }
        out.push_str("\nstart timeline:");
        let total: u64 = self.timeline.iter().map(|(_, ms)| ms).sum();
        for (stage, ms) in &self.timeline {
            out.push_str(&format!(" {stage} {ms} ms;"));
        }
        out.push_str(&format!(" total {total} ms\n"));
        if self.log_lines_dropped > 0 {
            out.push_str(&format!(
                "\nlog lines dropped: {} (stderr not read fast enough)\n",
                self.log_lines_dropped
            ));
        }
        out
    }
}

/// `3 (signal 2, hung 1)`: the count, and by cause when there were any.
fn restarts_column(d: &DaemonInfo) -> String {
    let causes: Vec<String> = d
        .restarts_by_cause
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(c, n)| format!("{} {n}", c.as_str()))
        .collect();
    if causes.is_empty() {
        d.restarts.to_string()
    } else {
        format!("{} ({})", d.restarts, causes.join(", "))
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
    /// The successor's pid: the peer that asked, as the kernel named it.
    pub successor: Option<i32>,
    /// The successor answers at the socket path as started.
    pub confirmed: bool,
    /// Unix ms after which nobody answering means we take the node back.
    pub take_back_at_ms: u64,
}

/// The node after `uninstall` stopped it for good: no daemon runs and none is restarted until
/// the supervisor is terminated. Also the answer to the `uninstall` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Uninstalled {
    /// Unix ms when the daemons were stopped.
    pub at_ms: u64,
    /// The answer to a repeated request: the node was uninstalled earlier.
    #[serde(default)]
    pub already: bool,
    /// Every daemon stopped before SIGKILL was needed.
    pub stopped_cleanly: bool,
    /// Tunnel ports deleted from the integration bridge before ovs-vswitchd stopped (it
    /// removed their kernel devices with them).
    #[serde(default)]
    pub tunnel_ports: Vec<String>,
    /// The kernel datapath was still there after ovs-vswitchd's own cleanup and was deleted.
    #[serde(default)]
    pub datapath_deleted: bool,
    /// Each step that failed, and why.
    #[serde(default)]
    pub problems: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::state::RestartCause;

    /// The status table shows what the restart metrics count: the causes next to the total.
    #[test]
    fn the_table_shows_restarts_by_cause() {
        let d = |name: &str, restarts, causes: &[(RestartCause, u32)]| DaemonInfo {
            name: name.into(),
            pid: Some(77),
            state: DaemonState::Running,
            restarts,
            restarts_by_cause: causes.iter().copied().collect(),
            ..DaemonInfo::default()
        };
        let snap = Snapshot {
            daemons: vec![
                d(
                    "ovn-controller",
                    3,
                    &[(RestartCause::Hung, 1), (RestartCause::Signal, 2)],
                ),
                d("ovs-vswitchd", 0, &[]),
            ],
            ..Snapshot::default()
        };
        let table = snap.render(0);
        let row = |name: &str| {
            table
                .lines()
                .find(|l| l.starts_with(name))
                .unwrap()
                .to_string()
        };
        assert!(
            row("ovn-controller").contains("3 (signal 2, hung 1)"),
            "{table}"
        );
        assert!(
            row("ovs-vswitchd").split_whitespace().any(|w| w == "0"),
            "{table}"
        );
    }

    /// The status table shows what the takeover metrics say, in one line above the daemons.
    #[test]
    fn the_table_shows_a_takeover() {
        let took = TookOver {
            from: TakeoverFrom::Supervisor,
            requested_at_ms: 0,
            duration_ms: Some(745),
            saved: None,
            restored: None,
        };
        let snap = Snapshot {
            takeover: Some(took.clone()),
            ..Snapshot::default()
        };
        let table = snap.render(0);
        let (head, _) = table.split_once("DAEMON").unwrap();
        assert!(head.lines().any(|l| l == took.line()), "{table}");
        assert!(!Snapshot::default().render(0).contains("took over"));
    }
}

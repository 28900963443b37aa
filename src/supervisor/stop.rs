//! The ordered stop and SIGHUP handling of [`super::Supervisor`].
//!
//! Invariants: daemons stop in reverse dependency order (ovn-controller, ovs-vswitchd,
//! ovsdb-server, the embedded Southbound); each gets a share of what is left of the budget,
//! split between the graceful unixctl `exit`, SIGTERM and SIGKILL of its process group; only
//! pids the reaper still holds are signalled. Before the supervisor exits, [`sweep`] ends
//! whatever of ours is still running (a wrapper's detached daemon): only our descendants.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tokio::sync::mpsc;

use super::Supervisor;
use crate::config::Config;
use crate::daemon::Daemon;
use crate::ovs::unixctl;
use crate::process::{ExitStatus, Reaper};
use crate::status::check;

/// What the stop is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StopFor {
    /// A stop signal, a crash loop, a handover: the datapath keeps forwarding (vswitchd exits
    /// without `--cleanup`) and ovn-controller keeps its chassis (`--restart`).
    Restart,
    /// `uninstall`: vswitchd deletes its datapaths and their devices (`exit --cleanup`).
    /// ovn-controller still exits with `--restart`: without it, it would wait for the
    /// Southbound to remove its chassis, which an uninstall cannot count on.
    Good,
}

fn exit_args(d: Daemon, why: StopFor) -> &'static [&'static str] {
    match (d, why) {
        (Daemon::Vswitchd, StopFor::Good) => &["--cleanup"],
        _ => d.exit_args(),
    }
}

const ORDER: [Daemon; 4] = [
    Daemon::OvnController,
    Daemon::Vswitchd,
    Daemon::OvsdbServer,
    Daemon::SbServer,
];

/// Waits until `d` has exited (recording other daemons' exits seen meanwhile).
async fn wait_exit(
    d: Daemon,
    exits: &mut mpsc::UnboundedReceiver<(Daemon, i32, ExitStatus)>,
    exited: &mut BTreeMap<Daemon, ExitStatus>,
    until: Instant,
) -> Option<ExitStatus> {
    loop {
        if let Some(s) = exited.get(&d) {
            return Some(*s);
        }
        let left = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, exits.recv()).await {
            Ok(Some((who, _, status))) => {
                exited.insert(who, status);
            }
            Ok(None) | Err(_) => return None,
        }
    }
}

/// Stops every running daemon in order; true when each stopped before SIGKILL was needed.
pub(super) async fn stop_all(
    cfg: &Config,
    reaper: &Reaper,
    running: &BTreeMap<Daemon, i32>,
    exits: &mut mpsc::UnboundedReceiver<(Daemon, i32, ExitStatus)>,
    budget: Duration,
    why: StopFor,
) -> bool {
    let end = Instant::now() + budget;
    let mut exited = BTreeMap::new();
    let mut clean = true;
    let order: Vec<Daemon> = ORDER
        .into_iter()
        .filter(|d| running.contains_key(d))
        .collect();
    for (i, d) in order.iter().copied().enumerate() {
        let Some(&pid) = running.get(&d) else {
            continue;
        };
        let share = end.saturating_duration_since(Instant::now()) / (order.len() - i) as u32;
        let t0 = Instant::now();
        // Graceful: half the share; SIGTERM: 30%; SIGKILL: the rest.
        let graceful = t0 + share / 2;
        let args = exit_args(d, why);
        // A daemon spawned a moment ago has no control socket yet: nobody to ask, so SIGTERM
        // (which OVS daemons handle as a clean exit) at once rather than wait for nothing.
        let ctl = check::ctl_of(&cfg.layout, d, Some(pid)).filter(|c| c.exists());
        let mut status = None;
        if let Some(ctl) = ctl {
            if let Err(e) = unixctl::call(&ctl, "exit", args, share / 4).await {
                tracing::debug!(daemon = d.name(), error = %e, "unixctl exit");
            }
            status = wait_exit(d, exits, &mut exited, graceful).await;
        }
        if status.is_none() {
            if reaper.signal(pid, Signal::SIGTERM, true) {
                tracing::info!(
                    daemon = d.name(),
                    pid = pid,
                    "no exit after unixctl exit (or no control socket yet); SIGTERM"
                );
            }
            // Not signalled: it has exited already, and its exit is on its way here.
            status = wait_exit(d, exits, &mut exited, t0 + share * 4 / 5).await;
        }
        if status.is_none() && reaper.signal(pid, Signal::SIGKILL, true) {
            tracing::warn!(
                daemon = d.name(),
                pid = pid,
                "no exit after SIGTERM; SIGKILL"
            );
            clean = false;
            // SIGKILL cannot be refused; the wait is bounded even past the budget.
            status = wait_exit(
                d,
                exits,
                &mut exited,
                Instant::now() + share.max(Duration::from_secs(1)),
            )
            .await;
        }
        match status {
            Some(s) => tracing::info!(
                daemon = d.name(),
                pid = pid,
                status = %s,
                ms = t0.elapsed().as_millis() as u64,
                "stopped"
            ),
            None => {
                clean = false;
                tracing::error!(daemon = d.name(), pid = pid, "did not exit");
            }
        }
    }
    clean
}

/// How long processes left after the stop get between SIGTERM and SIGKILL, and then to go.
const SWEEP_GRACE: Duration = Duration::from_secs(2);
const SWEEP_KILL_WAIT: Duration = Duration::from_secs(1);

/// After the last stop, before we exit: anything still running below us — a daemon a
/// `DEBUG_WRAPPER` double-forked and left (in a session of its own or not), a tool's leftover —
/// gets SIGTERM, then SIGKILL after [`SWEEP_GRACE`]; we wait for it to be gone, so nothing of
/// the node outlives the supervisor. Only our descendants: with `hostPID` every other process
/// of the host is visible and none is ever touched. Returns how many were left.
pub(super) async fn sweep(reaper: &Reaper) -> usize {
    let left = reaper.signal_descendants(Signal::SIGTERM);
    if left.is_empty() {
        return 0;
    }
    tracing::warn!(pids = ?left, "processes of ours still running after the stop (a wrapper's detached children?); SIGTERM");
    if gone(&left, SWEEP_GRACE).await {
        return left.len();
    }
    let killed = reaper.signal_descendants(Signal::SIGKILL);
    if !killed.is_empty() {
        tracing::warn!(pids = ?killed, "still running; SIGKILL");
    }
    if !gone(&killed, SWEEP_KILL_WAIT).await {
        tracing::error!(pids = ?killed, "still there after SIGKILL");
    }
    left.len()
}

/// Waits until none of `pids` is in `/proc` (the reaper reaps each as it exits), for at most
/// `within`; true if they all went.
async fn gone(pids: &[i32], within: Duration) -> bool {
    let end = Instant::now() + within;
    loop {
        let proc = std::path::Path::new("/proc");
        if pids
            .iter()
            .all(|p| crate::process::procfs::stat(proc, *p).is_none())
        {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

impl Supervisor {
    /// SIGHUP: log rotation. Forwarding it would kill the daemons (OVS dies on SIGHUP).
    pub(super) async fn reopen_logs(&self) {
        for (d, pid) in self.processes() {
            let Some(ctl) = check::ctl_of(&self.cfg.layout, d, Some(pid)) else {
                continue;
            };
            match unixctl::call(&ctl, "vlog/reopen", &[], Duration::from_secs(2)).await {
                Ok(_) => tracing::info!(daemon = d.name(), "log reopened"),
                Err(e) => tracing::warn!(daemon = d.name(), error = %e, "vlog/reopen failed"),
            }
        }
    }
}

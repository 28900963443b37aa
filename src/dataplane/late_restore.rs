//! The fallback of a `keep-or-restore` takeover: the saved table goes into br-int only when
//! flow-restore-wait must be cleared (nothing moved for the stage deadline) and the new
//! ovn-controller has put nothing there. Clearing the flag flushes the kernel datapath's flows
//! (OVS's ofproto-dpif.c, `type_run`), so without this the pods would be cut off until
//! ovn-controller delivers; with it they forward through the table the old node had, as after
//! a `restore` takeover.
//!
//! Why it cannot clash with ovn-controller's own table (OVN 23.03 to 25.03,
//! `controller/ofctrl.c` and `ovn-controller.c`):
//! - ovn-controller puts nothing before it has ever reached the Southbound with a northd version
//!   it accepts, and its first put carries the delete of every flow and group in the same
//!   atomic bundle as its table. So its table, whenever it comes, replaces ours whole.
//! - The one bad order: its first put committed before our check, and our table added on top.
//!   To shut that out, ovn-controller is paused (`debug/pause`: its main loop then only answers
//!   its control socket, so nothing more leaves its queue) before br-int is read. What it had
//!   already written to the socket is drained first: vswitchd reads at most 50 messages per
//!   connection per main-loop pass (OVS's connmgr.c, `ofconn_run`), and each of our
//!   [`DRAIN_ROUND_TRIPS`] round trips on our own connection takes at least one pass. A socket
//!   buffer holds far fewer messages than that.
//! - ovn-controller is resumed on every path; if it cannot be confirmed running, it is killed
//!   so that the supervisor starts a fresh one (whose first put replaces br-int's table whole).
//!
//! Invariant: the table is restored only into a br-int that holds no flow at all.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::flows::{self, FlowsError, SavedFlows};
use super::tally::FlowTally;
use crate::config::paths::Layout;
use crate::daemon::Daemon;
use crate::ovs::openflow::Session;
use crate::ovs::unixctl;
use crate::process::Reaper;

/// Our barrier round trips to vswitchd after the pause: each one at least one main-loop pass, each pass
/// 50 of ovn-controller's messages at most, so 6,400 messages drained; a socket buffer of
/// 208 KiB holds a few hundred.
pub const DRAIN_ROUND_TRIPS: u32 = 128;

/// Each control-socket command to ovn-controller.
const COMMAND: Duration = Duration::from_secs(2);

/// Reading br-int after the pause, and the restore, are bounded by this.
const DEADLINE: Duration = Duration::from_secs(120);

/// How the fallback ended.
#[derive(Debug)]
pub enum Late {
    /// br-int was empty: the saved table is in.
    Restored(FlowTally),
    /// ovn-controller had put this many flows: its table stays, nothing restored.
    NotEmpty(usize),
    /// ovn-controller could not be paused (not running, or not answering): nothing restored,
    /// since it could put its table at any moment.
    NotPaused(String),
    /// Reading br-int or restoring failed.
    Failed(FlowsError),
}

impl Late {
    /// What went into br-int, for the takeover's figures.
    pub fn restored(&self) -> Option<FlowTally> {
        match self {
            Late::Restored(t) => Some(*t),
            _ => None,
        }
    }
}

/// What to do with br-int's flow count read after the pause (pure).
pub fn restore_into(count: usize) -> bool {
    count == 0
}

/// Pauses ovn-controller, drains what it already sent, and restores `saved` if br-int is
/// empty; resumes ovn-controller on every path.
pub async fn restore_if_empty(reaper: &Reaper, l: &Layout, saved: &SavedFlows) -> Late {
    let d = Daemon::OvnController;
    let Some(pid) = d.read_pid(l).ok().flatten() else {
        return Late::NotPaused("ovn-controller has no pidfile".into());
    };
    let ctl = d.ctl(l, pid);
    if let Err(e) = unixctl::call(&ctl, "debug/pause", &[], COMMAND).await {
        return Late::NotPaused(format!("{}: debug/pause: {e}", ctl.display()));
    }
    let late = restore_paused(reaper, l, saved).await;
    resume(reaper, &ctl, pid).await;
    late
}

async fn restore_paused(reaper: &Reaper, l: &Layout, saved: &SavedFlows) -> Late {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mgmt = l.mgmt_sock(crate::settings::BRIDGE);
    let count = async {
        let mut s = Session::open(&mgmt, deadline).await?;
        // Barriers, not counts: an aggregate request makes vswitchd walk the whole table.
        for _ in 0..DRAIN_ROUND_TRIPS {
            s.barrier().await?;
        }
        Ok(s.flow_count().await? as usize)
    };
    let count = match count.await {
        Ok(n) => n,
        Err(source) => {
            return Late::Failed(FlowsError::OpenFlow {
                path: mgmt,
                source: Box::new(source),
            })
        }
    };
    if !restore_into(count) {
        return Late::NotEmpty(count);
    }
    match flows::restore(reaper, l, saved).await {
        Ok(t) => Late::Restored(t),
        Err(e) => Late::Failed(e),
    }
}

/// `debug/resume`, confirmed by `debug/status`; a paused ovn-controller would never install
/// anything again, so one that cannot be confirmed running is killed (the supervisor starts
/// it again).
async fn resume(reaper: &Reaper, ctl: &std::path::Path, pid: i32) {
    let until = Instant::now() + 3 * COMMAND;
    while Instant::now() < until {
        let _ = unixctl::call(ctl, "debug/resume", &[], COMMAND).await;
        if let Ok(status) = unixctl::call(ctl, "debug/status", &[], COMMAND).await {
            if status == "running" {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tracing::error!(
        pid,
        "cannot confirm ovn-controller resumed after the late restore; killing it so that a fresh one starts"
    );
    reaper.signal(pid, Signal::SIGKILL, false);
}

/// Logs how the fallback ended.
pub fn report(late: &Late) {
    match late {
        Late::Restored(t) => tracing::warn!(
            flows = t.flows,
            groups = t.groups,
            elapsed_ms = t.elapsed_ms,
            "ovn-controller put nothing in br-int in time: restored the table the old node saved, so that the pods keep forwarding once flow-restore-wait is cleared"
        ),
        Late::NotEmpty(n) => tracing::info!(
            flows = n,
            "not restoring the saved table: ovn-controller has put its own in br-int"
        ),
        Late::NotPaused(why) => tracing::warn!(
            "not restoring the saved table: cannot pause ovn-controller ({why}), which could put its own at any moment"
        ),
        Late::Failed(e) => tracing::warn!("cannot restore the saved table late: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_empty_br_int_takes_the_saved_table() {
        // (flows ovn-controller had put, restore?)
        for (count, want) in [(0, true), (1, false), (21, false), (105_143, false)] {
            assert_eq!(restore_into(count), want, "{count}");
        }
    }
}

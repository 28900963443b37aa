//! Rolling-update takeover (`maxSurge: 1`: an old and a new pod on one node, same host paths).
//!
//! Protocol, in order:
//! 1. The new instance finds the old one by its control socket and asks it to `handover`.
//! 2. The old one saves br-int's OpenFlow groups and flows ([`crate::dataplane::flows::save`]), stops its daemons the
//!    graceful way (ovn-controller `exit --restart`, vswitchd `exit` without `--cleanup`, so a
//!    kernel datapath keeps forwarding), answers with where the flows are, and idles until it is
//!    terminated, then exits 0 touching nothing.
//! 3. Only then does the new one start its daemons — never two ovsdb-servers on one conf.db or
//!    two vswitchds on one run dir, not even for a moment — with
//!    `other_config:flow-restore-wait=true` set before vswitchd starts, [`crate::dataplane::flows::restore`]s the flows
//!    through `br-int.mgmt` (which vswitchd serves even while waiting), starts ovn-controller,
//!    waits until the flow table is [`crate::dataplane::restore_wait`], and then clears `flow-restore-wait`.
//!
//! The instance lock ([`crate::host::instance`]) orders it: the new instance finds the lock held by
//! an instance that answers ([`claim`]), asks it to hand over, and takes the lock the old one
//! releases before answering ([`hand_over`]).
//!
//! Invariant: every step has a deadline; a failure to save or restore flows is logged and the
//! takeover goes on without them (a normal start), because refusing would leave the node with
//! no daemons at all.

pub mod handback;
pub mod legacy;
pub mod northd;

use std::time::{Duration, Instant};

use crate::config::Config;
use crate::control;
use crate::host::instance::{self, InstanceLock, LockError};

pub use crate::dataplane::flows::SavedFlows;

#[derive(Debug, thiserror::Error)]
pub enum TakeoverError {
    #[error(transparent)]
    Locked(#[from] LockError),
    #[error("instance: pid {pid} did not hand over: {reason}")]
    NoHandover { pid: i32, reason: String },
    /// Our ovn-controller would not be accepted by ovn-northd (or we cannot tell): the running
    /// node is left alone.
    #[error(transparent)]
    Northd(#[from] northd::NorthdError),
}

/// Another live supervisor on this run dir: its control socket answers with a pid not ours.
pub fn other_instance(cfg: &Config) -> Option<i32> {
    let status = control::ask(
        &cfg.layout.control_sock(),
        "status",
        Duration::from_millis(500),
    )
    .ok()?;
    let pid = i32::try_from(status.get("pid")?.as_i64()?).ok()?;
    (pid != std::process::id() as i32).then_some(pid)
}

/// Who ran the node before us, as host preparation found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Predecessor {
    /// Nobody (or only stale files of a dead node).
    None,
    /// A supervisor that has handed over, and the flows it saved, if any; `since` is when we
    /// asked it to.
    Supervisor {
        saved: Option<SavedFlows>,
        since: Instant,
        /// How many flows br-int held when it stopped, when it saved none (our successor
        /// keeps the datapath's flows instead): the floor of a complete table.
        table_flows: Option<usize>,
    },
    /// `ovs-ctl`/`ovn-ctl` daemons, still running: stopped by the first start stage; `since`
    /// is when we decided to take them over.
    Legacy {
        node: crate::takeover::legacy::LegacyNode,
        since: Instant,
    },
}

/// Takes the instance lock before anything changes the node. `None` when another supervisor
/// holds it and answers on the control socket, so that it can hand over (rolling update);
/// otherwise a held lock refuses the start, naming the lock file and the holder's pid.
pub fn claim(cfg: &Config) -> Result<Option<InstanceLock>, TakeoverError> {
    match instance::try_acquire(&cfg.layout.ovs_rundir) {
        Ok(lock) => Ok(Some(lock)),
        Err(LockError::Held { .. }) if cfg.takeover && other_instance(cfg).is_some() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// After a handover the old instance releases the lock at once; this long is generous.
const LOCK_AFTER_HANDOVER: std::time::Duration = Duration::from_secs(10);

/// Asks the live instance `pid` to hand over, then takes the lock it releases.
pub fn hand_over(
    cfg: &Config,
    pid: i32,
    lock: Option<InstanceLock>,
) -> Result<(Predecessor, InstanceLock), TakeoverError> {
    tracing::info!(pid, "taking the node over from the running instance");
    // The old instance reads our /proc/PID/exe to admit us (`control::peer`). Kernels that
    // make the exec of a file capability non-dumpable (not 6.1 or 6.18, checked) hide it
    // from processes of our uid. Dumpable opens nothing to a process without our
    // capabilities (the kernel also requires them), and one of our uid can kill us anyway.
    if let Err(e) = nix::sys::prctl::set_dumpable(true) {
        tracing::warn!("cannot mark this process dumpable: {e}; the old instance may judge it by its name alone");
    }
    let rundir = &cfg.layout.ovs_rundir;
    let since = Instant::now();
    let answer = control::ask_with(
        &cfg.layout.control_sock(),
        "handover",
        // `flows`: what we do with br-int's table; an earlier release ignores it and saves.
        Some(serde_json::json!({
            "pid": std::process::id(),
            "flows": cfg.takeover_flows.as_str(),
        })),
        control::HANDOVER_DEADLINE + Duration::from_secs(5),
    );
    let answer = match (answer, &lock) {
        (Ok(a), _) => a,
        // Racing a start that is still under way: the lock is the clearest thing to name.
        (Err(e), None) => {
            return Err(LockError::Held {
                path: rundir.join(instance::LOCK_NAME),
                pid: Some(pid),
                detail: Some(format!("it did not hand over: {e}")),
            }
            .into())
        }
        (Err(e), Some(_)) => {
            return Err(TakeoverError::NoHandover {
                pid,
                reason: e.to_string(),
            })
        }
    };
    let predecessor = predecessor_from(&answer, pid, since);
    let lock = match lock {
        Some(l) => l,
        None => instance::acquire_until(rundir, Instant::now() + LOCK_AFTER_HANDOVER)?,
    };
    Ok((predecessor, lock))
}

/// Who ran the node, from its handover answer. An instance of an older release that handed
/// the node over earlier and runs nothing says so at once (this release refuses instead).
fn predecessor_from(answer: &serde_json::Value, pid: i32, since: Instant) -> Predecessor {
    if answer["handed_over"] == false {
        tracing::info!(
            pid,
            "nothing to hand over: {}; starting normally",
            answer["reason"]
        );
        return Predecessor::None;
    }
    let saved = serde_json::from_value(answer["saved"].clone()).ok();
    // Earlier releases send no count: no floor but the table's own settling.
    let table_flows = answer["table_flows"].as_u64().map(|n| n as usize);
    tracing::info!(pid, ?saved, ?table_flows, "handed over");
    Predecessor::Supervisor {
        saved,
        since,
        table_flows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// (answer, saved flows, table_flows); `None`: no predecessor.
    #[test]
    fn the_predecessor_from_its_handover_answer() {
        let table = json!({"table": "/run/x/br-int.table.takeover", "flow_count": 7,
            "group_count": 1, "meter_count": 0, "save_ms": 3});
        let rows = [
            (
                json!({"handed_over": false, "reason": "handed over earlier"}),
                None,
            ),
            // This release, keep: no table, its size.
            (
                json!({"stopped_cleanly": true, "saved": null, "table_flows": 105143}),
                Some((None, Some(105143))),
            ),
            // This release, restore: the table, no size.
            (
                json!({"stopped_cleanly": true, "saved": table, "table_flows": null}),
                Some((Some(7), None)),
            ),
            // An earlier release: no `table_flows` at all.
            (
                json!({"stopped_cleanly": true, "saved": null}),
                Some((None, None)),
            ),
            // A count that is no count is none.
            (
                json!({"saved": null, "table_flows": "many"}),
                Some((None, None)),
            ),
        ];
        for (answer, want) in rows {
            let got = match predecessor_from(&answer, 1, Instant::now()) {
                Predecessor::None => None,
                Predecessor::Supervisor {
                    saved, table_flows, ..
                } => Some((saved.map(|s| s.flow_count()), table_flows)),
                Predecessor::Legacy { .. } => panic!("legacy from {answer}"),
            };
            assert_eq!(got, want, "{answer}");
        }
    }
}

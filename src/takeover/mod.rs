//! Rolling-update takeover (`maxSurge: 1`: an old and a new pod on one node, same host paths).
//!
//! Protocol, in order:
//! 1. The new instance finds the old one by its control socket and asks it to `handover`.
//! 2. The old one saves br-int's OpenFlow groups and flows ([`save`]), stops its daemons the
//!    graceful way (ovn-controller `exit --restart`, vswitchd `exit` without `--cleanup`, so a
//!    kernel datapath keeps forwarding), answers with where the flows are, and idles until it is
//!    terminated, then exits 0 touching nothing.
//! 3. Only then does the new one start its daemons — never two ovsdb-servers on one conf.db or
//!    two vswitchds on one run dir, not even for a moment — with
//!    `other_config:flow-restore-wait=true` set before vswitchd starts, [`restore`]s the flows
//!    through `br-int.mgmt` (which vswitchd serves even while waiting), starts ovn-controller,
//!    waits until the flow table is [`settled`], and then clears `flow-restore-wait`.
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

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::paths::Layout;
use crate::config::Config;
use crate::control;
use crate::daemon::find_in_path;
use crate::host::instance::{self, InstanceLock, LockError};
use crate::host::prep::{other_instance, HostPrepError};
use crate::process::Reaper;
use crate::settings::BRIDGE;

/// Who ran the node before us, as host preparation found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Predecessor {
    /// Nobody (or only stale files of a dead node).
    None,
    /// A supervisor that has handed over, and the flows it saved, if any.
    Supervisor(Option<SavedFlows>),
    /// `ovs-ctl`/`ovn-ctl` daemons, still running: stopped by the first start stage.
    Legacy(crate::takeover::legacy::LegacyNode),
}

/// Where the old instance left br-int's state for the new one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedFlows {
    pub flows: PathBuf,
    pub groups: PathBuf,
    pub flow_count: usize,
}

const OF: &str = "OpenFlow15";

/// One `ovs-ofctl` dump or restore: 100,000 flows take a few seconds here, ten times that in an
/// emulated VM; beyond this the switch is not answering and the caller's stage reports it.
const OFCTL_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

async fn ofctl(reaper: &Reaper, args: &[&str]) -> Result<String, String> {
    let bin = find_in_path("ovs-ofctl").ok_or("ovs-ofctl not found: install openvswitch-common")?;
    let mut cmd = Command::new(bin);
    cmd.args(args);
    let out = reaper
        .output("ovs-ofctl", cmd, OFCTL_DEADLINE)
        .await
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(format!(
            "ovs-ofctl {}: {}: {}",
            args.join(" "),
            out.status,
            out.stderr.trim()
        ))
    }
}

fn target(l: &Layout) -> String {
    format!("unix:{}", l.mgmt_sock(BRIDGE).display())
}

/// The entries of an `ovs-ofctl dump-*` listing, without its reply header.
pub fn entries(listing: &str) -> Vec<&str> {
    listing
        .lines()
        .filter(|l| l.starts_with(' ') && !l.trim().is_empty())
        .collect()
}

pub async fn save(reaper: &Reaper, l: &Layout) -> Result<SavedFlows, String> {
    let t = target(l);
    let groups = ofctl(reaper, &["-O", OF, "dump-groups", "--no-names", &t]).await?;
    let flows = ofctl(
        reaper,
        &["-O", OF, "dump-flows", "--no-names", "--no-stats", &t],
    )
    .await?;
    let saved = SavedFlows {
        flows: l.ovs_rundir.join(format!("{BRIDGE}.flows.takeover")),
        groups: l.ovs_rundir.join(format!("{BRIDGE}.groups.takeover")),
        flow_count: entries(&flows).len(),
    };
    let write = |p: &Path, lines: Vec<&str>| {
        std::fs::write(p, lines.join("\n") + "\n").map_err(|e| format!("{}: {e}", p.display()))
    };
    write(&saved.groups, entries(&groups))?;
    write(&saved.flows, entries(&flows))?;
    Ok(saved)
}

pub async fn restore(reaper: &Reaper, l: &Layout, saved: &SavedFlows) -> Result<(), String> {
    let t = target(l);
    let has_groups = std::fs::metadata(&saved.groups).is_ok_and(|m| m.len() > 1);
    if has_groups {
        let g = saved.groups.display().to_string();
        ofctl(reaper, &["-O", OF, "add-groups", &t, &g]).await?;
    }
    let f = saved.flows.display().to_string();
    ofctl(reaper, &["-O", OF, "--bundle", "add-flows", &t, &f]).await?;
    Ok(())
}

pub async fn flow_count(reaper: &Reaper, l: &Layout) -> Result<usize, String> {
    let listing = ofctl(reaper, &["-O", OF, "dump-flows", "--no-stats", &target(l)]).await?;
    Ok(entries(&listing).len())
}

/// Waits until the flow table stops changing (ovn-controller has installed its flows):
/// the same count in `stable` consecutive reads `every` apart. OVN 23.03 offers no signal for
/// "flows installed" without ovn-northd's `nb_cfg`, so stability is the observable proxy.
pub async fn settled(
    reaper: &Reaper,
    l: &Layout,
    every: Duration,
    stable: u32,
    deadline: Instant,
) -> Result<usize, String> {
    let (mut last, mut same) = (None, 0);
    loop {
        let n = flow_count(reaper, l).await?;
        same = if Some(n) == last { same + 1 } else { 0 };
        last = Some(n);
        if same >= stable {
            return Ok(n);
        }
        if Instant::now() + every > deadline {
            return Err(format!("flow table still changing ({n} flows)"));
        }
        tokio::time::sleep(every).await;
    }
}

/// Takes the instance lock before anything changes the node. `None` when another supervisor
/// holds it and answers on the control socket, so that it can hand over (rolling update);
/// otherwise a held lock refuses the start, naming the lock file and the holder's pid.
pub fn claim(cfg: &Config) -> Result<Option<InstanceLock>, HostPrepError> {
    match instance::try_acquire(&cfg.layout.ovs_rundir) {
        Ok(lock) => Ok(Some(lock)),
        Err(LockError::Held { .. }) if cfg.takeover && other_instance(cfg).is_some() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// After a handover the old instance releases the lock at once; this long is generous.
const LOCK_AFTER_HANDOVER: std::time::Duration = std::time::Duration::from_secs(10);

/// Asks the live instance `pid` to hand over, then takes the lock it releases.
pub(crate) fn hand_over(
    cfg: &Config,
    pid: i32,
    lock: Option<InstanceLock>,
) -> Result<(Predecessor, InstanceLock), HostPrepError> {
    tracing::info!(pid, "taking the node over from the running instance");
    let rundir = &cfg.layout.ovs_rundir;
    let answer = control::ask_with(
        &cfg.layout.control_sock(),
        "handover",
        Some(serde_json::json!({ "pid": std::process::id() })),
        control::HANDOVER_DEADLINE + std::time::Duration::from_secs(5),
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
            return Err(HostPrepError::Refused(format!(
                "  instance: pid {pid} did not hand over: {e}"
            )))
        }
    };
    // An instance that handed the node over earlier and runs nothing says so at once.
    let predecessor = if answer["handed_over"] == false {
        tracing::info!(
            pid,
            "nothing to hand over: {}; starting normally",
            answer["reason"]
        );
        Predecessor::None
    } else {
        let saved = serde_json::from_value(answer["saved"].clone()).ok();
        tracing::info!(pid, ?saved, "handed over");
        Predecessor::Supervisor(saved)
    };
    let lock = match lock {
        Some(l) => l,
        None => instance::acquire_until(rundir, std::time::Instant::now() + LOCK_AFTER_HANDOVER)?,
    };
    Ok((predecessor, lock))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_drop_reply_headers_and_blank_lines() {
        let listing = "OFPST_GROUP_DESC reply (OF1.5) (xid=0x2):\n group_id=1,type=select,bucket=bucket_id:0,actions=drop\n\n";
        assert_eq!(
            entries(listing),
            [" group_id=1,type=select,bucket=bucket_id:0,actions=drop"]
        );
        let flows = " priority=0 actions=drop\n table=37, priority=0 actions=resubmit(,39)\n";
        assert_eq!(entries(flows).len(), 2);
        assert!(entries("NXST_FLOW reply (xid=0x4):\n").is_empty());
    }
}

//! br-int's OpenFlow state across a takeover: [`save`] it from the old switch, [`restore`] it
//! into the new one; [`flow_count`] for the wait until ovn-controller's table is complete.
//!
//! Invariants: every `ovs-ofctl` run is bounded (`OFCTL_DEADLINE`) and killed past it; files
//! are written only in the run dir, under names derived from the bridge's.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::config::paths::Layout;
use crate::daemon::find_in_path;
use crate::process::{ExitStatus, ProcessError, Reaper};
use crate::settings::BRIDGE;

#[derive(Debug, thiserror::Error)]
pub enum FlowsError {
    #[error("{tool} not found: install openvswitch-common (or openvswitch-switch)")]
    NoTool { tool: &'static str },
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("ovs-ofctl {args}: {status}: {stderr}")]
    Tool {
        args: String,
        status: ExitStatus,
        stderr: String,
    },
    #[error("unexpected ovs-ofctl dump-aggregate reply: {reply:?}")]
    Unexpected { reply: String },
    #[error("{}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
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

async fn ofctl(reaper: &Reaper, args: &[&str]) -> Result<String, FlowsError> {
    let bin = find_in_path("ovs-ofctl").ok_or(FlowsError::NoTool { tool: "ovs-ofctl" })?;
    let mut cmd = Command::new(bin);
    cmd.args(args);
    let out = reaper.output("ovs-ofctl", cmd, OFCTL_DEADLINE).await?;
    if !out.status.success() {
        return Err(FlowsError::Tool {
            args: args.join(" "),
            status: out.status,
            stderr: out.stderr.trim().to_string(),
        });
    }
    Ok(out.stdout)
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

/// br-int's groups and flows, dumped to files in the run dir.
pub async fn save(reaper: &Reaper, l: &Layout) -> Result<SavedFlows, FlowsError> {
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
        std::fs::write(p, lines.join("\n") + "\n").map_err(|source| FlowsError::Write {
            path: p.to_path_buf(),
            source,
        })
    };
    write(&saved.groups, entries(&groups))?;
    write(&saved.flows, entries(&flows))?;
    Ok(saved)
}

/// Saved groups, then flows (in one bundle), back into br-int.
pub async fn restore(reaper: &Reaper, l: &Layout, saved: &SavedFlows) -> Result<(), FlowsError> {
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

/// The number of OpenFlow rules in br-int, from one aggregate request: the switch counts, so
/// a table of 100,000 rules costs no more to read than one of ten.
pub async fn flow_count(reaper: &Reaper, l: &Layout) -> Result<usize, FlowsError> {
    let reply = ofctl(reaper, &["-O", OF, "dump-aggregate", &target(l)]).await?;
    aggregate_flow_count(&reply).ok_or(FlowsError::Unexpected { reply })
}

/// `flow_count=N` from `ovs-ofctl dump-aggregate`'s reply, e.g. `OFPST_AGGREGATE reply (OF1.5)
/// (xid=0x2): packet_count=0 byte_count=0 flow_count=11`.
pub fn aggregate_flow_count(reply: &str) -> Option<usize> {
    reply
        .split_whitespace()
        .find_map(|w| w.strip_prefix("flow_count="))
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_count_from_an_aggregate_reply() {
        let reply =
            "OFPST_AGGREGATE reply (OF1.5) (xid=0x2): packet_count=0 byte_count=0 flow_count=11\n";
        assert_eq!(aggregate_flow_count(reply), Some(11));
        assert_eq!(
            aggregate_flow_count("NXST_AGGREGATE reply (xid=0x4): flow_count=0"),
            Some(0)
        );
        assert_eq!(aggregate_flow_count("OFPT_ERROR: bad request"), None);
    }

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

//! br-int's OpenFlow state across a takeover: [`save`] it from the old switch, [`restore`] it
//! into the new one; [`flow_count`] for the wait until ovn-controller's table is complete.
//!
//! The save is binary ([`binary`]: meters, groups and flows as the OpenFlow mods that recreate
//! them, over our own session), or `ovs-ofctl` text ([`text`]) when the bridge does not speak
//! OpenFlow 1.5; a text save handed over by an earlier release is still restored.
//!
//! Invariants: every `ovs-ofctl` run and every OpenFlow session is bounded (`OFCTL_DEADLINE`);
//! files are written only in the run dir, under names derived from the bridge's; a save that
//! is not whole (fewer flows than the switch counts, a file that does not decode to exactly the
//! counts handed over) is an error, never a partial restore.

pub mod binary;
pub mod text;

use std::path::PathBuf;
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::config::paths::Layout;
use crate::daemon::find_in_path;
use crate::process::{ExitStatus, Output, ProcessError, Reaper};
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
    #[error("{}: saved {saved} flows{cut}, but br-int holds {} (ovs-ofctl dump-aggregate: {before} before the dump, {after} after); the save is incomplete (a full disk?)", path.display(), before.min(after))]
    Incomplete {
        path: PathBuf,
        saved: usize,
        before: usize,
        after: usize,
        cut: &'static str,
    },
    #[error("{}: ovs-ofctl's listing is {why} (a full disk?); nothing saved", path.display())]
    Truncated { path: PathBuf, why: &'static str },
    #[error("{}: the previous instance saved no flows", path.display())]
    NothingSaved { path: PathBuf },
    #[error("{}: {source}", path.display())]
    OpenFlow {
        path: PathBuf,
        source: Box<crate::ovs::openflow::OpenFlowError>,
    },
    #[error("{}: not a whole saved table: {why}", path.display())]
    Unreadable { path: PathBuf, why: String },
    #[error("{}: holds {lines} flows, but the previous instance saved {counted}", path.display())]
    SavedMismatch {
        path: PathBuf,
        lines: usize,
        counted: usize,
    },
}

/// Where the old instance left br-int's state for the new one (the `saved` of its handover
/// answer). The two forms have different field names: this release reads both, and one of
/// an earlier release that receives a binary save (a rollback) finds no `flows` in it, takes
/// it for no save at all and starts keeping the datapath's flows, as after a failed save.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SavedFlows {
    /// This release: one file of OpenFlow messages ([`binary`]).
    Table {
        table: PathBuf,
        flow_count: usize,
        group_count: usize,
        meter_count: usize,
    },
    /// Earlier releases, and the fallback: `ovs-ofctl` listings ([`text`]).
    Text {
        flows: PathBuf,
        groups: PathBuf,
        flow_count: usize,
    },
}

impl SavedFlows {
    pub fn flow_count(&self) -> usize {
        match self {
            SavedFlows::Table { flow_count, .. } | SavedFlows::Text { flow_count, .. } => {
                *flow_count
            }
        }
    }
}

impl From<text::TextSave> for SavedFlows {
    fn from(t: text::TextSave) -> SavedFlows {
        SavedFlows::Text {
            flows: t.flows,
            groups: t.groups,
            flow_count: t.flow_count,
        }
    }
}

pub(super) const OF: &str = "OpenFlow15";

/// One `ovs-ofctl` dump or restore: 100,000 flows take a few seconds here, ten times that in an
/// emulated VM; beyond this the switch is not answering and the caller's stage reports it.
const OFCTL_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

pub(super) async fn ofctl(reaper: &Reaper, args: &[&str]) -> Result<String, FlowsError> {
    Ok(ofctl_to(reaper, args, None).await?.stdout)
}

/// Runs `ovs-ofctl ARGS` under [`OFCTL_DEADLINE`], its stdout kept (up to the reaper's cap) or
/// written to `file`; a failed run is an error naming its arguments and stderr.
pub(super) async fn ofctl_to(
    reaper: &Reaper,
    args: &[&str],
    file: Option<std::fs::File>,
) -> Result<Output, FlowsError> {
    let bin = find_in_path("ovs-ofctl").ok_or(FlowsError::NoTool { tool: "ovs-ofctl" })?;
    let mut cmd = Command::new(bin);
    cmd.args(args);
    let out = match file {
        Some(f) => {
            reaper
                .output_to("ovs-ofctl", cmd, f, OFCTL_DEADLINE)
                .await?
        }
        None => reaper.output("ovs-ofctl", cmd, OFCTL_DEADLINE).await?,
    };
    if !out.status.success() {
        return Err(FlowsError::Tool {
            args: args.join(" "),
            status: out.status,
            stderr: out.stderr.trim().to_string(),
        });
    }
    Ok(out)
}

pub(super) fn target(l: &Layout) -> String {
    format!("unix:{}", l.mgmt_sock(BRIDGE).display())
}

/// br-int's meters, groups and flows, saved in the run dir for the next instance: in binary,
/// or as `ovs-ofctl` text if the binary save fails (the bridge does not speak OpenFlow 1.5);
/// either is checked whole, or the save fails and leaves no file behind.
pub async fn save(reaper: &Reaper, l: &Layout) -> Result<SavedFlows, FlowsError> {
    let table = table_path(l);
    let deadline = tokio::time::Instant::now() + OFCTL_DEADLINE;
    match binary::save(&l.mgmt_sock(BRIDGE), &table, deadline).await {
        Ok(c) => Ok(SavedFlows::Table {
            table,
            flow_count: c.flows,
            group_count: c.groups,
            meter_count: c.meters,
        }),
        Err(e @ FlowsError::Incomplete { .. }) => Err(e),
        Err(e) => {
            tracing::warn!("cannot save br-int's table in binary: {e}; saving it as ovs-ofctl text");
            text::save(reaper, l).await.map(SavedFlows::from)
        }
    }
}

fn table_path(l: &Layout) -> PathBuf {
    l.ovs_rundir.join(format!("{BRIDGE}.table.takeover"))
}

/// Whether the flows a predecessor saved can be restored: the file holds exactly as many flows
/// as it counted, and some. Otherwise the caller keeps the datapath's flows instead of
/// restoring a partial or empty table (which, unchanged for a moment, would pass for
/// ovn-controller's complete one and end flow-restore-wait early).
pub fn usable(saved: &SavedFlows) -> Result<(), FlowsError> {
    match saved {
        SavedFlows::Text {
            flows,
            groups,
            flow_count,
        } => text::usable(&text::TextSave {
            flows: flows.clone(),
            groups: groups.clone(),
            flow_count: *flow_count,
        }),
        SavedFlows::Table { table, .. } => read_table(saved, table).map(|_| ()),
    }
}

/// The saved table's bytes, decoded whole and holding exactly the counts handed over.
fn read_table(saved: &SavedFlows, path: &std::path::Path) -> Result<Vec<u8>, FlowsError> {
    let SavedFlows::Table {
        flow_count,
        group_count,
        meter_count,
        ..
    } = saved
    else {
        return Err(FlowsError::NothingSaved { path: path.into() });
    };
    if *flow_count == 0 {
        return Err(FlowsError::NothingSaved { path: path.into() });
    }
    let bytes = crate::nodefile::read(path, binary::MAX_FILE, crate::nodefile::Links::Refuse)
        .map_err(|e| FlowsError::Write {
            path: path.into(),
            source: e.into_io(),
        })?;
    let t = binary::decode(&bytes).map_err(|why| FlowsError::Unreadable {
        path: path.into(),
        why,
    })?;
    let got = (t.flows.len(), t.groups.len(), t.meters.len());
    if got != (*flow_count, *group_count, *meter_count) {
        return Err(FlowsError::Unreadable {
            path: path.into(),
            why: format!(
                "holds {} flows, {} groups, {} meters; the previous instance saved {flow_count}, {group_count}, {meter_count}",
                got.0, got.1, got.2
            ),
        });
    }
    Ok(bytes)
}

/// The saved table back into br-int: meters, then groups and flows in one bundle.
pub async fn restore(reaper: &Reaper, l: &Layout, saved: &SavedFlows) -> Result<(), FlowsError> {
    match saved {
        SavedFlows::Text {
            flows,
            groups,
            flow_count,
        } => {
            let t = text::TextSave {
                flows: flows.clone(),
                groups: groups.clone(),
                flow_count: *flow_count,
            };
            text::restore(reaper, l, &t).await
        }
        SavedFlows::Table { table, .. } => {
            let bytes = read_table(saved, table)?;
            let deadline = tokio::time::Instant::now() + OFCTL_DEADLINE;
            binary::restore(&l.mgmt_sock(BRIDGE), table, &bytes, deadline).await?;
            Ok(())
        }
    }
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
mod tests;

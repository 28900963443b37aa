//! br-int's OpenFlow state across a takeover: [`save`] it from the old switch, [`restore`] it
//! into the new one; [`flow_count`] for the wait until ovn-controller's table is complete.
//!
//! The save is binary ([`binary`]: meters, groups and flows as the OpenFlow mods that recreate
//! them, over our own session), or `ovs-ofctl` text ([`text`]) when the binary save cannot be
//! made (the bridge does not speak OpenFlow 1.5); a text save handed over by an earlier release
//! is still restored. Either way the save and the restore are tallied ([`FlowTally`]) by the
//! code that moved the flows, for `status` and the metrics.
//!
//! Invariants: every `ovs-ofctl` run and every OpenFlow session is bounded (`OFCTL_DEADLINE`);
//! files are written only in the run dir, under names derived from the bridge's; a save that
//! is not whole (fewer flows than the switch counts before and after its listing, a file that
//! does not hold exactly the counts handed over) is an error, never a partial restore: the
//! successor keeps the datapath's flows instead.

pub mod binary;
pub mod mark;
pub mod text;
pub mod text_tlv;

use std::path::PathBuf;
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::config::paths::Layout;
use crate::daemon::find_in_path;
use crate::dataplane::tally::{self, FlowTally};
use crate::process::{ExitStatus, Output, ProcessError, Reaper};
use crate::settings::BRIDGE;

pub use binary::TableSave;
pub use text::TextSave;

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
    #[error("unexpected ovs-ofctl dump-tlv-map reply: {why}")]
    TlvListing { why: String },
    #[error("{}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: saved {saved} flows{cut}, but br-int holds {} ({counter}: {before} before the dump, {after} after); the save is incomplete (a full disk?)", path.display(), before.min(after))]
    Incomplete {
        path: PathBuf,
        saved: usize,
        before: usize,
        after: usize,
        cut: &'static str,
        /// What counted br-int's flows: `ovs-ofctl dump-aggregate` or our own session's
        /// aggregate request.
        counter: &'static str,
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
    #[error("{}: the switch committed a bundle of {sent} flows, but holds {holds}", path.display())]
    NotRestored {
        path: PathBuf,
        sent: usize,
        holds: usize,
    },
    #[error("{}: holds {lines} flows, but the previous instance saved {counted}", path.display())]
    SavedMismatch {
        path: PathBuf,
        lines: usize,
        counted: usize,
    },
}

/// Where the old instance left br-int's state for the new one (the `saved` of its handover
/// answer). The two forms have different field names: this release reads both, and one of an
/// earlier release that receives a binary save (a rollback) finds no `flows` in it, takes it
/// for no save at all (its `from_value(..).ok()`) and keeps the datapath's flows, as after a
/// failed save. Untagged: each form serializes exactly as its struct, so a text save reads
/// and writes the same JSON as earlier releases' `SavedFlows`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SavedFlows {
    /// This release: one file of OpenFlow messages ([`binary`]). First: a text save has no
    /// `table`, so it never matches this form.
    Table(TableSave),
    /// Earlier releases, and the fallback: `ovs-ofctl` listings ([`text`]).
    Text(TextSave),
}

impl SavedFlows {
    pub fn flow_count(&self) -> usize {
        match self {
            SavedFlows::Table(t) => t.flow_count,
            SavedFlows::Text(t) => t.flow_count,
        }
    }

    /// The save's figures, for `status` and the metrics (meters are not tallied: the text
    /// save of earlier releases never carried them).
    pub fn tally(&self) -> FlowTally {
        let (flows, groups, elapsed_ms) = match self {
            SavedFlows::Table(t) => (t.flow_count, t.group_count, t.save_ms),
            SavedFlows::Text(t) => (t.flow_count, t.group_count, t.save_ms),
        };
        FlowTally {
            flows: flows as u64,
            groups: groups as u64,
            elapsed_ms,
        }
    }

    /// Which form the save took, for the logs: `binary`, or `text` (the fallback, or an
    /// earlier release's).
    pub fn form(&self) -> &'static str {
        match self {
            SavedFlows::Table(_) => "binary",
            SavedFlows::Text(_) => "text",
        }
    }

    fn set_save_ms(&mut self, ms: u64) {
        match self {
            SavedFlows::Table(t) => t.save_ms = ms,
            SavedFlows::Text(t) => t.save_ms = ms,
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

/// Removes the saved table's files from the run dir once nothing will restore them (the
/// takeover that read them has settled): tens of MiB at 100,000 rules, on the host's tmpfs.
/// Only the names a save writes there, never a path from a predecessor's answer; one that
/// cannot be removed is a warning.
pub fn forget_saved(l: &Layout) {
    let [flows, groups] = text::paths(l);
    for path in [binary::table_path(l), flows, groups] {
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::debug!(path = %path.display(), "removed the saved table"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(path = %path.display(), "cannot remove the saved table: {e}"),
        }
    }
}

/// br-int's meters, groups and flows, saved in the run dir for the next instance: in binary,
/// or as `ovs-ofctl` text if the binary save cannot be made; either is checked whole against
/// the switch's own count, or the save fails and leaves no file behind. A binary save that
/// is short is not retried as text: the table was listed whole and the count says it is not,
/// and the caller must hear that loudly, not get a second, slower attempt at the same table.
pub async fn save(reaper: &Reaper, l: &Layout) -> Result<SavedFlows, FlowsError> {
    let t0 = std::time::Instant::now();
    let table = binary::table_path(l);
    let deadline = tokio::time::Instant::now() + OFCTL_DEADLINE;
    let saved = match binary::save(&l.mgmt_sock(BRIDGE), &table, deadline).await {
        Ok(t) => Ok(SavedFlows::Table(t)),
        Err(e @ FlowsError::Incomplete { .. }) => Err(e),
        Err(e) => {
            tracing::warn!(
                "cannot save br-int's table in binary: {e}; saving it as ovs-ofctl text"
            );
            text::save(reaper, l).await.map(SavedFlows::Text)
        }
    };
    match saved {
        Ok(mut s) => {
            s.set_save_ms(tally::elapsed_ms(t0));
            Ok(s)
        }
        Err(e) => {
            // No earlier handover's table may pass for this one's.
            let _ = std::fs::remove_file(&table);
            Err(e)
        }
    }
}

/// Whether the flows a predecessor saved can be restored: the file holds exactly as many flows
/// (and, for a binary save, groups and meters) as it counted, and some. Otherwise the caller
/// keeps the datapath's flows instead of restoring a partial or empty table (which, unchanged
/// for a moment, would pass for ovn-controller's complete one and end flow-restore-wait early).
pub fn usable(saved: &SavedFlows) -> Result<(), FlowsError> {
    match saved {
        SavedFlows::Text(t) => text::usable(t),
        SavedFlows::Table(t) => binary::read_table(t).map(|_| ()),
    }
}

/// The saved table back into br-int (groups, then flows in one bundle; a binary save's meters
/// first); what went in, and how long it took (the bundle is all or nothing: on success every
/// saved flow is in).
pub async fn restore(
    reaper: &Reaper,
    l: &Layout,
    saved: &SavedFlows,
) -> Result<FlowTally, FlowsError> {
    match saved {
        SavedFlows::Text(t) => text::restore(reaper, l, t).await,
        SavedFlows::Table(t) => {
            let t0 = std::time::Instant::now();
            let bytes = binary::read_table(t)?;
            let deadline = tokio::time::Instant::now() + OFCTL_DEADLINE;
            let c = binary::restore(&l.mgmt_sock(BRIDGE), &t.table, &bytes, deadline).await?;
            Ok(FlowTally::since(t0, c.flows, c.groups))
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
mod binary_tests;
#[cfg(test)]
mod tests;

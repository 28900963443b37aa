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
    Ok(ofctl_to(reaper, args, None).await?.stdout)
}

/// Runs `ovs-ofctl ARGS` under [`OFCTL_DEADLINE`], its stdout kept (up to the reaper's cap) or
/// written to `file`; a failed run is an error naming its arguments and stderr.
async fn ofctl_to(
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

fn target(l: &Layout) -> String {
    format!("unix:{}", l.mgmt_sock(BRIDGE).display())
}

/// br-int's groups and flows, dumped to files in the run dir.
///
/// The dumps go straight to files (tens of MiB at 100,000 flows: a tool's kept output is capped
/// at 1 MiB, which cut a saved table mid-line), then are filtered line by line into the files
/// `ovs-ofctl add-*` reads.
pub async fn save(reaper: &Reaper, l: &Layout) -> Result<SavedFlows, FlowsError> {
    let t = target(l);
    let flows = l.ovs_rundir.join(format!("{BRIDGE}.flows.takeover"));
    let groups = l.ovs_rundir.join(format!("{BRIDGE}.groups.takeover"));
    dump_to(
        reaper,
        &["-O", OF, "dump-groups", "--no-names", &t],
        &groups,
    )
    .await?;
    let dump = ["-O", OF, "dump-flows", "--no-names", "--no-stats", &t];
    let flow_count = dump_to(reaper, &dump, &flows).await?;
    Ok(SavedFlows {
        flows,
        groups,
        flow_count,
    })
}

/// Runs `ovs-ofctl ARGS` into `path` (through `PATH.raw`), keeping only the entries of the
/// listing; returns how many.
async fn dump_to(reaper: &Reaper, args: &[&str], path: &Path) -> Result<usize, FlowsError> {
    let raw = path.with_extension("takeover.raw");
    let io = |p: &Path| {
        let path = p.to_path_buf();
        move |source| FlowsError::Write { path, source }
    };
    let file = std::fs::File::create(&raw).map_err(io(&raw))?;
    let kept = match ofctl_to(reaper, args, Some(file)).await {
        Ok(_) => keep_entries(&raw, path).map_err(io(path)),
        Err(e) => Err(e),
    };
    let _ = std::fs::remove_file(&raw);
    kept
}

/// Copies the entries of the listing in `raw` to `path`, line by line; returns how many.
fn keep_entries(raw: &Path, path: &Path) -> std::io::Result<usize> {
    use std::io::{BufRead, Write};
    let reader = std::io::BufReader::new(std::fs::File::open(raw)?);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut n = 0;
    for line in reader.lines() {
        let line = line?;
        if is_entry(&line) {
            writeln!(out, "{line}")?;
            n += 1;
        }
    }
    out.flush()?;
    Ok(n)
}

/// An entry of an `ovs-ofctl dump-*` listing: indented and not blank (reply headers are not).
fn is_entry(line: &str) -> bool {
    line.starts_with(' ') && !line.trim().is_empty()
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
    fn entries_drop_reply_headers_and_blank_lines_whatever_the_size() {
        let dir = tempfile::tempdir().unwrap();
        let (raw, kept) = (dir.path().join("raw"), dir.path().join("kept"));
        let listing = "OFPST_GROUP_DESC reply (OF1.5) (xid=0x2):\n group_id=1,type=select,bucket=bucket_id:0,actions=drop\n\n";
        std::fs::write(&raw, listing).unwrap();
        assert_eq!(keep_entries(&raw, &kept).unwrap(), 1);
        assert_eq!(
            std::fs::read_to_string(&kept).unwrap(),
            " group_id=1,type=select,bucket=bucket_id:0,actions=drop\n"
        );
        // 20,000 rules (~1.9 MiB) with a reply header every 1,000, as a multipart dump prints
        // them: all kept, none cut (a tool's kept output is capped at 1 MiB).
        let mut big = String::new();
        for i in 0..20_000 {
            if i % 1_000 == 0 {
                big.push_str("OFPST_FLOW reply (OF1.5) (xid=0x2):\n");
            }
            big.push_str(&format!(
                " table=37, priority=100,reg15=0x{i:x},metadata=0x1 actions=load:0x1->NXM_NX_REG13[],resubmit(,38)\n"
            ));
        }
        assert!(big.len() > 1 << 20, "{}", big.len());
        std::fs::write(&raw, &big).unwrap();
        assert_eq!(keep_entries(&raw, &kept).unwrap(), 20_000);
        let text = std::fs::read_to_string(&kept).unwrap();
        assert_eq!(text.lines().count(), 20_000);
        assert!(text.lines().all(|l| l.ends_with("resubmit(,38)")));
    }
}

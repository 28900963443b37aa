//! br-int's table as `ovs-ofctl` text: the save of earlier releases, still restored when an
//! instance of such a release hands the node over to this one, and this release's fallback
//! when the table cannot be saved in binary (our session fails, or the table is past the
//! binary file's cap). It too speaks OpenFlow 1.5 (`-O OpenFlow15`): a bridge restricted below
//! that is saved by neither, and its successor keeps the datapath's flows. Like the binary
//! save, it carries br-int's Geneve TLV map ([`super::text_tlv`]), added before the flows.
//!
//! Invariants: every `ovs-ofctl` run is bounded (`OFCTL_DEADLINE`) and killed past it; files
//! are written only in the run dir, under names derived from the bridge's; [`TextSave`]
//! serializes exactly as earlier releases' `SavedFlows` (the handover answer's `saved`; the map
//! only when there is one, which they ignore), so either side of a handover between this
//! release and one of those reads the other's.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::paths::Layout;
use crate::dataplane::tally::FlowTally;
use crate::process::Reaper;
use crate::settings::BRIDGE;

use super::text_tlv::{self, TlvMap};
use super::{flow_count, ofctl, ofctl_to, target, FlowsError, OF};

/// The paths of a text save and what it counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextSave {
    pub flows: PathBuf,
    pub groups: PathBuf,
    pub flow_count: usize,
    /// Groups saved (absent from an older release's answer: 0).
    #[serde(default)]
    pub group_count: usize,
    /// How long the save took, ms (absent from an older release's answer: 0).
    #[serde(default)]
    pub save_ms: u64,
    /// br-int's Geneve TLV map, added before the flows (absent from an older release's
    /// answer, and left out when empty: an older release reading ours ignores it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tlv_maps: Vec<TlvMap>,
}

/// The files a text save writes: flows, groups.
pub fn paths(l: &Layout) -> [PathBuf; 2] {
    let at = |what: &str| l.ovs_rundir.join(format!("{BRIDGE}.{what}.takeover"));
    [at("flows"), at("groups")]
}

/// br-int's groups and flows, dumped to files in the run dir, and checked whole.
///
/// The dumps go straight to files (tens of MiB at 100,000 flows: a tool's kept output is capped
/// at 1 MiB, which cut a saved table mid-line), then are filtered line by line into the files
/// `ovs-ofctl add-*` reads. `ovs-ofctl` exits 0 when its stdout cannot be written (a full
/// disk: checked, `ovs-ofctl --version > /dev/full` exits 0), so a listing must start with its
/// reply header and end with a whole line, and the flows saved must be as many as
/// `dump-aggregate` counts in br-int before or after the dump, or the save fails, naming the
/// file and both counts, and leaves no file behind.
pub async fn save(reaper: &Reaper, l: &Layout) -> Result<TextSave, FlowsError> {
    let [flows, groups] = paths(l);
    let saved = save_to(reaper, l, &flows, &groups).await;
    if saved.is_err() {
        for f in [&flows, &groups] {
            let _ = std::fs::remove_file(f);
        }
    }
    saved
}

async fn save_to(
    reaper: &Reaper,
    l: &Layout,
    flows: &Path,
    groups: &Path,
) -> Result<TextSave, FlowsError> {
    let t = target(l);
    // Flows first: their count is the strongest check, and on a disk full from the first
    // byte it is what names the loss.
    let before = flow_count(reaper, l).await?;
    // `--no-stats` also drops the reply header: the counts vouch for this listing.
    let dump = ["-O", OF, "dump-flows", "--no-names", "--no-stats", &t];
    let kept = dump_to(reaper, &dump, flows, Listing::Bare).await?;
    let after = flow_count(reaper, l).await?;
    // A table that changes during the dump may give either count; a cut listing gives fewer.
    if kept.cut || kept.entries < before.min(after) {
        return Err(FlowsError::Incomplete {
            path: flows.to_path_buf(),
            saved: kept.entries,
            before,
            after,
            cut: if kept.cut { ", its last line cut" } else { "" },
            counter: "ovs-ofctl dump-aggregate",
        });
    }
    let dump = ["-O", OF, "dump-groups", "--no-names", &t];
    let kept_groups = dump_to(reaper, &dump, groups, Listing::Headed).await?;
    if kept_groups.cut {
        return Err(FlowsError::Truncated {
            path: groups.to_path_buf(),
            why: "cut mid-line",
        });
    }
    Ok(TextSave {
        flows: flows.to_path_buf(),
        groups: groups.to_path_buf(),
        flow_count: kept.entries,
        group_count: kept_groups.entries,
        save_ms: 0,
        tlv_maps: tlv_maps(reaper, &t).await.unwrap_or_else(|e| {
            tracing::warn!(
                "cannot save br-int's TLV map: {e}; flows using tun_metadata will not restore"
            );
            Vec::new()
        }),
    })
}

/// The switch's Geneve TLV map (`dump-tlv-map`).
async fn tlv_maps(reaper: &Reaper, target: &str) -> Result<Vec<TlvMap>, FlowsError> {
    let listing = ofctl(reaper, &["-O", OF, "dump-tlv-map", target]).await?;
    text_tlv::parse(&listing).map_err(|why| FlowsError::TlvListing { why })
}

/// Whether a listing starts with a reply header (`OFPST_GROUP_DESC reply (OF1.5) (xid=0x2):`);
/// `dump-flows --no-stats` prints none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Listing {
    Headed,
    Bare,
}

/// What [`keep_entries`] kept of a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Kept {
    /// Whole entries written.
    pub entries: usize,
    /// The listing ended mid-line (its writer stopped: a full disk); that line was dropped.
    pub cut: bool,
}

/// Runs `ovs-ofctl ARGS` into `path` (through `PATH.raw`), keeping only the entries of the
/// listing.
async fn dump_to(
    reaper: &Reaper,
    args: &[&str],
    path: &Path,
    listing: Listing,
) -> Result<Kept, FlowsError> {
    let raw = path.with_extension("takeover.raw");
    let io = |p: &Path| {
        let path = p.to_path_buf();
        move |source| FlowsError::Write { path, source }
    };
    let file = std::fs::File::create(&raw).map_err(io(&raw))?;
    let kept = match ofctl_to(reaper, args, Some(file)).await {
        Ok(_) => keep_entries(&raw, path, listing),
        Err(e) => Err(e),
    };
    let _ = std::fs::remove_file(&raw);
    kept
}

/// Copies the entries of the listing in `raw` to `path`, line by line, and makes them durable,
/// up to a line cut short. A listing without the reply header it must have is an error.
pub(super) fn keep_entries(raw: &Path, path: &Path, listing: Listing) -> Result<Kept, FlowsError> {
    use std::io::{BufRead, Write};
    let (r, w) = (raw.to_path_buf(), path.to_path_buf());
    let read = |source| FlowsError::Write {
        path: r.clone(),
        source,
    };
    let write = |source| FlowsError::Write {
        path: w.clone(),
        source,
    };
    let truncated = |why| FlowsError::Truncated {
        path: path.to_path_buf(),
        why,
    };
    let mut reader = std::io::BufReader::new(std::fs::File::open(raw).map_err(read)?);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(write)?);
    let (mut n, mut first, mut line, mut cut) = (0, true, String::new(), false);
    loop {
        line.clear();
        if reader.read_line(&mut line).map_err(read)? == 0 {
            break;
        }
        if !line.ends_with('\n') {
            cut = true;
            break;
        }
        if std::mem::take(&mut first) && listing == Listing::Headed && !is_reply_header(&line) {
            return Err(truncated("missing its reply header"));
        }
        if is_entry(&line) {
            out.write_all(line.as_bytes()).map_err(write)?;
            n += 1;
        }
    }
    if first && listing == Listing::Headed {
        return Err(truncated("empty"));
    }
    let file = out.into_inner().map_err(|e| write(e.into_error()))?;
    file.sync_all().map_err(write)?;
    Ok(Kept { entries: n, cut })
}

/// The first line of every `ovs-ofctl dump-*` listing, e.g. `OFPST_FLOW reply (OF1.5)
/// (xid=0x2):`; not indented, unlike its entries.
fn is_reply_header(line: &str) -> bool {
    !line.starts_with(' ') && line.contains(" reply")
}

/// An entry of an `ovs-ofctl dump-*` listing: indented and not blank (reply headers are not).
pub(super) fn is_entry(line: &str) -> bool {
    line.starts_with(' ') && !line.trim().is_empty()
}

/// Whether the flows a predecessor saved can be restored: the file holds exactly as many flows
/// as it counted, and some. Otherwise the caller keeps the datapath's flows instead of
/// restoring a partial or empty table (which, unchanged for a moment, would pass for
/// ovn-controller's complete one and end flow-restore-wait early).
pub fn usable(saved: &TextSave) -> Result<(), FlowsError> {
    use std::io::BufRead;
    let path = saved.flows.clone();
    let read = |source| FlowsError::Write {
        path: path.clone(),
        source,
    };
    if saved.flow_count == 0 {
        return Err(FlowsError::NothingSaved { path });
    }
    let file = crate::nodefile::open(&path, u64::MAX, crate::nodefile::Links::Refuse)
        .map_err(|e| read(std::io::Error::other(e)))?;
    let mut lines = 0;
    for line in std::io::BufReader::new(file).lines() {
        lines += usize::from(is_entry(&line.map_err(read)?));
    }
    if lines != saved.flow_count {
        return Err(FlowsError::SavedMismatch {
            path,
            lines,
            counted: saved.flow_count,
        });
    }
    Ok(())
}

/// The saved TLV map (what the switch lacks of it), groups, then flows (in one bundle), back
/// into br-int; what went in, and how long it took (the bundle is all or nothing: on success
/// every saved flow is in).
pub async fn restore(
    reaper: &Reaper,
    l: &Layout,
    saved: &TextSave,
) -> Result<FlowTally, FlowsError> {
    let t0 = std::time::Instant::now();
    let t = target(l);
    if !saved.tlv_maps.is_empty() {
        let current = tlv_maps(reaper, &t).await?;
        if let Some(add) = text_tlv::missing(&saved.tlv_maps, &current) {
            ofctl(reaper, &["-O", OF, "add-tlv-map", &t, &add]).await?;
        }
    }
    let has_groups = std::fs::metadata(&saved.groups).is_ok_and(|m| m.len() > 1);
    if has_groups {
        let g = saved.groups.display().to_string();
        ofctl(reaper, &["-O", OF, "add-groups", &t, &g]).await?;
    }
    let f = saved.flows.display().to_string();
    ofctl(reaper, &["-O", OF, "--bundle", "add-flows", &t, &f]).await?;
    let groups = if has_groups { saved.group_count } else { 0 };
    Ok(FlowTally::since(t0, saved.flow_count, groups))
}

//! br-int's table saved as OpenFlow messages: the file format (pure: [`encode`], [`decode`])
//! and the save and restore over our own OpenFlow session (no `ovs-ofctl` text to print and
//! parse again: at 100,000 rules that was most of a takeover's save and restore).
//!
//! The file: a 24-byte header — magic `OOSOFTBL`, format (u16), OpenFlow version (u8), the
//! count of TLV map mods (u8: 0 in format 1, at least 1 in format 2), then the counts of
//! meters, groups and flows (u32 each, big-endian) — followed by exactly that many whole
//! OpenFlow messages in that order: NXT_TLV_TABLE_MODs, METER_MODs, GROUP_MODs, FLOW_MODs,
//! each with its own 8-byte header and length. A table whose switch maps Geneve options (any
//! node with remote chassis: OVN's `tun_metadata0`) is format 2, and its map is restored
//! before the flows that use it; one without is format 1, as earlier releases read it.
//!
//! Invariants: the file is written whole or not at all (a temp name, fsync, rename, in the run
//! dir); reading it back never panics: a wrong magic, format or version, a count that does not
//! match the messages, a message of another type, a length that runs past the end, or bytes
//! after the last message is an error naming the file; the file is read under a size cap, and
//! a table past it is never saved in binary (the caller saves it as text instead), so every
//! binary save a successor is handed can be read back.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::paths::Layout;
use crate::ovs::openflow::table::{Listing, TABLE_VERSION};
use crate::ovs::openflow::{tlv, Header, Session, OFP_HEADER_LEN};
use crate::settings::BRIDGE;

use super::FlowsError;

/// Where a binary save is and what it counted (the handover answer's `saved`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSave {
    pub table: PathBuf,
    pub flow_count: usize,
    pub group_count: usize,
    pub meter_count: usize,
    /// How long the save took, ms.
    #[serde(default)]
    pub save_ms: u64,
}

pub fn table_path(l: &Layout) -> PathBuf {
    l.ovs_rundir.join(format!("{BRIDGE}.table.takeover"))
}

pub const MAGIC: &[u8; 8] = b"OOSOFTBL";
/// Format 1 carries no TLV map; format 2 does.
pub const FORMAT: u16 = 1;
pub const FORMAT_TLV: u16 = 2;
pub const HEADER_LEN: usize = 24;
/// A saved table is read whole: 100,000 OVN rules take ~20 MiB; this is room for ten times
/// that and a bound on what a planted file can make us allocate.
pub const MAX_FILE: u64 = 256 << 20;

/// A saved table: the mods that recreate it, each a whole OpenFlow message.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Table<'a> {
    /// NXT_TLV_TABLE_MODs: the Geneve option map the flows' `tun_metadata` fields need.
    pub tlv: Vec<&'a [u8]>,
    pub meters: Vec<&'a [u8]>,
    pub groups: Vec<&'a [u8]>,
    pub flows: Vec<&'a [u8]>,
}

/// The counts a file's header announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub tlv: usize,
    pub meters: usize,
    pub groups: usize,
    pub flows: usize,
}

/// The file for `counts` whose messages are `body` (already in order).
pub fn encode(counts: Counts, body: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(HEADER_LEN + body.len());
    f.extend_from_slice(MAGIC);
    let format = if counts.tlv == 0 { FORMAT } else { FORMAT_TLV };
    f.extend_from_slice(&format.to_be_bytes());
    f.extend_from_slice(&[TABLE_VERSION, counts.tlv.min(255) as u8]);
    for n in [counts.meters, counts.groups, counts.flows] {
        f.extend_from_slice(&(n as u32).to_be_bytes());
    }
    f.extend_from_slice(body);
    f
}

/// Whether `bytes` start like a binary save (the magic), so a text save of an older release
/// goes to `ovs-ofctl` instead.
pub fn is_binary(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// The table in a file's bytes, checked whole (see the module invariants).
pub fn decode(bytes: &[u8]) -> Result<Table<'_>, String> {
    let header = bytes.get(..HEADER_LEN).ok_or_else(|| {
        format!(
            "{} bytes, shorter than the {HEADER_LEN}-byte header",
            bytes.len()
        )
    })?;
    if !is_binary(header) {
        return Err("not a saved table (no OOSOFTBL magic)".into());
    }
    let format = u16::from_be_bytes([header[8], header[9]]);
    let tlv_mods = usize::from(header[11]);
    let known = matches!((format, tlv_mods), (FORMAT, 0) | (FORMAT_TLV, 1..));
    if !known || header[10] != TABLE_VERSION {
        return Err(format!(
            "format {format} with {tlv_mods} TLV map mods, OpenFlow version {:#04x}; this release reads format {FORMAT} (none) and {FORMAT_TLV} (some), version {TABLE_VERSION:#04x}",
            header[10]
        ));
    }
    let count = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]]) as usize
    };
    let mut rest = &bytes[HEADER_LEN..];
    let mut table = Table::default();
    for i in 0..tlv_mods {
        let len = rest
            .get(2..4)
            .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
            .ok_or_else(|| format!("ends at TLV map mod {i} of {tlv_mods}: truncated"))?;
        let msg = rest
            .get(..len)
            .filter(|m| len >= OFP_HEADER_LEN && m[0] == TABLE_VERSION && tlv::is_mod(m))
            .ok_or_else(|| format!("TLV map mod {i} of {tlv_mods}: not one, or truncated"))?;
        table.tlv.push(msg);
        rest = &rest[len..];
    }
    let sections = [
        (Listing::Meters, count(12), &mut table.meters),
        (Listing::Groups, count(16), &mut table.groups),
        (Listing::Flows, count(20), &mut table.flows),
    ];
    for (listing, n, into) in sections {
        for i in 0..n {
            let what = listing.name();
            let raw: &[u8; OFP_HEADER_LEN] = rest
                .get(..OFP_HEADER_LEN)
                .and_then(|h| h.try_into().ok())
                .ok_or_else(|| format!("ends at {what} {i} of {n}: truncated"))?;
            let h = Header::decode(raw);
            let len = usize::from(h.length);
            if h.version != TABLE_VERSION || h.msg_type != listing.mod_type() {
                return Err(format!(
                    "{what} {i} of {n}: message type {} version {:#04x}, not the mod expected",
                    h.msg_type, h.version
                ));
            }
            if len < OFP_HEADER_LEN || len > rest.len() {
                return Err(format!(
                    "{what} {i} of {n}: length {len} runs past the end: truncated"
                ));
            }
            into.push(&rest[..len]);
            rest = &rest[len..];
        }
    }
    if !rest.is_empty() {
        return Err(format!("{} bytes after the last flow", rest.len()));
    }
    Ok(table)
}

/// br-int's meters, groups and flows through `mgmt`, into `path` (atomically, durable), checked
/// whole: the flows saved must be as many as the switch counts before or after the listing
/// (a table that changes meanwhile may give either; a cut listing gives fewer).
pub async fn save(
    mgmt: &Path,
    path: &Path,
    deadline: tokio::time::Instant,
) -> Result<TableSave, FlowsError> {
    let of = |source| FlowsError::OpenFlow {
        path: mgmt.to_path_buf(),
        source: Box::new(source),
    };
    let mut s = Session::open(mgmt, deadline).await.map_err(of)?;
    let mut body = Vec::new();
    // First: a new vswitchd refuses every flow that uses a field its map lacks.
    let maps = s.tlv_maps().await.map_err(of)?;
    let tlv_mods = usize::from(!maps.is_empty());
    if tlv_mods > 0 {
        let add = tlv::add(&maps).map_err(|e| FlowsError::Unreadable {
            path: mgmt.to_path_buf(),
            why: e.to_string(),
        })?;
        body.extend_from_slice(&add);
    }
    let meters = s.list(Listing::Meters, &mut body).await.map_err(of)?;
    let groups = s.list(Listing::Groups, &mut body).await.map_err(of)?;
    let before = s.flow_count().await.map_err(of)? as usize;
    let flows = s.list(Listing::Flows, &mut body).await.map_err(of)?;
    let after = s.flow_count().await.map_err(of)? as usize;
    if flows < before.min(after) {
        return Err(FlowsError::Incomplete {
            path: path.to_path_buf(),
            saved: flows,
            before,
            after,
            cut: "",
            counter: "aggregate request",
        });
    }
    if (HEADER_LEN + body.len()) as u64 > MAX_FILE {
        return Err(FlowsError::Unreadable {
            path: path.to_path_buf(),
            why: format!(
                "{} bytes of mods, past the {MAX_FILE}-byte cap a successor reads",
                body.len()
            ),
        });
    }
    let counts = Counts {
        tlv: tlv_mods,
        meters,
        groups,
        flows,
    };
    let file = encode(counts, &body);
    drop(body);
    crate::host::fsguard::write_atomic(path, &file, 0o600, true).map_err(|e| {
        FlowsError::Write {
            path: path.to_path_buf(),
            source: std::io::Error::other(e),
        }
    })?;
    Ok(TableSave {
        table: path.to_path_buf(),
        flow_count: flows,
        group_count: groups,
        meter_count: meters,
        save_ms: 0,
    })
}

/// The saved table's bytes, decoded whole and holding exactly the counts handed over, and
/// some flows.
pub fn read_table(saved: &TableSave) -> Result<Vec<u8>, FlowsError> {
    let path = &saved.table;
    if saved.flow_count == 0 {
        return Err(FlowsError::NothingSaved { path: path.clone() });
    }
    let bytes =
        crate::nodefile::read(path, MAX_FILE, crate::nodefile::Links::Refuse).map_err(|e| {
            FlowsError::Write {
                path: path.clone(),
                source: e.into_io(),
            }
        })?;
    let unreadable = |why| FlowsError::Unreadable {
        path: path.clone(),
        why,
    };
    let t = decode(&bytes).map_err(unreadable)?;
    let got = (t.flows.len(), t.groups.len(), t.meters.len());
    let want = (saved.flow_count, saved.group_count, saved.meter_count);
    if got != want {
        return Err(unreadable(format!(
            "holds {} flows, {} groups, {} meters; the previous instance saved {}, {}, {}",
            got.0, got.1, got.2, want.0, want.1, want.2
        )));
    }
    Ok(bytes)
}

/// The saved table in `bytes` (read from `path`) back into the switch at `mgmt`, checked
/// there: the switch must count at least the flows sent once the bundle is committed, so the
/// tally the metrics show is what br-int holds, not merely what was sent (restored before
/// ovn-controller starts, br-int holds nothing else to be counted instead).
pub async fn restore(
    mgmt: &Path,
    path: &Path,
    bytes: &[u8],
    deadline: tokio::time::Instant,
) -> Result<Counts, FlowsError> {
    let table = decode(bytes).map_err(|why| FlowsError::Unreadable {
        path: path.to_path_buf(),
        why,
    })?;
    let of = |source| FlowsError::OpenFlow {
        path: mgmt.to_path_buf(),
        source: Box::new(source),
    };
    let mut s = Session::open(mgmt, deadline).await.map_err(of)?;
    // Last, so that it is in br-int exactly when the whole table is (`mark`).
    let mark = super::mark::flow_mod();
    let bundled: Vec<&[u8]> = (table.groups.iter().chain(&table.flows).copied())
        .chain([mark.as_slice()])
        .collect();
    // A switch that already maps the same options (an ovn-controller connected first) would
    // refuse the same mapping again (NXTTMFC_ALREADY_MAPPED).
    let current = match table.tlv.is_empty() {
        true => Vec::new(),
        false => s.tlv_maps().await.map_err(of)?,
    };
    let tlv = table.tlv.iter().filter(|m| !tlv::maps_in(m, &current));
    let before: Vec<&[u8]> = tlv.chain(&table.meters).copied().collect();
    s.install(&before, &bundled).await.map_err(of)?;
    let holds = s.flow_count().await.map_err(of)? as usize;
    if holds < table.flows.len() {
        return Err(FlowsError::NotRestored {
            path: mgmt.to_path_buf(),
            sent: table.flows.len(),
            holds,
        });
    }
    Ok(Counts {
        tlv: table.tlv.len(),
        meters: table.meters.len(),
        groups: table.groups.len(),
        flows: table.flows.len(),
    })
}

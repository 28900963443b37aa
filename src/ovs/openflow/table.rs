//! A switch's OpenFlow state as bytes: the OpenFlow 1.5 multipart requests that list flows,
//! groups and meters, their reply entries turned into the FLOW_MOD / GROUP_MOD / METER_MOD ADD
//! messages that recreate them, and the bundle messages that carry those mods.
//!
//! Matches, instructions, buckets and bands are carried as opaque bytes: OVN uses Nicira
//! extension fields and actions we never need to understand, and the switch that produced
//! them checks them again when they come back. ovs-vswitchd (3.1) answers an OpenFlow 1.5 flow
//! listing with `ofp15_flow_desc` entries (statistics as OXS fields), which is what is parsed
//! here (checked against its bytes: `tests::FLOW_DESC`).
//!
//! Invariant: pure functions of bytes; every length read from the peer is checked against the
//! bytes there before it is used, so a hostile or truncated reply is an error, never a panic.

use super::wire::{Header, OFP_HEADER_LEN};

/// The only version the table is read and written in: bundles need 1.4+, and 1.5 is what
/// `ovs-ofctl -O OpenFlow15` and ovn-controller use, so group properties (`selection_method`)
/// are encoded the way OVN installed them.
pub const TABLE_VERSION: u8 = 0x06;

pub const OFPT_BARRIER_REQUEST: u8 = 20;
pub const OFPT_BARRIER_REPLY: u8 = 21;
pub const OFPT_FLOW_MOD: u8 = 14;
pub const OFPT_GROUP_MOD: u8 = 15;
pub const OFPT_METER_MOD: u8 = 29;
pub const OFPT_MULTIPART_REQUEST: u8 = 18;
pub const OFPT_MULTIPART_REPLY: u8 = 19;
pub const OFPT_BUNDLE_CONTROL: u8 = 33;
pub const OFPT_BUNDLE_ADD_MESSAGE: u8 = 34;

/// `ofp_bundle_ctrl_type`.
pub const OFPBCT_OPEN_REQUEST: u16 = 0;
pub const OFPBCT_OPEN_REPLY: u16 = 1;
pub const OFPBCT_COMMIT_REQUEST: u16 = 4;
pub const OFPBCT_COMMIT_REPLY: u16 = 5;
/// `OFPBF_ATOMIC | OFPBF_ORDERED`, as `ovs-ofctl --bundle` asks.
pub const BUNDLE_FLAGS: u16 = 0x3;

const OFPMPF_REPLY_MORE: u16 = 1;
/// Bytes of a multipart message after the OpenFlow header: type, flags, pad.
const MP_HEADER: usize = 8;
const OFP_NO_BUFFER: u32 = 0xffff_ffff;
const OFPP_ANY: u32 = 0xffff_ffff;
const OFPG_ANY: u32 = 0xffff_ffff;
const OFPG_ALL: u32 = 0xffff_fffc;
const OFPG15_BUCKET_ALL: u32 = 0xffff_ffff;
const OFPM_ALL: u32 = 0xffff_ffff;

/// What a multipart request lists, by `ofp_multipart_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Aggregate = 2,
    Flows = 1,
    Groups = 7,
    Meters = 10,
}

impl Listing {
    pub fn name(self) -> &'static str {
        match self {
            Listing::Aggregate => "aggregate",
            Listing::Flows => "flow",
            Listing::Groups => "group",
            Listing::Meters => "meter",
        }
    }

    /// The mod message type that recreates one entry of this listing.
    pub fn mod_type(self) -> u8 {
        match self {
            Listing::Flows | Listing::Aggregate => OFPT_FLOW_MOD,
            Listing::Groups => OFPT_GROUP_MOD,
            Listing::Meters => OFPT_METER_MOD,
        }
    }
}

/// What is wrong with bytes the switch (or a saved file) gave us.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    #[error("{what} entry truncated: {len} bytes where at least {need} are needed")]
    Short {
        what: &'static str,
        len: usize,
        need: usize,
    },
    #[error("{what} entry: field length {field} does not fit the entry's {len} bytes")]
    BadLength {
        what: &'static str,
        field: usize,
        len: usize,
    },
    #[error("{what}: the mod would be {len} bytes, beyond OpenFlow's 65535")]
    TooLong { what: &'static str, len: usize },
    #[error("multipart reply: type {got}, expected {want}")]
    WrongListing { got: u16, want: u16 },
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn pad8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// A whole message: `header` with its length set, then `parts`.
pub(super) fn message(msg_type: u8, xid: u32, parts: &[&[u8]]) -> Result<Vec<u8>, TableError> {
    let len = OFP_HEADER_LEN + parts.iter().map(|p| p.len()).sum::<usize>();
    let Ok(length) = u16::try_from(len) else {
        return Err(TableError::TooLong {
            what: "message",
            len,
        });
    };
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&Header::new(TABLE_VERSION, msg_type, length, xid).encode());
    for p in parts {
        m.extend_from_slice(p);
    }
    Ok(m)
}

/// The request listing every flow, group or meter of the switch.
pub fn multipart_request(listing: Listing, xid: u32) -> Vec<u8> {
    let mut body = Vec::with_capacity(48);
    body.extend_from_slice(&(listing as u16).to_be_bytes());
    body.extend_from_slice(&[0; 6]);
    match listing {
        Listing::Flows | Listing::Aggregate => {
            // table_id OFPTT_ALL, pad, out_port, out_group, pad, cookie, cookie_mask, and an
            // empty OXM match (type 1, length 4, padded to 8).
            body.extend_from_slice(&[0xff, 0, 0, 0]);
            body.extend_from_slice(&OFPP_ANY.to_be_bytes());
            body.extend_from_slice(&OFPG_ANY.to_be_bytes());
            body.extend_from_slice(&[0; 4 + 16]);
            body.extend_from_slice(&[0, 1, 0, 4, 0, 0, 0, 0]);
        }
        Listing::Groups => {
            body.extend_from_slice(&OFPG_ALL.to_be_bytes());
            body.extend_from_slice(&[0; 4]);
        }
        Listing::Meters => {
            body.extend_from_slice(&OFPM_ALL.to_be_bytes());
            body.extend_from_slice(&[0; 4]);
        }
    }
    message(OFPT_MULTIPART_REQUEST, xid, &[&body]).expect("a request is a few dozen bytes")
}

/// One multipart reply's body (after the OpenFlow header): its entries, and whether more
/// replies follow.
pub fn reply_entries(listing: Listing, body: &[u8]) -> Result<(Vec<&[u8]>, bool), TableError> {
    if body.len() < MP_HEADER {
        let (len, need) = (body.len(), MP_HEADER);
        return Err(TableError::Short {
            what: "multipart reply",
            len,
            need,
        });
    }
    let got = be16(body, 0);
    if got != listing as u16 {
        let want = listing as u16;
        return Err(TableError::WrongListing { got, want });
    }
    let more = be16(body, 2) & OFPMPF_REPLY_MORE != 0;
    let mut rest = &body[MP_HEADER..];
    let mut entries = Vec::new();
    let what = listing.name();
    while !rest.is_empty() {
        if rest.len() < 2 {
            let len = rest.len();
            return Err(TableError::Short { what, len, need: 2 });
        }
        let len = usize::from(be16(rest, 0));
        if len < 2 || len > rest.len() {
            let field = len;
            let len = rest.len();
            return Err(TableError::BadLength { what, field, len });
        }
        entries.push(&rest[..len]);
        rest = &rest[len..];
    }
    Ok((entries, more))
}

/// `flow_count` of an aggregate reply's body (after the OpenFlow header): in OpenFlow 1.5 an
/// `ofp_stats` of OXS fields (class 0x8002, `OFPXST_OFB_FLOW_COUNT` = 3, 4 bytes).
pub fn aggregate_flow_count(body: &[u8]) -> Result<u32, TableError> {
    let what = "aggregate reply";
    if body.len() < MP_HEADER + 4 {
        let (len, need) = (body.len(), MP_HEADER + 4);
        return Err(TableError::Short { what, len, need });
    }
    let got = be16(body, 0);
    if got != Listing::Aggregate as u16 {
        let want = Listing::Aggregate as u16;
        return Err(TableError::WrongListing { got, want });
    }
    let stats = &body[MP_HEADER..];
    let field = usize::from(be16(stats, 2));
    if field < 4 || field > stats.len() {
        let len = stats.len();
        return Err(TableError::BadLength { what, field, len });
    }
    let mut rest = &stats[4..field];
    while rest.len() >= 4 {
        let (class, kind, len) = (be16(rest, 0), rest[2] >> 1, usize::from(rest[3]));
        let value = rest.get(4..4 + len).ok_or(TableError::BadLength {
            what,
            field: len,
            len: rest.len(),
        })?;
        if class == 0x8002 && kind == 3 && len == 4 {
            return Ok(u32::from_be_bytes([value[0], value[1], value[2], value[3]]));
        }
        rest = &rest[4 + len..];
    }
    Err(TableError::Short {
        what: "aggregate reply without a flow count",
        len: stats.len(),
        need: field + 8,
    })
}

/// The ADD mod (a whole message, xid 0) that recreates one reply entry.
pub fn entry_to_mod(listing: Listing, e: &[u8]) -> Result<Vec<u8>, TableError> {
    match listing {
        Listing::Flows | Listing::Aggregate => flow_mod(e),
        Listing::Groups => group_mod(e),
        Listing::Meters => meter_mod(e),
    }
}

/// `ofp15_flow_desc`: length, pad, table_id, pad, priority, idle and hard timeouts, flags,
/// importance, cookie; then the match (its own length, padded to 8), the statistics (OXS, its
/// own length, padded to 8: dropped) and the instructions.
fn flow_mod(e: &[u8]) -> Result<Vec<u8>, TableError> {
    const FIXED: usize = 24;
    let what = "flow";
    let field_at = |at: usize| -> Result<(usize, usize), TableError> {
        // A length-prefixed part at `at` (type u16, length u16): its length and padded end.
        if at + 4 > e.len() {
            let (len, need) = (e.len(), at + 4);
            return Err(TableError::Short { what, len, need });
        }
        let field = usize::from(be16(e, at + 2));
        let end = at + pad8(field);
        if field < 4 || end > e.len() {
            let len = e.len();
            return Err(TableError::BadLength { what, field, len });
        }
        Ok((field, end))
    };
    let (_, match_end) = field_at(FIXED)?;
    let (_, stats_end) = field_at(match_end)?;
    let mut fixed = Vec::with_capacity(40);
    fixed.extend_from_slice(&e[16..24]); // cookie
    fixed.extend_from_slice(&[0; 8]); // cookie_mask
    fixed.extend_from_slice(&[e[4], 0]); // table_id, OFPFC_ADD
    fixed.extend_from_slice(&e[8..12]); // idle, hard timeouts
    fixed.extend_from_slice(&e[6..8]); // priority
    fixed.extend_from_slice(&OFP_NO_BUFFER.to_be_bytes());
    fixed.extend_from_slice(&OFPP_ANY.to_be_bytes());
    fixed.extend_from_slice(&OFPG_ANY.to_be_bytes());
    fixed.extend_from_slice(&e[12..16]); // flags, importance
    message(
        OFPT_FLOW_MOD,
        0,
        &[&fixed, &e[FIXED..match_end], &e[stats_end..]],
    )
}

/// `ofp15_group_desc`: length, type, pad, group_id, bucket_array_len, pad[6], buckets,
/// properties. The GROUP_MOD has the same fields after its command, with `command_bucket_id`
/// where the description pads.
fn group_mod(e: &[u8]) -> Result<Vec<u8>, TableError> {
    const FIXED: usize = 16;
    let what = "group";
    if e.len() < FIXED {
        let (len, need) = (e.len(), FIXED);
        return Err(TableError::Short { what, len, need });
    }
    let buckets = usize::from(be16(e, 8));
    if FIXED + buckets > e.len() {
        let (field, len) = (buckets, e.len());
        return Err(TableError::BadLength { what, field, len });
    }
    let mut fixed = Vec::with_capacity(FIXED);
    fixed.extend_from_slice(&[0, 0, e[2], 0]); // OFPGC_ADD, type
    fixed.extend_from_slice(&e[4..10]); // group_id, bucket_array_len
    fixed.extend_from_slice(&[0, 0]);
    fixed.extend_from_slice(&OFPG15_BUCKET_ALL.to_be_bytes());
    message(OFPT_GROUP_MOD, 0, &[&fixed, &e[FIXED..]])
}

/// `ofp_meter_config`: length, flags, meter_id, bands; the METER_MOD is the same with the
/// command (OFPMC_ADD) in place of the length.
fn meter_mod(e: &[u8]) -> Result<Vec<u8>, TableError> {
    const FIXED: usize = 8;
    if e.len() < FIXED {
        let (what, len, need) = ("meter", e.len(), FIXED);
        return Err(TableError::Short { what, len, need });
    }
    message(OFPT_METER_MOD, 0, &[&[0, 0], &e[2..]])
}

/// `msg` (a whole message) with its xid set to `xid`; a bundled message must carry its
/// ADD_MESSAGE's xid.
pub fn with_xid(msg: &mut [u8], xid: u32) {
    if let Some(x) = msg.get_mut(4..8) {
        x.copy_from_slice(&xid.to_be_bytes());
    }
}

/// `OFPT_BUNDLE_CONTROL` of `kind` for bundle `id`.
pub fn bundle_control(id: u32, kind: u16, xid: u32) -> Vec<u8> {
    let mut body = [0u8; 8];
    body[..4].copy_from_slice(&id.to_be_bytes());
    body[4..6].copy_from_slice(&kind.to_be_bytes());
    body[6..].copy_from_slice(&BUNDLE_FLAGS.to_be_bytes());
    message(OFPT_BUNDLE_CONTROL, xid, &[&body]).expect("16 bytes")
}

/// `(bundle id, control type)` of an `OFPT_BUNDLE_CONTROL` body.
pub fn parse_bundle_control(body: &[u8]) -> Option<(u32, u16)> {
    let id = u32::from_be_bytes(body.get(..4)?.try_into().ok()?);
    Some((id, be16(body.get(..6)?, 4)))
}

/// Appends `OFPT_BUNDLE_ADD_MESSAGE` carrying `inner` (a whole message whose xid is set to
/// the same `xid`) to `out`.
pub fn bundle_add(out: &mut Vec<u8>, id: u32, xid: u32, inner: &[u8]) -> Result<(), TableError> {
    let len = OFP_HEADER_LEN + 8 + inner.len();
    let Ok(length) = u16::try_from(len) else {
        return Err(TableError::TooLong {
            what: "bundled message",
            len,
        });
    };
    out.extend_from_slice(
        &Header::new(TABLE_VERSION, OFPT_BUNDLE_ADD_MESSAGE, length, xid).encode(),
    );
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&BUNDLE_FLAGS.to_be_bytes());
    let start = out.len();
    out.extend_from_slice(inner);
    with_xid(&mut out[start..], xid);
    Ok(())
}

/// `OFPT_BARRIER_REQUEST`.
pub fn barrier(xid: u32) -> Vec<u8> {
    message(OFPT_BARRIER_REQUEST, xid, &[]).expect("8 bytes")
}

//! The restore mark: one flow of ours, bundled last with a restored table, that tells whether
//! ovn-controller has replaced that table yet. ovn-controller's first table after it connects
//! to a switch deletes every flow of every table, ours included, and installs its own in the
//! same bundle; until then br-int holds what we restored. Counting flows cannot tell the two
//! apart (the same Southbound gives the same count), and clearing flow-restore-wait before the
//! replacement leaves the node exposed to it: a first table computed from part of the
//! Southbound (21 flows against 105,143 in the VM) then forwards alone.
//!
//! Invariants: the mark is in table [`TABLE`], which OVN never uses (its tables end below 100)
//! and nothing resubmits to, so it never matches a packet; it is only ever added inside the
//! restore's bundle, so it is in br-int exactly when the restored table is untouched.

use crate::config::paths::Layout;
use crate::ovs::openflow::table::{OFPT_FLOW_MOD, TABLE_VERSION};
use crate::process::Reaper;

use super::{aggregate_flow_count, ofctl, target, FlowsError, OF};

/// The mark's table: below 254, which OVS keeps for its own hidden flows.
pub const TABLE: u8 = 253;
/// The mark's cookie: "oos-mark".
pub const COOKIE: u64 = 0x6f6f_732d_6d61_726b;

/// The mark as an OpenFlow 1.5 FLOW_MOD (ADD, priority 0, empty match, no instructions: a
/// drop), xid 0: the 48-byte `ofp_flow_mod` and an empty OXM match padded to 8 bytes.
pub fn flow_mod() -> Vec<u8> {
    const LEN: u16 = 56;
    let mut m = Vec::with_capacity(usize::from(LEN));
    m.extend_from_slice(&[TABLE_VERSION, OFPT_FLOW_MOD]);
    m.extend_from_slice(&LEN.to_be_bytes());
    m.extend_from_slice(&0u32.to_be_bytes()); // xid
    m.extend_from_slice(&COOKIE.to_be_bytes());
    m.extend_from_slice(&0u64.to_be_bytes()); // cookie mask
    m.extend_from_slice(&[TABLE, 0]); // table, OFPFC_ADD
    m.extend_from_slice(&[0; 6]); // idle and hard timeouts, priority
    m.extend_from_slice(&[0xff; 12]); // buffer OFP_NO_BUFFER, out port ANY, out group ANY
    m.extend_from_slice(&[0; 4]); // flags, importance
    m.extend_from_slice(&1u16.to_be_bytes()); // OFPMT_OXM
    m.extend_from_slice(&4u16.to_be_bytes()); // its length: no fields
    m.extend_from_slice(&[0; 4]); // padding to 8
    m
}

/// Whether br-int holds the mark: one aggregate request for its table and cookie.
pub async fn present(reaper: &Reaper, l: &Layout) -> Result<bool, FlowsError> {
    let matching = format!("table={TABLE},cookie={COOKIE:#x}/-1");
    let reply = ofctl(reaper, &["-O", OF, "dump-aggregate", &target(l), &matching]).await?;
    aggregate_flow_count(&reply)
        .map(|n| n > 0)
        .ok_or(FlowsError::Unexpected { reply })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ovs::openflow::{Header, OFP_HEADER_LEN};

    #[test]
    fn the_mark_is_one_whole_flow_mod_in_its_own_table() {
        let m = flow_mod();
        let h = Header::decode(m[..OFP_HEADER_LEN].try_into().unwrap());
        assert_eq!((h.version, h.msg_type), (TABLE_VERSION, OFPT_FLOW_MOD));
        assert_eq!(usize::from(h.length), m.len());
        assert_eq!(m[8..16], COOKIE.to_be_bytes());
        assert_eq!(m[24], TABLE);
        // The match: OXM, no fields, the whole message a multiple of 8.
        assert_eq!(m[48..52], [0, 1, 0, 4]);
        assert_eq!(m.len() % 8, 0);
    }
}

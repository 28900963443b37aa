//! br-int's Geneve TLV map as bytes: which Geneve option (class, type, length) each
//! `tun_metadata<N>` field stands for. OVN's tunnel flows match and set `tun_metadata0`, and a
//! switch refuses any flow using a field it has no mapping for (`NXFMFC_INVALID_TLV_FIELD`).
//! The map lives in vswitchd's memory only (ovn-controller adds it when it connects), so a
//! saved table is restored into a new vswitchd only after its map, as `ovs-save` does with
//! `dump-tlv-map` / `add-tlv-map`.
//!
//! Messages (Nicira extensions, OVS `ofp-msgs.h` and `nicira-ext.h`): an experimenter message
//! (type 4) with vendor 0x00002320 and a 32-bit subtype. NXT_TLV_TABLE_REQUEST (25) has no
//! body; NXT_TLV_TABLE_REPLY (26) holds a 16-byte `nx_tlv_table_reply` then the maps;
//! NXT_TLV_TABLE_MOD (24) holds a command (ADD = 0) and 6 pad bytes then the maps. A map is 8
//! bytes: class (u16), type, length, index (u16), 2 pad bytes.
//!
//! Invariant: pure functions of bytes; a reply whose maps do not fill whole 8-byte entries is
//! an error, never a panic.

use super::table::{message, TableError};

pub const OFPT_EXPERIMENTER: u8 = 4;
pub const NX_VENDOR_ID: u32 = 0x0000_2320;
pub const NXT_TLV_TABLE_MOD: u32 = 24;
pub const NXT_TLV_TABLE_REQUEST: u32 = 25;
pub const NXT_TLV_TABLE_REPLY: u32 = 26;
const NXTTMC_ADD: u16 = 0;
const MAP_LEN: usize = 8;
/// `nx_tlv_table_reply`: max_option_space, max_fields, reserved.
const REPLY_FIXED: usize = 16;

fn nxt(subtype: u32) -> [u8; 8] {
    let mut h = [0u8; 8];
    h[..4].copy_from_slice(&NX_VENDOR_ID.to_be_bytes());
    h[4..].copy_from_slice(&subtype.to_be_bytes());
    h
}

/// NXT_TLV_TABLE_REQUEST.
pub fn request(xid: u32) -> Vec<u8> {
    message(OFPT_EXPERIMENTER, xid, &[&nxt(NXT_TLV_TABLE_REQUEST)]).expect("16 bytes")
}

/// Whether a message body (after the OpenFlow header) is a Nicira message of `subtype`.
fn is_nxt(body: &[u8], subtype: u32) -> bool {
    body.get(..8) == Some(&nxt(subtype)[..])
}

/// The maps of an NXT_TLV_TABLE_REPLY's body (after the OpenFlow header); empty when the
/// switch maps nothing.
pub fn reply_maps(body: &[u8]) -> Result<&[u8], TableError> {
    let need = 8 + REPLY_FIXED;
    if !is_nxt(body, NXT_TLV_TABLE_REPLY) || body.len() < need {
        let (what, len) = ("TLV table reply", body.len());
        return Err(TableError::Short { what, len, need });
    }
    let maps = &body[need..];
    if maps.len() % MAP_LEN != 0 {
        let (what, field, len) = ("TLV table reply", MAP_LEN, maps.len());
        return Err(TableError::BadLength { what, field, len });
    }
    Ok(maps)
}

/// NXT_TLV_TABLE_MOD adding `maps` (whole 8-byte entries, as a reply gives them).
pub fn add(maps: &[u8]) -> Result<Vec<u8>, TableError> {
    let mut command = [0u8; 8];
    command[..2].copy_from_slice(&NXTTMC_ADD.to_be_bytes());
    message(
        OFPT_EXPERIMENTER,
        0,
        &[&nxt(NXT_TLV_TABLE_MOD), &command, maps],
    )
}

/// Whether every map `mod_msg` (an NXT_TLV_TABLE_MOD) adds is among `current` (a reply's
/// maps): then the switch has them already.
pub fn maps_in(mod_msg: &[u8], current: &[u8]) -> bool {
    let adds = mod_msg.get(24..).unwrap_or_default();
    adds.chunks(MAP_LEN)
        .all(|m| current.chunks(MAP_LEN).any(|c| c == m))
}

/// Whether `msg` (a whole message) is an NXT_TLV_TABLE_MOD.
pub fn is_mod(msg: &[u8]) -> bool {
    msg.get(1) == Some(&OFPT_EXPERIMENTER)
        && msg.get(8..).is_some_and(|b| is_nxt(b, NXT_TLV_TABLE_MOD))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// OVN's Geneve option (class 0x102, type 0x80, 4 bytes) on tun_metadata0, as
    /// `add-tlv-map br-int "{class=0x102,type=0x80,len=4}->tun_metadata0"` sets it.
    const OVN_MAP: [u8; 8] = [0x01, 0x02, 0x80, 4, 0, 0, 0, 0];

    fn reply(maps: &[u8]) -> Vec<u8> {
        let mut b = nxt(NXT_TLV_TABLE_REPLY).to_vec();
        b.extend_from_slice(&[0, 0, 0, 0xf8, 0, 64]);
        b.extend_from_slice(&[0; 10]);
        b.extend_from_slice(maps);
        b
    }

    #[test]
    fn a_reply_gives_its_maps_and_a_mod_carries_them_back() {
        assert_eq!(reply_maps(&reply(&OVN_MAP)).unwrap(), &OVN_MAP);
        assert!(reply_maps(&reply(&[])).unwrap().is_empty());
        let m = add(&OVN_MAP).unwrap();
        assert_eq!(m.len(), 8 + 8 + 8 + 8);
        assert_eq!(u16::from_be_bytes([m[2], m[3]]) as usize, m.len());
        assert!(is_mod(&m));
        assert_eq!(&m[24..], &OVN_MAP);
        assert!(!is_mod(&request(7)));
        assert!(maps_in(&m, &OVN_MAP));
        assert!(maps_in(
            &m,
            &[[0x01, 0x02, 0x81, 4, 0, 1, 0, 0], OVN_MAP].concat()
        ));
        assert!(!maps_in(&m, &[]));
        assert!(!maps_in(&m, &[0x01, 0x02, 0x80, 8, 0, 0, 0, 0]));
    }

    #[test]
    fn a_cut_or_foreign_reply_is_an_error() {
        let whole = reply(&OVN_MAP);
        for cut in [0, 7, 8, 23, 25, 31] {
            assert!(reply_maps(&whole[..cut]).is_err(), "cut at {cut}");
        }
        let mut other = whole.clone();
        other[7] = 27;
        assert!(reply_maps(&other).is_err());
    }
}

//! br-int's Geneve TLV map in `ovs-ofctl` text, for the text save: read from `dump-tlv-map`,
//! written back with `add-tlv-map` before the flows, as `ovs-save` does (the binary save
//! carries the same map as bytes: [`crate::ovs::openflow::tlv`]). Without it a new vswitchd
//! refuses every flow using `tun_metadata<N>` (`NXFMFC_INVALID_TLV_FIELD`), which OVN's tunnel
//! flows do on any node with remote chassis.
//!
//! Invariants: pure functions of text; a listing row that is not a whole, valid mapping is an
//! error naming the row, never a panic, and never passed on to `add-tlv-map`.

use serde::{Deserialize, Serialize};

/// One mapping: the Geneve option (class, type, length in bytes) that `tun_metadata<index>`
/// stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlvMap {
    pub class: u16,
    #[serde(rename = "type")]
    pub kind: u8,
    pub len: u8,
    pub index: u8,
}

impl TlvMap {
    /// As `add-tlv-map` takes it: `{class=0x102,type=0x80,len=4}->tun_metadata0`.
    pub fn spec(&self) -> String {
        format!(
            "{{class={:#x},type={:#x},len={}}}->tun_metadata{}",
            self.class, self.kind, self.len, self.index
        )
    }
}

/// Highest `tun_metadata` index (OVS: `TUN_METADATA_NUM_OPTS` = 64) and longest option (a
/// Geneve option's data is at most 124 bytes, in 4-byte units).
const MAX_INDEX: u8 = 63;
const MAX_LEN: u8 = 124;

/// The mappings of a `ovs-ofctl dump-tlv-map` listing: the rows after the dashed line under
/// `mapping table:` (`  0x102  0x80       4  tun_metadata0`); none when it has no rows.
pub fn parse(listing: &str) -> Result<Vec<TlvMap>, String> {
    if !listing.starts_with("NXT_TLV_TABLE_REPLY") {
        return Err("not an NXT_TLV_TABLE_REPLY listing".into());
    }
    let Some(rows) = listing
        .split_once("\n -")
        .and_then(|(_, rest)| rest.split_once('\n'))
        .map(|(_, rows)| rows)
    else {
        return Ok(Vec::new());
    };
    rows.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|row| parse_row(row).ok_or_else(|| format!("not a TLV mapping: {row:?}")))
        .collect()
}

fn hex(s: &str) -> Option<&str> {
    s.strip_prefix("0x")
}

fn parse_row(row: &str) -> Option<TlvMap> {
    let [class, kind, len, field] = row.split_whitespace().collect::<Vec<_>>()[..] else {
        return None;
    };
    let map = TlvMap {
        class: u16::from_str_radix(hex(class)?, 16).ok()?,
        kind: u8::from_str_radix(hex(kind)?, 16).ok()?,
        len: len.parse().ok()?,
        index: field.strip_prefix("tun_metadata")?.parse().ok()?,
    };
    let valid = map.index <= MAX_INDEX && map.len <= MAX_LEN && map.len % 4 == 0;
    valid.then_some(map)
}

/// The saved mappings a switch does not hold yet, as one `add-tlv-map` argument; `None` when
/// it holds them all (adding one again is `NXTTMFC_ALREADY_MAPPED`: an ovn-controller that
/// connected first adds OVN's).
pub fn missing(saved: &[TlvMap], current: &[TlvMap]) -> Option<String> {
    let specs: Vec<String> = (saved.iter())
        .filter(|m| !current.contains(m))
        .map(TlvMap::spec)
        .collect();
    (!specs.is_empty()).then(|| specs.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ovs-ofctl -O OpenFlow15 dump-tlv-map` of a sandbox br-int once ovn-controller
    /// connected (OVS 3.1), byte for byte.
    const OVN: &str = "NXT_TLV_TABLE_REPLY (OF1.5) (xid=0x2):\n max option space=256 max fields=64\n allocated option space=4\n\n mapping table:\n  class  type  length  match field\n ------  ----  ------  --------------\n  0x102  0x80       4  tun_metadata0\n";

    const OVN_MAP: TlvMap = TlvMap {
        class: 0x102,
        kind: 0x80,
        len: 4,
        index: 0,
    };

    #[test]
    fn ovn_s_mapping_is_read_from_the_listing() {
        assert_eq!(parse(OVN).unwrap(), vec![OVN_MAP]);
        assert_eq!(
            OVN_MAP.spec(),
            "{class=0x102,type=0x80,len=4}->tun_metadata0"
        );
        let two = format!("{OVN}  0xffff  0x1      12  tun_metadata7\n");
        let want = TlvMap {
            class: 0xffff,
            kind: 1,
            len: 12,
            index: 7,
        };
        assert_eq!(parse(&two).unwrap(), vec![OVN_MAP, want]);
    }

    #[test]
    fn a_switch_without_maps_lists_none() {
        let (head, _) = OVN.split_once("\n mapping").unwrap();
        assert_eq!(parse(&format!("{head}\n")).unwrap(), vec![]);
        let (head, _) = OVN.split_once("  0x102").unwrap();
        assert_eq!(parse(head).unwrap(), vec![]);
    }

    #[test]
    fn a_row_that_is_not_a_whole_valid_mapping_is_refused() {
        let (head, _) = OVN.split_once("  0x102").unwrap();
        for row in [
            "  0x102  0x80       4",
            "  0x102  0x80       4  tun_metadata0 extra",
            "  102  0x80       4  tun_metadata0",
            "  0x10000  0x80       4  tun_metadata0",
            "  0x102  0x100       4  tun_metadata0",
            "  0x102  0x80       5  tun_metadata0",
            "  0x102  0x80       128  tun_metadata0",
            "  0x102  0x80       4  tun_metadata64",
            "  0x102  0x80       4  reg0",
            "  0x102  0x80       -4  tun_metadata0",
        ] {
            let e = parse(&format!("{head}{row}\n")).unwrap_err();
            assert!(e.contains(row), "{e}");
        }
        assert!(parse("OFPST_FLOW reply (OF1.5):\n").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn only_the_maps_the_switch_lacks_are_added() {
        let other = TlvMap {
            index: 1,
            ..OVN_MAP
        };
        // (saved, in the switch, the add-tlv-map argument)
        let cases: [(&[TlvMap], &[TlvMap], Option<&str>); 4] = [
            (
                &[OVN_MAP],
                &[],
                Some("{class=0x102,type=0x80,len=4}->tun_metadata0"),
            ),
            (&[OVN_MAP], &[OVN_MAP], None),
            (&[], &[OVN_MAP], None),
            (
                &[OVN_MAP, other],
                &[OVN_MAP],
                Some("{class=0x102,type=0x80,len=4}->tun_metadata1"),
            ),
        ];
        for (saved, current, want) in cases {
            assert_eq!(
                missing(saved, current).as_deref(),
                want,
                "{saved:?} {current:?}"
            );
        }
    }
}

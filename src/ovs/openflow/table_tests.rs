//! Tests of [`super::table`] on the exact bytes ovs-vswitchd 3.1 sent
//! (`tests/fixtures/openflow/*.bin`: its whole replies to our flow, group, meter and aggregate
//! requests for a bridge of 7 OVN-like flows, a select group with `selection_method=dp_hash`
//! and a meter), whole, truncated and corrupted; [`super::session_tests`] replays them as a
//! switch.

use super::table::*;

pub(super) const FLOWS: &[u8] = include_bytes!("../../../tests/fixtures/openflow/flows.bin");
pub(super) const GROUPS: &[u8] = include_bytes!("../../../tests/fixtures/openflow/groups.bin");
pub(super) const METERS: &[u8] = include_bytes!("../../../tests/fixtures/openflow/meters.bin");
pub(super) const AGGREGATE: &[u8] =
    include_bytes!("../../../tests/fixtures/openflow/aggregate.bin");

/// The messages of a captured reply stream.
pub(super) fn messages(mut b: &[u8]) -> Vec<&[u8]> {
    let mut v = Vec::new();
    while !b.is_empty() {
        let len = usize::from(u16::from_be_bytes([b[2], b[3]]));
        v.push(&b[..len]);
        b = &b[len..];
    }
    v
}

pub(super) fn mods(listing: Listing, reply: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for m in messages(reply) {
        let (entries, _) = reply_entries(listing, &m[8..]).unwrap();
        for e in entries {
            out.push(entry_to_mod(listing, e).unwrap());
        }
    }
    out
}

pub(super) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[test]
fn vswitchd_flow_entries_become_flow_mods_with_every_field_kept() {
    let m = mods(Listing::Flows, FLOWS);
    assert_eq!(m.len(), 7);
    // `cookie=0xabc, table=9, idle_timeout=300, hard_timeout=600, send_flow_rem importance=7,
    // priority=5,reg13=0x5 actions=group:3`
    let f = m.iter().find(|f| f[8 + 16] == 9).expect("the table 9 flow");
    assert_eq!(f[..2], [TABLE_VERSION, OFPT_FLOW_MOD]);
    assert_eq!(usize::from(be16(f, 2)), f.len());
    assert_eq!(u64::from_be_bytes(f[8..16].try_into().unwrap()), 0xabc);
    assert_eq!(f[8 + 17], 0, "OFPFC_ADD");
    let at = |o: usize| be16(f, 8 + o);
    assert_eq!(
        (at(18), at(20), at(22)),
        (300, 600, 5),
        "idle, hard, priority"
    );
    assert_eq!(
        u32::from_be_bytes(f[32..36].try_into().unwrap()),
        0xffff_ffff,
        "no buffer"
    );
    assert_eq!((at(36), at(38)), (1, 7), "flags send_flow_rem, importance");
    // Every mod carries the entry's match and instructions, and nothing of its statistics.
    for (f, e) in m.iter().zip(
        messages(FLOWS)
            .iter()
            .flat_map(|r| reply_entries(Listing::Flows, &r[8..]).unwrap().0),
    ) {
        let match_len = usize::from(be16(e, 26)).div_ceil(8) * 8;
        let stats_at = 24 + match_len;
        let stats_len = usize::from(be16(e, stats_at + 2)).div_ceil(8) * 8;
        assert_eq!(&f[48..48 + match_len], &e[24..stats_at]);
        assert_eq!(&f[48 + match_len..], &e[stats_at + stats_len..]);
    }
}

#[test]
fn vswitchd_group_and_meter_entries_become_add_mods() {
    let g = mods(Listing::Groups, GROUPS);
    assert_eq!(g.len(), 1);
    let (e, g) = (&messages(GROUPS)[0][16..], &g[0]);
    assert_eq!(g[1], OFPT_GROUP_MOD);
    assert_eq!(be16(g, 8), 0, "OFPGC_ADD");
    assert_eq!(g[10], 1, "select");
    assert_eq!(
        u32::from_be_bytes(g[12..16].try_into().unwrap()),
        3,
        "group_id"
    );
    assert_eq!(
        u32::from_be_bytes(g[20..24].try_into().unwrap()),
        0xffff_ffff
    );
    assert_eq!(
        &g[24..],
        &e[16..],
        "buckets and properties (selection_method) as listed"
    );
    let m = mods(Listing::Meters, METERS);
    assert_eq!(m.len(), 1);
    let m = &m[0];
    assert_eq!((m[1], be16(m, 8)), (OFPT_METER_MOD, 0));
    assert_eq!(
        u32::from_be_bytes(m[12..16].try_into().unwrap()),
        7,
        "meter_id"
    );
    assert_eq!(
        &m[10..],
        &messages(METERS)[0][18..],
        "flags, id and bands as listed"
    );
}

#[test]
fn vswitchd_aggregate_reply_counts_the_flows() {
    assert_eq!(aggregate_flow_count(&AGGREGATE[8..]), Ok(7));
    assert!(
        aggregate_flow_count(&FLOWS[8..]).is_err(),
        "a flow listing is not an aggregate"
    );
}

/// Every prefix and every single-byte corruption of the real replies: an error or a result,
/// never a panic, and a cut entry is never taken for a whole one.
#[test]
fn truncated_or_corrupted_replies_never_panic() {
    let agg = &AGGREGATE[8..];
    // The multipart header (8 bytes), then the OXS stats (36), then padding.
    for cut in 0..agg.len() {
        let got = aggregate_flow_count(&agg[..cut]);
        assert_eq!(
            got.is_ok(),
            cut >= 8 + 36,
            "aggregate cut at {cut}: {got:?}"
        );
    }
    for (listing, reply) in [
        (Listing::Flows, FLOWS),
        (Listing::Groups, GROUPS),
        (Listing::Meters, METERS),
        (Listing::Aggregate, AGGREGATE),
    ] {
        let body = &messages(reply)[0][8..];
        let whole = match listing {
            Listing::Aggregate => 0,
            _ => reply_entries(listing, body).unwrap().0.len(),
        };
        for cut in 0..body.len() {
            if let Ok((entries, _)) = reply_entries(listing, &body[..cut]) {
                assert!(
                    entries.len() < whole || whole == 0,
                    "{listing:?} cut at {cut}"
                );
                for e in entries {
                    let _ = entry_to_mod(listing, e);
                }
            }
            let _ = aggregate_flow_count(&body[..cut]);
        }
        for i in 0..body.len() {
            let mut bad = body.to_vec();
            bad[i] ^= 0xff;
            if let Ok((entries, _)) = reply_entries(listing, &bad) {
                for e in entries {
                    let _ = entry_to_mod(listing, e);
                }
            }
            let _ = aggregate_flow_count(&bad);
        }
    }
}

#[test]
fn a_bundled_message_carries_its_add_messages_xid() {
    let inner = mods(Listing::Meters, METERS).remove(0);
    let mut out = Vec::new();
    bundle_add(&mut out, 0x0102_0304, 77, &inner).unwrap();
    assert_eq!(out.len(), 16 + inner.len());
    assert_eq!(
        out[..16],
        [
            6,
            OFPT_BUNDLE_ADD_MESSAGE,
            0,
            (16 + inner.len()) as u8,
            0,
            0,
            0,
            77,
            1,
            2,
            3,
            4,
            0,
            0,
            0,
            3
        ]
    );
    assert_eq!(
        u32::from_be_bytes(out[20..24].try_into().unwrap()),
        77,
        "inner xid"
    );
    assert_eq!(&out[24..], &inner[8..]);
    let big = vec![0u8; 65535 - 8];
    assert!(
        bundle_add(&mut Vec::new(), 1, 1, &big).is_err(),
        "past 64 KiB"
    );
    assert_eq!(
        bundle_control(9, OFPBCT_COMMIT_REQUEST, 5),
        [
            6,
            OFPT_BUNDLE_CONTROL,
            0,
            16,
            0,
            0,
            0,
            5,
            0,
            0,
            0,
            9,
            0,
            4,
            0,
            3
        ]
    );
}

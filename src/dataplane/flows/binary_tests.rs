//! Tests of [`super::binary`]'s file format and of the handover answer's `saved` across
//! releases: a file of the mods ovs-vswitchd 3.1's replies become (`tests/fixtures/openflow`)
//! read back whole, every damaged form of it refused without a panic, and the JSON of this
//! release, of the last text-only release (with its tally) and of the ones before read as
//! the right form, with the right figures.

use super::binary::{decode, encode, read_table, Counts, FORMAT_TLV, HEADER_LEN, MAGIC};
use super::*;
use crate::ovs::openflow::table::{entry_to_mod, reply_entries, Listing};

const FLOWS: &[u8] = include_bytes!("../../../tests/fixtures/openflow/flows.bin");
const GROUPS: &[u8] = include_bytes!("../../../tests/fixtures/openflow/groups.bin");
const METERS: &[u8] = include_bytes!("../../../tests/fixtures/openflow/meters.bin");

/// The ADD mods of one captured reply stream (whole messages, one after another).
fn mods(listing: Listing, mut reply: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while !reply.is_empty() {
        let len = usize::from(u16::from_be_bytes([reply[2], reply[3]]));
        for e in reply_entries(listing, &reply[8..len]).unwrap().0 {
            out.extend(entry_to_mod(listing, e).unwrap());
        }
        reply = &reply[len..];
    }
    out
}

/// The file a save of the captured table writes.
fn saved_file() -> Vec<u8> {
    let body = [
        mods(Listing::Meters, METERS),
        mods(Listing::Groups, GROUPS),
        mods(Listing::Flows, FLOWS),
    ]
    .concat();
    let counts = Counts {
        tlv: 0,
        meters: 1,
        groups: 1,
        flows: 7,
    };
    encode(counts, &body)
}

#[test]
fn a_saved_table_reads_back_as_the_mods_it_was_written_from() {
    let file = saved_file();
    assert!(file.starts_with(MAGIC));
    let t = decode(&file).unwrap();
    assert_eq!((t.meters.len(), t.groups.len(), t.flows.len()), (1, 1, 7));
    let again: Vec<u8> = [t.meters, t.groups, t.flows].concat().concat();
    assert_eq!(&again[..], &file[HEADER_LEN..]);
}

/// Every cut of the file, every corrupted header field and a byte too many: an error naming
/// what is wrong, never a panic and never a shorter table.
#[test]
fn a_cut_or_damaged_file_is_refused() {
    let file = saved_file();
    for cut in 0..file.len() {
        assert!(decode(&file[..cut]).is_err(), "cut at {cut}");
    }
    let damaged = |at: usize, v: u8| {
        let mut f = file.clone();
        f[at] = v;
        decode(&f).unwrap_err()
    };
    assert!(damaged(0, b'X').contains("no OOSOFTBL magic"));
    assert!(damaged(9, 2).contains("format 2"));
    assert!(damaged(10, 4).contains("version 0x04"));
    // One flow more announced than written; one meter more (the first group read as a meter).
    assert!(damaged(23, 8).contains("flow 7 of 8"), "{}", damaged(23, 8));
    assert!(
        damaged(15, 2).contains("meter 1 of 2"),
        "{}",
        damaged(15, 2)
    );
    let mut long = file.clone();
    long.push(0);
    assert!(decode(&long)
        .unwrap_err()
        .contains("1 bytes after the last flow"));
    for i in HEADER_LEN..file.len() {
        let mut f = file.clone();
        f[i] ^= 0xff;
        let _ = decode(&f);
    }
}

#[test]
fn only_a_table_holding_exactly_the_counts_handed_over_is_usable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("br-int.table.takeover");
    std::fs::write(&path, saved_file()).unwrap();
    let saved = |flow_count, group_count, meter_count| TableSave {
        table: path.clone(),
        flow_count,
        group_count,
        meter_count,
        save_ms: 3,
    };
    assert_eq!(read_table(&saved(7, 1, 1)).unwrap(), saved_file());
    assert!(usable(&SavedFlows::Table(saved(7, 1, 1))).is_ok());
    let rows = [
        (
            saved(8, 1, 1),
            "holds 7 flows, 1 groups, 1 meters; the previous instance saved 8, 1, 1",
        ),
        (saved(7, 0, 1), "saved 7, 0, 1"),
        (saved(0, 0, 0), "saved no flows"),
    ];
    for (s, want) in rows {
        let e = usable(&SavedFlows::Table(s)).unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
    }
    std::fs::write(&path, &saved_file()[..100]).unwrap();
    let e = usable(&SavedFlows::Table(saved(7, 1, 1))).unwrap_err();
    assert!(e.to_string().contains("not a whole saved table"), "{e}");
    std::fs::remove_file(&path).unwrap();
    assert!(usable(&SavedFlows::Table(saved(7, 1, 1))).is_err());
}

/// What an earlier release's `SavedFlows` (a struct with these fields, no `table`) made of
/// an answer.
#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)]
struct EarlierSavedFlows {
    flows: std::path::PathBuf,
    groups: std::path::PathBuf,
    flow_count: usize,
}

#[test]
fn the_handover_answer_reads_across_releases() {
    // The last text-only release: its tally carried along.
    let tallied = serde_json::json!({"flows": "/r/br-int.flows.takeover",
        "groups": "/r/br-int.groups.takeover", "flow_count": 12, "group_count": 2, "save_ms": 40});
    let s: SavedFlows = serde_json::from_value(tallied.clone()).unwrap();
    assert!(matches!(&s, SavedFlows::Text(t) if t.group_count == 2));
    let want = FlowTally {
        flows: 12,
        groups: 2,
        elapsed_ms: 40,
    };
    assert_eq!(s.tally(), want);
    assert_eq!(
        serde_json::to_value(&s).unwrap(),
        tallied,
        "written as it was read"
    );
    // This release's text save of a switch with a TLV map: read back whole, and by an
    // earlier release as a save without one.
    let mapped = serde_json::json!({"flows": "/r/f", "groups": "/r/g", "flow_count": 5,
        "group_count": 0, "save_ms": 3,
        "tlv_maps": [{"class": 258, "type": 128, "len": 4, "index": 0}]});
    let s: SavedFlows = serde_json::from_value(mapped.clone()).unwrap();
    assert!(
        matches!(&s, SavedFlows::Text(t) if t.tlv_maps.len() == 1 && t.tlv_maps[0].spec() == "{class=0x102,type=0x80,len=4}->tun_metadata0")
    );
    assert_eq!(serde_json::to_value(&s).unwrap(), mapped);
    let earlier: EarlierSavedFlows = serde_json::from_value(mapped).unwrap();
    assert_eq!(earlier.flow_count, 5);
    // Releases before the tally: no group count or duration.
    let bare = serde_json::json!({"flows": "/r/f", "groups": "/r/g", "flow_count": 5});
    let s: SavedFlows = serde_json::from_value(bare).unwrap();
    assert_eq!(
        (s.flow_count(), s.tally().groups, s.tally().elapsed_ms),
        (5, 0, 0)
    );
    // This release's binary save: read back as one, and refused (no save at all, so the
    // datapath's flows are kept) by an earlier release.
    let table = SavedFlows::Table(TableSave {
        table: "/r/br-int.table.takeover".into(),
        flow_count: 7,
        group_count: 1,
        meter_count: 1,
        save_ms: 2,
    });
    let json = serde_json::to_value(&table).unwrap();
    assert_eq!(
        serde_json::from_value::<SavedFlows>(json.clone()).unwrap(),
        table
    );
    assert_eq!(table.tally().flows, 7);
    assert!(serde_json::from_value::<EarlierSavedFlows>(json).is_err());
}

/// A table whose switch maps OVN's Geneve option: format 2, the TLV map mod first, read back
/// whole; every cut and a miscounted header refused.
#[test]
fn a_table_with_a_tlv_map_is_format_2_and_reads_back_map_first() {
    let map = [0x01, 0x02, 0x80, 4, 0, 0, 0, 0];
    let add = crate::ovs::openflow::tlv::add(&map).unwrap();
    let rest = &saved_file()[HEADER_LEN..];
    let counts = Counts {
        tlv: 1,
        meters: 1,
        groups: 1,
        flows: 7,
    };
    let file = encode(counts, &[&add[..], rest].concat());
    assert_eq!(u16::from_be_bytes([file[8], file[9]]), FORMAT_TLV);
    let t = decode(&file).unwrap();
    assert_eq!(t.tlv, vec![&add[..]]);
    assert_eq!((t.meters.len(), t.groups.len(), t.flows.len()), (1, 1, 7));
    for cut in 0..file.len() {
        assert!(decode(&file[..cut]).is_err(), "cut at {cut}");
    }
    // (header byte, value): format 1 announcing a map; format 2 announcing none.
    for (at, value) in [(9, 1u8), (11, 0)] {
        let mut bad = file.clone();
        bad[at] = value;
        assert!(decode(&bad).is_err(), "byte {at} = {value}");
    }
    // A meter where the map should be.
    let mut shifted = saved_file();
    shifted[9] = 2;
    shifted[11] = 1;
    assert!(decode(&shifted).is_err());
}

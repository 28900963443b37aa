//! Tests of [`super`]: listings as `ovs-ofctl` writes them, whole, cut and empty, and what a
//! successor accepts.

use super::text::{keep_entries, Kept, Listing};
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
    assert_eq!(
        keep_entries(&raw, &kept, Listing::Headed).unwrap().entries,
        1
    );
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
    assert_eq!(
        keep_entries(&raw, &kept, Listing::Bare).unwrap().entries,
        20_000
    );
    let text = std::fs::read_to_string(&kept).unwrap();
    assert_eq!(text.lines().count(), 20_000);
    assert!(text.lines().all(|l| l.ends_with("resubmit(,38)")));
}

/// (raw listing, kind, what is kept): what a full disk leaves of `ovs-ofctl dump-*`'s
/// stdout.
#[test]
fn cut_or_empty_listings_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let (raw, kept) = (dir.path().join("raw"), dir.path().join("kept"));
    let head = "OFPST_GROUP_DESC reply (OF1.5) (xid=0x2):\n";
    let entry = " group_id=1,type=select,bucket=bucket_id:0,actions=drop\n";
    let flow = " table=0, priority=100,in_port=1 actions=drop\n";
    let (h, b) = (Listing::Headed, Listing::Bare);
    let whole = |entries| {
        Ok(Kept {
            entries,
            cut: false,
        })
    };
    let cut = |entries| Ok(Kept { entries, cut: true });
    let rows: [(String, Listing, Result<Kept, &str>); 8] = [
        (format!("{head}{entry}{entry}"), h, whole(2)),
        (head.to_string(), h, whole(0)),
        (String::new(), h, Err("is empty")),
        (format!("{head}{entry} group_id=2,ty"), h, cut(1)),
        (entry.repeat(3), h, Err("missing its reply header")),
        (flow.repeat(3), b, whole(3)),
        // An empty flow table, or a dump lost to a full disk: the count tells them apart.
        (String::new(), b, whole(0)),
        (format!("{flow} table=0, prio"), b, cut(1)),
    ];
    for (listing, kind, want) in rows {
        std::fs::write(&raw, &listing).unwrap();
        let got = keep_entries(&raw, &kept, kind).map_err(|e| e.to_string());
        match (got, want) {
            (Ok(k), Ok(w)) => assert_eq!(k, w, "{listing:?}"),
            (Err(e), Err(w)) => assert!(e.contains(w) && e.contains("kept"), "{e}"),
            (got, _) => panic!("{listing:?}: {got:?}"),
        }
    }
}

#[test]
fn a_short_count_names_the_file_and_both_counts() {
    let e = FlowsError::Incomplete {
        path: "/run/openvswitch/br-int.flows.takeover".into(),
        saved: 0,
        before: 412,
        after: 415,
        cut: "",
        counter: "ovs-ofctl dump-aggregate",
    };
    assert_eq!(e.to_string(), "/run/openvswitch/br-int.flows.takeover: saved 0 flows, but br-int holds 412 (ovs-ofctl dump-aggregate: 412 before the dump, 415 after); the save is incomplete (a full disk?)");
}

/// (file content, counted by the predecessor, usable).
#[test]
fn only_a_whole_non_empty_saved_table_is_usable() {
    let dir = tempfile::tempdir().unwrap();
    let flows = dir.path().join("br-int.flows.takeover");
    let entry = " table=0, priority=100,in_port=1 actions=drop\n";
    let rows: [(String, usize, Option<&str>); 4] = [
        (entry.repeat(3), 3, None),
        (
            entry.repeat(2),
            3,
            Some("holds 2 flows, but the previous instance saved 3"),
        ),
        (String::new(), 0, Some("saved no flows")),
        (String::new(), 5, Some("holds 0 flows")),
    ];
    for (content, counted, want) in rows {
        std::fs::write(&flows, &content).unwrap();
        let saved = SavedFlows::Text(TextSave {
            flows: flows.clone(),
            groups: dir.path().join("g"),
            flow_count: counted,
            group_count: 0,
            save_ms: 0,
            tlv_maps: Vec::new(),
        });
        match (usable(&saved), want) {
            (Ok(()), None) => {}
            (Err(e), Some(w)) => assert!(e.to_string().contains(w), "{e}"),
            (got, _) => panic!("{content:?} {counted}: {got:?}"),
        }
    }
    std::fs::remove_file(&flows).unwrap();
    let saved = SavedFlows::Text(TextSave {
        flows: flows.clone(),
        groups: dir.path().join("g"),
        flow_count: 1,
        group_count: 0,
        save_ms: 0,
        tlv_maps: Vec::new(),
    });
    assert!(usable(&saved).is_err());
}

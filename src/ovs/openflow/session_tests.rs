//! Tests of [`super::Session`] against a fake switch that answers with the exact bytes
//! ovs-vswitchd 3.1 sent ([`super::table_tests`]' fixtures): the listing whatever the read
//! boundaries, cut, corrupted or refused; the install's meters, then one ordered atomic
//! bundle, committed, or the switch's error for one of its messages.

use super::table::*;
use super::table_tests::{be16, messages, mods, AGGREGATE, FLOWS, GROUPS, METERS};
use super::*;
use tokio::net::UnixListener;

/// How the fake switch spoils its flow listing.
#[derive(Clone, Copy, Debug)]
enum Fault {
    None,
    /// Sends this many bytes of it, then closes the connection.
    Cut(usize),
    /// Its first entry's length runs past the message.
    Corrupt,
    /// Answers it with an OFPT_ERROR (type 1 bad request, code 2 bad multipart).
    Refuse,
}

/// `captured` with every message's xid set to `xid`.
fn with_reply_xid(captured: &[u8], xid: u32) -> Vec<u8> {
    let mut r = captured.to_vec();
    let mut at = 0;
    for m in messages(captured) {
        r[at + 4..at + 8].copy_from_slice(&xid.to_be_bytes());
        at += m.len();
    }
    r
}

/// A fake switch answering HELLO (1.5), then every request with the captured reply of its
/// kind, written `chunk` bytes at a time, the flow listing spoiled by `fault`.
async fn serve_captured(listener: UnixListener, chunk: usize, fault: Fault) {
    let (mut s, _) = listener.accept().await.unwrap();
    let (_, _) = read_message(&mut s).await.unwrap();
    s.write_all(&Header::new(6, OFPT_HELLO, 8, 1).encode())
        .await
        .unwrap();
    while let Ok((h, body)) = read_message(&mut s).await {
        let mut reply: Vec<u8> = match h.msg_type {
            OFPT_ECHO_REQUEST => Header::new(6, OFPT_ECHO_REPLY, 8, h.xid).encode().to_vec(),
            OFPT_MULTIPART_REQUEST => {
                let captured = match u16::from_be_bytes([body[0], body[1]]) {
                    1 => FLOWS,
                    2 => AGGREGATE,
                    7 => GROUPS,
                    _ => METERS,
                };
                with_reply_xid(captured, h.xid)
            }
            _ => continue,
        };
        let flows = reply[1] == OFPT_MULTIPART_REPLY && reply[9] == Listing::Flows as u8;
        match fault {
            Fault::Cut(n) if flows => reply.truncate(n),
            Fault::Corrupt if flows => reply[16..18].copy_from_slice(&0x0fffu16.to_be_bytes()),
            Fault::Refuse if flows => {
                let error = [
                    &Header::new(6, OFPT_ERROR, 12, h.xid).encode()[..],
                    &[0, 1, 0, 2],
                ];
                reply = error.concat();
            }
            _ => {}
        }
        for c in reply.chunks(chunk) {
            s.write_all(c).await.unwrap();
            s.flush().await.unwrap();
            tokio::task::yield_now().await;
        }
        if matches!(fault, Fault::Cut(_)) && flows {
            return;
        }
    }
}

async fn session_on(fault: Fault, chunk: usize) -> (tempfile::TempDir, Session) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("br-int.mgmt");
    tokio::spawn(serve_captured(
        UnixListener::bind(&path).unwrap(),
        chunk,
        fault,
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    (dir, Session::open(&path, deadline).await.unwrap())
}

#[tokio::test]
async fn a_session_lists_the_table_whatever_the_read_boundaries() {
    for chunk in [1, 3, 7, 64, 100_000] {
        let (_dir, mut s) = session_on(Fault::None, chunk).await;
        let mut out = Vec::new();
        assert_eq!(s.list(Listing::Meters, &mut out).await.unwrap(), 1);
        assert_eq!(s.list(Listing::Groups, &mut out).await.unwrap(), 1);
        assert_eq!(s.flow_count().await.unwrap(), 7);
        assert_eq!(
            s.list(Listing::Flows, &mut out).await.unwrap(),
            7,
            "chunk {chunk}"
        );
        let want: Vec<u8> = [
            mods(Listing::Meters, METERS),
            mods(Listing::Groups, GROUPS),
            mods(Listing::Flows, FLOWS),
        ]
        .concat()
        .concat();
        assert_eq!(out, want, "chunk {chunk}");
    }
}

/// A listing cut mid-message (the switch gone), one whose entry runs past its message, or one
/// the switch refuses is an error naming what happened, never a shorter table.
#[tokio::test]
async fn a_cut_corrupted_or_refused_listing_is_an_error() {
    let rows: [(Fault, &str); 4] = [
        (Fault::Cut(100), "peer closed the connection"),
        (Fault::Cut(8), "peer closed the connection"),
        (Fault::Corrupt, "field length 4095 does not fit"),
        (Fault::Refuse, "OFPT_ERROR type 1 code 2"),
    ];
    for (fault, want) in rows {
        for chunk in [5, 100_000] {
            let (_dir, mut s) = session_on(fault, chunk).await;
            let mut out = Vec::new();
            let e = s
                .list(Listing::Flows, &mut out)
                .await
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{fault:?} chunk {chunk}: {e}");
        }
    }
}

/// What the fake switch does with a bundle.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Bundling {
    Accept,
    /// Answers the Nth bundled message with an OFPT_ERROR and never commits.
    Reject(usize),
}

/// A fake switch that records every message after HELLO and answers barriers and bundle
/// controls as ovs-vswitchd does.
async fn serve_install(
    listener: UnixListener,
    how: Bundling,
    seen: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
) {
    let (mut s, _) = listener.accept().await.unwrap();
    let (_, _) = read_message(&mut s).await.unwrap();
    s.write_all(&Header::new(6, OFPT_HELLO, 8, 1).encode())
        .await
        .unwrap();
    let mut added = 0;
    while let Ok((h, body)) = read_message(&mut s).await {
        let whole = [&h.encode()[..], &body].concat();
        let _ = seen.send(whole);
        let reply = match h.msg_type {
            OFPT_ECHO_REQUEST => Header::new(6, OFPT_ECHO_REPLY, 8, h.xid).encode().to_vec(),
            OFPT_BARRIER_REQUEST => Header::new(6, OFPT_BARRIER_REPLY, 8, h.xid)
                .encode()
                .to_vec(),
            OFPT_BUNDLE_CONTROL => {
                let mut r = [&h.encode()[..], &body].concat();
                r[13] += 1; // OPEN_REQUEST -> OPEN_REPLY, COMMIT_REQUEST -> COMMIT_REPLY
                r
            }
            OFPT_BUNDLE_ADD_MESSAGE => {
                added += 1;
                if how != Bundling::Reject(added) {
                    continue;
                }
                // OFPET_BAD_REQUEST... as vswitchd answers a group the bundle cannot add.
                [
                    &Header::new(6, OFPT_ERROR, 12, h.xid).encode()[..],
                    &[0, 6, 0, 1],
                ]
                .concat()
            }
            _ => continue,
        };
        s.write_all(&reply).await.unwrap();
    }
}

#[tokio::test]
async fn an_install_sends_meters_then_one_ordered_bundle_and_waits_for_its_commit() {
    let meters = mods(Listing::Meters, METERS);
    let bundled = [mods(Listing::Groups, GROUPS), mods(Listing::Flows, FLOWS)].concat();
    let bundled_refs: Vec<&[u8]> = bundled.iter().map(|m| &m[..]).collect();
    let meter_refs: Vec<&[u8]> = meters.iter().map(|m| &m[..]).collect();
    for how in [Bundling::Accept, Bundling::Reject(3)] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("br-int.mgmt");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(serve_install(UnixListener::bind(&path).unwrap(), how, tx));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut s = Session::open(&path, deadline).await.unwrap();
        let done = s.install(&meter_refs, &bundled_refs).await;
        drop(s);
        let mut seen = Vec::new();
        while let Some(m) = rx.recv().await {
            seen.push(m);
        }
        let types: Vec<u8> = seen
            .iter()
            .map(|m| m[1])
            .filter(|t| *t != OFPT_ECHO_REQUEST)
            .collect();
        if let Bundling::Reject(_) = how {
            let e = done.unwrap_err().to_string();
            assert!(
                e.contains("OFPT_ERROR type 6 code 1") && e.contains("bundle of 8"),
                "{e}"
            );
            continue;
        }
        done.unwrap();
        let mut want = vec![OFPT_METER_MOD, OFPT_BARRIER_REQUEST, OFPT_BUNDLE_CONTROL];
        want.extend([OFPT_BUNDLE_ADD_MESSAGE; 8]);
        want.push(OFPT_BUNDLE_CONTROL);
        assert_eq!(types, want);
        let adds: Vec<&Vec<u8>> = seen
            .iter()
            .filter(|m| m[1] == OFPT_BUNDLE_ADD_MESSAGE)
            .collect();
        for (add, inner) in adds.iter().zip(&bundled) {
            assert_eq!(
                add[4..8],
                add[20..24],
                "the inner message carries the add's xid"
            );
            assert_eq!(&add[16..20], &inner[..4]);
            assert_eq!(&add[24..], &inner[8..], "bundled in the order given");
        }
        let controls: Vec<&Vec<u8>> = seen
            .iter()
            .filter(|m| m[1] == OFPT_BUNDLE_CONTROL)
            .collect();
        assert_eq!(
            (be16(controls[0], 12), be16(controls[1], 12)),
            (OFPBCT_OPEN_REQUEST, OFPBCT_COMMIT_REQUEST)
        );
        assert_eq!(controls[0][8..12], controls[1][8..12], "one bundle id");
        assert_eq!(be16(controls[1], 14), BUNDLE_FLAGS, "atomic, ordered");
    }
}

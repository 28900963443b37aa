//! A Southbound outage at start neither stops nor restarts anything: the node starts, stays
//! alive through a minute without the Southbound, and becomes ready when it answers.

use std::time::{Duration, Instant};

use super::READY;
use crate::harness::*;

fn daemons(node: &Node) -> Vec<(String, i64)> {
    let status = node.status().expect("status answers");
    status["daemons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap().to_string(),
                d["pid"].as_i64().unwrap_or(0),
            )
        })
        .collect()
}

#[test]
fn a_node_starts_without_the_southbound_and_becomes_ready_when_it_answers() {
    let sb_dir = tempfile::Builder::new().prefix("oos-sb").tempdir().unwrap();
    // Nothing listens there yet: the central database is down.
    let remote = format!("unix:{}", sb_dir.path().join("sb.sock").display());
    let mut node = Node::new();
    node.start(&[("OVN_SB_ADDR", remote.as_str())]);
    let t0 = Instant::now();
    while node.probe("startup").0 != 0 {
        assert!(
            t0.elapsed() < READY,
            "start did not complete: {}",
            node.log()
        );
        assert!(
            node.child.as_mut().unwrap().try_wait().unwrap().is_none(),
            "exited: {}",
            node.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = daemons(&node);
    assert_eq!(started.len(), 3, "{started:?}");
    assert!(started.iter().all(|(_, pid)| *pid > 0), "{started:?}");
    let (code, reason) = node.probe("readiness");
    assert_eq!(code, 3, "{reason}");
    assert!(
        reason.contains("Southbound") && reason.contains(&remote),
        "{reason}"
    );

    // A central outage of a minute: the node keeps running, alive, with the same daemons.
    let outage = Instant::now();
    while outage.elapsed() < Duration::from_secs(60) {
        assert!(
            node.child.as_mut().unwrap().try_wait().unwrap().is_none(),
            "exited: {}",
            node.log()
        );
        let (code, reason) = node.probe("liveness");
        assert_eq!(code, 0, "liveness failed during the outage: {reason}");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        daemons(&node),
        started,
        "a daemon was restarted during the outage"
    );
    assert_eq!(node.probe("readiness").0, 3);

    let (_sb, sb_remote) = southbound(sb_dir.path());
    assert_eq!(sb_remote, remote);
    let back = Instant::now();
    let took = node.wait_ready(READY);
    println!(
        "southbound back: ready after {} ms (ovn-controller's own reconnect backoff included)",
        back.elapsed().max(took).as_millis()
    );
    assert_eq!(daemons(&node), started);
    assert!(node.stop().0.success());
}

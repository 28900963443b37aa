//! A clustered Southbound rebuilt under a running node: ovn-controller refuses the new
//! cluster's "stale data" until its cluster state is reset. The supervisor resets it (a
//! bounded number of times), names the condition in readiness while it lasts, counts the
//! resets in `status`, and the node is ready again — connected, its chassis in the new
//! database — without restarting anything.

use std::time::{Duration, Instant};

use super::READY;
use crate::harness::*;

/// From the rebuild to ready again. ovn-controller alone never recovers (it retries every
/// 8 s forever); with the reset: a 10 s confirmation, a health interval, and ovn-controller's
/// next reconnect attempt (8 s at most), with room for a loaded machine.
const HEAL: Duration = Duration::from_secs(60);

fn pids(node: &Node) -> Vec<(String, i64)> {
    let status = node.status().expect("status answers");
    (status["daemons"].as_array().unwrap().iter())
        .map(|d| {
            let name = d["name"].as_str().unwrap().to_string();
            (name, d["pid"].as_i64().unwrap_or(0))
        })
        .collect()
}

#[test]
fn a_rebuilt_southbound_cluster_is_reset_and_the_node_reconnects() {
    let sb_dir = tempfile::Builder::new().prefix("oos-sb").tempdir().unwrap();
    let (sb, remote) = clustered_southbound(sb_dir.path());
    let mut node = Node::new();
    node.start(&[
        ("OVN_SB_ADDR", remote.as_str()),
        ("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "500"),
    ]);
    node.wait_ready(READY);
    let chassis = |remote: &str| {
        db_ctl(
            "ovn-sbctl",
            remote,
            &["--bare", "--columns=name", "list", "Chassis"],
        )
    };
    wait_for("the chassis registered", READY, || {
        !chassis(&remote).is_empty()
    });
    let before = pids(&node);
    // More transactions than a new cluster starts with: ovn-controller remembers this index.
    for i in 0..5 {
        let key = format!("external_ids:test-generation={i}");
        db_ctl("ovn-sbctl", &remote, &["set", "SB_Global", ".", &key]);
    }

    drop(sb);
    let (_sb, again) = clustered_southbound(sb_dir.path());
    assert_eq!(again, remote);
    let rebuilt = Instant::now();
    let mut named: Option<String> = None;
    loop {
        let (code, reason) = node.probe("readiness");
        if code != 0 && reason.contains("has stale data") {
            named.get_or_insert(reason.clone());
        } else if code == 0 && named.is_some() {
            break;
        }
        let (live, why) = node.probe("liveness");
        assert_eq!(live, 0, "a stale Southbound failed liveness: {why}");
        assert!(
            rebuilt.elapsed() < HEAL,
            "not ready {} s after the rebuild; readiness: {code} {reason}; named: {named:?}; log:\n{}",
            HEAL.as_secs(),
            node.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let healed = rebuilt.elapsed();
    let named = named.unwrap();
    assert!(
        named.starts_with(&format!("Southbound {remote} has stale data")),
        "{named}"
    );

    let status = node.status().unwrap();
    let stale = &status["stale_southbound"];
    let resets = stale["resets"].as_u64().unwrap();
    // One per RESET_EVERY (30 s) at most, the first after the 10 s confirmation.
    let bound = 1 + healed.as_secs() / 30;
    assert!(
        (1..=bound).contains(&resets),
        "{resets} resets in {healed:?}: {stale}"
    );
    assert!(stale["episode"].is_null(), "episode still open: {stale}");
    assert_eq!(pids(&node), before, "a daemon was restarted");
    wait_for("the chassis registered in the new cluster", READY, || {
        !chassis(&remote).is_empty()
    });
    println!(
        "southbound rebuilt: ready again after {} ms, {resets} sb-cluster-state-reset(s)",
        healed.as_millis()
    );
    assert!(node.stop().0.success());
}

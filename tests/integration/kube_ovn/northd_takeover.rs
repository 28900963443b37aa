//! A takeover never freezes a working node: with `ovn-match-northd-version` on, a successor
//! whose ovn-controller differs from the version ovn-northd wrote in the Southbound (Kube-OVN's
//! northd is `X+g<commit>`), or that cannot read the Southbound, refuses (exit 4) naming both
//! versions, and the old node keeps its daemons (same pids) and keeps answering probes. With
//! the versions equal the takeover goes on, and the successor owns the key.

use std::time::Duration;

use super::READY;
use crate::harness::*;

fn sbctl(node: &Node, args: &[&str]) -> String {
    let db = node.path().join("run/ovn/ovnsb_db.sock");
    db_ctl("ovn-sbctl", &format!("unix:{}", db.display()), args)
}

fn set_northd_version(node: &Node, version: &str) {
    let v = format!("options:northd_internal_version={version}");
    sbctl(node, &["set", "SB_Global", ".", &v]);
}

/// Runs a successor on `old`'s directory with `env` until it exits; its status and log.
fn successor(old: &Node, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut new = instance_on(old.path(), env);
    let (st, took) = new.wait_exit(Duration::from_secs(60));
    let log = new.log();
    eprintln!(
        "successor exited {st} after {} ms:\n{log}",
        took.as_millis()
    );
    (st.code(), log)
}

/// The old node as it was: the same daemons, answering probes, and nothing private left.
fn assert_untouched(old: &Node, pids: &[(String, i32)], probes: &[&str]) {
    let mut now = old.daemon_pids();
    now.sort();
    let mut before = pids.to_vec();
    before.sort();
    assert_eq!(now, before, "the old node's daemons changed");
    for (name, pid) in pids {
        assert!(exists(*pid) && old.owns(*pid), "old {name} ({pid}) is gone");
    }
    for kind in probes {
        let (code, reason) = old.probe(kind);
        assert_eq!(code, 0, "old node's {kind}: {reason}");
    }
    let ovn_run = std::fs::read_dir(old.path().join("run/ovn")).unwrap();
    let private: Vec<_> = ovn_run
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".v"))
        .collect();
    assert!(private.is_empty(), "private run left {private:?}");
}

#[test]
fn a_successor_that_ovn_northd_would_not_accept_leaves_the_node_running() {
    let mut old = Node::new();
    // The running node does not match versions, so it works whatever ovn-northd's version.
    old.start(&[
        ("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "200"),
        ("OVS_OVN_SUPERVISOR_MATCH_NORTHD_VERSION", "false"),
    ]);
    old.wait_ready(READY);
    set_northd_version(&old, KUBE_OVN_NORTHD_VERSION);
    let pids = old.daemon_pids();
    let ours = northd_internal_version();

    let (code, log) = successor(&old, &[("OVS_OVN_SUPERVISOR_MATCH_NORTHD_VERSION", "true")]);
    assert_eq!(code, Some(4), "{log}");
    for needle in [ours, KUBE_OVN_NORTHD_VERSION] {
        assert!(log.contains(needle), "{needle} not named:\n{log}");
    }
    assert_untouched(&old, &pids, &["liveness", "readiness"]);
    assert_eq!(
        old.status().unwrap()["pid"],
        old.child.as_ref().unwrap().id(),
        "the old instance no longer runs the node"
    );

    // ovn-northd of our version: the takeover goes on, and the successor sets the key.
    set_northd_version(&old, ours);
    let mut new = instance_on(
        old.path(),
        &[
            ("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "200"),
            ("OVS_OVN_SUPERVISOR_MATCH_NORTHD_VERSION", "true"),
        ],
    );
    let new_pid = new.child.as_ref().unwrap().id() as i64;
    old.wait_owner(new_pid, READY, Some(&mut new), || {});
    let key = old.vsctl(&[
        "get",
        "Open_vSwitch",
        ".",
        "external_ids:ovn-match-northd-version",
    ]);
    assert_eq!(key, "\"true\"");
    for (name, pid) in &pids {
        assert!(!exists(*pid), "old {name} still runs after the handover");
    }
    new.signal("TERM");
    assert!(new.wait_exit(Duration::from_secs(30)).0.success());
}

#[test]
fn a_successor_that_cannot_read_the_southbound_leaves_the_node_running() {
    let sb_dir = tempfile::tempdir().unwrap();
    let (sb, remote) = southbound(sb_dir.path());
    let mut old = Node::new();
    let env = [
        ("OVN_SB_ADDR", remote.as_str()),
        ("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "200"),
    ];
    old.start(&env);
    old.wait_ready(READY);
    let pids = old.daemon_pids();
    drop(sb);

    let (code, log) = successor(&old, &env);
    assert_eq!(code, Some(4), "{log}");
    assert!(log.contains(&remote), "the Southbound is not named:\n{log}");
    assert!(
        log.contains(northd_internal_version()),
        "our version is not named:\n{log}"
    );
    // Readiness fails with the Southbound gone; the node itself runs on.
    assert_untouched(&old, &pids, &["liveness"]);
}

//! Readiness reports ovn-controller's version skew with ovn-northd (when Kube-OVN's upgrade hook
//! asks for matching versions), without failing liveness, and clears once the versions match.

use std::time::{Duration, Instant};

use super::READY;
use crate::harness::*;

fn sbctl(node: &Node, args: &[&str]) -> String {
    let db = node.path().join("run/ovn/ovnsb_db.sock");
    db_ctl("ovn-sbctl", &format!("unix:{}", db.display()), args)
}

/// Waits until `probe readiness` gives `code` with a reason containing `needle`.
fn wait_readiness(node: &Node, code: i32, needle: &str, within: Duration) -> String {
    let t0 = Instant::now();
    loop {
        let (c, reason) = node.probe("readiness");
        if c == code && reason.contains(needle) {
            return reason;
        }
        assert!(
            t0.elapsed() < within,
            "readiness never became {code} with {needle:?}; last: {c} {reason}; log:\n{}",
            node.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn readiness_reports_version_skew_with_ovn_northd() {
    let mut node = Node::new();
    node.start(&[("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "500")]);
    node.wait_ready(READY);
    // An ovn-northd of another version, and what Kube-OVN's upgrade hook sets.
    sbctl(
        &node,
        &[
            "set",
            "SB_Global",
            ".",
            "options:northd_internal_version=0.0.0-skewed",
        ],
    );
    node.vsctl(&[
        "set",
        "Open_vSwitch",
        ".",
        "external_ids:ovn-match-northd-version=true",
    ]);
    let reason = wait_readiness(
        &node,
        3,
        "does not match ovn-northd's (0.0.0-skewed)",
        READY,
    );
    assert_eq!(
        node.probe("liveness").0,
        0,
        "skew is no reason to restart anything"
    );
    // ovn-northd upgraded to ovn-controller's own version: ready again.
    let controller = reason
        .strip_prefix("ovn-controller's version ")
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("{reason}"));
    sbctl(
        &node,
        &[
            "set",
            "SB_Global",
            ".",
            &format!("options:northd_internal_version={controller}"),
        ],
    );
    // ovn-controller logs a persisting mismatch once a minute at most, so the skew ages out
    // of readiness a minute or so after it is gone.
    let t0 = Instant::now();
    wait_readiness(&node, 0, "ready", Duration::from_secs(120));
    println!(
        "version skew fixed: ready again after {} ms",
        t0.elapsed().as_millis()
    );
    assert!(node.stop().0.success());
}

/// A fresh or restored Southbound: `SB_Global` exists but ovn-northd has written no version.
/// ovn-controller then logs its mismatch line ending in `version - ` (the relay trims that
/// space) and applies nothing; readiness must say so.
#[test]
fn readiness_reports_skew_while_ovn_northd_has_written_no_version() {
    let mut node = Node::new();
    node.start(&[
        ("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "500"),
        ("OVS_OVN_SUPERVISOR_MATCH_NORTHD_VERSION", "true"),
    ]);
    // The sandbox's own Southbound has an SB_Global row and no ovn-northd.
    let reason = wait_readiness(&node, 3, "ovn-northd has not written its version", READY);
    assert!(
        reason.contains(northd_internal_version()),
        "not the installed ovn-controller's version: {reason}"
    );
    assert_eq!(sbctl(&node, &["get", "SB_Global", ".", "options"]), "{}");
    assert_eq!(
        node.vsctl(&[
            "get",
            "Open_vSwitch",
            ".",
            "external_ids:ovn-match-northd-version"
        ]),
        "\"true\""
    );
    assert_eq!(node.probe("liveness").0, 0, "skew is no reason to restart");
    assert!(node.stop().0.success());
}

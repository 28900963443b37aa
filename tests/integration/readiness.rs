//! Readiness driven by the real condition behind each of its checks.

use std::time::{Duration, Instant};

use crate::harness::*;

const READY: Duration = Duration::from_secs(30);

/// Polls `probe readiness` until `want(code, line)` holds; panics with the last answer after
/// `within`.
fn probe_until(node: &Node, within: Duration, want: impl Fn(i32, &str) -> bool) -> String {
    let t0 = Instant::now();
    loop {
        let (code, line) = node.probe("readiness");
        if want(code, &line) {
            return line;
        }
        assert!(
            t0.elapsed() < within,
            "last answer: {code} {line}\n{}",
            node.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A configuration vswitchd has not applied yet (`next_cfg` moved on, `cur_cfg` behind it: a
/// vswitchd stuck before its reconfiguration) is not ready, and the reason names both; once
/// vswitchd catches up the node is ready again. vswitchd is held with SIGSTOP, below the hung
/// limit, because a running one applies every change within milliseconds.
#[test]
fn a_configuration_vswitchd_has_not_applied_is_not_ready() {
    let mut node = Node::new();
    node.start(&[
        ("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "100"),
        ("OVS_OVN_SUPERVISOR_HUNG_AFTER_MS", "60000"),
    ]);
    node.wait_ready(READY);
    let switch = pid_of(&node, "ovs-vswitchd.pid").unwrap();
    kill("STOP", switch);
    node.vsctl(&["--no-wait", "set", "Open_vSwitch", ".", "next_cfg=4242"]);
    // A check that ran between the SIGSTOP and the change already fails on br-int.mgmt: the
    // verdict to wait for is the one that saw the change.
    let line = probe_until(&node, READY, |code, line| {
        code == 3 && line.contains("cur_cfg")
    });
    assert!(
        line.contains("cur_cfg") && line.contains("next_cfg Some(4242)"),
        "{line}"
    );
    kill("CONT", switch);
    probe_until(&node, READY, |code, _| code == 0);
    assert_eq!(
        pid_of(&node, "ovs-vswitchd.pid"),
        Some(switch),
        "vswitchd was restarted"
    );
    assert!(node.stop().0.success());
}

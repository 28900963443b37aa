//! What a takeover hands over, read back from the switch rather than from the log: the new
//! instance's vswitchd runs with `flow-restore-wait` set and br-int already holds the table the
//! old instance saved, before the new ovn-controller is even running.

use std::time::{Duration, Instant};

use crate::harness::*;

const READY: Duration = Duration::from_secs(30);
/// A flow nobody but this test installs: if the new br-int has it, the saved table was restored.
const MARKER: &str = "table=77,priority=4321,cookie=0x5eed0f,actions=drop";

/// `ovs-ofctl -O OpenFlow15 CMD br-int ARGS` on the node: its stdout.
fn ofctl(node: &Node, cmd: &str, args: &[&str]) -> String {
    let mgmt = format!(
        "unix:{}",
        node.path().join("run/openvswitch/br-int.mgmt").display()
    );
    run_ok(
        std::process::Command::new("ovs-ofctl")
            .args(["-O", "OpenFlow15", cmd, &mgmt])
            .args(args),
    )
}

fn br_int_flows(node: &Node) -> Vec<String> {
    ofctl(node, "dump-flows", &[])
        .lines()
        .filter(|l| l.contains("actions="))
        .map(String::from)
        .collect()
}

#[test]
fn the_new_vswitchd_runs_with_flow_restore_wait_and_the_saved_table() {
    let mut old = Node::new();
    old.start(&[]);
    old.wait_ready(READY);
    ofctl(&old, "add-flow", &[MARKER]);
    let saved = br_int_flows(&old);
    assert!(
        saved.iter().any(|f| f.contains("cookie=0x5eed0f")),
        "{saved:?}"
    );
    let old_switch = pid_of(&old, "ovs-vswitchd.pid").unwrap();

    // The successor's ovn-controller is held at its start: whatever br-int holds then came from
    // the restore, not from an ovn-controller.
    let dir = old.path().to_path_buf();
    let hold = hold_wrapper(&dir, "ovn-controller");
    let mut new = instance_on(&dir, &[("DEBUG_WRAPPER", hold.as_str())]);
    let new_pid = new.child.as_ref().unwrap().id() as i64;
    let t0 = Instant::now();
    while !old
        .status()
        .is_some_and(|s| s["pid"] == new_pid && s["stage"] == "ovn-controller")
    {
        if let Some(st) = new.child.as_mut().unwrap().try_wait().unwrap() {
            panic!("successor exited {st}:\n{}", new.log());
        }
        assert!(
            t0.elapsed() < READY,
            "successor never reached ovn-controller:\n{}",
            new.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let new_switch = pid_of(&old, "ovs-vswitchd.pid").unwrap();
    assert_ne!(new_switch, old_switch, "the successor's own vswitchd runs");
    assert!(exists(new_switch));
    assert_eq!(
        old.vsctl(&["get", "Open_vSwitch", ".", "other_config:flow-restore-wait"]),
        "\"true\"",
        "the new vswitchd runs without flow-restore-wait"
    );
    let restored = br_int_flows(&old);
    assert!(
        restored.iter().any(|f| f.contains("cookie=0x5eed0f")),
        "the marker flow was not restored: {restored:?}"
    );
    assert!(
        restored.len() >= saved.len(),
        "{} flows restored of {} saved",
        restored.len(),
        saved.len()
    );
}

//! The termination message kubelet shows as the last state's message (`kubectl describe pod`)
//! after a non-zero exit: after a crash loop it names the daemon and its last exits, stays
//! within the 4096 bytes kubelet reads, and replaces what a previous run left in the file; a
//! refused second instance (exit 4) says who runs the node.

use std::time::Duration;

use crate::harness::*;

const WITHIN: Duration = Duration::from_secs(45);

/// A previous run's message, longer than any we write, so a leftover tail would show.
fn leftover(path: &std::path::Path) {
    std::fs::write(path, "a previous run's message ".repeat(200)).unwrap();
}

#[test]
fn a_crash_loop_leaves_the_daemon_and_its_last_exits_as_the_termination_message() {
    let mut node = Node::new();
    let msg = node.path().join("termination-log");
    leftover(&msg);
    node.start(&[
        ("OVS_OVN_SUPERVISOR_CRASH_LOOP_RESTARTS", "2"),
        ("OVS_OVN_SUPERVISOR_CRASH_LOOP_WINDOW_MS", "120000"),
        ("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "150"),
        ("OVS_OVN_SUPERVISOR_TERMINATION_LOG", msg.to_str().unwrap()),
    ]);
    node.wait_ready(WITHIN);
    // Restarted twice (each time back to ready), killed a third time: the crash loop.
    node.crash_and_recover("ovn-controller.pid");
    node.crash_and_recover("ovn-controller.pid");
    kill("KILL", pid_of(&node, "ovn-controller.pid").unwrap());
    let (status, _) = node.wait_exit(WITHIN);
    assert_eq!(status.code(), Some(1), "{}", node.log());

    let text = std::fs::read_to_string(&msg).unwrap();
    eprintln!("termination message: {text}");
    assert!(text.len() <= 4096, "{} bytes", text.len());
    assert!(!text.contains("previous run"), "not replaced: {text:?}");
    assert!(text.starts_with("exit 1: ovn-controller "), "{text:?}");
    assert!(text.contains("crash loop"), "{text:?}");
    // Its three exits, each by kill -9, in the message.
    let exits = text
        .split_once("ovn-controller's last exits: ")
        .map(|(_, rest)| rest.split(';').next().unwrap_or(""))
        .unwrap_or_else(|| panic!("no last exits of ovn-controller: {text:?}"));
    assert_eq!(
        exits, "killed by SIGKILL, killed by SIGKILL, killed by SIGKILL",
        "{text:?}"
    );
    assert!(node.daemon_pids().iter().all(|(_, p)| !exists(*p)));
}

#[test]
fn a_refused_second_instance_names_the_one_running_the_node() {
    let mut first = Node::new();
    first.start(&[("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "150")]);
    first.wait_ready(WITHIN);
    let msg = first.path().join("termination-log");
    leftover(&msg);
    let out = base_command(first.path())
        .env("OVS_OVN_SUPERVISOR_TAKEOVER", "false")
        .env("OVS_OVN_SUPERVISOR_TERMINATION_LOG", &msg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let text = std::fs::read_to_string(&msg).unwrap();
    let sup = first.child.as_ref().unwrap().id();
    assert!(text.len() <= 4096, "{} bytes", text.len());
    assert!(text.starts_with("exit 4: "), "{text:?}");
    assert!(
        text.contains(&format!(
            "ovs-ovn-supervisor pid {sup} already runs this node"
        )),
        "{text:?}"
    );
    assert!(!text.contains("previous run"), "not replaced: {text:?}");
    assert_eq!(first.probe("readiness").0, 0);
    assert!(first.stop().0.success());
}

//! The start's failure paths driven for real: a stage that misses its deadline, and a daemon
//! that dies during the start. Each must end the run with exit 1, the documented message naming
//! the stage or daemon, and no process of the node left behind.

use std::time::{Duration, Instant};

use crate::harness::*;

/// Waits for the supervisor to exit, recording every process that descended from it meanwhile
/// (a leftover is reparented once its parent is gone, so it must be seen before).
fn exit_recording_descendants(
    node: &mut Node,
    within: Duration,
) -> (std::process::ExitStatus, Vec<i32>, Duration) {
    let sup = node.child.as_ref().unwrap().id();
    let t0 = Instant::now();
    let mut seen = Vec::new();
    loop {
        for p in descendants_of(sup) {
            if !seen.contains(&p) {
                seen.push(p);
            }
        }
        if let Some(st) = node.child.as_mut().unwrap().try_wait().unwrap() {
            return (st, seen, t0.elapsed());
        }
        assert!(
            t0.elapsed() < within,
            "still running after {within:?}:\n{}",
            node.log()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// ovs-vswitchd held at its start (it never applies the settings) with a 1 s stage deadline:
/// the run ends with exit 1 within a few seconds, naming the stage, the deadline and what it
/// waited for, and leaves nothing running.
#[test]
fn a_stage_past_its_deadline_exits_1_naming_it_and_leaves_nothing() {
    let mut node = Node::new();
    let wrapper = hold_wrapper(node.path(), "ovs-vswitchd");
    node.start(&[
        ("DEBUG_WRAPPER", wrapper.as_str()),
        ("OVS_OVN_SUPERVISOR_STAGE_DEADLINE_MS", "1000"),
        ("OVS_OVN_SUPERVISOR_STOP_BUDGET_MS", "4000"),
    ]);
    let (status, seen, took) = exit_recording_descendants(&mut node, Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "{status}:\n{}", node.log());
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let log = node.log();
    assert!(
        log.contains(
            "stage ovs-vswitchd: not done within 1s, waiting for ovs-vswitchd to apply the \
             settings (cur_cfg to reach next_cfg)"
        ),
        "{log}"
    );
    assert!(
        seen.len() >= 3,
        "the held vswitchd and the two ovsdb-servers: {seen:?}"
    );
    assert_all_gone(&seen, "after the missed deadline");
}

/// ovs-vswitchd dies (exit 7 of its own) during the start: the run ends with exit 1 naming the
/// daemon and how it ended, not a generic failure, and nothing is left.
#[test]
fn a_daemon_dying_during_the_start_exits_1_naming_it() {
    let mut node = Node::new();
    let path = node.path().join("die-vswitchd.sh");
    script(
        &path,
        "#!/bin/sh\ncase \"$1\" in */ovs-vswitchd) exit 7;; esac\nexec \"$@\"\n",
    );
    node.start(&[("DEBUG_WRAPPER", path.to_str().unwrap())]);
    let (status, seen, _) = exit_recording_descendants(&mut node, Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "{status}:\n{}", node.log());
    // The run's own error, as main prints it (the reaper's debug line names the status too).
    let log = node.log();
    let want = "exited unexpectedly with exit code 7; stopped the others in order";
    let line = log
        .lines()
        .find(|l| l.contains(want))
        .unwrap_or_else(|| panic!("no error naming the daemon's exit:\n{log}"));
    assert!(line.contains("ovs-vswitchd (pid "), "{line}");
    assert_all_gone(&seen, "after the daemon died");
}

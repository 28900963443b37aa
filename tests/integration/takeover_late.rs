//! `OVS_OVN_SUPERVISOR_TAKEOVER_FLOWS=keep-or-restore` (the kernel datapath's `auto`), read
//! back from the switch: the old instance saves br-int's table, the new one leaves br-int to
//! its own ovn-controller, and the saved table goes in only when flow-restore-wait must be
//! cleared with nothing of ovn-controller's in br-int. On this host's userspace datapath the
//! flag is set for a table handed over just as on the kernel one, so both paths run here.

use std::time::{Duration, Instant};

use crate::harness::*;
use crate::takeover_restore::{
    br_int_flows, flow_restore_wait, old_node_with_marker, saved_table, try_marked,
};

const READY: Duration = Duration::from_secs(30);
/// The cookie of the flow `old_node_with_marker` adds (`takeover_restore::MARKER`).
const MARKER_COOKIE: &str = "cookie=0x5eed0f";
const MODE: (&str, &str) = ("OVS_OVN_SUPERVISOR_TAKEOVER_FLOWS", "keep-or-restore");

/// (the old node's marker flow in br-int, the restore's mark in br-int, flow-restore-wait),
/// sampled from the moment the successor runs the node until the flag is cleared.
type Sample = (bool, bool, bool);

fn sample_until_cleared(old: &Node, new: &mut Node, within: Duration) -> Vec<Sample> {
    let new_pid = new.child.as_ref().unwrap().id() as i64;
    let t0 = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    loop {
        if let Some(st) = new.child.as_mut().unwrap().try_wait().unwrap() {
            panic!("successor exited {st}:\n{}", new.log());
        }
        assert!(
            t0.elapsed() < within,
            "flow-restore-wait never cleared: {:?}\n{}",
            samples.last(),
            new.log()
        );
        let ours = old.status().is_some_and(|s| s["pid"] == new_pid);
        let Some(mark) = try_marked(old).filter(|_| ours) else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        let marker = br_int_flows(old).iter().any(|f| f.contains(MARKER_COOKIE));
        let frw = flow_restore_wait(old);
        samples.push((marker, mark, frw));
        if !frw {
            return samples;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The successor's takeover figures (`status`), once it has ended: the flag cleared and
/// its duration published.
fn settled_takeover(node: &Node) -> serde_json::Value {
    let mut t = serde_json::Value::Null;
    wait_for("the takeover's end in status", READY, || {
        t = node
            .status()
            .map_or(serde_json::Value::Null, |s| s["takeover"].clone());
        t["duration_ms"].is_u64()
    });
    t
}

/// ovn-controller's answer to `debug/status` (`running` or `paused`).
fn controller_status(node: &Node, pid: i32) -> String {
    let ctl = node
        .path()
        .join(format!("run/ovn/ovn-controller.{pid}.ctl"));
    run_ok(
        std::process::Command::new("ovn-appctl")
            .arg("-t")
            .arg(&ctl)
            .arg("debug/status"),
    )
    .trim()
    .to_string()
}

/// The new ovn-controller cannot reach the Southbound (it went away with the takeover), so it
/// never puts a table. br-int stays empty under flow-restore-wait until the stage deadline
/// (5 s here), then holds the table the old node saved — its marker flow and the restore's
/// mark — before the flag is cleared, so the datapath forwards with it. The same
/// ovn-controller runs on, resumed: not killed, not left paused.
#[test]
fn with_no_table_from_ovn_controller_the_saved_one_goes_in_before_the_flag_is_cleared() {
    let sb_dir = tempfile::tempdir().unwrap();
    let (sb, remote) = southbound(sb_dir.path());
    let (old, saved) = old_node_with_marker(&[("OVN_SB_ADDR", remote.as_str())]);
    drop(sb);
    let dir = old.path().to_path_buf();
    let mut new = instance_on(
        &dir,
        &[
            MODE,
            ("OVN_SB_ADDR", remote.as_str()),
            // Nothing to read the northd version from: the takeover must go on without it.
            ("OVS_OVN_SUPERVISOR_MATCH_NORTHD_VERSION", "false"),
            ("OVS_OVN_SUPERVISOR_STAGE_DEADLINE_MS", "5000"),
        ],
    );
    let samples = sample_until_cleared(&old, &mut new, Duration::from_secs(60));
    let controller = pid_of(&old, "ovn-controller.pid").expect("ovn-controller runs");
    let flows = br_int_flows(&old);
    assert!(
        samples
            .first()
            .is_some_and(|&(marker, mark, frw)| !marker && !mark && frw),
        "the saved table went in at the start, not late: {samples:?}"
    );
    assert!(
        flows.iter().any(|f| f.contains(MARKER_COOKIE)) && try_marked(&old) == Some(true),
        "the saved table is not in br-int once flow-restore-wait is cleared: {flows:?}\n{}",
        new.log()
    );
    assert!(
        flows.len() >= saved.len(),
        "{} flows restored of {} saved",
        flows.len(),
        saved.len()
    );
    assert_eq!(
        pid_of(&old, "ovn-controller.pid"),
        Some(controller),
        "ovn-controller was restarted"
    );
    assert_eq!(controller_status(&old, controller), "running");
    // What `status` and the metrics count as restored: the late restore, whole.
    let t = settled_takeover(&old);
    assert!(
        t["saved"]["flows"].as_u64().is_some_and(|n| n > 0)
            && t["restored"]["flows"] == t["saved"]["flows"],
        "the late restore is not in the takeover's figures: {t}"
    );
    assert!(!saved_table(&old).exists(), "the saved table was left");
}

/// With the Southbound there, ovn-controller's own table comes and the saved one never goes
/// in: from the successor's start until the flag is cleared br-int never holds the old node's
/// marker flow or the restore's mark, and the flag is cleared on ovn-controller's table.
#[test]
fn with_ovn_controllers_table_in_time_the_saved_one_never_goes_in() {
    let (mut old, _) = old_node_with_marker(&[]);
    let dir = old.path().to_path_buf();
    let mut new = instance_on(&dir, &[MODE]);
    let samples = sample_until_cleared(&old, &mut new, Duration::from_secs(60));
    assert!(
        samples.iter().filter(|s| s.2).count() > 3,
        "flow-restore-wait was hardly ever seen set: {samples:?}"
    );
    assert!(
        !samples.iter().any(|&(marker, mark, _)| marker || mark),
        "the saved table went into br-int: {samples:?}\n{}",
        new.log()
    );
    let flows = br_int_flows(&old);
    assert!(
        !flows.is_empty() && !flows.iter().any(|f| f.contains(MARKER_COOKIE)),
        "{flows:?}"
    );
    old.wait_ready(READY);
    let t = settled_takeover(&old);
    assert!(t["restored"].is_null(), "nothing was restored: {t}");
    assert!(!saved_table(&old).exists(), "the saved table was left");
}

//! The migration from a `start-ovs.sh` node as our `/metrics` and `status` tell it: counted
//! once under `from="start-ovs"`, timed, and the flows we saved of the old switch and put
//! back into ours both equal to br-int's rule count before the takeover.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use super::old_node::{run_ok, start_old_node, HeldNetns};
use super::{new_dir, supervisor, READY};
use crate::harness::*;
use crate::http_metrics::{samples, settled_flow_count, stages_match_the_timeline, value};

const GROUP: &str = "group_id=4242,type=all,bucket=bucket_id=1,actions=drop";

/// Our endpoint, inside the node's network namespace (its own: the port is free there).
const HTTP: &str = "127.0.0.1:10668";

fn scrape_in(ns: &HeldNetns, d: &Path) -> BTreeMap<String, f64> {
    let mut c = ns.command(d, "curl");
    c.args(["--silent", "--fail", "--max-time", "5"])
        .arg(format!("http://{HTTP}/metrics"));
    samples(&run_ok(c))
}

fn host_status(d: &Path) -> serde_json::Value {
    let out = Command::new(BIN)
        .env_clear()
        .envs(host_dirs(d))
        .args(["status", "--output", "json"])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).expect("status answers")
}

#[test]
fn a_migration_is_counted_timed_and_its_flows_tallied() {
    // Dropped last: its guard stops our supervisor and anything left by pidfile.
    let mut node = Node {
        dir: new_dir(),
        child: None,
    };
    let d = node.path().to_path_buf();
    let (_sb, remote) = southbound(&d);
    let ns = HeldNetns::new();
    let mut lo = ns.command(&d, "ip");
    lo.args(["link", "set", "lo", "up"]);
    run_ok(lo);
    let _old = start_old_node(&ns, &d, &remote);
    // A group of someone else's (ovn-controller installs none here): it travels as the
    // foreign flow does, and is counted.
    let mut group = Command::new("ovs-ofctl");
    group.args(["-O", "OpenFlow15", "add-group", &br_int_mgmt(&d), GROUP]);
    run_ok(group);
    let flows = settled_flow_count(&d);

    let log = std::fs::File::create(node.log_path()).unwrap();
    let t0 = Instant::now();
    node.child = Some(
        supervisor(&ns, &d, &remote, "run")
            .env("OVS_OVN_SUPERVISOR_HTTP_ADDR", HTTP)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    wait_for("our node ready", READY, || {
        host_probe(&d, "readiness").0 == Some(0)
    });
    let took = t0.elapsed();
    let m = scrape_in(&ns, &d);
    let status = host_status(&d);

    assert_eq!(value(&m, "takeovers_total{from=\"start-ovs\"}"), 1.0);
    assert_eq!(value(&m, "takeovers_total{from=\"supervisor\"}"), 0.0);
    let duration = value(&m, "takeover_duration_seconds");
    assert!(
        duration > 0.0 && duration <= took.as_secs_f64(),
        "takeover {duration} s, seen by the test within {took:?}"
    );
    assert_eq!(
        value(&m, "flows_saved"),
        flows as f64,
        "br-int held {flows}"
    );
    assert_eq!(
        value(&m, "flows_restored"),
        flows as f64,
        "br-int held {flows}"
    );
    assert_eq!(value(&m, "flow_groups_saved"), 1.0);
    assert_eq!(value(&m, "flow_groups_restored"), 1.0);
    assert!(value(&m, "flows_save_duration_seconds") > 0.0);
    assert!(value(&m, "flows_restore_duration_seconds") > 0.0);
    assert_eq!(value(&m, "flow_restore_wait"), 0.0);

    eprintln!(
        "takeover figures: duration {duration} s (test saw ready after {took:?}); {flows} flows; save {} s, restore {} s",
        value(&m, "flows_save_duration_seconds"),
        value(&m, "flows_restore_duration_seconds")
    );
    let t = &status["takeover"];
    assert_eq!(t["from"], "start-ovs", "{status}");
    assert_eq!(t["duration_ms"].as_f64().unwrap() / 1000.0, duration);
    assert_eq!(t["saved"]["flows"], flows, "{status}");
    assert_eq!(t["restored"]["flows"], flows, "{status}");
    assert_eq!(t["restored"]["groups"], 1, "{status}");
    stages_match_the_timeline(&m, &status, &["takeover", "restore-flows"]);

    node.signal("TERM");
    let (st, _) = node.wait_exit(READY);
    assert!(st.success(), "{}", node.log());
}

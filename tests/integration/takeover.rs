//! Rolling-update takeover on the real daemons: a second instance on the same directory takes
//! the node over; never two ovsdb-servers on one conf.db nor two vswitchds on one run dir; the
//! old instance idles and exits 0 on SIGTERM without touching the new one's daemons. The time
//! br-int's OpenFlow table is unreachable or empty is printed for the notes.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::*;

const READY: Duration = Duration::from_secs(30);

#[test]
fn a_second_instance_takes_the_node_over_without_overlap() {
    let mut old = Node::new();
    old.start(&[("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "200")]);
    old.wait_ready(READY);
    let dir = old.path().to_path_buf();
    let system_id = old.file("etc/openvswitch/system-id.conf");
    let old_pids = old.daemon_pids();

    let conf_db = dir.join("etc/openvswitch/conf.db").display().to_string();
    let db_sock = dir.join("run/openvswitch/db.sock").display().to_string();
    let mgmt = format!("unix:{}", dir.join("run/openvswitch/br-int.mgmt").display());
    let sampler = Sampler::start(&conf_db, &db_sock, &mgmt);

    let t0 = Instant::now();
    let mut new = instance_on(&dir, &[("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "200")]);
    let new_pid = new.child.as_ref().unwrap().id() as i64;
    old.wait_owner(new_pid, READY, Some(&mut new), || {});
    let took = t0.elapsed();
    // Let the sampler see the settled node for a moment, then stop it.
    std::thread::sleep(Duration::from_millis(300));
    let Sampled {
        max_servers: servers,
        max_switches: switches,
        gap,
        longest,
    } = sampler.finish();
    eprintln!("takeover: ready after {} ms; br-int flow table unreachable or empty for {} ms in all (longest {} ms)", took.as_millis(), gap.as_millis(), longest.as_millis());
    assert_eq!(servers, 1, "two ovsdb-servers on one conf.db at once");
    assert_eq!(switches, 1, "two vswitchds on one run dir at once");

    // The old instance handed over: its daemons are gone, it idles, and exits 0 touching nothing.
    for (name, pid) in &old_pids {
        assert!(!exists(*pid), "old {name} still runs");
    }
    assert!(old.log().contains("handed the node over"), "{}", old.log());
    assert!(new.log().contains("restored br-int flows"), "{}", new.log());
    let new_pids = old.daemon_pids();
    assert!(old.stop().0.success());
    assert_eq!(old.daemon_pids(), new_pids);
    for (name, pid) in &new_pids {
        assert!(exists(*pid), "new {name} was touched by the old instance");
    }
    assert_eq!(
        old.probe("readiness").0,
        0,
        "node not ready after the old instance left"
    );
    assert_eq!(old.file("etc/openvswitch/system-id.conf"), system_id);
    let frw = Command::new("ovs-vsctl")
        .args([
            &format!("--db=unix:{db_sock}"),
            "get",
            "Open_vSwitch",
            ".",
            "other_config",
        ])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&frw.stdout).contains("flow-restore-wait"),
        "flow-restore-wait left set"
    );
    // The new instance stops cleanly too.
    let mut new = new;
    new.signal("TERM");
    assert!(new.wait_exit(Duration::from_secs(30)).0.success());
}

/// A node that died while flow-restore-wait was set (a takeover cut short, a power loss during
/// the wait for br-int's table): a vswitchd started with the flag left in conf.db would never
/// handle a new packet. The next start clears it, and the node is ready.
#[test]
fn a_flow_restore_wait_left_by_a_dead_node_is_cleared_at_the_next_start() {
    let mut node = Node::new();
    node.start(&[]);
    node.wait_ready(Duration::from_secs(30));
    node.vsctl(&[
        "set",
        "Open_vSwitch",
        ".",
        "other_config:flow-restore-wait=true",
    ]);
    node.power_loss();
    node.start(&[]);
    node.wait_ready(Duration::from_secs(30));
    let other = node.vsctl(&["get", "Open_vSwitch", ".", "other_config"]);
    assert!(!other.contains("flow-restore-wait"), "left set: {other}");
    assert!(node.stop().0.success());
}

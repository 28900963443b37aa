//! Supervision under faults, on the real daemons: crashes, hangs, a lost database, a crash
//! loop, stray signals. Recovery times are printed (`--nocapture`) for the notes; the tests
//! assert behaviour, not speed.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::*;

const READY: Duration = Duration::from_secs(30);

fn ext_id(node: &Node, key: &str) -> String {
    node.vsctl(&["get", "Open_vSwitch", ".", &format!("external_ids:{key}")])
        .trim_matches('"')
        .to_string()
}

/// Zombies among the supervisor's children: exited and never reaped.
fn zombies(sup: u32) -> Vec<i32> {
    children_of(sup)
        .into_iter()
        .filter(|p| state_of(*p) == Some('Z'))
        .collect()
}

#[test]
fn each_daemon_killed_three_times_comes_back_with_identity_and_settings() {
    let mut node = Node::new();
    node.start(&[
        ("NODE_NAME", "fault-node"),
        ("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "200"),
    ]);
    node.wait_ready(READY);
    let sup = node.child.as_ref().unwrap().id();
    let system_id = ext_id(&node, "system-id");
    for pidfile in [
        "ovnsb_db.pid",
        "ovsdb-server.pid",
        "ovs-vswitchd.pid",
        "ovn-controller.pid",
    ] {
        let times: Vec<u128> = (0..3)
            .map(|_| node.crash_and_recover(pidfile).as_millis())
            .collect();
        eprintln!("recovery after kill -9 of {pidfile}: {times:?} ms");
        assert_eq!(ext_id(&node, "system-id"), system_id);
        assert_eq!(ext_id(&node, "hostname"), "fault-node");
        assert_eq!(
            node.vsctl(&["get", "Bridge", "br-int", "datapath_type"]),
            "netdev"
        );
        assert!(zombies(sup).is_empty(), "zombies: {:?}", zombies(sup));
    }
    let status = node.status().unwrap();
    for d in status["daemons"].as_array().unwrap() {
        assert_eq!(d["restarts"], 3, "{d}");
        assert_eq!(d["state"], "running", "{d}");
        assert_eq!(d["last_exit"], "killed by SIGKILL", "{d}");
    }
    assert_eq!(
        node.file("etc/openvswitch/system-id.conf").trim(),
        system_id
    );
    assert!(node.stop().0.success());
}

#[test]
fn a_hung_vswitchd_is_killed_and_restarted() {
    let mut node = Node::new();
    node.start(&[
        ("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "200"),
        ("OVS_OVN_SUPERVISOR_HUNG_AFTER_MS", "1000"),
    ]);
    node.wait_ready(READY);
    let old = pid_of(&node, "ovs-vswitchd.pid").unwrap();
    let t0 = Instant::now();
    kill("STOP", old);
    loop {
        if pid_of(&node, "ovs-vswitchd.pid").is_some_and(|p| p != old)
            && node.probe("readiness").0 == 0
        {
            break;
        }
        assert!(
            t0.elapsed() < READY,
            "hung vswitchd not replaced:\n{}",
            node.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "hung vswitchd replaced and ready after {} ms",
        t0.elapsed().as_millis()
    );
    assert!(!exists(old), "the hung process was not reaped");
    assert!(
        node.log().contains("not answering; killing it"),
        "{}",
        node.log()
    );
    assert!(node.stop().0.success());
}

#[test]
fn ovsdb_server_losing_its_database_gets_it_back_with_our_settings() {
    let mut node = Node::new();
    node.start(&[("TUNNEL_TYPE", "vxlan")]);
    node.wait_ready(READY);
    let system_id = ext_id(&node, "system-id");
    std::fs::remove_file(node.path().join("etc/openvswitch/conf.db")).unwrap();
    node.crash_and_recover("ovsdb-server.pid");
    assert!(
        node.log().contains("database missing; creating it again"),
        "{}",
        node.log()
    );
    assert_eq!(ext_id(&node, "system-id"), system_id);
    assert_eq!(ext_id(&node, "ovn-encap-type"), "vxlan");
    assert_eq!(node.vsctl(&["list-br"]), "br-int");
    assert!(node.stop().0.success());
}

#[test]
fn a_crash_loop_stops_everything_and_exits_1_with_the_exits() {
    let mut node = Node::new();
    node.start(&[("OVS_OVN_SUPERVISOR_CRASH_LOOP_RESTARTS", "2")]);
    node.wait_ready(READY);
    node.crash_and_recover("ovs-vswitchd.pid");
    node.crash_and_recover("ovs-vswitchd.pid");
    let pids = node.daemon_pids();
    kill("KILL", pid_of(&node, "ovs-vswitchd.pid").unwrap());
    let (status, _) = node.wait_exit(READY);
    assert_eq!(status.code(), Some(1), "{}", node.log());
    let log = node.log();
    assert!(log.contains("ovs-vswitchd restarted 2 times"), "{log}");
    assert!(log.contains("ovs-vswitchd: killed by SIGKILL"), "{log}");
    for (name, pid) in pids {
        assert!(!exists(pid), "{name} pid {pid} left behind");
    }
}

#[test]
fn stray_signals_are_logged_not_fatal() {
    let mut node = Node::new();
    node.start(&[]);
    node.wait_ready(READY);
    node.signal("USR1");
    node.signal("USR2");
    let t0 = Instant::now();
    while !node.log().contains("signal=\"SIGUSR2\"") {
        assert!(t0.elapsed() < Duration::from_secs(10), "{}", node.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(node.probe("readiness").0, 0);
    assert!(node.stop().0.success());
}

/// A default-fatal signal other than SIGTERM (SIGALRM: OVS daemons die on it too) is an
/// ordered stop with exit 0, not the supervisor's death with its daemons orphaned; SIGPIPE is
/// ignored.
#[test]
fn sigalrm_is_an_ordered_stop_and_leaves_no_daemon() {
    let mut node = Node::new();
    node.start(&[]);
    node.wait_ready(READY);
    let pids = node.daemon_pids();
    assert_eq!(pids.len(), 4, "{pids:?}");
    // Children inherit the spawning thread's signal mask (std does not reset it): the
    // supervisor blocks signals early on, and none may still be blocked in a daemon.
    for (name, pid) in &pids {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let blocked = status.lines().find_map(|l| l.strip_prefix("SigBlk:"));
        assert_eq!(blocked.map(str::trim), Some("0000000000000000"), "{name}");
    }
    node.signal("PIPE");
    assert_eq!(node.probe("readiness").0, 0, "{}", node.log());
    node.signal("ALRM");
    let (status, took) = node.wait_exit(READY);
    eprintln!("SIGALRM: exit {status} after {} ms", took.as_millis());
    assert_eq!(status.code(), Some(0), "{status}\n{}", node.log());
    for (name, pid) in pids {
        assert!(!exists(pid), "{name} pid {pid} left behind");
    }
}

/// Processes whose command line names `dir`.
fn of_node(dir: &std::path::Path) -> Vec<String> {
    let dir = dir.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| Some((e.file_name(), std::fs::read(e.path().join("cmdline")).ok()?)))
        .map(|(pid, c)| {
            format!(
                "{}: {}",
                pid.to_string_lossy(),
                String::from_utf8_lossy(&c).replace('\0', " ")
            )
        })
        .filter(|c| c.contains(&dir))
        .collect()
}

/// Asserts nothing of `node` runs; kills what does first, so a failure leaves nothing behind.
fn assert_nothing_left(node: &Node) {
    let left = of_node(node.path());
    for l in &left {
        if let Some((pid, _)) = l.split_once(':') {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
    }
    assert!(left.is_empty(), "left running: {left:?}\n{}", node.log());
}

/// A `DEBUG_WRAPPER` that starts a helper of its own in a session of its own (as a profiler's
/// server might) before it execs ovn-controller: the node runs, stops on SIGTERM with exit 0,
/// and the helper is stopped with it.
#[test]
fn a_wrappers_detached_helper_is_stopped_with_the_node() {
    let mut node = Node::new();
    let wrapper = node.path().join("helper.sh");
    let marker = node.path().join("helper");
    script(&wrapper, &format!("#!/bin/sh\ncase \"$1\" in */ovn-controller) ( setsid tail -f /dev/null {} </dev/null >/dev/null 2>&1 & );; esac\nexec \"$@\"\n", marker.display()));
    node.start(&[("DEBUG_WRAPPER", wrapper.to_str().unwrap())]);
    node.wait_ready(READY);
    let helper = of_node(&marker);
    assert_eq!(helper.len(), 1, "{helper:?}");
    let (status, _) = node.stop();
    assert!(status.success(), "{status}\n{}", node.log());
    assert_nothing_left(&node);
}

/// A `DEBUG_WRAPPER` that double-forks ovsdb-server into a session of its own and exits: the
/// start fails (exit 1), and the detached daemon — our descendant, re-parented to us as
/// subreaper — is stopped with the rest, not left running.
#[test]
fn a_double_forking_wrapper_leaves_no_process_behind() {
    let mut node = Node::new();
    let wrapper = node.path().join("detach.sh");
    script(&wrapper, "#!/bin/sh\ncase \"$1\" in */ovsdb-server) ( setsid \"$@\" </dev/null >/dev/null 2>&1 & ); exit 0;; esac\nexec \"$@\"\n");
    node.start(&[("DEBUG_WRAPPER", wrapper.to_str().unwrap())]);
    let (status, _) = node.wait_exit(READY);
    assert_eq!(status.code(), Some(1), "{status}\n{}", node.log());
    assert_nothing_left(&node);
}

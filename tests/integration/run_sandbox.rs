//! End-to-end: `ovs-ovn-supervisor run --sandbox DIR` on the real Debian daemons.

use std::process::Command;
use std::time::Duration;

use crate::harness::*;

const READY: Duration = Duration::from_secs(30);

fn ext_id(node: &Node, key: &str) -> String {
    node.vsctl(&["get", "Open_vSwitch", ".", &format!("external_ids:{key}")])
        .trim_matches('"')
        .to_string()
}

fn other_config(node: &Node, key: &str) -> String {
    node.vsctl(&["get", "Open_vSwitch", ".", &format!("other_config:{key}")])
        .trim_matches('"')
        .to_string()
}

#[test]
fn sandbox_comes_up_with_every_setting_and_stops_cleanly() {
    let mut node = Node::new();
    node.start(&[
        ("NODE_NAME", "node-under-test"),
        ("OVN_REMOTE_PROBE_INTERVAL", "15000"),
        ("OVN_REMOTE_OPENFLOW_INTERVAL", "30"),
        ("TUNNEL_TYPE", "vxlan"),
        ("HW_OFFLOAD", "false"),
        ("OVS_OVN_SUPERVISOR_N_HANDLER_THREADS", "3"),
    ]);
    node.wait_ready(READY);
    assert_br_int_userspace_and_secure(&node);
    let system_id = node
        .file("etc/openvswitch/system-id.conf")
        .trim()
        .to_string();
    assert_every_setting(&node, &system_id);
    assert_chassis_registered(&node, &system_id);
    assert_br_int_mgmt_never_failed(&node);
    let (code, line) = node.probe("liveness");
    assert_eq!((code, line.starts_with("alive")), (0, true), "{line}");

    stop_in_order_leaving_no_daemon(&mut node);
    assert_chassis_kept_across_the_stop(&node, &system_id);
    // A clean stop removes the published state: probes now say the supervisor is gone.
    let (code, line) = node.probe("readiness");
    assert_eq!(code, 3);
    assert!(line.contains("not running"), "{line}");
}

/// br-int exists with the userspace datapath and the secure fail mode.
fn assert_br_int_userspace_and_secure(node: &Node) {
    assert_eq!(
        node.vsctl(&["get", "Bridge", "br-int", "datapath_type"]),
        "netdev"
    );
    assert_eq!(
        node.vsctl(&["get", "Bridge", "br-int", "fail_mode"]),
        "secure"
    );
}

/// Every setting of the one transaction, read back from the real database, and applied by
/// ovs-vswitchd.
fn assert_every_setting(node: &Node, system_id: &str) {
    assert_eq!(ext_id(node, "system-id"), system_id);
    assert_eq!(ext_id(node, "hostname"), "node-under-test");
    assert_eq!(
        ext_id(node, "rundir"),
        node.path().join("run/openvswitch").display().to_string()
    );
    assert_eq!(
        ext_id(node, "ovn-remote"),
        format!(
            "unix:{}",
            node.path().join("run/ovn/ovnsb_db.sock").display()
        )
    );
    assert_eq!(ext_id(node, "ovn-encap-type"), "vxlan");
    assert_eq!(ext_id(node, "ovn-remote-probe-interval"), "15000");
    assert_eq!(ext_id(node, "ovn-openflow-probe-interval"), "30");
    assert_eq!(ext_id(node, "ovn-bridge-remote-probe-interval"), "30000");
    assert_eq!(other_config(node, "n-handler-threads"), "3");
    let revalidators: u32 = other_config(node, "n-revalidator-threads").parse().unwrap();
    assert!(revalidators >= 1);
    assert_eq!(other_config(node, "hw-offload"), "false");
    let cur: i64 = node
        .vsctl(&["get", "Open_vSwitch", ".", "cur_cfg"])
        .parse()
        .unwrap();
    let next: i64 = node
        .vsctl(&["get", "Open_vSwitch", ".", "next_cfg"])
        .parse()
        .unwrap();
    assert!(cur >= next && next >= 1, "cur_cfg {cur} next_cfg {next}");
}

/// ovn-controller registered this chassis in the embedded Southbound.
fn assert_chassis_registered(node: &Node, system_id: &str) {
    let sb = format!(
        "unix:{}",
        node.path().join("run/ovn/ovnsb_db.sock").display()
    );
    let out = Command::new("ovn-sbctl")
        .args([
            &format!("--db={sb}"),
            "--timeout=10",
            "--bare",
            "--columns=name",
            "list",
            "Chassis",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), system_id);
}

/// The seed incident: ovn-controller never found br-int.mgmt missing or refusing.
fn assert_br_int_mgmt_never_failed(node: &Node) {
    let controller_log = node.file("log/ovn/ovn-controller.log");
    assert!(
        controller_log.contains("br-int.mgmt: connected"),
        "{controller_log}"
    );
    assert_eq!(
        controller_log.matches("connection failed").count(),
        0,
        "{controller_log}"
    );
}

/// SIGTERM: ordered stop, exit 0, every daemon gone (reaped, not a zombie), each one through
/// its own unixctl `exit` (no daemon logged a fatal signal: OVS daemons log `terminating with
/// signal` when SIGTERM reaches them), in dependency order as seen from `/proc`.
fn stop_in_order_leaving_no_daemon(node: &mut Node) {
    let pids = node.daemon_pids();
    assert_eq!(pids.len(), 4, "{pids:?}");
    let sup_pid = node.child.as_ref().unwrap().id();
    let before = descendants_of(sup_pid);
    assert!(before.len() >= 4, "{before:?}");
    let order = exit_order(pids.clone(), Duration::from_secs(30));
    let (status, took) = node.stop();
    assert!(status.success(), "{status}; log:\n{}", node.log());
    assert!(took < Duration::from_secs(25), "stop took {took:?}");
    for (name, pid) in &pids {
        assert!(!exists(*pid), "{name} pid {pid} left behind");
    }
    assert_all_gone(&before, "after the stop");
    let order: Vec<String> = order.join().unwrap().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        order,
        [
            "ovn-controller.pid",
            "ovs-vswitchd.pid",
            "ovsdb-server.pid",
            "ovnsb_db.pid"
        ],
        "exit order; log:\n{}",
        node.log()
    );
    for log in [
        "log/ovn/ovn-controller.log",
        "log/openvswitch/ovs-vswitchd.log",
        "log/openvswitch/ovsdb-server.log",
        "log/ovn/ovsdb-server-sb.log",
    ] {
        let text = node.file(log);
        assert!(
            !text.contains("terminating with signal"),
            "{log}: a signal, not unixctl exit, stopped it:\n{text}"
        );
    }
}

/// `exit --restart` keeps the chassis registered across the stop.
fn assert_chassis_kept_across_the_stop(node: &Node, system_id: &str) {
    let q = Command::new("ovsdb-tool")
        .arg("query")
        .arg(node.path().join("lib/ovn/ovnsb_db.db"))
        .arg(
            r#"["OVN_Southbound",{"op":"select","table":"Chassis","where":[],"columns":["name"]}]"#,
        )
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&q.stdout).contains(system_id));
}

#[test]
fn second_start_keeps_identity_restores_our_keys_and_keeps_foreign_ones() {
    let mut node = Node::new();
    node.start(&[]);
    node.wait_ready(READY);
    let first_id = ext_id(&node, "system-id");
    // Another component's keys, and one of ours changed behind our back.
    node.vsctl(&[
        "set",
        "Open_vSwitch",
        ".",
        "other_config:foreign-key=keep-me",
    ]);
    node.vsctl(&[
        "set",
        "Open_vSwitch",
        ".",
        "external_ids:ovn-encap-ip=10.9.8.7",
    ]);
    node.vsctl(&[
        "set",
        "Open_vSwitch",
        ".",
        "external_ids:ovn-encap-type=stt",
    ]);
    node.vsctl(&[
        "set",
        "Open_vSwitch",
        ".",
        "external_ids:kube-ovn-owned=yes",
    ]);
    assert!(node.stop().0.success());

    node.start(&[]);
    node.wait_ready(READY);
    assert_eq!(ext_id(&node, "system-id"), first_id);
    assert_eq!(node.file("etc/openvswitch/system-id.conf").trim(), first_id);
    assert_eq!(other_config(&node, "foreign-key"), "keep-me");
    assert_eq!(ext_id(&node, "kube-ovn-owned"), "yes");
    assert_eq!(ext_id(&node, "ovn-encap-type"), "geneve");
    // Exactly one br-int, one Open_vSwitch row.
    assert_eq!(node.vsctl(&["list-br"]), "br-int");
    assert!(node.stop().0.success());
    assert!(node.log().contains("action=Current"), "{}", node.log());
}

#[test]
fn dummy_network_mode_also_comes_up() {
    let mut node = Node::new();
    node.start(&[("OVS_OVN_SUPERVISOR_SANDBOX_NET", "dummy")]);
    node.wait_ready(READY);
    let (_, pid) = node
        .daemon_pids()
        .into_iter()
        .find(|(n, _)| n == "ovs-vswitchd.pid")
        .unwrap();
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(cmdline.contains("--enable-dummy=override"), "{cmdline:?}");
    assert!(node.stop().0.success());
}

#[test]
fn sigterm_during_each_start_stage_stops_cleanly() {
    for (daemon, stage) in [
        ("ovsdb-server", "southbound"),
        ("ovs-vswitchd", "ovs-vswitchd"),
        ("ovn-controller", "ovn-controller"),
    ] {
        let mut node = Node::new();
        let wrapper = hold_wrapper(node.path(), daemon);
        node.start(&[
            ("DEBUG_WRAPPER", wrapper.as_str()),
            ("OVS_OVN_SUPERVISOR_STOP_BUDGET_MS", "6000"),
        ]);
        node.wait_stage(stage, READY);
        let sup = node.child.as_ref().unwrap().id();
        let before = descendants_of(sup);
        assert!(!before.is_empty(), "{daemon}: no child to stop");
        let (status, took) = node.stop();
        assert!(status.success(), "{daemon}: {status}; log:\n{}", node.log());
        assert!(
            took < Duration::from_secs(8),
            "{daemon}: stop took {took:?}"
        );
        assert_all_gone(&before, daemon);
        for (name, pid) in node.daemon_pids() {
            assert!(!exists(pid), "{daemon}: {name} pid {pid} left behind");
        }
    }
}

#[test]
fn sighup_reopens_logs_instead_of_killing_daemons() {
    let mut node = Node::new();
    node.start(&[]);
    node.wait_ready(READY);
    let mut pids = node.daemon_pids();
    pids.sort();
    assert_eq!(pids.len(), 4, "{pids:?}");
    // logrotate's `create` mode: every daemon's log moved away; each must open a new one.
    let logs = [
        "log/openvswitch/ovs-vswitchd.log",
        "log/openvswitch/ovsdb-server.log",
        "log/ovn/ovn-controller.log",
        "log/ovn/ovsdb-server-sb.log",
    ];
    for l in logs {
        let log = node.path().join(l);
        std::fs::rename(&log, log.with_extension("log.1")).unwrap();
    }
    node.signal("HUP");
    let t0 = std::time::Instant::now();
    for l in logs {
        let log = node.path().join(l);
        while !log.exists() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "{l} not reopened:\n{}",
                node.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let mut after = node.daemon_pids();
    after.sort();
    assert_eq!(after, pids, "SIGHUP restarted or killed a daemon");
    assert!(pids.iter().all(|(_, p)| exists(*p)));
    let (code, line) = node.probe("readiness");
    assert_eq!(code, 0, "{line}");
    assert!(node.stop().0.success());
}

#[test]
fn probes_fail_with_a_reason_when_nothing_runs() {
    let node = Node::new();
    for kind in ["readiness", "liveness"] {
        let (code, line) = node.probe(kind);
        assert_eq!(code, 3, "{kind}: {line}");
        assert!(line.contains("supervisor not running"), "{kind}: {line}");
    }
}

/// Each daemon runs in its own log directory, never in the directory the supervisor was
/// started from: a daemon that dumps core (core_pattern `core`, the limit the supervisor
/// raises) writes it where its logs are, in a directory we own. Before, the daemons inherited
/// the supervisor's working directory, and a test run left a `core` in this repository.
#[test]
fn the_daemons_work_in_their_log_directories() {
    let mut node = Node::new();
    node.start(&[]);
    node.wait_ready(READY);
    let pids = node.daemon_pids();
    assert!(pids.len() >= 4, "{pids:?}");
    for (pidfile, pid) in pids {
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
        let want = match pidfile.as_str() {
            "ovsdb-server.pid" | "ovs-vswitchd.pid" => node.path().join("log/openvswitch"),
            "ovn-controller.pid" | "ovsdb-server-sb.pid" | "ovnsb_db.pid" => {
                node.path().join("log/ovn")
            }
            other => panic!("unexpected pidfile {other}"),
        };
        assert_eq!(cwd, want.canonicalize().unwrap(), "{pidfile}");
    }
    assert!(node.stop().0.success());
}

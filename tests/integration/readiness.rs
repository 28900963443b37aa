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

/// A Southbound that accepts connections and never answers (a hung ovsdb-server, a proxy in
/// front of a dead one): ovn-controller says `connected`, and the node must still not be
/// ready; the reason names the Southbound. Liveness holds (the Southbound is not ours).
#[test]
fn a_southbound_that_accepts_and_never_answers_is_not_ready() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let held = std::thread::spawn(move || {
        silent.set_nonblocking(true).unwrap();
        let (mut conns, t0) = (Vec::new(), Instant::now());
        while t0.elapsed() < Duration::from_secs(40) {
            if let Ok((c, _)) = silent.accept() {
                conns.push(c);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        conns.len()
    });
    let remote = format!("tcp:{addr}");
    let mut node = Node::new();
    node.start(&[
        ("OVS_OVN_SUPERVISOR_SANDBOX_NET", "dummy"),
        ("OVN_SB_ADDR", remote.as_str()),
        ("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "200"),
    ]);
    let t0 = Instant::now();
    while node.probe("startup").0 != 0 {
        assert!(t0.elapsed() < READY, "{}", node.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    // ovn-controller is connected to the silent server (state), and stays not ready.
    let ctl = || {
        let pid = pid_of(&node, "ovn-controller.pid").unwrap();
        node.path()
            .join(format!("run/ovn/ovn-controller.{pid}.ctl"))
    };
    let t0 = Instant::now();
    let mut connected_seen = 0;
    while t0.elapsed() < Duration::from_secs(8) {
        let out = std::process::Command::new("ovn-appctl")
            .arg("-t")
            .arg(ctl())
            .arg("connection-status")
            .output()
            .unwrap();
        let connected = String::from_utf8_lossy(&out.stdout).trim() == "connected";
        let (code, line) = node.probe("readiness");
        assert_eq!(code, 3, "ready against a silent Southbound: {line}");
        if connected {
            connected_seen += 1;
            if line.contains("holds no Southbound rows") {
                assert!(line.contains(&remote), "{line}");
            }
        }
        assert_eq!(node.probe("liveness").0, 0);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        connected_seen > 10,
        "ovn-controller was never connected to the silent server"
    );
    assert!(node.stop().0.success());
    assert!(held.join().unwrap() >= 1);
}

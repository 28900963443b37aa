//! Probes and `status` against a real sandbox node, in every state a node can be in, plus abuse
//! of the control socket.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::*;

const READY: Duration = Duration::from_secs(30);

fn probe_t(node: &Node, kind: &str, timeout_ms: u64) -> (i32, String, Duration) {
    let t0 = Instant::now();
    let out = Command::new(BIN)
        .env_clear()
        .args([
            "probe",
            kind,
            "--timeout-ms",
            &timeout_ms.to_string(),
            "--sandbox",
        ])
        .arg(node.path())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        t0.elapsed(),
    )
}

fn wait_probe(node: &Node, kind: &str, want: i32, within: Duration) -> String {
    let t0 = Instant::now();
    loop {
        let (code, line, _) = probe_t(node, kind, 1000);
        if code == want {
            return line;
        }
        assert!(
            t0.elapsed() < within,
            "{kind} still {code} ({line}) after {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn probes_while_starting_ready_hung_and_gone() {
    let mut node = Node::new();
    // Hold vswitchd at its start, as a slow vswitchd would.
    let hold = node.path().join("hold.sh");
    std::fs::write(&hold, "#!/bin/sh\n[ -e \"$0.go\" ] || case \"$1\" in */ovs-vswitchd) while [ ! -e \"$0.go\" ]; do sleep 0.01; done;; esac\nexec \"$@\"\n").unwrap();
    std::fs::set_permissions(&hold, std::fs::Permissions::from_mode(0o755)).unwrap();
    node.start(&[
        ("DEBUG_WRAPPER", hold.to_str().unwrap()),
        ("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "200"),
    ]);
    node.wait_stage("ovs-vswitchd", READY);
    let (code, line, _) = probe_t(&node, "startup", 1000);
    assert_eq!((code, line.as_str()), (3, "starting: stage ovs-vswitchd"));
    let (code, line, _) = probe_t(&node, "liveness", 1000);
    assert_eq!(code, 0, "liveness must pass while starting: {line}");
    let (code, line, _) = probe_t(&node, "readiness", 1000);
    assert_eq!((code, line.as_str()), (3, "starting: stage ovs-vswitchd"));

    std::fs::write(node.path().join("hold.sh.go"), "").unwrap();
    node.wait_ready(READY);
    for kind in ["startup", "liveness", "readiness"] {
        let (code, line, _) = probe_t(&node, kind, 1000);
        assert_eq!(code, 0, "{kind}: {line}");
    }

    // Hung vswitchd: alive as a process, silent on its socket.
    let vswitchd = pid_of(&node, "ovs-vswitchd.pid").unwrap();
    kill("STOP", vswitchd);
    // Found by the next background check (every 200 ms here, each bounded to 500 ms).
    let line = wait_probe(&node, "liveness", 3, Duration::from_secs(10));
    assert!(line.contains("ovs-vswitchd does not answer"), "{line}");
    let (code, _, took) = probe_t(&node, "readiness", 1000);
    assert_eq!(code, 3);
    assert!(took < Duration::from_secs(5), "probe took {took:?}");
    kill("CONT", vswitchd);
    wait_probe(&node, "liveness", 0, Duration::from_secs(10));

    // A frozen supervisor: the probe gives up on its own deadline with the reason.
    let sup = node.child.as_ref().unwrap().id() as i32;
    kill("STOP", sup);
    let (code, line, took) = probe_t(&node, "liveness", 300);
    kill("CONT", sup);
    assert_eq!(code, 3);
    assert!(line.contains("did not answer within 300 ms"), "{line}");
    assert!(took < Duration::from_secs(5), "probe took {took:?}");

    // The supervisor is gone (kill -9): its socket file stays, nobody listens.
    kill("KILL", sup);
    node.wait_exit(Duration::from_secs(10));
    let (code, line, _) = probe_t(&node, "liveness", 1000);
    assert_eq!(code, 3);
    assert!(line.contains("supervisor gone"), "{line}");
}

#[test]
fn southbound_outage_fails_readiness_but_never_liveness() {
    let dir = tempfile::tempdir().unwrap();
    let (mut sb, remote) = southbound(dir.path());
    let mut node = Node::new();
    node.start(&[
        ("OVN_SB_ADDR", &remote),
        ("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "200"),
    ]);
    node.wait_ready(READY);
    assert!(
        node.daemon_pids().iter().all(|(n, _)| n != "ovnsb_db.pid"),
        "no embedded SB when one is given"
    );

    sb.0.kill().unwrap();
    sb.0.wait().unwrap();
    let line = wait_probe(&node, "readiness", 3, Duration::from_secs(10));
    assert!(line.contains("OVN Southbound"), "{line}");
    let (code, line, _) = probe_t(&node, "liveness", 1000);
    assert_eq!(code, 0, "liveness must not depend on the SB: {line}");
    assert!(node.stop().0.success());
}

fn raw(node: &Node, bytes: &[u8]) -> String {
    let mut s =
        UnixStream::connect(node.path().join("run/openvswitch/ovs-ovn-supervisor.sock")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(bytes);
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn control_socket_survives_abuse_and_status_reports_the_daemons() {
    let mut node = Node::new();
    node.start(&[]);
    node.wait_ready(READY);
    let sock = node.path().join("run/openvswitch/ovs-ovn-supervisor.sock");
    assert_eq!(
        std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777,
        0o600
    );

    assert!(raw(&node, b"{not json").contains("error"));
    assert!(raw(&node, br#"{"id":1,"method":"reboot","params":[]}"#).contains("unknown method"));
    assert!(raw(&node, br#"[1,2,3]"#).contains("error"));
    // Oversized: a string that never ends.
    let mut big = br#"{"id":1,"method":""#.to_vec();
    big.extend(std::iter::repeat_n(b'x', 200 * 1024));
    assert!(raw(&node, &big).contains("error"));
    // Slow clients holding connections open do not stop probes from being answered.
    let idle: Vec<UnixStream> = (0..24)
        .map(|_| UnixStream::connect(&sock).unwrap())
        .collect();
    let (code, line, _) = probe_t(&node, "readiness", 1000);
    assert_eq!(code, 0, "{line}");
    // A client that never finishes its request is cut off by the read deadline.
    let mut slow = UnixStream::connect(&sock).unwrap();
    slow.write_all(br#"{"id":1,"meth"#).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut out = String::new();
    slow.read_to_string(&mut out).unwrap();
    assert!(out.contains("no complete request"), "{out}");
    drop(idle);

    let status = node.status().unwrap();
    let daemons = status["daemons"].as_array().unwrap();
    let pids = node.daemon_pids();
    assert_eq!(daemons.len(), 4);
    for d in daemons {
        assert_eq!(d["state"], "running", "{d}");
        let pidfile = match d["name"].as_str().unwrap() {
            "ovsdb-server-sb" => "ovnsb_db.pid".to_string(),
            n => format!("{n}.pid"),
        };
        let want = pids.iter().find(|(n, _)| *n == pidfile).unwrap().1;
        assert_eq!(d["pid"].as_i64(), Some(want as i64), "{d}");
    }
    assert_eq!(status["timeline"].as_array().unwrap().len(), 7);
    let table = Command::new(BIN)
        .env_clear()
        .args(["status", "--sandbox"])
        .arg(node.path())
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    for name in [
        "ovsdb-server-sb",
        "ovsdb-server",
        "ovs-vswitchd",
        "ovn-controller",
        "start timeline",
        "RESTARTS",
        "LAST RESTART",
    ] {
        assert!(table.contains(name), "{table}");
    }
    assert!(node.stop().0.success());
}

#[test]
fn readiness_marker_follows_readiness() {
    let mut node = Node::new();
    let marker = node.path().join("marker/ovs-ready");
    std::fs::create_dir_all(marker.parent().unwrap()).unwrap();
    node.start(&[
        ("OVS_OVN_SUPERVISOR_READY_FILE", marker.to_str().unwrap()),
        ("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "200"),
    ]);
    node.wait_ready(READY);
    let wait = |present: bool| {
        let t0 = Instant::now();
        while marker.exists() != present {
            assert!(
                t0.elapsed() < Duration::from_secs(15),
                "marker present={} wanted {present}",
                marker.exists()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait(true);
    let vswitchd = pid_of(&node, "ovs-vswitchd.pid").unwrap();
    kill("STOP", vswitchd);
    wait(false);
    kill("CONT", vswitchd);
    wait(true);
    assert!(node.stop().0.success());
    assert!(!marker.exists());
}

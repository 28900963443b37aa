//! The HTTP endpoint of a real node: its verdicts are `probe`'s, its metrics move as the node
//! does, it is read-only, a port someone else holds leaves the node running and is taken once
//! free, and a flood of idle clients does not touch the exec probes. The sandbox runs with
//! dummy devices here so that the supervisor, and so its listener, stay in the test's network
//! namespace; the port is any free one, read back from `status`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::harness::*;

const READY: Duration = Duration::from_secs(30);

fn start(node: &mut Node, addr: &str) {
    node.start(&[
        ("OVS_OVN_SUPERVISOR_SANDBOX_NET", "dummy"),
        ("OVS_OVN_SUPERVISOR_HTTP_ADDR", addr),
        ("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "200"),
    ]);
    node.wait_ready(READY);
}

/// The address the node's endpoint listens on, once it does.
fn http_addr(node: &Node, within: Duration) -> SocketAddr {
    let t0 = Instant::now();
    loop {
        if let Some(a) = node
            .status()
            .and_then(|s| s["http_addr"].as_str().map(String::from))
        {
            return a.parse().unwrap();
        }
        assert!(t0.elapsed() < within, "no HTTP endpoint:\n{}", node.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One request; the status code, the Content-Type and the body.
fn request(addr: SocketAddr, method: &str, path: &str, accept: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: node\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let ct = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(String::from)
        })
        .unwrap_or_default();
    (code, ct, body.to_string())
}

fn metric(addr: SocketAddr, line_prefix: &str) -> Option<f64> {
    let (_, _, body) = request(addr, "GET", "/metrics", "text/plain");
    body.lines()
        .find_map(|l| l.strip_prefix(line_prefix)?.trim().parse().ok())
}

#[test]
fn endpoints_answer_as_probe_does_and_metrics_follow_the_node() {
    let mut node = Node::new();
    start(&mut node, "127.0.0.1:0");
    let addr = http_addr(&node, READY);
    for (path, kind) in [
        ("/readyz", "readiness"),
        ("/livez", "liveness"),
        ("/startupz", "startup"),
    ] {
        let (code, _, body) = request(addr, "GET", path, "*/*");
        let (pcode, line) = node.probe(kind);
        assert_eq!((code, pcode), (200, 0), "{path}: {body}");
        assert_eq!(body.trim(), line, "{path}");
    }
    let (code, ct, body) = request(addr, "GET", "/status", "*/*");
    assert_eq!((code, ct.as_str()), (200, "application/json"));
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["pid"], node.child.as_ref().unwrap().id());
    // Read-only: a state-changing method is refused and changes nothing.
    let pids = node.daemon_pids();
    for path in ["/readyz", "/status", "/handover"] {
        let (code, _, _) = request(addr, "POST", path, "*/*");
        assert!(code == 405 || code == 404, "POST {path}: {code}");
    }
    assert_eq!(node.daemon_pids(), pids);

    let signal =
        "ovs_ovn_supervisor_daemon_restarts_total{daemon=\"ovn-controller\",cause=\"signal\"}";
    assert_eq!(metric(addr, signal), Some(0.0));
    assert_eq!(metric(addr, "ovs_ovn_supervisor_ready"), Some(1.0));
    for d in [
        "ovsdb-server",
        "ovs-vswitchd",
        "ovn-controller",
        "ovsdb-server-sb",
    ] {
        let up = format!("ovs_ovn_supervisor_daemon_up{{daemon=\"{d}\"}}");
        assert_eq!(metric(addr, &up), Some(1.0), "{d}");
        let rss = format!("ovs_ovn_supervisor_process_resident_memory_bytes{{process=\"{d}\"}}");
        assert!(metric(addr, &rss).is_some_and(|b| b > 1e6), "{d}");
    }
    assert!(metric(addr, "ovs_ovn_supervisor_start_duration_seconds").is_some_and(|s| s > 0.0));

    // kill -9 ovn-controller: the endpoint's readiness follows probe's, and the restart is
    // counted under its cause once it is back.
    let controller = pid_of(&node, "ovn-controller.pid").unwrap();
    kill("KILL", controller);
    let t0 = Instant::now();
    loop {
        let (code, _, _) = request(addr, "GET", "/readyz", "*/*");
        let again = pid_of(&node, "ovn-controller.pid").is_some_and(|p| p != controller);
        if code == 200 && again && node.probe("readiness").0 == 0 {
            break;
        }
        assert!(t0.elapsed() < READY, "not ready again:\n{}", node.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(metric(addr, signal), Some(1.0));
    let last = "ovs_ovn_supervisor_daemon_last_exit_signal{daemon=\"ovn-controller\"}";
    assert_eq!(metric(addr, last), Some(9.0));
    assert!(node.stop().0.success());
}

#[test]
fn a_port_taken_by_someone_else_leaves_the_node_running_and_is_taken_once_free() {
    let squatter = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = squatter.local_addr().unwrap();
    let mut node = Node::new();
    start(&mut node, &port.to_string());
    // Ready through the exec probe while someone else holds the port.
    assert_eq!(node.probe("readiness").0, 0);
    assert!(node.status().unwrap()["http_addr"].is_null());
    drop(squatter);
    assert_eq!(http_addr(&node, Duration::from_secs(10)), port);
    assert_eq!(request(port, "GET", "/readyz", "*/*").0, 200);
    assert!(node.stop().0.success());
}

#[test]
fn a_flood_of_idle_http_clients_does_not_touch_the_exec_probes() {
    let mut node = Node::new();
    start(&mut node, "127.0.0.1:0");
    let addr = http_addr(&node, READY);
    let pids = node.daemon_pids();
    let idle: Vec<TcpStream> = (0..200)
        .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok())
        .collect();
    assert!(idle.len() > 100, "{}", idle.len());
    for _ in 0..20 {
        assert_eq!(node.probe("readiness").0, 0);
    }
    drop(idle);
    // The idle ones are dropped at the header deadline; the endpoint answers again.
    let t0 = Instant::now();
    while request(addr, "GET", "/readyz", "*/*").0 != 200 {
        assert!(t0.elapsed() < Duration::from_secs(10));
    }
    assert_eq!(node.daemon_pids(), pids);
    assert!(node.stop().0.success());
}

/// A run that fails (a stage past its deadline) leaves its reason where kubelet reads it;
/// a path that does not exist is not created.
#[test]
fn a_failed_run_leaves_a_termination_message() {
    let mut node = Node::new();
    let msg = node.path().join("termination-log");
    std::fs::write(&msg, "").unwrap();
    let wrapper = hold_wrapper(node.path(), "ovs-vswitchd");
    node.start(&[
        ("DEBUG_WRAPPER", wrapper.as_str()),
        ("OVS_OVN_SUPERVISOR_STAGE_DEADLINE_MS", "1000"),
        ("OVS_OVN_SUPERVISOR_TERMINATION_LOG", msg.to_str().unwrap()),
    ]);
    let (status, _) = node.wait_exit(READY);
    assert_eq!(status.code(), Some(1));
    let text = std::fs::read_to_string(&msg).unwrap();
    assert!(
        text.starts_with("exit 1: stage ovs-vswitchd: not done within 1s"),
        "{text:?}"
    );
    assert!(text.len() <= 4096);

    let mut node = Node::new();
    let missing = node.path().join("no-such-dir/termination-log");
    let wrapper = hold_wrapper(node.path(), "ovs-vswitchd");
    node.start(&[
        ("DEBUG_WRAPPER", wrapper.as_str()),
        ("OVS_OVN_SUPERVISOR_STAGE_DEADLINE_MS", "1000"),
        (
            "OVS_OVN_SUPERVISOR_TERMINATION_LOG",
            missing.to_str().unwrap(),
        ),
    ]);
    assert_eq!(node.wait_exit(READY).0.code(), Some(1));
    assert!(!missing.exists() && !missing.parent().unwrap().exists());
}

/// Every metric the shipped Grafana dashboard queries exists in a real node's `/metrics` (a
/// renamed metric would leave a panel silently empty).
#[test]
fn every_metric_the_dashboard_queries_is_served() {
    let dashboard: serde_json::Value = serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/images/monitoring/ovs-ovn-supervisor-grafana.json"
    )))
    .unwrap();
    let mut wanted = std::collections::BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(i) = rest.find("ovs_ovn_supervisor_") {
                let name: String = rest[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &rest[i + name.len()..];
                wanted.insert(name);
            }
        }
    }
    assert!(wanted.len() >= 10, "{wanted:?}");
    let mut node = Node::new();
    start(&mut node, "127.0.0.1:0");
    let addr = http_addr(&node, READY);
    // Two restarts first, so that the metrics only a restarted daemon has are there too: one
    // killed by a signal (ovn-controller), one that exits with a code (ovs-vswitchd's own
    // unixctl `exit`, which we did not ask for).
    let controller = pid_of(&node, "ovn-controller.pid").unwrap();
    kill("KILL", controller);
    let switch = pid_of(&node, "ovs-vswitchd.pid").unwrap();
    let ctl = node
        .path()
        .join(format!("run/openvswitch/ovs-vswitchd.{switch}.ctl"));
    run_ok(
        std::process::Command::new("ovs-appctl")
            .arg("-t")
            .arg(&ctl)
            .arg("exit"),
    );
    let t0 = Instant::now();
    while !(pid_of(&node, "ovn-controller.pid").is_some_and(|p| p != controller)
        && pid_of(&node, "ovs-vswitchd.pid").is_some_and(|p| p != switch)
        && node.probe("readiness").0 == 0)
    {
        assert!(t0.elapsed() < READY, "{}", node.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    request(addr, "GET", "/readyz", "*/*");
    let (_, _, body) = request(addr, "GET", "/metrics", "application/openmetrics-text");
    let served: std::collections::BTreeSet<&str> = body
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let missing: Vec<&String> = wanted
        .iter()
        .filter(|m| !served.contains(m.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries {missing:?}; served: {served:?}"
    );
    assert!(node.stop().0.success());
}

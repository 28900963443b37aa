//! kubelet's two ways of probing the pod never disagree: the HTTP endpoint's `/livez`,
//! `/readyz`, `/startupz` against `probe liveness|readiness|startup`, sampled continuously
//! ([`VerdictSampler`]: probe, GET, probe) through every state a node goes through — the
//! start from the moment the port answers, kill -9 of each daemon and its way back to ready, a
//! hung daemon, a busy one, the Southbound down and back, and a handover to a second instance. Each phase
//! is held (a daemon's restart held by the wrapper, a daemon stopped, the Southbound killed)
//! until the sampler has compared it, so no phase passes unsampled on a loaded machine.
//!
//! The sandbox runs with dummy devices so the supervisor, and so its listener, stay in the
//! test's network namespace; the port is a free one chosen before the start, so the sampler
//! reaches it from its first answer on.

use std::net::SocketAddr;
use std::time::Duration;

use crate::harness::*;

const WITHIN: Duration = Duration::from_secs(45);

/// The node's settings here: health checks every 150 ms, a stopped daemon judged hung (and
/// killed) only after a minute, so a test holds it as long as it needs.
fn env<'a>(addr: &'a str, wrapper: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("OVS_OVN_SUPERVISOR_SANDBOX_NET", "dummy"),
        ("OVS_OVN_SUPERVISOR_HTTP_ADDR", addr),
        ("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "150"),
        ("OVS_OVN_SUPERVISOR_HUNG_AFTER_MS", "60000"),
        ("DEBUG_WRAPPER", wrapper),
    ]
}

fn target(name: &'static str, addr: SocketAddr, owner: Option<i64>) -> Target {
    Target { name, addr, owner }
}

/// Every kind compared passing on `t` more often than it was so far.
fn wait_all_pass(s: &VerdictSampler, t: &str) {
    let seen = s.seen();
    for (kind, _) in KINDS {
        s.wait(t, kind, true, seen.count(t, kind, true), WITHIN);
    }
}

fn assert_agreed(seen: &Seen) {
    eprintln!(
        "verdicts compared: {:?}, skipped {}; by line: {:#?}",
        seen.counts, seen.skipped, seen.lines
    );
    assert!(
        seen.disagreements.is_empty(),
        "the HTTP endpoint and probe disagreed: {:#?}",
        seen.disagreements
    );
}

/// From the moment the port answers (the start held at ovs-vswitchd: not started, not ready,
/// alive) until ready, then kill -9 of each daemon, its restart held until the sampler saw the
/// node not ready, then back to ready.
#[test]
fn http_and_probe_agree_through_the_start_and_a_kill_of_each_daemon() {
    let mut node = Node::new();
    let holds = Holds::new(node.path());
    let addr = free_local_addr();
    let (a, w) = (addr.to_string(), holds.wrapper());
    let s = VerdictSampler::start(node.path(), vec![target("node", addr, None)]);
    holds.hold("ovs-vswitchd");
    node.start(&env(&a, &w));
    s.wait("node", "startup", false, 0, WITHIN);
    s.wait("node", "readiness", false, 0, WITHIN);
    s.wait("node", "liveness", true, 0, WITHIN);
    holds.release("ovs-vswitchd");
    node.wait_ready(WITHIN);
    wait_all_pass(&s, "node");

    for (daemon, pidfile) in [
        ("ovsdb-server", "ovsdb-server.pid"),
        ("ovs-vswitchd", "ovs-vswitchd.pid"),
        ("ovn-controller", "ovn-controller.pid"),
        ("ovsdb-server-sb", "ovnsb_db.pid"),
    ] {
        let pid = pid_of(&node, pidfile).unwrap();
        let before = s.seen().count("node", "readiness", false);
        holds.hold(daemon);
        kill("KILL", pid);
        s.wait("node", "readiness", false, before, WITHIN);
        let down = s.seen();
        holds.release(daemon);
        wait_for(&format!("{daemon} restarted"), WITHIN, || {
            pid_of(&node, pidfile).is_some_and(|p| p != pid && exists(p))
        });
        s.wait(
            "node",
            "readiness",
            true,
            down.count("node", "readiness", true),
            WITHIN,
        );
        wait_all_pass(&s, "node");
    }
    let seen = s.finish();
    assert_agreed(&seen);
    assert!(node.stop().0.success());
}

/// ovs-vswitchd stopped (SIGSTOP: alive as a process, silent on its socket — not alive, not
/// ready) and back; then the central Southbound killed (not ready, alive all along) and back.
#[test]
fn http_and_probe_agree_while_a_daemon_is_hung_and_while_the_southbound_is_down() {
    let sbdir = tempfile::tempdir().unwrap();
    let (sb, remote) = southbound(sbdir.path());
    let mut node = Node::new();
    let holds = Holds::new(node.path());
    let addr = free_local_addr();
    let (a, w) = (addr.to_string(), holds.wrapper());
    let mut e = env(&a, &w);
    e.push(("OVN_SB_ADDR", &remote));
    node.start(&e);
    node.wait_ready(WITHIN);
    let s = VerdictSampler::start(node.path(), vec![target("node", addr, None)]);
    wait_all_pass(&s, "node");

    let vswitchd = pid_of(&node, "ovs-vswitchd.pid").unwrap();
    kill("STOP", vswitchd);
    s.wait("node", "liveness", false, 0, WITHIN);
    s.wait("node", "readiness", false, 0, WITHIN);
    kill("CONT", vswitchd);
    wait_all_pass(&s, "node");
    assert_eq!(pid_of(&node, "ovs-vswitchd.pid"), Some(vswitchd));

    let seen = s.seen();
    drop(sb);
    s.wait(
        "node",
        "readiness",
        false,
        seen.count("node", "readiness", false),
        WITHIN,
    );
    let (live, down) = (s.seen().count("node", "liveness", true), s.seen());
    s.wait("node", "liveness", true, live, WITHIN);
    assert_eq!(
        s.seen().count("node", "liveness", false),
        down.count("node", "liveness", false),
        "liveness failed with the Southbound down"
    );
    let _sb = serve_southbound(sbdir.path(), &sbdir.path().join("sb.db"));
    wait_all_pass(&s, "node");
    let seen = s.finish();
    assert_agreed(&seen);
    assert!(node.stop().0.success());
}

/// ovn-controller computing a large table ([`crate::busy::load`]): silent with its main thread
/// busy — alive ("busy computing"), not ready. Its computation lasts about 2 s here; if the
/// sampler has not compared a busy liveness yet when the table is complete, the address set
/// is replaced by another as large, which starts the computation again.
#[test]
fn http_and_probe_agree_while_ovn_controller_is_busy() {
    use serde_json::json;
    let mut node = Node::new();
    let holds = Holds::new(node.path());
    let addr = free_local_addr();
    let (a, w) = (addr.to_string(), holds.wrapper());
    node.start(&env(&a, &w));
    node.wait_ready(WITHIN);
    let s = VerdictSampler::start(node.path(), vec![target("node", addr, None)]);
    wait_all_pass(&s, "node");
    let not_ready = s.seen().count("node", "readiness", false);
    let pid = pid_of(&node, "ovn-controller.pid").unwrap();
    crate::busy::load(&node);
    let t0 = std::time::Instant::now();
    for round in 1u32.. {
        if s.seen().count_line("node", "liveness", "busy computing") > 0 {
            break;
        }
        assert!(
            t0.elapsed() < WITHIN * 2,
            "never sampled busy: {:?}",
            s.seen()
        );
        if node.probe("readiness").0 == 0 {
            let addrs: Vec<String> = (1..=crate::busy::ADDRESSES)
                .map(|i| {
                    format!(
                        "{}.{}.{}.{}",
                        10 + round,
                        i >> 16 & 255,
                        i >> 8 & 255,
                        i & 255
                    )
                })
                .collect();
            crate::busy::sb_transact(
                &node,
                vec![json!({"op": "update", "table": "Address_Set",
                    "where": [["name", "==", "big"]], "row": {"addresses": ["set", addrs]}})],
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    s.wait("node", "readiness", false, not_ready, WITHIN);
    node.wait_ready(WITHIN * 2);
    wait_all_pass(&s, "node");
    assert_eq!(
        pid_of(&node, "ovn-controller.pid"),
        Some(pid),
        "killed while busy"
    );
    let seen = s.finish();
    assert_agreed(&seen);
    assert!(node.stop().0.success());
}

/// A rolling update: a second instance on the same directories takes the node over, each
/// serving HTTP on a port of its own. `probe` talks to whoever owns the control socket, so an
/// instance's GET is compared with the probes that instance answered (the old one's until it
/// hands over and closes its listener, the new one's from when it binds both). The new
/// instance's start is held at ovs-vswitchd until it was sampled not started and not ready.
#[test]
fn http_and_probe_agree_on_each_instance_through_a_handover() {
    let mut old = Node::new();
    let holds = Holds::new(old.path());
    let (a_old, a_new) = (free_local_addr(), free_local_addr());
    let (s_old, s_new, w) = (a_old.to_string(), a_new.to_string(), holds.wrapper());
    old.start(&env(&s_old, &w));
    old.wait_ready(WITHIN);
    let old_pid = old.child.as_ref().unwrap().id() as i64;
    let s = VerdictSampler::start(old.path(), vec![target("old", a_old, Some(old_pid))]);
    wait_all_pass(&s, "old");

    holds.hold("ovs-vswitchd");
    let mut new = instance_on(old.path(), &env(&s_new, &w));
    let new_pid = new.child.as_ref().unwrap().id() as i64;
    s.add(target("new", a_new, Some(new_pid)));
    s.wait("new", "startup", false, 0, WITHIN);
    s.wait("new", "readiness", false, 0, WITHIN);
    s.wait("new", "liveness", true, 0, WITHIN);
    holds.release("ovs-vswitchd");
    old.wait_owner(new_pid, WITHIN, Some(&mut new), || {});
    wait_all_pass(&s, "new");
    // The old instance closed its listener when it handed over: nothing of it to compare.
    assert!(
        get(a_old, "/readyz").is_none(),
        "the old instance still serves"
    );
    let seen = s.finish();
    assert_agreed(&seen);
    assert!(old.stop().0.success());
    new.signal("TERM");
    assert!(new.wait_exit(WITHIN).0.success());
}

/// The same handover as a real node has it: both pods on the host network, so one port, which
/// the old instance closes when it hands over and the new one takes; and one control socket
/// path. Whoever answers kubelet's GET on the node's port must give the verdict `probe` gets
/// from the socket, on either pod. The new instance, held at ovs-vswitchd, must be seen on the
/// port not started and not ready before it is let go.
#[test]
fn http_and_probe_agree_through_a_handover_on_the_nodes_one_port() {
    let mut old = Node::new();
    let holds = Holds::new(old.path());
    let addr = free_local_addr();
    let (a, w) = (addr.to_string(), holds.wrapper());
    old.start(&env(&a, &w));
    old.wait_ready(WITHIN);
    let s = VerdictSampler::start(old.path(), vec![target("node", addr, None)]);
    wait_all_pass(&s, "node");
    let not_started = s.seen().count("node", "startup", false);

    holds.hold("ovs-vswitchd");
    let mut new = instance_on(old.path(), &env(&a, &w));
    let new_pid = new.child.as_ref().unwrap().id() as i64;
    s.wait("node", "startup", false, not_started, WITHIN);
    s.wait("node", "liveness", true, 0, WITHIN);
    holds.release("ovs-vswitchd");
    old.wait_owner(new_pid, WITHIN, Some(&mut new), || {});
    wait_all_pass(&s, "node");
    let seen = s.finish();
    assert_agreed(&seen);
    assert!(old.stop().0.success());
    new.signal("TERM");
    assert!(new.wait_exit(WITHIN).0.success());
}

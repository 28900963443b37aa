//! The handover attacked on the real daemons: requests from clients that are not a supervisor
//! of ours, a second request while one is pending, fake successors (an [`Impostor`]: a process
//! of our uid named `ovs-ovn-supervisor`, which the peer check cannot tell from a real one),
//! a successor killed after it confirmed, and the run dir's files of the supervisor deleted
//! under it. Each asserts the node's state: daemon pids, who their parent is, whether they
//! answer, and who answers at the control socket.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ovs_ovn_supervisor::control::{self, client::AskError};
use serde_json::json;

use crate::harness::*;

const READY: Duration = Duration::from_secs(30);
const FAST: (&str, &str) = ("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "200");

fn run_file(node: &Node, name: &str) -> PathBuf {
    node.path().join("run/openvswitch").join(name)
}

fn sup_pid(node: &Node) -> i32 {
    node.child.as_ref().unwrap().id() as i32
}

/// The node runs on `owner`'s daemons: every daemon in its status is running, alive, a child
/// of `owner`, and the node is ready.
fn runs_on_its_own_daemons(node: &Node, owner: i32) {
    let status = node.status().expect("status answers");
    assert_eq!(status["pid"], owner, "{status}");
    let daemons = status["daemons"].as_array().unwrap();
    assert!(daemons.len() >= 3, "{status}");
    let children = children_of(owner as u32);
    for d in daemons {
        assert_eq!(d["state"], "running", "{d}");
        let pid = d["pid"].as_i64().unwrap() as i32;
        assert!(
            matches!(state_of(pid), Some(s) if s != 'Z'),
            "{d} is not alive"
        );
        assert!(children.contains(&pid), "{d} is not a child of {owner}");
    }
    assert_eq!(
        node.probe("readiness").0,
        0,
        "{:?}",
        node.probe("readiness")
    );
}

/// The stage the supervisor answering at the node's socket publishes, if one answers.
fn stage(node: &Node) -> Option<String> {
    node.status()
        .and_then(|s| s["stage"].as_str().map(str::to_string))
}

/// A handover asked by this test process (not our program), by an impostor naming a pid
/// not its own, and by an impostor of another uid that can reach the socket: each refused,
/// and nothing on the node changes.
#[test]
fn a_handover_asked_by_anyone_but_a_supervisor_of_ours_stops_nothing() {
    let mut a = Node::new();
    a.start(&[FAST]);
    a.wait_ready(READY);
    let a_pid = sup_pid(&a);
    let before = a.daemon_pids();
    let sock = run_file(&a, "ovs-ovn-supervisor.sock");

    let me = json!({ "pid": std::process::id() });
    let asked = control::ask_with(&sock, "handover", Some(me), Duration::from_secs(65));
    eprintln!("this test process: {asked:?}");
    assert!(matches!(asked, Err(AskError::Refused(_))), "{asked:?}");

    let mut imp = Impostor::spawn(a.path());
    let asked = imp.say(&format!("ask {a_pid}"));
    eprintln!("impostor naming another pid: {asked}");
    assert!(
        asked.starts_with("err supervisor: handover refused"),
        "{asked}"
    );

    // uid 65534 with CAP_DAC_OVERRIDE reaches the root-owned 0600 socket, as root would
    // reach a 65534 supervisor's.
    let mut other_uid = Impostor::spawn_with(
        a.path(),
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=+dac_override",
            "--ambient-caps=+dac_override",
        ],
    );
    let asked = other_uid.say("ask");
    eprintln!("impostor of another uid: {asked}");
    assert!(
        asked.starts_with("err supervisor: handover refused"),
        "{asked}"
    );

    assert_eq!(a.daemon_pids(), before, "the daemons changed");
    runs_on_its_own_daemons(&a, a_pid);
    assert_eq!(stage(&a).as_deref(), Some("ready"));
    assert!(a.stop().0.success());
}

/// A handover is pending (the asker neither confirms nor dies); a second asker every 500 ms
/// is refused each time and never moves the take-back: the node is back at the first
/// request's deadline (before, each request re-armed it, keeping the node down for good).
#[test]
fn a_second_handover_request_never_extends_the_first() {
    let confirm = Duration::from_millis(4000);
    let mut a = Node::new();
    a.start(&[FAST, ("OVS_OVN_SUPERVISOR_HANDOVER_CONFIRM_MS", "4000")]);
    a.wait_ready(READY);
    let a_pid = sup_pid(&a);
    let before = a.daemon_pids();

    let mut first = Impostor::spawn(a.path());
    let answer = first.say("ask");
    let t0 = Instant::now();
    assert!(answer.starts_with("ok "), "{answer}");
    let mut second = Impostor::spawn(a.path());
    // Asked for the first three of the four seconds only: once the node is taken back, a
    // request would be a new, legitimate handover. Re-armed, the deadline would move to 7 s.
    let mut refused = 0u32;
    while t0.elapsed() < confirm - Duration::from_millis(1000) {
        let answer = second.say("ask");
        assert!(
            answer.starts_with("err "),
            "a second request was served: {answer}"
        );
        refused += 1;
        wait_for("500 ms", Duration::from_secs(1), || {
            t0.elapsed() >= Duration::from_millis(500) * refused
        });
    }
    wait_for("the node taken back", READY, || {
        stage(&a).is_some_and(|s| s != "handed-over")
    });
    let back = t0.elapsed();
    a.wait_owner(a_pid as i64, READY, None, || {});
    eprintln!(
        "second request: {refused} refused; node taken back {} ms after the first handover (deadline {} ms)",
        back.as_millis(),
        confirm.as_millis()
    );
    assert!(
        back < confirm + Duration::from_millis(1500),
        "taken back only after {back:?}"
    );
    runs_on_its_own_daemons(&a, a_pid);
    for (name, pid) in &before {
        assert!(
            !exists(*pid) || !a.owns(*pid),
            "{name} {pid} outlived the handover"
        );
    }
    assert!(a.stop().0.success());
}

/// After a handover, an impostor binds the control socket path and answers `status` as a
/// started instance, without the instance lock and without daemons: the old instance takes
/// the node back at once, not at the 90 s deadline (before, it confirmed and idled forever).
#[test]
fn a_fake_successor_answering_started_without_the_lock_is_not_confirmed() {
    let mut a = Node::new();
    a.start(&[FAST]);
    a.wait_ready(READY);
    let a_pid = sup_pid(&a);
    let mut imp = Impostor::spawn(a.path());
    let answer = imp.say("ask");
    assert!(answer.starts_with("ok "), "{answer}");
    let t0 = Instant::now();
    assert_eq!(imp.say("serve"), "serving");
    a.wait_owner(a_pid as i64, READY, None, || {});
    eprintln!(
        "fake successor without the lock: node taken back in {} ms",
        t0.elapsed().as_millis()
    );
    assert!(
        exists(imp.pid()),
        "the impostor died: not the case under test"
    );
    runs_on_its_own_daemons(&a, a_pid);
    assert!(a.stop().0.success());
}

/// The impostor also takes the instance lock: the old instance never confirms it (no daemon
/// answers) and, while the lock is held, never starts a second node beside its holder, even
/// past the deadline; once the lock is released the node is taken back.
#[test]
fn a_fake_successor_holding_the_lock_without_daemons_is_never_confirmed() {
    let mut a = Node::new();
    a.start(&[FAST, ("OVS_OVN_SUPERVISOR_HANDOVER_CONFIRM_MS", "1000")]);
    a.wait_ready(READY);
    let a_pid = sup_pid(&a);
    let mut imp = Impostor::spawn(a.path());
    let answer = imp.say("ask");
    assert!(answer.starts_with("ok "), "{answer}");
    assert_eq!(imp.say("lock"), "locked");
    assert_eq!(imp.say("serve"), "serving");
    // Each round the old instance asks the impostor's status; 15 rounds of 200 ms are past
    // the 1 s deadline. Confirmed, it would stop asking.
    wait_for("15 status requests from the old instance", READY, || {
        imp.say("asked").parse::<u32>().unwrap() >= 15
    });
    let running: Vec<_> = a
        .daemon_pids()
        .into_iter()
        .filter(|(_, p)| matches!(state_of(*p), Some(s) if s != 'Z'))
        .collect();
    assert!(
        running.is_empty(),
        "a node started beside the lock's holder: {running:?}"
    );
    assert_eq!(imp.say("unlock"), "unlocked");
    a.wait_owner(a_pid as i64, READY, None, || {});
    runs_on_its_own_daemons(&a, a_pid);
    assert!(a.stop().0.success());
}

/// A real successor takes the node over and confirms; then it is SIGKILLed, leaving its
/// daemons unsupervised. The old instance notices and takes the node back (before, once
/// confirmed it only idled). Never two ovsdb-servers on one conf.db.
#[test]
fn a_successor_killed_after_it_confirmed_is_noticed_and_the_node_taken_back() {
    // A central Southbound, as in production: the sandbox's embedded one would be orphaned
    // too, and a take-back does not look for it (see adversarial_ctl).
    let sb_dir = tempfile::tempdir().unwrap();
    let (_sb, remote) = southbound(sb_dir.path());
    let env = [FAST, ("OVN_SB_ADDR", remote.as_str())];
    let mut a = Node::new();
    a.start(&env);
    a.wait_ready(READY);
    let a_pid = sup_pid(&a);
    let dir = a.path().to_path_buf();
    let conf_db = dir.join("etc/openvswitch/conf.db").display().to_string();
    let mut b = instance_on(&dir, &env);
    let b_pid = b.child.as_ref().unwrap().id() as i64;
    a.wait_owner(b_pid, READY, Some(&mut b), || {});
    // Confirmation is the old instance's own state, and its socket is unreachable now (the
    // path is the successor's): its log line is the only sign of it from outside.
    wait_for("the old instance confirmed the successor", READY, || {
        a.log().contains("the successor runs the node")
    });
    let b_daemons = a.daemon_pids();
    kill("KILL", b_pid as i32);
    let _ = b.wait_exit(Duration::from_secs(10));
    let t0 = Instant::now();
    let mut servers = 0;
    a.wait_owner(a_pid as i64, READY, None, || {
        servers = servers.max(count("ovsdb-server", &conf_db));
    });
    eprintln!(
        "successor killed after confirming: node taken back in {} ms",
        t0.elapsed().as_millis()
    );
    assert_eq!(servers, 1, "two ovsdb-servers on one conf.db at once");
    runs_on_its_own_daemons(&a, a_pid);
    for (name, pid) in &b_daemons {
        assert!(
            !exists(*pid) || !a.owns(*pid),
            "the successor's {name} still runs"
        );
    }
    assert!(a.stop().0.success());
}

/// The control socket and the instance lock file deleted while the node runs: both come back
/// (the socket answers, the lock file is held by the supervisor and names it) and nothing
/// else changes (before, both stayed gone for good).
#[test]
fn the_control_socket_and_lock_deleted_while_running_come_back() {
    let mut a = Node::new();
    a.start(&[FAST]);
    a.wait_ready(READY);
    let a_pid = sup_pid(&a);
    let before = a.daemon_pids();
    let (sock, lock) = (
        run_file(&a, "ovs-ovn-supervisor.sock"),
        run_file(&a, "ovs-ovn-supervisor.lock"),
    );
    std::fs::remove_file(&sock).unwrap();
    std::fs::remove_file(&lock).unwrap();
    let t0 = Instant::now();
    assert!(a.status().is_none(), "answers with its socket deleted");
    wait_for(
        "the control socket answering again",
        Duration::from_secs(10),
        || a.status().is_some_and(|s| s["pid"] == a_pid),
    );
    let socket_back = t0.elapsed();
    let held = || {
        let Ok(f) = std::fs::File::open(&lock) else {
            return false;
        };
        matches!(
            nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock),
            Err((_, nix::errno::Errno::EWOULDBLOCK))
        )
    };
    wait_for(
        "the instance lock held again",
        Duration::from_secs(10),
        held,
    );
    eprintln!(
        "run files deleted: socket back in {} ms, lock in {} ms (health interval 200 ms)",
        socket_back.as_millis(),
        t0.elapsed().as_millis()
    );
    let named = std::fs::read_to_string(&lock).unwrap();
    assert_eq!(named.trim(), a_pid.to_string());
    assert_eq!(a.daemon_pids(), before);
    runs_on_its_own_daemons(&a, a_pid);
    assert!(a.stop().0.success());
}

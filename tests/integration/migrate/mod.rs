//! Migration from Kube-OVN's start-ovs.sh pod, on the real daemons: a node started by Debian's
//! `ovs-ctl start` and `ovn-ctl start_controller` (each daemon under its `--monitor` parent), in a
//! temp dir and a network namespace of its own, is taken over by a non-sandbox `run` on the same
//! directories. No old worker or monitor is left, never two ovsdb-servers on one conf.db nor two
//! vswitchds on one db.sock, and the system-id, the chassis and other writers' keys stay. With
//! the takeover switched off, or with an ovn-northd that would not accept our ovn-controller,
//! `run` refuses (exit 4) and the old node is untouched. The migration's figures are printed
//! (`--nocapture`), not asserted.

mod metrics;
mod old_node;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::harness::*;
use old_node::{controller_connected, run_ok, start_old_node, vsctl, HeldNetns, OldNode};

const READY: Duration = Duration::from_secs(60);

/// `ovs-ovn-supervisor run` (or `preflight`) on the old node's directories, inside its
/// namespace.
fn supervisor(ns: &HeldNetns, d: &Path, sb: &str, subcommand: &str) -> Command {
    let mut c = ns.command(d, BIN);
    c.arg(subcommand)
        .env("OVN_SB_ADDR", sb)
        .env("OVS_OVN_SUPERVISOR_DATAPATH_TYPE", "netdev")
        .env("OVS_OVN_SUPERVISOR_FIREWALL_IPV6", "false")
        .env(
            "OVS_OVN_SUPERVISOR_RUNDIR_LINK",
            d.join("usr/local/var/run/openvswitch"),
        )
        .env("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "200")
        .env("OVS_OVN_SUPERVISOR_LOG", "debug");
    c
}

/// The Open_vSwitch row's identity and the keys of other writers.
fn identity(d: &Path) -> (String, String, String, String) {
    let get = |col: &str| vsctl(d, &["get", "Open_vSwitch", ".", col]);
    (
        std::fs::read_to_string(d.join("etc/openvswitch/system-id.conf")).unwrap(),
        get("external_ids:system-id"),
        get("external_ids:kube-ovn-foreign"),
        get("other_config:foo"),
    )
}

fn new_dir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("oos").tempdir().unwrap()
}

/// The chassis names in the Southbound at `remote`.
fn chassis(remote: &str) -> String {
    let mut c = Command::new("ovn-sbctl");
    let db = format!("--db={remote}");
    c.args([&db, "--bare", "--columns=name", "list", "Chassis"]);
    run_ok(c)
}

/// When, after our start, the node was ready and the first and the last old process were gone.
struct Switch {
    ready: Duration,
    first_gone: Option<Duration>,
    all_gone: Option<Duration>,
}

#[test]
fn a_start_ovs_sh_node_is_taken_over_keeping_its_identity() {
    // Dropped last: its guard stops our supervisor and anything left by pidfile.
    let mut node = Node {
        dir: new_dir(),
        child: None,
    };
    let d = node.path().to_path_buf();
    let (_sb, remote) = southbound(&d);
    let ns = HeldNetns::new();
    let old = start_old_node(&ns, &d, &remote);
    let before = identity(&d);
    wait_for("old chassis registered", READY, || {
        !chassis(&remote).is_empty()
    });
    let chassis_before = chassis(&remote);
    let conf_db = d.join("etc/openvswitch/conf.db").display().to_string();
    let db_sock = d.join("run/openvswitch/db.sock").display().to_string();
    let sampler = Sampler::start(&conf_db, &db_sock, &br_int_mgmt(&d));
    let table = keep_copy(d.join("run/openvswitch/br-int.table.takeover"));

    let switch = take_over(&mut node, &ns, &remote, &old);
    // Let the sampler see the settled node for a moment.
    std::thread::sleep(Duration::from_millis(300));
    let s = sampler.finish();
    let log = node.log();
    print_figures(&log, &switch, &s);

    assert_old_node_replaced_never_doubled(&old, &s);
    assert_eq!(identity(&d), before, "system-id or foreign keys changed");
    assert_eq!(chassis(&remote), chassis_before, "the chassis changed");
    assert_flows_carried_over(&d, &log, &table.finish());

    node.signal("TERM");
    let (st, _) = node.wait_exit(Duration::from_secs(30));
    assert!(st.success(), "{}", node.log());
}

/// Starts our `run` on the old node's directories and waits until the node is ready, noting
/// when the old processes went.
fn take_over(node: &mut Node, ns: &HeldNetns, remote: &str, old: &OldNode) -> Switch {
    let d = node.path().to_path_buf();
    let log = std::fs::File::create(node.log_path()).unwrap();
    let t0 = Instant::now();
    node.child = Some(
        supervisor(ns, &d, remote, "run")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let (mut first_gone, mut all_gone) = (None, None);
    loop {
        let alive = old.0.iter().filter(|o| o.alive()).count();
        if alive < old.0.len() {
            first_gone.get_or_insert(t0.elapsed());
        }
        if alive == 0 {
            all_gone.get_or_insert(t0.elapsed());
        }
        if host_probe(&d, "readiness").0 == Some(0) {
            break;
        }
        if let Some(st) = node.child.as_mut().unwrap().try_wait().unwrap() {
            panic!("supervisor exited {st}:\n{}", node.log());
        }
        assert!(t0.elapsed() < READY, "not ready:\n{}", node.log());
        std::thread::sleep(Duration::from_millis(10));
    }
    Switch {
        ready: t0.elapsed(),
        first_gone,
        all_gone,
    }
}

/// The supervisor's log lines containing `pat`, each cut at 300 characters.
fn lines(log: &str, pat: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(pat))
        .map(|l| l.chars().take(300).collect())
        .collect()
}

/// The migration's figures and the log lines that tell its steps, printed, not asserted.
fn print_figures(log: &str, switch: &Switch, s: &Sampled) {
    eprintln!(
        "migration: ready {} ms after our start; first old process gone at {:?}, all at {:?}; \
         br-int flow table unreachable or empty for {} ms in all (longest {} ms)",
        switch.ready.as_millis(),
        switch.first_gone.map(|t| t.as_millis()),
        switch.all_gone.map(|t| t.as_millis()),
        s.gap.as_millis(),
        s.longest.as_millis()
    );
    for pat in [
        "old daemon stopped",
        "old monitor stopped",
        "br-int flows",
        "node ready",
    ] {
        for l in lines(log, pat) {
            eprintln!("  {l}");
        }
    }
}

/// No old worker or monitor is left, and never were two ovsdb-servers on one conf.db nor two
/// vswitchds on one db.sock.
fn assert_old_node_replaced_never_doubled(old: &OldNode, s: &Sampled) {
    for o in &old.0 {
        assert!(!o.alive(), "old {} (pid {}) still runs", o.what, o.pid);
    }
    assert_eq!(s.max_servers, 1, "two ovsdb-servers on one conf.db at once");
    assert_eq!(s.max_switches, 1, "two vswitchds on one db.sock at once");
}

/// Copies of a file taken back to back from a thread until [`Copier::finish`]: the longest
/// read, for a file that lives only while the node switches over.
struct Copier {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<u8>>,
}

impl Copier {
    fn finish(self) -> Vec<u8> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

fn keep_copy(path: PathBuf) -> Copier {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        let mut longest = Vec::new();
        while !flag.load(Ordering::Relaxed) {
            match std::fs::read(&path) {
                Ok(b) if b.len() > longest.len() => longest = b,
                _ => std::thread::sleep(Duration::from_millis(2)),
            }
        }
        longest
    });
    Copier { stop, thread }
}

/// The old node's br-int flows were saved (`saved`: the table file as it was during the
/// switch-over) and restored on ours, a foreign one among them; flow-restore-wait is not left
/// set, and the saved table is gone once the node is ready.
fn assert_flows_carried_over(d: &Path, log: &str, saved: &[u8]) {
    let other = vsctl(d, &["get", "Open_vSwitch", ".", "other_config"]);
    assert!(!other.contains("flow-restore-wait"), "left set: {other}");
    assert!(
        !lines(log, "saved br-int flows of the old node").is_empty(),
        "{log}"
    );
    assert!(!lines(log, "restored br-int flows").is_empty(), "{log}");
    // Saved in binary (the old vswitchd speaks OpenFlow 1.5): FLOW_MODs, the foreign flow's
    // cookie among them, big-endian at each mod's offset 8.
    assert!(saved.starts_with(b"OOSOFTBL"), "not a binary save");
    let cookie = 0xbeef_u64.to_be_bytes();
    assert!(
        saved.windows(8).any(|w| w == cookie),
        "the foreign flow (cookie=0xbeef) is not in the saved table"
    );
    let left = d.join("run/openvswitch/br-int.table.takeover");
    assert!(!left.exists(), "{} left after the takeover", left.display());
}

#[test]
fn without_takeover_the_old_node_is_refused_and_left_alone() {
    // Its guard kills whatever is left by pidfile, should the old node's own guard miss it.
    let node = Node {
        dir: new_dir(),
        child: None,
    };
    let d = node.path();
    let (_sb, remote) = southbound(d);
    let ns = HeldNetns::new();
    let old = start_old_node(&ns, d, &remote);
    let before = identity(d);

    let out = supervisor(&ns, d, &remote, "preflight").output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{table}");
    assert!(
        table.contains("taken over from ovs-ctl/ovn-ctl (start-ovs.sh) daemons"),
        "{table}"
    );

    let out = supervisor(&ns, d, &remote, "run")
        .env("OVS_OVN_SUPERVISOR_TAKEOVER", "false")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("outside any supervisor"), "{err}");
    for o in &old.0 {
        assert!(o.alive(), "old {} (pid {}) was touched", o.what, o.pid);
    }
    assert!(controller_connected(d));
    assert_eq!(identity(d), before);
}

/// The case: a start-ovs.sh node works beside Kube-OVN's ovn-northd (`X+g<commit>`);
/// our ovn-controller (Debian's) would apply nothing under `ovn-match-northd-version`, so `run`
/// refuses (exit 4) naming both versions, and every old process runs on, connected.
#[test]
fn a_start_ovs_sh_node_is_left_running_when_ovn_northd_would_not_accept_ours() {
    // Dropped last: its guard stops our supervisor and anything left by pidfile.
    let mut node = Node {
        dir: new_dir(),
        child: None,
    };
    let d = &node.path().to_path_buf();
    let (_sb, remote) = southbound(d);
    let ns = HeldNetns::new();
    let old = start_old_node(&ns, d, &remote);
    let v = format!("options:northd_internal_version={KUBE_OVN_NORTHD_VERSION}");
    db_ctl("ovn-sbctl", &remote, &["set", "SB_Global", ".", &v]);
    let before = identity(d);

    // Bounded: a `run` that took the node over would never exit by itself.
    let log = std::fs::File::create(node.log_path()).unwrap();
    // The refusal is never scraped (the process exits): kubelet's termination message is
    // where it shows.
    let message = d.join("termination-log");
    std::fs::write(&message, "").unwrap();
    node.child = Some(
        supervisor(&ns, d, &remote, "run")
            .env("OVS_OVN_SUPERVISOR_TERMINATION_LOG", &message)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let (st, _) = node.wait_exit(Duration::from_secs(60));
    let err = node.log();
    assert_eq!(st.code(), Some(4), "{err}");
    let message = std::fs::read_to_string(&message).unwrap();
    assert!(
        message.starts_with("exit 4: refusing to take over the ovs-ctl/ovn-ctl node"),
        "{message:?}"
    );
    for needle in [northd_internal_version(), KUBE_OVN_NORTHD_VERSION] {
        assert!(err.contains(needle), "{needle} not named: {err}");
        assert!(message.contains(needle), "{needle} not named: {message:?}");
    }
    for o in &old.0 {
        assert!(o.alive(), "old {} (pid {}) was touched", o.what, o.pid);
    }
    assert!(controller_connected(d));
    assert_eq!(identity(d), before);
}

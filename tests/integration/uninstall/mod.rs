//! `uninstall` (what Kube-OVN's cleanup.sh runs as `/kube-ovn/uninstall.sh`) against the real
//! daemons, iptables (nft and legacy, IPv4 and IPv6) and ipset, each test in a network namespace
//! of its own holding a real (non-sandbox) node whose directories are in the test's temp dir:
//! userspace datapath, a Southbound of the test's own.
//!
//! Asserted on state: pids and pidfiles, the namespace's devices, every backend's `*-save`,
//! `ipset list -n`, the directories, exit statuses. Needs root (`ip netns add`) and `ipset`.
//!
//! The bed (seeding, the node, reading state back) is in `bed`.

mod bed;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::harness::{exists, host_dirs, host_probe, wait_for, Netns, Node, BIN};
use bed::*;

#[test]
fn the_supervisor_stops_for_good_restarts_nothing_and_exits_0_on_sigterm() {
    let mut b = bed(|_| {});
    with_tunnel_port(&b);
    let conf_db = b.d().join("etc/openvswitch/conf.db");
    let tunnel = b.node.vsctl(&[
        "--bare",
        "--columns=name",
        "find",
        "interface",
        "type=geneve",
    ]);
    assert!(
        interfaces_of_type(&conf_db, "geneve").contains(&tunnel),
        "{tunnel}"
    );
    let before = b.daemons();
    assert_eq!(
        before.len(),
        3,
        "ovsdb-server, ovs-vswitchd, ovn-controller: {before:?}"
    );
    assert!(b.links().contains(&"br-int".to_string()), "{:?}", b.links());

    // Asked on the control socket directly, so the files stay for us to look at.
    let sock = b.d().join("run/openvswitch/ovs-ovn-supervisor.sock");
    let answer =
        ovs_ovn_supervisor::control::ask(&sock, "uninstall", Duration::from_secs(60)).unwrap();
    assert_eq!(answer["already"], false, "{answer}");
    assert_eq!(answer["problems"], serde_json::json!([]), "{answer}");

    // Every daemon gone, none back after more than the restart backoff; the supervisor lives.
    assert!(before.iter().all(|p| !exists(*p)), "{before:?} still there");
    std::thread::sleep(Duration::from_millis(
        4 * BACKOFF_CAP_MS.parse::<u64>().unwrap(),
    ));
    assert_eq!(b.daemons(), Vec::<i32>::new(), "a daemon was started again");
    assert!(exists(b.supervisor_pid()));
    for pidfile in [
        "run/openvswitch/ovsdb-server.pid",
        "run/openvswitch/ovs-vswitchd.pid",
        "run/ovn/ovn-controller.pid",
    ] {
        assert!(!b.d().join(pidfile).exists(), "{pidfile}");
    }
    // The userspace datapath is gone with its devices (vswitchd's `exit --cleanup`); without
    // it they outlive vswitchd. The tunnel port was deleted from br-int before vswitchd
    // stopped (on the kernel datapath, its genev_sys_6081 device goes with it).
    assert_eq!(b.links(), ["lo"]);
    assert!(!interfaces_of_type(&conf_db, "geneve").contains(&tunnel));
    assert!(
        interfaces_of_type(&conf_db, "internal").contains("br-int"),
        "only the tunnel port went"
    );

    // Alive and started for kubelet, never ready; asked again, the same answer at once.
    assert_eq!(host_probe(b.d(), "liveness").0, Some(0));
    assert_eq!(host_probe(b.d(), "startup").0, Some(0));
    let (code, why) = host_probe(b.d(), "readiness");
    assert_eq!(code, Some(3));
    assert!(why.contains("uninstalled"), "{why}");
    let again =
        ovs_ovn_supervisor::control::ask(&sock, "uninstall", Duration::from_secs(5)).unwrap();
    assert_eq!(again["already"], true, "{again}");

    b.node.signal("TERM");
    let (status, _) = b.node.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", b.node.log());
    assert_eq!(b.daemons(), Vec::<i32>::new());
    assert!(!b.d().join("run/openvswitch/ovs-vswitchd.pid").exists());
}

#[test]
fn uninstall_removes_kube_ovns_rules_chains_ipsets_and_our_files_and_nothing_else() {
    let mut b = bed(|ns| {
        other_set(ns);
        for ipt in PROGRAMS {
            seed(ns, OTHERS, ipt);
        }
    });
    // What must remain: the other CNI's, as the node found it (its own tunnel rule aside).
    let ours = |l: &String| l.contains("ovs-ovn-supervisor: geneve tunnel");
    let mut others = rules(&b.ns);
    let count = others.values().flatten().filter(|l| ours(l)).count();
    assert_eq!(count, 1, "the node's own tunnel rule");
    others.values_mut().for_each(|v| v.retain(|l| !ours(l)));
    let other_sets = sets(&b.ns);
    // Kube-OVN's: IPv4 in nft and (from an older run in legacy mode) in legacy, IPv6 in nft.
    seed(&b.ns, KUBE_OVN, "iptables-nft");
    seed(
        &b.ns,
        &KUBE_OVN.replace("ipset create", ": ipset create"),
        "iptables-legacy",
    );
    seed(&b.ns, KUBE_OVN, "ip6tables-nft");
    assert_ne!(rules(&b.ns), others);
    let lock = b.d().join("run/openvswitch/ovs-ovn-supervisor.lock");
    let sock = b.d().join("run/openvswitch/ovs-ovn-supervisor.sock");

    let out = b.uninstall();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", b.node.log());
    assert_eq!(rules(&b.ns), others, "{text}");
    assert_eq!(sets(&b.ns), other_sets);
    assert!(exists(b.supervisor_pid()));
    assert_eq!(b.daemons(), Vec::<i32>::new());
    // The directories are empty but for the supervisor's lock and live socket.
    let mut left: Vec<PathBuf> = Vec::new();
    for dir in layout_dirs(b.d()) {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            left.push(e.path());
        }
    }
    left.sort();
    assert_eq!(left, [lock.clone(), sock.clone()]);

    // Again: nothing left to do, success.
    let out = b.uninstall();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The supervisor terminated, a third run with nobody to ask still succeeds.
    b.node.signal("TERM");
    let (status, _) = b.node.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    assert!(!sock.exists(), "the supervisor removes its socket at exit");
    let out = b.uninstall();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(rules(&b.ns), others);
}

#[test]
fn with_no_supervisor_running_the_host_is_still_cleaned() {
    need_ipset();
    let ns = Netns::new("oos-un");
    other_set(&ns);
    seed(&ns, OTHERS, "iptables-nft");
    let others = rules(&ns);
    seed(&ns, KUBE_OVN, "iptables-nft");
    // A node's leftovers after its pod was killed: stale pidfile and socket, a database.
    let dir = tempfile::Builder::new().prefix("oos").tempdir().unwrap();
    let d = dir.path();
    for (_, p) in host_dirs(d) {
        std::fs::create_dir_all(p).unwrap();
    }
    std::fs::write(d.join("run/openvswitch/ovs-vswitchd.pid"), "999999\n").unwrap();
    drop(
        std::os::unix::net::UnixListener::bind(d.join("run/openvswitch/ovs-ovn-supervisor.sock"))
            .unwrap(),
    );
    std::fs::write(d.join("etc/openvswitch/conf.db"), "x").unwrap();
    let out = ns
        .command(BIN)
        .arg("uninstall")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(host_dirs(d))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(rules(&ns), others);
    assert_eq!(sets(&ns), ["other-cni-set", "other-cni-set6"]);
    for p in layout_dirs(d) {
        assert_eq!(std::fs::read_dir(&p).unwrap().count(), 0, "{}", p.display());
    }
}

#[test]
fn another_uid_is_refused_and_nothing_changes() {
    // The supervisor as Kube-OVN runs it, uid 65534 (a sandbox with dummy devices: no root
    // needed); root asks, with the permission to connect but not the pod's uid.
    let dir = tempfile::Builder::new().prefix("oos").tempdir().unwrap();
    std::os::unix::fs::chown(dir.path(), Some(65534), Some(65534)).unwrap();
    let sandbox = dir.path().to_path_buf();
    let log = std::fs::File::create(dir.path().join("supervisor.log")).unwrap();
    // Dropped at the end: SIGTERM, then whatever of the sandbox still runs is killed.
    let _node = Node {
        dir,
        child: Some(
            Command::new("setpriv")
                .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
                .arg(BIN)
                .args(["run", "--sandbox"])
                .arg(&sandbox)
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("OVS_OVN_SUPERVISOR_SANDBOX_NET", "dummy")
                .current_dir(&sandbox)
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap(),
        ),
    };
    let probe = |kind: &str| {
        Command::new(BIN)
            .args(["probe", kind, "--sandbox"])
            .arg(&sandbox)
            .output()
            .unwrap()
            .status
            .code()
    };
    wait_for("ready as 65534", READY, || probe("readiness") == Some(0));
    let sock = sandbox.join("run/openvswitch/ovs-ovn-supervisor.sock");
    let err =
        ovs_ovn_supervisor::control::ask(&sock, "uninstall", Duration::from_secs(10)).unwrap_err();
    let e = err.to_string();
    assert!(
        e.contains("refused") && e.contains("uid 0") && e.contains("65534"),
        "{e}"
    );
    // Nothing stopped: still ready, still every daemon.
    assert_eq!(probe("readiness"), Some(0));
    let status = ovs_ovn_supervisor::control::ask(&sock, "status", Duration::from_secs(5)).unwrap();
    let running = status["daemons"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["state"] == "running")
        .count();
    assert_eq!(running, 4, "{status}");
    assert!(status["uninstalled"].is_null(), "{status}");
}

#[test]
fn as_uid_65534_with_the_images_capabilities_legacy_is_read_table_by_table() {
    // The pod runs as 65534 with CAP_NET_ADMIN/CAP_NET_RAW as file capabilities of iptables
    // and ipset (here: ambient ones). It may not read /proc/net/ip_tables_names, so
    // `iptables-legacy-save` fails and legacy's tables are read one by one.
    need_ipset();
    let ns = Netns::new("oos-un");
    other_set(&ns);
    seed(&ns, OTHERS, "iptables-legacy");
    let others = rules(&ns);
    seed(&ns, KUBE_OVN, "iptables-legacy");
    seed(
        &ns,
        &KUBE_OVN.replace("ipset create", ": ipset create"),
        "iptables-nft",
    );
    let dir = tempfile::Builder::new().prefix("oos").tempdir().unwrap();
    let d = dir.path();
    std::os::unix::fs::chown(d, Some(65534), Some(65534)).unwrap();
    for p in layout_dirs(d) {
        std::fs::create_dir_all(&p).unwrap();
        std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
        std::os::unix::fs::chown(p.parent().unwrap(), Some(65534), Some(65534)).unwrap();
    }
    // The machine's /run/xtables.lock is root's; the pod gets one it may open.
    let lock = d.join("xtables.lock");
    std::fs::write(&lock, "").unwrap();
    std::os::unix::fs::chown(&lock, Some(65534), Some(65534)).unwrap();
    let caps = "+net_admin,+net_raw";
    let out = ns
        .command("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .args(["--inh-caps", caps, "--ambient-caps", caps])
        .arg(BIN)
        .arg("uninstall")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("XTABLES_LOCKFILE", &lock)
        .envs(host_dirs(d))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_eq!(rules(&ns), others);
    assert_eq!(sets(&ns), ["other-cni-set", "other-cni-set6"]);
}

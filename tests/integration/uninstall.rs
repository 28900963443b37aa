//! `uninstall` (what Kube-OVN's cleanup.sh runs as `/kube-ovn/uninstall.sh`) against the real
//! daemons, iptables (nft and legacy, IPv4 and IPv6) and ipset, each test in a network namespace
//! of its own holding a real (non-sandbox) node whose directories are in the test's temp dir:
//! userspace datapath, a Southbound of the test's own.
//!
//! Asserted on state: pids and pidfiles, the namespace's devices, every backend's `*-save`,
//! `ipset list -n`, the directories, exit statuses. Needs root (`ip netns add`) and `ipset`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::harness::Southbound;
use crate::harness::{
    db_ctl, exists, host_dirs, host_probe, southbound, wait_for, Netns, Node, BIN,
};

const READY: Duration = Duration::from_secs(60);
/// The restart backoff the nodes here run with (base 50 ms, cap 200 ms): a daemon that were
/// restarted would be back long before twice the cap has passed.
const BACKOFF_CAP_MS: &str = "200";

/// Another CNI's state, seeded first; it must be exactly what remains. `IPT` is the program;
/// its set `$OSET` exists ([`other_set`]).
const OTHERS: &str = r#"
$IPT -w 5 -N CALI-INPUT
$IPT -w 5 -A CALI-INPUT -m set --match-set $OSET src -j ACCEPT
$IPT -w 5 -I INPUT -m comment --comment "cali:Cz_u1IQiXIMmKD4c" -j CALI-INPUT
$IPT -w 5 -t nat -A PREROUTING -p tcp --dport 8080 -j DNAT --to-destination $DNAT
$IPT -w 5 -A OUTPUT -p udp -m udp --dport 6081 -j ACCEPT
"#;

/// Kube-OVN's state as its kube-ovn-cni leaves it (pkg/daemon/gateway_linux.go), for IPv4
/// (`F=4`, `NET=10.16.0.0/16`) or IPv6; `IPT` is the program.
const KUBE_OVN: &str = r#"
for s in subnets subnets-nat subnets-distributed-gw other-node subnets-nat-policy natpr-0123456789ab-src; do
  ipset create ovn${F}0$s hash:net family $FAMILY
done
ipset create ovn${F}0services hash:ip family $FAMILY
ipset create ovn${F}0local-pod-ip-nat hash:ip family $FAMILY
ipset create ovn${F}1subnets hash:net family $FAMILY
for c in OVN-PREROUTING OVN-POSTROUTING OVN-MASQUERADE OVN-NAT-POLICY OVN-NAT-PSUBNET-aaaa1111; do $IPT -w 5 -t nat -N $c; done
for c in OVN-PREROUTING OVN-POSTROUTING OVN-OUTPUT; do $IPT -w 5 -t mangle -N $c; done
$IPT -w 5 -t nat -A PREROUTING -m comment --comment "kube-ovn prerouting rules" -j OVN-PREROUTING
$IPT -w 5 -t nat -A POSTROUTING -m comment --comment "kube-ovn postrouting rules" -j OVN-POSTROUTING
$IPT -w 5 -t mangle -A PREROUTING -m comment --comment "kube-ovn prerouting rules" -j OVN-PREROUTING
$IPT -w 5 -t mangle -A POSTROUTING -m comment --comment "kube-ovn postrouting rules" -j OVN-POSTROUTING
$IPT -w 5 -t mangle -A OUTPUT -m comment --comment "kube-ovn output rules" -j OVN-OUTPUT
$IPT -w 5 -t nat -A OVN-PREROUTING -i ovn0 -m set --match-set ovn${F}0subnets src -m set --match-set ovn${F}0services dst -j MARK --set-xmark 0x4000/0x4000
$IPT -w 5 -t nat -A OVN-POSTROUTING -m mark --mark 0x4000/0x4000 -j OVN-MASQUERADE
$IPT -w 5 -t nat -A OVN-POSTROUTING -m set --match-set ovn${F}0subnets-nat-policy src -m set ! --match-set ovn${F}0subnets dst -j OVN-NAT-POLICY
$IPT -w 5 -t nat -A OVN-POSTROUTING -m set --match-set ovn${F}0subnets-nat src -m set ! --match-set ovn${F}0subnets dst -j OVN-MASQUERADE
$IPT -w 5 -t nat -A OVN-NAT-POLICY -s $NET -m comment --comment natPolicySubnet-ovn-default -j OVN-NAT-PSUBNET-aaaa1111
$IPT -w 5 -t nat -A OVN-NAT-PSUBNET-aaaa1111 -m set --match-set ovn${F}0natpr-0123456789ab-src src -j MARK --set-xmark 0x90001/0x90001
$IPT -w 5 -t nat -A OVN-MASQUERADE -j MARK --set-xmark 0x0/0xffffffff
$IPT -w 5 -t nat -A OVN-MASQUERADE -j MASQUERADE
$IPT -w 5 -t mangle -A OVN-POSTROUTING -p tcp -m set --match-set ovn${F}0subnets src -m tcp --tcp-flags RST RST -m state --state INVALID -j DROP
for dir in src dst; do
  $IPT -w 5 -A INPUT -m set --match-set ovn${F}0subnets $dir -j ACCEPT
  $IPT -w 5 -A INPUT -m set --match-set ovn${F}0services $dir -j ACCEPT
  $IPT -w 5 -A FORWARD -m set --match-set ovn${F}0subnets $dir -j ACCEPT
  $IPT -w 5 -A FORWARD -m set --match-set ovn${F}0services $dir -j ACCEPT
done
$IPT -w 5 -A INPUT -p tcp -m mark ! --mark 0x4000/0x4000 -m set --match-set ovn${F}0services dst -m conntrack --ctstate NEW -j REJECT
$IPT -w 5 -A OUTPUT -p tcp -m mark ! --mark 0x4000/0x4000 -m set --match-set ovn${F}0services dst -m conntrack --ctstate NEW -j REJECT
$IPT -w 5 -A FORWARD -m comment --comment "ovn-subnet-gateway,ovn-default" -s $NET
$IPT -w 5 -A OUTPUT -p udp -m udp --dport 6081 -j MARK --set-xmark 0x0
$IPT -w 5 -A OUTPUT -p udp -m udp --dport 4789 -j MARK --set-xmark 0x0
"#;

/// Runs a seed script in `ns` with `IPT` and the family's variables.
fn seed(ns: &Netns, script: &str, ipt: &str) {
    let v6 = ipt.starts_with("ip6");
    let (f, family, net, oset, dnat) = match v6 {
        true => (
            "6",
            "inet6",
            "fd00:10:16::/64",
            "other-cni-set6",
            "[fd00::1]:80",
        ),
        false => ("4", "inet", "10.16.0.0/16", "other-cni-set", "10.0.0.1:80"),
    };
    let out = ns
        .command("sh")
        .args(["-euc", script])
        .env("IPT", ipt)
        .env("F", f)
        .env("FAMILY", family)
        .env("NET", net)
        .env("OSET", oset)
        .env("DNAT", dnat)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "seed with {ipt}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn other_set(ns: &Netns) {
    ns.run("ipset", &["create", "other-cni-set", "hash:ip"]);
    ns.run(
        "ipset",
        &["create", "other-cni-set6", "hash:ip", "family", "inet6"],
    );
}

/// `ipset` must exist: the test would prove nothing without it.
fn need_ipset() {
    let ok = Command::new("ipset")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "ipset is needed (apt-get install ipset; scripts/install-deps.sh installs it)"
    );
}

const PROGRAMS: [&str; 4] = [
    "iptables-nft",
    "ip6tables-nft",
    "iptables-legacy",
    "ip6tables-legacy",
];

type Rules = BTreeMap<(&'static str, String), Vec<String>>;

/// Every backend's rules and user chains (`-A` and `:CHAIN -` lines) in order, per program and
/// table; a table with none is left out (seeding creates legacy tables that stay, empty).
fn rules(ns: &Netns) -> Rules {
    let mut all = Rules::new();
    for p in PROGRAMS {
        let save = ns.run(&format!("{p}-save"), &[]);
        let mut table = String::new();
        for line in save.lines() {
            if let Some(t) = line.strip_prefix('*') {
                table = t.to_string();
            } else if line.starts_with("-A ") || line.ends_with(" - [0:0]") {
                all.entry((p, table.clone()))
                    .or_default()
                    .push(line.to_string());
            }
        }
    }
    all
}

fn sets(ns: &Netns) -> Vec<String> {
    let mut v: Vec<String> = ns
        .run("ipset", &["list", "-n"])
        .lines()
        .map(String::from)
        .collect();
    v.sort();
    v
}

/// The node's namespace, its Southbound, and the node.
struct Bed {
    ns: Netns,
    _sb: Southbound,
    remote: String,
    node: Node,
    supervisor: i32,
}

impl Bed {
    fn d(&self) -> &Path {
        self.node.path()
    }

    /// `uninstall` run in the namespace with the node's directories, as cleanup.sh's exec.
    fn uninstall(&self) -> Output {
        self.ns
            .command(BIN)
            .arg("uninstall")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(host_dirs(self.d()))
            .output()
            .unwrap()
    }

    fn supervisor_pid(&self) -> i32 {
        self.supervisor
    }

    /// Live processes whose command line names the node's run directories (its daemons; not
    /// the test's Southbound, whose files are beside them).
    fn daemons(&self) -> Vec<i32> {
        let me = self.supervisor_pid();
        let dir = self
            .d()
            .join("run/")
            .as_os_str()
            .as_encoded_bytes()
            .to_vec();
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&p| p != me && crate::harness::state_of(p).is_some_and(|s| s != 'Z'))
            .filter(|p| {
                std::fs::read(format!("/proc/{p}/cmdline"))
                    .is_ok_and(|c| c.windows(dir.len()).any(|w| w == dir))
            })
            .collect()
    }

    fn links(&self) -> Vec<String> {
        let out = self.ns.run("ip", &["-o", "link", "show"]);
        out.lines()
            .filter_map(|l| l.split(':').nth(1).map(|n| n.trim().to_string()))
            .collect()
    }
}

/// A node in a new namespace, ready; `before` seeds the namespace first.
fn bed(before: impl FnOnce(&Netns)) -> Bed {
    need_ipset();
    let ns = Netns::new("oos-un");
    before(&ns);
    let mut node = Node::new();
    let d = node.path().to_path_buf();
    let (sb, remote) = southbound(&d);
    let log = std::fs::File::create(node.log_path()).unwrap();
    let child = ns
        .command(BIN)
        .arg("run")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("OVS_OVN_SUPERVISOR_LOG", "debug")
        .envs(host_dirs(&d))
        .env(
            "OVS_OVN_SUPERVISOR_RUNDIR_LINK",
            d.join("usr/local/var/run/openvswitch"),
        )
        .env("OVN_SB_ADDR", &remote)
        .env("TUNNEL_TYPE", "geneve")
        .env("OVS_OVN_SUPERVISOR_DATAPATH_TYPE", "netdev")
        .env("OVS_OVN_SUPERVISOR_FIREWALL_IPV6", "false")
        .env("OVS_OVN_SUPERVISOR_RESTART_BACKOFF_BASE_MS", "50")
        .env("OVS_OVN_SUPERVISOR_RESTART_BACKOFF_CAP_MS", BACKOFF_CAP_MS)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let supervisor = child.id() as i32;
    node.child = Some(child);
    let b = Bed {
        ns,
        _sb: sb,
        remote,
        node,
        supervisor,
    };
    let t0 = Instant::now();
    while host_probe(b.d(), "readiness").0 != Some(0) {
        assert!(t0.elapsed() < READY, "not ready: {}", b.node.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    b
}

/// A second chassis in the Southbound and our encapsulation address: ovn-controller then makes
/// a geneve tunnel port on br-int.
fn with_tunnel_port(b: &Bed) {
    db_ctl(
        "ovn-sbctl",
        &b.remote,
        &["chassis-add", "fake-node", "geneve", "192.0.2.9"],
    );
    b.node.vsctl(&[
        "set",
        "open_vswitch",
        ".",
        "external_ids:ovn-encap-ip=192.0.2.1",
    ]);
    wait_for(
        "ovn-controller's tunnel port",
        Duration::from_secs(30),
        || {
            !b.node
                .vsctl(&[
                    "--bare",
                    "--columns=name",
                    "find",
                    "interface",
                    "type=geneve",
                ])
                .is_empty()
        },
    );
}

/// The directories `uninstall` empties: the layout's (not OVS_SYSCONFDIR, which holds one).
fn layout_dirs(d: &Path) -> Vec<PathBuf> {
    (host_dirs(d).into_iter())
        .filter(|(var, _)| *var != "OVS_SYSCONFDIR")
        .map(|(_, p)| p)
        .collect()
}

fn interfaces_of_type(conf_db: &Path, t: &str) -> String {
    let q = format!(
        r#"["Open_vSwitch",{{"op":"select","table":"Interface","where":[["type","==","{t}"]],"columns":["name"]}}]"#
    );
    let out = Command::new("ovsdb-tool")
        .arg("query")
        .arg(conf_db)
        .arg(q)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

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

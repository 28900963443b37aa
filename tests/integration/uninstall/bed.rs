//! The test bed of the `uninstall` tests: a network namespace seeded with Kube-OVN's state
//! (as its kube-ovn-cni leaves it) and another CNI's, a real node run in it, and reading the
//! namespace's iptables, ipsets and devices back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::harness::Southbound;
use crate::harness::{db_ctl, host_dirs, host_probe, southbound, wait_for, Netns, Node, BIN};

pub(super) const READY: Duration = Duration::from_secs(60);
/// The restart backoff the nodes here run with (base 50 ms, cap 200 ms): a daemon that were
/// restarted would be back long before twice the cap has passed.
pub(super) const BACKOFF_CAP_MS: &str = "200";

/// Another CNI's state, seeded first; it must be exactly what remains. `IPT` is the program;
/// its set `$OSET` exists ([`other_set`]).
pub(super) const OTHERS: &str = r#"
$IPT -w 5 -N CALI-INPUT
$IPT -w 5 -A CALI-INPUT -m set --match-set $OSET src -j ACCEPT
$IPT -w 5 -I INPUT -m comment --comment "cali:Cz_u1IQiXIMmKD4c" -j CALI-INPUT
$IPT -w 5 -t nat -A PREROUTING -p tcp --dport 8080 -j DNAT --to-destination $DNAT
$IPT -w 5 -A OUTPUT -p udp -m udp --dport 6081 -j ACCEPT
"#;

/// Kube-OVN's state as its kube-ovn-cni leaves it (pkg/daemon/gateway_linux.go), for IPv4
/// (`F=4`, `NET=10.16.0.0/16`) or IPv6; `IPT` is the program.
pub(super) const KUBE_OVN: &str = r#"
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
pub(super) fn seed(ns: &Netns, script: &str, ipt: &str) {
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

pub(super) fn other_set(ns: &Netns) {
    ns.run("ipset", &["create", "other-cni-set", "hash:ip"]);
    ns.run(
        "ipset",
        &["create", "other-cni-set6", "hash:ip", "family", "inet6"],
    );
}

/// `ipset` must exist: the test would prove nothing without it.
pub(super) fn need_ipset() {
    let ok = Command::new("ipset")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "ipset is needed (apt-get install ipset; scripts/install-deps.sh installs it)"
    );
}

pub(super) const PROGRAMS: [&str; 4] = [
    "iptables-nft",
    "ip6tables-nft",
    "iptables-legacy",
    "ip6tables-legacy",
];

pub(super) type Rules = BTreeMap<(&'static str, String), Vec<String>>;

/// Every backend's rules and user chains (`-A` and `:CHAIN -` lines) in order, per program and
/// table; a table with none is left out (seeding creates legacy tables that stay, empty).
pub(super) fn rules(ns: &Netns) -> Rules {
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

pub(super) fn sets(ns: &Netns) -> Vec<String> {
    let mut v: Vec<String> = ns
        .run("ipset", &["list", "-n"])
        .lines()
        .map(String::from)
        .collect();
    v.sort();
    v
}

/// The node's namespace, its Southbound, and the node.
pub(super) struct Bed {
    pub(super) ns: Netns,
    _sb: Southbound,
    pub(super) remote: String,
    pub(super) node: Node,
    supervisor: i32,
}

impl Bed {
    pub(super) fn d(&self) -> &Path {
        self.node.path()
    }

    /// `uninstall` run in the namespace with the node's directories, as cleanup.sh's exec.
    pub(super) fn uninstall(&self) -> Output {
        self.ns
            .command(BIN)
            .arg("uninstall")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(host_dirs(self.d()))
            .output()
            .unwrap()
    }

    pub(super) fn supervisor_pid(&self) -> i32 {
        self.supervisor
    }

    /// Live processes whose command line names the node's run directories (its daemons; not
    /// the test's Southbound, whose files are beside them).
    pub(super) fn daemons(&self) -> Vec<i32> {
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

    pub(super) fn links(&self) -> Vec<String> {
        let out = self.ns.run("ip", &["-o", "link", "show"]);
        out.lines()
            .filter_map(|l| l.split(':').nth(1).map(|n| n.trim().to_string()))
            .collect()
    }
}

/// A node in a new namespace, ready; `before` seeds the namespace first.
pub(super) fn bed(before: impl FnOnce(&Netns)) -> Bed {
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
pub(super) fn with_tunnel_port(b: &Bed) {
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
pub(super) fn layout_dirs(d: &Path) -> Vec<PathBuf> {
    (host_dirs(d).into_iter())
        .filter(|(var, _)| *var != "OVS_SYSCONFDIR")
        .map(|(_, p)| p)
        .collect()
}

pub(super) fn interfaces_of_type(conf_db: &Path, t: &str) -> String {
    let q = format!(
        r#"["Open_vSwitch",{{"op":"select","table":"Interface","where":[["type","==","{t}"]],"columns":["name"]}}]"#
    );
    crate::harness::run_ok(Command::new("ovsdb-tool").arg("query").arg(conf_db).arg(q))
}

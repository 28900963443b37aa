//! The tunnel-port rule against real iptables (nft and legacy, IPv4 and IPv6), each test in a
//! network namespace it creates and deletes, so the machine's own tables are never touched.
//!
//! Every scenario pre-loads another CNI's rules (head of `INPUT`, a custom chain, a DNAT in nat
//! `PREROUTING`) and checks after each step that the whole `*-save` output, with our one line
//! filtered out, is byte-for-byte what it was. Needs root (`ip netns add`).

use std::sync::Barrier;

use crate::harness::Netns;

use ovs_ovn_supervisor::config::TunnelType;
use ovs_ovn_supervisor::host::firewall::{
    detect_backend, ensure, remove, rule_for, Backend, Change, Family, HostRunner, Output, Runner,
};

const OURS: &str = "ovs-ovn-supervisor";

/// The firewall library's own view of a test namespace.
impl Netns {
    fn runner(&self) -> HostRunner {
        HostRunner::new(Some(self.name.clone()))
    }

    fn try_run(&self, program: &str, args: &[&str]) -> Output {
        self.runner()
            .run(program, args)
            .expect("spawn ip netns exec")
    }
}

/// One backend and family inside one namespace.
struct Fixture {
    ns: Netns,
    backend: Backend,
    family: Family,
    program: &'static str,
}

impl Fixture {
    /// `None` only when this backend does not work here AND the environment says so:
    /// `OOS_TEST_WITHOUT` (a comma list) names the program. Otherwise a missing or unusable
    /// iptables fails the test: no machine silently shrinks the suite.
    fn new(backend: Backend, family: Family) -> Option<Fixture> {
        let ns = Netns::new("oos-fw");
        let program = backend.program(family);
        let out = ns.try_run(program, &["-w", "-S", "INPUT"]);
        if out.code != Some(0) {
            let without = std::env::var("OOS_TEST_WITHOUT").unwrap_or_default();
            assert!(
                without.split(',').any(|p| p.trim() == program),
                "{program} does not work in a network namespace here ({:?}: {}); install it, \
                 or name it in OOS_TEST_WITHOUT to run without it",
                out.code,
                out.stderr.trim()
            );
            eprintln!("without {program}, as OOS_TEST_WITHOUT says");
            return None;
        }
        Some(Fixture {
            ns,
            backend,
            family,
            program,
        })
    }

    /// Runs one iptables command given as space-separated words (no quoting needed here).
    fn ipt(&self, line: &str) {
        let args: Vec<&str> = line.split(' ').collect();
        self.ns.run(self.program, &args);
    }

    /// The rules of `INPUT`, `-A` lines only, in order.
    fn input(&self) -> Vec<String> {
        let listing = self.ns.run(self.program, &["-w", "-S", "INPUT"]);
        listing
            .lines()
            .filter(|l| l.starts_with("-A "))
            .map(String::from)
            .collect()
    }

    fn ours(&self, t: TunnelType) -> Vec<usize> {
        let comment = format!("\"{OURS}: {} tunnel\"", t.as_str());
        let rules = self.input();
        (0..rules.len())
            .filter(|&i| rules[i].contains(&comment))
            .collect()
    }

    /// Every table as `*-save` prints it, minus timestamps and our own lines.
    fn others(&self) -> String {
        let save = format!("{}-save", self.program);
        let text = self.ns.run(&save, &[]);
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.contains(OURS))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    fn ensure(&self, t: TunnelType) -> Vec<Change> {
        ensure(&self.ns.runner(), self.backend, t, &[self.family]).unwrap()
    }

    /// Calico-like rules at the head of `INPUT`, a custom chain, a DROP, and a DNAT in nat.
    fn preload_other_cni(&self) {
        let dnat = match self.family {
            Family::V4 => "10.0.0.1:80",
            Family::V6 => "[fd00::1]:80",
        };
        self.ipt("-w -A INPUT -p tcp --dport 2379 -j DROP");
        self.ipt("-w -N cali-INPUT");
        self.ipt("-w -A cali-INPUT -m mark --mark 0x10000/0x10000 -j ACCEPT");
        self.ipt("-w -I INPUT -j cali-INPUT");
        self.ipt("-w -I INPUT -m comment --comment cali:xyz -j ACCEPT");
        let nat = "-w -t nat -A PREROUTING -p tcp --dport 8080 -j DNAT --to-destination";
        self.ipt(&format!("{nat} {dnat}"));
    }
}

fn inserted(f: &Fixture, t: TunnelType) -> Change {
    Change::Inserted {
        family: f.family,
        rule: rule_for(t),
    }
}

/// Every step against one backend and family, with another CNI's rules loaded first; after each,
/// the other CNI's rules are byte-for-byte what they were.
fn scenario(backend: Backend, family: Family) {
    let Some(f) = Fixture::new(backend, family) else {
        return;
    };
    f.preload_other_cni();
    let before = f.others();
    assert!(
        before.contains("cali:xyz") && before.contains("DNAT"),
        "{before}"
    );
    inserted_once_at_the_head(&f, &before);
    let before = head_left_to_a_later_cni(&f);
    runs_at_once_end_with_one_rule(&f, &before);
    another_tunnel_type_replaces_the_rule(&f, &before);
    leftovers_of_older_runs_are_removed(&f, &before);
}

/// The first run inserts our one rule at the head of `INPUT`; runs after it change nothing.
fn inserted_once_at_the_head(f: &Fixture, before: &str) {
    assert_eq!(
        f.ensure(TunnelType::Geneve),
        [inserted(f, TunnelType::Geneve)]
    );
    assert_eq!(f.ours(TunnelType::Geneve), [0], "{:#?}", f.input());
    assert_eq!(
        f.input()[0],
        format!("-A INPUT -p udp -m udp --dport 6081 -m comment --comment \"{OURS}: geneve tunnel\" -j ACCEPT")
    );
    for _ in 0..5 {
        assert_eq!(f.ensure(TunnelType::Geneve), []);
    }
    assert_eq!(f.ours(TunnelType::Geneve), [0]);
    assert_eq!(f.others(), before);
}

/// Another CNI takes the head: we do not fight it for the position. The other rules as they now
/// are.
fn head_left_to_a_later_cni(f: &Fixture) -> String {
    f.ipt("-w -I INPUT -m comment --comment cali:late -j ACCEPT");
    let before = f.others();
    assert_eq!(f.ensure(TunnelType::Geneve), []);
    assert_eq!(f.ours(TunnelType::Geneve), [1], "{:#?}", f.input());
    assert_eq!(f.others(), before);
    before
}

/// Runs at once end with exactly one rule (iptables -C/-I races do happen here: a run inserts
/// beside another, or a delete loses to another's).
fn runs_at_once_end_with_one_rule(f: &Fixture, before: &str) {
    for _ in 0..4 {
        remove(&f.ns.runner(), f.backend, &[f.family]).unwrap();
        let start = Barrier::new(3);
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    start.wait();
                    f.ensure(TunnelType::Geneve)
                });
            }
        });
        assert_eq!(f.ours(TunnelType::Geneve).len(), 1, "{:#?}", f.input());
        assert_eq!(f.others(), before);
    }
}

/// A run with another tunnel type inserts its rule and removes the old one.
fn another_tunnel_type_replaces_the_rule(f: &Fixture, before: &str) {
    let changes = f.ensure(TunnelType::Vxlan);
    let geneve_gone = Change::Removed {
        family: f.family,
        rule: rule_for(TunnelType::Geneve),
        count: 1,
    };
    assert_eq!(changes, [inserted(f, TunnelType::Vxlan), geneve_gone]);
    assert_eq!(f.ours(TunnelType::Geneve), [] as [usize; 0]);
    assert_eq!(f.ours(TunnelType::Vxlan), [0]);
    assert_eq!(f.others(), before);
}

/// Leftovers of older runs (a duplicate, another tunnel type) go too.
fn leftovers_of_older_runs_are_removed(f: &Fixture, before: &str) {
    for t in [TunnelType::Vxlan, TunnelType::Stt] {
        let spec = rule_for(t).spec();
        let args: Vec<&str> = ["-w", "-A", "INPUT"]
            .into_iter()
            .chain(spec.iter().map(String::as_str))
            .collect();
        f.ns.run(f.program, &args);
    }
    let changes = remove(&f.ns.runner(), f.backend, &[f.family]).unwrap();
    let removed = |t, count| Change::Removed {
        family: f.family,
        rule: rule_for(t),
        count,
    };
    assert_eq!(
        changes,
        [removed(TunnelType::Vxlan, 2), removed(TunnelType::Stt, 1)]
    );
    assert!(
        f.input().iter().all(|l| !l.contains(OURS)),
        "{:#?}",
        f.input()
    );
    assert_eq!(f.others(), before);
}

#[test]
fn nft_ipv4() {
    scenario(Backend::Nft, Family::V4);
}

#[test]
fn legacy_ipv4() {
    scenario(Backend::Legacy, Family::V4);
}

#[test]
fn legacy_ipv6() {
    scenario(Backend::Legacy, Family::V6);
}

#[test]
fn nft_ipv6() {
    scenario(Backend::Nft, Family::V6);
}

#[test]
fn detect_backend_follows_the_tables_in_use() {
    let ns = Netns::new("oos-fw");
    // Nothing anywhere: nft, the Debian 12 default.
    assert_eq!(detect_backend(&ns.runner()), Backend::Nft);
    // Rules only in legacy: legacy.
    ns.run("iptables-legacy", &["-w", "-A", "INPUT", "-j", "ACCEPT"]);
    assert_eq!(detect_backend(&ns.runner()), Backend::Legacy);
    // kubelet's hint chain in nft outranks legacy's rule count.
    ns.run(
        "iptables-nft",
        &["-w", "-t", "mangle", "-N", "KUBE-IPTABLES-HINT"],
    );
    assert_eq!(detect_backend(&ns.runner()), Backend::Nft);
}

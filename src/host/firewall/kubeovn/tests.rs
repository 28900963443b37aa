//! The Kube-OVN remover on real `iptables-nft-save` output (a namespace seeded the way
//! kube-ovn-cni fills it, plus another CNI's rules: tests/fixtures/kube-ovn-iptables-nft.save)
//! and against a small model of iptables that applies `-D/-F/-X` and saves again.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use super::owner::{is_kube_ovn_chain, is_kube_ovn_set, owner, Owner};
use super::save::{parse, Table};
use super::*;

const SAVE: &str = include_str!("../../../../tests/fixtures/kube-ovn-iptables-nft.save");

fn w(s: &str) -> Vec<String> {
    crate::host::firewall::split_words(s).unwrap()
}

#[test]
fn a_save_parses_into_tables_chains_and_rules() {
    let tables = parse(SAVE);
    let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["mangle", "filter", "nat"]);
    let filter = &tables[1];
    assert_eq!(filter.builtin, ["INPUT", "FORWARD", "OUTPUT"]);
    assert_eq!(filter.user, ["CALI-INPUT"]);
    assert_eq!(filter.rules.len(), 14);
    // Quoted words come back unquoted.
    assert_eq!(
        filter.rules[1],
        ("INPUT".to_string(), w("-p udp -m udp --dport 6081 -m comment --comment \"ovs-ovn-supervisor: geneve tunnel\" -j ACCEPT"))
    );
    // An unterminated quote is no rule; lines outside a table are ignored.
    let odd = "-A INPUT -j ACCEPT\n*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m comment --comment \"open -j ACCEPT\nCOMMIT\n";
    let t = parse(odd);
    assert_eq!(t.len(), 1);
    assert!(t[0].rules.is_empty());
}

#[test]
fn whose_rule_it_is() {
    // (table, chain, rule as iptables -S prints it, owner)
    let table: &[(&str, &str, &str, Option<Owner>)] = &[
        ("nat", "PREROUTING", "-m comment --comment \"kube-ovn prerouting rules\" -j OVN-PREROUTING", Some(Owner::KubeOvn)),
        ("mangle", "OUTPUT", "-m comment --comment \"kube-ovn output rules\" -j OVN-OUTPUT", Some(Owner::KubeOvn)),
        ("filter", "INPUT", "-m set --match-set ovn60services dst -j ACCEPT", Some(Owner::KubeOvn)),
        ("filter", "INPUT", "-m mark ! --mark 0x4000/0x4000 -m set --match-set ovn40services dst -m conntrack --ctstate NEW -j REJECT --reject-with icmp-port-unreachable", Some(Owner::KubeOvn)),
        ("filter", "FORWARD", "-d 10.16.0.0/16 -m comment --comment \"ovn-subnet-gateway,ovn-default\"", Some(Owner::KubeOvn)),
        ("filter", "OUTPUT", "-p udp -m udp --dport 4789 -j MARK --set-xmark 0x0/0xffffffff", Some(Owner::KubeOvn)),
        ("nat", "PREROUTING", "-p udp -m addrtype --dst-type LOCAL -m set --match-set KUBE-NODE-PORT-LOCAL-UDP dst -j MARK --set-xmark 0x80000/0x80000", Some(Owner::KubeOvn)),
        ("filter", "INPUT", "-p udp -m udp --dport 4789 -m comment --comment \"ovs-ovn-supervisor: vxlan tunnel\" -j ACCEPT", Some(Owner::Us)),
        // Someone else's: similar, but not Kube-OVN's marks.
        ("filter", "OUTPUT", "-p udp -m udp --dport 6081 -j ACCEPT", None),
        ("filter", "OUTPUT", "-p udp -m udp --dport 6081 -j MARK --set-xmark 0x1/0xffffffff", None),
        ("filter", "INPUT", "-m set --match-set ovn40subnetsX src -j ACCEPT", None),
        ("filter", "INPUT", "-m set --match-set KUBE-NODE-PORT-LOCAL-TCP dst -j ACCEPT", None),
        ("nat", "POSTROUTING", "-j OVN-KUBE-SNAT-MGMTPORT", None),
        // A Kube-OVN chain name, but in a table where Kube-OVN has no such chain.
        ("filter", "INPUT", "-j OVN-PREROUTING", None),
        ("filter", "FORWARD", "-m comment --comment \"cali:ovn-subnet-gateway,x\" -j ACCEPT", None),
        ("filter", "INPUT", "-m comment --comment \"cali:Cz_u1IQiXIMmKD4c\" -j CALI-INPUT", None),
        // The gateway comment outside FORWARD is not Kube-OVN's rule.
        ("filter", "INPUT", "-m comment --comment \"ovn-subnet-gateway,ovn-default\"", None),
    ];
    for (t, c, rule, want) in table {
        assert_eq!(owner(t, c, &w(rule)), *want, "{t} {c} {rule}");
    }
}

#[test]
fn kube_ovn_chains_and_sets_by_name() {
    for (t, c, want) in [
        ("nat", "OVN-PREROUTING", true),
        ("nat", "OVN-NAT-PSUBNET-3f2a", true),
        ("nat", "OVN-OUTPUT", false),
        ("mangle", "OVN-OUTPUT", true),
        ("mangle", "OVN-MASQUERADE", false),
        ("filter", "OVN-PREROUTING", false),
        ("nat", "OVN-KUBE-NODEPORT", false),
    ] {
        assert_eq!(is_kube_ovn_chain(t, c), want, "{t} {c}");
    }
    for (name, want) in [
        ("ovn40subnets", true),
        ("ovn60subnets-distributed-gw", true),
        ("ovn41services", true), // felix's temporary copy
        ("ovn61local-pod-ip-nat", true),
        ("ovn40natpr-0123456789ab-dst", true),
        ("ovn40natpr-", false),
        ("ovn42subnets", false),
        ("ovn50subnets", false),
        ("ovn40", false),
        ("ovn40subnets2", false),
        ("KUBE-CLUSTER-IP", false),
        ("cali40all-ipam-pools", false),
    ] {
        assert_eq!(is_kube_ovn_set(name), want, "{name}");
    }
}

fn del(table: &str, chain: &str, rule: &str, owner: Owner) -> Op {
    Op::Delete {
        table: table.into(),
        chain: chain.into(),
        spec: w(rule),
        owner,
    }
}

#[test]
fn the_plan_deletes_kube_ovn_and_ours_then_its_chains_and_nothing_else() {
    let ops = plan(&parse(SAVE));
    let k = Owner::KubeOvn;
    let mut want = vec![
        del("mangle", "PREROUTING", "-m comment --comment \"kube-ovn prerouting rules\" -j OVN-PREROUTING", k),
        del("mangle", "OUTPUT", "-m comment --comment \"kube-ovn output rules\" -j OVN-OUTPUT", k),
        del("mangle", "POSTROUTING", "-m comment --comment \"kube-ovn postrouting rules\" -j OVN-POSTROUTING", k),
        del("filter", "INPUT", "-p udp -m udp --dport 6081 -m comment --comment \"ovs-ovn-supervisor: geneve tunnel\" -j ACCEPT", Owner::Us),
        del("filter", "INPUT", "-m set --match-set ovn40subnets src -j ACCEPT", k),
        del("filter", "INPUT", "-m set --match-set ovn40subnets dst -j ACCEPT", k),
        del("filter", "INPUT", "-m set --match-set ovn40services src -j ACCEPT", k),
        del("filter", "INPUT", "-m set --match-set ovn40services dst -j ACCEPT", k),
        del("filter", "INPUT", "-p tcp -m mark ! --mark 0x4000/0x4000 -m set --match-set ovn40services dst -m conntrack --ctstate NEW -j REJECT --reject-with icmp-port-unreachable", k),
        del("filter", "FORWARD", "-m set --match-set ovn40subnets src -j ACCEPT", k),
        del("filter", "FORWARD", "-m set --match-set ovn40subnets dst -j ACCEPT", k),
        del("filter", "FORWARD", "-s 10.16.0.0/16 -m comment --comment \"ovn-subnet-gateway,ovn-default\"", k),
        del("filter", "OUTPUT", "-p udp -m udp --dport 6081 -j MARK --set-xmark 0x0/0xffffffff", k),
        del("filter", "OUTPUT", "-p udp -m udp --dport 4789 -j MARK --set-xmark 0x0/0xffffffff", k),
        del("nat", "PREROUTING", "-m comment --comment \"kube-ovn prerouting rules\" -j OVN-PREROUTING", k),
        del("nat", "POSTROUTING", "-m comment --comment \"kube-ovn postrouting rules\" -j OVN-POSTROUTING", k),
    ];
    let chains = [
        ("mangle", "OVN-OUTPUT"),
        ("mangle", "OVN-POSTROUTING"),
        ("mangle", "OVN-PREROUTING"),
        ("nat", "OVN-MASQUERADE"),
        ("nat", "OVN-NAT-POLICY"),
        ("nat", "OVN-NAT-PSUBNET-aaaa1111"),
        ("nat", "OVN-POSTROUTING"),
        ("nat", "OVN-PREROUTING"),
    ];
    let s = |(t, c): &(&str, &str)| (t.to_string(), c.to_string());
    want.extend(
        chains
            .iter()
            .map(s)
            .map(|(table, chain)| Op::Flush { table, chain }),
    );
    want.extend(
        chains
            .iter()
            .map(s)
            .map(|(table, chain)| Op::DeleteChain { table, chain }),
    );
    assert_eq!(ops, want);
    // By content only: every deletion names its whole rule, never an index.
    for op in &ops {
        let args = op.args();
        assert_eq!(args[..2], LOCK_WAIT);
        if let Op::Delete { .. } = op {
            assert!(args[6].parse::<u32>().is_err(), "{args:?}");
        }
    }
}

#[test]
fn nothing_of_kube_ovn_plans_nothing() {
    let other = "*filter\n:INPUT ACCEPT [0:0]\n:CALI-INPUT - [0:0]\n-A INPUT -j CALI-INPUT\n-A CALI-INPUT -j ACCEPT\nCOMMIT\n";
    assert!(plan(&parse(other)).is_empty());
    assert!(plan(&[]).is_empty());
}

fn facts(loaded: Option<&[&str]>) -> Facts {
    Facts {
        loaded: loaded.map(|l| l.iter().map(|m| m.to_string()).collect()),
        ..Facts::default()
    }
}

#[test]
fn which_tables_the_kernel_may_hold() {
    // (loaded modules: None = no module support, module, may have)
    let table: &[(Option<&[&str]>, &str, bool)] = &[
        (None, "nf_tables", true),
        (Some(&["nf_tables", "iptable_nat"]), "nf_tables", true),
        (Some(&["nf_tables", "iptable_nat"]), "iptable_nat", true),
        (Some(&["nf_tables"]), "iptable_nat", false),
        (Some(&[]), "ip6_tables", false),
    ];
    for (loaded, module, want) in table {
        let k = Kernel::from_facts(facts(*loaded));
        assert_eq!(k.may_have(module), *want, "{loaded:?} {module}");
    }
    let mut f = facts(Some(&[]));
    f.sysfs = BTreeSet::from(["nf_tables".to_string()]);
    assert!(Kernel::from_facts(f).may_have("nf_tables"), "built in");
}

/// A small iptables: per program, tables as a save shows them; `-D/-F/-X` applied by content.
#[derive(Default)]
struct Model {
    tables: RefCell<BTreeMap<String, Vec<Table>>>,
    /// Save programs that fail (exit 1 and this message) unless given `-t TABLE`.
    unlisted: BTreeMap<&'static str, &'static str>,
    /// Programs that do not exist.
    missing: Vec<&'static str>,
    calls: RefCell<Vec<String>>,
}

fn render(tables: &[Table]) -> String {
    let q = |w: &String| super::super::fake::quote(w);
    let mut s = String::new();
    for t in tables {
        s += &format!("*{}\n", t.name);
        for c in &t.builtin {
            s += &format!(":{c} ACCEPT [0:0]\n");
        }
        for c in &t.user {
            s += &format!(":{c} - [0:0]\n");
        }
        for (c, spec) in &t.rules {
            s += &format!(
                "-A {c} {}\n",
                spec.iter().map(q).collect::<Vec<_>>().join(" ")
            );
        }
        s += "COMMIT\n";
    }
    s
}

impl Runner for Model {
    fn run(&self, program: &str, args: &[&str]) -> Result<Output, RunError> {
        self.calls
            .borrow_mut()
            .push(format!("{program} {}", args.join(" ")));
        let ok = |stdout: String| {
            Ok(Output {
                code: Some(0),
                stdout,
                stderr: String::new(),
            })
        };
        if self.missing.contains(&program) {
            let source = std::io::Error::from(std::io::ErrorKind::NotFound);
            return Err(BoundedError::Spawn {
                program: program.into(),
                source,
            }
            .into());
        }
        if let Some(iptables) = program.strip_suffix("-save") {
            let tables = self
                .tables
                .borrow()
                .get(iptables)
                .cloned()
                .unwrap_or_default();
            return match (args, self.unlisted.get(program)) {
                (["-t", t], _) => ok(render(
                    &tables
                        .into_iter()
                        .filter(|x| x.name == *t)
                        .collect::<Vec<_>>(),
                )),
                (_, Some(msg)) => Ok(Output {
                    code: Some(1),
                    stdout: String::new(),
                    stderr: msg.to_string(),
                }),
                _ => ok(render(&tables)),
            };
        }
        let [_, _, "-t", table, op, chain, spec @ ..] = args else {
            panic!("unexpected {program} {args:?}");
        };
        let mut all = self.tables.borrow_mut();
        let t = all
            .get_mut(program)
            .and_then(|ts| ts.iter_mut().find(|t| t.name == *table))
            .unwrap();
        let spec: Vec<String> = spec.iter().map(|s| s.to_string()).collect();
        match *op {
            "-D" => {
                let i = t
                    .rules
                    .iter()
                    .position(|(c, s)| c == chain && *s == spec)
                    .unwrap();
                t.rules.remove(i);
            }
            "-F" => t.rules.retain(|(c, _)| c != chain),
            "-X" => t.user.retain(|c| c != chain),
            _ => panic!("unexpected {op}"),
        }
        ok(String::new())
    }
}

fn model_with(program: &str, save: &str) -> Model {
    let m = Model::default();
    m.tables.borrow_mut().insert(program.into(), parse(save));
    m
}

#[test]
fn remove_leaves_only_the_other_cnis_rules_and_a_second_run_changes_nothing() {
    let m = model_with("iptables-nft", SAVE);
    let k = Kernel::from_facts(facts(None));
    let out = remove(&m, &k);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(out.removed.len(), plan(&parse(SAVE)).len());
    // What the real iptables-nft-save printed after `uninstall` on the namespace the fixture
    // was saved from.
    let after = "*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n\
        :OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n\
        *filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
        :CALI-INPUT - [0:0]\n\
        -A INPUT -m comment --comment \"cali:Cz_u1IQiXIMmKD4c\" -j CALI-INPUT\n\
        -A OUTPUT -p udp -m udp --dport 6081 -j ACCEPT\n\
        -A CALI-INPUT -m set --match-set other-cni-set src -j ACCEPT\nCOMMIT\n\
        *nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
        :POSTROUTING ACCEPT [0:0]\n\
        -A PREROUTING -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.0.0.1:80\nCOMMIT\n";
    assert_eq!(m.tables.borrow()["iptables-nft"], parse(after));
    // The other three: empty, so nothing to do there either.
    assert_eq!(out.skipped, vec![]);
    let again = remove(&m, &k);
    assert!(again.removed.is_empty() && again.errors.is_empty());
}

#[test]
fn backends_that_cannot_hold_rules_are_skipped_and_an_unreadable_one_is_an_error() {
    let mut m = model_with("iptables-nft", SAVE);
    m.missing = vec!["ip6tables-nft-save", "ip6tables-legacy-save"];
    m.unlisted.insert(
        "iptables-legacy-save",
        "Failed to list table names in /proc/net/ip_tables_names: Permission denied",
    );
    // Modules: nf_tables and ip_tables loaded, no legacy table module: legacy holds nothing.
    let k = Kernel::from_facts(facts(Some(&["nf_tables", "ip_tables"])));
    let out = remove(&m, &k);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(
        out.skipped,
        vec![
            ("ip6tables-nft", "not installed"),
            ("ip6tables-legacy", "not installed")
        ]
    );
    let legacy: Vec<String> = m
        .calls
        .borrow()
        .iter()
        .filter(|c| c.starts_with("iptables-legacy"))
        .cloned()
        .collect();
    assert_eq!(
        legacy,
        ["iptables-legacy-save "],
        "no table asked for by name"
    );

    // nft unreadable while the kernel has nf_tables: an error naming the program.
    let mut m = Model::default();
    m.unlisted.insert(
        "iptables-nft-save",
        "Could not fetch rule set generation id: Permission denied (you must be root)",
    );
    let out = remove(&m, &Kernel::from_facts(facts(Some(&["nf_tables"]))));
    assert_eq!(out.errors.len(), 1, "{:?}", out.errors);
    let e = out.errors[0].to_string();
    assert!(
        e.contains("iptables-nft-save") && e.contains("Permission denied"),
        "{e}"
    );
    // ... and skipped when the kernel has no nf_tables (a 3.10 kernel).
    let out = remove(&m, &Kernel::from_facts(facts(Some(&["ip_tables"]))));
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert!(out
        .skipped
        .contains(&("iptables-nft", "the kernel has no such tables")));
}

#[test]
fn legacy_unlisted_reads_each_table_whose_module_is_there() {
    let mut m = model_with("iptables-legacy", SAVE);
    m.unlisted.insert(
        "iptables-legacy-save",
        "Failed to list table names in /proc/net/ip_tables_names: Permission denied",
    );
    let k = Kernel::from_facts(facts(Some(&[
        "ip_tables",
        "iptable_filter",
        "iptable_nat",
        "iptable_mangle",
    ])));
    let out = remove(&m, &k);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(out.removed.len(), plan(&parse(SAVE)).len());
    let asked: BTreeSet<String> = m
        .calls
        .borrow()
        .iter()
        .filter(|c| c.starts_with("iptables-legacy-save -t"))
        .cloned()
        .collect();
    assert_eq!(asked.len(), 3, "{asked:?}");
}

//! Tests of [`super`]: rule specs, `-S` parsing, backend and IPv6 decisions, and `ensure`/`remove`
//! against a fake iptables that models one `INPUT` chain per program and records every call.

use super::*;
use crate::config::TunnelType::{Geneve, Stt, Vxlan};
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};

fn words(s: &[&str]) -> Vec<String> {
    s.iter().map(|w| w.to_string()).collect()
}

const BAD_RULE: &str = "iptables: Bad rule (does a matching rule exist in that chain?).\n";
const NFT_RACE: &str = "iptables v1.8.9 (nf_tables):  RULE_DELETE failed (No such file or directory): rule in chain INPUT\n";

type Hook = Box<dyn FnOnce(&mut Vec<Vec<String>>)>;

/// A fake iptables: one `INPUT` chain per program, modelled closely enough for `-C/-I/-D/-S`
/// (insert at the head, delete the first match, `-S` quoted the way iptables quotes).
#[derive(Default)]
struct Fake {
    chains: RefCell<HashMap<String, Vec<Vec<String>>>>,
    calls: RefCell<Vec<(String, Vec<String>)>>,
    /// Programs that give this answer to every call instead of the model's.
    scripted: HashMap<&'static str, Output>,
    /// Programs that do not exist (spawn fails).
    missing: Vec<&'static str>,
    /// `*-save` outputs; a save program not listed is missing.
    saves: HashMap<&'static str, String>,
    /// One-shot hooks (a concurrent writer), each run on the chain just before the first
    /// later call with that op.
    hooks: RefCell<VecDeque<(&'static str, Hook)>>,
    /// `-S` spells rules differently from our spec (another iptables version).
    odd_listing: bool,
    /// `-D` answers success but deletes nothing.
    sticky: bool,
    /// `-D` of a missing rule answers like iptables-nft losing a race (exit 4), not exit 1.
    nft_race: bool,
}

impl Fake {
    fn with(program: &str, rules: &[Vec<String>]) -> Fake {
        let f = Fake::default();
        f.chains.borrow_mut().insert(program.into(), rules.to_vec());
        f
    }

    fn chain(&self, program: &str) -> Vec<Vec<String>> {
        self.chains
            .borrow()
            .get(program)
            .cloned()
            .unwrap_or_default()
    }

    fn ops(&self) -> Vec<String> {
        let calls = self.calls.borrow();
        calls
            .iter()
            .map(|(_, a)| a.get(1).cloned().unwrap_or_default())
            .collect()
    }

    fn hook(&self, op: &'static str, f: impl FnOnce(&mut Vec<Vec<String>>) + 'static) {
        self.hooks.borrow_mut().push_back((op, Box::new(f)));
    }

    /// Every mutation must be by content: never `-D INPUT 3`, never `-I INPUT 1 ...`.
    fn assert_by_content(&self) {
        for (prog, args) in self.calls.borrow().iter() {
            if prog.ends_with("-save") {
                continue;
            }
            assert_eq!(args[0], "-w", "no lock: {args:?}");
            if matches!(args[1].as_str(), "-D" | "-I" | "-C") {
                assert_eq!(args[2], "INPUT");
                let spec = &args[3..];
                assert!(spec.len() > 1, "{prog} {args:?}");
                assert!(
                    spec[0].parse::<u32>().is_err(),
                    "index used: {prog} {args:?}"
                );
                let ours = ALL_TUNNELS.iter().any(|&t| rule_for(t).spec() == spec);
                assert!(ours, "touched a rule not ours: {args:?}");
            }
        }
    }
}

/// iptables' own save quoting (xtables_save_string).
fn quote(w: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if !w.is_empty() && w.chars().all(plain) {
        return w.to_string();
    }
    let mut s = String::from("\"");
    for c in w.chars() {
        if matches!(c, '"' | '\\' | '\'') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

fn output(code: Option<i32>, stdout: String, stderr: &str) -> Output {
    let stderr = stderr.to_string();
    Output {
        code,
        stdout,
        stderr,
    }
}

fn ok(stdout: String) -> io::Result<Output> {
    Ok(output(Some(0), stdout, ""))
}

impl Runner for Fake {
    fn run(&self, program: &str, args: &[&str]) -> io::Result<Output> {
        self.calls.borrow_mut().push((program.into(), words(args)));
        if self.missing.contains(&program) {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        if let Some(out) = self.scripted.get(program) {
            return Ok(out.clone());
        }
        if program.ends_with("-save") {
            return match self.saves.get(program) {
                Some(s) => ok(s.clone()),
                None => Err(io::Error::from(io::ErrorKind::NotFound)),
            };
        }
        let (op, spec) = (args[1], words(&args[3..]));
        let mut chains = self.chains.borrow_mut();
        let chain = chains.entry(program.into()).or_default();
        let due = self.hooks.borrow().front().is_some_and(|(o, _)| *o == op);
        if due {
            let (_, hook) = self.hooks.borrow_mut().pop_front().unwrap();
            hook(chain);
        }
        let pos = chain.iter().position(|r| *r == spec);
        match (op, pos) {
            ("-C", Some(_)) => ok(String::new()),
            ("-D", None) if self.nft_race => Ok(output(Some(4), String::new(), NFT_RACE)),
            ("-C" | "-D", None) => Ok(output(Some(1), String::new(), BAD_RULE)),
            ("-D", Some(i)) => {
                if !self.sticky {
                    chain.remove(i);
                }
                ok(String::new())
            }
            ("-I", _) => {
                chain.insert(0, spec);
                ok(String::new())
            }
            ("-S", _) => {
                let line = |r: &Vec<String>| {
                    let line = format!(
                        "-A INPUT {}\n",
                        r.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
                    );
                    if self.odd_listing {
                        line.replace(" -m udp", "")
                    } else {
                        line
                    }
                };
                ok("-P INPUT ACCEPT\n".to_string() + &chain.iter().map(line).collect::<String>())
            }
            _ => panic!("fake iptables: unexpected {program} {args:?}"),
        }
    }
}

fn geneve() -> Vec<String> {
    rule_for(Geneve).spec()
}
fn vxlan() -> Vec<String> {
    rule_for(Vxlan).spec()
}
fn stt() -> Vec<String> {
    rule_for(Stt).spec()
}
fn calico() -> Vec<String> {
    words(&["-m", "comment", "--comment", "cali:xyz", "-j", "ACCEPT"])
}
fn drop_22() -> Vec<String> {
    words(&["-p", "tcp", "-m", "tcp", "--dport", "22", "-j", "DROP"])
}
fn inserted(family: Family, t: TunnelType) -> Change {
    Change::Inserted {
        family,
        rule: rule_for(t),
    }
}
fn removed(family: Family, t: TunnelType, count: u32) -> Change {
    Change::Removed {
        family,
        rule: rule_for(t),
        count,
    }
}

const NFT4: &str = "iptables-nft";

fn nft4(f: &Fake, t: TunnelType) -> Result<Vec<Change>, FirewallError> {
    ensure(f, Backend::Nft, t, &[Family::V4])
}
const V4: &[Family] = &[Family::V4];

#[test]
fn rule_specs_per_tunnel() {
    let spec = |p: &str, port: &str, name: &str| {
        let head = format!("-p {p} -m {p} --dport {port} -m comment --comment");
        let comment = format!("ovs-ovn-supervisor: {name} tunnel");
        words(&[head.split(' ').collect(), vec![&*comment, "-j", "ACCEPT"]].concat())
    };
    assert_eq!(geneve(), spec("udp", "6081", "geneve"));
    assert_eq!(vxlan(), spec("udp", "4789", "vxlan"));
    assert_eq!(stt(), spec("tcp", "7471", "stt"));
    let r = rule_for(Stt);
    assert_eq!((r.proto, r.port, r.tunnel), ("tcp", 7471, Stt));
}

#[test]
fn programs_per_backend_and_family() {
    assert_eq!(Backend::Nft.program(Family::V4), "iptables-nft");
    assert_eq!(Backend::Nft.program(Family::V6), "ip6tables-nft");
    assert_eq!(Backend::Legacy.program(Family::V4), "iptables-legacy");
    assert_eq!(Backend::Legacy.program(Family::V6), "ip6tables-legacy");
}

#[test]
fn listing_parse_undoes_iptables_quoting() {
    let line = r#"-A INPUT -m comment --comment "a \"q\" \\b" -j ACCEPT"#;
    let w = split_words(line).unwrap();
    assert_eq!(w[5], r#"a "q" \b"#);
    assert_eq!(split_words("-A INPUT -m comment --comment \"open"), None);
    assert_eq!(split_words("  "), Some(vec![]));
    let quoted: Vec<String> = geneve().iter().map(|w| quote(w)).collect();
    let ours = format!("-A INPUT {}", quoted.join(" "));
    assert_eq!(
        ours,
        r#"-A INPUT -p udp -m udp --dport 6081 -m comment --comment "ovs-ovn-supervisor: geneve tunnel" -j ACCEPT"#
    );
    let listing = format!(
        "-P INPUT ACCEPT\n{ours}\n-A INPUT -j DROP\n{ours}\n-A FORWARD{}\n",
        &ours[8..]
    );
    assert_eq!(count_in_listing(&listing, "INPUT", &geneve()), 2);
    assert_eq!(count_in_listing(&listing, "FORWARD", &geneve()), 1);
    assert_eq!(count_in_listing(&listing, "INPUT", &vxlan()), 0);
}

#[test]
fn ensure_when_absent_inserts_once_at_the_head() {
    let f = Fake::with(NFT4, &[calico(), drop_22()]);
    let changes = nft4(&f, Geneve).unwrap();
    assert_eq!(changes, vec![inserted(Family::V4, Geneve)]);
    assert_eq!(f.chain(NFT4), vec![geneve(), calico(), drop_22()]);
    assert_eq!(f.ops(), ["-C", "-I", "-S", "-C", "-C"]);
    assert!(f.calls.borrow().iter().all(|(p, _)| p == NFT4));
    f.assert_by_content();
}

#[test]
fn ensure_when_present_changes_nothing_and_keeps_position() {
    // Another CNI inserted above ours since: ours must not move back to the head.
    let rules = [calico(), geneve(), drop_22()];
    let f = Fake::with(NFT4, &rules);
    for _ in 0..3 {
        assert_eq!(nft4(&f, Geneve).unwrap(), vec![]);
    }
    assert_eq!(f.chain(NFT4), rules);
    assert!(
        !f.ops().iter().any(|op| op == "-I" || op == "-D"),
        "{:?}",
        f.ops()
    );
    f.assert_by_content();
}

#[test]
fn ensure_removes_other_tunnel_rules_by_spec_and_duplicates() {
    let rules = [vxlan(), calico(), vxlan(), stt()];
    let rules = [&rules[..], &[drop_22(), geneve(), geneve()]].concat();
    let f = Fake::with("ip6tables-legacy", &rules);
    let changes = ensure(&f, Backend::Legacy, Geneve, &[Family::V6]).unwrap();
    let v6 = Family::V6;
    assert_eq!(
        changes,
        vec![
            removed(v6, Geneve, 1),
            removed(v6, Vxlan, 2),
            removed(v6, Stt, 1),
        ]
    );
    assert_eq!(
        f.chain("ip6tables-legacy"),
        vec![calico(), drop_22(), geneve()]
    );
    f.assert_by_content();
}

#[test]
fn switching_tunnel_type_adds_new_then_removes_old() {
    let f = Fake::with(NFT4, &[calico(), geneve()]);
    let changes = nft4(&f, Vxlan).unwrap();
    let want = [inserted(Family::V4, Vxlan), removed(Family::V4, Geneve, 1)];
    assert_eq!(changes, want);
    assert_eq!(f.chain(NFT4), vec![vxlan(), calico()]);
    f.assert_by_content();
}

#[test]
fn both_families_use_their_own_program() {
    let f = Fake::default();
    let both = [Family::V4, Family::V6];
    let changes = ensure(&f, Backend::Legacy, Stt, &both).unwrap();
    let want = [inserted(Family::V4, Stt), inserted(Family::V6, Stt)];
    assert_eq!(changes, want);
    assert_eq!(f.chain("iptables-legacy"), vec![stt()]);
    assert_eq!(f.chain("ip6tables-legacy"), vec![stt()]);
    assert_eq!(ensure(&f, Backend::Legacy, Stt, &[]).unwrap(), vec![]);
}

#[test]
fn concurrent_insert_is_deduplicated_to_one() {
    let f = Fake::with(NFT4, &[calico()]);
    // Another run's -C also saw nothing and inserts right after ours.
    f.hook("-S", |chain| chain.insert(0, geneve()));
    let changes = nft4(&f, Geneve).unwrap();
    let want = [inserted(Family::V4, Geneve), removed(Family::V4, Geneve, 1)];
    assert_eq!(changes, want);
    assert_eq!(f.chain(NFT4), vec![geneve(), calico()]);
    f.assert_by_content();
}

#[test]
fn copy_deleted_by_a_concurrent_run_is_inserted_again() {
    let f = Fake::with(NFT4, &[calico()]);
    // The other run also inserted, counted two, and both deleted one: none left.
    f.hook("-S", |chain| chain.retain(|r| *r != geneve()));
    nft4(&f, Geneve).unwrap();
    assert_eq!(f.chain(NFT4), vec![geneve(), calico()]);
    assert_eq!(f.ops().iter().filter(|o| *o == "-I").count(), 2);
}

#[test]
fn delete_that_loses_a_race_counts_as_gone() {
    for nft_race in [false, true] {
        let f = Fake {
            nft_race,
            ..Fake::with(NFT4, &[vxlan(), calico()])
        };
        // Another run switching to geneve too deletes the vxlan rule between our -C and -D.
        f.hook("-D", |chain| chain.retain(|r| *r != vxlan()));
        let changes = nft4(&f, Geneve).unwrap();
        assert_eq!(changes, [inserted(Family::V4, Geneve)]);
        assert_eq!(f.chain(NFT4), vec![geneve(), calico()]);
    }
}

#[test]
fn listing_spelled_differently_trusts_check() {
    let f = Fake {
        odd_listing: true,
        ..Fake::with(NFT4, &[geneve()])
    };
    assert_eq!(nft4(&f, Geneve).unwrap(), vec![]);
    assert_eq!(f.chain(NFT4), vec![geneve()]);
}

#[test]
fn a_chain_that_never_settles_is_an_error_not_a_loop() {
    let f = Fake {
        sticky: true,
        ..Fake::with(NFT4, &[geneve(), geneve()])
    };
    let err = nft4(&f, Geneve).unwrap_err();
    assert!(
        matches!(err, FirewallError::NotConverged { count: 2, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("iptables-nft"), "{err}");
    // Removing a rule whose -D never takes effect is bounded too.
    let err = remove(&f, Backend::Nft, V4).unwrap_err();
    assert!(
        matches!(err, FirewallError::StillPresent { deleted: 1000, .. }),
        "{err:?}"
    );
    f.assert_by_content();
}

#[test]
#[rustfmt::skip]
fn errors_name_the_command_status_and_stderr() {
    let perm = "iptables v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)\n";
    let cases: &[(Option<i32>, &str, &str)] = &[
        (Some(2), "Couldn't load match `comment'", "exit status 2"),
        (Some(4), perm, "exit status 4"),
        // Exit 1 alone does not mean "absent": the chain itself may be missing.
        (Some(1), "iptables: No chain/target/match by that name.", "exit status 1"),
        (None, "", "killed by a signal"),
    ];
    for &(code, stderr, status) in cases {
        let answer = output(code, String::new(), stderr);
        let f = Fake { scripted: HashMap::from([(NFT4, answer)]), ..Fake::default() };
        let err = nft4(&f, Geneve).unwrap_err();
        let FirewallError::Failed { program, args, code: c, stderr: e } = &err else {
            panic!("{err:?}");
        };
        assert_eq!((program.as_str(), *c, e.as_str()), (NFT4, code, stderr));
        assert_eq!(args[..3], words(&["-w", "-C", "INPUT"]));
        let text = err.to_string();
        assert!(text.contains("`iptables-nft -w -C INPUT -p udp -m udp --dport 6081"), "{text}");
        assert!(text.contains(status) && text.contains(stderr.trim()), "{text}");
        assert_eq!(f.calls.borrow().len(), 1, "stopped at the first failure");
    }
    let f = Fake { missing: vec!["ip6tables-legacy"], ..Fake::default() };
    let err = remove(&f, Backend::Legacy, &[Family::V6]).unwrap_err();
    assert!(matches!(err, FirewallError::Spawn { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.starts_with("cannot run `ip6tables-legacy -w -C INPUT -p udp"), "{text}");
}

#[test]
fn remove_deletes_only_ours_every_copy() {
    let rules = [geneve(), calico(), vxlan(), geneve(), drop_22(), stt()];
    let f = Fake::with(NFT4, &rules);
    let changes = remove(&f, Backend::Nft, V4).unwrap();
    let want = [
        removed(Family::V4, Geneve, 2),
        removed(Family::V4, Vxlan, 1),
        removed(Family::V4, Stt, 1),
    ];
    assert_eq!(changes, want);
    assert_eq!(f.chain(NFT4), vec![calico(), drop_22()]);
    assert_eq!(remove(&f, Backend::Nft, V4).unwrap(), vec![]);
    assert!(!f.ops().iter().any(|op| op == "-I"));
    f.assert_by_content();
}

#[test]
#[rustfmt::skip]
fn detect_backend_table() {
    let hint = "*mangle\n:KUBE-IPTABLES-HINT - [0:0]\nCOMMIT\n";
    let canary = "*mangle\n:KUBE-KUBELET-CANARY - [0:0]\nCOMMIT\n";
    let rules = |n: usize| "*filter\n:INPUT ACCEPT [0:0]\n".to_string() + &"-A INPUT -j ACCEPT\n".repeat(n);
    let mention = "-A INPUT -m comment --comment \"KUBE-IPTABLES-HINT\" -j ACCEPT\n".to_string();
    let with_hint = format!("{hint}{}", rules(0));
    // (nft save, legacy save; None = the program is missing), expected
    let table: Vec<(Option<String>, Option<String>, Backend)> = vec![
        (Some(hint.into()), Some(rules(9)), Backend::Nft),
        (Some(rules(9)), Some(canary.into()), Backend::Legacy),
        (Some(with_hint.clone()), Some(with_hint), Backend::Nft),
        (Some(rules(1)), Some(rules(3)), Backend::Legacy),
        (Some(rules(3)), Some(rules(1)), Backend::Nft),
        (Some(rules(2)), Some(rules(2)), Backend::Nft),
        (Some(String::new()), Some(String::new()), Backend::Nft),
        (Some(mention.clone()), Some(rules(2)), Backend::Legacy),
        (None, Some(String::new()), Backend::Legacy),
        (Some(String::new()), None, Backend::Nft),
        (None, Some(rules(0)), Backend::Legacy),
        (None, None, Backend::Nft),
    ];
    for (nft, legacy, want) in table {
        let mut f = Fake::default();
        if let Some(s) = &nft { f.saves.insert("iptables-nft-save", s.clone()); }
        if let Some(s) = &legacy { f.saves.insert("iptables-legacy-save", s.clone()); }
        assert_eq!(detect_backend(&f), want, "nft={nft:?} legacy={legacy:?}");
    }
    // A save program that runs but fails counts as missing.
    let f = Fake {
        scripted: HashMap::from([("iptables-nft-save", output(Some(1), String::new(), ""))]),
        saves: HashMap::from([("iptables-legacy-save", String::new())]),
        ..Fake::default()
    };
    assert_eq!(detect_backend(&f), Backend::Legacy);
}

#[test]
fn ipv6_wanted_reads_global_scope_addresses() {
    let lo = "00000000000000000000000000000001 01 80 10 80       lo";
    let link = "fe80000000000000021122fffe334455 02 40 20 80     eth0";
    let global = "20010db8000000000000000000000001 02 40 00 80     eth0";
    let cases: &[(&str, bool)] = &[
        (lo, false),
        (&format!("{lo}\n{link}"), false),
        (&format!("{lo}\n{link}\n{global}"), true),
        (global, true),
        ("", false),
        ("garbage 00", false),
    ];
    for &(text, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc/net")).unwrap();
        std::fs::write(dir.path().join("proc/net/if_inet6"), format!("{text}\n")).unwrap();
        assert_eq!(ipv6_wanted(dir.path()), want, "{text:?}");
    }
    // No IPv6 in the kernel: the file does not exist.
    assert!(!ipv6_wanted(tempfile::tempdir().unwrap().path()));
}

#[test]
fn changes_read_as_sentences() {
    let rule = rule_for(TunnelType::Vxlan);
    let ins = Change::Inserted {
        family: Family::V6,
        rule: rule.clone(),
    };
    assert_eq!(
        ins.to_string(),
        "inserted the INPUT accept rule for vxlan (udp/4789) in ip6tables"
    );
    let rm = Change::Removed {
        family: Family::V4,
        rule: rule_for(TunnelType::Geneve),
        count: 2,
    };
    assert_eq!(
        rm.to_string(),
        "removed 2 INPUT accept rule(s) for geneve (udp/6081) from iptables"
    );
}

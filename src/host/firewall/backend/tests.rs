//! Tests of [`super`]: program names, backend detection from the save programs' output (through
//! the fake iptables), and IPv6 detection from `if_inet6`.

use std::collections::HashMap;

use super::super::fake::{output, Fake};
use super::*;

#[test]
fn programs_per_backend_and_family() {
    assert_eq!(Backend::Nft.program(Family::V4), "iptables-nft");
    assert_eq!(Backend::Nft.program(Family::V6), "ip6tables-nft");
    assert_eq!(Backend::Legacy.program(Family::V4), "iptables-legacy");
    assert_eq!(Backend::Legacy.program(Family::V6), "ip6tables-legacy");
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

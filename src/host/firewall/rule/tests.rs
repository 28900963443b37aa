//! Tests of [`super`]: the spec of each tunnel's rule, reading `iptables -S` back, and how
//! changes read.

use super::super::fake::{geneve, quote, stt, vxlan, words};
use super::*;
use crate::config::TunnelType::{self, Stt};

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

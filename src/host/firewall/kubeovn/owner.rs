//! Whose is a chain, a rule or an ipset: Kube-OVN's (its kube-ovn-cni creates them; its
//! `uninstall.sh` removes them), ours (the tunnel port rule), or someone else's.
//!
//! Kube-OVN's, from its sources (kube-ovn 1533681d, `pkg/daemon/gateway_linux.go`,
//! `pkg/util/const.go`, `dist/images/uninstall.sh`):
//! - chains: nat `OVN-PREROUTING`, `OVN-POSTROUTING`, `OVN-MASQUERADE`, `OVN-NAT-POLICY`,
//!   `OVN-NAT-PSUBNET-*`; mangle `OVN-PREROUTING`, `OVN-POSTROUTING`, `OVN-OUTPUT`;
//! - ipsets, named by felix's ipsets library with prefix `ovn`: `ovn` + family (`4`, `6`) +
//!   `0` (the live set) or `1` (felix's temporary copy) + `services`, `subnets`, `subnets-nat`,
//!   `subnets-distributed-gw`, `local-pod-ip-nat`, `other-node`, `subnets-nat-policy`, or
//!   `natpr-RULE-src|dst`;
//! - rules in the kernel's own chains: the jumps into its chains, every rule matching one of
//!   its ipsets (`--match-set`), the subnet gateway rules in `FORWARD` (comment
//!   `ovn-subnet-gateway,SUBNET`), and a few exact rules with no such mark (below).
//!
//! Invariant: pure. A rule is Kube-OVN's only by one of these marks, never by a prefix another
//! CNI could share (ovn-kubernetes' chains are `OVN-KUBE-*`: not a Kube-OVN name here).

const NAT_CHAINS: [&str; 4] = [
    "OVN-PREROUTING",
    "OVN-POSTROUTING",
    "OVN-MASQUERADE",
    "OVN-NAT-POLICY",
];
const NAT_POLICY_PREFIX: &str = "OVN-NAT-PSUBNET-";
const MANGLE_CHAINS: [&str; 3] = ["OVN-PREROUTING", "OVN-POSTROUTING", "OVN-OUTPUT"];

const SET_IDS: [&str; 7] = [
    "services",
    "subnets",
    "subnets-nat",
    "subnets-distributed-gw",
    "local-pod-ip-nat",
    "other-node",
    "subnets-nat-policy",
];
const SET_RULE_PREFIX: &str = "natpr-";

const SUBNET_GATEWAY_COMMENT: &str = "ovn-subnet-gateway,";
/// The comment prefix of our own rule (`ovs-ovn-supervisor: geneve tunnel`).
const OUR_COMMENT: &str = "ovs-ovn-supervisor: ";

/// Kube-OVN's rules that carry no mark of theirs, as `iptables -S` prints them:
/// `(table, chain, spec)`. `uninstall.sh` deletes the two `OUTPUT` ones; kube-ovn-cni's own
/// cleanup the `PREROUTING` ones (older versions put them there, newer in `OVN-PREROUTING`).
const UNMARKED: [(&str, &str, &str); 6] = [
    ("filter", "OUTPUT", "-p udp -m udp --dport 6081 -j MARK --set-xmark 0x0/0xffffffff"),
    ("filter", "OUTPUT", "-p udp -m udp --dport 4789 -j MARK --set-xmark 0x0/0xffffffff"),
    ("nat", "PREROUTING", "-p tcp -m addrtype --dst-type LOCAL -m set --match-set KUBE-NODE-PORT-LOCAL-TCP dst -j MARK --set-xmark 0x80000/0x80000"),
    ("nat", "PREROUTING", "-p udp -m addrtype --dst-type LOCAL -m set --match-set KUBE-NODE-PORT-LOCAL-UDP dst -j MARK --set-xmark 0x80000/0x80000"),
    ("nat", "PREROUTING", "-p tcp -m addrtype --dst-type LOCAL -m set --match-set KUBE-6-NODE-PORT-LOCAL-TCP dst -j MARK --set-xmark 0x80000/0x80000"),
    ("nat", "PREROUTING", "-p udp -m addrtype --dst-type LOCAL -m set --match-set KUBE-6-NODE-PORT-LOCAL-UDP dst -j MARK --set-xmark 0x80000/0x80000"),
];

/// Who put a rule there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    KubeOvn,
    /// Our tunnel port rule.
    Us,
}

/// True for a chain Kube-OVN creates in `table`.
pub fn is_kube_ovn_chain(table: &str, chain: &str) -> bool {
    match table {
        "nat" => NAT_CHAINS.contains(&chain) || chain.starts_with(NAT_POLICY_PREFIX),
        "mangle" => MANGLE_CHAINS.contains(&chain),
        _ => false,
    }
}

/// True for an ipset Kube-OVN's kube-ovn-cni creates (see the module doc for the naming).
pub fn is_kube_ovn_set(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("ovn") else {
        return false;
    };
    let mut chars = rest.chars();
    let (Some(family), Some(copy)) = (chars.next(), chars.next()) else {
        return false;
    };
    if !matches!(family, '4' | '6') || !matches!(copy, '0' | '1') {
        return false;
    }
    let id = chars.as_str();
    SET_IDS.contains(&id)
        || id
            .strip_prefix(SET_RULE_PREFIX)
            .is_some_and(|r| !r.is_empty())
}

/// The word after `flag` in `spec`, for every occurrence.
fn after<'a>(spec: &'a [String], flag: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    spec.windows(2)
        .filter(move |w| w[0] == flag)
        .map(|w| w[1].as_str())
}

/// Whose the rule `spec` in the built-in chain `chain` of `table` is; `None`: someone else's.
pub fn owner(table: &str, chain: &str, spec: &[String]) -> Option<Owner> {
    let comments: Vec<&str> = after(spec, "--comment").collect();
    if comments.iter().any(|c| c.starts_with(OUR_COMMENT)) {
        return Some(Owner::Us);
    }
    let jumps_to_ours = after(spec, "-j")
        .chain(after(spec, "-g"))
        .any(|target| is_kube_ovn_chain(table, target));
    let matches_our_set = after(spec, "--match-set").any(is_kube_ovn_set);
    let gateway = chain == "FORWARD"
        && table == "filter"
        && comments
            .iter()
            .any(|c| c.starts_with(SUBNET_GATEWAY_COMMENT));
    let unmarked = UNMARKED.iter().any(|(t, c, s)| {
        *t == table && *c == chain && s.split(' ').eq(spec.iter().map(String::as_str))
    });
    (jumps_to_ours || matches_our_set || gateway || unmarked).then_some(Owner::KubeOvn)
}

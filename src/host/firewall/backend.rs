//! Which iptables to drive: the backend (legacy or nft) the node's other components use, and
//! the address families the node needs.
//!
//! Invariants: the decisions ([`choose_backend`], [`has_global_ipv6`]) are pure functions of
//! what the host shows; a save program or file we cannot read counts as empty, never as an
//! error, so detection always decides.

use std::path::Path;

use super::runner::Runner;

/// Chains kubelet and kube-proxy create in the backend they use (kubernetes-sigs/iptables-wrapper).
const KUBE_HINT_CHAINS: [&str; 2] = ["KUBE-IPTABLES-HINT", "KUBE-KUBELET-CANARY"];

/// Which of the two iptables implementations the node's other components use. Mixing them
/// leaves two rule sets the kernel evaluates separately, so we follow the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Legacy,
    Nft,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Backend {
    pub fn program(self, family: Family) -> &'static str {
        match (self, family) {
            (Backend::Legacy, Family::V4) => "iptables-legacy",
            (Backend::Legacy, Family::V6) => "ip6tables-legacy",
            (Backend::Nft, Family::V4) => "iptables-nft",
            (Backend::Nft, Family::V6) => "ip6tables-nft",
        }
    }

    fn save_program(self) -> &'static str {
        match self {
            Backend::Legacy => "iptables-legacy-save",
            Backend::Nft => "iptables-nft-save",
        }
    }
}

/// Chooses the backend the way kubernetes-sigs/iptables-wrapper does: the one where kubelet's
/// hint chains exist (nft first), else the one holding more rules, ties to nft (Debian 12's
/// default). When only one save program runs (exit 0), it wins; when neither does, nft.
pub fn detect_backend(r: &dyn Runner) -> Backend {
    let save = |b: Backend| -> Option<String> {
        match r.run(b.save_program(), &[]) {
            Ok(out) if out.code == Some(0) => Some(out.stdout),
            _ => None,
        }
    };
    let (nft, legacy) = (save(Backend::Nft), save(Backend::Legacy));
    match (&nft, &legacy) {
        (Some(_), None) => return Backend::Nft,
        (None, Some(_)) => return Backend::Legacy,
        _ => {}
    }
    let (nft, legacy) = (nft.unwrap_or_default(), legacy.unwrap_or_default());
    choose_backend(&nft, &legacy)
}

/// The pure half of [`detect_backend`], on the two save outputs.
pub fn choose_backend(nft_save: &str, legacy_save: &str) -> Backend {
    if has_kube_hint(nft_save) {
        return Backend::Nft;
    }
    let legacy = has_kube_hint(legacy_save) || count_rules(legacy_save) > count_rules(nft_save);
    if legacy {
        Backend::Legacy
    } else {
        Backend::Nft
    }
}

fn has_kube_hint(save: &str) -> bool {
    // The hints are chains: `:KUBE-IPTABLES-HINT - [0:0]`. Matching the declaration, not any
    // substring, keeps a comment that merely mentions the name from deciding.
    save.lines().any(|l| {
        l.strip_prefix(':')
            .and_then(|l| l.split_whitespace().next())
            .is_some_and(|chain| KUBE_HINT_CHAINS.contains(&chain))
    })
}

fn count_rules(save: &str) -> usize {
    save.lines().filter(|l| l.starts_with("-A")).count()
}

/// Whether the node may carry IPv6 tunnel traffic: `proc/net/if_inet6` under `host_root` lists
/// a global-scope address other than `::1`. A missing or unreadable file means no IPv6.
pub fn ipv6_wanted(host_root: &Path) -> bool {
    std::fs::read_to_string(host_root.join("proc/net/if_inet6"))
        .map(|text| has_global_ipv6(&text))
        .unwrap_or(false)
}

/// The pure half of [`ipv6_wanted`]. Each line is `ADDR(32 hex) IFINDEX PREFIXLEN SCOPE FLAGS
/// NAME`, all hex; scope `00` is global, `10` host, `20` link.
pub fn has_global_ipv6(if_inet6: &str) -> bool {
    const LOOPBACK: &str = "00000000000000000000000000000001";
    if_inet6.lines().any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        f.len() >= 4 && f[0].len() == 32 && !f[0].eq_ignore_ascii_case(LOOPBACK) && f[3] == "00"
    })
}

#[cfg(test)]
mod tests;

//! Taking the node's host state away for an uninstall, the host half of Kube-OVN's
//! `uninstall.sh`: the kernel datapath and tunnel devices left after the daemons stopped
//! ([`datapath`]), the files in our directories ([`files`]), Kube-OVN's ipsets ([`ipsets`]);
//! Kube-OVN's iptables chains and rules are [`crate::host::firewall::kubeovn`]'s.
//!
//! Invariants: each part is idempotent (a second run finds nothing and succeeds) and reports
//! what it did and every failure with the path, program or name involved; none deletes
//! anything it cannot tell is Kube-OVN's, ours, or a leftover of our daemons.

pub mod datapath;
pub mod files;
pub mod ipsets;

//! The node as a real Kube-OVN cluster runs it, on the real daemons: ovn-central's files in the
//! shared /run/ovn (from another pid namespace) are never touched; a Southbound outage at start
//! neither stops nor restarts anything, and the node becomes ready when the Southbound answers;
//! readiness reports ovn-controller's version skew with ovn-northd; a takeover that would leave
//! an ovn-controller ovn-northd does not accept is refused; a rebuilt Southbound cluster is
//! healed with `sb-cluster-state-reset`; a node with Kube-OVN's own pod environment has what
//! Kube-OVN's components rely on.

use std::time::Duration;

mod central;
mod northd_takeover;
mod pod_environment;
mod southbound_outage;
mod stale_southbound;
mod version_skew;

const READY: Duration = Duration::from_secs(30);

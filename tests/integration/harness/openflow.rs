//! br-int as the tests read it: the `ovs-ofctl` target of a node's `br-int.mgmt`, and its
//! flow count.
//!
//! Invariant: a switch that does not answer (stopping, starting, gone) reads as `None`, never
//! as an empty table, so a sampler can tell "no table yet" from "no switch".

use std::path::Path;
use std::process::Command;

/// The `ovs-ofctl` target of the br-int.mgmt under a node's directory.
pub fn br_int_mgmt(dir: &Path) -> String {
    format!("unix:{}", dir.join("run/openvswitch/br-int.mgmt").display())
}

/// br-int's flow count (`ovs-ofctl dump-aggregate`); `None` while no switch answers.
pub fn flow_count(dir: &Path) -> Option<usize> {
    let out = Command::new("ovs-ofctl")
        .args(["-O", "OpenFlow15", "dump-aggregate", &br_int_mgmt(dir)])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find_map(|w| w.strip_prefix("flow_count="))
        .and_then(|n| n.parse().ok())
}

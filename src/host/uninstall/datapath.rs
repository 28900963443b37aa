//! What the kernel keeps of the node once its daemons have stopped: the `ovs-system` datapath
//! (Kube-OVN's `ovs-dpctl del-dp ovs-system`) and vswitchd's tunnel devices (`genev_sys_6081`,
//! `vxlan_sys_4789`, `stt_sys_7471`, which Kube-OVN's script has vswitchd remove by setting
//! `ovn-encap-type=stt`).
//!
//! Invariants: a datapath or device is looked up by its network device in our network
//! namespace (a datapath `ovs-dpctl` cannot open, for want of CAP_NET_ADMIN, still shows its
//! `ovs-system` device); only `system@ovs-system` is ever deleted, and only while no vswitchd
//! of ours runs (the caller's promise); a device left after the deletion is reported, never
//! taken for gone. The tunnel devices are removed by vswitchd itself when their ports go
//! (`supervisor::uninstall`); without it nothing here may delete a link (no CAP_NET_ADMIN for
//! us), so one that remains is reported for an operator.

use crate::host::firewall::{RunError, Runner};

/// The kernel datapath's name and its device.
pub const DATAPATH: &str = "system@ovs-system";
const DATAPATH_DEVICE: &str = "ovs-system";

/// The devices vswitchd creates for tunnel ports on the kernel datapath (`TYPE_sys_PORT`).
pub const TUNNEL_DEVICES: [&str; 3] = ["genev_sys_6081", "vxlan_sys_4789", "stt_sys_7471"];

#[derive(Debug, thiserror::Error)]
pub enum DatapathError {
    #[error("cannot run `ovs-dpctl del-dp {DATAPATH}`: {0}")]
    Run(#[source] RunError),
    #[error("`ovs-dpctl del-dp {DATAPATH}` failed ({}): {}", code.map_or("killed by a signal".into(), |c| format!("exit status {c}")), stderr.trim())]
    Failed { code: Option<i32>, stderr: String },
    #[error("the kernel datapath's device {DATAPATH_DEVICE} is still there after `ovs-dpctl del-dp {DATAPATH}`")]
    StillThere,
    #[error("tunnel device(s) {} still there: only ovs-vswitchd (or root: `ip link del NAME`) can remove them", names.join(", "))]
    TunnelDevices { names: Vec<&'static str> },
}

fn device_exists(name: &str) -> bool {
    nix::net::if_::if_nametoindex(name).is_ok()
}

/// Deletes the kernel datapath if it exists; `Ok(true)` when it did.
pub fn delete_datapath(r: &dyn Runner) -> Result<bool, DatapathError> {
    if !device_exists(DATAPATH_DEVICE) {
        return Ok(false);
    }
    let out = r
        .run("ovs-dpctl", &["del-dp", DATAPATH])
        .map_err(DatapathError::Run)?;
    // Gone meanwhile (a concurrent delete) is what we wanted; the device decides.
    if out.code != Some(0) && device_exists(DATAPATH_DEVICE) {
        return Err(DatapathError::Failed {
            code: out.code,
            stderr: out.stderr,
        });
    }
    if device_exists(DATAPATH_DEVICE) {
        return Err(DatapathError::StillThere);
    }
    Ok(true)
}

/// The tunnel devices still in our network namespace, as an error naming them.
pub fn tunnel_devices_left() -> Result<(), DatapathError> {
    let names: Vec<&'static str> = TUNNEL_DEVICES
        .into_iter()
        .filter(|d| device_exists(d))
        .collect();
    match names.is_empty() {
        true => Ok(()),
        false => Err(DatapathError::TunnelDevices { names }),
    }
}

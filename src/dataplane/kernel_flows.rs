//! How many flows the kernel datapath holds, read straight from the kernel (`ovs-dpctl show`):
//! whether a vswitchd start has flows to keep ([`super::restore_wait::worth_keeping`]).
//!
//! Invariant: a datapath that exists but cannot be read is never judged empty (flushing flows
//! that exist cuts every pod off until ovn-controller has put its table back); only a missing
//! `ovs-system` device means there is nothing to keep.

use std::process::Command;
use std::time::Duration;

use super::flows::FlowsError;
use crate::daemon::find_in_path;
use crate::process::Reaper;

/// The number of flows in the kernel datapath from `ovs-dpctl show`'s `flows: N` line.
pub fn datapath_flows(show: &str) -> Option<usize> {
    show.lines()
        .find_map(|l| l.trim().strip_prefix("flows:"))
        .and_then(|n| n.trim().parse().ok())
}

/// What `ovs-dpctl show` says about the kernel datapath `ovs-system`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelFlows {
    /// It exists and holds this many flows.
    Counted(usize),
    /// It does not exist: a fresh boot, or no openvswitch module.
    NoDatapath,
    /// It exists (its `ovs-system` device is in our network namespace) but `ovs-dpctl` could
    /// not read it: opening a datapath over netlink needs CAP_NET_ADMIN, which a non-root pod
    /// only has when `ovs-dpctl` carries it as a file capability (Kube-OVN's image does); or
    /// it did not answer in time on a starved node, or is missing.
    Unreadable { why: String },
}

/// Reads the kernel datapath's flows straight from the kernel: vswitchd need not run.
pub async fn kernel_flows(reaper: &Reaper) -> KernelFlows {
    let read = match find_in_path("ovs-dpctl") {
        None => Err(FlowsError::NoTool { tool: "ovs-dpctl" }.to_string()),
        Some(bin) => {
            let mut cmd = Command::new(bin);
            cmd.args(["show", "system@ovs-system"]);
            // A netlink dump of one datapath: milliseconds; bounded like every tool we run.
            match reaper
                .output("ovs-dpctl", cmd, Duration::from_secs(10))
                .await
            {
                Ok(out) if out.status.success() => Ok(out.stdout),
                Ok(out) => Err(format!(
                    "ovs-dpctl show: {} ({})",
                    out.stderr.trim(),
                    out.status
                )),
                Err(e) => Err(e.to_string()),
            }
        }
    };
    classify(read, || nix::net::if_::if_nametoindex("ovs-system").is_ok())
}

/// `ovs-dpctl show`'s stdout, or why there is none, judged: a datapath that cannot be read is
/// told from a missing one by its network device. Any failure counts — refused, killed at its
/// deadline (a starved node: under QEMU TCG with both cores busy it took over 10 s, and
/// judging that as "no flows" let the new vswitchd flush them: 1024–1618 pings lost in the VM,
/// docs/benchmarks.md §7.2), or no `ovs-dpctl` at all.
fn classify(read: Result<String, String>, datapath_exists: impl FnOnce() -> bool) -> KernelFlows {
    match read {
        Ok(stdout) => KernelFlows::Counted(datapath_flows(&stdout).unwrap_or(0)),
        Err(why) => match datapath_exists() {
            true => KernelFlows::Unreadable { why },
            false => KernelFlows::NoDatapath,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (ovs-dpctl's stdout or why none, datapath device exists) → what it says.
    #[test]
    fn a_datapath_that_cannot_be_counted_is_kept_when_it_exists() {
        let show = "system@ovs-system:\n  flows: 18\n  port 0: ovs-system (internal)\n".to_string();
        let killed = "ovs-dpctl (pid 941) did not finish within 10s; killed it".to_string();
        let unreadable = |why: &str| KernelFlows::Unreadable { why: why.into() };
        let rows = [
            (Ok(show.clone()), true, KernelFlows::Counted(18)),
            (
                Ok("system@ovs-system:\n  flows: 0\n".into()),
                true,
                KernelFlows::Counted(0),
            ),
            (Err(killed.clone()), true, unreadable(&killed)),
            (Err(killed), false, KernelFlows::NoDatapath),
            (Err("EPERM".into()), true, unreadable("EPERM")),
            (Err("no ovs-dpctl".into()), false, KernelFlows::NoDatapath),
        ];
        for (read, exists, want) in rows {
            assert_eq!(classify(read.clone(), || exists), want, "{read:?} {exists}");
        }
    }

    #[test]
    fn datapath_flows_from_dpctl_show() {
        let show = "system@ovs-system:\n  lookups: hit:1207 missed:56 lost:0\n  flows: 12\n  masks: hit:2010 total:4 hit/pkt:1.59\n  port 0: ovs-system (internal)\n";
        assert_eq!(datapath_flows(show), Some(12));
        assert_eq!(datapath_flows("system@ovs-system:\n  flows: 0\n"), Some(0));
        assert_eq!(datapath_flows("garbage"), None);
    }
}

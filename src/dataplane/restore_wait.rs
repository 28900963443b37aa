//! `other_config:flow-restore-wait`: a vswitchd started with it set leaves the kernel
//! datapath's flows alone (they keep forwarding) and handles no new packets until it is
//! cleared. We set it before a vswitchd start whenever there is something to keep — flows a
//! predecessor handed over, or a kernel datapath that still has flows (a pod restart, a crash
//! of vswitchd) — and clear it once br-int's table is complete again.
//!
//! "Complete": ovn-controller reinstalls its whole table in one go once it is connected to the
//! switch (from memory after a vswitchd restart; after its own start, once it has the
//! Southbound's data and has computed). OVN 23.03 to 25.03 publish no node-local signal for
//! that (`ovn-nb-cfg` moves only when ovn-northd's `nb_cfg` does), so the observable proxy is
//! a table that is not empty and has not changed for [`STABLE_READS`] reads (each one
//! aggregate request, whatever the table's size). After a restore, also one that
//! ovn-controller has replaced (the restore's mark gone: [`flows::mark`]) and that holds at
//! least nine tenths of what was restored: ovn-controller's first table comes when its
//! `ovn-ofctrl-wait-before-clear` timer runs out (OVN's ofctrl.c, `run_S_WAIT_BEFORE_CLEAR`),
//! whatever it has computed by then, and at scale that was 21 flows from the first part of the
//! Southbound. Clearing the flag on such a table is what costs packets: vswitchd then flushes
//! the kernel datapath's flows (OVS's ofproto-dpif.c, `type_run`) and every packet goes through
//! the incomplete table.
//!
//! Invariants: the flag is always cleared by a deadline, settled or not (the stage deadline
//! without progress, the busy limit at most: [`super::patience`]) — held too long, a node
//! whose own networking runs through an OVS bridge cannot reach the Southbound, and OVN learnt
//! that the hard way (it reverted its own flow-restore-wait handling for that deadlock); on the
//! userspace datapath there is nothing to keep (the datapath dies with vswitchd), so it is not
//! used there except for flows handed over.

use std::time::{Duration, Instant};

use serde_json::json;

use super::flows::{self, FlowsError, SavedFlows};
use super::kernel_flows::{kernel_flows, KernelFlows};
use super::late_restore;
use super::patience::Patience;
use super::tally::FlowTally;
use crate::config::paths::Layout;
use crate::config::{Config, DatapathType};
use crate::daemon::wait::connect_when_up;
use crate::daemon::Daemon;
use crate::ovs::jsonrpc::Client;
use crate::ovs::ovsdb::{self, OvsdbError};
use crate::process::busy::Working;
use crate::process::Reaper;

/// Reads of an unchanged, non-empty table that count as complete: 0.5 s. In the VM, three
/// reads 150 ms apart once judged a table complete that was not (ovn-controller reconnects to
/// a new vswitchd on its own backoff); unchanged for 0.5 s held every time.
pub const STABLE_READS: u32 = 10;
/// Between two reads: ovn-controller installs its table in bursts a few ms apart.
pub const READ_EVERY: Duration = Duration::from_millis(50);

/// Whether a sequence of flow counts has settled: non-empty, at least `floor`, and unchanged
/// for `stable` reads after the first. An empty table is ovn-controller not connected (or not
/// computed) yet; one below the floor (a share of the table restored, [`floor_after_restore`])
/// is ovn-controller's first table computed from part of the Southbound, which replaces the
/// restored one once `ovn-ofctrl-wait-before-clear` has passed: clearing flow-restore-wait on
/// it flushed the kernel's flows and cut the pods off for 27 s in the VM (docs/benchmarks.md
/// §7.1), while the flag kept would have left them forwarding until the whole table is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settle {
    stable: u32,
    floor: usize,
    last: Option<usize>,
    same: u32,
}

/// The least a table counts as complete after `restored` flows were put back: nine tenths
/// (the Southbound may have lost a little meanwhile; a first table from part of it is a few
/// dozen flows against tens of thousands).
pub fn floor_after_restore(restored: usize) -> usize {
    restored - restored / 10
}

impl Settle {
    pub fn new(stable: u32, floor: usize) -> Settle {
        Settle {
            stable,
            floor,
            last: None,
            same: 0,
        }
    }

    /// One read of the table's size; true once it has settled.
    pub fn observe(&mut self, flows: usize) -> bool {
        self.same = match self.last == Some(flows) && flows > 0 && flows >= self.floor {
            true => self.same + 1,
            false => 0,
        };
        self.last = Some(flows);
        self.same >= self.stable
    }
}

/// Sets or clears `other_config:flow-restore-wait` (never one of the keys we keep, so an
/// ovsdb-server restart does not set it again).
pub async fn set(client: &Client, on: bool, timeout: Duration) -> Result<(), OvsdbError> {
    let all = json!([]);
    let key = ["flow-restore-wait".to_string()];
    let mut ops = vec![ovsdb::op_mutate_delete_keys(
        "Open_vSwitch",
        all.clone(),
        "other_config",
        &key,
    )];
    if on {
        ops.extend(ovsdb::op_mutate_map_keys(
            "Open_vSwitch",
            all,
            "other_config",
            &[(key[0].clone(), "true".into())],
        ));
    }
    ovsdb::transact(client, "Open_vSwitch", ops, timeout)
        .await
        .map(|_| ())
}

/// How the wait for a complete table ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// br-int's table settled with this many flows.
    Complete(usize),
    /// The deadline came first; the table had this many flows.
    Deadline(usize),
}

/// Waits until br-int's table is complete (at least `floor` flows) or `patience` runs out,
/// reading it every [`READ_EVERY`]. Progress that moves the deadline: the table's count or its
/// mark changed, or ovn-controller's main thread works (computing the table it will install).
pub async fn wait_complete(
    reaper: &Reaper,
    l: &Layout,
    mut patience: Patience,
    floor: usize,
) -> Result<Settled, FlowsError> {
    let mut settle = Settle::new(STABLE_READS, floor);
    let mut working = Working::default();
    let mut last = None;
    // A restored table still marked has not been replaced by ovn-controller's yet; one that
    // was never marked (a text restore, none) or is no longer need not wait for that.
    let mut marked = flows::mark::present(reaper, l).await.unwrap_or(false);
    loop {
        if marked {
            marked = flows::mark::present(reaper, l).await.unwrap_or(true);
        }
        // A switch that is not answering yet, or a table ovn-controller has not replaced yet,
        // reads as an empty one.
        let n = match marked {
            true => 0,
            false => flows::flow_count(reaper, l).await.unwrap_or(0),
        };
        if settle.observe(n) {
            return Ok(Settled::Complete(n));
        }
        let now = Instant::now();
        let moved = last
            .replace((n, marked))
            .is_some_and(|seen| seen != (n, marked));
        let computing = working.look(now, controller_cpu(l));
        if patience.due(now, moved || computing) || now + READ_EVERY > patience.at() {
            return Ok(Settled::Deadline(n));
        }
        tokio::time::sleep(READ_EVERY).await;
    }
}

/// ovn-controller's main-thread CPU time, from its pidfile (none between a crash and its
/// restart).
fn controller_cpu(l: &Layout) -> Option<Duration> {
    let pid = Daemon::OvnController.read_pid(l).ok().flatten()?;
    crate::process::procfs::main_thread_cpu(std::path::Path::new("/proc"), pid)
}

/// How the flag was cleared: on what table, and what a late restore put in first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cleared {
    pub settled: Settled,
    /// The saved table, restored because ovn-controller had put nothing in br-int.
    pub restored: Option<FlowTally>,
}

/// Waits for the table (as long as `patience` allows), then clears the flag through `db`,
/// logging how it ended. The flag is cleared in every case; if the table did not come and
/// `late` holds a saved one, that goes in first when br-int is empty ([`late_restore`]).
pub async fn clear_when_complete(
    reaper: &Reaper,
    l: &Layout,
    db: &Client,
    patience: Patience,
    timeout: Duration,
    floor: usize,
    late: Option<&SavedFlows>,
) -> Result<Cleared, OvsdbError> {
    let settled = wait_complete(reaper, l, patience, floor).await;
    let mut restored = None;
    if let (Some(saved), false) = (late, matches!(settled, Ok(Settled::Complete(_)))) {
        let outcome = late_restore::restore_if_empty(reaper, l, saved).await;
        late_restore::report(&outcome);
        restored = outcome.restored();
    }
    match settled {
        Ok(Settled::Complete(n)) => tracing::info!(flows = n, "br-int's flows are in"),
        Ok(Settled::Deadline(n)) => tracing::warn!(
            flows = n,
            floor,
            "br-int's table still incomplete and nothing moving (or at the busy limit); clearing flow-restore-wait anyway"
        ),
        Err(ref e) => tracing::warn!("{e}; clearing flow-restore-wait anyway"),
    }
    set(db, false, timeout).await?;
    Ok(Cleared {
        settled: settled.unwrap_or(Settled::Deadline(0)),
        restored,
    })
}

/// After a vswitchd start that kept the datapath's flows: waits for br-int's table while
/// ovn-controller shows progress (the stage deadline without any, the busy limit at most),
/// then clears the flag over a connection of its own. `floor`: see [`Settle`] (0 when nothing
/// was handed over); `late`: a saved table not restored yet (`keep-or-restore`).
pub async fn clear_after_start(
    cfg: &Config,
    reaper: &Reaper,
    floor: usize,
    late: Option<&SavedFlows>,
) -> Result<Cleared, ClearError> {
    let now = Instant::now();
    let db = connect_when_up(&cfg.layout.db_sock(), now + cfg.stage_deadline).await?;
    let t = cfg.stage_deadline.min(Duration::from_secs(5));
    let patience = Patience::new(now, cfg.stage_deadline, cfg.restart.busy_limit);
    Ok(clear_when_complete(reaper, &cfg.layout, &db, patience, t, floor, late).await?)
}

/// Why flow-restore-wait could not be cleared (it stays set; the caller restarts vswitchd).
#[derive(Debug, thiserror::Error)]
pub enum ClearError {
    #[error("cannot reach ovsdb-server to clear flow-restore-wait: {0}")]
    Connect(#[from] crate::daemon::wait::Attempt),
    #[error("cannot clear flow-restore-wait: {0}")]
    Ovsdb(#[from] OvsdbError),
}

/// Whether to keep the datapath's flows through a vswitchd start: flows were handed over, or
/// the kernel datapath has some, or it exists and could not be counted (a warning).
pub async fn worth_keeping(cfg: &Config, reaper: &Reaper, handed_over: bool) -> bool {
    if handed_over {
        return true;
    }
    if cfg.datapath_type != DatapathType::System {
        return false;
    }
    match kernel_flows(reaper).await {
        KernelFlows::Counted(n) => {
            if n > 0 {
                tracing::info!(
                    kernel_flows = n,
                    "keeping the kernel datapath's flows through the vswitchd start"
                );
            }
            n > 0
        }
        KernelFlows::NoDatapath => false,
        // Keeping flows that turn out to be none costs a few seconds of readiness; flushing
        // flows that exist cuts every pod off until ovn-controller has put its table back.
        KernelFlows::Unreadable { why } => {
            tracing::warn!("cannot count the kernel datapath's flows ({why}), but the datapath exists: keeping them through the vswitchd start (if ovs-dpctl was refused, give it CAP_NET_ADMIN: setcap cap_net_admin+ep)");
            true
        }
    }
}

/// Before a vswitchd start: sets the flag through `db` when there is something to keep, and
/// clears it otherwise — a flag left by a start that failed half-way would keep the new
/// vswitchd from ever handling a new packet. True when it is set. A failure is a warning: the
/// node starts, losing the datapath's flows.
pub async fn keep(cfg: &Config, reaper: &Reaper, db: &Client, handed_over: bool) -> bool {
    let keep = worth_keeping(cfg, reaper, handed_over).await;
    let t = cfg.stage_deadline.min(Duration::from_secs(5));
    match set(db, keep, t).await {
        Ok(()) => keep,
        Err(e) if keep => {
            tracing::warn!("cannot set flow-restore-wait: {e}; the datapath's flows go");
            false
        }
        Err(e) => {
            tracing::warn!("cannot clear a flow-restore-wait left by an earlier start: {e}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_settles_only_non_empty_and_unchanged() {
        // (reads, settled at read index)
        let rows: [(&[usize], Option<usize>); 5] = [
            (&[0, 0, 0, 0, 0, 0], None),
            (&[5, 5, 5, 5], Some(3)),
            (&[0, 12, 40, 40, 40, 40], Some(5)),
            (&[7, 7, 9, 9, 9, 9], Some(5)),
            (&[3, 3, 3, 0, 3, 3], None),
        ];
        for (reads, want) in rows {
            let mut s = Settle::new(3, 0);
            let got = reads.iter().position(|n| s.observe(*n));
            assert_eq!(got, want, "{reads:?}");
        }
    }

    /// The VM's takeover at 105,143 rules: the restored table, then ovn-controller's first
    /// table from part of the Southbound (21 flows, unchanged for seconds while it computes
    /// the rest), then its whole one. Only the whole one (or the restored one, before
    /// ovn-controller replaced it) settles.
    #[test]
    fn a_table_far_below_the_restored_one_never_settles() {
        let floor = floor_after_restore(105_143);
        assert_eq!(floor, 94_629);
        // (reads, settled at read index)
        let rows: [(&[usize], Option<usize>); 4] = [
            (
                &[21, 21, 21, 21, 21, 21, 105_140, 105_140, 105_140, 105_140],
                Some(9),
            ),
            (&[105_143, 105_143, 105_143, 105_143], Some(3)),
            (&[0, 21, 21, 21, 21, 94_628, 94_628, 94_628, 94_628], None),
            (&[0, 21, 21, 94_629, 94_629, 94_629, 94_629], Some(6)),
        ];
        for (reads, want) in rows {
            let mut s = Settle::new(3, floor);
            let got = reads.iter().position(|n| s.observe(*n));
            assert_eq!(got, want, "{reads:?}");
        }
        assert_eq!(floor_after_restore(0), 0);
        assert_eq!(floor_after_restore(9), 9);
    }
}

//! The supervisor's side of keeping the kernel datapath's flows through a vswitchd start
//! ([`crate::dataplane::restore_wait`]): set the flag before the spawn, publish it (readiness
//! names it), and clear it in the background once br-int's table is complete.
//!
//! Invariant: the flag is published exactly while it is set by us; the task that clears it
//! reports through the same channel as a restart's readiness, so vswitchd counts as back in
//! service only once it forwards with its own table.

use std::time::{Duration, Instant};

use super::{Ready, Supervisor};
use crate::daemon::wait::connect_when_up;
use crate::daemon::Daemon;
use crate::dataplane::flows::SavedFlows;
use crate::dataplane::restore_wait;

impl Supervisor {
    /// Before a vswitchd restart: sets flow-restore-wait when the kernel datapath has flows
    /// to keep, and publishes it; true when it did.
    pub(super) async fn keep_datapath_flows(&self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(2);
        let keep = match connect_when_up(&self.cfg.layout.db_sock(), deadline).await {
            Ok(db) => restore_wait::keep(&self.cfg, self.reaper, &db, false).await,
            Err(e) => {
                tracing::warn!("cannot set flow-restore-wait: {e}; the datapath's flows go");
                false
            }
        };
        self.snap.send_modify(|s| s.flow_restore_wait = keep);
        keep
    }

    /// After the start: clears the flag once br-int's table is complete, then reports vswitchd
    /// (`pid`) in service. `late`: the table handed over and not restored yet
    /// (`keep-or-restore`), restored only if ovn-controller puts nothing in br-int.
    pub(super) fn clear_flows_kept(&mut self, pid: i32, late: Option<SavedFlows>) {
        let (cfg, reaper, ready) = (self.cfg.clone(), self.reaper, self.ready_tx.clone());
        let restored = (self.snap.borrow().takeover.as_ref())
            .and_then(|t| t.restored.as_ref())
            .map_or(0, |t| t.flows as usize);
        // Restored, or kept instead (a `keep` successor, a save that could not be used): either
        // way ovn-controller's first table from part of the Southbound must not pass for whole.
        let saved = late.as_ref().map_or(0, SavedFlows::flow_count);
        let floor = restore_wait::floor_after_restore(restored.max(self.handed_flows).max(saved));
        let task = tokio::spawn(async move {
            let cleared = restore_wait::clear_after_start(&cfg, reaper, floor, late.as_ref()).await;
            let _ = ready.send(Ready {
                daemon: Daemon::Vswitchd,
                pid,
                restored_late: cleared.as_ref().ok().and_then(|c| c.restored),
                result: cleared.map(|_| ()).map_err(Into::into),
            });
        });
        self.clearing = Some(task.abort_handle());
    }
}

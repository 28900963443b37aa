//! A takeover's figures in the published snapshot ([`crate::status::TookOver`]): who ran the
//! node before, the flows saved and restored (as the code that moved them tallied them), and
//! how long the takeover took — what `status` and the metrics show.
//!
//! Invariants: the takeover is published from the first snapshot on (so it is counted even
//! if the start then fails); its duration is published once, when the start has finished and
//! flow-restore-wait is cleared (or was never set), measured from the request on a monotonic
//! clock; then the saved table's files are removed.

use std::time::Instant;

use super::Supervisor;
use crate::dataplane::tally::FlowTally;
use crate::status::{self, TakeoverFrom, TookOver};
use crate::takeover::Predecessor;

/// The takeover a predecessor means, and when it was asked for; `None` for a fresh start.
pub(super) fn took_over(p: &Predecessor) -> Option<(TookOver, Instant)> {
    let (from, saved, since) = match p {
        Predecessor::None => return None,
        Predecessor::Supervisor { saved, since, .. } => (
            TakeoverFrom::Supervisor,
            saved.as_ref().map(|s| s.tally()),
            *since,
        ),
        Predecessor::Legacy { since, .. } => (TakeoverFrom::StartOvs, None, *since),
    };
    let ago = since.elapsed().as_millis() as u64;
    let t = TookOver {
        from,
        requested_at_ms: status::unix_ms().saturating_sub(ago),
        duration_ms: None,
        saved,
        restored: None,
    };
    Some((t, since))
}

impl Supervisor {
    /// The flows we saved of the node we take over (`start-ovs.sh`'s switch).
    pub(super) fn record_saved(&self, tally: FlowTally) {
        self.snap.send_modify(|s| {
            if let Some(t) = &mut s.takeover {
                t.saved = Some(tally);
            }
        });
    }

    /// The flows put back into our new switch.
    pub(super) fn record_restored(&self, tally: FlowTally) {
        self.snap.send_modify(|s| {
            if let Some(t) = &mut s.takeover {
                t.restored = Some(tally);
            }
        });
    }

    /// Ends the takeover's clock once the node runs on our daemons with its own table:
    /// called after the start and when flow-restore-wait is cleared; a no-op before both.
    pub(super) fn takeover_settled(&mut self) {
        let snap = self.snap.borrow();
        if !snap.started || snap.flow_restore_wait {
            return;
        }
        drop(snap);
        let Some(since) = self.takeover_since.take() else {
            return;
        };
        let ms = since.elapsed().as_millis() as u64;
        self.snap.send_modify(|s| {
            if let Some(t) = &mut s.takeover {
                t.duration_ms = Some(ms);
            }
        });
        tracing::info!(took_ms = ms, "takeover done");
        // Restored, kept instead, or restored late: nothing reads it any more.
        crate::dataplane::flows::forget_saved(&self.cfg.layout);
    }
}

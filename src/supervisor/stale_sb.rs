//! Carrying out the stale-Southbound decision ([`crate::status::stale_sb`]): each health
//! check's view of ovn-controller's Southbound connection goes to the watch, and a reset it
//! asks for is sent as `sb-cluster-state-reset` over ovn-controller's control socket.
//!
//! Invariants: the decision is the watch's (pure, rate bounded); this file only does its I/O.
//! The reset runs as its own bounded task, so a silent ovn-controller never delays the loop;
//! every change is published to `status` at once. A reset is logged at WARN (it forces a full
//! recompute of ovn-controller's flows), the end of an episode at INFO.

use std::time::Duration;

use super::Supervisor;
use crate::daemon::Daemon;
use crate::ovs::unixctl;
use crate::status::stale_sb::{Action, End, Event};
use crate::status::{self, check};

/// How long one `sb-cluster-state-reset` may take: it only sets a flag in ovn-controller.
const RESET_TIMEOUT: Duration = Duration::from_secs(2);

impl Supervisor {
    /// A health check found ovn-controller connected or not (`None`: it did not answer).
    pub(super) fn on_southbound(&mut self, connected: Option<bool>) {
        let Some(connected) = connected else {
            return;
        };
        let action = self
            .stale_sb
            .on(Event::Checked { connected }, status::unix_ms());
        self.carry_out_stale(action);
    }

    /// A new ovn-controller process starts without a remembered index: the episode is over.
    pub(super) fn stale_sb_restarted(&self) {
        let action = self.stale_sb.on(Event::Restarted, status::unix_ms());
        self.carry_out_stale(action);
    }

    fn carry_out_stale(&self, action: Action) {
        match action {
            Action::Nothing => {}
            Action::Reset {
                server,
                n,
                stale_for_ms,
            } => self.send_reset(server, n, stale_for_ms),
            Action::Ended {
                server,
                why,
                lasted_ms,
                resets,
            } => {
                let why = match why {
                    End::Connected => "ovn-controller is connected again",
                    End::Restarted => "ovn-controller restarted",
                    End::Quiet => "ovn-controller no longer reports stale data",
                };
                tracing::info!(%server, lasted_ms, resets, "Southbound stale data over: {why}");
            }
        }
        let stale = self.stale_sb.status();
        self.snap.send_modify(|s| s.stale_southbound = stale);
    }

    fn send_reset(&self, server: String, n: u32, stale_for_ms: u64) {
        let d = Daemon::OvnController;
        let Some(ctl) = check::ctl_of(&self.cfg.layout, d, self.pid(d)) else {
            return;
        };
        tracing::warn!(
            %server,
            stale_for_ms,
            reset = n,
            "ovn-controller refuses the Southbound: stale data (its cluster was rebuilt or \
             restored); resetting ovn-controller's cluster state (sb-cluster-state-reset)"
        );
        tokio::spawn(async move {
            if let Err(e) = unixctl::call(&ctl, "sb-cluster-state-reset", &[], RESET_TIMEOUT).await
            {
                tracing::warn!(ctl = %ctl.display(), "sb-cluster-state-reset failed: {e}");
            }
        });
    }
}

//! The restart policy's settings (`OVS_OVN_SUPERVISOR_RESTART_*`), as the configuration resolves
//! them; the decisions made with them are [`crate::daemon::policy`]'s.

use std::time::Duration;

use crate::process::backoff;

/// How crashed or hung daemons are restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub backoff: backoff::Policy,
    /// No longer consulted: the backoff resets when a restarted daemon answers again, which
    /// always comes before any period of stable running. Kept so `..._RESTART_STABLE_MS`
    /// stays an accepted setting.
    pub stable_after: Duration,
    pub max_restarts: u32,
    pub window: Duration,
    /// Silent this long is hung even while its main thread works.
    pub busy_limit: Duration,
    /// Silent with its main thread idle this long is hung.
    pub hung_after: Duration,
}

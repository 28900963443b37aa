//! Keeping the tunnel port rule while the node runs. Another program may delete it at any
//! time (a CNI or firewall manager that rewrites `INPUT`, an operator's `iptables -F`), and
//! the tunnel then stops without a word (seeds 000/001). So [`ensure`] runs again every
//! `every`, through the supervisor's reaper (which owns `waitpid(-1)` by then).
//!
//! Invariants: a round changes nothing when the rule is in place (`ensure` is idempotent and
//! never moves our rule relative to another CNI's); what a round changed means someone removed
//! or duplicated our rule, and is logged as a warning; a failed round is logged and retried at
//! the next one, and never stops the node; rounds never overlap.

use std::time::Duration;

use super::{detect_backend, ensure, Backend, Family, ReapedRunner, DEADLINE};
use crate::config::TunnelType;
use crate::process::Reaper;

/// What to keep, and how often.
#[derive(Debug, Clone)]
pub struct Keep {
    pub tunnel: TunnelType,
    pub families: Vec<Family>,
    pub every: Duration,
}

/// Runs forever (the caller aborts the task): one round every `k.every`, the first after one
/// period (the start has just ensured the rule).
pub async fn keep(reaper: &'static Reaper, k: Keep) {
    let mut tick = tokio::time::interval(k.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.reset();
    let mut backend: Option<Backend> = None;
    loop {
        tick.tick().await;
        let (k2, handle) = (k.clone(), tokio::runtime::Handle::current());
        let round = tokio::task::spawn_blocking(move || {
            let r = ReapedRunner {
                reaper,
                handle,
                deadline: DEADLINE,
            };
            let b = backend.unwrap_or_else(|| detect_backend(&r));
            (b, ensure(&r, b, k2.tunnel, &k2.families))
        })
        .await;
        match round {
            Ok((b, Ok(changes))) => {
                backend = Some(b);
                for change in changes {
                    tracing::warn!("firewall: our rule was changed by someone else; {change}");
                }
            }
            Ok((_, Err(e))) => tracing::warn!("firewall: cannot check the tunnel rule: {e}"),
            Err(e) => tracing::warn!("firewall: the check stopped: {e}"),
        }
    }
}

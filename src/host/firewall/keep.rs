//! Keeping the tunnel port rule while the node runs. Another program may delete it at any
//! time (a CNI or firewall manager that rewrites `INPUT`, an operator's `iptables -F`), and
//! the tunnel then stops without a word (seeds 000/001); or it could not be set at start (a
//! pod without the host's xtables lock), and the cause may be fixed meanwhile. So [`ensure`]
//! runs again every `every`, through the supervisor's reaper (which owns `waitpid(-1)` by
//! then).
//!
//! Invariants: a round changes nothing when the rule is in place (`ensure` is idempotent and
//! never moves our rule relative to another CNI's); what a round changed means someone removed
//! or duplicated our rule, and is logged as a warning (unless the round before failed: then
//! the change is our own late insert); a failed round is retried at the next
//! one and never stops the node; a failure is logged when it starts or its cause changes, and
//! the recovery once, not every round ([`news`]); every round's result goes to `report` (the
//! supervisor's `status`); rounds never overlap.

use std::time::Duration;

use super::{detect_backend, ensure, hint, Backend, Family, ReapedRunner, DEADLINE};
use crate::config::TunnelType;
use crate::process::Reaper;

/// What to keep, and how often.
#[derive(Debug, Clone)]
pub struct Keep {
    pub tunnel: TunnelType,
    pub families: Vec<Family>,
    pub every: Duration,
    /// The error of the attempt before the first round (the start's), if it failed.
    pub failing: Option<String>,
}

/// What a round's result means for the log, given the previous round's error.
#[derive(Debug, PartialEq, Eq)]
pub enum News {
    Nothing,
    /// A failure that is new, or has a new cause.
    Failing,
    /// In place again after failures.
    Recovered,
}

pub fn news(previous: Option<&str>, now: Result<(), &str>) -> News {
    match (previous, now) {
        (None, Ok(())) => News::Nothing,
        (Some(_), Ok(())) => News::Recovered,
        (Some(p), Err(e)) if p == e => News::Nothing,
        (_, Err(_)) => News::Failing,
    }
}

/// Runs forever (the caller aborts the task): one round every `k.every`, the first after one
/// period (the start has just tried). Each round's result goes to `report`.
pub async fn keep(
    reaper: &'static Reaper,
    k: Keep,
    report: impl Fn(Result<usize, String>) + Send + 'static,
) {
    let mut tick = tokio::time::interval(k.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.reset();
    let mut backend: Option<Backend> = None;
    let mut failing = k.failing.clone();
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
        // (backend, error, hint) of a failed round.
        // Ok: how many rules were put back after someone else removed or changed them.
        let result: Result<usize, (Option<Backend>, String, &str)> = match round {
            Ok((b, Ok(changes))) => {
                backend = Some(b);
                let restored = if failing.is_none() { changes.len() } else { 0 };
                for change in changes {
                    match failing {
                        // Our own first success after failures, not someone else's doing.
                        Some(_) => tracing::info!("firewall: {change}"),
                        None => tracing::warn!(
                            "firewall: our rule was changed by someone else; {change}"
                        ),
                    }
                }
                Ok(restored)
            }
            Ok((b, Err(e))) => Err((Some(b), e.to_string(), hint(&e))),
            Err(e) => Err((backend, format!("the check stopped: {e}"), "")),
        };
        let error = result.as_ref().err().map(|(_, e, _)| e.clone());
        let restored = *result.as_ref().unwrap_or(&0);
        match news(failing.as_deref(), error.as_deref().map_or(Ok(()), Err)) {
            News::Nothing => {}
            News::Recovered => tracing::info!("firewall: the tunnel port rule is in place again"),
            News::Failing => {
                if let Err((b, e, h)) = &result {
                    tracing::warn!(backend = ?b, "firewall: cannot keep the tunnel port rule, trying again every {:?}: {e} ({h})", k.every);
                }
            }
        }
        failing = error.clone();
        report(error.map_or(Ok(restored), Err));
    }
}

#[cfg(test)]
mod tests {
    use super::{news, News};

    #[test]
    fn failures_are_logged_when_they_start_or_change_and_recovery_once() {
        let cases: &[(Option<&str>, Result<(), &str>, News)] = &[
            (None, Ok(()), News::Nothing),
            (None, Err("locked"), News::Failing),
            (Some("locked"), Err("locked"), News::Nothing),
            (Some("locked"), Err("no chain"), News::Failing),
            (Some("locked"), Ok(()), News::Recovered),
        ];
        for (prev, now, want) in cases {
            assert_eq!(&news(*prev, *now), want, "{prev:?} then {now:?}");
        }
    }
}

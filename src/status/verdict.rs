//! What "started", "alive" and "ready" mean: pure functions of the published [`Snapshot`]
//! that the control socket answers probes with. Instant facts (a daemon exited, the stage in
//! progress) override the last health check, and a check older than its maximum age is
//! reported as stale rather than trusted.
//!
//! Invariants: liveness never looks at the OVN Southbound, so a central database outage cannot
//! make Kubernetes restart every node's networking (Kube-OVN #1588); a daemon inside its
//! restart backoff counts as alive; nothing here does I/O.

use super::{DaemonState, Health, Snapshot, Verdict};

pub(crate) fn ok(reason: impl Into<String>) -> Verdict {
    Verdict {
        ok: true,
        reason: reason.into(),
    }
}

pub(crate) fn fail(reason: impl Into<String>) -> Verdict {
    Verdict {
        ok: false,
        reason: reason.into(),
    }
}

/// After `uninstall`: alive (a restart of the container would start the node again and undo
/// the uninstall), never ready, and started (a startup probe must not restart it either).
fn uninstalled(snap: &Snapshot) -> Option<Verdict> {
    snap.uninstalled
        .as_ref()
        .map(|_| ok("uninstalled: the node's daemons were stopped for good; idle until terminated"))
}

pub fn startup(snap: &Snapshot) -> Verdict {
    if let Some(v) = uninstalled(snap) {
        return v;
    }
    if snap.started {
        let total: u64 = snap.timeline.iter().map(|(_, ms)| ms).sum();
        ok(format!("started: stages took {total} ms"))
    } else {
        fail(format!("starting: stage {}", snap.stage))
    }
}

/// The last check, unless it is too old to trust.
fn fresh(snap: &Snapshot, now_ms: u64) -> Result<&Health, Verdict> {
    let h = snap
        .health
        .as_ref()
        .ok_or_else(|| fail("first health check pending"))?;
    let age = now_ms.saturating_sub(h.checked_at_ms);
    if age > snap.health_max_age_ms {
        return Err(fail(format!(
            "health checks stalled: last one {age} ms ago"
        )));
    }
    Ok(h)
}

/// A daemon that is not running and not about to be restarted.
fn down(snap: &Snapshot) -> Option<Verdict> {
    snap.daemons
        .iter()
        .find(|d| !d.state.is_up_or_coming())
        .map(|d| fail(format!("{} is {}", d.name, d.state)))
}

/// After a handover: alive only once the successor runs the node — until then no daemon runs
/// here or there; confirmed, passing keeps Kubernetes from restarting this old pod into taking
/// the node back from the new one.
fn handed_over(snap: &Snapshot, now_ms: u64) -> Option<Verdict> {
    let h = snap.handover.as_ref()?;
    let to = h
        .successor
        .map_or("a successor".into(), |p| format!("pid {p}"));
    Some(if h.confirmed {
        ok(format!("handed the node over to {to}, which runs it; idle"))
    } else {
        fail(format!(
            "handed the node over to {to}, which has not confirmed: no daemon runs; taking it back in {} ms unless the instance lock is held",
            h.take_back_at_ms.saturating_sub(now_ms)
        ))
    })
}

pub fn liveness(snap: &Snapshot, now_ms: u64) -> Verdict {
    if let Some(v) = uninstalled(snap) {
        return v;
    }
    if let Some(v) = handed_over(snap, now_ms) {
        return v;
    }
    if snap.stopping {
        return ok("stopping");
    }
    if !snap.started {
        return ok(format!("starting: stage {}", snap.stage));
    }
    if let Some(v) = down(snap) {
        return v;
    }
    match fresh(snap, now_ms) {
        Ok(h) => h.liveness.clone(),
        Err(v) => v,
    }
}

/// A health check's liveness once the supervisor has judged the silent daemons: silence is no
/// failure while every silent daemon is busy (its main thread computing), which the supervisor
/// itself ends at the busy limit; a restart of the whole pod would only start the computation
/// over.
pub fn excusing_busy(
    liveness: Verdict,
    silent: &[String],
    busy: &[(&str, Option<std::time::Duration>)],
) -> Verdict {
    let is_busy = |n: &String| busy.iter().any(|(b, _)| b == n);
    if liveness.ok || silent.is_empty() || !silent.iter().all(is_busy) {
        return liveness;
    }
    let who: Vec<String> = (busy.iter())
        .map(|(n, t)| match t {
            Some(t) => format!("{n} (silent for {} ms)", t.as_millis()),
            None => n.to_string(),
        })
        .collect();
    ok(format!(
        "alive: busy computing, not answering: {}",
        who.join(", ")
    ))
}

pub fn readiness(snap: &Snapshot, now_ms: u64) -> Verdict {
    if let Some(v) = uninstalled(snap) {
        return fail(v.reason);
    }
    if let Some(v) = handed_over(snap, now_ms) {
        return fail(v.reason);
    }
    if snap.stopping {
        return fail("stopping");
    }
    if !snap.started {
        return fail(format!("starting: stage {}", snap.stage));
    }
    if snap.flow_restore_wait {
        return fail("ovs-vswitchd keeps the datapath's flows (flow-restore-wait) until ovn-controller's table is complete");
    }
    if let Some(d) = snap
        .daemons
        .iter()
        .find(|d| d.state != DaemonState::Running)
    {
        return fail(format!("{} is {}", d.name, d.state));
    }
    match fresh(snap, now_ms) {
        Ok(h) => h.readiness.clone(),
        Err(v) => v,
    }
}

#[cfg(test)]
mod tests;

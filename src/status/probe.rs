//! What "started", "alive" and "ready" mean.
//!
//! [`check`] asks the real daemons (bounded, concurrent, read-only) and runs in the supervisor
//! at the health-check cadence; [`startup`], [`liveness`] and [`readiness`] are pure functions
//! of the published snapshot that the control socket answers with — instant facts (a daemon
//! exited, the stage in progress) override the last check, and a check older than its maximum
//! age is reported as stale rather than trusted.
//!
//! Invariants: liveness never looks at the OVN Southbound, so a central database outage cannot
//! make Kubernetes restart every node's networking (Kube-OVN #1588); a daemon inside its
//! restart backoff counts as alive; nothing here changes state.

use std::time::Duration;

use serde_json::json;

use crate::config::paths::Layout;
use crate::control::{Health, Snapshot, Verdict};
use crate::daemon::Daemon;
use crate::ovs::jsonrpc::Client;
use crate::{ovs::openflow, ovs::ovsdb, ovs::unixctl, settings};

fn ok(reason: impl Into<String>) -> Verdict {
    Verdict {
        ok: true,
        reason: reason.into(),
    }
}

fn fail(reason: impl Into<String>) -> Verdict {
    Verdict {
        ok: false,
        reason: reason.into(),
    }
}

pub fn startup(snap: &Snapshot) -> Verdict {
    if snap.started {
        let total: u64 = snap.timeline.iter().map(|(_, ms)| ms).sum();
        ok(format!("started: stages took {total} ms"))
    } else {
        fail(format!("starting: stage {}", snap.stage))
    }
}

/// The control socket of a daemon: its pidfile's pid (right under a `DEBUG_WRAPPER` too),
/// else the pid the supervisor spawned.
pub fn ctl_of(layout: &Layout, d: Daemon, spawned: Option<i32>) -> Option<std::path::PathBuf> {
    let pid = d.read_pid(layout).ok().flatten().or(spawned)?;
    Some(d.ctl(layout, pid))
}

/// Asks a daemon its version over unixctl: the cheapest proof that its main loop runs.
pub async fn answers(
    layout: &Layout,
    d: Daemon,
    spawned: Option<i32>,
    t: Duration,
) -> Result<(), String> {
    let ctl = ctl_of(layout, d, spawned).ok_or_else(|| format!("{} has no pid yet", d.name()))?;
    unixctl::call(&ctl, "version", &[], t)
        .await
        .map(|_| ())
        .map_err(|e| format!("{} does not answer: {e}", d.name()))
}

/// Every running daemon asked at once; the verdict names the first that did not answer.
async fn live_check(layout: &Layout, snap: &Snapshot, t: Duration) -> (Verdict, Vec<String>) {
    let mut checks = Vec::new();
    for info in snap.daemons.iter().filter(|i| i.state == "running") {
        let Some(d) = Daemon::from_name(&info.name) else {
            continue;
        };
        let (layout, pid) = (layout.clone(), info.pid);
        checks.push((
            d,
            tokio::spawn(async move { answers(&layout, d, pid, t).await }),
        ));
    }
    let n = checks.len();
    let (mut first, mut silent) = (None, Vec::new());
    for (d, c) in checks {
        let err = match c.await {
            Ok(Ok(())) => continue,
            Ok(Err(reason)) => reason,
            Err(e) => format!("{} check failed: {e}", d.name()),
        };
        first.get_or_insert(err);
        silent.push(d.name().to_string());
    }
    match first {
        Some(reason) => (fail(reason), silent),
        None => (ok(format!("alive: {n} daemons answer")), silent),
    }
}

async fn cfg_current(l: &Layout, t: Duration) -> Result<(), String> {
    let c = Client::connect(&l.db_sock(), t)
        .await
        .map_err(|e| format!("ovsdb-server does not answer: {e}"))?;
    let r = ovsdb::transact(
        &c,
        "Open_vSwitch",
        vec![ovsdb::op_select(
            "Open_vSwitch",
            json!([]),
            &["cur_cfg", "next_cfg"],
        )],
        t,
    )
    .await
    .map_err(|e| format!("ovsdb-server: {e}"))?;
    let row = r.first().and_then(|v| v.get("rows")).and_then(|r| r.get(0));
    let get = |k: &str| row.and_then(|r| r.get(k)).and_then(|v| v.as_i64());
    match (get("cur_cfg"), get("next_cfg")) {
        (Some(cur), Some(next)) if cur >= next => Ok(()),
        (cur, next) => Err(format!(
            "ovs-vswitchd has not applied the configuration: cur_cfg {cur:?} < next_cfg {next:?}"
        )),
    }
}

/// ovn-controller behind `ctl` reports itself connected to the OVN Southbound.
pub async fn controller_connected(ctl: &std::path::Path, t: Duration) -> Result<(), String> {
    match unixctl::call(ctl, "connection-status", &[], t).await {
        Ok(st) if st == "connected" => Ok(()),
        Ok(st) => Err(format!("ovn-controller is {st:?} to the OVN Southbound")),
        Err(e) => Err(format!("ovn-controller does not answer: {e}")),
    }
}

async fn southbound_connected(
    l: &Layout,
    spawned: Option<i32>,
    remote: &str,
    t: Duration,
) -> Result<(), String> {
    let ctl = ctl_of(l, Daemon::OvnController, spawned).ok_or("ovn-controller has no pid yet")?;
    controller_connected(&ctl, t)
        .await
        .map_err(|e| format!("{e} at {remote}"))
}

async fn ready_check(layout: &Layout, snap: &Snapshot, t: Duration) -> Verdict {
    let controller = snap
        .daemon(Daemon::OvnController.name())
        .and_then(|d| d.pid);
    let mgmt = layout.mgmt_sock(settings::BRIDGE);
    let (a, b, c) = tokio::join!(
        cfg_current(layout, t),
        openflow::hello(&mgmt, t),
        southbound_connected(layout, controller, &snap.southbound, t)
    );
    if let Err(e) = a {
        return fail(e);
    }
    if let Err(e) = b {
        return fail(format!("br-int.mgmt: {e}"));
    }
    if let Err(e) = c {
        return fail(e);
    }
    if let Some(skew) = &snap.version_skew {
        return fail(skew.describe());
    }
    ok("ready")
}

/// One background health check: both verdicts, each check bounded by `t`.
pub async fn check(
    layout: &Layout,
    snap: &Snapshot,
    t: Duration,
    now_ms: impl Fn() -> u64,
) -> Health {
    let ((liveness, unresponsive), readiness) =
        tokio::join!(live_check(layout, snap, t), ready_check(layout, snap, t));
    Health {
        checked_at_ms: now_ms(),
        unresponsive,
        liveness,
        readiness,
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
        .find(|d| !matches!(d.state.as_str(), "running" | "restarting" | "starting"))
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
            "handed the node over to {to}, which has not confirmed: no daemon runs; taking it back in {} ms at most",
            h.take_back_at_ms.saturating_sub(now_ms)
        ))
    })
}

pub fn liveness(snap: &Snapshot, now_ms: u64) -> Verdict {
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

pub fn readiness(snap: &Snapshot, now_ms: u64) -> Verdict {
    if let Some(v) = handed_over(snap, now_ms) {
        return fail(v.reason);
    }
    if snap.stopping {
        return fail("stopping");
    }
    if !snap.started {
        return fail(format!("starting: stage {}", snap.stage));
    }
    if let Some(d) = snap.daemons.iter().find(|d| d.state != "running") {
        return fail(format!("{} is {}", d.name, d.state));
    }
    match fresh(snap, now_ms) {
        Ok(h) => h.readiness.clone(),
        Err(v) => v,
    }
}

#[cfg(test)]
mod tests;

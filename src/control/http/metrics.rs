//! `/metrics`: the node as Prometheus sees it, built from the published [`Snapshot`] at each
//! scrape (plus the daemons' and our own RSS and CPU time from `/proc`, and the request counts)
//! and encoded by `prometheus-client` as OpenMetrics text.
//!
//! Invariants: one `ovs_ovn_supervisor_` prefix; labels only from bounded sets (the four
//! daemons, their states, five restart causes, the start stages, two takeover origins, known
//! paths and methods) — never a pid; the verdicts are those of `probe` (`crate::control::answer`'s functions);
//! start figures are last-value gauges, not histograms: a supervisor starts its node once per
//! pod, so a histogram would hold one sample. Nothing here changes anything.

use std::path::Path;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use crate::control::counters;
use crate::daemon::state::{DaemonState, RestartCause};
use crate::process::procfs;
use crate::status::{verdict, Snapshot, TakeoverFrom};

type Labels = Vec<(&'static str, String)>;
type FGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

const STATES: [DaemonState; 8] = [
    DaemonState::Starting,
    DaemonState::Running,
    DaemonState::Busy,
    DaemonState::Restarting,
    DaemonState::Hung,
    DaemonState::Exited,
    DaemonState::Stopped,
    DaemonState::HandedOver,
];

fn gauge(reg: &mut Registry, name: &str, help: &str, v: i64) {
    let g = Gauge::<i64>::default();
    g.set(v);
    reg.register(name, help, g);
}

fn family<M>(reg: &mut Registry, name: &str, help: &str, unit: Option<Unit>) -> Family<Labels, M>
where
    M: prometheus_client::metrics::TypedMetric
        + prometheus_client::encoding::EncodeMetric
        + Default
        + Clone
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let f = Family::<Labels, M>::default();
    match unit {
        Some(u) => reg.register_with_unit(name, help, u, f.clone()),
        None => reg.register(name, help, f.clone()),
    }
    f
}

/// The verdicts and the node-level facts.
fn node(reg: &mut Registry, snap: &Snapshot, now_ms: u64) {
    let info = family::<Gauge>(
        reg,
        "build_info",
        "The supervisor's version (always 1).",
        None,
    );
    info.get_or_create(&vec![("version", snap.version.clone())])
        .set(1);
    let b = |ok: bool| i64::from(ok);
    gauge(
        reg,
        "started",
        "The start has finished (the startup probe's verdict).",
        b(verdict::startup(snap).ok),
    );
    gauge(
        reg,
        "live",
        "The liveness probe's verdict (1 alive).",
        b(verdict::liveness(snap, now_ms).ok),
    );
    gauge(
        reg,
        "ready",
        "The readiness probe's verdict (1 ready).",
        b(verdict::readiness(snap, now_ms).ok),
    );
    let sb = snap.health.as_ref().and_then(|h| h.southbound_connected);
    gauge(reg, "southbound_connected", "ovn-controller is connected to the Southbound at the last health check (1), not (0); -1 before the first check.", sb.map_or(-1, b));
    gauge(reg, "northd_version_match", "ovn-controller's version matches ovn-northd's as far as its log tells (0 while it reports a mismatch: it applies no changes).", b(snap.version_skew.is_none()));
    gauge(reg, "flow_restore_wait", "flow-restore-wait is set: vswitchd keeps the datapath's flows until br-int's table is complete.", b(snap.flow_restore_wait));
    gauge(
        reg,
        "handed_over",
        "This instance handed the node over to a newer one.",
        b(snap.handover.is_some()),
    );
    let stale = &snap.stale_southbound;
    gauge(reg, "southbound_stale", "ovn-controller refuses the Southbound as stale (its raft cluster was rebuilt or restored).", b(stale.episode.is_some()));
    let restores = Counter::<u64>::default();
    restores.inc_by(snap.firewall_restores);
    reg.register(
        "firewall_rule_restores",
        "Tunnel port rules put back after another program removed or changed them.",
        restores,
    );
    let resets = Counter::<u64>::default();
    resets.inc_by(u64::from(stale.resets));
    reg.register(
        "southbound_stale_resets",
        "sb-cluster-state-reset sent to ovn-controller for a stale Southbound.",
        resets,
    );
    let stage = family::<FGauge>(
        reg,
        "start_stage_duration",
        "How long each start stage took, the last start (last value: one start per pod).",
        Some(Unit::Seconds),
    );
    for (name, ms) in &snap.timeline {
        stage
            .get_or_create(&vec![("stage", name.clone())])
            .set(*ms as f64 / 1000.0);
    }
    if snap.started {
        let total: u64 = snap.timeline.iter().map(|(_, ms)| ms).sum();
        let g = FGauge::default();
        g.set(total as f64 / 1000.0);
        reg.register_with_unit(
            "start_duration",
            "From the first stage to ready, the sum of the stages.",
            Unit::Seconds,
            g,
        );
    }
}

/// A takeover by this instance: counted by where from, its duration, and br-int's flows saved
/// and restored on the way. Every series exists from the first scrape (0 without a takeover),
/// so dashboards and `increase()` see the step from 0 to 1.
fn takeover(reg: &mut Registry, snap: &Snapshot) {
    let took = snap.takeover.as_ref();
    let count = family::<Counter>(
        reg,
        "takeovers",
        "Running nodes this instance took over (0 or 1 per process), by who ran it before.",
        None,
    );
    for from in TakeoverFrom::ALL {
        let n = took.filter(|t| t.from == from).map_or(0, |_| 1);
        count
            .get_or_create(&vec![("from", from.as_str().to_string())])
            .inc_by(n);
    }
    let secs = |ms: Option<u64>| ms.unwrap_or(0) as f64 / 1000.0;
    let seconds = |reg: &mut Registry, name: &str, help: &str, v: f64| {
        let g = FGauge::default();
        g.set(v);
        reg.register_with_unit(name, help, Unit::Seconds, g);
    };
    seconds(
        reg,
        "takeover_duration",
        "From the takeover's request to the node running on this instance's daemons with flow-restore-wait cleared (0 until then, and without a takeover).",
        secs(took.and_then(|t| t.duration_ms)),
    );
    let (saved, restored) = (
        took.and_then(|t| t.saved).unwrap_or_default(),
        took.and_then(|t| t.restored).unwrap_or_default(),
    );
    for (what, t) in [("saved", saved), ("restored", restored)] {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let help = format!("OpenFlow rules of br-int {what} in the takeover (0 if none).");
        gauge(reg, &format!("flows_{what}"), &help, n(t.flows));
        let help = format!("OpenFlow groups of br-int {what} in the takeover (0 if none).");
        gauge(reg, &format!("flow_groups_{what}"), &help, n(t.groups));
    }
    seconds(
        reg,
        "flows_save_duration",
        "How long saving br-int's flows and groups took (0 if none were saved).",
        secs(Some(saved.elapsed_ms)),
    );
    seconds(
        reg,
        "flows_restore_duration",
        "How long restoring br-int's flows and groups took (0 if none were restored).",
        secs(Some(restored.elapsed_ms)),
    );
}

/// Per daemon: up, state, restarts by cause, last restart and exit.
fn daemons(reg: &mut Registry, snap: &Snapshot) {
    let up = family::<Gauge>(
        reg,
        "daemon_up",
        "The daemon answers (running or busy).",
        None,
    );
    let state = family::<Gauge>(
        reg,
        "daemon_state",
        "The daemon's state (1 for the current one).",
        None,
    );
    let restarts = family::<Counter>(
        reg,
        "daemon_restarts",
        "Restarts of the daemon by the supervisor, by cause.",
        None,
    );
    let last = family::<Gauge>(
        reg,
        "daemon_last_restart_timestamp",
        "Unix time of the daemon's last restart.",
        Some(Unit::Seconds),
    );
    let code = family::<Gauge>(
        reg,
        "daemon_last_exit_code",
        "The exit code of the daemon's last exit (absent when it was killed by a signal).",
        None,
    );
    let signal = family::<Gauge>(
        reg,
        "daemon_last_exit_signal",
        "The signal that killed the daemon the last time (absent when it exited with a code).",
        None,
    );
    for d in &snap.daemons {
        let l = |k: &'static str, v: &str| vec![("daemon", d.name.clone()), (k, v.to_string())];
        let daemon = vec![("daemon", d.name.clone())];
        up.get_or_create(&daemon)
            .set(i64::from(d.state.is_serving()));
        for s in STATES {
            state
                .get_or_create(&l("state", s.as_str()))
                .set(i64::from(d.state == s));
        }
        for c in RestartCause::ALL {
            let n = d.restarts_by_cause.get(&c).copied().unwrap_or(0);
            restarts
                .get_or_create(&l("cause", c.as_str()))
                .inc_by(u64::from(n));
        }
        if let Some(t) = d.restarted_at_ms {
            last.get_or_create(&daemon).set((t / 1000) as i64);
        }
        if let Some(c) = d.last_exit_code {
            code.get_or_create(&daemon).set(i64::from(c));
        }
        if let Some(s) = d.last_exit_signal {
            signal.get_or_create(&daemon).set(i64::from(s));
        }
    }
}

/// RSS and CPU time of each daemon and of the supervisor, read from `proc_root` now.
fn resources(reg: &mut Registry, snap: &Snapshot, proc_root: &Path) {
    let rss = family::<Gauge>(
        reg,
        "process_resident_memory",
        "Resident memory of the supervisor and each daemon.",
        Some(Unit::Bytes),
    );
    let cpu = family::<Counter<f64, std::sync::atomic::AtomicU64>>(
        reg,
        "process_cpu",
        "CPU time used by the supervisor and each daemon (all threads), since its start.",
        Some(Unit::Seconds),
    );
    let procs = std::iter::once(("supervisor".to_string(), Some(snap.pid))).chain(
        snap.daemons.iter().map(|d| {
            (
                d.name.clone(),
                d.pid
                    .filter(|_| d.state.is_serving() || d.state == DaemonState::Starting),
            )
        }),
    );
    for (name, pid) in procs {
        let Some(pid) = pid else { continue };
        let l = vec![("process", name)];
        if let Some(b) = procfs::rss_bytes(proc_root, pid) {
            rss.get_or_create(&l).set(b as i64);
        }
        if let Some(t) = procfs::process_cpu(proc_root, pid) {
            cpu.get_or_create(&l).inc_by(t.as_secs_f64());
        }
    }
}

fn requests(reg: &mut Registry) {
    let control = family::<Counter>(
        reg,
        "control_requests",
        "Requests on the control socket (probes, status, handover), by method.",
        None,
    );
    for (m, n) in counters::control_counts() {
        control
            .get_or_create(&vec![("method", m.to_string())])
            .inc_by(n);
    }
    let http = family::<Counter>(
        reg,
        "http_requests",
        "Requests on the HTTP endpoint, by path and status code.",
        None,
    );
    for (p, code, n) in counters::http_counts() {
        http.get_or_create(&vec![("path", p.to_string()), ("code", code)])
            .inc_by(n);
    }
    let (applied, failed) = counters::tls_reloads();
    let reloads = family::<Counter>(
        reg,
        "http_tls_reloads",
        "Changed TLS certificate/key files of the HTTP endpoint put in use.",
        None,
    );
    reloads.get_or_create(&vec![]).inc_by(applied);
    let failures = family::<Counter>(
        reg,
        "http_tls_reload_failures",
        "Changed TLS files of the HTTP endpoint refused (unreadable, not PEM, key not matching); the old pair is still served.",
        None,
    );
    failures.get_or_create(&vec![]).inc_by(failed);
}

/// The whole exposition, OpenMetrics text (ending in `# EOF`).
pub fn openmetrics(snap: &Snapshot, now_ms: u64, proc_root: &Path) -> String {
    let mut reg = Registry::with_prefix("ovs_ovn_supervisor");
    node(&mut reg, snap, now_ms);
    takeover(&mut reg, snap);
    daemons(&mut reg, snap);
    resources(&mut reg, snap, proc_root);
    requests(&mut reg);
    let mut out = String::new();
    if let Err(e) = encode(&mut out, &reg) {
        // Writing into a String cannot fail; should it, say so rather than serve half.
        return format!("# encoding failed: {e}\n# EOF\n");
    }
    out
}

/// The same exposition for a scraper that asked for Prometheus' text format 0.0.4: the
/// OpenMetrics-only lines (`# UNIT`, `# EOF`) dropped, and a counter's HELP/TYPE named as its
/// `_total` samples are.
pub fn prometheus_text(openmetrics: &str) -> String {
    let counters: Vec<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|p| {
            let rest = line.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(&name)
                .then(|| format!("{p}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;

//! The background health check: asks the real daemons (bounded, concurrent, read-only) at the
//! supervisor's cadence and returns the verdicts the probes then answer with ([`super::verdict`]).
//!
//! Invariants: nothing here changes state; every question is bounded by the caller's timeout;
//! readiness asks the OVN Southbound only through ovn-controller's own connection status; a
//! question we could not even send because the supervisor is out of file descriptors
//! (EMFILE/ENFILE, matched by `Errno`) makes the daemon "not asked", never "does not answer".

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::verdict::{fail, ok};
use super::{Health, Snapshot, Verdict};
use crate::config::paths::Layout;
use crate::daemon::Daemon;
use crate::ovs::jsonrpc::{Client, RpcError};
use crate::process::{fds, procfs};
use crate::{ovs::openflow, ovs::ovsdb, ovs::unixctl, settings};

/// The daemon's own pid: its pidfile's (right under a `DEBUG_WRAPPER` too, where the spawned
/// pid is the wrapper's), else the pid the supervisor spawned.
fn daemon_pid(layout: &Layout, d: Daemon, spawned: Option<i32>) -> Option<i32> {
    d.read_pid(layout).ok().flatten().or(spawned)
}

/// The control socket of a daemon: named after its pidfile's pid, else the spawned one.
pub fn ctl_of(layout: &Layout, d: Daemon, spawned: Option<i32>) -> Option<std::path::PathBuf> {
    Some(d.ctl(layout, daemon_pid(layout, d, spawned)?))
}

/// Why a daemon gave no answer.
enum NoAnswer {
    /// Asked, and no answer: the reason.
    Silent(String),
    /// Never asked: we had no fd to ask with. The reason.
    NotAsked(String),
}

/// True when `e` is the supervisor's own want of file descriptors, not the daemon's doing.
pub fn ours(e: &RpcError) -> bool {
    match e {
        RpcError::Connect { source, .. } | RpcError::Io { source, .. } => fds::out_of_fds(source),
        _ => false,
    }
}

/// Asks the daemon `pid` (see [`daemon_pid`]) its version over unixctl: the cheapest proof
/// that its main loop runs.
async fn answers(
    layout: &Layout,
    d: Daemon,
    pid: Option<i32>,
    t: Duration,
) -> Result<(), NoAnswer> {
    let pid = pid.ok_or_else(|| NoAnswer::Silent(format!("{} has no pid yet", d.name())))?;
    let ctl = d.ctl(layout, pid);
    match unixctl::call(&ctl, "version", &[], t).await {
        Ok(_) => Ok(()),
        Err(e) if ours(&e) => Err(NoAnswer::NotAsked(format!(
            "{} not asked: the supervisor is out of file descriptors ({e})",
            d.name()
        ))),
        Err(e) => Err(NoAnswer::Silent(format!(
            "{} does not answer: {e}",
            d.name()
        ))),
    }
}

/// What the liveness half of a check found.
struct Live {
    verdict: Verdict,
    silent: Vec<String>,
    not_asked: Vec<String>,
    main_cpu_ms: BTreeMap<String, u64>,
}

/// Every serving daemon asked at once; the verdict names the first that did not answer. The
/// CPU time of each one's main thread is read while the question is out.
async fn live_check(layout: &Layout, snap: &Snapshot, t: Duration) -> Live {
    let mut checks = Vec::new();
    for info in snap.daemons.iter().filter(|i| i.state.is_serving()) {
        let Some(d) = Daemon::from_name(&info.name) else {
            continue;
        };
        let (layout2, pid) = (layout.clone(), daemon_pid(layout, d, info.pid));
        checks.push((
            d,
            pid,
            tokio::spawn(async move { answers(&layout2, d, pid, t).await }),
        ));
    }
    let n = checks.len();
    let (mut first, mut silent, mut main_cpu_ms) = (None, Vec::new(), BTreeMap::new());
    let (mut not_asked, mut why_not) = (Vec::new(), None);
    for (d, pid, c) in checks {
        if let Some(cpu) = pid.and_then(|p| procfs::main_thread_cpu(Path::new("/proc"), p)) {
            main_cpu_ms.insert(d.name().to_string(), cpu.as_millis() as u64);
        }
        let err = match c.await {
            Ok(Ok(())) => continue,
            Ok(Err(NoAnswer::Silent(reason))) => reason,
            Ok(Err(NoAnswer::NotAsked(reason))) => {
                why_not.get_or_insert(reason);
                not_asked.push(d.name().to_string());
                continue;
            }
            Err(e) => format!("{} check failed: {e}", d.name()),
        };
        first.get_or_insert(err);
        silent.push(d.name().to_string());
    }
    let verdict = match (first, why_not) {
        (Some(reason), _) => fail(reason),
        // Not asked is no evidence of a fault: liveness holds, and says why it could not look.
        (None, Some(why)) => ok(format!(
            "alive: {} daemons answer; {why}",
            n - not_asked.len()
        )),
        (None, None) => ok(format!("alive: {n} daemons answer")),
    };
    Live {
        verdict,
        silent,
        not_asked,
        main_cpu_ms,
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

/// ovn-controller's Southbound connection: connected or not when it answered (`Some`), and
/// readiness's failure.
async fn southbound_connected(
    l: &Layout,
    spawned: Option<i32>,
    remote: &str,
    t: Duration,
) -> (Option<bool>, Result<(), String>) {
    use crate::daemon::wait::{controller_connected, Attempt};
    let Some(ctl) = ctl_of(l, Daemon::OvnController, spawned) else {
        return (None, Err("ovn-controller has no pid yet".into()));
    };
    match controller_connected(&ctl, t).await {
        // Connected is not yet proof: a server that accepts and never answers looks the same.
        Ok(()) => match unixctl::call(&ctl, "memory/show", &[], t).await {
            Ok(m) if super::session::southbound_cells(&m) == 0 => (
                Some(false),
                Err(format!(
                    "ovn-controller is connected to the OVN Southbound at {remote} but holds \
                     no Southbound rows: the server does not answer, or its database is empty \
                     (no ovn-northd has written SB_Global)"
                )),
            ),
            _ => (Some(true), Ok(())),
        },
        Err(e @ Attempt::NotConnected { .. }) => (Some(false), Err(format!("{e} at {remote}"))),
        Err(e) => (None, Err(format!("{e} at {remote}"))),
    }
}

/// Readiness, and ovn-controller's Southbound connection as found on the way.
async fn ready_check(
    layout: &Layout,
    snap: &Snapshot,
    t: Duration,
    now_ms: &impl Fn() -> u64,
) -> (Verdict, Option<bool>) {
    let controller = snap
        .daemon(Daemon::OvnController.name())
        .and_then(|d| d.pid);
    let mgmt = layout.mgmt_sock(settings::BRIDGE);
    let (a, b, (connected, c)) = tokio::join!(
        cfg_current(layout, t),
        openflow::hello(&mgmt, t),
        southbound_connected(layout, controller, &snap.southbound, t)
    );
    let verdict = if let Err(e) = a {
        fail(e)
    } else if let Err(e) = b {
        fail(format!("br-int.mgmt: {e}"))
    } else if let Err(e) = c {
        // While ovn-controller refuses a stale Southbound, that is why it is not connected.
        let stale = (snap.stale_southbound.episode.as_ref()).filter(|_| connected == Some(false));
        fail(stale.map_or(e, |ep| ep.describe(now_ms())))
    } else if let Some(skew) = &snap.version_skew {
        fail(skew.describe())
    } else {
        ok("ready")
    };
    (verdict, connected)
}

/// One background health check: both verdicts, each check bounded by `t`.
pub async fn check(
    layout: &Layout,
    snap: &Snapshot,
    t: Duration,
    now_ms: impl Fn() -> u64,
) -> Health {
    let (live, (readiness, southbound_connected)) = tokio::join!(
        live_check(layout, snap, t),
        ready_check(layout, snap, t, &now_ms)
    );
    Health {
        checked_at_ms: now_ms(),
        unresponsive: live.silent,
        not_asked: live.not_asked,
        main_cpu_ms: live.main_cpu_ms,
        liveness: live.verdict,
        readiness,
        southbound_connected,
    }
}

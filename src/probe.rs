//! `probe liveness|readiness`: Kubernetes exec probes that change nothing.
//!
//! Invariants: a probe only reads (the state file, `/proc`, sockets) and never writes; it is
//! bounded by one overall timeout; liveness never depends on the OVN Southbound (a central DB
//! outage must not restart every node's networking, Kube-OVN #1588); the answer is one line.
//!
//! - liveness: the supervisor named in the state file is alive, every daemon it started is
//!   alive, and once the node was ready, every daemon answers its control socket.
//! - readiness: the supervisor reports ready, ovsdb-server answers and vswitchd's `cur_cfg`
//!   has caught up with `next_cfg`, `br-int.mgmt` answers OpenFlow, and ovn-controller is
//!   connected to the Southbound.

use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;
use serde_json::json;

use crate::cli::ProbeKind;
use crate::daemons::Daemon;
use crate::jsonrpc::Client;
use crate::paths::Layout;
use crate::state::{self, State};
use crate::{openflow, ovsdb, settings, unixctl};

fn alive(pid: i32) -> bool {
    // EPERM means it exists but belongs to someone we may not signal.
    matches!(kill(Pid::from_raw(pid), None), Ok(()) | Err(Errno::EPERM))
}

fn daemon_of(name: &str) -> Option<Daemon> {
    [
        Daemon::SbServer,
        Daemon::OvsdbServer,
        Daemon::Vswitchd,
        Daemon::OvnController,
    ]
    .into_iter()
    .find(|d| d.name() == name)
}

async fn answers(l: &Layout, d: Daemon, pid: i32, t: Duration) -> Result<(), String> {
    unixctl::call(&d.ctl(l, pid), "version", &[], t)
        .await
        .map(|_| ())
        .map_err(|e| format!("{} (pid {pid}) does not answer: {e}", d.name()))
}

fn read_state(l: &Layout) -> Result<State, String> {
    let path = l.state_file();
    let s = state::read(&path).map_err(|e| match e {
        state::StateError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            format!("supervisor not running: no {}", path.display())
        }
        e => e.to_string(),
    })?;
    if !alive(s.supervisor_pid) {
        return Err(format!(
            "supervisor (pid {}) is gone; {} is stale",
            s.supervisor_pid,
            path.display()
        ));
    }
    Ok(s)
}

async fn liveness(l: &Layout, t: Duration) -> Result<String, String> {
    let s = read_state(l)?;
    for (name, pid) in &s.daemons {
        if !alive(*pid) {
            return Err(format!("{name} (pid {pid}) is not running"));
        }
    }
    if s.ready {
        for (name, pid) in &s.daemons {
            if let Some(d) = daemon_of(name) {
                answers(l, d, *pid, t).await?;
            }
        }
    }
    Ok(format!("alive: supervisor at stage {}", s.stage))
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
    let row = &r.first().and_then(|v| v.get("rows")).and_then(|r| r.get(0));
    let get = |k: &str| row.and_then(|r| r.get(k)).and_then(|v| v.as_i64());
    match (get("cur_cfg"), get("next_cfg")) {
        (Some(cur), Some(next)) if cur >= next => Ok(()),
        (cur, next) => Err(format!(
            "ovs-vswitchd has not applied the configuration: cur_cfg {cur:?} < next_cfg {next:?}"
        )),
    }
}

async fn readiness(l: &Layout, t: Duration) -> Result<String, String> {
    let s = read_state(l)?;
    if !s.ready {
        return Err(format!("starting: stage {}", s.stage));
    }
    let controller = s
        .daemons
        .get(Daemon::OvnController.name())
        .copied()
        .ok_or("ovn-controller not started")?;
    let ctl = Daemon::OvnController.ctl(l, controller);
    let mgmt = l.mgmt_sock(settings::BRIDGE);
    let (a, b, c) = tokio::join!(cfg_current(l, t), openflow::hello(&mgmt, t), async {
        match unixctl::call(&ctl, "connection-status", &[], t).await {
            Ok(st) if st == "connected" => Ok(()),
            Ok(st) => Err(format!("ovn-controller is {st:?} to the OVN Southbound")),
            Err(e) => Err(format!(
                "ovn-controller (pid {controller}) does not answer: {e}"
            )),
        }
    });
    a?;
    b.map_err(|e| format!("br-int.mgmt: {e}"))?;
    c?;
    Ok("ready".to_string())
}

/// Runs the probe; `Ok` carries the line to print on success, `Err` the reason.
pub async fn run(kind: ProbeKind, layout: &Layout, timeout: Duration) -> Result<String, String> {
    let fut = async {
        match kind {
            ProbeKind::Liveness => liveness(layout, timeout).await,
            ProbeKind::Readiness => readiness(layout, timeout).await,
        }
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
    }
}

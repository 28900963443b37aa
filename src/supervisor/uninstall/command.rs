//! `ovs-ovn-supervisor uninstall`, what `/kube-ovn/uninstall.sh` runs when Kube-OVN's
//! `cleanup.sh` does `kubectl exec <ovs-ovn pod> -- bash /kube-ovn/uninstall.sh` (under
//! `set -e`, before it deletes the DaemonSet): the effect of Kube-OVN's own script, without
//! `ovs-ctl`, whose stop the supervisor would undo by restarting the daemons.
//!
//! In order: the running supervisor is asked to stop the node for good (`uninstall` on its
//! control socket: `supervisor::uninstall`); the kernel datapath and tunnel devices left are
//! dealt with; Kube-OVN's iptables chains and rules and our tunnel port rule go from every
//! backend and family ([`crate::host::firewall::kubeovn`]); Kube-OVN's ipsets are destroyed; the files in
//! our directories are removed ([`crate::host::uninstall::files`]).
//!
//! Invariants:
//! - Idempotent: a second run, or a run with no supervisor, does what is left and succeeds.
//! - Nothing is removed from under a running node: the host's half runs only once the
//!   supervisor said its daemons stopped for good, or when no supervisor runs and no daemon
//!   of ours does (no pidfile of ours is locked). A refusal (another uid asked), a supervisor
//!   that does not answer, or a daemon running alone ends the command there, failed.
//! - Every step runs even after one failed; the [`Report`] names each failure, and any
//!   failure means exit status 1 (cleanup.sh stops there, under `set -e`).

use std::path::PathBuf;
use std::time::Duration;

use crate::config::paths::Layout;
use crate::control::client::AskError;
use crate::daemon::Daemon;
use crate::host::firewall::kubeovn::{self, Kernel};
use crate::host::firewall::HostRunner;
use crate::host::instance::LOCK_NAME;
use crate::host::stale::{self, Finding};
use crate::host::uninstall::{datapath, files, ipsets};
use crate::status::Uninstalled;

/// How long the supervisor may take to stop the node for good (its stop budget, 25 s by
/// default, plus the tunnel ports and the datapath), with room to spare.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(120);

/// Where the node is and what to read the kernel's modules under.
pub struct Options {
    pub layout: Layout,
    pub host_root: PathBuf,
    pub timeout: Duration,
}

/// What the uninstall did (`done`, one line each) and what failed.
#[derive(Debug, Default)]
pub struct Report {
    pub done: Vec<String>,
    pub failures: Vec<String>,
}

/// Runs the whole uninstall; see the module doc.
pub fn command(o: &Options) -> Report {
    let mut r = Report::default();
    let Some(supervisor_alive) = ask_supervisor(o, &mut r) else {
        r.failures
            .push("nothing else was done: the node may still run".into());
        return r;
    };
    let runner = HostRunner::default();
    match datapath::delete_datapath(&runner) {
        Ok(true) => r.done.push(format!(
            "deleted the kernel datapath {}",
            datapath::DATAPATH
        )),
        Ok(false) => {}
        Err(e) => r.failures.push(e.to_string()),
    }
    if let Err(e) = datapath::tunnel_devices_left() {
        r.failures.push(e.to_string());
    }
    let kernel = Kernel::read(&o.host_root);
    firewall(&runner, &kernel, &mut r);
    let sets = ipsets::destroy(&runner, &kernel);
    if !sets.destroyed.is_empty() {
        r.done
            .push(format!("ipset: destroyed {}", sets.destroyed.join(", ")));
    }
    r.failures
        .extend(sets.errors.iter().map(|e| format!("ipset: {e}")));
    clear_files(o, supervisor_alive, &mut r);
    r
}

/// Asks the supervisor to stop the node for good. `Some(alive)` once no daemon of ours runs
/// (`alive`: the supervisor does, idle); `None` when the node may still run.
fn ask_supervisor(o: &Options, r: &mut Report) -> Option<bool> {
    let sock = o.layout.control_sock();
    match crate::control::ask(&sock, "uninstall", o.timeout) {
        Ok(v) => match serde_json::from_value::<Uninstalled>(v) {
            Ok(u) => {
                r.done.push(describe(&u));
                r.failures
                    .extend(u.problems.iter().map(|p| format!("supervisor: {p}")));
                Some(true)
            }
            Err(e) => {
                r.failures
                    .push(format!("supervisor: bad uninstall answer: {e}"));
                None
            }
        },
        Err(e @ (AskError::NotRunning { .. } | AskError::Gone { .. })) => {
            r.done.push(format!("{e}: nothing to stop"));
            let live = live_daemons(&o.layout);
            r.failures
                .extend((live.iter()).map(|d| format!("{d} without a supervisor: stop it first")));
            live.is_empty().then_some(false)
        }
        // AskError names the supervisor itself.
        Err(e) => {
            r.failures.push(e.to_string());
            None
        }
    }
}

fn describe(u: &Uninstalled) -> String {
    let mut s = match (u.already, u.stopped_cleanly) {
        (true, _) => "supervisor: uninstalled already; no daemon runs".to_string(),
        (false, true) => "supervisor: stopped every daemon for good".to_string(),
        (false, false) => "supervisor: stopped every daemon for good (not all cleanly)".to_string(),
    };
    if !u.tunnel_ports.is_empty() {
        s += &format!("; deleted the tunnel ports {}", u.tunnel_ports.join(", "));
    }
    if u.datapath_deleted {
        s += &format!("; deleted the kernel datapath {}", datapath::DATAPATH);
    }
    s
}

/// Our daemons that run (their pidfile's lock is held), as "PROGRAM (pid N, PIDFILE) is running".
fn live_daemons(l: &Layout) -> Vec<String> {
    let mut daemons = Daemon::NODE.to_vec();
    if l.sandbox.is_some() {
        daemons.push(Daemon::SbServer);
    }
    let owned: Vec<stale::Owned> = daemons
        .into_iter()
        .map(|d| stale::Owned {
            program: d.program(),
            pidfile: d.pidfile(l),
            ctl_prefix: None,
            sockets: Vec::new(),
        })
        .collect();
    stale::scan(&owned, &[])
        .into_iter()
        .filter(|f| matches!(f, Finding::LiveDaemon { .. }))
        .map(|f| f.describe())
        .collect()
}

fn firewall(runner: &HostRunner, kernel: &Kernel, r: &mut Report) {
    let out = kubeovn::remove(runner, kernel);
    for (program, op) in &out.removed {
        r.done.push(format!("{program}: {op}"));
    }
    r.failures
        .extend(out.errors.iter().map(|e| format!("firewall: {e}")));
}

fn clear_files(o: &Options, supervisor_alive: bool, r: &mut Report) {
    // The lock is never unlinked (instance.rs); the live supervisor's socket answers probes.
    let mut keep = vec![o.layout.ovs_rundir.join(LOCK_NAME)];
    if supervisor_alive {
        keep.push(o.layout.control_sock());
    }
    let c = files::clear(&o.layout, &keep);
    if !c.removed.is_empty() {
        r.done.push(format!("files: removed {}", c.removed.len()));
    }
    let kept = |which: files::Kept| -> Vec<String> {
        (c.kept.iter())
            .filter(|(_, k)| *k == which)
            .map(|(p, _)| p.display().to_string())
            .collect()
    };
    let in_use = kept(files::Kept::InUse);
    if !in_use.is_empty() {
        r.done.push(format!(
            "files: left in place, held by a live process (not ours): {}",
            in_use.join(", ")
        ));
    }
    for p in kept(files::Kept::TooDeep) {
        r.failures.push(format!(
            "files: {p}: more than {} levels deep; not entered",
            files::MAX_DEPTH
        ));
    }
    r.failures
        .extend(c.errors.iter().map(|e| format!("files: {e}")));
}

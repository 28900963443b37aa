//! Migration from Kube-OVN's `start-ovs.sh` pod: on the first rollout with `maxSurge: 1` our pod
//! starts beside one whose daemons run under `ovs-ctl`/`ovn-ctl --monitor` on the same host
//! paths, with no supervisor on our control socket. We take that node over the way `ovs-ctl
//! restart` does: save br-int's flows and groups ([`crate::dataplane::flows::save`]), stop the old
//! daemons, and start ours down the rolling-update path (`flow-restore-wait`, restore, clear).
//!
//! What `--monitor` looks like (Debian 12: OVS 3.1, OVN 23.03): the pidfile holds the worker's
//! pid; its parent is the monitor, whose comm is `monitor` (not the program's name) and whose
//! title (`/proc/PID/cmdline`) reads `PROGRAM: monitoring pid WORKER (healthy)`. The monitor
//! exits when its worker exits, normally or by SIGTERM/SIGKILL, and restarts it only after a
//! crash signal (SIGSEGV, SIGABRT, ...); SIGTERM to the monitor ends the monitor alone.
//!
//! Invariants:
//! - Candidates are our three daemons only, by their pidfiles in our run dirs (ovsdb-server,
//!   ovs-vswitchd, ovn-controller): never an ovn-central pod's ovnnb_db/ovnsb_db/ovn-northd.
//! - A pid is signalled only once proven: the worker by its pidfile and comm, the monitor as
//!   that worker's parent with comm `monitor` and a title naming that worker. Identity is (pid,
//!   comm, start time), checked again right before every signal, so a recycled pid (hostPID)
//!   is never hit; never a process group.
//! - A monitor is ended before its worker, so nothing can restart a worker we stop.
//! - Workers stop like our own ordered stop: ovn-controller `exit --restart` (the chassis
//!   stays), vswitchd `exit` without `--cleanup` (a kernel datapath keeps forwarding), then
//!   ovsdb-server; each escalates to SIGTERM, then SIGKILL, each step with its own deadline.
//! - We only stop processes: conf.db, system-id.conf and every key in them stay as they are.
//! - Flows are saved before anything stops; a failed save is logged and the migration goes on
//!   (a normal start). A daemon that will not stop fails it: ours never runs beside it.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::config::paths::Layout;
use crate::daemon::Daemon;
use crate::dataplane::flows::SavedFlows;
use crate::host::stale::Finding;
use crate::process::Reaper;

/// The old node's daemons, in the order they stop.
const ORDER: [Daemon; 3] = Daemon::NODE;

const SAVE_DEADLINE: Duration = Duration::from_secs(10);
/// The graceful unixctl `exit`: the request, then the wait for the worker to be gone.
const EXIT_REQUEST: Duration = Duration::from_secs(2);
const EXIT_WAIT: Duration = Duration::from_secs(5);
const TERM_WAIT: Duration = Duration::from_secs(3);
const KILL_WAIT: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(5);
/// The longest a takeover can take: the flow save, then each old daemon (and the monitor) asked
/// to exit, SIGTERMed and SIGKILLed in turn. The start stage that runs it is bounded by this.
pub const STOP_BUDGET: Duration = Duration::from_secs(
    SAVE_DEADLINE.as_secs()
        + 4 * (EXIT_REQUEST.as_secs()
            + EXIT_WAIT.as_secs()
            + TERM_WAIT.as_secs()
            + KILL_WAIT.as_secs()),
);

#[derive(Debug, thiserror::Error)]
pub enum LegacyError {
    #[error("{what} (pid {pid}) still runs {waited:?} after SIGKILL; not starting ours beside it")]
    WouldNotStop {
        what: String,
        pid: i32,
        waited: Duration,
    },
    #[error("cannot send {signal} to {what} (pid {pid}): {source}")]
    Signal {
        what: String,
        pid: i32,
        signal: Signal,
        source: nix::errno::Errno,
    },
}

/// A process as proven: a pid alone may be recycled, its start time may not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    pub pid: i32,
    pub comm: String,
    start: u64,
}

/// One old daemon: the worker its pidfile names and, under `--monitor`, its monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OldDaemon {
    pub daemon: Daemon,
    pub worker: Proc,
    pub monitor: Option<Proc>,
}

/// A node run by `ovs-ctl`/`ovn-ctl`, its daemons in stop order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyNode {
    pub daemons: Vec<OldDaemon>,
}

/// What `/proc/PID/stat` says about a process.
struct Stat {
    comm: String,
    state: char,
    ppid: i32,
    start: u64,
}

/// `/proc/PID/stat`; the comm is parenthesised and may hold spaces and parentheses, so the
/// fields are counted from the last `)`.
fn stat(proc_root: &Path, pid: i32) -> Option<Stat> {
    let s = std::fs::read_to_string(proc_root.join(pid.to_string()).join("stat")).ok()?;
    let (head, rest) = s.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_string();
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        comm,
        state: f.first()?.chars().next()?,
        ppid: f.get(1)?.parse().ok()?,
        // Field 22, counted from 1 with the state as field 3.
        start: f.get(19)?.parse().ok()?,
    })
}

/// True while `p` runs: same start time, not exited (a zombie has exited).
fn alive(proc_root: &Path, p: &Proc) -> bool {
    stat(proc_root, p.pid)
        .is_some_and(|s| s.start == p.start && s.comm == p.comm && !matches!(s.state, 'Z' | 'X'))
}

/// `/proc/PID/comm` is the program name cut to 15 bytes.
fn comm_of(program: &str) -> String {
    program.chars().take(15).collect()
}

/// The monitor's title names the program and the worker: `PROGRAM: monitoring pid N (...)`.
fn title_names(cmdline: &[u8], program: &str, worker: i32) -> bool {
    // Spaces in the title may read as NULs, depending on how the kernel sees the rewritten argv.
    let title = String::from_utf8_lossy(cmdline).replace('\0', " ");
    let Some(rest) = title.strip_prefix(&format!("{program}: monitoring pid ")) else {
        return false;
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse() == Ok(worker)
}

fn prove(d: Daemon, pid: i32, proc_root: &Path) -> Option<OldDaemon> {
    let s = stat(proc_root, pid)?;
    if s.comm != comm_of(d.program()) || matches!(s.state, 'Z' | 'X') {
        return None;
    }
    let worker = Proc {
        pid,
        comm: s.comm,
        start: s.start,
    };
    let monitor = (s.ppid > 1)
        .then(|| stat(proc_root, s.ppid))
        .flatten()
        .filter(|m| m.comm == "monitor" && !matches!(m.state, 'Z' | 'X'))
        .filter(|_| {
            std::fs::read(proc_root.join(s.ppid.to_string()).join("cmdline"))
                .is_ok_and(|c| title_names(&c, d.program(), pid))
        })
        .map(|m| Proc {
            pid: s.ppid,
            comm: m.comm,
            start: m.start,
        });
    Some(OldDaemon {
        daemon: d,
        worker,
        monitor,
    })
}

/// The old node among the stale scan's live daemons: ours by pidfile path, each proven.
pub fn find(l: &Layout, findings: &[Finding], proc_root: &Path) -> Option<LegacyNode> {
    let daemons: Vec<OldDaemon> = ORDER
        .iter()
        .filter_map(|d| {
            findings.iter().find_map(|f| match f {
                Finding::LiveDaemon { pidfile, pid, .. } if *pidfile == d.pidfile(l) => {
                    prove(*d, *pid, proc_root)
                }
                _ => None,
            })
        })
        .collect();
    (!daemons.is_empty()).then_some(LegacyNode { daemons })
}

impl LegacyNode {
    pub fn describe(&self) -> String {
        let each: Vec<String> = self
            .daemons
            .iter()
            .map(|o| match &o.monitor {
                Some(m) => format!(
                    "{} pid {} (monitor {})",
                    o.daemon.name(),
                    o.worker.pid,
                    m.pid
                ),
                None => format!("{} pid {}", o.daemon.name(), o.worker.pid),
            })
            .collect();
        each.join(", ")
    }
}

async fn wait_gone(proc_root: &Path, p: &Proc, within: Duration) -> bool {
    let until = Instant::now() + within;
    while alive(proc_root, p) {
        if Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
    true
}

/// Ends `p`, proven again before each signal: first waits `asked` (a graceful request already
/// made), then SIGTERM, then SIGKILL. Returns how it ended.
async fn end(
    proc_root: &Path,
    p: &Proc,
    what: &str,
    asked: Duration,
) -> Result<&'static str, LegacyError> {
    if wait_gone(proc_root, p, asked).await {
        return Ok("exit");
    }
    for (signal, wait) in [(Signal::SIGTERM, TERM_WAIT), (Signal::SIGKILL, KILL_WAIT)] {
        if !alive(proc_root, p) {
            return Ok("exit");
        }
        if asked.is_zero() && signal == Signal::SIGTERM {
            tracing::debug!(what, pid = p.pid, %signal, "ending");
        } else {
            tracing::warn!(what, pid = p.pid, %signal, "still runs; signalling");
        }
        match kill(Pid::from_raw(p.pid), signal) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(source) => {
                return Err(LegacyError::Signal {
                    what: what.to_string(),
                    pid: p.pid,
                    signal,
                    source,
                })
            }
        }
        if wait_gone(proc_root, p, wait).await {
            return Ok(signal.as_str());
        }
    }
    Err(LegacyError::WouldNotStop {
        what: what.to_string(),
        pid: p.pid,
        waited: KILL_WAIT,
    })
}

async fn stop(l: &Layout, proc_root: &Path, old: &OldDaemon) -> Result<(), LegacyError> {
    let d = old.daemon;
    if let Some(m) = &old.monitor {
        let how = end(
            proc_root,
            m,
            &format!("{}'s monitor", d.name()),
            Duration::ZERO,
        )
        .await?;
        tracing::info!(daemon = d.name(), pid = m.pid, how, "old monitor stopped");
    }
    let t0 = Instant::now();
    let ctl = d.ctl(l, old.worker.pid);
    if let Err(e) = crate::ovs::unixctl::call(&ctl, "exit", d.exit_args(), EXIT_REQUEST).await {
        tracing::warn!(daemon = d.name(), ctl = %ctl.display(), "unixctl exit: {e}");
    }
    let how = end(proc_root, &old.worker, d.name(), EXIT_WAIT).await?;
    let ms = t0.elapsed().as_millis() as u64;
    tracing::info!(
        daemon = d.name(),
        pid = old.worker.pid,
        how,
        ms,
        "old daemon stopped"
    );
    Ok(())
}

/// Saves br-int's flows from the old vswitchd, then stops the old node in order. The flows
/// are `None` when there was no vswitchd or the save failed.
/// Node daemons still running on our run dirs with no supervisor: a dead successor's, when a
/// handed-over instance takes the node back. Stopped the way an `ovs-ctl` node is.
pub fn leftover(cfg: &crate::config::Config) -> Option<LegacyNode> {
    let proc_root = cfg.host_root.join("proc");
    find(&cfg.layout, &crate::host::prep::stale_scan(cfg), &proc_root)
}

pub async fn take_over(
    reaper: &Reaper,
    l: &Layout,
    proc_root: &Path,
    node: &LegacyNode,
    save: bool,
) -> Result<Option<SavedFlows>, LegacyError> {
    tracing::info!(old = %node.describe(), "taking the node over from ovs-ctl/ovn-ctl daemons");
    let has_vswitchd = node.daemons.iter().any(|o| o.daemon == Daemon::Vswitchd);
    let saved = if has_vswitchd && save {
        match tokio::time::timeout(SAVE_DEADLINE, crate::dataplane::flows::save(reaper, l)).await {
            Ok(Ok(s)) => {
                tracing::info!(
                    flows = s.flow_count(),
                    form = s.form(),
                    "saved br-int flows of the old node"
                );
                Some(s)
            }
            Ok(Err(e)) => {
                tracing::warn!("cannot save br-int flows: {e}; taking over without them");
                None
            }
            Err(_) => {
                tracing::warn!(
                    "saving br-int flows took over {SAVE_DEADLINE:?}; taking over without them"
                );
                None
            }
        }
    } else {
        None
    };
    for old in &node.daemons {
        stop(l, proc_root, old).await?;
    }
    Ok(saved)
}

#[cfg(test)]
mod tests;

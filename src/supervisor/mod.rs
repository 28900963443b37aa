//! `run`: bring the node up stage by stage, supervise it, stop it in order.
//!
//! Invariants:
//! - Each stage runs under its own deadline (`stage.rs`) and is raced against SIGTERM/SIGINT and
//!   against any started daemon exiting, so a signal during any stage stops cleanly, a daemon
//!   crash during start is reported as that, and a stage that hangs fails naming itself and
//!   what it waited for.
//! - ovn-controller starts only after `br-int.mgmt` completed an OpenFlow exchange, so its own
//!   1-2-4-8 s reconnect backoff never starts (the `br-int.mgmt: connection failed` incident).
//! - Every daemon has one [`Slot`] (state, pid, restart track); every change goes through
//!   [`Slot::on`] and is published at once (`slots.rs`).
//! - The stop is ordered ovn-controller → ovs-vswitchd → ovsdb-server(s), each asked through
//!   unixctl first, then SIGTERM, then SIGKILL to its process group, within the stop budget.
//! - SIGHUP is never forwarded (OVS daemons die on it): it becomes `vlog/reopen`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::config::Config;
use crate::control::{self, ControlError};
use crate::daemon::state::Slot;
use crate::daemon::{Daemon, NetMode};
use crate::process::{ExitStatus, Reaper};
use crate::status::{self, Snapshot};

mod figures;
mod firewall;
mod handback;
mod health;
mod marker;
pub mod prepare;
mod restore_wait;
mod runfiles;
pub mod signals;
mod slots;
mod stage;
mod stale_sb;
mod start;
mod stop;
mod successor;
mod supervise;
mod tls;
mod uninstall;

pub use slots::SpawnError;
pub use stage::StageError;
pub use uninstall::command as uninstall_command;

/// Why `run` ended without a clean stop.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("stage {stage}: {source}")]
    Stage {
        stage: &'static str,
        #[source]
        source: Box<StageError>,
    },
    #[error("stage {stage}: not done within {deadline:?}, waiting for {waiting_for}")]
    Deadline {
        stage: &'static str,
        deadline: Duration,
        waiting_for: &'static str,
    },
    #[error("{daemon} (pid {pid}) exited unexpectedly with {status}; stopped the others in order")]
    DaemonDied {
        daemon: &'static str,
        pid: i32,
        status: ExitStatus,
    },
    #[error("{daemon} restarted {restarts} times within {window:?}: crash loop; {daemon}'s last exits: {exits}; stopped everything in order (last exits: {statuses})")]
    CrashLoop {
        daemon: &'static str,
        restarts: u32,
        window: Duration,
        /// The looping daemon's last exits, oldest first.
        exits: String,
        statuses: String,
    },
    #[error("cannot set up signal handling: {0}")]
    Signals(#[source] std::io::Error),
    #[error(transparent)]
    Control(#[from] ControlError),
}

/// A (re)started process's report: back in service, or not.
struct Ready {
    daemon: Daemon,
    pid: i32,
    result: Result<(), StageError>,
    /// vswitchd's: the saved table a `keep-or-restore` start put into br-int late.
    restored_late: Option<crate::dataplane::tally::FlowTally>,
}

impl Ready {
    fn new(daemon: Daemon, pid: i32, result: Result<(), StageError>) -> Ready {
        Ready {
            daemon,
            pid,
            result,
            restored_late: None,
        }
    }
}

/// What interrupted a stage, or ended supervision.
enum Interrupt {
    Stop(&'static str),
    Died(Daemon, i32, ExitStatus),
    Failed(RunError),
    CrashLoop {
        daemon: Daemon,
        restarts: u32,
        window: Duration,
        exits: String,
        statuses: String,
    },
    /// A newer instance takes the node over; answer it once our daemons are stopped.
    HandOver(
        tokio::sync::oneshot::Sender<Result<serde_json::Value, String>>,
        Box<supervise::Handed>,
        control::peer::Successor,
    ),
    /// `uninstall`: stop every daemon for good, answer, and idle until terminated.
    Uninstall(tokio::sync::oneshot::Sender<Result<serde_json::Value, String>>),
}

pub struct Supervisor {
    cfg: Config,
    net: NetMode,
    reaper: &'static Reaper,
    /// One record per daemon we ever spawned in this run.
    slots: BTreeMap<Daemon, Slot>,
    exits_tx: mpsc::UnboundedSender<(Daemon, i32, ExitStatus)>,
    exits: mpsc::UnboundedReceiver<(Daemon, i32, ExitStatus)>,
    /// A (re)started process is back in service (or is not): from the tasks that wait for it.
    ready_tx: mpsc::UnboundedSender<Ready>,
    ready_rx: mpsc::UnboundedReceiver<Ready>,
    signals: signals::Signals,
    /// What probes and `status` answer from; the readiness marker follows it.
    snap: marker::Published,
    /// Our settings, kept to apply again when ovsdb-server restarts.
    owned: Option<crate::settings::Owned>,
    handover_tx: mpsc::Sender<control::HandoverRequest>,
    handover_rx: mpsc::Receiver<control::HandoverRequest>,
    uninstall_tx: mpsc::Sender<control::UninstallRequest>,
    uninstall_rx: mpsc::Receiver<control::UninstallRequest>,
    /// Flows handed over by the instance we took over from.
    restore: Option<crate::dataplane::flows::SavedFlows>,
    /// How many flows br-int held when the predecessor stopped (0: none, or not known): a
    /// table kept instead of restored is complete only near that size again.
    handed_flows: usize,
    /// The task that clears flow-restore-wait after the start: ended with the loop, so that a
    /// late restore never reaches a successor's daemons through the same sockets.
    clearing: Option<tokio::task::AbortHandle>,
    /// `ovs-ctl`/`ovn-ctl` daemons to stop before anything of ours starts.
    legacy: Option<crate::takeover::legacy::LegacyNode>,
    started: Instant,
    /// When the takeover this instance began was asked for, until its duration is published.
    takeover_since: Option<Instant>,
    /// ovn-controller's version skew with ovn-northd, from its log.
    skew: crate::status::skew::SkewWatch,
    /// ovn-controller refusing a rebuilt Southbound (from its log and our health checks).
    stale_sb: crate::status::stale_sb::StaleWatch,
    /// One supervisor per run dir; released only when we hand the node over.
    lock: Option<crate::host::instance::InstanceLock>,
    /// The control socket we serve (`runfiles.rs`).
    control: Option<runfiles::Server>,
}

impl Supervisor {
    pub fn new(
        cfg: Config,
        net: NetMode,
        reaper: &'static Reaper,
        predecessor: crate::takeover::Predecessor,
    ) -> Result<Self, RunError> {
        use crate::takeover::Predecessor;
        let took_over = figures::took_over(&predecessor);
        let (restore, legacy, handed_flows) = match predecessor {
            Predecessor::None => (None, None, 0),
            Predecessor::Supervisor {
                saved, table_flows, ..
            } => {
                let n = saved.as_ref().map(|s| s.flow_count()).or(table_flows);
                (saved, None, n.unwrap_or(0))
            }
            Predecessor::Legacy { node, .. } => (None, Some(node), 0),
        };
        let (exits_tx, exits) = mpsc::unbounded_channel();
        let (handover_tx, handover_rx) = mpsc::channel(1);
        let (uninstall_tx, uninstall_rx) = mpsc::channel(1);
        let (ready_tx, ready_rx) = mpsc::unbounded_channel();
        Ok(Supervisor {
            snap: marker::Published::new(
                Snapshot {
                    pid: std::process::id() as i32,
                    version: env!("CARGO_PKG_VERSION").into(),
                    stage: "starting".into(),
                    started_at_ms: status::unix_ms(),
                    // Three missed checks, plus the time one may take, before verdicts go stale.
                    health_max_age_ms: 3 * cfg.health_interval.as_millis() as u64 + 5_000,
                    southbound: cfg.southbound.remote.clone(),
                    takeover: took_over.as_ref().map(|(t, _)| t.clone()),
                    ..Snapshot::default()
                },
                cfg.ready_file.clone(),
            ),
            slots: BTreeMap::new(),
            owned: None,
            handover_tx,
            handover_rx,
            uninstall_tx,
            uninstall_rx,
            restore,
            handed_flows,
            clearing: None,
            legacy,
            cfg,
            net,
            reaper,
            exits_tx,
            exits,
            ready_tx,
            ready_rx,
            signals: signals::Signals::new().map_err(RunError::Signals)?,
            started: Instant::now(),
            takeover_since: took_over.map(|(_, since)| since),
            skew: Default::default(),
            stale_sb: Default::default(),
            lock: None,
            control: None,
        })
    }

    /// Keeps the instance lock for the process's life (or until we hand over).
    pub fn with_lock(mut self, lock: crate::host::instance::InstanceLock) -> Self {
        self.lock = Some(lock);
        self
    }

    /// The snapshot a health check judges, with the latest facts from daemons' logs.
    fn snapshot_for_check(&self) -> Snapshot {
        let max_age = crate::status::skew::max_age(self.cfg.health_interval).as_millis() as u64;
        let skew = self.skew.current(status::unix_ms(), max_age);
        let stale = self.stale_sb.status();
        self.snap.send_modify(|s| {
            s.version_skew = skew;
            s.stale_southbound = stale;
        });
        self.snap.borrow().clone()
    }

    /// How long one health check may wait on a daemon.
    fn health_timeout(&self) -> Duration {
        self.cfg
            .health_interval
            .clamp(Duration::from_millis(500), Duration::from_secs(2))
    }

    /// The HTTP endpoint, when configured: probes and metrics from the published snapshot.
    fn serve_http(&self) -> Option<tokio::task::JoinHandle<()>> {
        let addr = self.cfg.http?;
        let ep = control::http::Endpoint {
            addr,
            proc_root: std::path::PathBuf::from("/proc"),
            tls: self.cfg.http_tls.clone(),
        };
        Some(control::http::spawn(ep, self.snap.subscribe()))
    }

    fn set_stage(&self, stage: &str) {
        self.snap.send_modify(|s| s.stage = stage.to_string());
    }

    /// Brings the node up and supervises it until a stop signal or a daemon's death.
    pub async fn run(mut self) -> Result<(), RunError> {
        // The directories exist and were checked (`fsguard::prepare_layout`) before the lock.
        // Up before the first stage, so startup and liveness probes answer during the start.
        self.bind_control()?;
        let mut http = self.serve_http();
        self.snap.start_rechecks();
        let (outcome, stop) = loop {
            let outcome = self.start_and_supervise().await;
            if let Interrupt::Uninstall(reply) = outcome {
                let (sig, clean) = self.stop_for_good(reply).await;
                break (Interrupt::Stop(sig), clean);
            }
            let stop = self.stop_everything().await;
            let Interrupt::HandOver(reply, handed, successor) = outcome else {
                break (outcome, stop);
            };
            // The node's port is the successor's now (host network: one listener per node).
            if let Some(h) = http.take() {
                h.abort();
            }
            // The new instance owns the socket path from now on: leave it alone, and let it
            // take the instance lock as soon as it has our answer.
            if let Some(lock) = self.lock.take() {
                crate::host::instance::release(lock);
            }
            let _ = reply.send(Ok(serde_json::json!({
                "stopped_cleanly": stop,
                "saved": handed.saved,
                "table_flows": handed.table_flows,
            })));
            tracing::info!(
                clean = stop,
                successor = successor.pid,
                "handed the node over; watching for the successor to confirm"
            );
            // `None`: took the node back, holding the lock again: start it again.
            if let Some(sig) = self.after_handover(successor).await {
                break (Interrupt::Stop(sig), stop);
            }
            http = self.serve_http();
        };
        self.snap.end();
        // Removed only while it is still the file we bound (after a handover it is the
        // successor's).
        self.close_control();
        if let Some(h) = http {
            h.abort();
        }
        // Nothing of the node outlives us: a daemon a wrapper detached is still our descendant.
        stop::sweep(self.reaper).await;
        match outcome {
            Interrupt::Stop(sig) => {
                tracing::info!(signal = sig, clean = stop, "stopped");
                Ok(())
            }
            Interrupt::Died(d, pid, status) => Err(RunError::DaemonDied {
                daemon: d.name(),
                pid,
                status,
            }),
            Interrupt::Failed(e) => Err(e),
            Interrupt::HandOver(..) | Interrupt::Uninstall(..) => Ok(()),
            Interrupt::CrashLoop {
                daemon,
                restarts,
                window,
                exits,
                statuses,
            } => Err(RunError::CrashLoop {
                daemon: daemon.name(),
                restarts,
                window,
                exits,
                statuses,
            }),
        }
    }

    async fn start_and_supervise(&mut self) -> Interrupt {
        if let Err(i) = self.start().await {
            if let Interrupt::Died(d, pid, status) = &i {
                tracing::error!(daemon = d.name(), pid, %status, "daemon exited during start");
                let event = crate::daemon::state::Event::DiedStarting {
                    pid: *pid,
                    status: *status,
                };
                self.event(*d, event);
            }
            return i;
        }
        // A first verdict before `started`, so no probe ever sees "pending" after the start.
        let snap = self.snapshot_for_check();
        let first = status::check::check(
            &self.cfg.layout,
            &snap,
            self.health_timeout(),
            status::unix_ms,
        )
        .await;
        let (ready, reason) = (first.readiness.ok, first.readiness.reason.clone());
        self.snap.send_modify(|s| {
            s.stage = "ready".into();
            s.started = true;
            s.health = Some(first);
        });
        self.takeover_settled();
        let total = self.started.elapsed().as_millis() as u64;
        let timeline: Vec<String> = (self.snap.borrow().timeline.iter())
            .map(|(s, ms)| format!("{s}={ms}ms"))
            .collect();
        let timeline = timeline.join(" ");
        if ready {
            tracing::info!(ready_ms = total, %timeline, "node ready");
        } else {
            tracing::warn!(started_ms = total, %timeline, "node started, not ready: {reason}");
        }
        self.supervise().await
    }
}

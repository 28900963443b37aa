//! `run`: bring the node up stage by stage, supervise it, stop it in order.
//!
//! Invariants:
//! - Each stage runs under its own deadline and is raced against SIGTERM/SIGINT and against any
//!   started daemon exiting, so a signal during any stage stops cleanly and a daemon crash
//!   during start is reported as that, not as a stage timeout.
//! - ovn-controller starts only after `br-int.mgmt` completed an OpenFlow exchange, so its own
//!   1-2-4-8 s reconnect backoff never starts (the seed incident).
//! - The stop is ordered ovn-controller → ovs-vswitchd → ovsdb-server(s), each asked through
//!   unixctl first, then SIGTERM, then SIGKILL to its process group, within the stop budget.
//! - SIGHUP is never forwarded (OVS daemons die on it): it becomes `vlog/reopen`.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc;

use crate::config::Config;
use crate::control::{self, DaemonInfo, Snapshot};
use crate::daemon::{Daemon, NetMode};
use crate::ovs::jsonrpc::Client;
use crate::process::backoff::{Policy, Retry};
use crate::process::{ExitStatus, Reaper};
use crate::{settings, status::probe};
use tokio::sync::watch;

mod handback;
pub mod signals;
mod start;
mod stop;
mod supervise;

/// Why `run` ended without a clean stop.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("stage {stage}: {message}")]
    Stage {
        stage: &'static str,
        message: String,
    },
    #[error("stage {stage}: no success within {deadline:?}; last error: {last}")]
    Deadline {
        stage: &'static str,
        deadline: Duration,
        last: String,
    },
    #[error("{daemon} (pid {pid}) exited unexpectedly with {status}; stopped the others in order")]
    DaemonDied {
        daemon: &'static str,
        pid: i32,
        status: ExitStatus,
    },
    #[error("{daemon} restarted {restarts} times within {window:?}: crash loop; stopped everything in order (last exits: {statuses})")]
    CrashLoop {
        daemon: &'static str,
        restarts: u32,
        window: Duration,
        statuses: String,
    },
    #[error("cannot set up signal handling: {0}")]
    Signals(std::io::Error),
}

fn stage_err(stage: &'static str) -> impl Fn(&dyn std::fmt::Display) -> RunError {
    move |e| RunError::Stage {
        stage,
        message: e.to_string(),
    }
}

/// What interrupted a stage.
enum Interrupt {
    Stop(&'static str),
    Died(Daemon, i32, ExitStatus),
    Failed(RunError),
    CrashLoop {
        daemon: Daemon,
        restarts: u32,
        window: Duration,
        statuses: String,
    },
    /// A newer instance takes the node over; answer it once our daemons are stopped.
    HandOver(
        tokio::sync::oneshot::Sender<Result<serde_json::Value, String>>,
        Option<crate::takeover::SavedFlows>,
        Option<i32>,
    ),
}

struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
    usr1: Signal,
    usr2: Signal,
}

enum SigEvent {
    Stop(&'static str),
    Hup,
    /// Caught so its default action (terminate) cannot take the node down; logged, not forwarded.
    Other(&'static str),
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
            usr1: signal(SignalKind::user_defined1())?,
            usr2: signal(SignalKind::user_defined2())?,
        })
    }
    async fn next(&mut self) -> SigEvent {
        tokio::select! {
            _ = self.term.recv() => SigEvent::Stop("SIGTERM"),
            _ = self.int.recv() => SigEvent::Stop("SIGINT"),
            _ = self.hup.recv() => SigEvent::Hup,
            _ = self.usr1.recv() => SigEvent::Other("SIGUSR1"),
            _ = self.usr2.recv() => SigEvent::Other("SIGUSR2"),
        }
    }
}

pub(crate) struct Running {
    pub(crate) pid: i32,
}

pub struct Supervisor {
    cfg: Config,
    net: NetMode,
    reaper: &'static Reaper,
    pub(crate) running: BTreeMap<Daemon, Running>,
    exits_tx: mpsc::UnboundedSender<(Daemon, i32, ExitStatus)>,
    exits: mpsc::UnboundedReceiver<(Daemon, i32, ExitStatus)>,
    signals: Signals,
    snap: watch::Sender<Snapshot>,
    tracks: BTreeMap<Daemon, crate::daemon::policy::Track>,
    /// Our settings, kept to apply again when ovsdb-server restarts.
    owned: Option<settings::Owned>,
    handover_tx: mpsc::Sender<control::HandoverRequest>,
    handover_rx: mpsc::Receiver<control::HandoverRequest>,
    /// Flows handed over by the instance we took over from.
    restore: Option<crate::takeover::SavedFlows>,
    /// `ovs-ctl`/`ovn-ctl` daemons to stop before anything of ours starts.
    legacy: Option<crate::takeover::legacy::LegacyNode>,
    started: Instant,
    /// ovn-controller's version skew with ovn-northd, from its log.
    skew: crate::status::skew::SkewWatch,
    /// One supervisor per run dir; released only when we hand the node over.
    lock: Option<crate::host::instance::InstanceLock>,
}

/// Connects, retrying while the socket is missing or refused (the daemon is still starting).
async fn connect_when_up(path: &Path, deadline: Instant) -> Result<Client, String> {
    retry(deadline, |left| async move {
        Client::connect(path, left.min(Duration::from_secs(2)))
            .await
            .map_err(|e| e.to_string())
    })
    .await
}

/// The daemon's own pid: the one we spawned, or its pidfile's under a `DEBUG_WRAPPER` (whose
/// pid is the wrapper's).
async fn daemon_pid(
    cfg: &Config,
    d: Daemon,
    spawned: i32,
    deadline: Instant,
) -> Result<i32, String> {
    if !cfg.debug_wrapper.wraps() {
        return Ok(spawned);
    }
    let l = &cfg.layout;
    retry(deadline, |_| async move {
        // `spawn` removed the old pidfile, so any pid in it now is this daemon's (a wrapper that
        // `exec`s keeps `spawned`; one that forks does not).
        match d.read_pid(l) {
            Ok(Some(pid)) => Ok(pid),
            Ok(None) => Err(format!(
                "{} not written yet (spawned pid {spawned})",
                d.pidfile(l).display()
            )),
            Err(e) => Err(e.to_string()),
        }
    })
    .await
}

/// Waits until the ovn-controller we spawned (as `spawned`) answers on its control socket,
/// connected to the Southbound or not: a Southbound outage must not stop a node (Kube-OVN
/// #1588). Returns the control socket.
async fn controller_answering(
    cfg: &Config,
    spawned: i32,
    deadline: Instant,
) -> Result<std::path::PathBuf, String> {
    let d = Daemon::OvnController;
    let ctl = d.ctl(&cfg.layout, daemon_pid(cfg, d, spawned, deadline).await?);
    retry(deadline, |left| {
        let ctl = ctl.clone();
        async move {
            crate::ovs::unixctl::call(
                &ctl,
                "connection-status",
                &[],
                left.min(Duration::from_secs(1)),
            )
            .await
            .map(|_| ())
            .map_err(|e| format!("ovn-controller does not answer: {e}"))
        }
    })
    .await?;
    Ok(ctl)
}

/// Waits until ovn-controller behind `ctl` is connected to the Southbound, until `deadline`.
async fn controller_connected(ctl: &Path, deadline: Instant) -> Result<(), String> {
    retry(deadline, |left| async move {
        probe::controller_connected(ctl, left.min(Duration::from_secs(1))).await
    })
    .await
}

/// Retries `f` with full-jitter backoff (5 ms .. 100 ms) until it succeeds or `deadline`.
async fn retry<T, F, Fut>(deadline: Instant, mut f: F) -> Result<T, String>
where
    F: FnMut(Duration) -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let policy = Policy {
        base: Duration::from_millis(5),
        cap: Duration::from_millis(100),
    };
    let mut r = Retry::new(policy, deadline);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let err = match f(left.max(Duration::from_millis(1))).await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        match r.next_delay(Instant::now(), fastrand::f64()) {
            Some(d) => tokio::time::sleep(d).await,
            None => return Err(err),
        }
    }
}

impl Supervisor {
    pub fn new(
        cfg: Config,
        net: NetMode,
        reaper: &'static Reaper,
        predecessor: crate::takeover::Predecessor,
    ) -> Result<Self, RunError> {
        use crate::takeover::Predecessor;
        let (restore, legacy) = match predecessor {
            Predecessor::None => (None, None),
            Predecessor::Supervisor(saved) => (saved, None),
            Predecessor::Legacy(old) => (None, Some(old)),
        };
        let (exits_tx, exits) = mpsc::unbounded_channel();
        let (handover_tx, handover_rx) = mpsc::channel(1);
        Ok(Supervisor {
            snap: watch::Sender::new(Snapshot {
                pid: std::process::id() as i32,
                version: env!("CARGO_PKG_VERSION").into(),
                stage: "starting".into(),
                started_at_ms: control::unix_ms(),
                // Three missed checks, plus the time one may take, before verdicts go stale.
                health_max_age_ms: 3 * cfg.health_interval.as_millis() as u64 + 5_000,
                southbound: cfg.southbound.remote.clone(),
                ..Snapshot::default()
            }),
            tracks: BTreeMap::new(),
            owned: None,
            handover_tx,
            handover_rx,
            restore,
            legacy,
            cfg,
            net,
            reaper,
            running: BTreeMap::new(),
            exits_tx,
            exits,
            signals: Signals::new().map_err(RunError::Signals)?,
            started: Instant::now(),
            skew: Default::default(),
            lock: None,
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
        let skew = self.skew.current(control::unix_ms(), max_age);
        self.snap.send_modify(|s| s.version_skew = skew);
        self.snap.borrow().clone()
    }

    /// How long one health check may wait on a daemon.
    fn health_timeout(&self) -> Duration {
        self.cfg
            .health_interval
            .clamp(Duration::from_millis(500), Duration::from_secs(2))
    }

    fn set_stage(&self, stage: &str) {
        self.snap.send_modify(|s| s.stage = stage.to_string());
    }

    /// Records a daemon's new state in the published snapshot.
    fn daemon_state(&self, d: Daemon, pid: Option<i32>, state: &str, exit: Option<ExitStatus>) {
        self.snap.send_modify(|s| {
            let i = match s.daemons.iter().position(|x| x.name == d.name()) {
                Some(i) => i,
                None => {
                    s.daemons.push(DaemonInfo {
                        name: d.name().into(),
                        ..DaemonInfo::default()
                    });
                    s.daemons.len() - 1
                }
            };
            let info = &mut s.daemons[i];
            if state == "running" {
                info.since_ms = Some(control::unix_ms());
            }
            if pid.is_some() {
                info.pid = pid;
            }
            info.state = state.to_string();
            if let Some(e) = exit {
                info.last_exit = Some(e.to_string());
            }
        });
    }

    /// The readiness marker for dependents (seed 004): present exactly while ready.
    fn marker(&self, ready: bool) {
        let Some(path) = &self.cfg.ready_file else {
            return;
        };
        let r = if ready {
            let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
            std::fs::write(&tmp, format!("{}\n", control::unix_ms()))
                .and_then(|()| std::fs::rename(&tmp, path))
        } else {
            match std::fs::remove_file(path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                r => r,
            }
        };
        if let Err(e) = r {
            tracing::warn!(path = %path.display(), error = %e, "readiness marker");
        }
    }

    /// Runs `fut` as stage `name`, racing it against signals and daemon exits.
    async fn stage<T>(
        &mut self,
        name: &'static str,
        fut: impl Future<Output = Result<T, RunError>>,
    ) -> Result<T, Interrupt> {
        let t0 = Instant::now();
        self.set_stage(name);
        tracing::debug!(stage = name, "stage started");
        tokio::pin!(fut);
        loop {
            tokio::select! {
                r = &mut fut => {
                    let ms = t0.elapsed().as_millis() as u64;
                    self.snap.send_modify(|s| s.timeline.push((name.to_string(), ms)));
                    return r.map_err(Interrupt::Failed);
                }
                ev = self.signals.next() => match ev {
                    SigEvent::Stop(s) => return Err(Interrupt::Stop(s)),
                    SigEvent::Hup => stop::reopen_logs(&self.cfg, &self.running).await,
                    SigEvent::Other(s) => tracing::info!(signal = s, "ignored"),
                },
                Some((d, pid, st)) = self.exits.recv() => return Err(Interrupt::Died(d, pid, st)),
                Some(req) = self.handover_rx.recv() => {
                    let _ = req.reply.send(Err(format!("still starting (stage {name}); not handing over a half-started node")));
                }
            }
        }
    }

    fn spawn(&mut self, d: Daemon) -> Result<i32, RunError> {
        let inv = d.invocation(&self.cfg, self.net);
        let err = stage_err(d.name());
        let binary = d.find_binary().map_err(|e| err(&e))?;
        // The daemon's resolved path replaces its bare name, so a wrapper runs the same binary
        // we checked for, whatever the wrapper's own PATH.
        let wrapped = inv.program_at;
        let mut argv: Vec<std::ffi::OsString> = inv.argv.iter().map(Into::into).collect();
        argv[wrapped] = binary.into_os_string();
        // The previous process of this daemon is dead (or was never ours): its pidfile must not
        // be mistaken for the new one's, and its `NAME.PID.ctl` (left by a kill -9) must not
        // pile up. The embedded Southbound's socket has a fixed name its successor binds again.
        let l = &self.cfg.layout;
        if let Ok(Some(old)) = d.read_pid(l) {
            let dead = !Path::new(&format!("/proc/{old}")).exists();
            if dead && d != Daemon::SbServer {
                let _ = std::fs::remove_file(d.ctl(l, old));
            }
        }
        let _ = std::fs::remove_file(d.pidfile(l));
        let mut cmd = std::process::Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .envs(inv.env.iter().map(|(k, v)| (k, v)));
        crate::kubeovn_compat::nice_before_exec(&mut cmd);
        let mut s = self.reaper.spawn(d.name(), cmd).map_err(|e| err(&e))?;
        let nice = crate::kubeovn_compat::nice_of(Path::new("/proc"), s.pid);
        if nice.is_some_and(|n| n != crate::kubeovn_compat::DAEMON_NICE) {
            tracing::warn!(
                daemon = d.name(),
                nice,
                "cannot run it at nice {} as ovs-ctl does (needs CAP_SYS_NICE)",
                crate::kubeovn_compat::DAEMON_NICE
            );
        }
        if let Some(out) = s.stdout.take() {
            crate::logging::relay(d.name(), out);
        }
        if let Some(e) = s.stderr.take() {
            let observe: Option<crate::logging::LineObserver> =
                (d == Daemon::OvnController).then(|| {
                    self.skew.clear();
                    let skew = self.skew.clone();
                    Box::new(move |line: &str| skew.observe(line, control::unix_ms())) as _
                });
            crate::logging::relay_observed(d.name(), e, observe);
        }
        let (pid, tx, exit) = (s.pid, self.exits_tx.clone(), s.exit);
        tokio::spawn(async move {
            if let Ok(status) = exit.await {
                let _ = tx.send((d, pid, status));
            }
        });
        tracing::info!(daemon = d.name(), pid, "started");
        self.running.insert(d, Running { pid });
        self.daemon_state(d, Some(pid), "running", None);
        Ok(pid)
    }

    /// Brings the node up and supervises it until a stop signal or a daemon's death.
    pub async fn run(mut self) -> Result<(), RunError> {
        // The directories exist and were checked (`fsguard::prepare_layout`) before the lock.
        let l = &self.cfg.layout;
        // Up before the first stage, so startup and liveness probes answer during the start.
        let (mut server, mut bound) = control::serve(
            &l.control_sock(),
            self.snap.subscribe(),
            self.handover_tx.clone(),
        )
        .map_err(|e| stage_err("control socket")(&e))?;
        let (outcome, stop) = loop {
            let outcome = self.start_and_supervise().await;
            let stop = self.stop_everything().await;
            match outcome {
                Interrupt::HandOver(reply, saved, successor) => {
                    // The new instance owns the socket path from now on: leave it alone, and
                    // let it take the instance lock as soon as it has our answer.
                    if let Some(lock) = self.lock.take() {
                        crate::host::instance::release(lock);
                    }
                    let _ = reply.send(Ok(
                        serde_json::json!({ "stopped_cleanly": stop, "saved": saved }),
                    ));
                    tracing::info!(
                        clean = stop,
                        "handed the node over; watching for the successor to confirm"
                    );
                    match self
                        .after_handover(successor, &mut server, &mut bound)
                        .await
                    {
                        Some(sig) => break (Interrupt::Stop(sig), stop),
                        // Took the node back: start it again, holding the lock again.
                        None => match self.retake_lock().await {
                            Ok(()) => continue,
                            Err(sig) => break (Interrupt::Stop(sig), stop),
                        },
                    }
                }
                other => {
                    control::remove_if_ours(&self.cfg.layout.control_sock(), bound);
                    break (other, stop);
                }
            }
        };
        server.abort();
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
            Interrupt::HandOver(..) => Ok(()),
            Interrupt::CrashLoop {
                daemon,
                restarts,
                window,
                statuses,
            } => Err(RunError::CrashLoop {
                daemon: daemon.name(),
                restarts,
                window,
                statuses,
            }),
        }
    }

    async fn start_and_supervise(&mut self) -> Interrupt {
        if let Err(i) = self.start().await {
            if let Interrupt::Died(d, pid, st) = &i {
                tracing::error!(daemon = d.name(), pid, status = %st, "daemon exited during start");
                self.running.remove(d);
                self.daemon_state(*d, None, "exited", Some(*st));
            }
            return i;
        }
        // A first verdict before `started`, so no probe ever sees "pending" after the start.
        let snap = self.snapshot_for_check();
        let first = probe::check(
            &self.cfg.layout,
            &snap,
            self.health_timeout(),
            control::unix_ms,
        )
        .await;
        self.marker(first.readiness.ok);
        self.snap.send_modify(|s| {
            s.stage = "ready".into();
            s.started = true;
            s.health = Some(first);
        });
        let total = self.started.elapsed().as_millis();
        let timeline: Vec<String> = self
            .snap
            .borrow()
            .timeline
            .iter()
            .map(|(s, ms)| format!("{s}={ms}ms"))
            .collect();
        let timeline = timeline.join(" ");
        match &self.snap.borrow().health {
            Some(h) if !h.readiness.ok => tracing::warn!(
                started_ms = total as u64,
                %timeline,
                "node started, not ready: {}",
                h.readiness.reason
            ),
            _ => tracing::info!(ready_ms = total as u64, %timeline, "node ready"),
        }
        self.supervise().await
    }
}

//! Supervision after the start: health checks, restarts of crashed or hung daemons, signals.
//!
//! Invariants: every decision comes from [`crate::daemon::policy::Track`]; this file only carries it
//! out. A restart is spawned when its backoff expires and counts as recovered only when the
//! daemon answers again (checked by a task, so the loop keeps handling signals and other
//! exits meanwhile); an exit or readiness report from a process that is no longer the current
//! one is ignored. A restarted ovsdb-server gets our settings again (the database may have
//! been recreated); vswitchd and ovn-controller reconnect to it by themselves.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tokio::sync::mpsc;

use super::{connect_when_up, controller_answering, Interrupt, SigEvent, Supervisor};
use crate::daemon::policy::Decision;
use crate::daemon::Daemon;
use crate::{confdb, control, ovs::openflow, ovs::ovsdb, ovs::unixctl, settings, status::probe};

type Ready = (Daemon, i32, Result<(), String>);

/// Health-check period while the node recovers from a restart, and for how long at most.
const RECOVERY_RECHECK: Duration = Duration::from_millis(100);
const RECOVERY_WINDOW: Duration = Duration::from_secs(10);

impl Supervisor {
    /// Runs until a stop signal or a crash loop.
    pub(super) async fn supervise(&mut self) -> Interrupt {
        let mut tick = tokio::time::interval(self.cfg.health_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.reset();
        // Checks run as their own task so a hung daemon never delays signals or exits here.
        let (checked_tx, mut checked) = mpsc::channel(1);
        let mut in_flight = false;
        let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<Ready>();
        let mut pending: BTreeMap<Daemon, Instant> = BTreeMap::new();
        let mut down_since: BTreeMap<Daemon, Instant> = BTreeMap::new();
        // Exits we asked for (a TLS reload): restarted at once, not counted as crashes.
        let mut planned: std::collections::BTreeSet<Daemon> = Default::default();
        let mut tls = self.tls_watch();
        // After a restart, clients of the restarted daemon reconnect on their own backoff:
        // check often until the node is ready again, so probes see it as soon as it is.
        let mut recovering_until: Option<Instant> = None;
        loop {
            let next = pending.values().min().copied();
            tokio::select! {
                _ = tick.tick(), if !in_flight => {
                    self.rewrite_deleted_db().await;
                    in_flight = true;
                    let (layout, snap, t, tx) = (self.cfg.layout.clone(), self.snapshot_for_check(), self.health_timeout(), checked_tx.clone());
                    tokio::spawn(async move {
                        let _ = tx.send(probe::check(&layout, &snap, t, control::unix_ms).await).await;
                    });
                }
                Some(h) = checked.recv() => {
                    in_flight = false;
                    let ready = h.readiness.ok;
                    self.on_health(h);
                    match recovering_until {
                        Some(until) if !ready && Instant::now() < until => tick.reset_after(RECOVERY_RECHECK),
                        _ => recovering_until = None,
                    }
                }
                _ = tokio::time::sleep_until(next.unwrap_or_else(Instant::now).into()), if next.is_some() => {
                    let now = Instant::now();
                    let due: Vec<Daemon> = pending.iter().filter(|(_, t)| **t <= now).map(|(d, _)| *d).collect();
                    for d in due {
                        pending.remove(&d);
                        if let Err(e) = self.restart(d, ready_tx.clone()).await {
                            tracing::error!(daemon = d.name(), "restart failed: {e}");
                            // Counts as another exit: the policy decides whether to go on.
                            if let Some(i) = self.decide(d, crate::process::ExitStatus::Exited(-1), &mut pending) {
                                return i;
                            }
                        }
                    }
                }
                Some((d, pid, result)) = ready_rx.recv() => {
                    if self.running.get(&d).map(|r| r.pid) != Some(pid) {
                        continue;
                    }
                    match result {
                        Ok(()) => {
                            let took = down_since.remove(&d).map(|t| t.elapsed().as_millis() as u64);
                            tracing::info!(daemon = d.name(), pid, recovered_ms = took, "restarted and answering");
                            self.track(d).on_ready(Instant::now());
                            self.daemon_state(d, Some(pid), "running", None);
                            // Probes answer from the last check: refresh it now, not a tick later.
                            tick.reset_immediately();
                            recovering_until = Some(Instant::now() + RECOVERY_WINDOW);
                        }
                        Err(e) => {
                            tracing::error!(daemon = d.name(), pid, "restarted but not answering: {e}; killing it");
                            self.reaper.signal(pid, Signal::SIGKILL, true);
                        }
                    }
                }
                ev = self.signals.next() => match ev {
                    SigEvent::Stop(s) => return Interrupt::Stop(s),
                    SigEvent::Hup => super::stop::reopen_logs(&self.cfg, &self.running).await,
                    SigEvent::Other(s) => tracing::info!(signal = s, "ignored: only SIGTERM, SIGINT and SIGHUP mean anything here"),
                },
                changed = async {
                    match tls.as_mut() {
                        Some(w) => w.changed().await,
                        None => std::future::pending().await,
                    }
                } => match changed {
                    Ok(files) => {
                        let d = Daemon::OvnController;
                        tracing::info!(?files, "TLS files changed; restarting ovn-controller gracefully");
                        if let Some(pid) = self.running.get(&d).map(|r| r.pid) {
                            planned.insert(d);
                            let ctl = probe::ctl_of(&self.cfg.layout, d, Some(pid));
                            let sent = match ctl {
                                Some(ctl) => unixctl::call(&ctl, "exit", d.exit_args(), Duration::from_secs(2)).await.is_ok(),
                                None => false,
                            };
                            if !sent {
                                self.reaper.signal(pid, Signal::SIGTERM, true);
                            }
                        }
                    }
                    Err(e) => {
                        tracing::error!("TLS watch failed: {e}; no longer watching");
                        tls = None;
                    }
                },
                Some(req) = self.handover_rx.recv() => {
                    let saved = if self.running.contains_key(&Daemon::Vswitchd) {
                        match crate::takeover::save(self.reaper, &self.cfg.layout).await {
                            Ok(s) => {
                                tracing::info!(flows = s.flow_count, "saved br-int flows for the next instance");
                                Some(s)
                            }
                            Err(e) => {
                                tracing::warn!("cannot save br-int flows: {e}; handing over without them");
                                None
                            }
                        }
                    } else {
                        None
                    };
                    return Interrupt::HandOver(req.reply, saved, req.successor);
                }
                Some((d, pid, st)) = self.exits.recv() => {
                    if self.running.get(&d).map(|r| r.pid) != Some(pid) {
                        continue;
                    }
                    self.running.remove(&d);
                    down_since.entry(d).or_insert_with(Instant::now);
                    if planned.remove(&d) {
                        tracing::info!(daemon = d.name(), status = %st, "stopped for a planned restart");
                        self.daemon_state(d, None, "restarting", Some(st));
                        pending.insert(d, Instant::now());
                        continue;
                    }
                    if let Some(i) = self.decide(d, st, &mut pending) {
                        return i;
                    }
                }
            }
        }
    }

    /// conf.db deleted under the live ovsdb-server: written again from its memory before
    /// anything restarts it (a restart would create an empty one).
    async fn rewrite_deleted_db(&self) {
        let d = Daemon::OvsdbServer;
        let Some(pid) = self.running.get(&d).map(|r| r.pid) else {
            return;
        };
        let l = &self.cfg.layout;
        if let Some(ctl) = probe::ctl_of(l, d, Some(pid)) {
            crate::confdb::guard::rewrite_if_deleted(&ctl, &l.conf_db(), self.health_timeout())
                .await;
        }
    }

    /// With `ENABLE_SSL`, watches the TLS files ovn-controller reads.
    fn tls_watch(&self) -> Option<crate::host::tlswatch::TlsWatch> {
        if !self.cfg.ssl {
            return None;
        }
        let dir = &self.cfg.tls_dir;
        match crate::host::tlswatch::TlsWatch::new(
            dir,
            &["key", "cert", "cacert"],
            Duration::from_millis(500),
        ) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(
                    "cannot watch TLS files in {}: {e}; certificate rotation needs a restart",
                    dir.display()
                );
                None
            }
        }
    }

    fn track(&mut self, d: Daemon) -> &mut crate::daemon::policy::Track {
        self.tracks.entry(d).or_default()
    }

    /// Applies the policy to an exit; `Some` ends supervision (crash loop).
    fn decide(
        &mut self,
        d: Daemon,
        st: crate::process::ExitStatus,
        pending: &mut BTreeMap<Daemon, Instant>,
    ) -> Option<Interrupt> {
        let policy = self.cfg.restart;
        let now = Instant::now();
        match self.track(d).on_exit(&policy, st, now, fastrand::f64()) {
            Decision::RestartIn(delay) => {
                let restarts = self.track(d).restarts;
                tracing::warn!(daemon = d.name(), status = %st, restart_in_ms = delay.as_millis() as u64, restarts, "daemon exited; restarting");
                self.daemon_state(d, None, "restarting", Some(st));
                self.snap.send_modify(|s| {
                    if let Some(i) = s.daemons.iter_mut().find(|i| i.name == d.name()) {
                        i.restarts = restarts;
                    }
                });
                pending.insert(d, now + delay);
                None
            }
            Decision::GiveUp { restarts, window } => {
                let statuses: Vec<String> = self
                    .tracks
                    .iter()
                    .filter_map(|(d, t)| t.last_exit.map(|e| format!("{}: {e}", d.name())))
                    .collect();
                tracing::error!(daemon = d.name(), restarts, ?window, "crash loop; stopping");
                self.daemon_state(d, None, "exited", Some(st));
                Some(Interrupt::CrashLoop {
                    daemon: d,
                    restarts,
                    window,
                    statuses: statuses.join(", "),
                })
            }
        }
    }

    /// A health check's results: publish, update the marker, kill what hung too long.
    fn on_health(&mut self, h: crate::control::Health) {
        let was = self.snap.borrow().health.clone();
        let pairs = [
            ("liveness", &h.liveness, was.as_ref().map(|w| w.liveness.ok)),
            (
                "readiness",
                &h.readiness,
                was.as_ref().map(|w| w.readiness.ok),
            ),
        ];
        for (kind, v, old) in pairs {
            if old != Some(v.ok) {
                if v.ok {
                    tracing::info!(check = kind, "{}", v.reason);
                } else {
                    tracing::warn!(check = kind, "{}", v.reason);
                }
            }
        }
        let now = Instant::now();
        let policy = self.cfg.restart;
        let running: Vec<(Daemon, i32)> = self
            .running
            .iter()
            .filter(|(d, _)| {
                self.snap
                    .borrow()
                    .daemon(d.name())
                    .is_some_and(|i| i.state == "running")
            })
            .map(|(d, r)| (*d, r.pid))
            .collect();
        for (d, pid) in running {
            let answered = !h.unresponsive.iter().any(|n| n == d.name());
            if self.track(d).on_health(&policy, answered, now) {
                tracing::error!(
                    daemon = d.name(),
                    pid,
                    hung_after_ms = policy.hung_after.as_millis() as u64,
                    "not answering; killing it to restart it"
                );
                self.reaper.signal(pid, Signal::SIGKILL, true);
            }
        }
        self.marker(h.readiness.ok);
        self.snap.send_modify(|s| s.health = Some(h));
    }

    /// Spawns `d` again and starts the task that reports when it answers.
    async fn restart(
        &mut self,
        d: Daemon,
        ready: mpsc::UnboundedSender<Ready>,
    ) -> Result<(), String> {
        let l = self.cfg.layout.clone();
        let db = match d {
            Daemon::OvsdbServer => Some((
                l.conf_db(),
                self.cfg.vswitch_schema.clone(),
                "OVS_PKGDATADIR",
            )),
            Daemon::SbServer => Some((l.sb_db(), self.cfg.sb_schema.clone(), "OVN_PKGDATADIR")),
            _ => None,
        };
        if let Some((db, schema, var)) = db {
            if !db.exists() {
                tracing::warn!(db = %db.display(), "database missing; creating it again");
                confdb::ensure_db(self.reaper, &db, &schema, var)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        let pid = self.spawn(d).map_err(|e| e.to_string())?;
        self.daemon_state(d, Some(pid), "restarting", None);
        let at = control::unix_ms();
        self.snap.send_modify(|s| {
            if let Some(i) = s.daemons.iter_mut().find(|i| i.name == d.name()) {
                i.restarted_at_ms = Some(at);
            }
        });
        let cfg = self.cfg.clone();
        let owned = self.owned.clone();
        tokio::spawn(async move {
            let deadline = Instant::now() + cfg.stage_deadline;
            let result = answering(&cfg, owned.as_ref(), d, pid, deadline).await;
            let _ = ready.send((d, pid, result));
        });
        Ok(())
    }
}

/// Waits until a restarted daemon does its job again.
async fn answering(
    cfg: &crate::config::Config,
    owned: Option<&settings::Owned>,
    d: Daemon,
    spawned: i32,
    deadline: Instant,
) -> Result<(), String> {
    let l = &cfg.layout;
    let left = || deadline.saturating_duration_since(Instant::now());
    match d {
        Daemon::SbServer => {
            let c = connect_when_up(&l.sb_sock(), deadline).await?;
            settings::init_southbound(&c, left())
                .await
                .map_err(|e| e.to_string())
        }
        Daemon::OvsdbServer => {
            let c = connect_when_up(&l.db_sock(), deadline).await?;
            ovsdb::list_dbs(&c, left())
                .await
                .map_err(|e| e.to_string())?;
            if let Some(ctl) = probe::ctl_of(l, d, Some(spawned)) {
                let t = left().min(Duration::from_secs(2));
                if let Err(e) = crate::kubeovn_compat::ovsdb_server_setup(&ctl, t).await {
                    tracing::warn!("{e}");
                }
            }
            match owned {
                Some(o) => settings::apply(&c, cfg, o, left())
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                None => Ok(()),
            }
        }
        Daemon::Vswitchd => openflow::wait_ready(
            &l.mgmt_sock(settings::BRIDGE),
            cfg.mgmt_backoff,
            deadline,
            Duration::from_secs(1),
        )
        .await
        .map(|_| ())
        .map_err(|e| e.to_string()),
        Daemon::OvnController => controller_answering(cfg, spawned, deadline)
            .await
            .map(|_| ()),
    }
}

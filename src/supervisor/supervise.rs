//! Supervision after the start: health checks, restarts of crashed or hung daemons, signals.
//!
//! Invariants: every decision comes from the daemon's [`Slot`](crate::daemon::state::Slot)
//! (`(state, event, now) → action`); this file only carries it out. A restart is spawned when its backoff expires and counts as recovered only when the
//! daemon answers again (checked by a task, so the loop keeps handling signals and other
//! exits meanwhile); an exit or readiness report from a process that is no longer the current
//! one is ignored. A restarted ovsdb-server gets our settings again (the database may have
//! been recreated); vswitchd and ovn-controller reconnect to it by themselves.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tokio::sync::mpsc;

use super::signals::SigEvent;
use super::{Interrupt, StageError, Supervisor};
use crate::daemon::state::{Action, Event};
use crate::daemon::wait::Answering;
use crate::daemon::Daemon;
use crate::dataplane::restore_wait;
use crate::status::check;
use crate::{confdb, settings};

/// What the loop does after an action was carried out.
pub(super) enum After {
    Continue,
    /// A restarted daemon answers again: check the node now, and often for a while.
    Recovered,
    End(Interrupt),
}

/// A background task that ends with its owner.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Health-check period while the node recovers from a restart, and for how long at most.
const RECOVERY_RECHECK: Duration = Duration::from_millis(100);
const RECOVERY_WINDOW: Duration = Duration::from_secs(10);

/// What a handover leaves the successor: br-int's table saved, or only how many flows it held
/// (the successor keeps the datapath's flows instead).
#[derive(Debug, Default)]
pub(super) struct Handed {
    pub(super) saved: Option<crate::dataplane::flows::SavedFlows>,
    pub(super) table_flows: Option<usize>,
}

impl Supervisor {
    /// Runs until a stop signal or a crash loop.
    pub(super) async fn supervise(&mut self) -> Interrupt {
        let mut tick = tokio::time::interval(self.cfg.health_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.reset();
        // Checks run as their own task so a hung daemon never delays signals or exits here.
        let (checked_tx, mut checked) = mpsc::channel(1);
        let mut in_flight = false;
        let mut tls = super::tls::Watch::new(&self.cfg);
        let _firewall = self.keep_firewall();
        // After a restart, clients of the restarted daemon reconnect on their own backoff:
        // check often until the node is ready again, so probes see it as soon as it is.
        let mut recovering_until: Option<Instant> = None;
        loop {
            let next = self.slots.values().filter_map(|s| s.restart_at).min();
            let after = tokio::select! {
                _ = tick.tick(), if !in_flight => {
                    self.keep_run_files();
                    self.rewrite_deleted_db().await;
                    in_flight = true;
                    self.spawn_check(checked_tx.clone());
                    After::Continue
                }
                Some(h) = checked.recv() => {
                    in_flight = false;
                    let ready = h.readiness.ok;
                    self.on_health(h);
                    match recovering_until {
                        Some(until) if !ready && Instant::now() < until => tick.reset_after(RECOVERY_RECHECK),
                        _ => recovering_until = None,
                    }
                    After::Continue
                }
                _ = tokio::time::sleep_until(next.unwrap_or_else(Instant::now).into()), if next.is_some() => {
                    self.restart_due().await
                }
                Some(r) = self.ready_rx.recv() => self.back_in_service(r),
                ev = self.signals.next() => self.on_signal(ev).await,
                files = tls.changed() => {
                    self.reload_tls(files).await;
                    After::Continue
                }
                Some(req) = self.handover_rx.recv() => {
                    let handed = match req.save {
                        true => Handed {
                            saved: self.save_for_successor().await,
                            table_flows: None,
                        },
                        false => Handed {
                            saved: None,
                            table_flows: self.count_for_successor().await,
                        },
                    };
                    After::End(Interrupt::HandOver(req.reply, Box::new(handed), req.successor))
                }
                Some(req) = self.uninstall_rx.recv() => After::End(Interrupt::Uninstall(req.reply)),
                Some((d, pid, status)) = self.exits.recv() => self.carry_out(d, Event::Exited { pid, status }),
            };
            match after {
                After::Continue => {}
                After::Recovered => {
                    // Probes answer from the last check: refresh it now, not a tick later.
                    tick.reset_immediately();
                    recovering_until = Some(Instant::now() + RECOVERY_WINDOW);
                }
                After::End(i) => {
                    // Whatever ends the loop stops our daemons (a handover's successor then
                    // starts its own on the same sockets): the flag's task must not outlive it.
                    if let Some(t) = self.clearing.take() {
                        t.abort();
                    }
                    return i;
                }
            }
        }
    }

    /// Keeps the tunnel port rule in the background while this loop runs (aborted when it
    /// returns: the stop, a hand-over).
    fn keep_firewall(&self) -> Option<AbortOnDrop> {
        let every = self.cfg.firewall_recheck?;
        let k = crate::host::firewall::keep::Keep {
            tunnel: self.cfg.tunnel,
            families: crate::host::prep::families(self.cfg.firewall_ipv6, &self.cfg.host_root),
            every,
            failing: self.firewall_failing(),
        };
        let task = crate::host::firewall::keep::keep(self.reaper, k, self.firewall_report());
        Some(AbortOnDrop(tokio::spawn(task)))
    }

    async fn on_signal(&self, ev: SigEvent) -> After {
        match ev {
            SigEvent::Stop(s) => return After::End(Interrupt::Stop(s)),
            SigEvent::Hup => self.reopen_logs().await,
            SigEvent::Other(s) => {
                tracing::info!(signal = s, "ignored: SIGUSR1 and SIGUSR2 mean nothing here")
            }
        }
        After::Continue
    }

    /// Applies `event` to `d` and carries out what its slot decides.
    pub(super) fn carry_out(&mut self, d: Daemon, event: Event) -> After {
        let planned = self.slots.get(&d).is_some_and(|s| s.planned);
        match self.event(d, event) {
            Action::Ignore | Action::Recorded => After::Continue,
            Action::RestartAt(at) => {
                let slot = &self.slots[&d];
                let restarts = slot.track.restarts;
                let status = slot.last_exit.map(|e| e.to_string()).unwrap_or_default();
                let restart_in_ms = at.saturating_duration_since(Instant::now()).as_millis() as u64;
                if planned {
                    tracing::info!(daemon = d.name(), %status, "stopped for a planned restart");
                } else {
                    tracing::warn!(daemon = d.name(), %status, restart_in_ms, restarts, "daemon exited; restarting");
                }
                After::Continue
            }
            Action::Kill(pid) => {
                let hung_after_ms = self.cfg.restart.hung_after.as_millis() as u64;
                tracing::error!(
                    daemon = d.name(),
                    pid,
                    hung_after_ms,
                    busy_limit_ms = self.cfg.restart.busy_limit.as_millis() as u64,
                    "not answering; killing it to restart it"
                );
                self.reaper.signal(pid, Signal::SIGKILL, true);
                After::Continue
            }
            Action::Busy => {
                let busy_limit_ms = self.cfg.restart.busy_limit.as_millis() as u64;
                tracing::warn!(
                    daemon = d.name(),
                    pid = self.pid(d),
                    busy_limit_ms,
                    "not answering while its main thread computes; leaving it be"
                );
                After::Continue
            }
            Action::NoLongerBusy { silent_for } => {
                let silent_ms = silent_for.map(|t| t.as_millis() as u64);
                tracing::info!(
                    daemon = d.name(),
                    silent_ms,
                    "answering again after being busy"
                );
                After::Continue
            }
            Action::Recovered { down_for } => {
                let pid = self.pid(d);
                let recovered_ms = down_for.map(|t| t.as_millis() as u64);
                tracing::info!(
                    daemon = d.name(),
                    pid,
                    recovered_ms,
                    "restarted and answering"
                );
                After::Recovered
            }
            Action::GiveUp { restarts, window } => {
                let statuses: Vec<String> = (self.slots.iter())
                    .filter_map(|(d, s)| s.track.last_exit.map(|e| format!("{}: {e}", d.name())))
                    .collect();
                let exits: Vec<String> = (self.slots.get(&d).into_iter())
                    .flat_map(|s| s.track.exits.iter().map(|e| e.to_string()))
                    .collect();
                tracing::error!(daemon = d.name(), restarts, ?window, "crash loop; stopping");
                After::End(Interrupt::CrashLoop {
                    daemon: d,
                    restarts,
                    window,
                    exits: exits.join(", "),
                    statuses: statuses.join(", "),
                })
            }
        }
    }

    /// A (re)started process reports: answering (and, for vswitchd, the datapath's flows
    /// handed back to it), or not — then it is killed and restarted.
    fn back_in_service(&mut self, r: super::Ready) -> After {
        let (d, pid, result) = (r.daemon, r.pid, r.result);
        if self.pid(d) != Some(pid) {
            return After::Continue;
        }
        if let Some(t) = r.restored_late {
            self.record_restored(t);
        }
        if d == Daemon::Vswitchd {
            self.snap.send_modify(|s| s.flow_restore_wait = false);
            self.takeover_settled();
        }
        let Err(e) = result else {
            // Probes answer from the last check: refresh it now, after a restart or after a
            // start that waited for br-int's table (no `Recovered` action then) alike.
            return match self.carry_out(d, Event::Answering { pid }) {
                After::Continue => After::Recovered,
                other => other,
            };
        };
        tracing::error!(
            daemon = d.name(),
            pid,
            "restarted but not in service: {e}; killing it"
        );
        self.carry_out(d, Event::NeverAnswered { pid })
    }

    /// Spawns every daemon whose restart is due; a failed spawn counts as another exit.
    async fn restart_due(&mut self) -> After {
        let now = Instant::now();
        let due: Vec<Daemon> = (self.slots.iter())
            .filter(|(_, s)| s.restart_at.is_some_and(|t| t <= now))
            .map(|(d, _)| *d)
            .collect();
        for d in due {
            if let Err(e) = self.restart(d).await {
                tracing::error!(daemon = d.name(), "restart failed: {e}");
                if let After::End(i) = self.carry_out(d, Event::SpawnFailed) {
                    return After::End(i);
                }
            }
        }
        After::Continue
    }

    /// How many flows br-int holds, for a successor that keeps the datapath's flows instead of
    /// a saved table: it holds flow-restore-wait until ovn-controller's table is about as big
    /// (one aggregate request, whatever the table's size).
    async fn count_for_successor(&self) -> Option<usize> {
        self.pid(Daemon::Vswitchd)?;
        match crate::dataplane::flows::flow_count(self.reaper, &self.cfg.layout).await {
            Ok(n) => {
                tracing::info!(flows = n, "not saving br-int's table: the next instance keeps the datapath's flows instead (OVS_OVN_SUPERVISOR_TAKEOVER_FLOWS=keep)");
                Some(n)
            }
            Err(e) => {
                tracing::warn!("cannot count br-int's flows for the next instance: {e}");
                None
            }
        }
    }

    /// br-int's flows and groups, saved for the instance we hand the node over to.
    async fn save_for_successor(&self) -> Option<crate::dataplane::flows::SavedFlows> {
        self.pid(Daemon::Vswitchd)?;
        let t0 = Instant::now();
        match crate::dataplane::flows::save(self.reaper, &self.cfg.layout).await {
            Ok(s) => {
                let elapsed_ms = t0.elapsed().as_millis() as u64;
                tracing::info!(
                    flows = s.flow_count(),
                    form = s.form(),
                    elapsed_ms,
                    "saved br-int flows for the next instance"
                );
                Some(s)
            }
            Err(e) => {
                tracing::error!(
                    "cannot save br-int flows for the next instance: {e}; handing over without them (it keeps the datapath's flows instead)"
                );
                None
            }
        }
    }

    /// conf.db deleted under the live ovsdb-server: written again from its memory before
    /// anything restarts it (a restart would create an empty one).
    async fn rewrite_deleted_db(&self) {
        let d = Daemon::OvsdbServer;
        let Some(pid) = self.pid(d) else {
            return;
        };
        let l = &self.cfg.layout;
        if let Some(ctl) = check::ctl_of(l, d, Some(pid)) {
            confdb::guard::rewrite_if_deleted(&ctl, &l.conf_db(), self.health_timeout()).await;
        }
    }

    /// Spawns `d` again and starts the task that reports when it answers.
    async fn restart(&mut self, d: Daemon) -> Result<(), StageError> {
        let l = &self.cfg.layout;
        let db = match d {
            Daemon::OvsdbServer => Some((l.conf_db(), &self.cfg.vswitch_schema, "OVS_PKGDATADIR")),
            Daemon::SbServer => Some((l.sb_db(), &self.cfg.sb_schema, "OVN_PKGDATADIR")),
            _ => None,
        };
        if let Some((db, schema, var)) = db {
            if !db.exists() {
                tracing::warn!(db = %db.display(), "database missing; creating it again");
                confdb::ensure_db(self.reaper, &db, schema, var).await?;
            }
        }
        let keep = d == Daemon::Vswitchd && self.keep_datapath_flows().await;
        let pid = self.spawn(d, true)?;
        let (cfg, owned, reaper) = (self.cfg.clone(), self.owned.clone(), self.reaper);
        let ready = self.ready_tx.clone();
        tokio::spawn(async move {
            let mut result = serving(&cfg, owned.as_ref(), d, pid).await;
            if keep && result.is_ok() {
                result = restore_wait::clear_after_start(&cfg, reaper, 0, None)
                    .await
                    .map(|_| ())
                    .map_err(StageError::from);
            }
            let _ = ready.send(super::Ready::new(d, pid, result));
        });
        Ok(())
    }
}

/// Waits until a restarted daemon answers ([`Daemon::wait_answering`], as at the start) and
/// gives it back what it lost: the Southbound's first rows, our settings in a recreated
/// conf.db, ovsdb-server's log levels.
async fn serving(
    cfg: &crate::config::Config,
    owned: Option<&settings::Owned>,
    d: Daemon,
    spawned: i32,
) -> Result<(), StageError> {
    let deadline = Instant::now() + d.answer_budget(cfg);
    let left = || deadline.saturating_duration_since(Instant::now());
    let answer = d.wait_answering(cfg, spawned).await?;
    let Answering::Database(c) = answer else {
        return Ok(());
    };
    if d == Daemon::SbServer {
        return Ok(settings::init_southbound(&c, left()).await?);
    }
    if let Some(ctl) = check::ctl_of(&cfg.layout, d, Some(spawned)) {
        let t = left().min(Duration::from_secs(2));
        if let Err(e) = crate::kubeovn_compat::ovsdb_server_setup(&ctl, t).await {
            tracing::warn!("{e}");
        }
    }
    if let Some(o) = owned {
        settings::apply(&c, cfg, o, left()).await?;
    }
    Ok(())
}

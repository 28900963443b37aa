//! The start stages of [`super::Supervisor`], in order: (takeover of `ovs-ctl` daemons),
//! conf.db, the embedded Southbound, ovsdb-server, the settings transaction, ovs-vswitchd,
//! br-int.mgmt, (restored flows), ovn-controller, (flows settled).
//!
//! Invariants: every stage runs through [`Supervisor::stage`], so it has a deadline and is
//! raced against stop signals and daemon exits; a daemon's stage ends when it answers
//! ([`Daemon::wait_answering`], the same wait the restart path uses); ovn-controller is spawned
//! only after `br-int.mgmt` completed an OpenFlow exchange; the start never depends on the OVN
//! Southbound (it waits [`SOUTHBOUND_GRACE`] at most for ovn-controller to connect, then goes
//! on without it).

use std::time::{Duration, Instant};

use super::stage::Stage;
use super::{Interrupt, Supervisor};
use crate::config::{Config, TakeoverFlows};
use crate::daemon::state::Event;
use crate::daemon::wait::{controller_connected_by, Answering};
use crate::daemon::Daemon;
use crate::dataplane::restore_wait;
use crate::ovs::jsonrpc::Client;
use crate::{confdb, settings, settings::tuning};

pub(super) mod steps;

/// Whether a table handed over waits for ovn-controller's instead of going in at once: asked
/// to (`keep-or-restore`), with the flag set so that the datapath's flows forward meanwhile.
fn restores_late(cfg: &Config, kept: bool) -> bool {
    kept && cfg.takeover_flows == TakeoverFlows::KeepOrRestore
}

/// How long the start waits for ovn-controller to reach the Southbound before it goes on
/// without it.
const SOUTHBOUND_GRACE: Duration = Duration::from_secs(2);

impl Supervisor {
    pub(super) async fn start(&mut self) -> Result<(), Interrupt> {
        let cfg = self.cfg.clone();
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            node = %cfg.hostname,
            pod = cfg.pod.as_deref().unwrap_or("-"),
            sandbox = ?cfg.layout.sandbox,
            net = ?self.net,
            ovn_remote = %cfg.southbound.remote,
            "starting"
        );
        for w in &cfg.warnings {
            tracing::warn!("{w}");
        }
        self.take_over_legacy().await?;
        let system_id = self.conf_db(&cfg).await?;
        if cfg.southbound.embedded {
            self.start_southbound(&cfg).await?;
        }
        let client = self.start_ovsdb_server(&cfg).await?;
        let next_cfg = self.settings(&cfg, &client, &system_id).await?;
        // Before vswitchd starts: with flows to keep it must neither flush nor process until
        // ovn-controller's table is complete.
        let keep = self.keep_flows(&cfg, &client).await?;
        let vswitchd = self.start_switch(&cfg, &client, next_cfg, keep).await?;
        self.start_controller(&cfg).await?;
        steps::restrict_files(&cfg.layout);
        let late = self.restore.take().filter(|_| restores_late(&cfg, keep));
        if keep {
            self.clear_flows_kept(vswitchd, late);
        }
        Ok(())
    }

    /// The system-id and the databases' files: created, checked, converted.
    async fn conf_db(&mut self, cfg: &Config) -> Result<String, Interrupt> {
        let (l, reaper) = (&cfg.layout, self.reaper);
        let stage = Stage {
            name: "conf.db",
            budget: cfg.stage_deadline,
            waiting_for: "ovsdb-tool to create, check or convert the database",
        };
        self.stage(stage, async {
            let (id, created) = confdb::ensure_system_id(&l.system_id_file())?;
            tracing::info!(system_id = %id, created, "system-id");
            let db = l.conf_db();
            let action =
                confdb::ensure_db(reaper, &db, &cfg.vswitch_schema, "OVS_PKGDATADIR").await?;
            tracing::info!(db = %db.display(), ?action, "conf.db");
            if cfg.southbound.embedded {
                confdb::ensure_db(reaper, &l.sb_db(), &cfg.sb_schema, "OVN_PKGDATADIR").await?;
            }
            Ok(id)
        })
        .await
    }

    /// Sets flow-restore-wait when there are flows to keep through the vswitchd start.
    async fn keep_flows(&mut self, cfg: &Config, client: &Client) -> Result<bool, Interrupt> {
        self.drop_unusable_flows();
        let (reaper, handed_over) = (self.reaper, self.restore.is_some());
        // The userspace datapath dies with vswitchd: nothing to keep but flows handed over, and
        // no stage of its own (only a flag left behind is cleared).
        if !handed_over && cfg.datapath_type != crate::config::DatapathType::System {
            return Ok(restore_wait::keep(cfg, reaper, client, false).await);
        }
        let stage = Stage {
            name: "flow-restore-wait",
            budget: cfg.stage_deadline,
            waiting_for: "ovs-dpctl to count the datapath's flows and ovsdb-server to set the flag",
        };
        let keep = self
            .stage(stage, async {
                Ok(restore_wait::keep(cfg, reaper, client, handed_over).await)
            })
            .await?;
        self.snap.send_modify(|s| s.flow_restore_wait = keep);
        Ok(keep)
    }

    /// Flows handed over that are not whole (a save cut short by a full disk) are not restored:
    /// the start goes on as without a handover, keeping the kernel datapath's flows.
    fn drop_unusable_flows(&mut self) {
        let Some(saved) = &self.restore else {
            return;
        };
        if self.cfg.takeover_flows == TakeoverFlows::Keep {
            // Asked not to save, an earlier release saves anyway.
            tracing::info!(
                "not restoring the table handed over (OVS_OVN_SUPERVISOR_TAKEOVER_FLOWS=keep): keeping the datapath's flows until ovn-controller's table is in"
            );
            self.restore = None;
            return;
        }
        if let Err(e) = crate::dataplane::flows::usable(saved) {
            tracing::error!(
                "not restoring the flows handed over: {e}; keeping the datapath's flows instead (flow-restore-wait), if it has any"
            );
            self.restore = None;
        }
    }

    /// The sandbox's embedded Southbound: answering, with its first rows.
    async fn start_southbound(&mut self, cfg: &Config) -> Result<(), Interrupt> {
        let d = Daemon::SbServer;
        let pid = self.spawn_or_fail(d)?;
        let stage = Stage {
            name: "southbound",
            budget: d.answer_budget(cfg) + cfg.stage_deadline,
            waiting_for: "the embedded Southbound to answer and take its first rows",
        };
        self.stage(stage, async {
            let c = database(d.wait_answering(cfg, pid).await?);
            Ok(settings::init_southbound(&c, cfg.stage_deadline).await?)
        })
        .await?;
        self.event(d, Event::Answering { pid });
        Ok(())
    }

    /// ovsdb-server, answering and serving `Open_vSwitch`; returns a connection to it.
    async fn start_ovsdb_server(&mut self, cfg: &Config) -> Result<Client, Interrupt> {
        let d = Daemon::OvsdbServer;
        let pid = self.spawn_or_fail(d)?;
        let stage = Stage {
            name: d.name(),
            budget: d.answer_budget(cfg),
            waiting_for: "db.sock to answer list_dbs",
        };
        let answer = self
            .stage(stage, async { Ok(d.wait_answering(cfg, pid).await?) })
            .await?;
        self.event(d, Event::Answering { pid });
        Ok(database(answer))
    }

    /// Threads from the CPU budget, then our settings in one transaction; returns the
    /// `next_cfg` vswitchd must reach.
    async fn settings(
        &mut self,
        cfg: &Config,
        client: &Client,
        system_id: &str,
    ) -> Result<i64, Interrupt> {
        let ovsdb_pid = self.pid(Daemon::OvsdbServer);
        let reaper = self.reaper;
        let stage = Stage {
            name: "settings",
            budget: cfg.stage_deadline,
            waiting_for: "ovsdb-server to commit the settings transaction",
        };
        let (next_cfg, owned) = self
            .stage(stage, async {
                let budget = tuning::read_cpu_budget(&cfg.host_root)?;
                let threads =
                    tuning::resolve(&budget, cfg.handler_threads, cfg.revalidator_threads);
                tracing::info!(
                    usable_cpus = budget.usable,
                    limit = budget.source,
                    handlers = threads.handlers,
                    revalidators = threads.revalidators,
                    "vswitchd threads"
                );
                let mut owned = settings::owned(cfg, system_id, threads);
                owned.columns = steps::identity_columns(cfg, ovsdb_pid).await;
                let next_cfg = settings::apply(client, cfg, &owned, cfg.stage_deadline).await?;
                steps::prune_underlay_bridges(reaper, client, cfg.stage_deadline).await;
                Ok((next_cfg, owned))
            })
            .await?;
        self.owned = Some(owned);
        Ok(next_cfg)
    }

    /// ovs-vswitchd: applied our settings, then br-int.mgmt answers OpenFlow; then the flows
    /// a predecessor handed over go back in. With the datapath's flows `kept`, it is in service
    /// only once the flag is cleared ([`Self::clear_flows_kept`]). Returns its pid.
    async fn start_switch(
        &mut self,
        cfg: &Config,
        client: &Client,
        next_cfg: i64,
        kept: bool,
    ) -> Result<i32, Interrupt> {
        let d = Daemon::Vswitchd;
        let pid = self.spawn_or_fail(d)?;
        let stage = Stage {
            name: "ovs-vswitchd",
            budget: cfg.stage_deadline,
            waiting_for: "ovs-vswitchd to apply the settings (cur_cfg to reach next_cfg)",
        };
        let dl = Instant::now() + cfg.stage_deadline;
        self.stage(stage, steps::wait_cur_cfg(client, next_cfg, dl))
            .await?;
        let stage = Stage {
            name: "br-int.mgmt",
            budget: d.answer_budget(cfg),
            waiting_for: "br-int.mgmt to complete an OpenFlow exchange",
        };
        self.stage(stage, async { Ok(d.wait_answering(cfg, pid).await?) })
            .await?;
        if !kept {
            self.event(d, Event::Answering { pid });
        }
        if let Some(saved) = &self.restore {
            if restores_late(cfg, kept) {
                tracing::info!(
                    flows = saved.flow_count(),
                    "keeping the datapath's flows: the table handed over goes in only if ovn-controller has put nothing in br-int when flow-restore-wait must be cleared (OVS_OVN_SUPERVISOR_TAKEOVER_FLOWS=keep-or-restore)"
                );
                return Ok(pid);
            }
        }
        if let Some(saved) = self.restore.clone() {
            let (l, reaper) = (&cfg.layout, self.reaper);
            let stage = Stage {
                name: "restore-flows",
                budget: cfg.stage_deadline,
                waiting_for: "ovs-vswitchd to take br-int's saved table (a bundle over br-int.mgmt, or ovs-ofctl for a text save)",
            };
            let restored = self
                .stage(stage, async {
                    match crate::dataplane::flows::restore(reaper, l, &saved).await {
                        Ok(t) => {
                            let (flows, groups, elapsed_ms) = (t.flows, t.groups, t.elapsed_ms);
                            let form = saved.form();
                            tracing::info!(
                                flows,
                                groups,
                                form,
                                elapsed_ms,
                                "restored br-int flows"
                            );
                            Ok(Some(t))
                        }
                        Err(e) => {
                            tracing::warn!("cannot restore br-int flows: {e}");
                            Ok(None)
                        }
                    }
                })
                .await?;
            if let Some(t) = restored {
                self.record_restored(t);
            }
        }
        Ok(pid)
    }

    /// ovn-controller: answering its control socket; connected to the Southbound within a
    /// short grace, or the node starts without it (readiness names the Southbound).
    async fn start_controller(&mut self, cfg: &Config) -> Result<(), Interrupt> {
        let d = Daemon::OvnController;
        let pid = self.spawn_or_fail(d)?;
        let remote = &cfg.southbound.remote;
        let stage = Stage {
            name: "ovn-controller",
            budget: d.answer_budget(cfg) + SOUTHBOUND_GRACE,
            waiting_for: "ovn-controller to answer on its control socket",
        };
        self.stage(stage, async move {
            let Answering::Controller { ctl } = d.wait_answering(cfg, pid).await? else {
                unreachable!("ovn-controller answers with its control socket");
            };
            // A reachable Southbound answers within milliseconds; an unreachable one must not
            // hold the start (the datapath keeps forwarding with the flows it has, and
            // readiness names the Southbound until ovn-controller connects).
            let grace = Instant::now() + SOUTHBOUND_GRACE.min(cfg.stage_deadline);
            if let Err(last) = controller_connected_by(&ctl, grace).await {
                tracing::warn!(
                    southbound = %remote,
                    "{last}; starting without it: the node is not ready until ovn-controller connects"
                );
            }
            Ok(())
        })
        .await?;
        self.event(d, Event::Answering { pid });
        Ok(())
    }

    /// Stops the `ovs-ctl`/`ovn-ctl` daemons found by host preparation, keeping br-int's flows
    /// for the restore path of a rolling-update takeover.
    async fn take_over_legacy(&mut self) -> Result<(), Interrupt> {
        let Some(old) = self.legacy.take() else {
            return Ok(());
        };
        let (cfg, reaper) = (self.cfg.clone(), self.reaper);
        let proc_root = cfg.host_root.join("proc");
        let save = cfg.takeover_flows != TakeoverFlows::Keep;
        let stage = Stage {
            name: "takeover",
            budget: crate::takeover::legacy::STOP_BUDGET,
            waiting_for: "the ovs-ctl/ovn-ctl daemons to hand over their flows and exit",
        };
        let saved = self
            .stage(stage, async {
                let saved =
                    crate::takeover::legacy::take_over(reaper, &cfg.layout, &proc_root, &old, save)
                        .await?;
                crate::host::prep::remove_stale(&cfg)?;
                Ok(saved)
            })
            .await?;
        if let Some(s) = &saved {
            self.record_saved(s.tally());
        }
        self.restore = saved;
        Ok(())
    }

    fn spawn_or_fail(&mut self, d: Daemon) -> Result<i32, Interrupt> {
        self.spawn(d, false).map_err(|e| {
            Interrupt::Failed(super::RunError::Stage {
                stage: d.name(),
                source: Box::new(e.into()),
            })
        })
    }
}

/// The connection a database server's wait answers with.
fn database(answer: Answering) -> Client {
    match answer {
        Answering::Database(c) => c,
        // `Daemon::wait_answering` of a database server always answers with its connection.
        other => unreachable!("a database server answered with {other:?}"),
    }
}

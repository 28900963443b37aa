//! The start stages of [`super::Supervisor`], in order: conf.db, the embedded Southbound,
//! ovsdb-server, the settings transaction, ovs-vswitchd, br-int.mgmt, ovn-controller.
//!
//! Invariants: every stage runs through `Supervisor::stage`, so it has a deadline and is raced
//! against stop signals and daemon exits; ovn-controller is spawned only after `br-int.mgmt`
//! completed an OpenFlow exchange; the start never depends on the OVN Southbound (it waits
//! [`SOUTHBOUND_GRACE`] at most for ovn-controller to connect, then goes on without it).

use std::time::{Duration, Instant};

use super::{
    connect_when_up, controller_answering, controller_connected, stage_err, Interrupt, RunError,
    Supervisor,
};
use crate::daemon::Daemon;
use crate::ovs::jsonrpc::Client;
use crate::process::Reaper;
use crate::{confdb, kubeovn_compat, ovs::openflow, ovs::ovsdb, settings, settings::tuning};
use std::path::Path;

/// How long the start waits for ovn-controller to reach the Southbound before it goes on
/// without it.
const SOUTHBOUND_GRACE: Duration = Duration::from_secs(2);

impl Supervisor {
    pub(super) async fn start(&mut self) -> Result<(), Interrupt> {
        let cfg = self.cfg.clone();
        let l = &cfg.layout;
        let deadline = || Instant::now() + cfg.stage_deadline;
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            node = %cfg.hostname,
            pod = cfg.pod.as_deref().unwrap_or("-"),
            sandbox = ?l.sandbox,
            net = ?self.net,
            ovn_remote = %cfg.southbound.remote,
            "starting"
        );
        for w in &cfg.warnings {
            tracing::warn!("{w}");
        }
        self.take_over_legacy().await?;
        let reaper = self.reaper;
        let system_id = self
            .stage("conf.db", async {
                let (id, created) = confdb::ensure_system_id(&l.system_id_file())
                    .map_err(|e| stage_err("conf.db")(&e))?;
                tracing::info!(system_id = %id, created, "system-id");
                let action =
                    confdb::ensure_db(reaper, &l.conf_db(), &cfg.vswitch_schema, "OVS_PKGDATADIR")
                        .await
                        .map_err(|e| stage_err("conf.db")(&e))?;
                tracing::info!(db = %l.conf_db().display(), ?action, "conf.db");
                if cfg.southbound.embedded {
                    confdb::ensure_db(reaper, &l.sb_db(), &cfg.sb_schema, "OVN_PKGDATADIR")
                        .await
                        .map_err(|e| stage_err("conf.db")(&e))?;
                }
                Ok(id)
            })
            .await?;

        if cfg.southbound.embedded {
            self.spawn(Daemon::SbServer).map_err(Interrupt::Failed)?;
            let dl = deadline();
            self.stage("southbound", async move {
                let c =
                    connect_when_up(&l.sb_sock(), dl)
                        .await
                        .map_err(|last| RunError::Deadline {
                            stage: "southbound",
                            deadline: cfg.stage_deadline,
                            last,
                        })?;
                settings::init_southbound(&c, cfg.stage_deadline)
                    .await
                    .map_err(|e| stage_err("southbound")(&e))
            })
            .await?;
        }

        self.spawn(Daemon::OvsdbServer).map_err(Interrupt::Failed)?;
        let dl = deadline();
        let client = self
            .stage("ovsdb-server", async move {
                let last = |last| RunError::Deadline {
                    stage: "ovsdb-server",
                    deadline: cfg.stage_deadline,
                    last,
                };
                let c = connect_when_up(&l.db_sock(), dl).await.map_err(last)?;
                let left = dl.saturating_duration_since(Instant::now());
                let dbs = ovsdb::list_dbs(&c, left)
                    .await
                    .map_err(|e| last(e.to_string()))?;
                if !dbs.iter().any(|d| d == "Open_vSwitch") {
                    return Err(stage_err("ovsdb-server")(&format!(
                        "serves {dbs:?}, not Open_vSwitch"
                    )));
                }
                Ok(c)
            })
            .await?;

        let ovsdb_pid = self.running.get(&Daemon::OvsdbServer).map(|r| r.pid);
        let (next_cfg, owned) = self
            .stage("settings", async {
                let budget = tuning::read_cpu_budget(&cfg.host_root)
                    .map_err(|e| stage_err("settings")(&e))?;
                let threads =
                    tuning::resolve(&budget, cfg.handler_threads, cfg.revalidator_threads);
                tracing::info!(
                    usable_cpus = budget.usable,
                    limit = budget.source,
                    handlers = threads.handlers,
                    revalidators = threads.revalidators,
                    "vswitchd threads"
                );
                let mut owned = settings::owned(&cfg, &system_id, threads);
                owned.columns = identity_columns(&cfg, ovsdb_pid).await;
                let next_cfg = settings::apply(&client, &cfg, &owned, cfg.stage_deadline)
                    .await
                    .map_err(|e| stage_err("settings")(&e))?;
                prune_underlay_bridges(reaper, &client, cfg.stage_deadline).await;
                Ok((next_cfg, owned))
            })
            .await?;
        self.owned = Some(owned);
        if self.restore.is_some() {
            // Before vswitchd starts: it must neither flush nor process until flows are back.
            self.stage("flow-restore-wait", async {
                set_flow_restore_wait(&client, true, cfg.stage_deadline).await
            })
            .await?;
        }

        self.spawn(Daemon::Vswitchd).map_err(Interrupt::Failed)?;
        let dl = deadline();
        self.stage(
            "ovs-vswitchd",
            wait_cur_cfg(&client, next_cfg, dl, cfg.stage_deadline),
        )
        .await?;

        let mgmt = l.mgmt_sock(settings::BRIDGE);
        let mgmt_deadline = Instant::now() + cfg.mgmt_deadline;
        self.stage("br-int.mgmt", async {
            openflow::wait_ready(
                &mgmt,
                cfg.mgmt_backoff,
                mgmt_deadline,
                Duration::from_secs(1),
            )
            .await
            .map(|_| ())
            .map_err(|e| stage_err("br-int.mgmt")(&e))
        })
        .await?;

        if let Some(saved) = self.restore.clone() {
            self.stage("restore-flows", async {
                match crate::takeover::restore(reaper, l, &saved).await {
                    Ok(()) => tracing::info!(flows = saved.flow_count, "restored br-int flows"),
                    Err(e) => tracing::warn!("cannot restore br-int flows: {e}"),
                }
                Ok(())
            })
            .await?;
        }
        let spawned = self
            .spawn(Daemon::OvnController)
            .map_err(Interrupt::Failed)?;
        let dl = deadline();
        let remote = &cfg.southbound.remote;
        let cfg = &cfg;
        let timeout = |last| RunError::Deadline {
            stage: "ovn-controller",
            deadline: cfg.stage_deadline,
            last,
        };
        self.stage("ovn-controller", async move {
            let ctl = controller_answering(cfg, spawned, dl)
                .await
                .map_err(|last| timeout(format!("{last} (remote {remote})")))?;
            // A reachable Southbound answers within milliseconds; an unreachable one must not
            // hold the start (the datapath keeps forwarding with the flows it has, and
            // readiness names the Southbound until ovn-controller connects).
            let grace = Instant::now() + SOUTHBOUND_GRACE.min(cfg.stage_deadline);
            if let Err(last) = controller_connected(&ctl, grace).await {
                tracing::warn!(
                    southbound = %remote,
                    "{last}; starting without it: the node is not ready until ovn-controller connects"
                );
            }
            Ok(())
        })
        .await?;
        // start-ovs.sh's `chmod 600 /etc/openvswitch/*`: conf.db, system-id.conf, backups.
        let mut dirs = vec![l.ovs_dbdir.clone()];
        dirs.extend(l.system_id_file().parent().map(Path::to_path_buf));
        dirs.dedup();
        for dir in dirs {
            for (path, e) in kubeovn_compat::restrict_files(&dir) {
                tracing::warn!(path = %path.display(), "cannot set mode 0600: {e}");
            }
        }
        if self.restore.take().is_some() {
            let dl = deadline();
            self.stage("flows-settled", async {
                match crate::takeover::settled(reaper, l, Duration::from_millis(50), 3, dl).await {
                    Ok(n) => tracing::info!(flows = n, "ovn-controller's flows are in"),
                    Err(e) => tracing::warn!("{e}; clearing flow-restore-wait anyway"),
                }
                set_flow_restore_wait(&client, false, cfg.stage_deadline).await
            })
            .await?;
        }
        Ok(())
    }
}

impl Supervisor {
    /// Stops the `ovs-ctl`/`ovn-ctl` daemons found by host preparation, keeping br-int's flows
    /// for the restore path of a rolling-update takeover.
    async fn take_over_legacy(&mut self) -> Result<(), Interrupt> {
        let Some(old) = self.legacy.take() else {
            return Ok(());
        };
        let (cfg, reaper) = (self.cfg.clone(), self.reaper);
        let proc_root = cfg.host_root.join("proc");
        let saved = self
            .stage("takeover", async {
                let saved =
                    crate::takeover::legacy::take_over(reaper, &cfg.layout, &proc_root, &old)
                        .await
                        .map_err(|e| stage_err("takeover")(&e))?;
                crate::host::prep::remove_stale(&cfg).map_err(|e| stage_err("takeover")(&e))?;
                Ok(saved)
            })
            .await?;
        self.restore = saved;
        Ok(())
    }
}

/// `ovs_version`, `db_version`, `system_type`, `system_version`, as ovs-ctl writes them; sets
/// ovsdb-server's log levels on the way (a failure is a warning: the node works without).
async fn identity_columns(
    cfg: &crate::config::Config,
    ovsdb_pid: Option<i32>,
) -> Vec<(String, String)> {
    let l = &cfg.layout;
    let version = match crate::status::probe::ctl_of(l, Daemon::OvsdbServer, ovsdb_pid) {
        Some(ctl) => kubeovn_compat::ovsdb_server_setup(&ctl, Duration::from_secs(2))
            .await
            .map_err(|e| tracing::warn!("{e}"))
            .ok(),
        None => None,
    };
    let etc = l
        .system_id_file()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    kubeovn_compat::identity_columns(
        version,
        &cfg.vswitch_schema,
        &etc,
        Path::new("/etc/os-release"),
    )
}

/// start-ovs.sh's `handle_underlay_bridges`: Kube-OVN's bridges whose link is gone (the node
/// rebooted) are deleted before vswitchd starts; kube-ovn-cni creates them again.
async fn prune_underlay_bridges(reaper: &Reaper, client: &Client, t: Duration) {
    match kubeovn_compat::prune_underlay_bridges(client, reaper, t).await {
        Ok(gone) => {
            for name in gone {
                tracing::info!(bridge = %name, "deleted Kube-OVN's underlay bridge: its link is gone; kube-ovn-cni creates it again");
            }
        }
        Err(e) => tracing::warn!("cannot check Kube-OVN's underlay bridges: {e}"),
    }
}

/// vswitchd has applied our transaction once `cur_cfg` reaches the `next_cfg` it set. A
/// monitor pushes each change, so there is no polling.
async fn wait_cur_cfg(
    client: &Client,
    target: i64,
    deadline: Instant,
    stage_deadline: Duration,
) -> Result<(), RunError> {
    let timeout = |last: String| RunError::Deadline {
        stage: "ovs-vswitchd",
        deadline: stage_deadline,
        last,
    };
    let Some(mut updates) = client.notifications() else {
        return Err(stage_err("ovs-vswitchd")(&"monitor channel already taken"));
    };
    let left = deadline.saturating_duration_since(Instant::now());
    let initial = client
        .call(
            "monitor",
            serde_json::json!(["Open_vSwitch", "cur_cfg", {"Open_vSwitch": {"columns": ["cur_cfg"]}}]),
            left,
        )
        .await
        .map_err(|e| timeout(e.to_string()))?;
    let mut cur = cur_cfg_in(&initial);
    while cur.is_none_or(|c| c < target) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, updates.recv()).await {
            Ok(Some((method, params))) if method == "update" => {
                if let Some(c) = params.get(1).and_then(cur_cfg_in) {
                    cur = Some(c);
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => {
                return Err(stage_err("ovs-vswitchd")(
                    &"ovsdb-server closed the connection",
                ))
            }
            Err(_) => return Err(timeout(format!("cur_cfg is {cur:?}, waiting for {target}"))),
        }
    }
    Ok(())
}

/// `cur_cfg` in a monitor result or update: `{"Open_vSwitch": {UUID: {"new": {"cur_cfg": N}}}}`.
fn cur_cfg_in(v: &serde_json::Value) -> Option<i64> {
    v.get("Open_vSwitch")?
        .as_object()?
        .values()
        .find_map(|row| row.get("new")?.get("cur_cfg")?.as_i64())
}

/// Sets or clears `other_config:flow-restore-wait` (only during a takeover: it is not one of the
/// keys we keep, so a later ovsdb-server restart does not set it again).
async fn set_flow_restore_wait(
    client: &Client,
    on: bool,
    timeout: Duration,
) -> Result<(), RunError> {
    let all = serde_json::json!([]);
    let key = ["flow-restore-wait".to_string()];
    let mut ops = vec![ovsdb::op_mutate_delete_keys(
        "Open_vSwitch",
        all.clone(),
        "other_config",
        &key,
    )];
    if on {
        ops.extend(ovsdb::op_mutate_map_keys(
            "Open_vSwitch",
            all,
            "other_config",
            &[(key[0].clone(), "true".into())],
        ));
    }
    ovsdb::transact(client, "Open_vSwitch", ops, timeout)
        .await
        .map(|_| ())
        .map_err(|e| stage_err("flow-restore-wait")(&e))
}

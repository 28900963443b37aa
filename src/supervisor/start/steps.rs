//! The steps inside the start stages that are not a daemon's wait: identity columns, Kube-OVN's
//! underlay bridges, vswitchd's `cur_cfg`, `flow-restore-wait`, private files.
//!
//! Invariant: failures of the Kube-OVN compatibility steps (identity columns, bridges, file
//! modes) are warnings, never a reason to stop a node that works without them.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::config::paths::Layout;
use crate::config::Config;
use crate::daemon::Daemon;
use crate::kubeovn_compat;
use crate::ovs::jsonrpc::Client;
use crate::process::Reaper;
use crate::supervisor::StageError;

/// `ovs_version`, `db_version`, `system_type`, `system_version`, as ovs-ctl writes them; sets
/// ovsdb-server's log levels on the way.
pub(super) async fn identity_columns(
    cfg: &Config,
    ovsdb_pid: Option<i32>,
) -> Vec<(String, String)> {
    let l = &cfg.layout;
    let version = match crate::status::check::ctl_of(l, Daemon::OvsdbServer, ovsdb_pid) {
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
pub(super) async fn prune_underlay_bridges(reaper: &Reaper, client: &Client, t: Duration) {
    match kubeovn_compat::prune_underlay_bridges(client, reaper, t).await {
        Ok(gone) => {
            for name in gone {
                tracing::info!(bridge = %name, "deleted Kube-OVN's underlay bridge: its link is gone; kube-ovn-cni creates it again");
            }
        }
        Err(e) => tracing::warn!("cannot check Kube-OVN's underlay bridges: {e}"),
    }
}

/// start-ovs.sh's `chmod 600 /etc/openvswitch/*`: conf.db, system-id.conf, backups.
pub(super) fn restrict_files(l: &Layout) {
    let mut dirs = vec![l.ovs_dbdir.clone()];
    dirs.extend(l.system_id_file().parent().map(Path::to_path_buf));
    dirs.dedup();
    for dir in dirs {
        for (path, e) in kubeovn_compat::restrict_files(&dir) {
            tracing::warn!(path = %path.display(), "cannot set mode 0600: {e}");
        }
    }
}

/// vswitchd has applied our transaction once `cur_cfg` reaches the `next_cfg` it set. A
/// monitor pushes each change, so there is no polling; the stage's deadline bounds the wait.
pub(in crate::supervisor) async fn wait_cur_cfg(
    client: &Client,
    target: i64,
    deadline: Instant,
) -> Result<(), StageError> {
    let Some(mut updates) = client.notifications() else {
        return Err(StageError::Closed);
    };
    let left = deadline.saturating_duration_since(Instant::now());
    let initial = client
        .call(
            "monitor",
            serde_json::json!(["Open_vSwitch", "cur_cfg", {"Open_vSwitch": {"columns": ["cur_cfg"]}}]),
            left,
        )
        .await?;
    let mut cur = cur_cfg_in(&initial);
    while cur.is_none_or(|c| c < target) {
        match updates.recv().await {
            Some((method, params)) if method == "update" => {
                if let Some(c) = params.get(1).and_then(cur_cfg_in) {
                    cur = Some(c);
                }
            }
            Some(_) => {}
            None => return Err(StageError::Closed),
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

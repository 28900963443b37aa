//! The node's settings, written in ONE OVSDB transaction: our `external_ids` and
//! `other_config` keys on the `Open_vSwitch` row, `br-int` if missing, and a `next_cfg` bump so
//! we can tell when vswitchd has applied it all.
//!
//! Invariants: only the keys we own are written, each with a per-key delete + insert mutation
//! (never an `update` of a whole map: kube-ovn-cni and ovn-controller own other keys there);
//! a missing `Open_vSwitch` row or bridge is inserted under a `wait` guard that asserts it is
//! still missing, so a concurrent writer makes the transaction fail instead of duplicating it.
//! Building the operations is pure; [`apply`] is the only I/O.

pub mod tuning;

use std::time::Duration;

use serde_json::{json, Value};

use crate::config::Config;
use crate::ovs::jsonrpc::Client;
use crate::ovs::ovsdb::{self, OvsdbError};
use crate::settings::tuning::Threads;

pub const BRIDGE: &str = "br-int";
const DB: &str = "Open_vSwitch";

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("settings transaction on {DB}: {0}")]
    Ovsdb(#[from] OvsdbError),
    #[error("settings transaction on {DB}: reply had no next_cfg: {0}")]
    NoNextCfg(Value),
}

/// What the database held before we wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Existing {
    pub ovs_row: bool,
    pub bridge: bool,
}

/// The keys we own and their values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    pub external_ids: Vec<(String, String)>,
    pub other_config: Vec<(String, String)>,
    /// Whole optional-string columns of the row (`ovs_version`, `system_type`, ...).
    pub columns: Vec<(String, String)>,
}

pub fn owned(cfg: &Config, system_id: &str, threads: Threads) -> Owned {
    let s = |k: &str, v: String| (k.to_string(), v);
    let mut external_ids = vec![
        s("system-id", system_id.to_string()),
        s("hostname", cfg.hostname.clone()),
        s("rundir", cfg.layout.ovs_rundir.display().to_string()),
        s("ovn-remote", cfg.southbound.remote.clone()),
        s("ovn-encap-type", cfg.tunnel.as_str().to_string()),
        s(
            "ovn-remote-probe-interval",
            cfg.remote_probe_interval_ms.to_string(),
        ),
        // OVN <= 23.09 reads seconds here; OVN >= 24.09 reads the next key (ms); 24.03 neither.
        s(
            "ovn-openflow-probe-interval",
            cfg.openflow_probe_interval_s.to_string(),
        ),
        s(
            "ovn-bridge-remote-probe-interval",
            (cfg.openflow_probe_interval_s * 1000).to_string(),
        ),
        // Owned as start-ovs.sh owned it (true on every start); written when off too, or a
        // `true` left by start-ovs.sh or Kube-OVN's upgrade hook would outlive the setting.
        s(
            "ovn-match-northd-version",
            cfg.match_northd_version.to_string(),
        ),
    ];
    let wait = cfg.ofctrl_wait_before_clear.as_millis();
    if wait > 0 {
        external_ids.push(s("ovn-ofctrl-wait-before-clear", wait.to_string()));
    }
    if cfg.layout.sandbox.is_some() {
        // In a real node kube-ovn-cni owns ovn-encap-ip; the sandbox has nobody else to set it,
        // and without it ovn-controller registers no Encap for the chassis.
        external_ids.push(s("ovn-encap-ip", "127.0.0.1".to_string()));
    }
    Owned {
        external_ids,
        columns: Vec::new(),
        other_config: vec![
            s("n-handler-threads", threads.handlers.to_string()),
            s("n-revalidator-threads", threads.revalidators.to_string()),
            s("hw-offload", cfg.hw_offload.to_string()),
        ],
    }
}

fn empty_guard(table: &str, where_: Value) -> Value {
    ovsdb::op_wait(table, where_, &["_uuid"], "==", vec![], 0)
}

/// The whole transaction. Its last operation selects `next_cfg`, the value vswitchd's
/// `cur_cfg` must reach.
pub fn operations(cfg: &Config, owned: &Owned, existing: Existing) -> Vec<Value> {
    let all = json!([]);
    let mut ops = vec![ovsdb::op_comment("ovs-ovn-supervisor: node settings")];
    if !existing.ovs_row {
        ops.push(empty_guard(DB, all.clone()));
        ops.push(ovsdb::op_insert(DB, json!({}), None));
    }
    ops.extend(ovsdb::op_mutate_map_keys(
        DB,
        all.clone(),
        "external_ids",
        &owned.external_ids,
    ));
    ops.extend(ovsdb::op_mutate_map_keys(
        DB,
        all.clone(),
        "other_config",
        &owned.other_config,
    ));
    if !owned.columns.is_empty() {
        let row: serde_json::Map<String, Value> = owned
            .columns
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        ops.push(json!({"op": "update", "table": DB, "where": all, "row": row}));
    }
    let bridge_where = json!([["name", "==", BRIDGE]]);
    let dp = cfg.datapath_type.as_str();
    if existing.bridge {
        ops.push(json!({
            "op": "update", "table": "Bridge", "where": bridge_where,
            "row": {"fail_mode": "secure", "datapath_type": dp},
        }));
    } else {
        ops.push(empty_guard("Bridge", bridge_where));
        ops.push(ovsdb::op_insert(
            "Interface",
            json!({"name": BRIDGE, "type": "internal"}),
            Some("iface"),
        ));
        ops.push(ovsdb::op_insert(
            "Port",
            json!({"name": BRIDGE, "interfaces": ["named-uuid", "iface"]}),
            Some("port"),
        ));
        ops.push(ovsdb::op_insert(
            "Bridge",
            json!({"name": BRIDGE, "ports": ["named-uuid", "port"],
                   "fail_mode": "secure", "datapath_type": dp}),
            Some("bridge"),
        ));
        ops.push(json!({
            "op": "mutate", "table": DB, "where": all,
            "mutations": [["bridges", "insert", ["named-uuid", "bridge"]]],
        }));
    }
    ops.push(ovsdb::op_increment(DB, all.clone(), "next_cfg"));
    ops.push(ovsdb::op_select(DB, all, &["next_cfg"]));
    ops
}

/// Reads what exists, then writes everything in one transaction; returns the `next_cfg` to
/// wait for. A guard failure (someone created the row or bridge in between) is retried once
/// with a fresh read.
pub async fn apply(
    client: &Client,
    cfg: &Config,
    owned: &Owned,
    timeout: Duration,
) -> Result<i64, SettingsError> {
    let mut attempt = 0;
    loop {
        let existing = read_existing(client, timeout).await?;
        let ops = operations(cfg, owned, existing);
        match ovsdb::transact(client, DB, ops, timeout).await {
            Ok(results) => {
                let last = results.last().cloned().unwrap_or(Value::Null);
                return last
                    .get("rows")
                    .and_then(|r| r.get(0))
                    .and_then(|r| r.get("next_cfg"))
                    .and_then(Value::as_i64)
                    .ok_or(SettingsError::NoNextCfg(last));
            }
            Err(OvsdbError::Operation { .. }) if attempt == 0 => attempt += 1,
            Err(e) => return Err(e.into()),
        }
    }
}

async fn read_existing(client: &Client, timeout: Duration) -> Result<Existing, SettingsError> {
    let r = ovsdb::transact(
        client,
        DB,
        vec![
            ovsdb::op_select(DB, json!([]), &["_uuid"]),
            ovsdb::op_select("Bridge", json!([["name", "==", BRIDGE]]), &["_uuid"]),
        ],
        timeout,
    )
    .await?;
    let has_rows = |v: Option<&Value>| {
        v.and_then(|v| v.get("rows"))
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
    };
    Ok(Existing {
        ovs_row: has_rows(r.first()),
        bridge: has_rows(r.get(1)),
    })
}

/// The embedded Southbound needs an `SB_Global` row: OVN 23.03's ovn-controller crashes
/// (SIGSEGV) on a Southbound without one. ovn-northd creates it on a real cluster.
pub async fn init_southbound(client: &Client, timeout: Duration) -> Result<(), SettingsError> {
    let db = "OVN_Southbound";
    let r = ovsdb::transact(
        client,
        db,
        vec![ovsdb::op_select("SB_Global", json!([]), &["_uuid"])],
        timeout,
    )
    .await?;
    let empty = r
        .first()
        .and_then(|v| v.get("rows"))
        .and_then(Value::as_array)
        .is_none_or(|a| a.is_empty());
    if empty {
        ovsdb::transact(
            client,
            db,
            vec![
                empty_guard("SB_Global", json!([])),
                ovsdb::op_insert("SB_Global", json!({}), None),
            ],
            timeout,
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::cli::{NodeArgs, PathArgs};
    use std::path::Path;

    fn cfg() -> Config {
        let a = NodeArgs {
            paths: PathArgs {
                sandbox: Some("/sb".into()),
                ..Default::default()
            },
            hw_offload: Some("true".into()),
            ..Default::default()
        };
        Config::resolve(&a, "node-a", Path::new("/")).unwrap()
    }

    #[test]
    fn owned_keys_carry_the_configured_values() {
        let o = owned(
            &cfg(),
            "sid",
            Threads {
                handlers: 3,
                revalidators: 2,
            },
        );
        let get = |v: &[(String, String)], k: &str| {
            v.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.clone())
        };
        assert_eq!(get(&o.external_ids, "system-id").as_deref(), Some("sid"));
        assert_eq!(get(&o.external_ids, "hostname").as_deref(), Some("node-a"));
        assert_eq!(
            get(&o.external_ids, "ovn-bridge-remote-probe-interval").as_deref(),
            Some("180000")
        );
        assert_eq!(get(&o.other_config, "hw-offload").as_deref(), Some("true"));
        let on = Config {
            match_northd_version: true,
            ..cfg()
        };
        for (c, want) in [(cfg(), "false"), (on, "true")] {
            let o = owned(
                &c,
                "sid",
                Threads {
                    handlers: 1,
                    revalidators: 1,
                },
            );
            let got = get(&o.external_ids, "ovn-match-northd-version");
            assert_eq!(got.as_deref(), Some(want));
        }
        let threads = Threads {
            handlers: 1,
            revalidators: 1,
        };
        for (ms, want) in [(0, None), (2_000, Some("2000"))] {
            let c = Config {
                ofctrl_wait_before_clear: std::time::Duration::from_millis(ms),
                ..cfg()
            };
            let o = owned(&c, "sid", threads);
            let got = get(&o.external_ids, "ovn-ofctrl-wait-before-clear");
            assert_eq!(got.as_deref(), want, "{ms} ms");
        }
        assert_eq!(
            get(&o.other_config, "n-handler-threads").as_deref(),
            Some("3")
        );
    }

    /// A real node (no sandbox), as kube-ovn-cni's node would be configured.
    fn node_cfg() -> Config {
        let a = NodeArgs {
            paths: PathArgs {
                ovs_rundir: Some("/run/x/openvswitch".into()),
                ..Default::default()
            },
            ovn_db_ips: Some("10.16.0.2".into()),
            ..Default::default()
        };
        Config::resolve(&a, "node-b", Path::new("/")).unwrap()
    }

    /// kube-ovn-cni owns `ovn-encap-ip` on a real node (it writes the node's tunnel address):
    /// ours in the one transaction would overwrite it on every start and every ovsdb-server
    /// restart. Only the sandbox, which has no kube-ovn-cni, writes it.
    #[test]
    fn a_real_node_never_writes_ovn_encap_ip() {
        let threads = Threads {
            handlers: 2,
            revalidators: 1,
        };
        let node = owned(&node_cfg(), "sid", threads);
        assert!(
            !node.external_ids.iter().any(|(k, _)| k == "ovn-encap-ip"),
            "{:?}",
            node.external_ids
        );
        let ops =
            serde_json::to_string(&operations(&node_cfg(), &node, Existing::default())).unwrap();
        assert!(!ops.contains("ovn-encap-ip"), "{ops}");
        let sandbox = owned(&cfg(), "sid", threads);
        assert!(sandbox
            .external_ids
            .contains(&("ovn-encap-ip".to_string(), "127.0.0.1".to_string())));
    }

    #[test]
    fn transaction_never_updates_a_whole_map_and_guards_inserts() {
        let c = cfg();
        let mut o = owned(
            &c,
            "sid",
            Threads {
                handlers: 1,
                revalidators: 1,
            },
        );
        // What the start really sends (`kubeovn_compat::identity_columns`), from files that
        // differ from any default.
        let dir = tempfile::tempdir().unwrap();
        let schema = dir.path().join("vswitch.ovsschema");
        std::fs::write(&schema, r#"{"name":"Open_vSwitch","version":"8.3.9"}"#).unwrap();
        let os = dir.path().join("os-release");
        std::fs::write(&os, "ID=acme\nVERSION_ID=\"7.1\"\n").unwrap();
        o.columns = crate::kubeovn_compat::identity_columns(
            Some("3.1.77".into()),
            &schema,
            dir.path(),
            &os,
        );
        assert_eq!(o.columns.len(), 4, "{:?}", o.columns);
        for existing in [
            Existing::default(),
            Existing {
                ovs_row: true,
                bridge: true,
            },
        ] {
            let ops = operations(&c, &o, existing);
            let mut identity = 0;
            for op in &ops {
                if op["op"] == "update" {
                    assert!(op["row"].get("external_ids").is_none(), "{op}");
                    assert!(op["row"].get("other_config").is_none(), "{op}");
                    if op["table"] == DB {
                        identity += 1;
                        let row = op["row"].as_object().unwrap();
                        let keys: Vec<&str> = row.keys().map(String::as_str).collect();
                        assert_eq!(
                            keys,
                            ["db_version", "ovs_version", "system_type", "system_version"]
                        );
                        assert_eq!(row["ovs_version"], "3.1.77");
                        assert_eq!(row["db_version"], "8.3.9");
                        assert_eq!(row["system_type"], "acme");
                        assert_eq!(row["system_version"], "7.1");
                    } else {
                        assert_eq!(op["table"], "Bridge", "{op}");
                    }
                }
            }
            assert_eq!(identity, 1, "the identity columns in one update");
            let inserts = ops.iter().filter(|o| o["op"] == "insert").count();
            let guards = ops.iter().filter(|o| o["op"] == "wait").count();
            assert_eq!(inserts, if existing.bridge { 0 } else { 4 });
            assert_eq!(guards, if existing.bridge { 0 } else { 2 });
            assert_eq!(ops.last().unwrap()["op"], "select");
            let text = serde_json::to_string(&ops).unwrap();
            assert!(text.contains(r#""next_cfg","+=",1"#), "{text}");
        }
    }
}

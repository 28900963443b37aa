//! The tunnel ports ovn-controller made on the integration bridge (`ovn-CHASSIS-0`, type
//! geneve, vxlan or stt), deleted for an uninstall while ovs-vswitchd still runs: vswitchd then
//! removes their kernel devices (`genev_sys_6081` ...), which nothing else in the pod may do.
//! Kube-OVN's `uninstall.sh` gets the same by setting `ovn-encap-type=stt` for ovn-controller
//! to drop them; we stop ovn-controller first, so nobody adds them back, and delete them.
//!
//! Invariants: only ports of the integration bridge whose interfaces include a tunnel type
//! are deleted, in one transaction that also bumps `next_cfg`, so the caller can wait for
//! vswitchd to have applied it (`cur_cfg`); the choice is a pure function of the rows.

use std::time::Duration;

use serde_json::{json, Value};

use crate::ovs::jsonrpc::Client;
use crate::ovs::ovsdb::{self, OvsdbError};
use crate::settings::BRIDGE;

const TUNNEL_TYPES: [&str; 3] = ["geneve", "vxlan", "stt"];

/// A port to delete: its row and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelPort {
    pub uuid: String,
    pub name: String,
}

fn uuids(v: &Value) -> Vec<String> {
    ovsdb::set_elems(v)
        .iter()
        .filter_map(|u| match u.as_array().map(Vec::as_slice) {
            Some([tag, id]) if tag == "uuid" => id.as_str().map(str::to_string),
            _ => None,
        })
        .collect()
}

fn rows(result: Option<&Value>) -> &[Value] {
    result
        .and_then(|r| r.get("rows"))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The tunnel ports of the integration bridge, from the selects of [`remove`]: the bridge's
/// `ports`, every Port's `_uuid`, `name`, `interfaces`, every Interface's `_uuid`, `type`.
pub fn tunnel_ports(bridge: &[Value], ports: &[Value], interfaces: &[Value]) -> Vec<TunnelPort> {
    let on_bridge: Vec<String> = bridge
        .first()
        .map(|b| uuids(&b["ports"]))
        .unwrap_or_default();
    let tunnels: Vec<String> = interfaces
        .iter()
        .filter(|i| {
            i["type"]
                .as_str()
                .is_some_and(|t| TUNNEL_TYPES.contains(&t))
        })
        .flat_map(|i| uuids(&i["_uuid"]))
        .collect();
    ports
        .iter()
        .filter_map(|p| {
            let uuid = uuids(&p["_uuid"]).pop()?;
            let is_tunnel = uuids(&p["interfaces"]).iter().any(|i| tunnels.contains(i));
            (on_bridge.contains(&uuid) && is_tunnel).then(|| TunnelPort {
                uuid,
                name: p["name"].as_str().unwrap_or_default().to_string(),
            })
        })
        .collect()
}

/// Deletes the integration bridge's tunnel ports. Returns their names and the `next_cfg`
/// vswitchd's `cur_cfg` reaches once it has removed them (`None`: there were none).
pub async fn remove(
    client: &Client,
    t: Duration,
) -> Result<(Vec<String>, Option<i64>), OvsdbError> {
    let db = "Open_vSwitch";
    let where_bridge = json!([["name", "==", BRIDGE]]);
    let found = ovsdb::transact(
        client,
        db,
        vec![
            ovsdb::op_select("Bridge", where_bridge.clone(), &["ports"]),
            ovsdb::op_select("Port", json!([]), &["_uuid", "name", "interfaces"]),
            ovsdb::op_select("Interface", json!([]), &["_uuid", "type"]),
        ],
        t,
    )
    .await?;
    let ports = tunnel_ports(rows(found.first()), rows(found.get(1)), rows(found.get(2)));
    if ports.is_empty() {
        return Ok((Vec::new(), None));
    }
    let set: Vec<Value> = ports.iter().map(|p| json!(["uuid", p.uuid])).collect();
    // Port is not a root table: dropping the bridge's reference deletes the row, as
    // `ovs-vsctl del-port` does.
    let ops = vec![
        json!({"op": "mutate", "table": "Bridge", "where": where_bridge,
               "mutations": [["ports", "delete", ["set", set]]]}),
        ovsdb::op_increment(db, json!([]), "next_cfg"),
        ovsdb::op_select(db, json!([]), &["next_cfg"]),
        ovsdb::op_comment("ovs-ovn-supervisor: uninstall, tunnel ports"),
    ];
    let r = ovsdb::transact(client, db, ops, t).await?;
    let next = rows(r.get(2))
        .first()
        .and_then(|row| row["next_cfg"].as_i64());
    Ok((ports.into_iter().map(|p| p.name).collect(), next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_bridges_tunnel_ports() {
        let u = |id: &str| json!(["uuid", id]);
        let bridge = [json!({"ports": ["set", [u("p-br"), u("p-gen"), u("p-vx"), u("p-pod")]]})];
        let ports = [
            json!({"_uuid": u("p-br"), "name": "br-int", "interfaces": u("i-br")}),
            json!({"_uuid": u("p-gen"), "name": "ovn-node2-0", "interfaces": u("i-gen")}),
            json!({"_uuid": u("p-vx"), "name": "ovn-node3-0", "interfaces": ["set", [u("i-vx")]]}),
            json!({"_uuid": u("p-pod"), "name": "pod1", "interfaces": u("i-pod")}),
            // A tunnel port on another bridge (an underlay or someone's): not br-int's.
            json!({"_uuid": u("p-other"), "name": "gre0", "interfaces": u("i-other")}),
        ];
        let ifaces = [
            json!({"_uuid": u("i-br"), "type": "internal"}),
            json!({"_uuid": u("i-gen"), "type": "geneve"}),
            json!({"_uuid": u("i-vx"), "type": "vxlan"}),
            json!({"_uuid": u("i-pod"), "type": ""}),
            json!({"_uuid": u("i-other"), "type": "geneve"}),
        ];
        let got: Vec<String> = tunnel_ports(&bridge, &ports, &ifaces)
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(got, ["ovn-node2-0", "ovn-node3-0"]);
        assert!(tunnel_ports(&[], &ports, &ifaces).is_empty(), "no br-int");
    }
}

//! OVSDB (RFC 7047) helpers on top of [`crate::ovs::jsonrpc::Client`]: typed
//! `list_dbs`/`transact`, builders for the operations the supervisor issues,
//! and decoders for OVSDB's tagged `["map",..]`/`["set",..]` encodings.
//!
//! Invariants:
//! - `transact` never returns `Ok` for a transaction in which any operation
//!   failed: OVSDB reports per-operation failures inside a successful
//!   JSON-RPC reply, which is easy to miss, so they become
//!   [`OvsdbError::Operation`] here.
//! - Map columns shared with other components (e.g. `other_config`,
//!   `external_ids`) are only ever changed key by key with `mutate`, never
//!   rewritten whole, so keys owned by someone else survive.

use std::time::Duration;

use serde_json::{json, Value};

use crate::ovs::jsonrpc::{Client, RpcError};

#[derive(Debug, thiserror::Error)]
pub enum OvsdbError {
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error("operation {index} ({op}) failed: {error}{}", details.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Operation {
        index: usize,
        op: String,
        error: String,
        details: Option<String>,
    },
    #[error("unexpected {what}: {got}")]
    Unexpected { what: String, got: Value },
}

/// Names of the databases the server holds (includes `_Server`).
pub async fn list_dbs(c: &Client, timeout: Duration) -> Result<Vec<String>, OvsdbError> {
    let got = c.call("list_dbs", json!([]), timeout).await?;
    let names = got.as_array().and_then(|a| {
        a.iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
    });
    names.ok_or_else(|| OvsdbError::Unexpected {
        what: "list_dbs result".to_owned(),
        got,
    })
}

/// Runs `ops` as one transaction on `db`; returns one result per operation.
pub async fn transact(
    c: &Client,
    db: &str,
    ops: Vec<Value>,
    timeout: Duration,
) -> Result<Vec<Value>, OvsdbError> {
    let op_names: Vec<String> = ops
        .iter()
        .map(|o| {
            o.get("op")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_owned()
        })
        .collect();
    let mut params = Vec::with_capacity(ops.len() + 1);
    params.push(Value::String(db.to_owned()));
    params.extend(ops);
    let got = c.call("transact", Value::Array(params), timeout).await?;
    let results = match got {
        Value::Array(results) => results,
        got => {
            return Err(OvsdbError::Unexpected {
                what: "transact result".to_owned(),
                got,
            })
        }
    };
    // A failure at commit time (e.g. a constraint violation) shows up as an
    // extra element after the per-operation results, hence `commit`.
    for (index, r) in results.iter().enumerate() {
        if let Some(err) = r.get("error") {
            return Err(OvsdbError::Operation {
                index,
                op: op_names
                    .get(index)
                    .cloned()
                    .unwrap_or_else(|| "commit".to_owned()),
                error: atom_text(err),
                details: r.get("details").map(atom_text),
            });
        }
    }
    if results.len() < op_names.len() {
        return Err(OvsdbError::Unexpected {
            what: format!(
                "transact reply with {} results for {} operations",
                results.len(),
                op_names.len()
            ),
            got: Value::Array(results),
        });
    }
    Ok(results)
}

/// Sets `pairs` in map `column` of the rows matching `where_`, leaving
/// other keys alone. Empty `pairs` yields no operation.
///
/// One mutate carries both mutations: `delete` drops the old values of our
/// keys (insert alone would not replace an existing key), then `insert`
/// adds the new ones; OVSDB applies them in order.
pub fn op_mutate_map_keys(
    table: &str,
    where_: Value,
    column: &str,
    pairs: &[(String, String)],
) -> Vec<Value> {
    if pairs.is_empty() {
        return Vec::new();
    }
    let keys: Vec<Value> = pairs.iter().map(|(k, _)| json!(k)).collect();
    let entries: Vec<Value> = pairs.iter().map(|(k, v)| json!([k, v])).collect();
    vec![json!({
        "op": "mutate",
        "table": table,
        "where": where_,
        "mutations": [
            [column, "delete", ["set", keys]],
            [column, "insert", ["map", entries]],
        ],
    })]
}

/// Removes `keys` from map `column` of the matching rows; absent keys are
/// not an error.
pub fn op_mutate_delete_keys(table: &str, where_: Value, column: &str, keys: &[String]) -> Value {
    json!({
        "op": "mutate",
        "table": table,
        "where": where_,
        "mutations": [[column, "delete", ["set", keys]]],
    })
}

/// Blocks the transaction until `columns` of the matching rows are (`"=="`)
/// or are not (`"!="`) exactly `rows`, failing with `timed out` after
/// `timeout_ms` (0 = check once).
pub fn op_wait(
    table: &str,
    where_: Value,
    columns: &[&str],
    until: &str,
    rows: Vec<Value>,
    timeout_ms: u64,
) -> Value {
    json!({
        "op": "wait",
        "table": table,
        "where": where_,
        "columns": columns,
        "until": until,
        "rows": rows,
        "timeout": timeout_ms,
    })
}

pub fn op_select(table: &str, where_: Value, columns: &[&str]) -> Value {
    json!({"op": "select", "table": table, "where": where_, "columns": columns})
}

/// `uuid_name` lets later operations in the same transaction refer to the
/// new row as `["named-uuid", name]`.
pub fn op_insert(table: &str, row: Value, uuid_name: Option<&str>) -> Value {
    let mut op = json!({"op": "insert", "table": table, "row": row});
    if let (Some(name), Some(obj)) = (uuid_name, op.as_object_mut()) {
        obj.insert("uuid-name".to_owned(), json!(name));
    }
    op
}

/// Text recorded in the database log, to tell who changed what.
pub fn op_comment(text: &str) -> Value {
    json!({"op": "comment", "comment": text})
}

pub fn op_increment(table: &str, where_: Value, column: &str) -> Value {
    json!({
        "op": "mutate",
        "table": table,
        "where": where_,
        "mutations": [[column, "+=", 1]],
    })
}

/// Looks `key` up in an OVSDB map (`["map", [[k, v], ...]]`). Non-string
/// values are rendered as compact JSON.
pub fn map_get(map: &Value, key: &str) -> Option<String> {
    let pairs = match map.as_array().map(Vec::as_slice) {
        Some([tag, Value::Array(pairs)]) if tag == "map" => pairs,
        _ => return None,
    };
    pairs
        .iter()
        .find_map(|pair| match pair.as_array().map(Vec::as_slice) {
            Some([k, v]) if k.as_str() == Some(key) => Some(atom_text(v)),
            _ => None,
        })
}

/// Elements of an OVSDB set: `["set", [...]]`, or a single bare atom
/// (OVSDB sends one-element sets that way). Atoms such as `["uuid", ".."]`
/// are returned unchanged.
pub fn set_elems(v: &Value) -> Vec<Value> {
    match v.as_array().map(Vec::as_slice) {
        Some([tag, Value::Array(elems)]) if tag == "set" => elems.clone(),
        _ => vec![v.clone()],
    }
}

fn atom_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn mutate_map_keys_deletes_then_inserts_only_our_keys() {
        let ops = op_mutate_map_keys(
            "Open_vSwitch",
            json!([]),
            "other_config",
            &s(&[("a", "1"), ("b", "2")]),
        );
        assert_eq!(
            ops,
            vec![json!({
                "op": "mutate",
                "table": "Open_vSwitch",
                "where": [],
                "mutations": [
                    ["other_config", "delete", ["set", ["a", "b"]]],
                    ["other_config", "insert", ["map", [["a", "1"], ["b", "2"]]]],
                ],
            })]
        );
        assert!(op_mutate_map_keys("T", json!([]), "c", &[]).is_empty());
    }

    #[test]
    fn builders_produce_exact_json() {
        let w = json!([[
            "_uuid",
            "==",
            ["uuid", "0c5d4c9e-0000-0000-0000-000000000000"]
        ]]);
        let cases = vec![
            (
                op_mutate_delete_keys("Bridge", w.clone(), "external_ids", &["x".to_owned()]),
                json!({"op":"mutate","table":"Bridge","where":w,
                       "mutations":[["external_ids","delete",["set",["x"]]]]}),
            ),
            (
                op_wait(
                    "Open_vSwitch",
                    json!([]),
                    &["cur_cfg"],
                    "==",
                    vec![json!({"cur_cfg": 3})],
                    0,
                ),
                json!({"op":"wait","table":"Open_vSwitch","where":[],"columns":["cur_cfg"],
                       "until":"==","rows":[{"cur_cfg":3}],"timeout":0}),
            ),
            (
                op_select("Open_vSwitch", json!([]), &["_uuid", "other_config"]),
                json!({"op":"select","table":"Open_vSwitch","where":[],
                       "columns":["_uuid","other_config"]}),
            ),
            (
                op_insert("Bridge", json!({"name": "br-int"}), Some("br")),
                json!({"op":"insert","table":"Bridge","row":{"name":"br-int"},"uuid-name":"br"}),
            ),
            (
                op_insert("Bridge", json!({}), None),
                json!({"op":"insert","table":"Bridge","row":{}}),
            ),
            (
                op_comment("supervisor: set keys"),
                json!({"op":"comment","comment":"supervisor: set keys"}),
            ),
            (
                op_increment("Open_vSwitch", json!([]), "next_cfg"),
                json!({"op":"mutate","table":"Open_vSwitch","where":[],
                       "mutations":[["next_cfg","+=",1]]}),
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn map_get_decodes_ovsdb_maps() {
        let m = json!(["map", [["a", "1"], ["n", 5], ["u", ["uuid", "x"]]]]);
        assert_eq!(map_get(&m, "a").as_deref(), Some("1"));
        assert_eq!(map_get(&m, "n").as_deref(), Some("5"));
        assert_eq!(map_get(&m, "u").as_deref(), Some(r#"["uuid","x"]"#));
        assert_eq!(map_get(&m, "zz"), None);
        assert_eq!(map_get(&json!(["map", []]), "a"), None);
        assert_eq!(map_get(&json!(["set", [["a", "1"]]]), "a"), None);
        assert_eq!(map_get(&json!("a"), "a"), None);
        assert_eq!(map_get(&json!(["map", [["a"]]]), "a"), None);
    }

    #[test]
    fn set_elems_decodes_sets_and_bare_atoms() {
        let u = json!(["uuid", "8a8b1d4e-0000-0000-0000-000000000000"]);
        assert_eq!(set_elems(&json!(["set", []])), Vec::<Value>::new());
        assert_eq!(
            set_elems(&json!(["set", [1, "x", u.clone()]])),
            vec![json!(1), json!("x"), u.clone()]
        );
        assert_eq!(set_elems(&u), vec![u.clone()]);
        assert_eq!(set_elems(&json!("br-int")), vec![json!("br-int")]);
        assert_eq!(set_elems(&json!(7)), vec![json!(7)]);
    }

    #[test]
    fn operation_error_display_includes_details() {
        let e = OvsdbError::Operation {
            index: 1,
            op: "wait".into(),
            error: "timed out".into(),
            details: Some("\"wait\" timed out".into()),
        };
        assert_eq!(
            e.to_string(),
            "operation 1 (wait) failed: timed out: \"wait\" timed out"
        );
    }
}

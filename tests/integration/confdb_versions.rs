//! conf.db across Open vSwitch versions, on whichever OVS runs the test (the host's 3.1, or
//! 3.5 in the trixie root of `scripts/test-matrix.sh`):
//! - a conf.db of OVS 3.1's schema (8.3.1, tests/fixtures/vswitch-8.3.1.ovsschema) is converted
//!   to the installed schema when that is newer, with a backup `conf.db.backup8.3.1-CKSUM`, and
//!   keeps its rows: the system-id and a bridge → port → interface chain of foreign keys;
//! - a conf.db of a schema newer than the installed one (a rollback) is refused: exit 1 naming
//!   the database and both versions, the file byte for byte as it was, no daemon started.
//!
//! The real 3.5 → 3.1 rollback and the 3.1 → 3.5 conversion by real 3.1 / 3.5 tools are in
//! `upgrade`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::harness::*;

const READY: Duration = Duration::from_secs(30);
const FIXTURE_3_1: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/vswitch-8.3.1.ovsschema"
);
const INSTALLED: &str = "/usr/share/openvswitch/vswitch.ovsschema";

/// `ovsdb-tool ARGS`: trimmed stdout, or a panic with stderr.
pub fn ovsdb_tool(args: &[&str]) -> String {
    let out = Command::new("ovsdb-tool").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ovsdb-tool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn version(v: &str) -> Vec<u32> {
    v.split('.').map(|p| p.parse().unwrap()).collect()
}

/// A node's conf.db created from `schema` holding `system_id` and br-old → p1 → p1, with the
/// node's system-id.conf saying the same (as on a real node).
pub fn seed_conf_db(node_dir: &Path, schema: &str, system_id: &str) {
    let etc = node_dir.join("etc/openvswitch");
    std::fs::create_dir_all(&etc).unwrap();
    let db = etc.join("conf.db");
    ovsdb_tool(&["create", &db.to_string_lossy(), schema]);
    let txn = serde_json::json!(["Open_vSwitch",
        {"op": "insert", "table": "Interface", "row": {"name": "p1", "type": "internal"}, "uuid-name": "i"},
        {"op": "insert", "table": "Port", "row": {"name": "p1", "interfaces": ["named-uuid", "i"]}, "uuid-name": "p"},
        {"op": "insert", "table": "Bridge", "row": {"name": "br-old", "ports": ["named-uuid", "p"]}, "uuid-name": "b"},
        {"op": "insert", "table": "Open_vSwitch", "row": {
            "bridges": ["named-uuid", "b"],
            "external_ids": ["map", [["system-id", system_id], ["foreign-key", "kept"]]]}}]);
    ovsdb_tool(&["transact", &db.to_string_lossy(), &txn.to_string()]);
    std::fs::write(etc.join("system-id.conf"), format!("{system_id}\n")).unwrap();
}

/// The rows [`seed_conf_db`] wrote, read back through the running node's ovsdb-server.
pub fn assert_seeded_rows(node: &Node, system_id: &str) {
    assert_eq!(
        node.vsctl(&["get", "Open_vSwitch", ".", "external_ids:system-id"]),
        format!("\"{system_id}\"")
    );
    assert_eq!(
        node.vsctl(&["get", "Open_vSwitch", ".", "external_ids:foreign-key"]),
        "kept"
    );
    assert_eq!(node.vsctl(&["port-to-br", "p1"]), "br-old");
    assert_eq!(node.vsctl(&["iface-to-br", "p1"]), "br-old");
}

#[test]
fn a_conf_db_of_ovs_3_1_is_converted_with_a_backup_and_keeps_its_rows() {
    let mut node = Node::new();
    let system_id = "3c5f0b1e-0000-4000-8000-000000000031";
    seed_conf_db(node.path(), FIXTURE_3_1, system_id);
    let db = node.path().join("etc/openvswitch/conf.db");
    let cksum_before = ovsdb_tool(&["db-cksum", &db.to_string_lossy()]);
    let installed = ovsdb_tool(&["schema-version", INSTALLED]);

    node.start(&[]);
    let took = node.wait_ready(READY);
    assert_seeded_rows(&node, system_id);
    assert_eq!(
        ovsdb_tool(&["db-version", &db.to_string_lossy()]),
        installed
    );
    let backup = db.with_file_name(format!(
        "conf.db.backup8.3.1-{}",
        cksum_before.split_whitespace().next().unwrap()
    ));
    if version(&installed) > version("8.3.1") {
        assert!(backup.is_file(), "no {}: {}", backup.display(), node.log());
        assert_eq!(
            ovsdb_tool(&["db-version", &backup.to_string_lossy()]),
            "8.3.1"
        );
        assert!(node.log().contains("Converted"), "{}", node.log());
    } else {
        assert!(!backup.exists(), "a backup without a conversion");
    }
    eprintln!(
        "confdb_versions: 8.3.1 conf.db on schema {installed}: ready in {} ms",
        took.as_millis()
    );
    assert!(node.stop().0.success());
}

/// The installed schema one major version on, with one more column: what a later OVS writes.
fn future_schema(dir: &Path) -> (String, String) {
    let mut s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(INSTALLED).unwrap()).unwrap();
    let major = version(s["version"].as_str().unwrap())[0] + 1;
    let v = format!("{major}.0.0");
    s["version"] = v.clone().into();
    s.as_object_mut().unwrap().remove("cksum");
    s["tables"]["Open_vSwitch"]["columns"]["future_column"] = serde_json::json!({"type": "string"});
    let path = dir.join(format!("vswitch-{v}.ovsschema"));
    std::fs::write(&path, s.to_string()).unwrap();
    (path.display().to_string(), v)
}

#[test]
fn a_conf_db_of_a_newer_schema_is_refused_not_converted_down() {
    let mut node = Node::new();
    let schemas = tempfile::tempdir().unwrap();
    let (schema, newer) = future_schema(schemas.path());
    seed_conf_db(node.path(), &schema, "rollback-test");
    let db = node.path().join("etc/openvswitch/conf.db");
    let before = std::fs::read(&db).unwrap();
    let installed = ovsdb_tool(&["schema-version", INSTALLED]);

    node.start(&[]);
    let (status, _) = node.wait_exit(READY);
    let log = node.log();
    assert_eq!(status.code(), Some(1), "{log}");
    for part in [
        format!("{} has schema version {newer}", db.display()),
        format!("{INSTALLED} ({installed})"),
        "refusing to convert it down".to_string(),
    ] {
        assert!(log.contains(&part), "{part:?} not in:\n{log}");
    }
    assert_eq!(std::fs::read(&db).unwrap(), before, "conf.db was changed");
    assert!(node.daemon_pids().iter().all(|(_, pid)| !exists(*pid)));
    assert!(!node.path().join("run/openvswitch/db.sock").exists());
}

/// The installed schema one version back, without a column the installed one has: a conf.db
/// of it needs converting on every host, whatever OVS is installed (the 8.3.1 fixture is the
/// installed schema itself on Debian 12, so the test above does not convert there).
fn older_schema(dir: &Path) -> (String, String) {
    let mut s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(INSTALLED).unwrap()).unwrap();
    let installed = version(s["version"].as_str().unwrap());
    let v = match installed[..] {
        [major, minor, patch] if patch > 0 => format!("{major}.{minor}.{}", patch - 1),
        [major, minor, _] if minor > 0 => format!("{major}.{}.0", minor - 1),
        _ => panic!("no older version below {installed:?}"),
    };
    s["version"] = v.clone().into();
    // A checksum of its own (ovsdb-tool does not verify it): the backup is named after it.
    s["cksum"] = "3141592653 27182".into();
    let columns = s["tables"]["Open_vSwitch"]["columns"]
        .as_object_mut()
        .unwrap();
    assert!(
        columns.remove("dpdk_version").is_some(),
        "dpdk_version in {INSTALLED}"
    );
    let path = dir.join(format!("vswitch-{v}.ovsschema"));
    std::fs::write(&path, s.to_string()).unwrap();
    (path.display().to_string(), v)
}

#[test]
fn a_conf_db_of_an_older_schema_is_backed_up_then_converted_on_every_host() {
    let mut node = Node::new();
    let schemas = tempfile::tempdir().unwrap();
    let (schema, older) = older_schema(schemas.path());
    let system_id = "6b0e2a4d-1111-4000-8000-00000000c0de";
    seed_conf_db(node.path(), &schema, system_id);
    let db = node.path().join("etc/openvswitch/conf.db");
    let before = std::fs::read(&db).unwrap();
    let cksum = ovsdb_tool(&["db-cksum", &db.to_string_lossy()]);
    let installed = ovsdb_tool(&["schema-version", INSTALLED]);

    node.start(&[]);
    node.wait_ready(READY);
    assert_seeded_rows(&node, system_id);
    assert_eq!(
        ovsdb_tool(&["db-version", &db.to_string_lossy()]),
        installed
    );
    // The column the old schema lacked is there now: the database was really converted.
    node.vsctl(&["get", "Open_vSwitch", ".", "dpdk_version"]);
    // ovs-ctl's name: conf.db.backupVERSION-CKSUM.
    assert_eq!(cksum, "3141592653 27182");
    let prefix = format!("conf.db.backup{older}-3141592653");
    let backups: Vec<_> = std::fs::read_dir(db.parent().unwrap())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy() == prefix)
        .collect();
    assert_eq!(backups.len(), 1, "no {prefix}:\n{}", node.log());
    let backup = backups[0].path();
    assert_eq!(
        std::fs::read(&backup).unwrap_or_else(|e| panic!(
            "{}: {e}\n{}",
            backup.display(),
            node.log()
        )),
        before,
        "the backup is the database as it was before the conversion"
    );
    assert!(node.stop().0.success());
}

//! Integration tests of `jsonrpc` and `ovsdb` against the real Debian
//! `ovsdb-server` and `ovsdb-tool` binaries.
//!
//! Each test gets its own temporary directory holding the database, the
//! sockets, pidfile and log; OVS_RUNDIR/OVS_DBDIR/OVS_LOGDIR point there so
//! nothing touches the host's /var/run/openvswitch or /etc/openvswitch. The
//! server is killed and reaped by a Drop guard even when a test fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ovs_ovn_supervisor::ovs::jsonrpc::{Client, RpcError};
use ovs_ovn_supervisor::ovs::ovsdb::{
    list_dbs, map_get, op_comment, op_increment, op_insert, op_mutate_map_keys, op_select, op_wait,
    set_elems, transact, OvsdbError,
};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(10);
const SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";
const DB: &str = "Open_vSwitch";

struct Server {
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn db_sock(&self) -> PathBuf {
        self.dir.path().join("db.sock")
    }

    fn ctl_sock(&self) -> PathBuf {
        self.dir.path().join("ovsdb-server.ctl")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ovsdb-server.log")).unwrap_or_default()
    }
}

fn start_server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let status = Command::new("ovsdb-tool")
        .arg("create")
        .arg(d.join("conf.db"))
        .arg(SCHEMA)
        .status()
        .unwrap();
    assert!(status.success(), "ovsdb-tool create failed: {status}");
    let child = Command::new("ovsdb-server")
        .arg(d.join("conf.db"))
        .arg(format!("--remote=punix:{}", d.join("db.sock").display()))
        .arg(format!(
            "--unixctl={}",
            d.join("ovsdb-server.ctl").display()
        ))
        .arg(format!(
            "--pidfile={}",
            d.join("ovsdb-server.pid").display()
        ))
        .arg(format!(
            "--log-file={}",
            d.join("ovsdb-server.log").display()
        ))
        .env("OVS_RUNDIR", d)
        .env("OVS_DBDIR", d)
        .env("OVS_LOGDIR", d)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Server { child, dir }
}

/// Retries while the socket is absent or not yet listening, which is how a
/// starting daemon looks; any other failure or the deadline ends the wait.
async fn connect_when_ready(server: &mut Server, path: &Path) -> Client {
    let deadline = Instant::now() + T;
    loop {
        match Client::connect(path, T).await {
            Ok(c) => return c,
            Err(RpcError::Connect { source, .. })
                if matches!(
                    source.raw_os_error(),
                    Some(nix::libc::ENOENT) | Some(nix::libc::ECONNREFUSED)
                ) && Instant::now() < deadline =>
            {
                if let Some(status) = server.child.try_wait().unwrap() {
                    panic!("ovsdb-server exited with {status}: {}", server.log());
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => panic!("connect {}: {e}\n{}", path.display(), server.log()),
        }
    }
}

async fn start() -> (Server, Client) {
    let mut server = start_server();
    let path = server.db_sock();
    let client = connect_when_ready(&mut server, &path).await;
    (server, client)
}

/// Inserts the single Open_vSwitch root row; returns its uuid atom.
async fn insert_root(c: &Client, row: Value) -> Value {
    let res = transact(c, DB, vec![op_insert(DB, row, None)], T)
        .await
        .unwrap();
    json!(["uuid", res[0]["uuid"][1]])
}

#[tokio::test(flavor = "current_thread")]
async fn list_dbs_names_both_databases() {
    let (_server, c) = start().await;
    let dbs = list_dbs(&c, T).await.unwrap();
    assert!(dbs.iter().any(|d| d == "Open_vSwitch"), "{dbs:?}");
    assert!(dbs.iter().any(|d| d == "_Server"), "{dbs:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn mutate_map_keys_keeps_foreign_keys() {
    let (_server, c) = start().await;
    let uuid = insert_root(
        &c,
        json!({"other_config": ["map", [["foreign", "keep-me"], ["ours", "old"]]]}),
    )
    .await;
    let row = json!([["_uuid", "==", uuid]]);
    let pairs = vec![
        ("ours".to_owned(), "new".to_owned()),
        ("added".to_owned(), "x y".to_owned()),
    ];
    let mut ops = vec![op_comment("test: set our keys")];
    ops.extend(op_mutate_map_keys(DB, row.clone(), "other_config", &pairs));
    let res = transact(&c, DB, ops, T).await.unwrap();
    assert_eq!(res[1], json!({"count": 1}));

    let res = transact(
        &c,
        DB,
        vec![op_select(DB, row, &["_uuid", "other_config"])],
        T,
    )
    .await
    .unwrap();
    let rows = res[0]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    let oc = &rows[0]["other_config"];
    assert_eq!(map_get(oc, "foreign").as_deref(), Some("keep-me"));
    assert_eq!(map_get(oc, "ours").as_deref(), Some("new"));
    assert_eq!(map_get(oc, "added").as_deref(), Some("x y"));
    assert_eq!(oc[1].as_array().unwrap().len(), 3, "{oc}");
    assert_eq!(set_elems(&rows[0]["_uuid"]), vec![uuid]);
}

#[tokio::test(flavor = "current_thread")]
async fn failed_wait_names_operation_index() {
    let (_server, c) = start().await;
    insert_root(&c, json!({})).await;
    let ops = vec![
        op_comment("test: wait that cannot succeed"),
        op_wait(
            DB,
            json!([]),
            &["next_cfg"],
            "==",
            vec![json!({"next_cfg": 42})],
            0,
        ),
        op_increment(DB, json!([]), "next_cfg"),
    ];
    match transact(&c, DB, ops, T).await.unwrap_err() {
        OvsdbError::Operation {
            index, op, error, ..
        } => {
            assert_eq!(index, 1);
            assert_eq!(op, "wait");
            assert_eq!(error, "timed out");
        }
        other => panic!("{other:?}"),
    }
    // The increment must not have been committed.
    let res = transact(&c, DB, vec![op_select(DB, json!([]), &["next_cfg"])], T)
        .await
        .unwrap();
    assert_eq!(res[0]["rows"][0]["next_cfg"], json!(0));
}

/// ovsdb-server reports an unknown table as a per-operation "syntax error"
/// inside a successful reply, not as a JSON-RPC error.
#[tokio::test(flavor = "current_thread")]
async fn insert_into_unknown_table_is_an_operation_error() {
    let (_server, c) = start().await;
    let ops = vec![
        op_comment("test"),
        op_insert("No_Such_Table", json!({}), None),
    ];
    match transact(&c, DB, ops, T).await.unwrap_err() {
        OvsdbError::Operation {
            index,
            op,
            error,
            details,
        } => {
            assert_eq!(
                (index, op.as_str(), error.as_str()),
                (1, "insert", "syntax error")
            );
            assert!(details.unwrap_or_default().contains("No_Such_Table"));
        }
        other => panic!("{other:?}"),
    }
}

/// An unknown database, by contrast, fails the whole call with an error
/// object.
#[tokio::test(flavor = "current_thread")]
async fn transact_on_unknown_database_is_a_remote_error() {
    let (_server, c) = start().await;
    match transact(&c, "No_Such_Db", vec![op_comment("x")], T)
        .await
        .unwrap_err()
    {
        OvsdbError::Rpc(RpcError::Remote { method, error, .. }) => {
            assert_eq!(method, "transact");
            assert_eq!(error["error"], json!("unknown database"), "{error}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn unixctl_version_and_unknown_command() {
    let (mut server, _c) = start().await;
    let ctl = server.ctl_sock();
    let u = connect_when_ready(&mut server, &ctl).await;
    let v = u.call("version", json!([]), T).await.unwrap();
    let text = v.as_str().unwrap_or_default();
    assert!(text.contains("ovsdb-server"), "{v}");
    match u.call("no-such-command", json!([]), T).await.unwrap_err() {
        RpcError::Remote { method, error, .. } => {
            assert_eq!(method, "no-such-command");
            assert!(error.is_string(), "{error}");
        }
        other => panic!("{other:?}"),
    }
    // The connection stays usable after a remote error.
    let v2 = u.call("version", json!([]), T).await.unwrap();
    assert_eq!(v2, v);
}

#[tokio::test(flavor = "current_thread")]
async fn monitor_reports_row_changes() {
    let (_server, c) = start().await;
    let uuid = insert_root(&c, json!({})).await;
    let uuid_str = uuid[1].as_str().unwrap().to_owned();
    let mut updates = c.notifications().unwrap();
    let initial = c
        .call(
            "monitor",
            json!([DB, "mon-1", {DB: {"columns": ["cur_cfg", "next_cfg"]}}]),
            T,
        )
        .await
        .unwrap();
    assert_eq!(initial[DB][&uuid_str]["new"]["next_cfg"], json!(0));

    transact(&c, DB, vec![op_increment(DB, json!([]), "next_cfg")], T)
        .await
        .unwrap();
    let (method, params) = tokio::time::timeout(T, updates.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(method, "update");
    assert_eq!(params[0], json!("mon-1"));
    let change = &params[1][DB][&uuid_str];
    assert_eq!(change["new"]["next_cfg"], json!(1), "{params}");
    assert_eq!(change["old"]["next_cfg"], json!(0), "{params}");
}

//! OVSDB for nodes that are not sandboxes: a central OVN Southbound of the test's own (an
//! `ovsdb-server` on a unix socket in the test's temp dir, killed on drop; standalone or a
//! one-member raft cluster), creating a Southbound database as a same-version ovn-northd
//! leaves it, and the `ovs-vsctl`/`ovn-sbctl` clients.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::wait_for;

/// Holds a running SB ovsdb-server for a non-sandbox node.
pub struct Southbound(pub std::process::Child);

impl Drop for Southbound {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Creates an OVN Southbound database file at `db`, as a cluster's ovn-northd of the installed
/// version leaves it for ovn-controller: an `SB_Global` row with that northd's internal version
/// (under `ovn-match-northd-version`, on by default, ovn-controller needs it to apply anything).
pub fn create_sb_db(db: &Path) {
    assert!(Command::new("ovsdb-tool")
        .arg("create")
        .arg(db)
        .arg("/usr/share/ovn/ovn-sb.ovsschema")
        .status()
        .unwrap()
        .success());
    let row = serde_json::json!(["OVN_Southbound", {
        "op": "insert", "table": "SB_Global",
        "row": {"options": ["map", [["northd_internal_version", super::northd_internal_version()]]]},
    }]);
    assert!(Command::new("ovsdb-tool")
        .arg("transact")
        .arg(db)
        .arg(row.to_string())
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success());
}

/// A Southbound in `dir` (`sb.db`, `sb.sock`, `sb.ctl`), initialized and answering; its guard
/// and its `unix:` remote.
pub fn southbound(dir: &Path) -> (Southbound, String) {
    let db = dir.join("sb.db");
    create_sb_db(&db);
    serve_southbound(dir, &db)
}

/// A clustered Southbound in `dir`: a one-member raft cluster made by `ovsdb-tool
/// create-cluster` (as ovn-central's are), served like [`southbound`]. Called again on the same
/// `dir` once the guard is dropped, it recreates the cluster — a new cluster id and a log
/// index starting over, as after ovn-central's databases were rebuilt or restored.
pub fn clustered_southbound(dir: &Path) -> (Southbound, String) {
    let db = dir.join("sb.db");
    let _ = std::fs::remove_file(&db);
    let raft = format!("unix:{}", dir.join("sb-raft.sock").display());
    let out = Command::new("ovsdb-tool")
        .arg("create-cluster")
        .arg(&db)
        .arg("/usr/share/ovn/ovn-sb.ovsschema")
        .arg(&raft)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ovsdb-tool create-cluster: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (sb, remote) = serve_southbound(dir, &db);
    // As the cluster's ovn-northd would leave it (see `create_sb_db`).
    let version = format!(
        "options:northd_internal_version=\"{}\"",
        super::northd_internal_version()
    );
    db_ctl("ovn-sbctl", &remote, &["set", "SB_Global", ".", &version]);
    (sb, remote)
}

/// `ovsdb-server` for the Southbound database `db` on `dir/sb.sock`, initialized.
pub fn serve_southbound(dir: &Path, db: &Path) -> (Southbound, String) {
    let sock = dir.join("sb.sock");
    let child = Command::new("ovsdb-server")
        .arg(db)
        .arg(format!("--remote=punix:{}", sock.display()))
        .arg(format!("--unixctl={}", dir.join("sb.ctl").display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let sb = Southbound(child);
    let remote = format!("unix:{}", sock.display());
    wait_for("SB up", Duration::from_secs(10), || {
        Command::new("ovn-sbctl")
            .args([&format!("--db={remote}"), "--timeout=5", "init"])
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    });
    (sb, remote)
}

/// `PROGRAM --db=DB --timeout=10 ARGS...` (ovs-vsctl, ovn-sbctl): its trimmed stdout; panics
/// with its stderr when it fails.
pub fn db_ctl(program: &str, db: &str, args: &[&str]) -> String {
    let mut cmd = Command::new(program);
    cmd.arg(format!("--db={db}")).arg("--timeout=10").args(args);
    run_ok(&mut cmd).trim().to_string()
}

/// Runs `cmd` to its end: its stdout, or a panic naming it with its stderr when it failed.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

//! Upgrade across versions on one node: a rolling-update takeover from a supervisor running the
//! host's OVS 3.1 / OVN 23.03 to one running OVS 3.5 / OVN 25.03 inside the trixie root
//! (`scripts/in-root.sh`, the node directory shared at the same path, as two pods share the
//! host paths), then a rollback to 3.1 on the converted database.
//!
//! `#[ignore]`d in a plain run: it needs the root. `scripts/test-matrix.sh` runs it with
//! `OOS_TRIXIE_ROOT` set (`--versions upgrade`). Measured and printed: time to ready of the new
//! instance, its own `ready_ms` and stage timeline, and how long br-int's flow table was unreachable or empty.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::confdb_versions::ovsdb_tool;
use crate::harness::*;

const READY: Duration = Duration::from_secs(60);
const HEALTH: (&str, &str) = ("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "200");

fn trixie_root() -> PathBuf {
    let root = std::env::var_os("OOS_TRIXIE_ROOT")
        .expect("OOS_TRIXIE_ROOT unset: run scripts/test-matrix.sh --versions upgrade");
    PathBuf::from(root)
}

/// A supervisor inside `root` on the sandbox `dir` (shared through /tmp), logging into a temp
/// dir of its own. Its pid is the supervisor's: in-root.sh execs all the way.
fn instance_in_root(root: &Path, dir: &Path) -> Node {
    let mut n = Node {
        dir: tempfile::tempdir().unwrap(),
        child: None,
    };
    let log = std::fs::File::create(n.log_path()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/in-root.sh");
    let mut c = Command::new(script);
    c.env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("OOS_SHARE_TMP", "1")
        .env("OVS_OVN_SUPERVISOR_LOG", "debug")
        .env(HEALTH.0, HEALTH.1)
        .arg(root)
        .arg(BIN)
        .arg("run")
        .arg("--sandbox")
        .arg(dir)
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    n.child = Some(c.spawn().unwrap());
    n
}

/// `ready_ms=N timeline=...` of the last "node ready" line in `log`.
fn ready_line(log: &str) -> Option<&str> {
    let line = log.lines().rev().find(|l| l.contains("node ready"))?;
    line.find("ready_ms=").map(|i| line[i..].trim())
}

fn flow_count(mgmt: &str) -> usize {
    let out = Command::new("ovs-ofctl")
        .args(["dump-flows", mgmt, "--no-stats"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("actions="))
        .count()
}

#[test]
#[ignore = "needs the trixie root: scripts/test-matrix.sh --versions upgrade"]
fn takeover_from_3_1_to_3_5_converts_and_keeps_identity_and_flows() {
    let root = trixie_root();
    let mut old = Node::new();
    old.start(&[HEALTH]);
    old.wait_ready(READY);
    let dir = old.path().to_path_buf();
    let db = dir.join("etc/openvswitch/conf.db");
    let db_s = db.display().to_string();
    assert_eq!(
        ovsdb_tool(&["db-version", &db_s]),
        "8.3.1",
        "not a 3.1 node"
    );
    let system_id = old.file("etc/openvswitch/system-id.conf");
    let cksum_31 = ovsdb_tool(&["db-cksum", &db_s]);
    let mgmt = format!("unix:{}", dir.join("run/openvswitch/br-int.mgmt").display());
    let flows_before = flow_count(&mgmt);
    assert!(flows_before > 0, "ovn-controller installed no flows");
    let db_sock = dir.join("run/openvswitch/db.sock").display().to_string();
    let sampler = Sampler::start(&db_s, &db_sock, &mgmt);

    let t0 = Instant::now();
    let mut new = instance_in_root(&root, &dir);
    let new_pid = new.child.as_ref().unwrap().id() as i64;
    old.wait_owner(new_pid, READY, Some(&mut new), || {});
    let took = t0.elapsed();
    std::thread::sleep(Duration::from_millis(300)); // the settled node, for the sampler
    let s = sampler.finish();
    let flows_after = flow_count(&mgmt);
    eprintln!(
        "upgrade 3.1/23.03 -> 3.5/25.03: ready after {} ms (new instance: {}); br-int flows {flows_before} -> {flows_after}, table unreachable or empty {} ms in all (longest {} ms)",
        took.as_millis(),
        ready_line(&new.log()).unwrap_or("no node ready line"),
        s.gap.as_millis(),
        s.longest.as_millis()
    );
    assert_eq!((s.max_servers, s.max_switches), (1, 1), "overlap");
    assert!(new.log().contains("restored br-int flows"), "{}", new.log());
    assert!(flows_after > 0);
    assert_eq!(
        old.vsctl(&["get", "Open_vSwitch", ".", "ovs_version"]),
        "\"3.5.0\""
    );
    assert_eq!(ovsdb_tool(&["db-version", &db_s]), "8.8.0");
    let backup = format!(
        "{db_s}.backup8.3.1-{}",
        cksum_31.split_whitespace().next().unwrap()
    );
    assert!(Path::new(&backup).is_file(), "no {backup}");
    assert_eq!(old.file("etc/openvswitch/system-id.conf"), system_id);
    assert_eq!(
        old.vsctl(&["get", "Open_vSwitch", ".", "external_ids:system-id"]),
        format!("\"{}\"", system_id.trim())
    );

    assert!(old.stop().0.success(), "the old instance exits 0");
    new.signal("TERM");
    assert!(new.wait_exit(Duration::from_secs(30)).0.success());
    rollback_is_refused(&dir, &backup);
}

/// The 3.1 supervisor on the 3.5 database: exit 1 naming both versions and the backup, the
/// file unchanged.
fn rollback_is_refused(dir: &Path, backup: &str) {
    let db = dir.join("etc/openvswitch/conf.db");
    let before = std::fs::read(&db).unwrap();
    let mut back = instance_on(dir, &[HEALTH]);
    let (status, _) = back.wait_exit(READY);
    let log = back.log();
    assert_eq!(status.code(), Some(1), "{log}");
    for part in ["has schema version 8.8.0", "(8.3.1)", backup] {
        assert!(log.contains(part), "{part:?} not in:\n{log}");
    }
    assert_eq!(std::fs::read(&db).unwrap(), before, "conf.db changed");
    let line = log.lines().rev().find(|l| l.contains("refusing")).unwrap();
    eprintln!("upgrade: rollback to 3.1 refused: {line}");
}

//! The node as a real Kube-OVN cluster runs it, on the real daemons: ovn-central's files in the
//! shared /run/ovn (from another pid namespace) are never touched; a Southbound outage at start
//! neither stops nor restarts anything, and the node becomes ready when the Southbound answers;
//! readiness reports ovn-controller's version skew with ovn-northd.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const READY: Duration = Duration::from_secs(30);

/// ovn-central's files on a master node, in the run dir it shares with us: its Southbound
/// ovsdb-server running in a pid namespace of its own (so its pidfile holds a pid that means
/// something else here), and ovn-northd's and the NB's files left with pids that do not exist
/// here and sockets nobody listens on.
struct Central {
    sb: Child,
    dir: PathBuf,
}

impl Drop for Central {
    fn drop(&mut self) {
        // unshare --kill-child takes ovsdb-server (pid 1 of its namespace) with it.
        let _ = self.sb.kill();
        let _ = self.sb.wait();
    }
}

impl Central {
    fn start(dir: &Path, data: &Path) -> Central {
        std::fs::create_dir_all(dir).unwrap();
        let db = data.join("central-sb.db");
        assert!(Command::new("ovsdb-tool")
            .arg("create")
            .arg(&db)
            .arg("/usr/share/ovn/ovn-sb.ovsschema")
            .status()
            .unwrap()
            .success());
        let d = |n: &str| dir.join(n).display().to_string();
        let sb = Command::new("unshare")
            .args(["--pid", "--fork", "--kill-child", "ovsdb-server"])
            .arg(&db)
            .arg(format!("--remote=punix:{}", d("ovnsb_db.sock")))
            .arg(format!("--unixctl={}", d("ovnsb_db.ctl")))
            .arg(format!("--pidfile={}", d("ovnsb_db.pid")))
            .arg(format!(
                "--log-file={}",
                data.join("central-sb.log").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let central = Central {
            sb,
            dir: dir.to_path_buf(),
        };
        let remote = central.remote();
        let t0 = Instant::now();
        while !Command::new("ovn-sbctl")
            .args([&format!("--db={remote}"), "--timeout=5", "init"])
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
        {
            assert!(t0.elapsed() < Duration::from_secs(10), "central SB not up");
            std::thread::sleep(Duration::from_millis(20));
        }
        // Pids beyond the kernel's limit: they exist in no namespace we can see.
        std::fs::write(dir.join("ovn-northd.pid"), "4194301\n").unwrap();
        std::fs::write(dir.join("ovnnb_db.pid"), "4194302\n").unwrap();
        for dead in ["ovnnb_db.sock", "ovnnb_db.ctl", "ovn-northd.4194301.ctl"] {
            drop(std::os::unix::net::UnixListener::bind(dir.join(dead)).unwrap());
        }
        central
    }

    fn remote(&self) -> String {
        format!("unix:{}", self.dir.join("ovnsb_db.sock").display())
    }

    /// Every ovn-central file: name, inode and (for regular files) content.
    fn files(&self) -> Vec<(String, u64, String)> {
        let mut v: Vec<_> = std::fs::read_dir(&self.dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| {
                n.starts_with("ovnsb_db")
                    || n.starts_with("ovnnb_db")
                    || n.starts_with("ovn-northd")
            })
            .map(|n| {
                let p = self.dir.join(&n);
                let ino = std::fs::symlink_metadata(&p).unwrap().ino();
                (n, ino, std::fs::read_to_string(&p).unwrap_or_default())
            })
            .collect();
        v.sort();
        v
    }
}

fn preflight(node: &Node, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .arg("preflight")
        .arg("--sandbox")
        .arg(node.path())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn ovn_central_files_in_the_shared_run_dir_survive_run_reboot_and_preflight() {
    let mut node = Node::new();
    let central = Central::start(&node.path().join("run/ovn"), node.path());
    let before = central.files();
    assert_eq!(before.len(), 8, "{before:?}");
    assert!(before
        .iter()
        .any(|(n, _, pid)| n == "ovnsb_db.pid" && pid.trim() == "1"));
    let remote = central.remote();
    let env = [("OVN_SB_ADDR", remote.as_str())];

    node.start(&env);
    node.wait_ready(READY);
    assert_eq!(central.files(), before, "after run");

    node.power_loss();
    assert_eq!(central.files(), before, "after the power loss");
    let (code, table) = preflight(&node, &env);
    assert_eq!(code, Some(0), "{table}");
    assert!(
        !table.contains("ovnsb_db") && !table.contains("ovn-northd"),
        "{table}"
    );
    assert_eq!(central.files(), before, "after preflight");

    node.start(&env);
    node.wait_ready(READY);
    assert_eq!(
        central.files(),
        before,
        "after the start after the power loss"
    );
    // Our own leftovers were still cleaned up.
    assert!(
        node.log()
            .lines()
            .any(|l| l.contains("removed stale file") && l.contains("ovn-controller.pid")),
        "{}",
        node.log()
    );
    assert!(node.stop().0.success());
    assert_eq!(central.files(), before, "after the stop");
}

fn daemons(node: &Node) -> Vec<(String, i64)> {
    let status = node.status().expect("status answers");
    status["daemons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap().to_string(),
                d["pid"].as_i64().unwrap_or(0),
            )
        })
        .collect()
}

#[test]
fn a_node_starts_without_the_southbound_and_becomes_ready_when_it_answers() {
    let sb_dir = tempfile::Builder::new().prefix("oos-sb").tempdir().unwrap();
    // Nothing listens there yet: the central database is down.
    let remote = format!("unix:{}", sb_dir.path().join("sb.sock").display());
    let mut node = Node::new();
    node.start(&[("OVN_SB_ADDR", remote.as_str())]);
    let t0 = Instant::now();
    while node.probe("startup").0 != 0 {
        assert!(
            t0.elapsed() < READY,
            "start did not complete: {}",
            node.log()
        );
        assert!(
            node.child.as_mut().unwrap().try_wait().unwrap().is_none(),
            "exited: {}",
            node.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = daemons(&node);
    assert_eq!(started.len(), 3, "{started:?}");
    assert!(started.iter().all(|(_, pid)| *pid > 0), "{started:?}");
    let (code, reason) = node.probe("readiness");
    assert_eq!(code, 3, "{reason}");
    assert!(
        reason.contains("Southbound") && reason.contains(&remote),
        "{reason}"
    );

    // A central outage of a minute: the node keeps running, alive, with the same daemons.
    let outage = Instant::now();
    while outage.elapsed() < Duration::from_secs(60) {
        assert!(
            node.child.as_mut().unwrap().try_wait().unwrap().is_none(),
            "exited: {}",
            node.log()
        );
        let (code, reason) = node.probe("liveness");
        assert_eq!(code, 0, "liveness failed during the outage: {reason}");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        daemons(&node),
        started,
        "a daemon was restarted during the outage"
    );
    assert_eq!(node.probe("readiness").0, 3);

    let (_sb, sb_remote) = southbound(sb_dir.path());
    assert_eq!(sb_remote, remote);
    let back = Instant::now();
    let took = node.wait_ready(READY);
    println!(
        "southbound back: ready after {} ms (ovn-controller's own reconnect backoff included)",
        back.elapsed().max(took).as_millis()
    );
    assert_eq!(daemons(&node), started);
    assert!(node.stop().0.success());
}

fn sbctl(node: &Node, args: &[&str]) -> String {
    let db = format!(
        "unix:{}",
        node.path().join("run/ovn/ovnsb_db.sock").display()
    );
    let out = Command::new("ovn-sbctl")
        .arg(format!("--db={db}"))
        .arg("--timeout=10")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ovn-sbctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Waits until `probe readiness` gives `code` with a reason containing `needle`.
fn wait_readiness(node: &Node, code: i32, needle: &str, within: Duration) -> String {
    let t0 = Instant::now();
    loop {
        let (c, reason) = node.probe("readiness");
        if c == code && reason.contains(needle) {
            return reason;
        }
        assert!(
            t0.elapsed() < within,
            "readiness never became {code} with {needle:?}; last: {c} {reason}; log:\n{}",
            node.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn readiness_reports_version_skew_with_ovn_northd() {
    let mut node = Node::new();
    node.start(&[("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "500")]);
    node.wait_ready(READY);
    // An ovn-northd of another version, and what Kube-OVN's upgrade hook sets.
    sbctl(
        &node,
        &[
            "set",
            "SB_Global",
            ".",
            "options:northd_internal_version=0.0.0-skewed",
        ],
    );
    node.vsctl(&[
        "set",
        "Open_vSwitch",
        ".",
        "external_ids:ovn-match-northd-version=true",
    ]);
    let reason = wait_readiness(
        &node,
        3,
        "does not match ovn-northd's (0.0.0-skewed)",
        READY,
    );
    assert_eq!(
        node.probe("liveness").0,
        0,
        "skew is no reason to restart anything"
    );
    // ovn-northd upgraded to ovn-controller's own version: ready again.
    let controller = reason
        .strip_prefix("ovn-controller's version ")
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("{reason}"));
    sbctl(
        &node,
        &[
            "set",
            "SB_Global",
            ".",
            &format!("options:northd_internal_version={controller}"),
        ],
    );
    // ovn-controller logs a persisting mismatch once a minute at most, so the skew ages out
    // of readiness a minute or so after it is gone.
    let t0 = Instant::now();
    wait_readiness(&node, 0, "ready", Duration::from_secs(120));
    println!(
        "version skew fixed: ready again after {} ms",
        t0.elapsed().as_millis()
    );
    assert!(node.stop().0.success());
}

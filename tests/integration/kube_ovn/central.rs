//! ovn-central's files in the run dir a master node shares with it (from another pid
//! namespace) are never touched: not by `run`, a power loss and the start after it, `preflight`,
//! nor the stop.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::READY;
use crate::harness::*;

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
        create_sb_db(&db);
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
    let (code, table) = preflight(node.path(), &env, &[]);
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

//! The old node: Debian's `ovs-ctl start` and `ovn-ctl start_controller` as Kube-OVN's
//! start-ovs.sh runs them (each daemon under its `--monitor` parent), in a network namespace
//! held open by a process of the test's own, with other writers' keys and a flow of their own;
//! a guard that kills whatever of it still runs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::READY;
use crate::harness::*;

const OVS_CTL: &str = "/usr/share/openvswitch/scripts/ovs-ctl";
const OVN_CTL: &str = "/usr/share/ovn/scripts/ovn-ctl";
/// A flow nobody else writes: it must travel through the save and the restore.
const FOREIGN_FLOW: &str = "table=250,priority=7,cookie=0xbeef,actions=drop";

/// A network namespace held open by a sleeping process (entered with `nsenter`, where the
/// harness's [`Netns`] is a named one); everything of the node runs in it.
pub(super) struct HeldNetns(Child);

impl HeldNetns {
    pub(super) fn new() -> HeldNetns {
        let child = Command::new("unshare")
            .args(["-n", "sleep", "3600"])
            .spawn()
            .unwrap();
        let ns = HeldNetns(child);
        let mine = std::fs::read_link("/proc/self/ns/net").unwrap();
        let t0 = Instant::now();
        // `unshare` execs `sleep` once the namespace exists.
        while std::fs::read_link(format!("/proc/{}/ns/net", ns.0.id())).ok() == Some(mine.clone()) {
            assert!(t0.elapsed() < Duration::from_secs(10), "no netns");
            std::thread::sleep(Duration::from_millis(5));
        }
        ns
    }

    /// `program` inside the namespace, with a clean environment and the node's directories.
    pub(super) fn command(&self, d: &Path, program: &str) -> Command {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut path = std::env::split_paths(&path).collect::<Vec<_>>();
        path.insert(0, "/usr/sbin".into());
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.0.id().to_string(), "-n", program])
            .env_clear()
            .env("PATH", std::env::join_paths(path).unwrap())
            .envs(dirs(d));
        c
    }
}

impl Drop for HeldNetns {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The same host paths for the old node and ours; ovn-ctl wants two more.
fn dirs(d: &Path) -> Vec<(&'static str, PathBuf)> {
    let mut v = host_dirs(d);
    v.extend([
        ("OVN_DBDIR", d.join("lib/ovn")),
        ("OVN_SYSCONFDIR", d.join("etc")),
    ]);
    v
}

/// State, parent, comm and start time from `/proc/PID/stat`.
fn stat(pid: i32) -> Option<(char, i32, String, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, rest) = s.rsplit_once(')')?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some((
        f.first()?.chars().next()?,
        f.get(1)?.parse().ok()?,
        head.split_once('(')?.1.to_string(),
        f.get(19)?.parse().ok()?,
    ))
}

/// One process of the old node, as it was when we recorded it.
#[derive(Debug, Clone)]
pub(super) struct Old {
    pub(super) what: String,
    pub(super) pid: i32,
    comm: String,
    start: u64,
}

impl Old {
    fn record(what: String, pid: i32) -> Old {
        let (_, _, comm, start) = stat(pid).unwrap_or_else(|| panic!("{what} {pid} is gone"));
        Old {
            what,
            pid,
            comm,
            start,
        }
    }

    /// Still that same process, and not exited (a zombie has exited).
    pub(super) fn alive(&self) -> bool {
        stat(self.pid).is_some_and(|(state, _, comm, start)| {
            comm == self.comm && start == self.start && !matches!(state, 'Z' | 'X')
        })
    }
}

/// The old node's workers and monitors; whatever of them still runs is killed on drop,
/// monitors first (a failed test leaves nothing behind).
pub(super) struct OldNode(pub(super) Vec<Old>);

impl Drop for OldNode {
    fn drop(&mut self) {
        let (monitors, workers): (Vec<&Old>, Vec<&Old>) =
            self.0.iter().partition(|o| o.comm == "monitor");
        for o in monitors.into_iter().chain(workers) {
            if o.alive() {
                let _ = Command::new("kill")
                    .args(["-KILL", &o.pid.to_string()])
                    .status();
            }
        }
    }
}

pub(super) fn run_ok(mut c: Command) -> String {
    let out = c.stderr(Stdio::piped()).output().unwrap();
    assert!(
        out.status.success(),
        "{c:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub(super) fn vsctl(d: &Path, args: &[&str]) -> String {
    let mut c = Command::new("ovs-vsctl");
    c.arg(format!(
        "--db=unix:{}",
        d.join("run/openvswitch/db.sock").display()
    ))
    .arg("--timeout=10")
    .args(args);
    run_ok(c)
}

pub(super) fn controller_connected(d: &Path) -> bool {
    let Some(pid) = std::fs::read_to_string(d.join("run/ovn/ovn-controller.pid")).ok() else {
        return false;
    };
    let ctl = d.join(format!("run/ovn/ovn-controller.{}.ctl", pid.trim()));
    Command::new("ovn-appctl")
        .arg("-t")
        .arg(ctl)
        .arg("connection-status")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "connected")
}

impl OldNode {
    /// Records the worker in `pidfile` and its `--monitor` parent (ovs-lib's `start_daemon`
    /// passes `--monitor`), checking that they are what they should be.
    fn adopt(&mut self, d: &Path, pidfile: &str, program: &str) {
        let pid: i32 = std::fs::read_to_string(d.join(pidfile))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let worker = Old::record(program.into(), pid);
        let (_, ppid, _, _) = stat(pid).unwrap();
        // The monitor renames itself to `monitor` just after forking the worker, so right
        // after ovs-ctl returns it may still carry the program's name for a moment.
        let t0 = std::time::Instant::now();
        while std::fs::read_to_string(format!("/proc/{ppid}/comm"))
            .is_ok_and(|c| c.trim() != "monitor")
        {
            if t0.elapsed() > std::time::Duration::from_secs(5) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let monitor = Old::record(format!("{program}'s monitor"), ppid);
        self.0.extend([worker.clone(), monitor.clone()]);
        assert_eq!(worker.comm, program);
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        assert!(String::from_utf8_lossy(&cmdline).contains("--monitor"));
        assert_eq!(monitor.comm, "monitor", "parent of {program}");
    }
}

/// Starts the node the way start-ovs.sh does, then sets other writers' keys and a flow.
pub(super) fn start_old_node(ns: &HeldNetns, d: &Path, sb: &str) -> OldNode {
    let mut ovs = ns.command(d, OVS_CTL);
    ovs.args(["start", "--system-id=random", "--no-mlockall"]);
    let status = ovs.status().unwrap();
    // Adopted before anything can fail, so the guard ends these daemons whatever happens next.
    let mut old = OldNode(Vec::new());
    old.adopt(d, "run/openvswitch/ovsdb-server.pid", "ovsdb-server");
    old.adopt(d, "run/openvswitch/ovs-vswitchd.pid", "ovs-vswitchd");
    assert!(status.success(), "ovs-ctl start: {status}");
    let remote = format!("external_ids:ovn-remote={sb}");
    vsctl(
        d,
        &[
            "set",
            "Open_vSwitch",
            ".",
            &remote,
            "external_ids:ovn-encap-type=geneve",
            "external_ids:ovn-encap-ip=127.0.0.1",
        ],
    );
    let add_br =
        "--may-exist add-br br-int -- set Bridge br-int datapath_type=netdev fail_mode=secure";
    vsctl(d, &add_br.split(' ').collect::<Vec<_>>());
    let mut ovn = ns.command(d, OVN_CTL);
    ovn.arg("start_controller");
    let status = ovn.status().unwrap();
    old.adopt(d, "run/ovn/ovn-controller.pid", "ovn-controller");
    assert!(status.success(), "ovn-ctl start_controller: {status}");
    wait_for("old ovn-controller connected", READY, || {
        controller_connected(d)
    });
    vsctl(
        d,
        &[
            "set",
            "Open_vSwitch",
            ".",
            "external_ids:kube-ovn-foreign=1",
            "other_config:foo=bar",
        ],
    );
    let mut add = Command::new("ovs-ofctl");
    add.args(["add-flow", &br_int_mgmt(d), FOREIGN_FLOW]);
    run_ok(add);
    old
}

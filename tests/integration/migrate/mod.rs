//! Migration from Kube-OVN's start-ovs.sh pod, on the real daemons: a node started by Debian's
//! `ovs-ctl start` and `ovn-ctl start_controller` (each daemon under its `--monitor` parent), in a
//! temp dir and a network namespace of its own, is taken over by a non-sandbox `run` on the same
//! directories. No old worker or monitor is left, never two ovsdb-servers on one conf.db nor two
//! vswitchds on one db.sock, and the system-id, the chassis and other writers' keys stay. With
//! the takeover switched off, `run` refuses (exit 4) and the old node is untouched. The
//! migration's figures are printed (`--nocapture`), not asserted.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

const READY: Duration = Duration::from_secs(60);
const OVS_CTL: &str = "/usr/share/openvswitch/scripts/ovs-ctl";
const OVN_CTL: &str = "/usr/share/ovn/scripts/ovn-ctl";
/// A flow nobody else writes: it must travel through the save and the restore.
const FOREIGN_FLOW: &str = "table=250,priority=7,cookie=0xbeef,actions=drop";

/// A network namespace held open by a sleeping process; everything of the node runs in it.
struct Netns(Child);

impl Netns {
    fn new() -> Netns {
        let child = Command::new("unshare")
            .args(["-n", "sleep", "3600"])
            .spawn()
            .unwrap();
        let ns = Netns(child);
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
    fn command(&self, d: &Path, program: &str) -> Command {
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

impl Drop for Netns {
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
struct Old {
    what: String,
    pid: i32,
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
    fn alive(&self) -> bool {
        stat(self.pid).is_some_and(|(state, _, comm, start)| {
            comm == self.comm && start == self.start && !matches!(state, 'Z' | 'X')
        })
    }
}

/// The old node's workers and monitors; whatever of them still runs is killed on drop,
/// monitors first (a failed test leaves nothing behind).
struct OldNode(Vec<Old>);

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

fn run_ok(mut c: Command) -> String {
    let out = c.stderr(Stdio::piped()).output().unwrap();
    assert!(
        out.status.success(),
        "{c:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn vsctl(d: &Path, args: &[&str]) -> String {
    let mut c = Command::new("ovs-vsctl");
    c.arg(format!(
        "--db=unix:{}",
        d.join("run/openvswitch/db.sock").display()
    ))
    .arg("--timeout=10")
    .args(args);
    run_ok(c)
}

fn mgmt(d: &Path) -> String {
    format!("unix:{}", d.join("run/openvswitch/br-int.mgmt").display())
}

/// Waits for `cond` under a deadline, naming what did not happen.
fn wait_for(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < within, "{what} not within {within:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn controller_connected(d: &Path) -> bool {
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
fn start_old_node(ns: &Netns, d: &Path, sb: &str) -> OldNode {
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
    add.args(["add-flow", &mgmt(d), FOREIGN_FLOW]);
    run_ok(add);
    old
}

/// `ovs-ovn-supervisor run` (or `preflight`) on the old node's directories, inside its
/// namespace.
fn supervisor(ns: &Netns, d: &Path, sb: &str, subcommand: &str) -> Command {
    let mut c = ns.command(d, BIN);
    c.arg(subcommand)
        .env("OVN_SB_ADDR", sb)
        .env("OVS_OVN_SUPERVISOR_DATAPATH_TYPE", "netdev")
        .env("OVS_OVN_SUPERVISOR_FIREWALL_IPV6", "false")
        .env(
            "OVS_OVN_SUPERVISOR_RUNDIR_LINK",
            d.join("usr/local/var/run/openvswitch"),
        )
        .env("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "200")
        .env("OVS_OVN_SUPERVISOR_LOG", "debug");
    c
}

/// The Open_vSwitch row's identity and the keys of other writers.
fn identity(d: &Path) -> (String, String, String, String) {
    let get = |col: &str| vsctl(d, &["get", "Open_vSwitch", ".", col]);
    (
        std::fs::read_to_string(d.join("etc/openvswitch/system-id.conf")).unwrap(),
        get("external_ids:system-id"),
        get("external_ids:kube-ovn-foreign"),
        get("other_config:foo"),
    )
}

fn new_dir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("oos").tempdir().unwrap()
}

#[test]
fn a_start_ovs_sh_node_is_taken_over_keeping_its_identity() {
    // Dropped last: its guard stops our supervisor and anything left by pidfile.
    let mut node = Node {
        dir: new_dir(),
        child: None,
    };
    let d = node.path().to_path_buf();
    let (_sb, remote) = southbound(&d);
    let ns = Netns::new();
    let old = start_old_node(&ns, &d, &remote);
    let before = identity(&d);
    let chassis = || {
        let mut c = Command::new("ovn-sbctl");
        let db = format!("--db={remote}");
        c.args([&db, "--bare", "--columns=name", "list", "Chassis"]);
        run_ok(c)
    };
    wait_for("old chassis registered", READY, || !chassis().is_empty());
    let chassis_before = chassis();
    let conf_db = d.join("etc/openvswitch/conf.db").display().to_string();
    let db_sock = d.join("run/openvswitch/db.sock").display().to_string();
    let sampler = Sampler::start(&conf_db, &db_sock, &mgmt(&d));

    let log = std::fs::File::create(node.log_path()).unwrap();
    let t0 = Instant::now();
    node.child = Some(
        supervisor(&ns, &d, &remote, "run")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let (mut first_gone, mut all_gone) = (None, None);
    loop {
        let alive = old.0.iter().filter(|o| o.alive()).count();
        if alive < old.0.len() {
            first_gone.get_or_insert(t0.elapsed());
        }
        if alive == 0 {
            all_gone.get_or_insert(t0.elapsed());
        }
        if host_probe(&d, "readiness").0 == Some(0) {
            break;
        }
        if let Some(st) = node.child.as_mut().unwrap().try_wait().unwrap() {
            panic!("supervisor exited {st}:\n{}", node.log());
        }
        assert!(t0.elapsed() < READY, "not ready:\n{}", node.log());
        std::thread::sleep(Duration::from_millis(10));
    }
    let ready = t0.elapsed();
    // Let the sampler see the settled node for a moment.
    std::thread::sleep(Duration::from_millis(300));
    let s = sampler.finish();
    let log = node.log();
    let lines = |pat: &str| -> Vec<String> {
        log.lines()
            .filter(|l| l.contains(pat))
            .map(|l| l.chars().take(300).collect())
            .collect()
    };
    eprintln!(
        "migration: ready {} ms after our start; first old process gone at {:?}, all at {:?}; \
         br-int flow table unreachable or empty for {} ms in all (longest {} ms)",
        ready.as_millis(),
        first_gone.map(|t| t.as_millis()),
        all_gone.map(|t| t.as_millis()),
        s.gap.as_millis(),
        s.longest.as_millis()
    );
    for pat in [
        "old daemon stopped",
        "old monitor stopped",
        "br-int flows",
        "node ready",
    ] {
        for l in lines(pat) {
            eprintln!("  {l}");
        }
    }

    for o in &old.0 {
        assert!(!o.alive(), "old {} (pid {}) still runs", o.what, o.pid);
    }
    assert_eq!(s.max_servers, 1, "two ovsdb-servers on one conf.db at once");
    assert_eq!(s.max_switches, 1, "two vswitchds on one db.sock at once");
    assert_eq!(identity(&d), before, "system-id or foreign keys changed");
    assert_eq!(chassis(), chassis_before, "the chassis changed");
    let other = vsctl(&d, &["get", "Open_vSwitch", ".", "other_config"]);
    assert!(!other.contains("flow-restore-wait"), "left set: {other}");
    assert!(
        !lines("saved br-int flows of the old node").is_empty(),
        "{log}"
    );
    assert!(!lines("restored br-int flows").is_empty(), "{log}");
    let saved = std::fs::read_to_string(d.join("run/openvswitch/br-int.flows.takeover")).unwrap();
    assert!(saved.contains("cookie=0xbeef"), "{saved}");

    node.signal("TERM");
    let (st, _) = node.wait_exit(Duration::from_secs(30));
    assert!(st.success(), "{}", node.log());
}

#[test]
fn without_takeover_the_old_node_is_refused_and_left_alone() {
    // Its guard kills whatever is left by pidfile, should the old node's own guard miss it.
    let node = Node {
        dir: new_dir(),
        child: None,
    };
    let d = node.path();
    let (_sb, remote) = southbound(d);
    let ns = Netns::new();
    let old = start_old_node(&ns, d, &remote);
    let before = identity(d);

    let out = supervisor(&ns, d, &remote, "preflight").output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{table}");
    assert!(
        table.contains("taken over from ovs-ctl/ovn-ctl (start-ovs.sh) daemons"),
        "{table}"
    );

    let out = supervisor(&ns, d, &remote, "run")
        .env("OVS_OVN_SUPERVISOR_TAKEOVER", "false")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("outside any supervisor"), "{err}");
    for o in &old.0 {
        assert!(o.alive(), "old {} (pid {}) was touched", o.what, o.pid);
    }
    assert!(controller_connected(d));
    assert_eq!(identity(d), before);
}

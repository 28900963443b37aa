//! The node as a real Kube-OVN cluster runs it, on the real daemons: ovn-central's files in the
//! shared /run/ovn (from another pid namespace) are never touched; a Southbound outage at start
//! neither stops nor restarts anything, and the node becomes ready when the Southbound answers;
//! readiness reports ovn-controller's version skew with ovn-northd.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

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
    let db = node.path().join("run/ovn/ovnsb_db.sock");
    db_ctl("ovn-sbctl", &format!("unix:{}", db.display()), args)
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

/// Kube-OVN's own `ovs-ovn` pod environment (tests/fixtures/kube-ovn-ovs-ovn.env).
fn kube_ovn_env() -> Vec<(String, String)> {
    let text = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/kube-ovn-ovs-ovn.env"
    ));
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#') && l.contains('='))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn env_of<'a>(env: &'a [(String, String)], key: &str) -> &'a str {
    &env.iter().find(|(k, _)| k == key).unwrap().1
}

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn vsctl(d: &Path, args: &[&str]) -> String {
    let db = d.join("run/openvswitch/db.sock");
    db_ctl("ovs-vsctl", &format!("unix:{}", db.display()), args)
}

fn wait_host_ready(d: &Path, node: &mut Proc) {
    let t0 = Instant::now();
    loop {
        let (code, line) = host_probe(d, "readiness");
        if code == Some(0) {
            return;
        }
        if let Some(st) = node.0.try_wait().unwrap() {
            panic!(
                "exited {st}: {}",
                std::fs::read_to_string(d.join("supervisor.log")).unwrap()
            );
        }
        assert!(
            t0.elapsed() < READY,
            "not ready: {line}\n{}",
            std::fs::read_to_string(d.join("supervisor.log")).unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stop_host(node: &mut Proc) {
    kill("TERM", node.0.id() as i32);
    assert!(node.0.wait().unwrap().success());
}

/// The first word after `key` on `/proc/PID/stat`'s line: the nice value is field 19.
fn nice_of(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = stat.rsplit_once(')').unwrap().1;
    rest.split_whitespace().nth(16).unwrap().parse().unwrap()
}

fn mode(p: &Path) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions()) & 0o7777
}

#[test]
fn a_node_with_kube_ovns_own_environment() {
    let env = kube_ovn_env();
    assert_eq!(env.len(), 12, "{env:?}");
    let dir = tempfile::Builder::new().prefix("oos").tempdir().unwrap();
    let d = dir.path();
    let ns = Netns::new("oos-kovn");
    // The central Southbound at OVN_DB_IPS:KUBE_OVN_SB_PORT, inside the node's namespace.
    let sb_db = d.join("sb.db");
    create_sb_db(&sb_db);
    let sb_local = format!("unix:{}", d.join("sb.sock").display());
    let _sb = Proc(
        ns.command("ovsdb-server")
            .arg(&sb_db)
            .arg(format!(
                "--remote=ptcp:{}:{}",
                env_of(&env, "KUBE_OVN_SB_PORT"),
                env_of(&env, "OVN_DB_IPS")
            ))
            .arg(format!("--remote=p{sb_local}"))
            .arg(format!("--unixctl={}", d.join("sb.ctl").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let sbctl = |args: &[&str]| {
        let out = Command::new("ovn-sbctl")
            .arg(format!("--db={sb_local}"))
            .arg("--timeout=5")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        )
    };
    let t0 = Instant::now();
    while !sbctl(&["init"]).0 {
        assert!(t0.elapsed() < Duration::from_secs(10), "SB not up");
        std::thread::sleep(Duration::from_millis(20));
    }
    let link = d.join("usr/local/var/run/openvswitch");
    let start = || {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("supervisor.log"))
            .unwrap();
        Proc(
            ns.command(BIN)
                .arg("run")
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .envs(env.iter().map(|(k, v)| (k, v)))
                // Only what isolates the test: its own paths and the userspace datapath.
                .envs(host_dirs(d))
                .env("OVS_OVN_SUPERVISOR_RUNDIR_LINK", &link)
                .env("OVS_OVN_SUPERVISOR_DATAPATH_TYPE", "netdev")
                .env("OVS_OVN_SUPERVISOR_FIREWALL_IPV6", "false")
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap(),
        )
    };
    let mut node = start();
    wait_host_ready(d, &mut node);

    // The Open_vSwitch columns kube-ovn-pinger labels its metrics with, as ovs-ctl sets them.
    let get = |col: &str| {
        vsctl(d, &["get", "Open_vSwitch", ".", col])
            .trim_matches('"')
            .to_string()
    };
    let vswitchd = Command::new("ovs-vswitchd")
        .arg("--version")
        .output()
        .unwrap();
    let vswitchd = String::from_utf8_lossy(&vswitchd.stdout).to_string();
    assert_eq!(
        get("ovs_version"),
        vswitchd.split_whitespace().nth(3).unwrap(),
        "{vswitchd}"
    );
    let schema = Command::new("ovsdb-tool")
        .args(["schema-version", "/usr/share/openvswitch/vswitch.ovsschema"])
        .output()
        .unwrap();
    assert_eq!(
        get("db_version"),
        String::from_utf8_lossy(&schema.stdout).trim()
    );
    let os = std::fs::read_to_string("/etc/os-release").unwrap();
    let os_value = |k: &str| {
        os.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap()
            .trim_matches('"')
            .to_string()
    };
    assert_eq!(get("system_type"), os_value("ID"));
    assert_eq!(get("system_version"), os_value("VERSION_ID"));

    // The keys, from Kube-OVN's variables.
    let id = |k: &str| {
        vsctl(
            d,
            &["get", "Open_vSwitch", ".", &format!("external_ids:{k}")],
        )
    };
    assert_eq!(id("hostname"), env_of(&env, "NODE_NAME"));
    assert_eq!(id("ovn-remote"), "\"tcp:127.0.0.1:6642\"");
    assert_eq!(id("ovn-encap-type"), "geneve");
    assert_eq!(id("ovn-remote-probe-interval"), "\"10000\"");
    assert_eq!(id("ovn-openflow-probe-interval"), "\"180\"");
    let ids = vsctl(d, &["get", "Open_vSwitch", ".", "external_ids"]);
    assert!(
        !ids.contains("ovn-match-northd-version"),
        "left to its owner: {ids}"
    );
    assert_eq!(
        vsctl(d, &["get", "Open_vSwitch", ".", "other_config:hw-offload"]),
        "\"false\""
    );
    // kube-ovn-cni sets the tunnel address; ovn-controller then registers its chassis.
    vsctl(
        d,
        &[
            "set",
            "Open_vSwitch",
            ".",
            "external_ids:ovn-encap-ip=127.0.0.1",
        ],
    );
    let t0 = Instant::now();
    while sbctl(&["--columns=hostname", "--bare", "list", "Chassis"]).1 != env_of(&env, "NODE_NAME")
    {
        assert!(t0.elapsed() < READY, "no chassis named after NODE_NAME");
        std::thread::sleep(Duration::from_millis(20));
    }

    // The files kube-ovn-cni and operators rely on.
    let sysid = std::fs::read_to_string(d.join("etc/openvswitch/system-id.conf")).unwrap();
    assert_eq!(id("system-id"), format!("\"{}\"", sysid.trim()));
    assert_eq!(mode(&d.join("etc/openvswitch/system-id.conf")), 0o600);
    assert_eq!(mode(&d.join("etc/openvswitch/conf.db")), 0o600);
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        d.join("run/openvswitch")
    );
    let pid = |rel: &str| -> i32 {
        std::fs::read_to_string(d.join(rel))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let daemons = [
        ("run/openvswitch", "ovsdb-server"),
        ("run/openvswitch", "ovs-vswitchd"),
        ("run/ovn", "ovn-controller"),
    ];
    for (run, name) in daemons {
        let p = pid(&format!("{run}/{name}.pid"));
        assert!(
            d.join(format!("{run}/{name}.{p}.ctl")).exists(),
            "{name}'s ctl"
        );
        assert_eq!(nice_of(p), -10, "{name} runs at nice -10 as under ovs-ctl");
    }
    let ctl = d.join(format!(
        "run/openvswitch/ovsdb-server.{}.ctl",
        pid("run/openvswitch/ovsdb-server.pid")
    ));
    let vlog = Command::new("ovs-appctl")
        .arg("-t")
        .arg(&ctl)
        .arg("vlog/list")
        .output()
        .unwrap();
    let vlog = String::from_utf8_lossy(&vlog.stdout).to_string();
    for module in ["jsonrpc", "reconnect"] {
        let line = vlog
            .lines()
            .find(|l| l.split_whitespace().next() == Some(module))
            .unwrap();
        assert_eq!(
            line.split_whitespace().last(),
            Some("ERR"),
            "{module}: {vlog}"
        );
    }
    let rules = ns.run("iptables", &["-S", "INPUT"]);
    let ours: Vec<&str> = rules
        .lines()
        .filter(|l| l.contains("ovs-ovn-supervisor"))
        .collect();
    assert_eq!(ours.len(), 1, "{rules}");
    assert!(ours[0].contains("--dport 6081"), "{rules}");

    // Underlay bridges: Kube-OVN's whose link is gone after a "reboot" are deleted.
    for (br, vendor) in [("br-gone", true), ("br-provider", true), ("br-mine", false)] {
        let mut args = vec![
            "add-br",
            br,
            "--",
            "set",
            "Bridge",
            br,
            "datapath_type=netdev",
        ];
        if vendor {
            args.push("external_ids:vendor=kube-ovn");
        }
        vsctl(d, &args);
    }
    stop_host(&mut node);
    // vswitchd's exit (no --cleanup) leaves the bridges' devices; a reboot would not.
    for br in ["br-gone", "br-provider", "br-mine"] {
        assert!(
            ns.run("ip", &["-o", "link", "show"])
                .contains(&format!(": {br}")),
            "{br}"
        );
    }
    ns.run("ip", &["link", "del", "br-gone"]);
    let mut node = start();
    wait_host_ready(d, &mut node);
    let bridges = vsctl(d, &["list-br"]);
    let bridges: Vec<&str> = bridges.lines().collect();
    assert_eq!(
        bridges,
        ["br-int", "br-mine", "br-provider"],
        "{}",
        std::fs::read_to_string(d.join("supervisor.log")).unwrap()
    );
    let log = std::fs::read_to_string(d.join("supervisor.log")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("deleted Kube-OVN's underlay bridge") && l.contains("br-gone")),
        "{log}"
    );
    stop_host(&mut node);
}

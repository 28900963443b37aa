//! A real (non-sandbox) node run with exactly the environment of Kube-OVN's `ovs-ovn` pod, in a
//! network namespace of its own: the Open_vSwitch columns and keys, files, modes, nice values,
//! log levels and the tunnel rule Kube-OVN's components rely on, and its underlay bridges whose
//! link is gone deleted after a "reboot".

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::READY;
use crate::harness::*;

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

//! Host preparation on the real daemons: a simulated reboot (everything killed with -9, stale
//! files left) followed by a clean start; a second instance refused without disturbing the
//! first; `preflight` on this machine and on a fake host; a full non-sandbox `run` inside a
//! private network namespace (its own iptables), with every path in a temp dir.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::*;

const READY: Duration = Duration::from_secs(30);

#[test]
fn a_simulated_reboot_leaves_stale_files_that_the_next_start_removes() {
    let mut node = Node::new();
    node.start(&[]);
    node.wait_ready(READY);
    node.power_loss();
    let run = node.path().join("run/openvswitch");
    assert!(run.join("ovs-vswitchd.pid").exists() && run.join("br-int.mgmt").exists());

    node.start(&[]);
    node.wait_ready(READY);
    let log = node.log();
    for stale in [
        "ovs-vswitchd.pid",
        "br-int.mgmt",
        "db.sock",
        "ovn-controller.pid",
    ] {
        assert!(
            log.lines()
                .any(|l| l.contains("removed stale file") && l.contains(stale)),
            "{stale} not reported removed:\n{log}"
        );
    }
    assert!(node.stop().0.success());
}

#[test]
fn a_second_instance_without_takeover_is_refused_and_the_first_keeps_running() {
    let mut first = Node::new();
    first.start(&[]);
    first.wait_ready(READY);
    let out = base_command(first.path())
        .env("OVS_OVN_SUPERVISOR_TAKEOVER", "false")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    let sup = first.child.as_ref().unwrap().id();
    assert!(
        err.contains(&format!(
            "ovs-ovn-supervisor pid {sup} already runs this node"
        )),
        "{err}"
    );
    let (code, line) = first.probe("readiness");
    assert_eq!(code, 0, "{line}");
    assert!(first.stop().0.success());
}

/// `preflight` on a sandbox path that must not be created by it.
fn preflight_fresh(env: &[(&str, &str)], extra: &[&str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = preflight(&dir.path().join("sb"), env, extra);
    assert!(
        !dir.path().join("sb").exists(),
        "preflight created the sandbox"
    );
    out
}

#[test]
fn preflight_on_this_machine_and_on_a_refused_kernel() {
    let (code, table) = preflight_fresh(&[], &[]);
    assert_eq!(code, Some(0), "{table}");
    assert!(table.contains("kernel"), "{table}");
    let (code, json) = preflight_fresh(&[], &["--output", "json"]);
    assert_eq!(code, Some(0));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(
        v["checks"].as_array().is_some_and(|c| !c.is_empty()),
        "{json}"
    );

    let host = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(host.path().join("proc/sys/kernel")).unwrap();
    std::fs::write(
        host.path().join("proc/sys/kernel/osrelease"),
        "3.10.0-862.14.4.el7.x86_64\n",
    )
    .unwrap();
    let root = host.path().to_str().unwrap();
    let (code, table) = preflight_fresh(&[("OVS_OVN_SUPERVISOR_HOST_ROOT", root)], &[]);
    assert_eq!(code, Some(4), "{table}");
    assert!(table.contains("3.10.0-898"), "{table}");

    // `run` refuses the same host before starting anything.
    let mut node = Node::new();
    node.start(&[("OVS_OVN_SUPERVISOR_HOST_ROOT", root)]);
    let (status, _) = node.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(4), "{}", node.log());
    assert!(node.daemon_pids().is_empty());
    assert!(!node.path().join("etc/openvswitch/conf.db").exists());
}

#[test]
fn a_real_node_run_sets_the_link_and_the_tunnel_rule_in_its_own_netns() {
    let dir = tempfile::Builder::new().prefix("oos").tempdir().unwrap();
    let d = dir.path();
    let (_sb, remote) = southbound(d);
    let link = d.join("usr/local/var/run/openvswitch");
    std::fs::create_dir_all(&link).unwrap(); // an empty directory: replaced by the link
    let mut vars = host_dirs(d);
    vars.push(("OVS_OVN_SUPERVISOR_RUNDIR_LINK", link.clone()));
    let log = std::fs::File::create(d.join("supervisor.log")).unwrap();
    // `unshare -n`: the node's iptables and br-int live in a namespace of its own.
    let mut child = Command::new("unshare")
        .arg("-n")
        .arg(BIN)
        .arg("run")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(vars.iter().map(|(k, v)| (*k, v.as_os_str())))
        .env("OVN_SB_ADDR", &remote)
        .env("TUNNEL_TYPE", "vxlan")
        .env("OVS_OVN_SUPERVISOR_DATAPATH_TYPE", "netdev")
        .env("OVS_OVN_SUPERVISOR_FIREWALL_IPV6", "false")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let mut last = (None, String::new());
    while t0.elapsed() < READY {
        last = host_probe(d, "readiness");
        if last.0 == Some(0) {
            break;
        }
        if let Some(st) = child.try_wait().unwrap() {
            panic!(
                "exited {st}: {}",
                std::fs::read_to_string(d.join("supervisor.log")).unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(last.0, Some(0), "{last:?}");
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        d.join("run/openvswitch")
    );
    // The rule, seen from inside the node's namespace.
    let rules = Command::new("nsenter")
        .args([
            "-t",
            &child.id().to_string(),
            "-n",
            "iptables",
            "-S",
            "INPUT",
        ])
        .output()
        .unwrap();
    let rules = String::from_utf8_lossy(&rules.stdout);
    let ours: Vec<&str> = rules
        .lines()
        .filter(|l| l.contains("ovs-ovn-supervisor"))
        .collect();
    assert_eq!(ours.len(), 1, "{rules}");
    assert!(ours[0].contains("--dport 4789"), "{rules}");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let st = child.wait().unwrap();
    assert!(
        st.success(),
        "{}",
        std::fs::read_to_string(d.join("supervisor.log")).unwrap()
    );
}

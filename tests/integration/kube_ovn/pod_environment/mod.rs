//! A real (non-sandbox) node run with exactly the environment of Kube-OVN's `ovs-ovn` pod, in a
//! network namespace of its own: the Open_vSwitch columns and keys, files, modes, nice values,
//! log levels and the tunnel rule Kube-OVN's components rely on, and its underlay bridges whose
//! link is gone deleted after a "reboot".

mod pod;

use std::process::Command;
use std::time::{Duration, Instant};

use super::READY;
use pod::{kube_ovn_env, mode, nice_of, Pod};

#[test]
fn a_node_with_kube_ovns_own_environment() {
    let env = kube_ovn_env();
    assert_eq!(env.len(), 12, "{env:?}");
    let pod = Pod::new(env);
    let mut node = pod.start();
    pod.wait_ready(&mut node);

    assert_pinger_columns(&pod);
    assert_keys_from_kube_ovns_variables(&pod);
    assert_chassis_named_after_node_name(&pod);
    assert_identity_files_and_rundir_link(&pod);
    assert_daemons_niced_with_their_ctls(&pod);
    assert_ovsdb_server_logs_only_errors(&pod);
    assert_one_tunnel_rule(&pod);
    assert_tunnel_rule_put_back(&pod);

    // Underlay bridges: Kube-OVN's whose link is gone after a "reboot" are deleted.
    add_underlay_bridges(&pod);
    pod.stop(&mut node);
    reboot_losing_the_link_of(&pod, "br-gone");
    let mut node = pod.start();
    pod.wait_ready(&mut node);
    assert_only_the_linkless_bridge_deleted(&pod);
    assert_encap_ip_left_to_kube_ovn_cni(&pod);
    pod.stop(&mut node);
}

/// kube-ovn-cni's tunnel address survives our restart: the one transaction never writes
/// `ovn-encap-ip` on a real node, and the chassis keeps registering with it.
fn assert_encap_ip_left_to_kube_ovn_cni(pod: &Pod) {
    assert_eq!(
        pod.external_id("ovn-encap-ip"),
        format!("\"{CNI_ENCAP_IP}\"")
    );
    let t0 = Instant::now();
    while pod.sbctl(&["--columns=ip", "--bare", "list", "Encap"]).1 != CNI_ENCAP_IP {
        assert!(
            t0.elapsed() < READY,
            "the chassis' Encap lost kube-ovn-cni's address"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The Open_vSwitch columns kube-ovn-pinger labels its metrics with, as ovs-ctl sets them.
fn assert_pinger_columns(pod: &Pod) {
    let get = |col: &str| {
        pod.vsctl(&["get", "Open_vSwitch", ".", col])
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
}

/// The keys, from Kube-OVN's variables; ovn-match-northd-version on, as start-ovs.sh set it.
fn assert_keys_from_kube_ovns_variables(pod: &Pod) {
    let id = |k: &str| pod.external_id(k);
    assert_eq!(id("hostname"), pod.env("NODE_NAME"));
    assert_eq!(id("ovn-remote"), "\"tcp:127.0.0.1:6642\"");
    assert_eq!(id("ovn-encap-type"), "geneve");
    assert_eq!(id("ovn-remote-probe-interval"), "\"10000\"");
    assert_eq!(id("ovn-openflow-probe-interval"), "\"180\"");
    assert_eq!(id("ovn-match-northd-version"), "\"true\"");
    assert_eq!(
        pod.vsctl(&["get", "Open_vSwitch", ".", "other_config:hw-offload"]),
        "\"false\""
    );
}

/// The node's tunnel address as kube-ovn-cni would write it: not the sandbox's 127.0.0.1, so a
/// supervisor that wrote its own on a real node is seen.
const CNI_ENCAP_IP: &str = "127.0.0.17";

/// kube-ovn-cni sets the tunnel address; ovn-controller then registers its chassis.
fn assert_chassis_named_after_node_name(pod: &Pod) {
    pod.vsctl(&[
        "set",
        "Open_vSwitch",
        ".",
        &format!("external_ids:ovn-encap-ip={CNI_ENCAP_IP}"),
    ]);
    let t0 = Instant::now();
    while pod
        .sbctl(&["--columns=hostname", "--bare", "list", "Chassis"])
        .1
        != pod.env("NODE_NAME")
    {
        assert!(t0.elapsed() < READY, "no chassis named after NODE_NAME");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The files kube-ovn-cni and operators rely on.
fn assert_identity_files_and_rundir_link(pod: &Pod) {
    let d = pod.path();
    let sysid = std::fs::read_to_string(d.join("etc/openvswitch/system-id.conf")).unwrap();
    assert_eq!(
        pod.external_id("system-id"),
        format!("\"{}\"", sysid.trim())
    );
    assert_eq!(mode(&d.join("etc/openvswitch/system-id.conf")), 0o600);
    assert_eq!(mode(&d.join("etc/openvswitch/conf.db")), 0o600);
    assert_eq!(
        std::fs::read_link(pod.link()).unwrap(),
        d.join("run/openvswitch")
    );
}

/// Each daemon has its pidfile and control socket, and runs at nice -10 as under ovs-ctl.
fn assert_daemons_niced_with_their_ctls(pod: &Pod) {
    let daemons = [
        ("run/openvswitch", "ovsdb-server"),
        ("run/openvswitch", "ovs-vswitchd"),
        ("run/ovn", "ovn-controller"),
    ];
    for (run, name) in daemons {
        let p = pod.pid(&format!("{run}/{name}.pid"));
        assert!(
            pod.path().join(format!("{run}/{name}.{p}.ctl")).exists(),
            "{name}'s ctl"
        );
        assert_eq!(nice_of(p), -10, "{name} runs at nice -10 as under ovs-ctl");
    }
}

/// ovsdb-server's jsonrpc and reconnect modules log errors only.
fn assert_ovsdb_server_logs_only_errors(pod: &Pod) {
    let ctl = pod.path().join(format!(
        "run/openvswitch/ovsdb-server.{}.ctl",
        pod.pid("run/openvswitch/ovsdb-server.pid")
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
}

/// One rule of ours in the namespace's `INPUT`: Geneve's port.
fn assert_one_tunnel_rule(pod: &Pod) {
    let rules = pod.ns.run("iptables", &["-S", "INPUT"]);
    let ours: Vec<&str> = rules
        .lines()
        .filter(|l| l.contains("ovs-ovn-supervisor"))
        .collect();
    assert_eq!(ours.len(), 1, "{rules}");
    assert!(ours[0].contains("--dport 6081"), "{rules}");
}

/// `INPUT` flushed behind the running node's back (an operator's `iptables -F`, a firewall
/// manager rewriting the chain): our rule is back within a few rechecks, once, and the rule
/// another program added since is left where it is.
fn assert_tunnel_rule_put_back(pod: &Pod) {
    pod.ns.run("iptables", &["-F", "INPUT"]);
    let other = ["INPUT", "-p", "tcp", "--dport", "9", "-j", "ACCEPT"];
    pod.ns.run("iptables", &[&["-I"][..], &other[..]].concat());
    let t0 = Instant::now();
    while !pod
        .ns
        .run("iptables", &["-S", "INPUT"])
        .contains("ovs-ovn-supervisor")
    {
        let log = pod.log();
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "rule not put back:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_one_tunnel_rule(pod);
    let after = pod.ns.run("iptables", &["-S", "INPUT"]);
    assert!(after.contains("--dport 9 -j ACCEPT"), "{after}");
    // Counted once, for the metrics and `status` (the keeper's own first insert is not).
    let t0 = Instant::now();
    loop {
        let out = Command::new(crate::harness::BIN)
            .env_clear()
            .envs(crate::harness::host_dirs(pod.path()))
            .args(["status", "--output", "json"])
            .output()
            .unwrap();
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if status["firewall_restores"] == 1 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "restores: {}",
            status["firewall_restores"]
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    pod.ns.run("iptables", &[&["-D"][..], &other[..]].concat());
}

/// Two of Kube-OVN's underlay bridges (`vendor=kube-ovn`) and one of someone else's.
fn add_underlay_bridges(pod: &Pod) {
    for (br, vendor) in [
        ("br-gone", true),
        ("br-xchg", true),
        ("br-provider", true),
        ("br-mine", false),
    ] {
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
        // Kube-OVN's exchange-link-name: the bridge took its NIC's name.
        if br == "br-xchg" {
            args.push("external_ids:exchange-link-name=true");
        }
        pod.vsctl(&args);
    }
}

/// After the stop, the bridges' devices are still there; then `gone`'s goes, as a reboot would
/// leave it.
fn reboot_losing_the_link_of(pod: &Pod, gone: &str) {
    // vswitchd's exit (no --cleanup) leaves the bridges' devices; a reboot would not.
    for br in ["br-gone", "br-xchg", "br-provider", "br-mine"] {
        assert!(
            pod.ns
                .run("ip", &["-o", "link", "show"])
                .contains(&format!(": {br}")),
            "{br}"
        );
    }
    pod.ns.run("ip", &["link", "del", gone]);
    // The NIC has its name back after the reboot: a link named like the bridge exists, but it
    // is not the bridge's own device (start-ovs.sh's `ip link show BR type openvswitch`).
    pod.ns.run("ip", &["link", "del", "br-xchg"]);
    let nic = [
        "link",
        "add",
        "br-xchg",
        "type",
        "veth",
        "peer",
        "name",
        "xchg-peer",
    ];
    pod.ns.run("ip", &nic);
}

/// Kube-OVN's bridges whose link is gone (or, with exchange-link-name, whose name is a link
/// that is not the bridge) are deleted; the others stay.
fn assert_only_the_linkless_bridge_deleted(pod: &Pod) {
    let bridges = pod.vsctl(&["list-br"]);
    let bridges: Vec<&str> = bridges.lines().collect();
    assert_eq!(
        bridges,
        ["br-int", "br-mine", "br-provider"],
        "{}",
        pod.log()
    );
    // The NIC named like the exchanged bridge is left alone.
    assert!(pod
        .ns
        .run("ip", &["-o", "link", "show", "br-xchg"])
        .contains("br-xchg"));
}

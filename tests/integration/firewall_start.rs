//! A tunnel port rule that cannot be set at start, with the real iptables-legacy failing the
//! way it fails in Kube-OVN's pod: a whole non-sandbox node run as uid 65534 with the pod's
//! capabilities, in a network and mount namespace of its own whose `/run` is root's and has no
//! `xtables.lock` (the DaemonSet mounts none), so iptables-legacy exits 4 with "Fatal: can't
//! open lock file /run/xtables.lock: Permission denied". The node is a legacy one: kubelet's
//! hint chain is in legacy mangle.
//!
//! The node starts and becomes ready without the rule, `status` says why, the recheck keeps
//! trying and sets the rule once the lock can be opened; with
//! `OVS_OVN_SUPERVISOR_FIREWALL_REQUIRED=true` the start fails instead (exit 1) and leaves
//! nothing running.
//!
//! `CAP_DAC_READ_SEARCH` is added to the pod's capabilities only so that our backend detection
//! can read `/proc/net/ip_tables_names` (0440 root) and see the legacy tables: as plain uid
//! 65534 `iptables-legacy-save` cannot list them, detection picks nft, and nft works.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::*;

const READY: Duration = Duration::from_secs(30);
/// Kube-OVN's ovs-ovn container, plus DAC_READ_SEARCH (see the module doc).
const CAPS: &str = "+net_admin,+net_raw,+net_bind_service,+sys_nice,+sys_admin,+dac_read_search";
const OURS: &str = "ovs-ovn-supervisor";

/// Starts the node as the pod would run it; its pidfiles are under `node.path()` (the
/// [`Node`] guard stops it and kills its daemons however the test ends).
fn start_pod(node: &mut Node, sb_remote: &str, env: &[(&str, &str)]) {
    let d = node.path().to_path_buf();
    std::os::unix::fs::chown(&d, Some(65534), Some(65534)).unwrap();
    let log = std::fs::File::create(node.log_path()).unwrap();
    // As root inside the new namespaces: the legacy hint, then a /run like the container's
    // (root's, 0755, no lock), then uid 65534 with the pod's capabilities runs us.
    let script = format!(
        "iptables-legacy -w 5 -t mangle -N KUBE-IPTABLES-HINT && \
         mount -t tmpfs -o mode=0755 tmpfs /run && \
         exec setpriv --reuid 65534 --regid 65534 --clear-groups \
         --inh-caps {CAPS} --ambient-caps {CAPS} \"$0\" run"
    );
    let child = Command::new("unshare")
        .args(["-m", "-n", "sh", "-c", &script, BIN])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(host_dirs(&d).iter().map(|(k, v)| (*k, v.as_os_str())))
        .env("OVS_OVN_SUPERVISOR_RUNDIR_LINK", d.join("link"))
        .env("OVN_SB_ADDR", sb_remote)
        .env("TUNNEL_TYPE", "vxlan")
        .env("OVS_OVN_SUPERVISOR_DATAPATH_TYPE", "netdev")
        .env("OVS_OVN_SUPERVISOR_FIREWALL_IPV6", "false")
        .env("OVS_OVN_SUPERVISOR_FIREWALL_RECHECK_MS", "300")
        .envs(env.iter().copied())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    node.child = Some(child);
}

/// A Southbound the node's uid 65534 can connect to.
fn open_southbound() -> (tempfile::TempDir, Southbound, String) {
    let dir = tempfile::Builder::new().prefix("oos-sb").tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (sb, remote) = southbound(dir.path());
    let sock = dir.path().join("sb.sock");
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    (dir, sb, remote)
}

/// `status --output json` of the node (not a sandbox: its directories by variable).
fn status(node: &Node) -> serde_json::Value {
    let out = Command::new(BIN)
        .env_clear()
        .envs(host_dirs(node.path()))
        .args(["status", "--output", "json"])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

/// `PROGRAM -S INPUT` in the node's network namespace, lines of our rule only.
fn our_rules(node: &Node, program: &str) -> Vec<String> {
    let pid = node.child.as_ref().unwrap().id().to_string();
    let out = Command::new("nsenter")
        .args(["-t", &pid, "-n", program, "-w", "5", "-S", "INPUT"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{program} -S: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(OURS))
        .map(String::from)
        .collect()
}

fn wait_ready(node: &mut Node) {
    let t0 = Instant::now();
    let mut last = (None, String::new());
    while t0.elapsed() < READY {
        last = host_probe(node.path(), "readiness");
        if last.0 == Some(0) {
            return;
        }
        if let Some(st) = node.child.as_mut().unwrap().try_wait().unwrap() {
            panic!("exited {st}:\n{}", node.log());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("not ready: {last:?}\n{}", node.log());
}

#[test]
fn a_rule_that_cannot_be_set_leaves_the_node_running_and_the_recheck_sets_it_later() {
    let (_sbdir, _sb, remote) = open_southbound();
    let mut node = Node::new();
    start_pod(&mut node, &remote, &[]);
    wait_ready(&mut node);
    assert_eq!(our_rules(&node, "iptables-legacy"), Vec::<String>::new());
    assert_eq!(our_rules(&node, "iptables-nft"), Vec::<String>::new());
    let fw = status(&node)["firewall"].clone();
    assert_eq!(fw["state"], "missing", "{fw}");
    let error = fw["error"].as_str().unwrap();
    assert!(error.contains("`iptables-legacy -w 5 -C INPUT"), "{error}");
    assert!(error.contains("exit status 4"), "{error}");
    assert!(
        error.contains("Fatal: can't open lock file /run/xtables.lock: Permission denied"),
        "{error}"
    );
    // The recheck keeps trying (a later attempt, the same first failure) ...
    wait_for("a failed recheck", READY, || {
        let fw = status(&node)["firewall"].clone();
        fw["state"] == "missing" && fw["checked_at_ms"].as_u64() > fw["since_ms"].as_u64()
    });
    // ... and sets the rule once the lock can be opened (as if the host's were mounted).
    let pid = node.child.as_ref().unwrap().id().to_string();
    let fixed = Command::new("nsenter")
        .args(["-t", &pid, "-m", "sh", "-c"])
        .arg("touch /run/xtables.lock && chown 65534:65534 /run/xtables.lock")
        .status()
        .unwrap();
    assert!(fixed.success());
    wait_for("the rule set by the recheck", READY, || {
        status(&node)["firewall"]["state"] == "in_place"
    });
    let ours = our_rules(&node, "iptables-legacy");
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert!(ours[0].contains("--dport 4789"), "{ours:?}");
    assert_eq!(host_probe(node.path(), "readiness").0, Some(0));
    let (st, _) = {
        node.signal("TERM");
        node.wait_exit(Duration::from_secs(30))
    };
    assert!(st.success(), "{st}:\n{}", node.log());
}

#[test]
fn a_required_rule_that_cannot_be_set_fails_the_start_and_leaves_nothing_running() {
    let (_sbdir, _sb, remote) = open_southbound();
    let mut node = Node::new();
    let required = [("OVS_OVN_SUPERVISOR_FIREWALL_REQUIRED", "true")];
    start_pod(&mut node, &remote, &required);
    let (st, _) = node.wait_exit(READY);
    assert_eq!(st.code(), Some(1), "{}", node.log());
    let log = node.log();
    let last = log.lines().last().unwrap_or_default();
    for part in [
        "ovs-ovn-supervisor: firewall: the tunnel port rule cannot be set",
        "`iptables-legacy -w 5 -C INPUT",
        "can't open lock file /run/xtables.lock: Permission denied",
        "OVS_OVN_SUPERVISOR_FIREWALL_REQUIRED=true",
    ] {
        assert!(last.contains(part), "{part:?} not in {last:?}");
    }
    assert_eq!(node.daemon_pids(), vec![], "a daemon was started");
    assert!(!node.path().join("etc/openvswitch/conf.db").exists());
}

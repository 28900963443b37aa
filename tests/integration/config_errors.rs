//! Bad configuration: exit code 2, a message naming the variable, its value and what is
//! accepted, and nothing created on disk — not even the sandbox directory.

use std::process::Command;

use crate::harness;

fn run_with(env: &[(&str, &str)]) -> (Option<i32>, String, tempfile::TempDir, std::path::PathBuf) {
    let parent = tempfile::tempdir().unwrap();
    let sandbox = parent.path().join("sandbox");
    let out = harness::base_command(&sandbox)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        parent,
        sandbox,
    )
}

#[test]
fn each_bad_value_exits_2_naming_it_and_creates_nothing() {
    let cases: &[(&str, &str, &str)] = &[
        ("OVN_REMOTE_PROBE_INTERVAL", "abc", "whole number"),
        ("OVN_REMOTE_PROBE_INTERVAL", "-5", "whole number"),
        (
            "OVN_REMOTE_PROBE_INTERVAL",
            "184467440737095516160",
            "whole number",
        ),
        ("OVN_REMOTE_OPENFLOW_INTERVAL", "1e3", "whole number"),
        ("TUNNEL_TYPE", "gre0", "geneve, vxlan, stt"),
        (
            "OVN_DB_IPS",
            "10.0.0.300",
            "IPv4 or IPv6 address, or a host name",
        ),
        ("OVS_OVN_SUPERVISOR_LOG_FORMAT", "yaml", "text, json"),
        ("OVS_OVN_SUPERVISOR_LOG", "info,[[[", "tracing filter"),
        ("OVS_OVN_SUPERVISOR_STOP_BUDGET_MS", "soon", "whole number"),
    ];
    for (var, value, expected) in cases {
        let (code, stderr, parent, sandbox) = run_with(&[(var, value)]);
        assert_eq!(code, Some(2), "{var}={value}: {stderr}");
        assert!(stderr.contains(var), "{var}: {stderr}");
        assert!(stderr.contains(value), "{var}: {stderr}");
        assert!(stderr.contains(expected), "{var}: {stderr}");
        assert!(
            !sandbox.exists(),
            "{var}={value} created {}",
            sandbox.display()
        );
        assert_eq!(std::fs::read_dir(parent.path()).unwrap().count(), 0);
    }
}

/// A real node's layout (no sandbox), every directory and path it would create pointed into a
/// temp dir: a bad value exits 2 and none of them exists afterwards, not only the sandbox.
#[test]
fn a_bad_value_on_a_real_node_creates_none_of_its_directories() {
    let parent = tempfile::tempdir().unwrap();
    let node = parent.path().join("node");
    let mut paths: Vec<(&str, std::path::PathBuf)> = harness::host_dirs(&node);
    paths.push((
        "OVS_OVN_SUPERVISOR_RUNDIR_LINK",
        node.join("usr/local/var/run/openvswitch"),
    ));
    paths.push((
        "OVS_OVN_SUPERVISOR_READY_FILE",
        node.join("ready/ovs-ovn-ready"),
    ));
    paths.push(("OVS_OVN_SUPERVISOR_TLS_DIR", node.join("tls")));
    for (var, value) in [
        ("TUNNEL_TYPE", "gre0"),
        ("OVN_REMOTE_PROBE_INTERVAL", "soon"),
        ("OVS_OVN_SUPERVISOR_STAGE_DEADLINE_MS", "-1"),
    ] {
        let out = Command::new(harness::BIN)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(paths.iter().map(|(k, v)| (*k, v)))
            .env("OVN_DB_IPS", "127.0.0.1")
            .env("NODE_NAME", "node-c")
            .env(var, value)
            .arg("run")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}={value}: {stderr}");
        assert!(stderr.contains(var), "{var}: {stderr}");
        for (name, path) in &paths {
            assert!(
                !path.exists(),
                "{var}={value} created {name} {}",
                path.display()
            );
        }
        assert_eq!(
            std::fs::read_dir(parent.path()).unwrap().count(),
            0,
            "{var}={value} created something under {}",
            parent.path().display()
        );
    }
}

#[test]
fn unknown_flag_and_missing_southbound_are_usage_errors() {
    let out = Command::new(harness::BIN)
        .args(["run", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // Outside the sandbox a Southbound address is required.
    let out = Command::new(harness::BIN)
        .env_clear()
        .env("OVS_RUNDIR", "/nonexistent/run")
        .arg("run")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("OVN_DB_IPS"), "{err}");
    assert!(!std::path::Path::new("/nonexistent/run").exists());
}

#[test]
fn help_lists_the_operator_variables() {
    let out = Command::new(harness::BIN)
        .args(["run", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for var in [
        "OVN_REMOTE_PROBE_INTERVAL",
        "OVN_REMOTE_OPENFLOW_INTERVAL",
        "TUNNEL_TYPE",
        "NODE_NAME",
        "KUBE_NODE_NAME",
        "OVN_DB_IPS",
        "KUBE_OVN_SB_PORT",
        "OVN_SB_ADDR",
        "ENABLE_SSL",
        "HW_OFFLOAD",
        "DEBUG_WRAPPER",
        "OVS_RUNDIR",
        "OVS_OVN_SUPERVISOR_STOP_BUDGET_MS",
    ] {
        assert!(help.contains(var), "--help lacks {var}");
    }
}

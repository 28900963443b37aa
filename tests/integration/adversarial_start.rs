//! Attacks on the edges of a run, on the real binary and daemons: configuration gaps a careless
//! operator leaves (each refused with exit 2, naming its variable, before anything is created),
//! a SIGTERM in the first milliseconds or right after a daemon spawned, control sockets of
//! killed daemons piling up, and a full disk named as such.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

const READY: Duration = Duration::from_secs(30);

/// `run` with `env` on top of a clean environment; its exit code and stderr.
fn run_with(env: &[(&str, &std::ffi::OsStr)], args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .arg("run")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn configuration_gaps_are_refused_before_anything_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sb = d.join("sb");
    let empty = d.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let s = |v: &str| std::ffi::OsString::from(v);
    let os = |p: &Path| p.as_os_str().to_os_string();
    // (variable, value, what the message must say); every case runs in sandbox mode unless it
    // sets a run dir, which makes it a real node with everything under `d`.
    let cases: Vec<(&str, std::ffi::OsString, &str)> = vec![
        (
            "TUNNEL_TYPE",
            std::ffi::OsStr::from_bytes(b"gen\xffeve").into(),
            "UTF-8",
        ),
        ("OVS_RUNDIR", s("run/openvswitch"), "absolute path"),
        ("OVS_LOGDIR", os(&d.join("log\nx")), "control characters"),
        (
            "OVS_OVN_SUPERVISOR_SANDBOX",
            os(&d.join("sb\tx")),
            "control characters",
        ),
        ("OVN_SB_SERVICE_PORT", s("70000"), "65535"),
        (
            "OVN_SB_ADDR",
            s("tcp:10.0.0.1:6642, tcp:10.0.0.2:6642"),
            "without blanks",
        ),
        ("NODE_NAME", s("Node_A"), "Kubernetes node name"),
        (
            "OVS_OVN_SUPERVISOR_READY_FILE",
            os(&d.join("no/such/dir/ready")),
            "existing directory",
        ),
        ("OVS_OVN_SUPERVISOR_READY_FILE", s("ready"), "absolute path"),
        ("OVS_PKGDATADIR", os(&empty), "vswitch.ovsschema"),
        ("OVN_PKGDATADIR", os(&empty), "ovn-sb.ovsschema"),
        ("DEBUG_WRAPPER", s("no-such-debugger --flag"), "not found"),
    ];
    for (var, value, expected) in &cases {
        let mut env: Vec<(&str, &std::ffi::OsStr)> = vec![(var, value.as_os_str())];
        let real = var.starts_with("OVS_RUNDIR") || var.starts_with("OVS_LOGDIR");
        let sandbox = [std::ffi::OsStr::new("--sandbox"), sb.as_os_str()];
        let sandbox_from_env = *var == "OVS_OVN_SUPERVISOR_SANDBOX";
        let args: &[&std::ffi::OsStr] = if real || sandbox_from_env {
            &[]
        } else {
            &sandbox
        };
        let remote = s("tcp:127.0.0.1:6642");
        let db = d.join("etc/openvswitch");
        if real {
            env.push(("OVN_SB_ADDR", &remote));
            env.push(("OVS_DBDIR", db.as_os_str()));
        }
        let (code, stderr) = run_with(&env, args);
        assert_eq!(code, Some(2), "{var}={value:?}: {stderr}");
        assert!(stderr.contains(&format!("{var}=")), "{var}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{var}: expected {expected:?} in {stderr}"
        );
        assert!(
            !stderr.contains("--"),
            "clap's flag-only message for {var}: {stderr}"
        );
        let created: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| n != "empty")
            .collect();
        assert!(created.is_empty(), "{var}: created {created:?}");
    }
}

#[test]
fn an_empty_variable_counts_as_unset_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let sb = dir.path().join("sb");
    let blank = std::ffi::OsStr::new("");
    // Path variables too: clap alone would refuse an empty path naming only its flag.
    let out = Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(
            [
                "OVS_RUNDIR",
                "OVN_LOGDIR",
                "OVS_PKGDATADIR",
                "OVS_OVN_SUPERVISOR_READY_FILE",
                "OVS_OVN_SUPERVISOR_HOST_ROOT",
                "TUNNEL_TYPE",
                "OVS_OVN_SUPERVISOR_PROBE_TIMEOUT_MS",
            ]
            .map(|v| (v, blank)),
        )
        .arg("preflight")
        .arg("--sandbox")
        .arg(&sb)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(BIN)
        .env_clear()
        .env("OVS_OVN_SUPERVISOR_SANDBOX", " ")
        .env("OVS_OVN_SUPERVISOR_PROBE_TIMEOUT_MS", "")
        .args(["probe", "liveness", "--sandbox"])
        .arg(&sb)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("no control socket"));
}

/// A control socket that accepts and never answers, where a live supervisor's would be: the
/// start then spends a moment asking it, before any handler of the supervisor's exists.
fn mute_control_socket(node: &Node) -> std::os::unix::net::UnixListener {
    let run = node.path().join("run/openvswitch");
    std::fs::create_dir_all(&run).unwrap();
    std::os::unix::net::UnixListener::bind(run.join("ovs-ovn-supervisor.sock")).unwrap()
}

/// The first connection to `l`, or a panic after `within`.
fn accept_within(
    l: &std::os::unix::net::UnixListener,
    within: Duration,
) -> std::os::unix::net::UnixStream {
    l.set_nonblocking(true).unwrap();
    let t0 = std::time::Instant::now();
    loop {
        match l.accept() {
            Ok((c, _)) => return c,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(t0.elapsed() < within, "nobody connected within {within:?}");
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

#[test]
fn sigterm_in_the_first_milliseconds_is_a_clean_stop() {
    for round in 0..3 {
        let mut node = Node::new();
        let mute = mute_control_socket(&node);
        node.start(&[]);
        // The supervisor is inside its host checks, asking the mute socket (a supervisor that
        // never asks fails the test instead of hanging it).
        let _conn = accept_within(&mute, Duration::from_secs(20));
        node.signal("TERM");
        let (status, took) = node.wait_exit(Duration::from_secs(20));
        assert_eq!(
            (status.code(), status.signal()),
            (Some(0), None),
            "round {round}: {status}; log:\n{}",
            node.log()
        );
        assert!(node.daemon_pids().iter().all(|(_, p)| !exists(*p)));
        println!(
            "round {round}: stopped {} ms after SIGTERM",
            took.as_millis()
        );
    }
}

#[test]
fn sigterm_right_after_a_spawn_does_not_wait_for_a_control_socket() {
    let mut node = Node::new();
    let wrapper = hold_wrapper(node.path(), "ovs-vswitchd");
    node.start(&[
        ("DEBUG_WRAPPER", wrapper.as_str()),
        ("OVS_OVN_SUPERVISOR_STOP_BUDGET_MS", "30000"),
    ]);
    node.wait_stage("ovs-vswitchd", READY);
    let (status, took) = node.stop();
    assert!(status.success(), "{status}; log:\n{}", node.log());
    // Waiting for an answer nobody could give took half vswitchd's share of the budget (5 s).
    assert!(
        took < Duration::from_millis(2500),
        "stop took {took:?}; log:\n{}",
        node.log()
    );
}

#[test]
fn control_sockets_of_killed_daemons_do_not_pile_up() {
    let mut node = Node::new();
    node.start(&[]);
    node.wait_ready(READY);
    let run = node.path().join("run/openvswitch");
    let ctls = || {
        std::fs::read_dir(&run)
            .unwrap()
            .flatten()
            .filter(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.starts_with("ovs-vswitchd.") && n.ends_with(".ctl")
            })
            .count()
    };
    for _ in 0..3 {
        let pid = pid_of(&node, "ovs-vswitchd.pid").unwrap();
        kill("KILL", pid);
        let t0 = Instant::now();
        while pid_of(&node, "ovs-vswitchd.pid") == Some(pid) || node.probe("readiness").0 != 0 {
            assert!(t0.elapsed() < READY, "not back: {}", node.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    assert_eq!(
        ctls(),
        1,
        "{:?}",
        std::fs::read_dir(&run)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect::<Vec<_>>()
    );
    assert!(node.stop().0.success());
}

#[test]
fn a_full_disk_is_named_enospc() {
    // A 600 KiB filesystem of its own, in a private mount namespace: gone with the process.
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path();
    let script = format!(
        "mount -t tmpfs -o size=600k tmpfs {m} && \
         dd if=/dev/zero of={m}/fill bs=1k count=600 2>/dev/null; \
         exec {bin} run --sandbox {m}/sb",
        m = mnt.display(),
        bin = BIN
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("OVS_OVN_SUPERVISOR_SANDBOX_NET", "dummy")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Exit 1 (a runtime failure), or 4 if a directory could not even be made.
    assert!(matches!(out.status.code(), Some(1 | 4)), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("ENOSPC") && last.contains(&format!("{}/sb", mnt.display())),
        "{last}"
    );
}

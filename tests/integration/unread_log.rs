//! The supervisor's stdout/stderr on a pipe nobody reads, on the real daemons: supervision,
//! the daemons' output and the stop must go on as if it were read; what could not be written is
//! counted and told. Figures are printed (`--nocapture`) for the notes.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::*;

const READY: Duration = Duration::from_secs(30);

/// A pipe of one page, never read: the supervisor's stdout and stderr.
fn unread_pipe() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    let (r, w) = nix::unistd::pipe().unwrap();
    nix::fcntl::fcntl(w.as_raw_fd(), nix::fcntl::FcntlArg::F_SETPIPE_SZ(4096)).unwrap();
    (r, w)
}

/// `ovs-appctl version` on the daemon behind `pidfile`'s control socket, within `timeout_s`.
fn appctl_version(node: &Node, pidfile: &str, timeout_s: u32) -> bool {
    let Some(pid) = pid_of(node, pidfile) else {
        return false;
    };
    let name = pidfile.trim_end_matches(".pid");
    let ctl = node
        .path()
        .join(format!("run/openvswitch/{name}.{pid}.ctl"));
    Command::new("ovs-appctl")
        .arg("-t")
        .arg(&ctl)
        .arg(format!("--timeout={timeout_s}"))
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Sets every daemon's console log (its stderr: our pipe from it) to debug: thousands of lines.
fn daemons_log_debug(node: &Node) {
    for (pidfile, dir) in [
        ("ovs-vswitchd.pid", "openvswitch"),
        ("ovsdb-server.pid", "openvswitch"),
        ("ovn-controller.pid", "ovn"),
    ] {
        let pid = pid_of(node, pidfile).unwrap();
        let name = pidfile.trim_end_matches(".pid");
        let ctl = node.path().join(format!("run/{dir}/{name}.{pid}.ctl"));
        let ok = Command::new("ovs-appctl")
            .arg("-t")
            .arg(&ctl)
            .args(["vlog/set", "console:dbg"])
            .status()
            .unwrap()
            .success();
        assert!(ok, "vlog/set console:dbg on {name}");
    }
}

/// Reads what the pipe holds (non-blocking) until `done` says so; panics after `within`.
fn read_until(pipe: &mut std::fs::File, within: Duration, done: impl Fn(&str) -> bool) -> String {
    let (t0, mut text, mut buf) = (Instant::now(), String::new(), vec![0u8; 1 << 16]);
    loop {
        match pipe.read(&mut buf) {
            Ok(n) if n > 0 => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            _ => std::thread::sleep(Duration::from_millis(5)),
        }
        if done(&text) {
            return text;
        }
        assert!(
            t0.elapsed() < within,
            "not within {within:?}; read:\n{text}"
        );
    }
}

/// The sum of N over the "N log lines dropped" lines in `text`.
fn told_dropped(text: &str) -> u64 {
    text.lines()
        .filter_map(|l| l.split_once(" log lines dropped"))
        .filter_map(|(before, _)| before.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Its stdout/stderr on a pipe nobody reads: the supervisor keeps supervising (probes answer,
/// SIGTERM is an ordered stop with exit 0), keeps draining the daemons' output (vswitchd,
/// logging at debug level to its stderr, keeps answering), and counts what it drops; when the
/// reader comes back, a line says how many were lost. Before, its single thread blocked on the
/// write after ~58 KB, and vswitchd on its stderr.
#[test]
fn an_unread_stderr_never_blocks_supervision() {
    let mut node = Node::new();
    let (read_end, write_end) = unread_pipe();
    let mut c = base_command(node.path());
    c.env("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "200")
        .stdout(std::process::Stdio::from(write_end.try_clone().unwrap()))
        .stderr(std::process::Stdio::from(write_end));
    node.child = Some(c.spawn().unwrap());
    node.wait_ready(READY);
    daemons_log_debug(&node);
    let vswitchd = pid_of(&node, "ovs-vswitchd.pid").unwrap();
    // Until the queue overflows: every round, probes and vswitchd must answer.
    let (t0, mut rounds, mut slowest, mut dropped) = (Instant::now(), 0, Duration::ZERO, 0);
    while dropped == 0 {
        assert!(t0.elapsed() < READY, "nothing dropped in {rounds} rounds");
        let port = format!("p{rounds}");
        node.vsctl(&[
            "add-port",
            "br-int",
            &port,
            "--",
            "set",
            "Interface",
            &port,
            "type=internal",
        ]);
        // Liveness: readiness may rightly fail for a moment while vswitchd applies the port.
        let t = Instant::now();
        let (code, line) = node.probe("liveness");
        slowest = slowest.max(t.elapsed());
        assert_eq!(code, 0, "round {rounds}: {line}");
        assert!(
            appctl_version(&node, "ovs-vswitchd.pid", 2),
            "round {rounds}: vswitchd silent"
        );
        dropped = node.status().unwrap()["log_lines_dropped"]
            .as_u64()
            .unwrap();
        rounds += 1;
    }
    eprintln!(
        "unread stderr: {rounds} rounds of liveness probes (slowest {} ms) and vswitchd answers until {dropped} log lines were dropped",
        slowest.as_millis()
    );
    assert_eq!(pid_of(&node, "ovs-vswitchd.pid"), Some(vswitchd));
    // The reader comes back: the queue drains, and a line tells how much was lost.
    nix::fcntl::fcntl(
        read_end.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .unwrap();
    let mut pipe = std::fs::File::from(read_end);
    let text = read_until(&mut pipe, READY, |t| told_dropped(t) >= dropped);
    let told = told_dropped(&text);
    eprintln!(
        "reader back: {told} log lines said dropped, in {} bytes",
        text.len()
    );
    // Unread again, then SIGTERM: an ordered stop, exit 0, the exit bounded.
    wait_for("the pipe full again", READY, || {
        node.status()
            .is_some_and(|s| s["log_lines_dropped"].as_u64().unwrap() > told)
    });
    let daemons = node.daemon_pids();
    let (status, took) = node.stop();
    eprintln!(
        "stopped {} ms after SIGTERM with the pipe full",
        took.as_millis()
    );
    assert!(status.success(), "{status} after {took:?}");
    for (name, pid) in daemons {
        assert!(!exists(pid), "{name} pid {pid} left behind");
    }
}

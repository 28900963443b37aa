//! The supervisor starved of file descriptors or of attention, on the real daemons: a low fd
//! limit with a flood of clients on its control socket, its fd table full under a running
//! node, and probes amid 300 clients streaming whitespace or reconnecting. In each, the daemons
//! must keep running (same pids) and the probes keep answering (an unread stderr is
//! `unread_log`). Figures are printed (`--nocapture`) for the notes.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::harness::*;

const READY: Duration = Duration::from_secs(30);
const HUNG_AFTER_MS: &str = "1000";

fn control_sock(node: &Node) -> std::path::PathBuf {
    node.path().join("run/openvswitch/ovs-ovn-supervisor.sock")
}

/// `pid`'s open fds numbered below `limit` (the ones its `RLIMIT_NOFILE` governs: one
/// inherited from the test runner may sit above it), with what each is.
fn fds_below(pid: u32, limit: usize) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.parse::<usize>().ok())
                .is_some_and(|n| n < limit)
        })
        .map(|e| {
            std::fs::read_link(e.path())
                .map(|l| l.display().to_string())
                .unwrap_or_default()
        })
        .collect()
}

fn fd_count(pid: u32) -> usize {
    fds_below(pid, usize::MAX).len()
}

/// utime + stime of `pid` in clock ticks (fields 14 and 15 of /proc/PID/stat).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    // After the comm, the fields start at 3 (state): field N is f[N - 3].
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// The node's daemons, each by its pidfile, alive now.
fn live_pids(node: &Node) -> Vec<(String, i32)> {
    let mut v: Vec<(String, i32)> = node
        .daemon_pids()
        .into_iter()
        .filter(|(_, p)| exists(*p) && node.owns(*p))
        .collect();
    v.sort();
    v
}

/// Asserts every daemon of `before` still runs with the same pid, and `status` says each is
/// running and was never restarted.
fn assert_untouched(node: &mut Node, before: &[(String, i32)]) {
    if let Some(st) = node.child.as_mut().unwrap().try_wait().unwrap() {
        panic!("supervisor exited {st}:\n{}", node.log());
    }
    assert_eq!(
        live_pids(node),
        before,
        "a daemon was replaced:\n{}",
        node.log()
    );
    let status = node.status().expect("status answers");
    for d in status["daemons"].as_array().unwrap() {
        assert_eq!(d["state"], "running", "{d}\n{}", node.log());
        assert_eq!(d["restarts"], 0, "{d}\n{}", node.log());
    }
}

/// Keeps `n` clients connected to `sock` (idle: they never send a byte) until `stop`, each
/// reconnecting as soon as the supervisor closes it.
fn idle_flood(
    sock: std::path::PathBuf,
    n: usize,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut conns: Vec<Option<UnixStream>> = (0..n).map(|_| None).collect();
        let mut connects = 0u64;
        let mut buf = [0u8; 64];
        while !stop.load(Ordering::Relaxed) {
            for c in conns.iter_mut() {
                let closed = match c {
                    None => true,
                    // The supervisor's error reply to no request comes first, then the close.
                    Some(s) => match s.read(&mut buf) {
                        Ok(n) => n == 0,
                        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
                    },
                };
                if closed {
                    *c = UnixStream::connect(&sock).ok().inspect(|s| {
                        s.set_nonblocking(true).unwrap();
                        connects += 1;
                    });
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        connects
    })
}

/// `ulimit -n 64` and 45 clients holding and reconnecting to the control socket: the health
/// checks must still reach the daemons (the connection cap leaves them fds), so no daemon is
/// killed as hung over several `hung_after` (before: EMFILE read as "does not answer", every
/// daemon SIGKILLed, restarts failing with EMFILE, crash loop, exit 1 in ~15 s).
#[test]
fn a_low_fd_limit_and_a_client_flood_kill_no_daemon() {
    let mut node = Node::new();
    node.start_under(
        &["prlimit", "--nofile=64:64"],
        &[
            ("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "200"),
            ("OVS_OVN_SUPERVISOR_HUNG_AFTER_MS", HUNG_AFTER_MS),
        ],
    );
    node.wait_ready(READY);
    let sup = node.child.as_ref().unwrap().id();
    let before = live_pids(&node);
    assert_eq!(before.len(), 4, "{before:?}");
    let stop = Arc::new(AtomicBool::new(false));
    let flood = idle_flood(control_sock(&node), 45, stop.clone());
    // Five times hung_after: every daemon would have been judged hung twice over.
    let t0 = Instant::now();
    let (mut most, mut samples, mut fullest) = (0, 0, Vec::new());
    while t0.elapsed() < Duration::from_secs(5) {
        let fds = fds_below(sup, 64);
        if fds.len() > most {
            most = fds.len();
            fullest = fds;
        }
        samples += 1;
        if let Some(st) = node.child.as_mut().unwrap().try_wait().unwrap() {
            panic!("supervisor exited {st}:\n{}", node.log());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    let connects = flood.join().unwrap();
    eprintln!(
        "fd limit 64, 45 clients ({connects} connects in 5 s): at most {most} fds open in {samples} samples: {fullest:?}"
    );
    assert!(most < 64, "the fd table was full: {fullest:?}");
    assert_untouched(&mut node, &before);
    assert!(node.stop().0.success(), "{}", node.log());
}

/// The supervisor's fd table full under a running node (its soft limit lowered below what it
/// has open): every health check fails with EMFILE. That is our own want, not the daemons'
/// silence: none is killed, however long it lasts, and all is well once fds are back.
#[test]
fn health_checks_out_of_fds_never_judge_a_daemon_hung() {
    let mut node = Node::new();
    node.start(&[
        ("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "200"),
        ("OVS_OVN_SUPERVISOR_HUNG_AFTER_MS", HUNG_AFTER_MS),
    ]);
    node.wait_ready(READY);
    let sup = node.child.as_ref().unwrap().id();
    let before = live_pids(&node);
    // The soft limit as it was, to give it back (`Max open files  SOFT  HARD  files`).
    let limits = std::fs::read_to_string(format!("/proc/{sup}/limits")).unwrap();
    let soft_before = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_string();
    let set_soft = |soft: String| {
        let ok = Command::new("prlimit")
            .args(["--pid", &sup.to_string(), &format!("--nofile={soft}:")])
            .status()
            .unwrap()
            .success();
        assert!(ok, "prlimit --nofile={soft}:");
    };
    // Below the fewest it holds between checks (their sockets come and go): no fd to spare.
    let mut fewest = usize::MAX;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(600) {
        fewest = fewest.min(fd_count(sup));
        std::thread::sleep(Duration::from_millis(5));
    }
    set_soft((fewest - 2).to_string());
    // Four times hung_after. `status` gets through now and then (an fd frees up between
    // checks): it shows the checks could not ask.
    let (t0, mut not_asked) = (Instant::now(), Vec::new());
    while t0.elapsed() < Duration::from_secs(4) {
        if let Some(st) = node.child.as_mut().unwrap().try_wait().unwrap() {
            panic!("supervisor exited {st}:\n{}", node.log());
        }
        if let Some(names) = node
            .status()
            .and_then(|s| s["health"]["not_asked"].as_array().cloned())
        {
            not_asked.extend(
                names
                    .into_iter()
                    .filter_map(|n| n.as_str().map(String::from)),
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        live_pids(&node),
        before,
        "a daemon was replaced:\n{}",
        node.log()
    );
    not_asked.sort();
    not_asked.dedup();
    eprintln!("out of fds for 4 s: not asked {not_asked:?}");
    assert!(
        !not_asked.is_empty(),
        "the checks never ran out of fds:\n{}",
        node.log()
    );
    set_soft(soft_before);
    wait_for(
        "a health check after fds are back",
        Duration::from_secs(10),
        || {
            node.status().is_some_and(|s| {
                s["health"]["liveness"]["ok"] == true
                    && s["health"]["not_asked"]
                        .as_array()
                        .is_some_and(|a| a.is_empty())
            })
        },
    );
    assert_untouched(&mut node, &before);
    assert!(node.stop().0.success(), "{}", node.log());
}

/// `clients` connections that stream whitespace (never a request) into `sock`, each
/// reconnecting as soon as it is closed, until `stop`.
fn whitespace_flood(
    sock: std::path::PathBuf,
    clients: usize,
    stop: Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..4)
        .map(|_| {
            let (sock, stop) = (sock.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut conns: Vec<Option<UnixStream>> = (0..clients / 4).map(|_| None).collect();
                let spaces = [b' '; 256];
                while !stop.load(Ordering::Relaxed) {
                    for c in conns.iter_mut() {
                        let alive = c.as_mut().is_some_and(|s| match s.write(&spaces) {
                            Ok(_) => true,
                            Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
                        });
                        if !alive {
                            *c = UnixStream::connect(&sock)
                                .ok()
                                .inspect(|s| s.set_nonblocking(true).unwrap());
                        }
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        })
        .collect()
}

/// 300 clients streaming whitespace, then 300 idle ones reconnecting: a probe's connection is
/// never the one closed to make room (before, 6–16 of 50 probes failed, and 2–7 of 20 under
/// the idle flood).
#[test]
fn probes_pass_amid_300_streaming_or_reconnecting_clients() {
    let mut node = Node::new();
    node.start(&[]);
    node.wait_ready(READY);
    let sup = node.child.as_ref().unwrap().id();
    let sock = control_sock(&node);
    let mut failed = Vec::new();
    for (flood, rounds) in [("streaming", 50), ("idle", 20)] {
        let stop = Arc::new(AtomicBool::new(false));
        let floods: Vec<Box<dyn FnOnce()>> = match flood {
            "streaming" => whitespace_flood(sock.clone(), 300, stop.clone())
                .into_iter()
                .map(|t| Box::new(move || t.join().unwrap()) as Box<dyn FnOnce()>)
                .collect(),
            _ => (0..4)
                .map(|_| idle_flood(sock.clone(), 75, stop.clone()))
                .map(|t| {
                    Box::new(move || {
                        t.join().unwrap();
                    }) as Box<dyn FnOnce()>
                })
                .collect(),
        };
        let (t_all, ticks) = (Instant::now(), cpu_ticks(sup));
        let mut slowest = Duration::ZERO;
        for i in 0..rounds {
            let t0 = Instant::now();
            let (code, line) = node.probe("readiness");
            slowest = slowest.max(t0.elapsed());
            if code != 0 {
                failed.push(format!("{flood} #{i}: {code} {line}"));
            }
        }
        let (took, used) = (t_all.elapsed(), cpu_ticks(sup) - ticks);
        stop.store(true, Ordering::Relaxed);
        for join in floods {
            join();
        }
        eprintln!(
            "{flood} flood of 300: {rounds} probes, slowest {} ms, failed: {}; supervisor CPU {used} ticks in {} ms",
            slowest.as_millis(),
            failed.iter().filter(|f| f.starts_with(flood)).count(),
            took.as_millis()
        );
    }
    assert!(failed.is_empty(), "probes failed: {failed:?}");
    assert!(node.stop().0.success());
}

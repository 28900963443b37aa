//! The control side attacked on the real daemons: a handover nobody completes, a control socket
//! flooded with idle or slow clients (and the fd limit exhausted), and restarts under sustained
//! kills with the crash-loop limit raised. Figures are printed (`--nocapture`) for the notes.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::*;

const READY: Duration = Duration::from_secs(30);

fn control_sock(node: &Node) -> std::path::PathBuf {
    node.path().join("run/openvswitch/ovs-ovn-supervisor.sock")
}

/// utime + stime of `pid` in clock ticks (fields 14 and 15 of /proc/PID/stat).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = stat.rsplit_once(')').unwrap().1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): field N is f[N - 3].
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// How long `pid`'s threads have been runnable, on a CPU or waiting in a run queue, in all
/// (`/proc/PID/task/TID/schedstat`'s first two fields, ns). A thread that spins is runnable
/// the whole time whatever the machine's load; one that sleeps is not: unlike CPU ticks, this
/// neither flakes nor loses its power on a loaded machine.
fn runnable_ns(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .map(|s| {
            let f: Vec<u64> = s
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
            f.first().copied().unwrap_or(0) + f.get(1).copied().unwrap_or(0)
        })
        .sum()
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

fn probe_ms(node: &Node, kind: &str) -> (i32, String) {
    let out = Command::new(BIN)
        .env_clear()
        .args(["probe", kind, "--timeout-ms", "1000", "--sandbox"])
        .arg(node.path())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

/// The successor asks for the node, then dies during its start. The old instance must
/// take the node back by itself, and a third instance must then take over without a 60 s wait.
#[test]
fn a_handover_nobody_completes_is_taken_back() {
    let mut a = Node::new();
    a.start(&[("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "200")]);
    a.wait_ready(READY);
    let dir = a.path().to_path_buf();
    let a_pid = a.child.as_ref().unwrap().id() as i64;

    // B's daemons cannot start (a wrapper that fails), so B dies right after the handover.
    let logs = tempfile::tempdir().unwrap();
    let fail = logs.path().join("fail.sh");
    script(&fail, "#!/bin/sh\nexit 1\n");
    let b_log = logs.path().join("b.log");
    let log = std::fs::File::create(&b_log).unwrap();
    let mut b = base_command(&dir)
        .env("DEBUG_WRAPPER", &fail)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let t_b = Instant::now();
    let st = loop {
        if let Some(st) = b.try_wait().unwrap() {
            break st;
        }
        assert!(t_b.elapsed() < READY, "B still runs after {READY:?}");
        std::thread::sleep(Duration::from_millis(10));
    };
    let b_died = Instant::now();
    let b_text = std::fs::read_to_string(&b_log).unwrap_or_default();
    assert!(!st.success(), "B should fail: {b_text}");
    assert!(
        b_text.contains("handed over"),
        "B never took over: {b_text}"
    );

    // A takes the node back: its own pid answers on the socket path, ready again.
    a.wait_owner(a_pid, READY, None, || {});
    eprintln!(
        "take-back: A ready again {} ms after its successor died",
        b_died.elapsed().as_millis()
    );
    let why = a.log();
    let why = why.lines().find(|l| l.contains("taking the node back"));
    eprintln!("take-back: {}", why.unwrap_or("(no log line)"));
    assert!(why.is_some(), "{}", a.log());
    let status = a.status().unwrap();
    for d in status["daemons"].as_array().unwrap() {
        let pid = d["pid"].as_i64().unwrap() as i32;
        assert!(exists(pid), "{d} listed with a dead pid");
        assert_eq!(d["state"], "running", "{d}");
    }

    // C takes over from A the normal way, without waiting on anything.
    let t0 = Instant::now();
    let mut c = instance_on(&dir, &[("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "200")]);
    let c_pid = c.child.as_ref().unwrap().id() as i64;
    a.wait_owner(c_pid, Duration::from_secs(20), Some(&mut c), || {});
    eprintln!(
        "take-back: C took over from A in {} ms",
        t0.elapsed().as_millis()
    );
    // A, confirmed, idles and exits 0 on SIGTERM; C keeps the node.
    assert!(a.stop().0.success());
    assert_eq!(a.probe("readiness").0, 0, "node lost when A left");
    c.signal("TERM");
    assert!(c.wait_exit(Duration::from_secs(30)).0.success());
}

/// 1,000 idle clients and 20 slow ones (half a request each) hold the control socket,
/// reconnecting when closed, while probes keep passing.
#[test]
fn probes_pass_under_a_thousand_idle_and_slow_clients() {
    let mut node = Node::new();
    node.start(&[]);
    node.wait_ready(READY);
    let sup = node.child.as_ref().unwrap().id();
    let sock = control_sock(&node);
    let rss_before = rss_kb(sup);
    let mut clients = Vec::new();
    for i in 0..1020 {
        let mut s = UnixStream::connect(&sock).unwrap();
        if i % 51 == 0 {
            // Slow: half a request, never finished.
            let _ = s.write_all(br#"{"id":1,"method":"rea"#);
        }
        clients.push(s);
    }
    let rss_with = rss_kb(sup);
    let mut failed = Vec::new();
    for i in 0..20 {
        for kind in ["liveness", "readiness"] {
            let (code, line) = probe_ms(&node, kind);
            if code != 0 {
                failed.push(format!("#{i} {kind}: {code} {line}"));
            }
        }
        // The clients keep coming back: a closed one reconnects at once.
        for s in clients.iter_mut().skip(i * 50).take(50) {
            if let Ok(n) = UnixStream::connect(&sock) {
                *s = n;
            }
        }
    }
    eprintln!(
        "control socket: RSS {rss_before} kB idle, {rss_with} kB with 1,020 clients, {} kB after the probes",
        rss_kb(sup)
    );
    assert!(failed.is_empty(), "probes failed: {failed:?}");
    drop(clients);
    assert!(node.stop().0.success());
}

/// With the supervisor's fd limit exhausted (100 clients pile up in the backlog, the soft limit
/// lowered to what it has open), the accept loop must back off instead of spinning on EMFILE.
#[test]
fn fd_exhaustion_does_not_make_the_accept_loop_spin() {
    let mut tight = Node::new();
    let log = std::fs::File::create(tight.log_path()).unwrap();
    let cmd = base_command(tight.path());
    let mut c = Command::new("prlimit");
    c.arg("--nofile=64:64")
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .env_clear()
        .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    tight.child = Some(c.spawn().unwrap());
    tight.wait_ready(READY);
    let pid = tight.child.as_ref().unwrap().id();
    let clients: Vec<UnixStream> = (0..100)
        .filter_map(|_| UnixStream::connect(control_sock(&tight)).ok())
        .collect();
    // The connection cap keeps clients from filling the table: lower the soft limit to what
    // is open, so the next accept fails with EMFILE. What is open steadily: a health check's
    // sockets, open for a moment, counted once would set a limit the steady count never
    // reaches again.
    let fd_count = || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count()
    };
    let mut open = fd_count();
    for _ in 0..30 {
        std::thread::sleep(Duration::from_millis(10));
        open = open.min(fd_count());
    }
    let lowered = Command::new("prlimit")
        .args(["--pid", &pid.to_string(), &format!("--nofile={open}:")])
        .status()
        .unwrap();
    assert!(lowered.success());
    let before = cpu_ticks(pid);
    let runnable_before = runnable_ns(pid);
    let t0 = Instant::now();
    let mut fds = 0;
    while t0.elapsed() < Duration::from_secs(2) {
        fds = fds.max(fd_count());
        std::thread::sleep(Duration::from_millis(20));
    }
    let used = cpu_ticks(pid) - before;
    let runnable = Duration::from_nanos(runnable_ns(pid) - runnable_before);
    eprintln!(
        "fd limit 64, {} clients: at most {fds} fds open, {used} ticks of CPU in {} ms",
        clients.len(),
        t0.elapsed().as_millis()
    );
    assert!(
        runnable < Duration::from_millis(500),
        "accept loop spins: runnable {runnable:?} of 2 s ({used} ticks)"
    );
    assert!(
        fds >= open - 1,
        "the fd limit was never reached: {fds} open"
    );
    drop(clients);
    let raised = Command::new("prlimit")
        .args(["--pid", &pid.to_string(), "--nofile=64:"])
        .status()
        .unwrap();
    assert!(raised.success());
    // Once the clients are gone, probes pass again.
    let t0 = Instant::now();
    while probe_ms(&tight, "liveness").0 != 0 {
        assert!(t0.elapsed() < Duration::from_secs(10), "{}", tight.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// With the crash-loop limit raised, ovn-controller killed every 1.5 s must come back
/// each time well below the 10 s backoff cap.
#[test]
fn sustained_kills_with_a_raised_limit_recover_each_time() {
    let mut node = Node::new();
    node.start(&[
        ("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "200"),
        ("OVS_OVN_SUPERVISOR_CRASH_LOOP_RESTARTS", "1000"),
    ]);
    node.wait_ready(READY);
    let cadence = Duration::from_millis(1500);
    let (mut samples, mut ready_samples) = (0u32, 0u32);
    let mut recoveries = Vec::new();
    let t_all = Instant::now();
    while t_all.elapsed() < Duration::from_secs(15) {
        let old = pid_of(&node, "ovn-controller.pid").unwrap();
        let kill_at = Instant::now();
        kill("KILL", old);
        let mut recovered = None;
        while kill_at.elapsed() < cadence.max(Duration::from_secs(3)) {
            let ready = probe_ms(&node, "readiness").0 == 0;
            samples += 1;
            if ready {
                ready_samples += 1;
                let fresh = pid_of(&node, "ovn-controller.pid").is_some_and(|p| p != old);
                if fresh && recovered.is_none() {
                    recovered = Some(kill_at.elapsed());
                }
            }
            if recovered.is_some() && kill_at.elapsed() >= cadence {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(st) = node.child.as_mut().unwrap().try_wait().unwrap() {
            panic!("supervisor exited {st}:\n{}", node.log());
        }
        recoveries.push(recovered);
        if recovered.is_none() {
            // Not back: the pidfile may still name the dead process; nothing left to kill.
            break;
        }
    }
    let ms: Vec<String> = recoveries
        .iter()
        .map(|r| r.map_or("none".into(), |d| d.as_millis().to_string()))
        .collect();
    eprintln!(
        "sustained kills: {} kills, ready in {:.0}% of {samples} samples, recoveries (ms): {}",
        recoveries.len(),
        100.0 * f64::from(ready_samples) / f64::from(samples.max(1)),
        ms.join(" ")
    );
    assert!(
        recoveries.iter().all(Option::is_some),
        "a kill was not followed by readiness within 3 s: {ms:?}"
    );
    let ctl = node.daemon_status("ovn-controller");
    assert!(
        ctl["since_restart_ms"].as_u64().is_some_and(|ms| ms < 5000),
        "status lacks the time since the last restart: {ctl}"
    );
}

/// The harder case of a handover nobody completes: the successor is SIGKILLed in the middle of its start, leaving its
/// first daemons running with no supervisor. The old instance stops them and takes the node
/// back; no two ovsdb-servers ever run on one conf.db.
#[test]
fn a_successor_killed_mid_start_is_cleaned_up_and_the_node_taken_back() {
    // A central Southbound, as in production: the sandbox's embedded one is a fixture whose
    // orphan a take-back does not look for.
    let sb_dir = tempfile::tempdir().unwrap();
    let (_sb, remote) = southbound(sb_dir.path());
    let mut a = Node::new();
    a.start(&[
        ("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "200"),
        ("OVN_SB_ADDR", &remote),
    ]);
    a.wait_ready(READY);
    let dir = a.path().to_path_buf();
    let a_pid = a.child.as_ref().unwrap().id() as i64;
    let a_server = pid_of(&a, "ovsdb-server.pid").unwrap();
    let conf_db = dir.join("etc/openvswitch/conf.db").display().to_string();

    let logs = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(logs.path().join("b.log")).unwrap();
    let mut b = base_command(&dir)
        .env("OVN_SB_ADDR", &remote)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    // B has started its own ovsdb-server: kill B alone, leaving that daemon behind.
    let t0 = Instant::now();
    let orphan = loop {
        if let Some(p) = pid_of(&a, "ovsdb-server.pid").filter(|p| *p != a_server && exists(*p)) {
            break p;
        }
        assert!(t0.elapsed() < READY, "B never started ovsdb-server");
        std::thread::sleep(Duration::from_millis(2));
    };
    let _ = b.kill();
    let _ = b.wait();
    let b_died = Instant::now();
    let mut servers = 0;
    a.wait_owner(a_pid, READY, None, || {
        servers = servers.max(count("ovsdb-server", &conf_db));
    });
    eprintln!(
        "take-back after SIGKILL: A ready again {} ms after its successor died",
        b_died.elapsed().as_millis()
    );
    assert!(
        !exists(orphan) || !a.owns(orphan),
        "B's ovsdb-server still runs"
    );
    assert_eq!(servers, 1, "two ovsdb-servers on one conf.db at once");
    assert!(a.stop().0.success());
}

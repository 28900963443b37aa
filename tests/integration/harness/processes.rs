//! Processes and pidfiles, read from `/proc`: a node's daemons by their pidfiles (and whether a
//! pid is really this node's), a simulated power loss, `kill`, a process's children, and
//! counting processes by command line.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::Node;

impl Node {
    /// Pids from every pidfile in the sandbox.
    pub fn daemon_pids(&self) -> Vec<(String, i32)> {
        let mut v = Vec::new();
        for sub in ["run/openvswitch", "run/ovn"] {
            let Ok(rd) = std::fs::read_dir(self.path().join(sub)) else {
                continue;
            };
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.ends_with(".pid") {
                    if let Ok(s) = std::fs::read_to_string(e.path()) {
                        if let Ok(pid) = s.trim().parse() {
                            v.push((name, pid));
                        }
                    }
                }
            }
        }
        v
    }

    /// A simulated power loss: the supervisor and every daemon die at once with SIGKILL, and
    /// nobody cleans up. Returns once each is dead (gone, or a zombie nobody reaps yet).
    pub fn power_loss(&mut self) {
        let sup = self.child.as_ref().unwrap().id() as i32;
        let first = self.live_daemons();
        for pid in std::iter::once(sup).chain(first.iter().map(|(_, p)| *p)) {
            kill9(pid);
        }
        self.wait_exit(Duration::from_secs(10));
        // A daemon the supervisor was spawning as it died (a fork not yet exec'd, a restart
        // under load) writes its pidfile after our first read: kill until no pidfile of ours
        // names a live process, so the next start finds only stale files. A killed daemon is
        // waited on by its state, not its command line: while it exits, the kernel has already
        // emptied /proc/PID/cmdline (so `owns` says no) but it still holds its pidfile's lock.
        let mut killed: Vec<i32> = first.iter().map(|(_, p)| *p).collect();
        let t0 = Instant::now();
        loop {
            let left = self.live_daemons();
            killed.retain(|p| alive(*p));
            if left.is_empty() && killed.is_empty() {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "{left:?} and {killed:?} survive SIGKILL"
            );
            for (_, pid) in &left {
                kill9(*pid);
                killed.push(*pid);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Kills `pidfile`'s daemon; returns the time until a new pid runs and readiness passes
    /// (panics after 30 s, or if the supervisor exits, with its log).
    pub fn crash_and_recover(&mut self, pidfile: &str) -> Duration {
        let old = pid_of(self, pidfile).unwrap();
        let t0 = Instant::now();
        kill("KILL", old);
        loop {
            let fresh = pid_of(self, pidfile).is_some_and(|p| p != old && exists(p));
            if fresh && self.probe("readiness").0 == 0 {
                return t0.elapsed();
            }
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("supervisor exited {st}:\n{}", self.log());
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "{pidfile} not back: {:?}\n{}",
                self.probe("readiness"),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Daemons named by this node's pidfiles that are alive (not gone, not a zombie).
    fn live_daemons(&self) -> Vec<(String, i32)> {
        self.daemon_pids()
            .into_iter()
            .filter(|(_, p)| self.owns(*p) && alive(*p))
            .collect()
    }

    /// True when `pid` runs with this node's directory on its command line: a pidfile in the
    /// node's run dirs may also be another namespace's (ovn-central's), whose pid means
    /// something else here.
    pub fn owns(&self, pid: i32) -> bool {
        let dir = self.path().as_os_str().as_encoded_bytes();
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.windows(dir.len()).any(|w| w == dir))
    }
}

/// The pid in the sandbox pidfile named `pidfile`.
pub fn pid_of(node: &Node, pidfile: &str) -> Option<i32> {
    node.daemon_pids()
        .into_iter()
        .find(|(n, _)| n == pidfile)
        .map(|(_, p)| p)
}

/// True while `pid` exists at all (a zombie counts: it has not been reaped).
pub fn exists(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Processes whose parent is `ppid`.
pub fn children_of(ppid: u32) -> Vec<i32> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            // Field 4 (after the parenthesised comm, which may hold spaces) is the ppid.
            if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
                if rest.split_whitespace().nth(1) == Some(&ppid.to_string()) {
                    v.push(pid);
                }
            }
        }
    }
    v
}

/// `pid`'s children, their children and so on, read now. Taken while the supervisor runs: once
/// it is gone its leftovers are reparented and no longer look like its descendants.
pub fn descendants_of(pid: u32) -> Vec<i32> {
    let mut all = Vec::new();
    let mut next = vec![pid];
    while let Some(p) = next.pop() {
        for c in children_of(p) {
            all.push(c);
            next.push(c as u32);
        }
    }
    all
}

/// Every process in `pids` (recorded before a stop) is gone, with its command line if not.
pub fn assert_all_gone(pids: &[i32], what: &str) {
    for &p in pids {
        let cmd = std::fs::read(format!("/proc/{p}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .unwrap_or_default();
        assert!(!exists(p), "{what}: pid {p} ({cmd}) left behind");
    }
}

/// Watches `pids` from a thread, polling `/proc` every millisecond, and returns them in the
/// order they disappeared (exited and were reaped), with when; those still there after
/// `deadline` are left out. The real exit order of a stop, seen from outside.
pub fn exit_order(
    pids: Vec<(String, i32)>,
    deadline: Duration,
) -> std::thread::JoinHandle<Vec<(String, Instant)>> {
    std::thread::spawn(move || {
        let t0 = Instant::now();
        let mut left = pids;
        let mut gone = Vec::new();
        while !left.is_empty() && t0.elapsed() < deadline {
            let now = Instant::now();
            left.retain(|(name, pid)| {
                let there = exists(*pid);
                if !there {
                    gone.push((name.clone(), now));
                }
                there
            });
            std::thread::sleep(Duration::from_millis(1));
        }
        gone
    })
}

pub fn kill(sig: &str, pid: i32) {
    assert!(Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap()
        .success());
}

/// Processes of `program` whose command line mentions `needle` (a path of the test's own, so
/// other tests' processes never count).
pub fn count(program: &str, needle: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(program) && c.contains(needle) && !c.contains("sh -c"))
        .count()
}

/// A process's state letter from /proc/PID/stat (`R`, `S`, `Z`, ...); `None` when it is gone.
pub fn state_of(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the parenthesised comm, which may hold spaces and parentheses.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Alive: in /proc and neither a zombie nor dead.
fn alive(pid: i32) -> bool {
    !matches!(state_of(pid), None | Some('Z') | Some('X'))
}

fn kill9(pid: i32) {
    Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
}

//! Shared harness: a sandbox node run by the real `ovs-ovn-supervisor` binary in a temp dir.
//!
//! Every node gets its own directory (and, as root, its own network namespace, which the
//! supervisor creates), a clean environment (no Kube-OVN variables leak in from the machine),
//! and a Drop guard that stops it and kills any daemon whose pidfile is in that directory, so a
//! failed test leaves nothing running. Waiting is always on a real condition with a deadline.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_ovs-ovn-supervisor");

pub struct Node {
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
}

pub fn base_command(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("OVS_OVN_SUPERVISOR_LOG", "debug")
        .arg("run")
        .arg("--sandbox")
        .arg(dir);
    c
}

impl Node {
    pub fn new() -> Node {
        Node {
            dir: tempfile::Builder::new().prefix("oos").tempdir().unwrap(),
            child: None,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_path(&self) -> PathBuf {
        self.path().join("supervisor.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Starts the supervisor with extra environment; its stderr goes to `supervisor.log`
    /// (appended, so two runs on one directory keep both logs).
    pub fn start(&mut self, env: &[(&str, &str)]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let mut c = base_command(self.path());
        c.envs(env.iter().copied())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        self.child = Some(c.spawn().unwrap());
    }

    pub fn probe(&self, kind: &str) -> (i32, String) {
        let out = Command::new(BIN)
            .env_clear()
            .args(["probe", kind, "--sandbox"])
            .arg(self.path())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        )
    }

    /// Waits until `probe readiness` passes; panics with the last reason and the log otherwise.
    pub fn wait_ready(&mut self, within: Duration) -> Duration {
        let t0 = Instant::now();
        let mut last = String::new();
        while t0.elapsed() < within {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("supervisor exited early with {st}; log:\n{}", self.log());
            }
            let (code, line) = self.probe("readiness");
            if code == 0 {
                return t0.elapsed();
            }
            last = line;
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("not ready within {within:?}: {last}; log:\n{}", self.log());
    }

    /// `status --output json` from the running supervisor, if it answers.
    pub fn status(&self) -> Option<serde_json::Value> {
        let out = Command::new(BIN)
            .env_clear()
            .args(["status", "--output", "json", "--sandbox"])
            .arg(self.path())
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).ok()
    }

    /// One daemon's entry in `status --output json`.
    pub fn daemon_status(&self, name: &str) -> serde_json::Value {
        let status = self.status().expect("status answers");
        status["daemons"]
            .as_array()
            .and_then(|ds| ds.iter().find(|d| d["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {status}"))
    }

    /// Waits for the published stage to become `stage`.
    pub fn wait_stage(&mut self, stage: &str, within: Duration) {
        let t0 = Instant::now();
        while t0.elapsed() < within {
            if self.status().is_some_and(|s| s["stage"] == stage) {
                return;
            }
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "supervisor exited with {st} before stage {stage}; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!(
            "stage {stage} not reached in {within:?}; log:\n{}",
            self.log()
        );
    }

    /// Waits until the supervisor answering on this node's control socket is `pid` with the
    /// node ready (after a takeover or a take-back); panics, with both logs, if this node's or
    /// `other`'s supervisor exits first or `within` passes. `each` runs every round.
    pub fn wait_owner(
        &mut self,
        pid: i64,
        within: Duration,
        mut other: Option<&mut Node>,
        mut each: impl FnMut(),
    ) -> Duration {
        let t0 = Instant::now();
        loop {
            each();
            let owner = self
                .status()
                .is_some_and(|s| s["pid"] == pid && s["stage"] == "ready");
            if owner && self.probe("readiness").0 == 0 {
                return t0.elapsed();
            }
            let others = other.as_deref().map(Node::log).unwrap_or_default();
            for n in std::iter::once(&mut *self).chain(other.as_deref_mut()) {
                if let Some(st) = n.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                    panic!(
                        "{st} before pid {pid} ran the node:
{}
other:
{others}",
                        n.log()
                    );
                }
            }
            assert!(
                t0.elapsed() < within,
                "pid {pid} does not run the node after {within:?}: {:?}
{}
other:
{others}",
                self.status(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().unwrap().id();
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} {pid}");
    }

    /// Waits for the supervisor to exit; panics after `within`.
    pub fn wait_exit(&mut self, within: Duration) -> (ExitStatus, Duration) {
        let t0 = Instant::now();
        let child = self.child.as_mut().unwrap();
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                self.child = None;
                return (st, t0.elapsed());
            }
            assert!(
                t0.elapsed() < within,
                "supervisor still running after {within:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn stop(&mut self) -> (ExitStatus, Duration) {
        self.signal("TERM");
        self.wait_exit(Duration::from_secs(30))
    }

    pub fn db(&self) -> String {
        format!(
            "unix:{}",
            self.path().join("run/openvswitch/db.sock").display()
        )
    }

    pub fn vsctl(&self, args: &[&str]) -> String {
        db_ctl("ovs-vsctl", &self.db(), args)
    }

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
        let pids: Vec<_> = self
            .daemon_pids()
            .into_iter()
            .filter(|(_, p)| self.owns(*p))
            .collect();
        let sup = self.child.as_ref().unwrap().id() as i32;
        for pid in std::iter::once(sup).chain(pids.iter().map(|(_, p)| *p)) {
            Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()
                .unwrap();
        }
        self.wait_exit(Duration::from_secs(10));
        // SIGKILL is delivered asynchronously.
        for (name, pid) in &pids {
            let t0 = Instant::now();
            loop {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let state = stat
                    .rsplit_once(')')
                    .map(|(_, r)| r.trim_start().chars().next());
                if matches!(state, None | Some(Some('Z')) | Some(Some('X'))) {
                    break;
                }
                assert!(
                    t0.elapsed() < Duration::from_secs(10),
                    "{name} survives SIGKILL"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    /// True when `pid` runs with this node's directory on its command line: a pidfile in the
    /// node's run dirs may also be another namespace's (ovn-central's), whose pid means
    /// something else here.
    pub fn owns(&self, pid: i32) -> bool {
        let dir = self.path().as_os_str().as_encoded_bytes();
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.windows(dir.len()).any(|w| w == dir))
    }

    pub fn file(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap_or_default()
    }
}

/// A second supervisor on `dir` (a rolling update's new pod) with `env`, logging into its own
/// temp dir.
pub fn instance_on(dir: &Path, env: &[(&str, &str)]) -> Node {
    let mut n = Node {
        dir: tempfile::tempdir().unwrap(),
        child: None,
    };
    let log = std::fs::File::create(n.log_path()).unwrap();
    n.child = Some(
        base_command(dir)
            .envs(env.iter().copied())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    n
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

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(15) {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        // Anything still alive from this sandbox is a leak of a failed test: end it.
        for (_, pid) in self.daemon_pids() {
            if exists(pid) && self.owns(pid) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

pub fn kill(sig: &str, pid: i32) {
    assert!(Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap()
        .success());
}

/// The pid in the sandbox pidfile named `pidfile`.
pub fn pid_of(node: &Node, pidfile: &str) -> Option<i32> {
    node.daemon_pids()
        .into_iter()
        .find(|(n, _)| n == pidfile)
        .map(|(_, p)| p)
}

/// Holds a running SB ovsdb-server for a non-sandbox node.
pub struct Southbound(pub std::process::Child);

impl Drop for Southbound {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Creates an empty OVN Southbound database file at `db`.
pub fn create_sb_db(db: &Path) {
    assert!(Command::new("ovsdb-tool")
        .arg("create")
        .arg(db)
        .arg("/usr/share/ovn/ovn-sb.ovsschema")
        .status()
        .unwrap()
        .success());
}

/// `preflight --sandbox SANDBOX EXTRA...` with `env`: its exit code and stdout.
pub fn preflight(sandbox: &Path, env: &[(&str, &str)], extra: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .arg("preflight")
        .arg("--sandbox")
        .arg(sandbox)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

pub fn southbound(dir: &Path) -> (Southbound, String) {
    let db = dir.join("sb.db");
    create_sb_db(&db);
    let sock = dir.join("sb.sock");
    let child = Command::new("ovsdb-server")
        .arg(&db)
        .arg(format!("--remote=punix:{}", sock.display()))
        .arg(format!("--unixctl={}", dir.join("sb.ctl").display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let remote = format!("unix:{}", sock.display());
    let t0 = Instant::now();
    loop {
        let ok = Command::new("ovn-sbctl")
            .args([&format!("--db={remote}"), "--timeout=5", "init"])
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        if ok {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "SB not up");
        std::thread::sleep(Duration::from_millis(20));
    }
    (Southbound(child), remote)
}

/// Processes of `program` whose command line mentions `needle`.
pub fn count(program: &str, needle: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(program) && c.contains(needle) && !c.contains("sh -c"))
        .count()
}

/// What a [`Sampler`] saw during a switch-over.
pub struct Sampled {
    /// Most ovsdb-servers on the one conf.db at once.
    pub max_servers: usize,
    /// Most vswitchds on the one db.sock at once.
    pub max_switches: usize,
    /// How long br-int's flow table was unreachable or empty in all, and at the longest.
    pub gap: Duration,
    pub longest: Duration,
}

/// Samples a node back to back from a thread until [`Sampler::finish`].
pub struct Sampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<Sampled>>,
}

impl Sampler {
    /// `mgmt` is the ovs-ofctl target (`unix:.../br-int.mgmt`).
    pub fn start(conf_db: &str, db_sock: &str, mgmt: &str) -> Sampler {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (conf_db, db_sock, mgmt) = (conf_db.to_string(), db_sock.to_string(), mgmt.to_string());
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut s = Sampled {
                max_servers: 0,
                max_switches: 0,
                gap: Duration::ZERO,
                longest: Duration::ZERO,
            };
            let (mut empty_since, mut last) = (None::<Instant>, Instant::now());
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                s.max_servers = s.max_servers.max(count("ovsdb-server", &conf_db));
                s.max_switches = s.max_switches.max(count("ovs-vswitchd", &db_sock));
                let out = Command::new("ovs-ofctl")
                    .args(["dump-flows", "--no-stats", &mgmt])
                    .stderr(Stdio::null())
                    .output()
                    .unwrap();
                let flows = String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter(|l| l.starts_with(' '))
                    .count();
                let now = Instant::now();
                if !out.status.success() || flows == 0 {
                    s.gap += now - last;
                    let since = *empty_since.get_or_insert(last);
                    s.longest = s.longest.max(now - since);
                } else {
                    empty_since = None;
                }
                last = now;
            }
            s
        });
        Sampler {
            stop,
            thread: Some(thread),
        }
    }

    pub fn finish(mut self) -> Sampled {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Sampler {
    /// A failed test stops the sampling thread too.
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// OVS's and OVN's directory variables for a non-sandbox node whose directories all lie under
/// `d` as in a sandbox, so [`Node`]'s guard finds its pidfiles.
pub fn host_dirs(d: &Path) -> Vec<(&'static str, PathBuf)> {
    vec![
        ("OVS_RUNDIR", d.join("run/openvswitch")),
        ("OVS_DBDIR", d.join("etc/openvswitch")),
        ("OVS_LOGDIR", d.join("log/openvswitch")),
        ("OVS_SYSCONFDIR", d.join("etc")),
        ("OVN_RUNDIR", d.join("run/ovn")),
        ("OVN_LOGDIR", d.join("log/ovn")),
    ]
}

/// `probe KIND` against the non-sandbox node of [`host_dirs`]`(d)`: exit code and line.
pub fn host_probe(d: &Path, kind: &str) -> (Option<i32>, String) {
    let o = Command::new(BIN)
        .env_clear()
        .envs(host_dirs(d))
        .args(["probe", kind])
        .output()
        .unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).trim().to_string(),
    )
}

/// `PROGRAM --db=DB --timeout=10 ARGS...` (ovs-vsctl, ovn-sbctl): its trimmed stdout; panics
/// with its stderr when it fails.
pub fn db_ctl(program: &str, db: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .arg(format!("--db={db}"))
        .arg("--timeout=10")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A wrapper (for `DEBUG_WRAPPER`) that replaces `daemon` by a long sleep, as a daemon stuck
/// at its start would be: it never opens its control socket.
pub fn hold_wrapper(dir: &Path, daemon: &str) -> String {
    let path = dir.join(format!("hold-{daemon}.sh"));
    std::fs::write(
        &path,
        format!("#!/bin/sh\ncase \"$1\" in */{daemon}) exec sleep 120;; esac\nexec \"$@\"\n"),
    )
    .unwrap();
    Command::new("chmod").arg("+x").arg(&path).status().unwrap();
    path.display().to_string()
}

/// A named network namespace of the test's own (loopback up), deleted on drop even when the
/// test fails.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(prefix: &str) -> Netns {
        let name = format!("{prefix}-{:08x}", fastrand::u32(..));
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .expect("run ip");
        assert!(
            out.status.success(),
            "ip netns add {name} (needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ns = Netns { name };
        ns.run("ip", &["link", "set", "lo", "up"]);
        ns
    }

    /// `program` to be run inside the namespace (`ip netns exec NAME program`).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// Runs `program args` inside the namespace; its stdout, or a panic with its stderr.
    pub fn run(&self, program: &str, args: &[&str]) -> String {
        let out = self.command(program).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

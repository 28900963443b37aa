//! [`VerdictSampler`]: `probe KIND` (the exec probe) and a GET of the HTTP endpoint's
//! `/livez`, `/readyz`, `/startupz`, sampled back to back from a thread, to check that
//! kubelet's two ways of probing a pod never get different verdicts.
//!
//! A sample is (probe, GET, probe) for one kind and one endpoint ([`Target`]); kinds and
//! targets take turns. It is compared only when it is a verdict of one supervisor on both
//! sides:
//! - both probes got an answer (not "supervisor gone", not a client timeout) and the same
//!   one — the same exit status and the same line once digit runs are masked (a reason such
//!   as "health checks stalled: last one 812 ms ago" moves between two reads), so a transition
//!   between two reads is not taken for a disagreement, and a GET that lags the probe for
//!   longer than one sample is;
//! - the GET got an HTTP answer (a port that does not answer yet, or any more, is no verdict);
//! - for a target with an `owner`, the control socket was answered by that supervisor just
//!   before the first probe and just after the second (`status`'s pid): `probe` talks to
//!   whoever owns the socket path, so during a handover one instance's GET is compared only
//!   with the probes that instance answered.
//!
//! Then the GET must say what the probe said: 200 when the probe exits 0, 503 otherwise, and
//! the probe's line as its body.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::BIN;

/// The probe kinds and the endpoint path each is served on.
pub const KINDS: [(&str, &str); 3] = [
    ("liveness", "/livez"),
    ("readiness", "/readyz"),
    ("startup", "/startupz"),
];

/// One HTTP endpoint to compare with `probe`.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: &'static str,
    pub addr: SocketAddr,
    /// The supervisor that must answer the probes for a sample to count (a handover).
    pub owner: Option<i64>,
}

/// What a [`VerdictSampler`] saw so far.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// Compared samples by (target, kind, probe passed).
    pub counts: BTreeMap<(&'static str, &'static str, bool), usize>,
    /// The same by the probe's line (digit runs masked): which reasons were compared.
    pub lines: BTreeMap<(&'static str, &'static str, String), usize>,
    /// Samples left out: no answer on one side, a transition, another owner.
    pub skipped: usize,
    /// (target, kind, probe's exit and line, GET's code and body).
    pub disagreements: Vec<String>,
}

impl Seen {
    pub fn count(&self, target: &str, kind: &str, passed: bool) -> usize {
        (self.counts.iter())
            .filter(|((t, k, p), _)| *t == target && *k == kind && *p == passed)
            .map(|(_, n)| n)
            .sum()
    }

    /// Samples of `target`'s `kind` compared whose probe line contained `part`.
    pub fn count_line(&self, target: &str, kind: &str, part: &str) -> usize {
        (self.lines.iter())
            .filter(|((t, k, l), _)| *t == target && *k == kind && l.contains(part))
            .map(|(_, n)| n)
            .sum()
    }
}

/// Samples until [`VerdictSampler::finish`].
pub struct VerdictSampler {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    targets: Arc<Mutex<Vec<Target>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// `probe KIND` on the sandbox `dir`: its exit code and line, or `None` when no supervisor
/// gave a verdict (none listens, or it did not answer in time).
pub fn probe_answer(dir: &Path, kind: &str) -> Option<(i32, String)> {
    let out = Command::new(BIN)
        .env_clear()
        .args(["probe", kind, "--timeout-ms", "3000", "--sandbox"])
        .arg(dir)
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let unanswered = [
        "supervisor ",
        "cannot reach the supervisor",
        "control socket ",
    ];
    if unanswered.iter().any(|p| line.starts_with(p)) || line.starts_with("bad answer") {
        return None;
    }
    Some((out.status.code().unwrap_or(-1), line))
}

/// The pid of the supervisor answering on `dir`'s control socket.
pub fn socket_owner(dir: &Path) -> Option<i64> {
    let out = Command::new(BIN)
        .env_clear()
        .args(["status", "--output", "json", "--sandbox"])
        .arg(dir)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v["pid"].as_i64()
}

/// A GET of `path`: the status code and the body, or `None` without an HTTP answer.
pub fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: node\r\nUser-Agent: kube-probe/1.31\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.trim().to_string()))
}

/// The line with every run of digits replaced by `#`.
fn masked(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    for c in line.chars() {
        match (c.is_ascii_digit(), out.ends_with('#')) {
            (true, true) => {}
            (true, false) => out.push('#'),
            (false, _) => out.push(c),
        }
    }
    out
}

/// A compared sample: whether the probe passed, its masked line, and how the GET differed.
type Compared = (bool, String, Option<String>);

/// One sample of `kind` on `t`; `None` when it is no verdict of one supervisor on both sides.
fn sample(dir: &Path, t: &Target, kind: &str, path: &str) -> Option<Compared> {
    let owned = || t.owner.is_none() || socket_owner(dir) == t.owner;
    if !owned() {
        return None;
    }
    let before = probe_answer(dir, kind)?;
    let http = get(t.addr, path);
    let after = probe_answer(dir, kind)?;
    let (code, body) = http?;
    if before.0 != after.0 || masked(&before.1) != masked(&after.1) || !owned() {
        return None;
    }
    let passed = before.0 == 0;
    let agree = (code == 200) == passed
        && (code == 200 || code == 503)
        && masked(&body) == masked(&before.1);
    let what = format!(
        "{} {kind}: probe exit {} {:?}, GET {path} {code} {body:?}",
        t.name, before.0, before.1
    );
    Some((passed, masked(&before.1), (!agree).then_some(what)))
}

impl VerdictSampler {
    /// Samples the sandbox node on `dir` through `targets` until [`Self::finish`].
    pub fn start(dir: &Path, targets: Vec<Target>) -> VerdictSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let targets = Arc::new(Mutex::new(targets));
        let (flag, shared, dir): (_, _, PathBuf) = (stop.clone(), seen.clone(), dir.into());
        let all = targets.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let now = all.lock().unwrap().clone();
                for t in &now {
                    for (kind, path) in KINDS {
                        let got = sample(&dir, t, kind, path);
                        let mut s = shared.lock().unwrap();
                        match got {
                            None => s.skipped += 1,
                            Some((passed, line, wrong)) => {
                                *s.counts.entry((t.name, kind, passed)).or_default() += 1;
                                *s.lines.entry((t.name, kind, line)).or_default() += 1;
                                s.disagreements.extend(wrong);
                            }
                        }
                    }
                }
            }
        });
        VerdictSampler {
            stop,
            seen,
            targets,
            thread: Some(thread),
        }
    }

    /// Samples `t` too from the next round on (an instance started meanwhile).
    pub fn add(&self, t: Target) {
        self.targets.lock().unwrap().push(t);
    }

    pub fn seen(&self) -> Seen {
        self.seen.lock().unwrap().clone()
    }

    /// Waits until `target`'s `kind` was compared with the probe `passed` more than `after`
    /// times; panics with what was seen after `within`. On a loaded machine one sample takes
    /// tens of ms, and a phase must not move on before it was sampled at all.
    pub fn wait(&self, target: &str, kind: &str, passed: bool, after: usize, within: Duration) {
        let t0 = Instant::now();
        loop {
            let seen = self.seen();
            if seen.count(target, kind, passed) > after {
                return;
            }
            assert!(
                t0.elapsed() < within,
                "{target} {kind} passed={passed} not sampled more than {after} times within {within:?}: {seen:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn finish(mut self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.seen()
    }
}

impl Drop for VerdictSampler {
    /// A failed test stops the sampling thread too.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A `DEBUG_WRAPPER` in `dir` that holds a daemon's (re)start, before it execs, while the file
/// [`Holds::path`] names for it exists; the SB ovsdb-server is told from the local one by its
/// database. Returns the wrapper's path.
pub struct Holds(PathBuf);

impl Holds {
    pub fn new(dir: &Path) -> Holds {
        let path = dir.join("hold-wrapper.sh");
        super::script(
            &path,
            "#!/bin/sh\nname=${1##*/}\ncase \"$*\" in *ovnsb_db*) name=ovsdb-server-sb;; esac\n\
             while [ -e \"$0.hold.$name\" ]; do sleep 0.01; done\nexec \"$@\"\n",
        );
        Holds(path)
    }

    pub fn wrapper(&self) -> String {
        self.0.display().to_string()
    }

    fn path(&self, daemon: &str) -> PathBuf {
        PathBuf::from(format!("{}.hold.{daemon}", self.0.display()))
    }

    /// `daemon`'s next (re)start waits until [`Self::release`].
    pub fn hold(&self, daemon: &str) {
        std::fs::write(self.path(daemon), "").unwrap();
    }

    pub fn release(&self, daemon: &str) {
        std::fs::remove_file(self.path(daemon)).unwrap();
    }
}

/// A free TCP port on 127.0.0.1 (bound and released), for an endpoint a sampler must reach
/// from its first answer on.
pub fn free_local_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

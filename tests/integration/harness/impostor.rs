//! An impostor: a process that passes the control socket's program check by its name alone,
//! as any process of the supervisor's uid could — this very test binary, hard-linked (or
//! copied) as `ovs-ovn-supervisor` into a temp dir of its own and run again, filtered to
//! [`impostor_main`]. It is driven line by line over stdin and answers each line with one:
//! - `ask [PID]`: a `handover` request through the product's own client (the exact bytes a
//!   real successor sends), naming PID, its own pid by default → `ok JSON` or `err REASON`;
//! - `serve`: binds the control socket path (a temp name renamed over it, as the real one
//!   does) and answers every `status` as a started instance with its own pid → `serving`;
//! - `lock`, `unlock`: try-locks the instance lock file (without creating it), releases it
//!   → `locked`, `held`, `missing`, `unlocked`;
//! - `asked`: how many `status` requests it has answered → the number.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use serde_json::{json, Value};

/// Set in the impostor's run to the node's OVS run dir.
const ENV: &str = "OOS_IMPOSTOR_RUNDIR";
/// Starts each line the impostor answers with (libtest may print on the same line first).
const MARK: &str = "impostor: ";

pub struct Impostor {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    _dir: tempfile::TempDir,
}

impl Impostor {
    /// An impostor for the node in `node_dir`, running as the test's own uid.
    pub fn spawn(node_dir: &Path) -> Impostor {
        Impostor::spawn_with(node_dir, &[])
    }

    /// An impostor started through `prefix` (e.g. `setpriv` arguments to change its uid).
    pub fn spawn_with(node_dir: &Path, prefix: &[&str]) -> Impostor {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("ovs-ovn-supervisor");
        let me = std::env::current_exe().unwrap();
        if std::fs::hard_link(&me, &exe).is_err() {
            std::fs::copy("/proc/self/exe", &exe).unwrap();
        }
        let mut argv: Vec<&std::ffi::OsStr> = prefix.iter().map(|a| a.as_ref()).collect();
        argv.push(exe.as_os_str());
        let mut c = Command::new(argv[0]);
        c.args(&argv[1..])
            .args([
                "harness::impostor::impostor_main",
                "--exact",
                "--test-threads=1",
                "--nocapture",
            ])
            .env(ENV, node_dir.join("run/openvswitch"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = c.spawn().unwrap();
        let stdin = child.stdin.take().unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if let Some(i) = line.find(MARK) {
                    let _ = tx.send(line[i + MARK.len()..].to_string());
                }
            }
        });
        Impostor {
            child,
            stdin,
            lines,
            _dir: dir,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends one command; returns its answer (panics after 60 s: a handover waits for the
    /// daemons' stop).
    pub fn say(&mut self, line: &str) -> String {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
        self.lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("impostor: no answer to {line:?}: {e}"))
    }

    /// Kills the impostor and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Impostor {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Answers `status` on `listener` as a started instance, counting the requests.
fn serve(listener: UnixListener, asked: Arc<AtomicUsize>) {
    let status = json!({ "pid": std::process::id(), "started": true, "stage": "ready",
        "stopping": false, "daemons": [] });
    for mut s in listener.incoming().map_while(Result::ok) {
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let id = loop {
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => break None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            if let Ok(req) = serde_json::from_slice::<Value>(&buf) {
                break Some(req["id"].clone());
            }
        };
        let Some(id) = id else { continue };
        asked.fetch_add(1, Ordering::SeqCst);
        let reply = json!({ "id": id, "result": status, "error": null });
        let _ = s.write_all(reply.to_string().as_bytes());
    }
}

/// The impostor's body; in an ordinary run of the suite (no [`ENV`]) it does nothing.
#[test]
fn impostor_main() {
    let Some(rundir) = std::env::var_os(ENV).map(PathBuf::from) else {
        return;
    };
    let sock = rundir.join("ovs-ovn-supervisor.sock");
    let asked = Arc::new(AtomicUsize::new(0));
    let mut lock = None;
    let me = std::process::id();
    for line in std::io::stdin().lock().lines().map_while(Result::ok) {
        let mut words = line.split_whitespace();
        let answer = match (words.next(), words.next()) {
            (Some("ask"), pid) => {
                let pid: i64 = pid.map_or(i64::from(me), |p| p.parse().unwrap());
                let r = ovs_ovn_supervisor::control::ask_with(
                    &sock,
                    "handover",
                    Some(json!({ "pid": pid })),
                    Duration::from_secs(65),
                );
                match r {
                    Ok(v) => format!("ok {v}"),
                    Err(e) => format!("err {e}"),
                }
            }
            (Some("serve"), _) => {
                let tmp = rundir.join(format!("impostor.{me}.tmp"));
                let listener = UnixListener::bind(&tmp).unwrap();
                std::fs::rename(&tmp, &sock).unwrap();
                let asked = asked.clone();
                std::thread::spawn(move || serve(listener, asked));
                "serving".into()
            }
            (Some("lock"), _) => {
                match std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(rundir.join("ovs-ovn-supervisor.lock"))
                {
                    Err(_) => "missing".into(),
                    Ok(f) => match nix::fcntl::Flock::lock(
                        f,
                        nix::fcntl::FlockArg::LockExclusiveNonblock,
                    ) {
                        Ok(mut l) => {
                            l.set_len(0).unwrap();
                            writeln!(l, "{me}").unwrap();
                            lock = Some(l);
                            "locked".into()
                        }
                        Err(_) => "held".into(),
                    },
                }
            }
            (Some("unlock"), _) => {
                lock = None;
                "unlocked".into()
            }
            (Some("asked"), _) => asked.load(Ordering::SeqCst).to_string(),
            _ => format!("unknown command {line:?}"),
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "\n{MARK}{answer}");
        let _ = out.flush();
    }
    drop(lock);
}

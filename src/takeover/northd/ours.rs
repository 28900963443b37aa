//! Our ovn-controller's internal version, asked of itself: it logs `OVN internal version is :
//! [V]` at INFO once it has read the Open_vSwitch database, right before its main loop (OVN
//! 23.03 to 25.03). A short private run gives it an empty database of its own: a throwaway
//! `ovsdb-server` on a socket in a private directory, then `ovn-controller` on that socket
//! until the line comes. Measured here (loaded 2-core machine): 35–80 ms with OVN 23.03,
//! 21–41 ms with OVN 25.03.
//!
//! Invariants:
//! - Private: the directory is created new (never an existing one) in the OVN run dir, which
//!   we own, and removed afterwards; both daemons run with every run/db/log directory pointed
//!   at it. The database has no `Open_vSwitch` row, so ovn-controller has no chassis, no
//!   Southbound to connect to and no bridge: it changes nothing anywhere.
//! - Bounded: both lead their own process group, die with us (`PR_SET_PDEATHSIG`), and are
//!   SIGKILLed and waited for (std: no reaper runs yet) on every path, within [`DEADLINE`].

use std::io::{BufRead, BufReader};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::config::paths::VERSION_PROBE_TAG;
use crate::config::Config;
use crate::daemon::Daemon;
use crate::process::bounded::{self, BoundedError};

/// The whole private run, from the directory to the line.
pub const DEADLINE: Duration = Duration::from_secs(10);

const MARK: &str = "OVN internal version is : [";

#[derive(Debug, thiserror::Error)]
pub enum OursError {
    #[error("cannot create a private directory {}: {source}", path.display())]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tool(#[from] BoundedError),
    #[error("ovsdb-tool create {}: {detail}", db.display())]
    CreateDb { db: PathBuf, detail: String },
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: &'static str,
        source: std::io::Error,
    },
    #[error("{program} exited ({status}) before {what}")]
    Exited {
        program: &'static str,
        status: std::process::ExitStatus,
        what: &'static str,
    },
    #[error("{what} within {DEADLINE:?}: not seen (last line: {last:?})")]
    Deadline { what: &'static str, last: String },
}

/// The version in ovn-controller's `OVN internal version is : [V]` line, if `line` is one.
pub fn parse_line(line: &str) -> Option<&str> {
    let rest = &line[line.find(MARK)? + MARK.len()..];
    let v = rest.split_once(']')?.0.trim();
    (!v.is_empty()).then_some(v)
}

/// A daemon of the private run: killed with its group and waited for when dropped.
struct Private(Child);

impl Private {
    /// SIGKILL to its group, unless it was reaped already: only reaping frees the pid (we are
    /// the only one who reaps it), so an unreaped pid cannot name anyone else.
    fn kill(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            // It leads its own group (`spawn` below): this reaches only it and its children.
            let _ = killpg(Pid::from_raw(self.0.id() as i32), Signal::SIGKILL);
        }
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        self.kill();
        let _ = self.0.wait();
    }
}

/// The private directory, removed when dropped.
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            tracing::warn!(dir = %self.0.display(), "cannot remove the private directory: {e}");
        }
    }
}

fn private_dir(cfg: &Config) -> Result<Dir, OursError> {
    let mut tries = 0;
    loop {
        let tag: String = (0..VERSION_PROBE_TAG)
            .map(|_| fastrand::alphanumeric())
            .collect();
        let path = cfg.layout.version_probe_dir(&tag);
        // mkdir never follows a link at the last component: an existing name is refused.
        match std::fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => return Ok(Dir(path)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && tries < 8 => tries += 1,
            Err(source) => return Err(OursError::Dir { path, source }),
        }
    }
}

fn spawn(program: &'static str, mut cmd: Command, dir: &Path) -> Result<Private, OursError> {
    for var in [
        "OVS_RUNDIR",
        "OVS_DBDIR",
        "OVS_LOGDIR",
        "OVS_SYSCONFDIR",
        "OVN_RUNDIR",
        "OVN_DBDIR",
        "OVN_LOGDIR",
    ] {
        cmd.env(var, dir);
    }
    // Its working directory too: a core it dumps goes with the private dir, not into ours.
    cmd.stdin(Stdio::null()).process_group(0).current_dir(dir);
    // SAFETY: runs in the forked child before exec, where only async-signal-safe calls are
    // allowed; prctl(2) is a plain system call and allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            nix::libc::prctl(nix::libc::PR_SET_PDEATHSIG, nix::libc::SIGKILL);
            Ok(())
        });
    }
    cmd.spawn()
        .map(Private)
        .map_err(|source| OursError::Spawn { program, source })
}

/// Waits until the private ovsdb-server accepts connections on `sock`.
fn wait_listening(server: &mut Private, sock: &Path, until: Instant) -> Result<(), OursError> {
    let mut pause = Duration::from_millis(1);
    loop {
        if std::os::unix::net::UnixStream::connect(sock).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = server.0.try_wait() {
            return Err(OursError::Exited {
                program: "ovsdb-server",
                status,
                what: "it listened",
            });
        }
        let now = Instant::now();
        if now >= until {
            return Err(OursError::Deadline {
                what: "the private ovsdb-server listening",
                last: String::new(),
            });
        }
        std::thread::sleep(pause.min(until - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Reads ovn-controller's stderr until the version line, its exit or `until`.
fn read_version(controller: &mut Private, until: Instant) -> Result<String, OursError> {
    let stderr = controller.0.stderr.take();
    let (tx, rx) = mpsc::channel::<String>();
    // Ends at EOF, when the private ovn-controller is killed.
    let reader = std::thread::spawn(move || {
        let Some(stderr) = stderr else { return };
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut last = String::new();
    let found = loop {
        let left = until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => match parse_line(&line) {
                Some(v) => break Ok(v.to_string()),
                None => last = line,
            },
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = controller.0.wait().ok();
                break Err(match status {
                    Some(status) => OursError::Exited {
                        program: "ovn-controller",
                        status,
                        what: "it logged its internal version",
                    },
                    None => OursError::Deadline {
                        what: "ovn-controller's internal version",
                        last,
                    },
                });
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                break Err(OursError::Deadline {
                    what: "ovn-controller's internal version",
                    last,
                })
            }
        }
    };
    drop(rx);
    // Its stderr closes with it, which ends the reader.
    controller.kill();
    let _ = reader.join();
    found
}

/// The internal version of the ovn-controller that `run` would start.
pub fn internal_version(cfg: &Config) -> Result<String, OursError> {
    let until = Instant::now() + DEADLINE;
    let dir = private_dir(cfg)?;
    let db = dir.0.join("conf.db");
    let mut create = Command::new("ovsdb-tool");
    create.arg("create").arg(&db).arg(&cfg.vswitch_schema);
    let out = bounded::output(create, DEADLINE)?;
    if !out.status.success() {
        return Err(OursError::CreateDb {
            db,
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    let sock = dir.0.join("db.sock");
    let mut server = Command::new(Daemon::OvsdbServer.program());
    server
        .arg(&db)
        .arg(format!("--remote=punix:{}", sock.display()))
        .arg(format!("--unixctl={}", dir.0.join("db.ctl").display()))
        .args(["--no-chdir", "-vconsole:off", "-vsyslog:off"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut server = spawn("ovsdb-server", server, &dir.0)?;
    wait_listening(&mut server, &sock, until)?;
    let mut controller = Command::new(Daemon::OvnController.program());
    controller
        .arg(format!("unix:{}", sock.display()))
        .args(["--no-chdir", "-vconsole:info", "-vsyslog:off"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut controller = spawn("ovn-controller", controller, &dir.0)?;
    let version = read_version(&mut controller, until);
    // The daemons go before their directory.
    drop(controller);
    drop(server);
    drop(dir);
    version
}

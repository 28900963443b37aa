//! Spawning children and reaping every exit: the PID1 duties.
//!
//! Invariants:
//! - One [`Reaper`] per process (a thread, independent of any async runtime) owns `waitpid(-1)`. A child is spawned with `std::process::Command` while
//!   the reaper's lock is held and registered before the lock is released, so its exit can
//!   never be reaped before someone is waiting for it (the race that made `tokio::process`
//!   beside a global reaper lose 21 of 300 exits here). `std::process::Child` handles are
//!   dropped unwaited: waiting through std would race the reaper and get ECHILD.
//! - An exit nobody registered (an orphan re-parented to us as subreaper, e.g. from an exec
//!   probe under `hostPID`) is reaped and logged.
//! - We only signal pids that are registered and not yet reaped, checked under the same lock, so
//!   a recycled pid is never signalled (the pod shares the host's pid namespace).
//! - Each child leads its own process group, so a group signal reaches a `DEBUG_WRAPPER`'s
//!   grandchildren and nothing else. What escapes its group (`setsid`, a double fork) is still
//!   our descendant — orphans are re-parented to us as subreaper — and is found through
//!   `/proc`'s parent links ([`Reaper::signal_descendants`]), never by signalling a group or
//!   pid we did not create.

pub mod backoff;
pub mod bounded;
pub mod busy;
pub mod fds;
pub mod limits;
pub mod procfs;

use std::collections::HashMap;
use std::fmt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::{Condvar, Mutex, MutexGuard, Once, OnceLock};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::sync::oneshot;

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("{name}: cannot start {program}: {source}")]
    Spawn {
        name: String,
        program: String,
        source: std::io::Error,
    },
    #[error("cannot become a child subreaper: {0}")]
    Subreaper(Errno),
    #[error("cannot start the reaper thread: {0}")]
    Thread(std::io::Error),
    #[error("{name} (pid {pid}) did not finish within {deadline:?}; killed it")]
    Deadline {
        name: String,
        pid: i32,
        deadline: Duration,
    },
    #[error("{name} (pid {pid}) vanished without an exit status")]
    Lost { name: String, pid: i32 },
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(i32),
    Signaled(Signal),
}

impl ExitStatus {
    pub fn success(self) -> bool {
        self == ExitStatus::Exited(0)
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Exited(c) => write!(f, "exit code {c}"),
            ExitStatus::Signaled(s) => write!(f, "killed by {s}"),
        }
    }
}

struct Entry {
    name: String,
    tx: oneshot::Sender<ExitStatus>,
}

/// A started child: its pid, its exit, and its output pipes.
pub struct Spawned {
    pub name: String,
    pub pid: i32,
    pub exit: oneshot::Receiver<ExitStatus>,
    pub stdout: Option<std::process::ChildStdout>,
    pub stderr: Option<std::process::ChildStderr>,
}

struct State {
    children: HashMap<i32, Entry>,
    /// Bumped on every spawn, so the reaper thread never sleeps through a new child.
    generation: u64,
}

pub struct Reaper {
    state: Mutex<State>,
    spawned: Condvar,
}

static REAPER: OnceLock<Result<Reaper, Errno>> = OnceLock::new();

/// How long the reaper sleeps with no child at all before looking for orphans again; orphans can
/// only be re-parented to us while some descendant lives, so this costs nothing while the
/// daemons run.
const IDLE_RECHECK: Duration = Duration::from_secs(1);

impl Reaper {
    /// The process's one reaper: makes this process a child subreaper (with `hostPID` we are
    /// usually not pid 1) and starts the reaper thread on first use.
    pub fn global() -> Result<&'static Reaper, ProcessError> {
        let r = REAPER.get_or_init(|| {
            nix::sys::prctl::set_child_subreaper(true)?;
            Ok(Reaper {
                state: Mutex::new(State {
                    children: HashMap::new(),
                    generation: 0,
                }),
                spawned: Condvar::new(),
            })
        });
        let reaper = r.as_ref().map_err(|e| ProcessError::Subreaper(*e))?;
        static THREAD: Once = Once::new();
        let mut err = None;
        THREAD.call_once(|| {
            if let Err(e) = std::thread::Builder::new()
                .name("reaper".into())
                .spawn(move || reaper.run())
            {
                err = Some(e);
            }
        });
        match err {
            Some(e) => Err(ProcessError::Thread(e)),
            None => Ok(reaper),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section is a single insert/remove/send, so a poisoned lock still guards
        // a consistent map.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn run(&self) {
        loop {
            // Sleep until some child is waitable without reaping it (WNOWAIT), then reap under
            // the lock: `Command::spawn` may itself wait for a child whose exec failed while we
            // hold the lock, and must not find it already gone.
            let generation = self.lock().generation;
            match waitid(Id::All, WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
                Ok(_) => self.reap(),
                Err(Errno::EINTR) => {}
                Err(Errno::ECHILD) => {
                    let st = self.lock();
                    if st.generation == generation {
                        let _unused = self
                            .spawned
                            .wait_timeout(st, IDLE_RECHECK)
                            .map(|(g, _)| drop(g));
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "waitid failed");
                    std::thread::sleep(IDLE_RECHECK);
                }
            }
        }
    }

    /// Starts `cmd` in its own process group with stdin closed and stdout/stderr piped.
    pub fn spawn(&self, name: &str, cmd: Command) -> Result<Spawned, ProcessError> {
        self.spawn_to(name, cmd, Stdio::piped())
    }

    /// [`Self::spawn`] with stdout going to `stdout` (a file, for output too large to keep).
    fn spawn_to(
        &self,
        name: &str,
        mut cmd: Command,
        stdout: Stdio,
    ) -> Result<Spawned, ProcessError> {
        cmd.process_group(0)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped());
        let mut st = self.lock();
        let mut child = cmd.spawn().map_err(|source| ProcessError::Spawn {
            name: name.to_string(),
            program: cmd.get_program().to_string_lossy().into_owned(),
            source,
        })?;
        // Linux pids fit in i32 (pid_max <= 2^22).
        let pid = child.id() as i32;
        let (tx, rx) = oneshot::channel();
        st.children.insert(
            pid,
            Entry {
                name: name.to_string(),
                tx,
            },
        );
        st.generation += 1;
        drop(st);
        self.spawned.notify_one();
        Ok(Spawned {
            name: name.to_string(),
            pid,
            exit: rx,
            stdout: child.stdout.take(),
            stderr: child.stderr.take(),
        })
    }

    /// Reaps every exited child; registered ones go to their waiter, orphans are logged.
    fn reap(&self) {
        let mut st = self.lock();
        loop {
            let (pid, status) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, ExitStatus::Exited(code)),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, ExitStatus::Signaled(sig)),
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
                Ok(_) | Err(Errno::EINTR) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "waitpid failed");
                    break;
                }
            };
            match st.children.remove(&pid.as_raw()) {
                Some(entry) => {
                    tracing::debug!(daemon = %entry.name, pid = pid.as_raw(), %status, "reaped");
                    // The waiter may be gone (we are shutting down); the exit is still reaped.
                    let _ = entry.tx.send(status);
                }
                None => tracing::info!(pid = pid.as_raw(), %status, "reaped orphan"),
            }
        }
    }

    /// Signals a child we started and have not reaped; `group` reaches its process group.
    /// Returns false when the pid is not (or no longer) ours.
    pub fn signal(&self, pid: i32, sig: Signal, group: bool) -> bool {
        let st = self.lock();
        if !st.children.contains_key(&pid) {
            return false;
        }
        let r = if group {
            killpg(Pid::from_raw(pid), sig)
        } else {
            kill(Pid::from_raw(pid), sig)
        };
        match r {
            Ok(()) => true,
            // The child exited but is not reaped yet: nothing to signal.
            Err(Errno::ESRCH) => false,
            Err(e) => {
                tracing::warn!(pid, signal = %sig, error = %e, "signal failed");
                false
            }
        }
    }

    /// Sends `sig` to every descendant of this process (children, theirs, ...: whatever a
    /// wrapper forked and left, in a session of its own or not; as subreaper we inherit every
    /// orphan below us) and returns their pids. Under the reaper's lock, so no child of ours
    /// is reaped — and its pid recycled — between the look in `/proc` and the signal; a
    /// grandchild reaped by its own parent in that instant is the one race left.
    pub fn signal_descendants(&self, sig: Signal) -> Vec<i32> {
        let _st = self.lock();
        let me = std::process::id() as i32;
        let all = procfs::descendants(std::path::Path::new("/proc"), me);
        all.into_iter()
            .filter(|pid| match kill(Pid::from_raw(*pid), sig) {
                Ok(()) => true,
                Err(Errno::ESRCH) => false,
                Err(e) => {
                    tracing::warn!(pid, signal = %sig, error = %e, "signal failed");
                    false
                }
            })
            .collect()
    }

    /// Pids we started and have not reaped yet.
    pub fn live(&self) -> Vec<(i32, String)> {
        self.lock()
            .children
            .iter()
            .map(|(pid, e)| (*pid, e.name.clone()))
            .collect()
    }

    /// Runs a short-lived tool (e.g. `ovsdb-tool`) to completion through the reaper. A tool
    /// still running at `deadline` is killed with its process group (it leads one) and waited
    /// for, so neither it nor a zombie stays; the error names it and the deadline.
    pub async fn output(
        &self,
        name: &str,
        cmd: Command,
        deadline: Duration,
    ) -> Result<Output, ProcessError> {
        let s = self.spawn(name, cmd)?;
        self.finish(name, s, deadline).await
    }

    /// [`Self::output`] with stdout written to `file` as it comes, whatever its size (a dump of
    /// 100,000 flows is tens of MiB; what `output` keeps is capped at 1 MiB). The returned
    /// `stdout` is empty.
    pub async fn output_to(
        &self,
        name: &str,
        cmd: Command,
        file: std::fs::File,
        deadline: Duration,
    ) -> Result<Output, ProcessError> {
        let s = self.spawn_to(name, cmd, Stdio::from(file))?;
        self.finish(name, s, deadline).await
    }

    async fn finish(
        &self,
        name: &str,
        mut s: Spawned,
        deadline: Duration,
    ) -> Result<Output, ProcessError> {
        let run = async {
            let (out, err) = tokio::join!(read_all(s.stdout.take()), read_all(s.stderr.take()));
            let status = (&mut s.exit).await;
            (out, err, status)
        };
        let (out, err, status) = match tokio::time::timeout(deadline, run).await {
            Ok(done) => done,
            Err(_) => {
                self.signal(s.pid, Signal::SIGKILL, true);
                // SIGKILL cannot be ignored: the exit comes; bounded anyway, as a stuck
                // uninterruptible sleep (D state) would never deliver it.
                let _ = tokio::time::timeout(KILL_WAIT, &mut s.exit).await;
                return Err(ProcessError::Deadline {
                    name: name.to_string(),
                    pid: s.pid,
                    deadline,
                });
            }
        };
        let status = status.map_err(|_| ProcessError::Lost {
            name: name.to_string(),
            pid: s.pid,
        })?;
        Ok(Output {
            status,
            stdout: String::from_utf8_lossy(&out).into_owned(),
            stderr: String::from_utf8_lossy(&err).into_owned(),
        })
    }
}

/// How long a tool killed at its deadline gets to be reaped before we stop waiting.
const KILL_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Largest output we keep from a short-lived tool; the rest is drained and dropped.
const MAX_TOOL_OUTPUT: usize = 1 << 20;

async fn read_all<P: Into<std::os::fd::OwnedFd>>(pipe: Option<P>) -> Vec<u8> {
    let Some(pipe) = pipe else {
        return Vec::new();
    };
    let Ok(mut rx) = tokio::net::unix::pipe::Receiver::from_owned_fd(pipe.into()) else {
        return Vec::new();
    };
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match rx.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) if buf.len() < MAX_TOOL_OUTPUT => buf.extend_from_slice(&chunk[..n]),
            Ok(_) => {}
        }
    }
    buf
}

//! Running a short host tool (iptables, modprobe) to completion under a deadline, before the
//! reaper exists or from the CLI.
//!
//! Invariants:
//! - Only for use where no [`super::Reaper`] thread calls `waitpid(-1)`: this waits for its own
//!   child, which would race the reaper (ECHILD). Once the reaper runs, use
//!   [`super::Reaper::output`], which takes a deadline too.
//! - A tool that misses its deadline is killed (SIGKILL to its process group, which it leads,
//!   so a wrapper's children go too) and waited for, so no zombie and no stray tool stay behind;
//!   the error names the program and the deadline.
//! - stdout and stderr are read on threads while we wait, so a chatty tool cannot block on a
//!   full pipe and look hung.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

#[derive(Debug, thiserror::Error)]
pub enum BoundedError {
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("{program} did not finish within {deadline:?}; killed it")]
    Deadline { program: String, deadline: Duration },
    #[error("waiting for {program}: {source}")]
    Wait {
        program: String,
        source: std::io::Error,
    },
}

/// Runs `cmd` (stdin from /dev/null) and returns its output, or kills it at `deadline`.
pub fn output(mut cmd: Command, deadline: Duration) -> Result<std::process::Output, BoundedError> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().map_err(|source| BoundedError::Spawn {
        program: program.clone(),
        source,
    })?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let wait_err = |source| BoundedError::Wait {
        program: program.clone(),
        source,
    };
    let end = Instant::now() + deadline;
    let mut pause = Duration::from_millis(1);
    let status = loop {
        if let Some(status) = child.try_wait().map_err(wait_err)? {
            break status;
        }
        let now = Instant::now();
        if now >= end {
            // The child leads its own group (process_group(0) above), so this reaches only it
            // and what it started.
            let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
            return Err(BoundedError::Deadline { program, deadline });
        }
        // Most tools finish in a few ms: poll fast first, then back off to 50 ms.
        std::thread::sleep(pause.min(end - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    };
    Ok(std::process::Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quick_tool_returns_its_output() {
        let mut c = Command::new("sh");
        c.args(["-c", "echo out; echo err >&2; exit 3"]);
        let out = output(c, Duration::from_secs(10)).unwrap();
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    }

    #[test]
    fn a_hung_tool_and_its_children_are_killed_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("grandchild");
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(format!("sleep 60 & echo $! > {}; wait", pidfile.display()));
        let started = Instant::now();
        let e = output(c, Duration::from_millis(300)).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(30), "{e}");
        assert!(
            matches!(e, BoundedError::Deadline { ref program, .. } if program == "sh"),
            "{e}"
        );
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The grandchild got SIGKILL with its group; it is a zombie of init or gone.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let alive = state
                .rsplit(')')
                .next()
                .is_some_and(|s| !s.trim_start().starts_with('Z') && !s.is_empty());
            if !alive {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "grandchild {pid} still alive: {state}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_missing_program_is_named() {
        let e = output(Command::new("/nonexistent/tool"), Duration::from_secs(1)).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/tool"), "{e}");
    }
}

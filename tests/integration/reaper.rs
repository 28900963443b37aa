//! The process-wide reaper, each test's body in a process of its own ([`in_own_process`]):
//! once started it owns `waitpid(-1)` for the whole process, so the other tests of this binary,
//! which wait on their children through std, must not share a process with it.

use nix::sys::signal::Signal;
use ovs_ovn_supervisor::process::{ExitStatus, Reaper};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::in_own_process;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn every_exit_reaches_its_waiter_even_when_children_exit_at_once() {
    in_own_process(|| {
        rt().block_on(async {
            let reaper = Reaper::global().unwrap();
            let mut waits = Vec::new();
            for i in 0..200 {
                let mut c = Command::new("sh");
                c.arg("-c").arg(format!("exit {}", i % 7));
                let s = reaper.spawn("sh", c).unwrap();
                waits.push((i % 7, s.pid, s.exit));
            }
            for (code, _, rx) in &mut waits {
                assert_eq!(rx.await.unwrap(), ExitStatus::Exited(*code));
            }
            let live = reaper.live();
            assert!(waits
                .iter()
                .all(|(_, pid, _)| !live.iter().any(|(p, _)| p == pid)));
        })
    });
}

#[test]
fn signal_reaches_only_our_children_and_reports_the_signal() {
    in_own_process(|| {
        rt().block_on(async {
            let reaper = Reaper::global().unwrap();
            let mut c = Command::new("sleep");
            c.arg("30");
            let s = reaper.spawn("sleep", c).unwrap();
            assert!(reaper.signal(s.pid, Signal::SIGTERM, false));
            assert_eq!(s.exit.await.unwrap(), ExitStatus::Signaled(Signal::SIGTERM));
            // Reaped: the pid is no longer ours and must not be signalled again.
            assert!(!reaper.signal(s.pid, Signal::SIGKILL, true));
            // pid 1 was never ours.
            assert!(!reaper.signal(1, Signal::SIGTERM, false));
        })
    });
}

#[test]
fn orphans_of_our_children_are_reaped() {
    in_own_process(|| {
        rt().block_on(async {
            let reaper = Reaper::global().unwrap();
            // The shell leaves a grandchild behind and exits; as subreaper it becomes ours.
            let mut c = Command::new("sh");
            c.arg("-c").arg("sleep 0.2 & echo $!");
            let out = reaper
                .output("sh", c, Duration::from_secs(30))
                .await
                .unwrap();
            let grandchild: i32 = out.stdout.trim().parse().unwrap();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            // Reaped means /proc/PID is gone (a zombie would keep it).
            while std::path::Path::new(&format!("/proc/{grandchild}")).exists() {
                assert!(std::time::Instant::now() < deadline, "orphan not reaped");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
    });
}

#[test]
fn output_collects_stdout_stderr_and_status() {
    in_own_process(|| {
        rt().block_on(async {
            let reaper = Reaper::global().unwrap();
            let mut c = Command::new("sh");
            c.arg("-c").arg("echo out; echo err >&2; exit 3");
            let o = reaper
                .output("sh", c, Duration::from_secs(30))
                .await
                .unwrap();
            assert_eq!(o.stdout, "out\n");
            assert_eq!(o.stderr, "err\n");
            assert_eq!(o.status, ExitStatus::Exited(3));
            let err = reaper
                .output(
                    "nope",
                    Command::new("/nonexistent/tool"),
                    Duration::from_secs(30),
                )
                .await
                .unwrap_err();
            assert!(err.to_string().contains("/nonexistent/tool"), "{err}");
        })
    });
}

#[test]
fn a_tool_past_its_deadline_is_killed_with_its_group_and_named() {
    in_own_process(|| {
        rt().block_on(async {
            let reaper = Reaper::global().unwrap();
            let dir = tempfile::tempdir().unwrap();
            let pidfile = dir.path().join("grandchild");
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("sleep 60 & echo $! > {}; wait", pidfile.display()));
            let started = Instant::now();
            let err = reaper
                .output("hung-tool", c, Duration::from_millis(300))
                .await
                .unwrap_err();
            assert!(started.elapsed() < Duration::from_secs(30), "{err}");
            let msg = err.to_string();
            assert!(msg.contains("hung-tool") && msg.contains("300ms"), "{msg}");
            assert!(reaper.live().iter().all(|(_, name)| name != "hung-tool"));
            // The grandchild went with the group; as subreaper we reap it, so /proc/PID goes.
            let pid = std::fs::read_to_string(&pidfile).unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::path::Path::new(&format!("/proc/{}", pid.trim())).exists() {
                assert!(
                    Instant::now() < deadline,
                    "grandchild {pid} survived the deadline kill"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    });
}

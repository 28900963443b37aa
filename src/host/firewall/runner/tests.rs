//! Tests of [`super::HostRunner`] with real programs: output and exit status come back, and a
//! tool that hangs is killed at the runner's deadline with an error naming it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use super::*;

/// A stand-in for iptables: a shell script named `name` in `dir` running `body`.
fn fake_tool(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_string_lossy().into_owned()
}

/// Runs `program` and retries while the kernel says ETXTBSY: another test's fork may still
/// hold the script's write descriptor for a moment after we closed ours.
fn run(r: &HostRunner, program: &str, args: &[&str]) -> Result<Output, RunError> {
    for _ in 0..50 {
        match r.run(program, args) {
            Err(RunError::Bounded(BoundedError::Spawn { source, .. }))
                if source.raw_os_error() == Some(nix::libc::ETXTBSY) =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
    panic!("{program} stayed busy");
}

#[test]
fn output_status_and_an_untranslated_locale_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let tool = fake_tool(
        dir.path(),
        "iptables-nft",
        r#"echo "$LC_ALL $*"; echo no >&2; exit 1"#,
    );
    let out = run(&HostRunner::default(), &tool, &["-w", "5", "-S", "INPUT"]).unwrap();
    assert_eq!(out.code, Some(1));
    assert_eq!(out.stdout, "C -w 5 -S INPUT\n");
    assert_eq!(out.stderr, "no\n");
}

#[test]
fn a_tool_that_hangs_is_killed_at_the_deadline_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let tool = fake_tool(dir.path(), "iptables-nft", "exec sleep 60");
    let runner = HostRunner {
        deadline: Duration::from_millis(200),
        ..HostRunner::default()
    };
    let started = Instant::now();
    let err = run(&runner, &tool, &["-w", "5", "-S", "INPUT"]).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(30), "{err}");
    let RunError::Bounded(BoundedError::Deadline { program, deadline }) = &err else {
        panic!("{err:?}");
    };
    assert_eq!(
        (program.as_str(), *deadline),
        (tool.as_str(), runner.deadline)
    );
    let text = err.to_string();
    assert!(
        text.contains("iptables-nft did not finish within 200ms"),
        "{text}"
    );
}

#[test]
fn the_default_deadline_outlasts_the_lock_wait() {
    let wait: u64 = LOCK_WAIT[1].parse().unwrap();
    assert_eq!(LOCK_WAIT[0], "-w");
    assert!(HostRunner::default().deadline > Duration::from_secs(wait));
    assert_eq!(HostRunner::new(Some("ns".into())).deadline, DEADLINE);
}

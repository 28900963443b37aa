//! The legacy takeover's proofs on a fake /proc: stat parsing, the monitor's title, which
//! pidfiles count as ours, and a recycled pid that must not be signalled.

use super::*;
use nix::libc;
use std::path::PathBuf;

fn fake(root: &Path, pid: i32, comm: &str, state: char, ppid: i32, title: &str) {
    let d = root.join(pid.to_string());
    std::fs::create_dir_all(&d).unwrap();
    let tail = (5..=21)
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    let stat = format!("{pid} ({comm}) {state} {ppid} {tail} 4242 0 0\n");
    std::fs::write(d.join("stat"), stat).unwrap();
    std::fs::write(d.join("cmdline"), format!("{title}\0\0\0")).unwrap();
}

fn live(pidfile: PathBuf, pid: i32, program: &str) -> Finding {
    Finding::LiveDaemon {
        pidfile,
        pid,
        program: program.into(),
    }
}

#[test]
fn stat_fields_after_a_comm_with_spaces_and_parens() {
    let dir = tempfile::tempdir().unwrap();
    fake(dir.path(), 7, "a) (b", 'S', 3, "");
    let s = stat(dir.path(), 7).unwrap();
    assert_eq!(
        (s.comm.as_str(), s.state, s.ppid, s.start),
        ("a) (b", 'S', 3, 4242)
    );
    assert!(stat(dir.path(), 8).is_none());
}

#[test]
fn monitor_title_must_name_that_worker() {
    let t = b"ovs-vswitchd: monitoring pid 10084 (healthy)\0\0";
    assert!(title_names(t, "ovs-vswitchd", 10084));
    assert!(!title_names(t, "ovs-vswitchd", 1008));
    assert!(!title_names(t, "ovsdb-server", 10084));
    assert!(!title_names(b"bash", "ovs-vswitchd", 10084));
}

#[test]
fn finds_only_our_daemons_and_proves_each_monitor() {
    let dir = tempfile::tempdir().unwrap();
    let (root, run) = (dir.path().join("proc"), dir.path().join("sb"));
    let l = Layout::resolve(
        &crate::config::cli::PathArgs {
            sandbox: Some(run.clone()),
            ..Default::default()
        },
        Path::new("/"),
    )
    .unwrap()
    .0;
    fake(
        &root,
        10,
        "monitor",
        'S',
        1,
        "ovs-vswitchd: monitoring pid 11 (healthy)",
    );
    fake(
        &root,
        11,
        "ovs-vswitchd",
        'S',
        10,
        "ovs-vswitchd unix:db.sock",
    );
    // A parent called `monitor` whose title names another worker is not its monitor.
    fake(
        &root,
        20,
        "monitor",
        'S',
        1,
        "ovsdb-server: monitoring pid 99 (healthy)",
    );
    fake(&root, 21, "ovsdb-server", 'S', 20, "ovsdb-server conf.db");
    fake(&root, 31, "ovn-controller", 'Z', 1, "");
    fake(
        &root,
        41,
        "ovsdb-server",
        'S',
        1,
        "ovsdb-server ovnsb_db.db",
    );
    let findings = vec![
        live(l.ovn_rundir.join("ovnsb_db.pid"), 41, "ovsdb-server"),
        live(l.ovs_rundir.join("ovsdb-server.pid"), 21, "ovsdb-server"),
        live(
            l.ovn_rundir.join("ovn-controller.pid"),
            31,
            "ovn-controller",
        ),
        live(l.ovs_rundir.join("ovs-vswitchd.pid"), 11, "ovs-vswitchd"),
    ];
    let node = find(&l, &findings, &root).unwrap();
    let got: Vec<_> = node
        .daemons
        .iter()
        .map(|o| (o.daemon, o.worker.pid, o.monitor.as_ref().map(|m| m.pid)))
        .collect();
    assert_eq!(
        got,
        [
            (Daemon::Vswitchd, 11, Some(10)),
            (Daemon::OvsdbServer, 21, None)
        ]
    );
    let is_ours = |p: &std::path::Path| Daemon::NODE.iter().any(|d| d.pidfile(&l) == p);
    assert!(is_ours(&l.ovs_rundir.join("ovsdb-server.pid")));
    assert!(!is_ours(&l.ovn_rundir.join("ovnsb_db.pid")));
    assert!(find(&l, &findings[..1], &root).is_none());
}

#[tokio::test]
async fn a_recycled_pid_is_never_signalled() {
    // Our own pid with another start time: `end` must see it as gone, not signal it.
    let me = std::process::id() as i32;
    let real = stat(Path::new("/proc"), me).unwrap();
    let ghost = Proc {
        pid: me,
        comm: real.comm,
        start: real.start + 1,
    };
    assert!(!alive(Path::new("/proc"), &ghost));
    let how = end(Path::new("/proc"), &ghost, "ghost", Duration::ZERO).await;
    assert_eq!(how.unwrap(), "exit");
}

/// A child of ours as the ladder sees it (a dead, unreaped child is a zombie: gone).
fn proven(child: &std::process::Child) -> Proc {
    let pid = child.id() as i32;
    let s = stat(Path::new("/proc"), pid).unwrap();
    Proc {
        pid,
        comm: s.comm,
        start: s.start,
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_process_that_ignores_the_request_gets_sigterm() {
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let p = proven(&child);
    let how = end(Path::new("/proc"), &p, "sleep", Duration::from_millis(20)).await;
    assert_eq!(how.unwrap(), "SIGTERM");
    let _ = child.wait();
}

#[tokio::test(flavor = "current_thread")]
async fn a_process_that_ignores_sigterm_gets_sigkill() {
    let mut child = std::process::Command::new("sh")
        .args(["-c", "trap '' TERM; read x"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let p = proven(&child);
    // The trap is set once sh reads its script; SIGTERM before that would end it at once.
    let t0 = std::time::Instant::now();
    let term_ignored = || {
        std::fs::read_to_string(format!("/proc/{}/status", p.pid))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_prefix("SigIgn:"))
            .filter_map(|m| u64::from_str_radix(m.trim(), 16).ok())
            .any(|m| m & (1 << (libc::SIGTERM - 1)) != 0)
    };
    while !term_ignored() {
        assert!(t0.elapsed() < Duration::from_secs(5), "trap not set");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let how = end(Path::new("/proc"), &p, "sh", Duration::ZERO).await;
    assert_eq!(how.unwrap(), "SIGKILL");
    let _ = child.wait();
}

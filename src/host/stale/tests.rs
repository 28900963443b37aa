use super::*;

use std::io::BufRead;
use std::os::unix::net::UnixListener;

/// A child process holding the fcntl lock on each of `paths`, as a live OVS daemon holds its
/// pidfile's (fcntl locks are per process, so it cannot be this test process).
struct Holder(std::process::Child);

impl Holder {
    fn lock(paths: &[&Path]) -> Holder {
        let mut c = std::process::Command::new("python3")
            .arg("-c")
            .arg("import fcntl,sys,time\nfs=[open(p,'r+') for p in sys.argv[1:]]\nfor f in fs: fcntl.lockf(f, fcntl.LOCK_EX)\nprint('locked', flush=True)\ntime.sleep(60)")
            .args(paths)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(c.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "locked");
        Holder(c)
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ours(d: &Path) -> Vec<Owned> {
    vec![
        Owned {
            program: "ovs-vswitchd",
            pidfile: d.join("ovs-vswitchd.pid"),
            ctl_prefix: Some("ovs-vswitchd"),
            sockets: vec![d.join("br-int.mgmt")],
        },
        Owned {
            program: "ovn-controller",
            pidfile: d.join("ovn-controller.pid"),
            ctl_prefix: Some("ovn-controller"),
            sockets: vec![],
        },
        Owned {
            program: "ovsdb-server",
            pidfile: d.join("ovsdb-server.pid"),
            ctl_prefix: Some("ovsdb-server"),
            sockets: vec![d.join("db.sock")],
        },
    ]
}

#[test]
fn pidfiles_are_judged_by_their_lock_not_by_the_pid_inside() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let me = std::process::id().to_string();
    // Unlocked, although the pid inside is alive (this very process): the writer is gone.
    std::fs::write(d.join("ovs-vswitchd.pid"), &me).unwrap();
    // Locked, although the pid inside does not exist here (written in another namespace).
    std::fs::write(d.join("ovsdb-server.pid"), "7\n").unwrap();
    // Not ours, unlocked and dead-looking: never looked at.
    std::fs::write(d.join("ovnsb_db.pid"), "1\n").unwrap();
    std::fs::write(d.join("ovn-northd.pid"), "999999\n").unwrap();
    let holder = Holder::lock(&[&d.join("ovsdb-server.pid")]);

    let found = scan(&ours(d), &[]);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        matches!(&found[0], Finding::StalePidfile { path, .. } if path.ends_with("ovs-vswitchd.pid"))
    );
    match &found[1] {
        Finding::LiveDaemon { pidfile, pid, .. } => {
            assert!(pidfile.ends_with("ovsdb-server.pid"));
            assert_eq!(
                *pid,
                holder.0.id() as i32,
                "the lock holder, not the 7 inside"
            );
        }
        other => panic!("{other:?}"),
    }
    remove(&found);
    assert!(!d.join("ovs-vswitchd.pid").exists());
    for kept in ["ovsdb-server.pid", "ovnsb_db.pid", "ovn-northd.pid"] {
        assert!(d.join(kept).exists(), "{kept} was removed");
    }
}

#[test]
fn only_allow_listed_sockets_nobody_listens_on() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let live = UnixListener::bind(d.join("ovs-vswitchd.41.ctl")).unwrap();
    for dead in [
        "br-int.mgmt",
        "db.sock",
        "ovn-controller.12.ctl",
        // ovn-central's, dead or alive: not ours.
        "ovnsb_db.sock",
        "ovnnb_db.ctl",
        "ovn-northd.12.ctl",
        // Look-alikes of our names.
        "ovn-controller.ctl",
        "ovn-controller.1x.ctl",
        "xovs-vswitchd.3.ctl",
    ] {
        drop(UnixListener::bind(d.join(dead)).unwrap());
    }
    let mut found: Vec<_> = scan(&ours(d), &[]).iter().map(|f| f.describe()).collect();
    found.sort();
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(found[0].contains("/br-int.mgmt"));
    assert!(found[1].contains("/db.sock"));
    assert!(found[2].contains("/ovn-controller.12.ctl"));
    drop(live);
}

#[test]
fn lock_file_only_when_nobody_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join(".conf.db.~lock~");
    std::fs::write(&lock, "").unwrap();
    assert_eq!(scan(&[], std::slice::from_ref(&lock)).len(), 1);
    let _holder = Holder::lock(&[&lock]);
    assert!(scan(&[], std::slice::from_ref(&lock)).is_empty());
}

#[test]
fn pid_ctl_names() {
    assert!(is_pid_ctl("ovs-vswitchd.123.ctl", "ovs-vswitchd"));
    assert!(!is_pid_ctl("ovs-vswitchd..ctl", "ovs-vswitchd"));
    assert!(!is_pid_ctl("ovs-vswitchd.ctl", "ovs-vswitchd"));
    assert!(!is_pid_ctl("ovs-vswitchd.12a.ctl", "ovs-vswitchd"));
    assert!(!is_pid_ctl("ovs-vswitchd.12.ctl.bak", "ovs-vswitchd"));
}

#[test]
fn a_fifo_at_a_pidfile_or_lock_is_neither_waited_on_nor_removed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (pidfile, lock) = (d.join("ovs-vswitchd.pid"), d.join(".conf.db.~lock~"));
    for f in [&pidfile, &lock] {
        nix::unistd::mkfifo(f, nix::sys::stat::Mode::S_IRWXU).unwrap();
    }
    let t0 = std::time::Instant::now();
    let found = scan(&ours(d), std::slice::from_ref(&lock));
    assert!(t0.elapsed() < std::time::Duration::from_secs(1), "blocked");
    assert!(found.is_empty(), "{found:?}");
    assert!(pidfile.exists() && lock.exists());
}

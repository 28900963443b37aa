//! [`super::clear`] on a sandbox layout in a temp dir: everything goes but what is live, kept,
//! or outside (reached through a link).

use std::os::unix::net::UnixListener;
use std::path::Path;

use super::*;
use crate::config::cli::PathArgs;

fn layout(root: &Path) -> Layout {
    let args = PathArgs {
        sandbox: Some(root.join("sb")),
        ..Default::default()
    };
    let (l, _) = Layout::resolve(&args, Path::new("/")).unwrap();
    for d in l.dirs() {
        std::fs::create_dir_all(d).unwrap();
    }
    l
}

#[test]
fn everything_goes_except_live_kept_and_outside_files() {
    let tmp = tempfile::tempdir().unwrap();
    let l = layout(tmp.path());
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("precious"), "x").unwrap();

    let run = &l.ovs_rundir;
    std::fs::write(l.conf_db(), "db").unwrap();
    std::fs::write(l.ovs_dbdir.join("system-id.conf"), "id").unwrap();
    std::fs::write(l.ovs_logdir.join("ovs-vswitchd.log"), "log").unwrap();
    std::fs::create_dir_all(l.ovn_logdir.join("old/deeper")).unwrap();
    std::fs::write(l.ovn_logdir.join("old/deeper/ovn-controller.log.1"), "log").unwrap();
    std::os::unix::fs::symlink(outside.join("precious"), run.join("link-to-file")).unwrap();
    std::os::unix::fs::symlink(&outside, run.join("link-to-dir")).unwrap();
    // A stale socket (nobody listens) goes; a live one (ovn-central's, on a master) stays.
    drop(UnixListener::bind(run.join("br-int.mgmt")).unwrap());
    let live = UnixListener::bind(l.ovn_rundir.join("ovnnb_db.sock")).unwrap();
    // A locked pidfile (a live daemon's) stays; an unlocked one goes. An open file description
    // lock, since a process never conflicts with its own classic fcntl locks: it stands for
    // the daemon's lock held by another process.
    std::fs::write(l.ovn_rundir.join("ovn-northd.pid"), "7\n").unwrap();
    let held = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(l.ovn_rundir.join("ovn-northd.pid"))
        .unwrap();
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fcntl(held.as_raw_fd(), FcntlArg::F_OFD_SETLK(&fl)).unwrap();
    std::fs::write(run.join("ovs-vswitchd.pid"), "8\n").unwrap();
    let lock = run.join("ovs-ovn-supervisor.lock");
    std::fs::write(&lock, "9\n").unwrap();

    let out = clear(&l, std::slice::from_ref(&lock));
    assert!(out.errors.is_empty(), "{:?}", out.errors);

    // Outside, untouched.
    assert_eq!(
        std::fs::read_to_string(outside.join("precious")).unwrap(),
        "x"
    );
    let mut left: Vec<PathBuf> = Vec::new();
    for d in l.dirs() {
        for e in walkdir(d) {
            left.push(e.strip_prefix(tmp.path()).unwrap().to_path_buf());
        }
    }
    left.sort();
    let want: Vec<PathBuf> = [
        "sb/run/openvswitch/ovs-ovn-supervisor.lock",
        "sb/run/ovn/ovn-northd.pid",
        "sb/run/ovn/ovnnb_db.sock",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    assert_eq!(left, want);
    let kept: Vec<Kept> = out.kept.iter().map(|(_, k)| *k).collect();
    assert_eq!(
        kept.iter().filter(|k| **k == Kept::InUse).count(),
        2,
        "{:?}",
        out.kept
    );
    assert!(out.removed.contains(&run.join("link-to-dir")));
    drop((live, held));

    // A second run finds nothing more to do.
    let again = clear(&l, &[lock]);
    assert!(again.errors.is_empty());
    assert_eq!(
        again.removed.len(),
        2,
        "the now unlocked pidfile and the unheld socket"
    );
}

/// Every entry under `d`, without following links.
fn walkdir(d: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(d).unwrap().flatten() {
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            v.extend(walkdir(&p));
        } else {
            v.push(p);
        }
    }
    v
}

#[test]
fn a_directory_another_user_could_redirect_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let l = layout(tmp.path());
    std::fs::write(l.conf_db(), "db").unwrap();
    // A planted link in place of a layout directory: refused, nothing behind it removed.
    let victim = tmp.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(victim.join("keep-me"), "x").unwrap();
    std::fs::remove_dir_all(&l.ovs_logdir).unwrap();
    std::os::unix::fs::symlink(&victim, &l.ovs_logdir).unwrap();
    let out = clear(&l, &[]);
    assert_eq!(out.errors.len(), 1, "{:?}", out.errors);
    assert!(
        out.errors[0].to_string().contains("log/openvswitch"),
        "{}",
        out.errors[0]
    );
    assert!(victim.join("keep-me").exists());
    assert!(
        !l.conf_db().exists(),
        "the other directories are still emptied"
    );
}

use super::*;
use std::os::unix::fs::PermissionsExt;

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn is_root() -> bool {
    euid() == 0
}

#[test]
fn missing_components_are_created_in_a_trusted_parent() {
    let t = tempfile::tempdir().unwrap();
    let want = t.path().join("a/b/c");
    assert!(secure_dir(&want, false, None).unwrap().is_none());
    assert!(
        !t.path().join("a").exists(),
        "a check-only walk created something"
    );
    assert!(secure_dir(&want, true, None).unwrap().is_some());
    assert!(want.is_dir());
}

#[test]
fn world_writable_without_sticky_is_refused_with_sticky_accepted() {
    let t = tempfile::tempdir().unwrap();
    let open = t.path().join("open");
    std::fs::create_dir(&open).unwrap();
    chmod(&open, 0o777);
    let e = secure_dir(&open.join("run"), true, None).unwrap_err();
    assert!(e.to_string().contains("world-writable"), "{e}");
    assert!(!open.join("run").exists());
    chmod(&open, 0o1777);
    assert!(secure_dir(&open.join("run"), true, None).unwrap().is_some());
}

#[test]
fn a_directory_of_another_user_is_refused() {
    if !is_root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let theirs = t.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), None).unwrap();
    let e = secure_dir(&theirs, false, None).unwrap_err();
    assert!(e.to_string().contains("uid 65534"), "{e}");
}

#[test]
fn symlinks_are_followed_outside_a_sandbox_and_refused_inside() {
    let t = tempfile::tempdir().unwrap();
    let real = t.path().join("real");
    std::fs::create_dir(&real).unwrap();
    let sandbox = t.path().join("sb");
    std::fs::create_dir_all(sandbox.join("run")).unwrap();
    std::os::unix::fs::symlink(&real, sandbox.join("run/openvswitch")).unwrap();
    let dir = sandbox.join("run/openvswitch");
    // Outside any sandbox, a link of ours in a trusted directory is like Debian's /var/run.
    assert!(secure_dir(&dir, false, None).unwrap().is_some());
    let e = secure_dir(&dir, true, Some(depth(&sandbox))).unwrap_err();
    assert!(e.to_string().contains("symlink inside the sandbox"), "{e}");
    // A relative link with `..` resolves from the link's directory.
    std::os::unix::fs::symlink("../../real", sandbox.join("run/rel")).unwrap();
    assert!(secure_dir(&sandbox.join("run/rel"), false, None)
        .unwrap()
        .is_some());
}

#[test]
fn remove_file_unlinks_in_the_checked_directory_and_ignores_missing_files() {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("x.pid");
    std::fs::write(&f, "1\n").unwrap();
    remove_file(&f).unwrap();
    assert!(!f.exists());
    remove_file(&f).unwrap();
    remove_file(&t.path().join("gone/x.pid")).unwrap();
}

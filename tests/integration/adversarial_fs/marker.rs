//! The readiness marker, attacked: written as root, it used to go through a predictable temp
//! name with `fs::write`, which follows a symlink, in any directory that merely existed (a
//! uid-65534 user had a root-owned file overwritten). And a marker left by a killed instance
//! used to stand while the next one started, not ready.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use crate::harness::*;

const READY: Duration = Duration::from_secs(30);

/// A root-owned file outside everything, and its state (content, inode, mtime).
fn victim() -> (tempfile::TempDir, std::path::PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let v = d.path().join("precious");
    std::fs::write(&v, "keep me\n").unwrap();
    (d, v)
}

fn state(p: &Path) -> (String, u64, i64, i64) {
    let md = std::fs::metadata(p).unwrap();
    let content = std::fs::read_to_string(p).unwrap();
    (content, md.ino(), md.mtime(), md.mtime_nsec())
}

/// A symlink at `at` to `to`, owned by uid 65534 (Kube-OVN's pod uid: any local user).
fn plant(at: &Path, to: &Path) {
    std::os::unix::fs::symlink(to, at).unwrap();
    std::os::unix::fs::lchown(at, Some(65534), Some(65534)).unwrap();
}

/// The marker in a directory like `/tmp` (root's, world-writable, sticky: the trust rule
/// accepts it, since nobody can rename or remove what we make there), where uid 65534 planted
/// links to a root-owned file at the marker's name and at the temp name the old code used
/// (`ready.tmp.PID`, planted as soon as the pid is known, long before the node is ready). The
/// file is unchanged through the start, readiness and the stop; the marker is a regular file
/// while ready, and gone after the stop. Before the fix, the first write went through the
/// temp link into the file.
#[test]
fn links_planted_at_the_marker_or_a_temp_name_never_redirect_its_write() {
    let (_v, victim) = victim();
    let before = state(&victim);
    let mut node = Node::new();
    let shared = node.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let marker = shared.join("ready");
    plant(&marker, &victim);
    let planted = std::fs::symlink_metadata(&marker).unwrap().ino();
    node.start(&[
        ("OVS_OVN_SUPERVISOR_READY_FILE", marker.to_str().unwrap()),
        ("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "200"),
    ]);
    let pid = node.child.as_ref().unwrap().id();
    plant(&shared.join(format!("ready.tmp.{pid}")), &victim);
    node.wait_ready(READY);
    wait_for("the marker in place of the planted link", READY, || {
        std::fs::symlink_metadata(&marker).is_ok_and(|m| m.ino() != planted)
    });
    assert_eq!(
        state(&victim),
        before,
        "the planted file was written through"
    );
    let md = std::fs::symlink_metadata(&marker).unwrap();
    assert!(md.is_file(), "the marker is not a regular file: {md:?}");
    assert!(node.stop().0.success());
    assert!(
        std::fs::symlink_metadata(&marker).is_err(),
        "marker left after the stop"
    );
    assert_eq!(
        state(&victim),
        before,
        "the planted file was written through"
    );
}

/// The case: the marker's directory belongs to uid 65534, who can put anything in it.
/// `run` refuses it before anything is created (exit 2, naming the variable); before the fix
/// it was accepted because it existed, and the link there was written through as root.
#[test]
fn a_marker_directory_another_user_owns_is_refused() {
    let (_v, victim) = victim();
    let before = state(&victim);
    let mut node = Node::new();
    let theirs = node.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    let marker = theirs.join("ready");
    plant(&marker, &victim);
    let env = [("OVS_OVN_SUPERVISOR_READY_FILE", marker.to_str().unwrap())];
    let (code, out) = super::run_once(&mut node, &env);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("OVS_OVN_SUPERVISOR_READY_FILE=") && out.contains("uid 65534"),
        "{out}"
    );
    assert_eq!(state(&victim), before);
    assert!(
        !node.path().join("run").exists(),
        "created files before refusing"
    );
}

/// A marker left by an instance killed with SIGKILL (nobody could remove it) is gone as soon as
/// the next instance runs, and from then on the marker and `probe readiness` agree on every
/// sample, through the start, the stop and a crash loop's exit (the marker is removed there
/// too). Before the fix the old marker stood during the whole start, the probe saying
/// "starting".
#[test]
fn the_marker_agrees_with_the_probe_from_a_killed_instances_leftover_to_a_crash_loop() {
    let mut node = Node::new();
    let marker = node.path().join("marker/ready");
    std::fs::create_dir_all(marker.parent().unwrap()).unwrap();
    let env = [
        ("OVS_OVN_SUPERVISOR_READY_FILE", marker.to_str().unwrap()),
        ("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "200"),
        ("OVS_OVN_SUPERVISOR_CRASH_LOOP_RESTARTS", "1"),
    ];
    node.start(&env);
    node.wait_ready(READY);
    wait_for("the marker", READY, || marker.exists());
    node.power_loss();
    assert!(marker.exists(), "SIGKILL cannot remove it");

    let sampler = MarkerSampler::start(node.path(), &marker);
    node.start(&env);
    node.wait_ready(READY);
    wait_for("the marker", READY, || marker.exists());
    // The node's ready spells are short here; the assertion below needs the sampler to have
    // seen one, which on a loaded machine (CI) it did not always.
    wait_for("a ready sample", READY, || sampler.ready_samples() > 0);
    node.crash_and_recover("ovs-vswitchd.pid");
    kill("KILL", pid_of(&node, "ovs-vswitchd.pid").unwrap());
    let (status, _) = node.wait_exit(READY);
    let seen = sampler.finish();
    assert_eq!(
        status.code(),
        Some(1),
        "not a crash loop's exit: {}",
        node.log()
    );
    assert!(!marker.exists(), "marker left after a crash loop's exit");
    assert!(seen.not_ready > 0 && seen.ready > 0, "{seen:?}");
    assert!(seen.disagreements.is_empty(), "{seen:?}");
}

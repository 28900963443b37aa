//! Tests of [`super`]: real inotify on temp dirs, plain files and a Kubernetes secret volume
//! built the way kubelet's atomic writer builds it.

use super::*;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::time::Duration;

const FILES: [&str; 3] = ["key", "cert", "cacert"];
const DEBOUNCE: Duration = Duration::from_millis(100);
/// How long a change may take to be reported before the test fails (slow CI, not the design).
const DEADLINE: Duration = Duration::from_secs(10);

async fn next_change(w: &mut TlsWatch) -> Vec<String> {
    tokio::time::timeout(DEADLINE, w.changed())
        .await
        .expect("no change reported within the deadline")
        .unwrap()
}

/// Waiting three debounces is the point here: it proves that nothing fired, so it cannot be
/// replaced by a readiness condition.
async fn assert_quiet(w: &mut TlsWatch, what: &str) {
    if let Ok(r) = tokio::time::timeout(3 * DEBOUNCE, w.changed()).await {
        panic!("{what}: unexpected change {r:?}");
    }
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Publishes `files` into `dir` as kubelet's atomic writer does: a new timestamped dir,
/// `..data_tmp` pointing at it renamed over `..data`, the user-visible links on first use,
/// then removal of the previous timestamped dir.
fn publish(dir: &Path, stamp: &str, files: &[(&str, &str)]) {
    let ts = format!("..{stamp}");
    fs::create_dir(dir.join(&ts)).unwrap();
    for (name, content) in files {
        fs::write(dir.join(&ts).join(name), content).unwrap();
    }
    let old = fs::read_link(dir.join("..data")).ok();
    symlink(&ts, dir.join("..data_tmp")).unwrap();
    fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    for (name, _) in files {
        if fs::symlink_metadata(dir.join(name)).is_err() {
            symlink(Path::new("..data").join(name), dir.join(name)).unwrap();
        }
    }
    if let Some(old) = old {
        fs::remove_dir_all(dir.join(old)).unwrap();
    }
}

fn write_plain(dir: &Path, key: &str, cert: &str, cacert: &str) {
    for (name, content) in [("key", key), ("cert", cert), ("cacert", cacert)] {
        fs::write(dir.join(name), content).unwrap();
    }
}

#[tokio::test(flavor = "current_thread")]
async fn plain_files_rewrite_touch_and_identical_write() {
    let tmp = tempfile::tempdir().unwrap();
    write_plain(tmp.path(), "K1", "C1", "CA1");
    let mut w = TlsWatch::new(tmp.path(), &FILES, DEBOUNCE).unwrap();

    fs::write(tmp.path().join("cert"), "C2").unwrap();
    assert_eq!(next_change(&mut w).await, names(&["cert"]));

    fs::write(tmp.path().join("cert"), "C2").unwrap();
    let perms = fs::Permissions::from_mode(0o600);
    fs::set_permissions(tmp.path().join("key"), perms).unwrap();
    assert_quiet(&mut w, "identical write and chmod").await;

    // Same length, different bytes: the hash, not the size, decides.
    fs::write(tmp.path().join("key"), "K9").unwrap();
    assert_eq!(next_change(&mut w).await, names(&["key"]));
}

#[tokio::test(flavor = "current_thread")]
async fn secret_volume_swaps_survive_old_dir_removal() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let v1 = [("key", "K1"), ("cert", "C1"), ("cacert", "CA1")];
    publish(dir, "2026_11_22_12_00_00.000000001", &v1);
    let mut w = TlsWatch::new(dir, &FILES, DEBOUNCE).unwrap();

    let v2 = [("key", "K1"), ("cert", "C2"), ("cacert", "CA1")];
    publish(dir, "2026_11_22_12_00_00.000000002", &v2);
    assert_eq!(next_change(&mut w).await, names(&["cert"]));

    let v3 = [("key", "K3"), ("cert", "C2"), ("cacert", "CA3")];
    publish(dir, "2026_11_22_12_00_00.000000003", &v3);
    assert_eq!(next_change(&mut w).await, names(&["key", "cacert"]));

    publish(dir, "2026_11_22_12_00_00.000000004", &v3);
    assert_quiet(&mut w, "swap to identical content").await;

    // The watch still works after three swaps and three removed timestamped dirs.
    let v5 = [("key", "K3"), ("cert", "C5"), ("cacert", "CA3")];
    publish(dir, "2026_11_22_12_00_00.000000005", &v5);
    assert_eq!(next_change(&mut w).await, names(&["cert"]));
    assert!(!dir.join("..2026_11_22_12_00_00.000000001").exists());
}

#[tokio::test(flavor = "current_thread")]
async fn burst_within_debounce_is_one_change() {
    let tmp = tempfile::tempdir().unwrap();
    write_plain(tmp.path(), "K1", "C1", "CA1");
    // Wider than the writer's pacing by far, so a slow machine still fits the burst in it.
    let debounce = Duration::from_millis(300);
    let mut w = TlsWatch::new(tmp.path(), &FILES, debounce).unwrap();

    let dir = tmp.path().to_path_buf();
    // A paced burst (writes 10 ms apart, as a rotating agent writes file by file) whose
    // largest gap the writer measures: the claim holds for gaps below the debounce, so the
    // writer reports whether that was so, instead of the test assuming the machine kept pace.
    let writer = tokio::spawn(async move {
        let mut last = std::time::Instant::now();
        let mut widest = Duration::ZERO;
        for i in 0..5 {
            fs::write(dir.join("cert"), format!("C-burst-{i}")).unwrap();
            fs::write(dir.join("key"), format!("K-burst-{i}")).unwrap();
            widest = widest.max(last.elapsed());
            last = std::time::Instant::now();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        widest
    });
    assert_eq!(next_change(&mut w).await, names(&["key", "cert"]));
    let finished = writer.is_finished();
    let widest = writer.await.unwrap();
    // Reported mid-burst is a failure only if the burst really was one (every gap within the
    // debounce); a machine too loaded to keep a 10 ms pace within 300 ms fails loudly instead.
    assert!(
        widest < debounce,
        "the machine could not keep the burst's pace (gap {widest:?}): nothing to judge"
    );
    assert!(
        finished,
        "reported before the burst ended (widest gap {widest:?})"
    );
    assert_eq!(
        w.baseline()[1],
        digest_file(&tmp.path().join("cert")).unwrap(),
        "the baseline is the burst's last write"
    );
    // Three debounces of silence: the burst gave exactly one change.
    if let Ok(r) = tokio::time::timeout(3 * debounce, w.changed()).await {
        panic!("second change from one burst: {r:?}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn missing_files_created_then_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = TlsWatch::new(tmp.path(), &FILES, DEBOUNCE).unwrap();
    assert_eq!(w.baseline(), &[Digest::Absent; 3]);

    let v1 = [("cacert", "CA1"), ("cert", "C1"), ("key", "K1")];
    publish(tmp.path(), "2026_11_22_12_00_00.000000001", &v1);
    // In the order given to new(), not the order of creation.
    assert_eq!(next_change(&mut w).await, names(&FILES));

    fs::remove_file(tmp.path().join("cert")).unwrap();
    assert_eq!(next_change(&mut w).await, names(&["cert"]));
    assert_eq!(w.baseline()[1], Digest::Absent);
}

#[tokio::test(flavor = "current_thread")]
async fn directory_removed_and_recreated_is_rearmed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tls");
    fs::create_dir(&dir).unwrap();
    write_plain(&dir, "K1", "C1", "CA1");
    let mut w = TlsWatch::new(&dir, &FILES, DEBOUNCE).unwrap();

    fs::remove_dir_all(&dir).unwrap();
    assert_eq!(next_change(&mut w).await, names(&FILES));

    fs::create_dir(&dir).unwrap();
    write_plain(&dir, "K2", "C1", "CA1");
    // From absent back to present, all three (the writes precede the next poll).
    assert_eq!(next_change(&mut w).await, names(&FILES));

    // Events from the new directory arrive: the watch was re-armed on it.
    fs::write(dir.join("cert"), "C3").unwrap();
    assert_eq!(next_change(&mut w).await, names(&["cert"]));

    // Moved away rather than deleted: the watch must follow the path, not the old inode.
    let old = tmp.path().join("tls.old");
    fs::rename(&dir, &old).unwrap();
    fs::create_dir(&dir).unwrap();
    write_plain(&dir, "K2", "C4", "CA1");
    assert_eq!(next_change(&mut w).await, names(&["cert"]));
    fs::write(old.join("cert"), "C-elsewhere").unwrap();
    assert_quiet(&mut w, "write in the moved-away directory").await;
    fs::write(dir.join("key"), "K5").unwrap();
    assert_eq!(next_change(&mut w).await, names(&["key"]));
}

#[tokio::test(flavor = "current_thread")]
async fn a_non_regular_file_appearing_once_does_not_end_the_watch() {
    let tmp = tempfile::tempdir().unwrap();
    write_plain(tmp.path(), "K1", "C1", "CA1");
    let mut w = TlsWatch::new(tmp.path(), &FILES, DEBOUNCE).unwrap();
    let cert = tmp.path().join("cert");
    fs::remove_file(&cert).unwrap();
    nix::unistd::mkfifo(&cert, nix::sys::stat::Mode::S_IRWXU).unwrap();
    // Not a rotation, and not the end of the watch (it used to return an error here, and the
    // supervisor then stopped watching for good).
    assert_quiet(&mut w, "a FIFO at cert").await;
    fs::remove_file(&cert).unwrap();
    fs::create_dir(&cert).unwrap();
    assert_quiet(&mut w, "a directory at cert").await;
    fs::remove_dir(&cert).unwrap();
    fs::write(&cert, "C2").unwrap();
    assert_eq!(next_change(&mut w).await, names(&["cert"]));
    // Back to the baseline's bytes after a detour through a FIFO: no change.
    fs::remove_file(&cert).unwrap();
    nix::unistd::mkfifo(&cert, nix::sys::stat::Mode::S_IRWXU).unwrap();
    assert_quiet(&mut w, "a FIFO at cert, again").await;
    fs::remove_file(&cert).unwrap();
    fs::write(&cert, "C2").unwrap();
    assert_quiet(&mut w, "the same cert back").await;
    fs::write(tmp.path().join("key"), "K2").unwrap();
    assert_eq!(next_change(&mut w).await, names(&["key"]));
}

#[tokio::test(flavor = "current_thread")]
async fn a_directory_appearing_late_is_watched() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tls");
    let mut w = TlsWatch::new(&dir, &FILES, DEBOUNCE).unwrap();
    assert_eq!(w.baseline(), &[Digest::Absent; 3]);
    let v1 = [("key", "K1"), ("cert", "C1"), ("cacert", "CA1")];
    fs::create_dir(&dir).unwrap();
    publish(&dir, "2026_11_22_12_00_00.000000001", &v1);
    assert_eq!(next_change(&mut w).await, names(&FILES));
    let v2 = [("key", "K1"), ("cert", "C2"), ("cacert", "CA1")];
    publish(&dir, "2026_11_22_12_00_00.000000002", &v2);
    assert_eq!(next_change(&mut w).await, names(&["cert"]));
}

#[tokio::test(flavor = "current_thread")]
async fn cancelled_call_keeps_consumed_events() {
    let tmp = tempfile::tempdir().unwrap();
    write_plain(tmp.path(), "K1", "C1", "CA1");
    let mut w = TlsWatch::new(tmp.path(), &FILES, DEBOUNCE).unwrap();

    fs::write(tmp.path().join("cert"), "C2").unwrap();
    // Cancelled inside the debounce, after the events were read: as in a select! loop.
    let cut = tokio::time::timeout(DEBOUNCE / 2, w.changed()).await;
    assert!(cut.is_err(), "cannot resolve before the debounce: {cut:?}");
    assert_eq!(next_change(&mut w).await, names(&["cert"]));
}

#[tokio::test(flavor = "current_thread")]
async fn setup_errors_name_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    // Only a missing parent is an error: a missing directory is waited for.
    let missing = tmp.path().join("no-such-parent");
    let err = TlsWatch::new(&missing.join("tls"), &FILES, DEBOUNCE).unwrap_err();
    assert!(matches!(err, TlsWatchError::DirMissing { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );

    let file = tmp.path().join("a-file");
    fs::write(&file, "").unwrap();
    let err = TlsWatch::new(&file, &FILES, DEBOUNCE).unwrap_err();
    assert!(
        matches!(err, TlsWatchError::NotADirectory { .. }),
        "{err:?}"
    );

    for bad in ["", ".", "..", "sub/cert"] {
        let err = TlsWatch::new(tmp.path(), &[bad], DEBOUNCE).unwrap_err();
        assert!(
            matches!(err, TlsWatchError::BadName { .. }),
            "{bad:?}: {err:?}"
        );
    }
}

#[test]
fn new_outside_a_runtime_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let err = TlsWatch::new(tmp.path(), &FILES, DEBOUNCE).unwrap_err();
    assert!(matches!(err, TlsWatchError::NoRuntime), "{err:?}");
}

#[test]
fn digests_of_odd_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    let big = vec![b'x'; (MAX_READ as usize) + 10];
    fs::write(dir.join("big"), &big).unwrap();
    let d = digest_file(&dir.join("big")).unwrap();
    assert_eq!(d, digest_bytes(&big[..MAX_READ as usize], big.len() as u64));
    // Beyond the first MiB only the length counts.
    fs::write(dir.join("big"), &big[..big.len() - 1]).unwrap();
    assert_ne!(digest_file(&dir.join("big")).unwrap(), d);

    assert_eq!(digest_file(&dir.join("none")).unwrap(), Digest::Absent);
    symlink("nowhere", dir.join("dangling")).unwrap();
    assert_eq!(digest_file(&dir.join("dangling")).unwrap(), Digest::Absent);
    assert_ne!(digest_bytes(b"", 0), Digest::Absent);

    // A FIFO must neither block the open nor be read as content.
    nix::unistd::mkfifo(&dir.join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let err = digest_file(&dir.join("fifo")).unwrap_err();
    assert!(matches!(err, TlsWatchError::NotRegular { .. }), "{err:?}");

    fs::create_dir(dir.join("subdir")).unwrap();
    let err = digest_file(&dir.join("subdir")).unwrap_err();
    assert!(matches!(err, TlsWatchError::NotRegular { .. }), "{err:?}");

    symlink("loop", dir.join("loop")).unwrap();
    let err = digest_file(&dir.join("loop")).unwrap_err();
    assert!(matches!(err, TlsWatchError::Read { .. }), "{err:?}");
}

//! Node files planted to hurt us: system-id.conf as a FIFO (its `open()` blocked forever, with
//! SIGTERM ignored), as 100 MB of one "word" (accepted: 620 MB of RSS here, 893 MB in
//! ovn-controller), as a link to `/dev/zero` (out of memory), or damaged. Each is refused at
//! once, exit 2, naming the file and what is expected, with memory bounded and nothing on disk
//! changed.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::*;

/// Within this a refused start has long exited (it takes milliseconds).
const EXIT_WITHIN: Duration = Duration::from_secs(10);
/// The supervisor's peak RSS when it refuses, with room to spare (it is ~10 MiB).
const MAX_RSS_KIB: i64 = 64 * 1024;

/// Every path under `dir` with its type, size, mode, mtime and link target: what "nothing on
/// disk changed" compares. Nothing is opened (a FIFO would block).
fn tree(dir: &Path) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let md = std::fs::symlink_metadata(&p).unwrap();
            let ft = md.file_type();
            let kind = match () {
                _ if ft.is_dir() => "dir".to_string(),
                _ if ft.is_symlink() => {
                    format!("link->{}", std::fs::read_link(&p).unwrap().display())
                }
                _ if ft.is_fifo() => "fifo".to_string(),
                _ => "file".to_string(),
            };
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            let v = format!(
                "{kind} len={} mode={:o} mtime={}.{}",
                md.len(),
                md.mode(),
                md.mtime(),
                md.mtime_nsec()
            );
            m.insert(rel, v);
            if ft.is_dir() {
                todo.push(p);
            }
        }
    }
    m
}

/// How one `run` ended.
struct Ended {
    code: Option<i32>,
    signal: Option<i32>,
    /// It had not exited within [`EXIT_WITHIN`] and was sent SIGTERM (then SIGKILL).
    hung: bool,
    took: Duration,
    peak_rss_kib: i64,
    out: String,
}

/// Runs `run --sandbox DIR` under a 1 GiB address-space limit (a read of `/dev/zero` must not
/// take the machine down), its output outside the sandbox; reaps it with `wait4` for its peak
/// RSS. Past [`EXIT_WITHIN`]: SIGTERM, 5 s, then SIGKILL.
// The child is reaped with wait4 (std's wait gives no rusage), which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn run_bounded(dir: &Path) -> Ended {
    let logs = tempfile::tempdir().unwrap();
    let log_path = logs.path().join("out.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut c = base_command(dir);
    c.stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    // SAFETY: only setrlimit (a plain syscall, async-signal-safe) runs between fork and exec.
    unsafe {
        c.pre_exec(|| {
            let gib = 1 << 30;
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_AS, gib, gib)
                .map_err(std::io::Error::from)
        });
    }
    let child = c.spawn().unwrap();
    let pid = child.id() as i32;
    let t0 = Instant::now();
    let (mut hung, mut termed_at) = (false, None::<Instant>);
    loop {
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
        let mut ru: nix::libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `status` and `ru` are valid for writes; `pid` is our unreaped child.
        let r = unsafe { nix::libc::wait4(pid, &mut status, nix::libc::WNOHANG, &mut ru) };
        if r == pid {
            let exited = nix::libc::WIFEXITED(status);
            return Ended {
                code: exited.then(|| nix::libc::WEXITSTATUS(status)),
                signal: (!exited).then(|| nix::libc::WTERMSIG(status)),
                hung,
                took: t0.elapsed(),
                peak_rss_kib: ru.ru_maxrss,
                out: std::fs::read_to_string(&log_path).unwrap_or_default(),
            };
        }
        assert_eq!(r, 0, "wait4: {}", std::io::Error::last_os_error());
        if !hung && t0.elapsed() > EXIT_WITHIN {
            hung = true;
            termed_at = Some(Instant::now());
            kill("TERM", pid);
        }
        if termed_at.is_some_and(|t| t.elapsed() > Duration::from_secs(5)) {
            termed_at = None;
            kill("KILL", pid);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// (what is planted at system-id.conf, what the error must say).
#[test]
fn a_hostile_system_id_conf_is_refused_at_once_changing_nothing() {
    type Plant = fn(&Path);
    let rows: [(&str, Plant, &str); 4] = [
        (
            "FIFO",
            |p| {
                nix::unistd::mkfifo(
                    p,
                    nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
                )
                .unwrap()
            },
            "system-id.conf: is a FIFO; expected a regular file",
        ),
        (
            "100 MB of one word",
            |p| std::fs::write(p, vec![b'a'; 100 << 20]).unwrap(),
            "system-id.conf: is 104857600 bytes; expected a regular file of at most 4096 bytes",
        ),
        (
            "link to /dev/zero",
            |p| std::os::unix::fs::symlink("/dev/zero", p).unwrap(),
            "system-id.conf: is a symlink; expected a regular file",
        ),
        (
            "damaged",
            |p| std::fs::write(p, "two words\n").unwrap(),
            "not a system-id: expected a UUID or a host-name-like id",
        ),
    ];
    for (what, plant, want) in rows {
        let node = Node::new();
        let etc = node.path().join("etc/openvswitch");
        std::fs::create_dir_all(&etc).unwrap();
        plant(&etc.join("system-id.conf"));
        let before = tree(node.path());
        let e = run_bounded(node.path());
        let end = format!(
            "{what}: exit {:?}, signal {:?}, hung {}, {} ms, peak RSS {} KiB:\n{}",
            e.code,
            e.signal,
            e.hung,
            e.took.as_millis(),
            e.peak_rss_kib,
            e.out
        );
        assert!(!e.hung, "did not exit within {EXIT_WITHIN:?}: {end}");
        assert_eq!(e.code, Some(2), "{end}");
        assert!(e.out.contains(want), "{end}");
        assert!(e.peak_rss_kib < MAX_RSS_KIB, "{end}");
        assert_eq!(
            tree(node.path()),
            before,
            "{what}: something changed on disk"
        );
        eprintln!(
            "{what}: refused in {} ms, peak RSS {} KiB",
            e.took.as_millis(),
            e.peak_rss_kib
        );
    }
}

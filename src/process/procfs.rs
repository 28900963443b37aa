//! Reading processes from `/proc` (under an injected root, so tests fake it in a tempdir).
//!
//! Invariant: nothing here signals or changes anything; a pid that is not visible (dead, or in
//! a pid namespace we cannot see) reads as `None`, never as an error. One parser
//! ([`Stat::parse`]) reads every `stat` line: the command name in parentheses may itself hold
//! spaces and parentheses, so fields are counted from the last `)`.

use std::path::Path;
use std::time::Duration;

/// The fields of `/proc/PID/stat` (or `/proc/PID/task/TID/stat`) we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// `R`, `S`, `D`, `Z`, ... (field 3).
    pub state: char,
    /// The parent's pid (field 4).
    pub ppid: i32,
    /// Clock ticks spent in user and kernel mode (fields 14 and 15).
    pub cpu_ticks: u64,
    /// Field 19.
    pub nice: i32,
    /// Clock ticks after boot when it started (field 22).
    pub start: u64,
}

impl Stat {
    pub fn parse(line: &str) -> Option<Stat> {
        let (_, rest) = line.rsplit_once(')')?;
        // Fields after the comm start at field 3 (state).
        let f: Vec<&str> = rest.split_whitespace().collect();
        let field = |n: usize| f.get(n - 3).copied();
        let ticks = |n: usize| field(n)?.parse::<u64>().ok();
        Some(Stat {
            state: field(3)?.chars().next()?,
            ppid: field(4)?.parse().ok()?,
            cpu_ticks: ticks(14)?.checked_add(ticks(15)?)?,
            nice: field(19)?.parse().ok()?,
            start: ticks(22)?,
        })
    }
}

/// `pid`'s stat line under `proc_root`.
pub fn stat(proc_root: &Path, pid: i32) -> Option<Stat> {
    Stat::parse(&std::fs::read_to_string(proc_root.join(format!("{pid}/stat"))).ok()?)
}

/// Whether `pid` is a live process as `/proc` (under `proc_root`) shows it: `None` when it is
/// not there at all (dead, or in a pid namespace we cannot see: the caller tells these apart
/// by asking at the request), `Some(false)` for a zombie.
pub fn alive(proc_root: &Path, pid: i32) -> Option<bool> {
    stat(proc_root, pid).map(|s| !matches!(s.state, 'Z' | 'X'))
}

/// Who a process is beyond its pid: a pid and its start time name one process for its whole
/// life (a reused pid has another start time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// Field 4.
    pub ppid: i32,
    /// Clock ticks after boot (field 22).
    pub start: u64,
    /// Neither a zombie nor dead (field 3).
    pub live: bool,
}

/// `pid`'s [`Identity`] under `proc_root`; `None` when it is not there at all.
pub fn identity(proc_root: &Path, pid: i32) -> Option<Identity> {
    let s = stat(proc_root, pid)?;
    Some(Identity {
        live: !matches!(s.state, 'Z' | 'X'),
        ppid: s.ppid,
        start: s.start,
    })
}

/// CPU time used so far by `pid`'s main thread (the thread whose id is the pid): the thread
/// that runs an OVS/OVN daemon's main loop and answers its control socket, so its time tells a
/// daemon busy computing from one blocked, whatever its other threads (handlers,
/// revalidators, pinctrl) do.
pub fn main_thread_cpu(proc_root: &Path, pid: i32) -> Option<Duration> {
    let line = std::fs::read_to_string(proc_root.join(format!("{pid}/task/{pid}/stat"))).ok()?;
    let ticks = Stat::parse(&line)?.cpu_ticks;
    Some(Duration::from_millis(
        ticks.saturating_mul(1000) / clock_ticks_per_second(),
    ))
}

/// CPU time used so far by the whole of `pid` (every thread; `stat`'s fields 14 and 15).
pub fn process_cpu(proc_root: &Path, pid: i32) -> Option<Duration> {
    let ticks = stat(proc_root, pid)?.cpu_ticks;
    Some(Duration::from_millis(
        ticks.saturating_mul(1000) / clock_ticks_per_second(),
    ))
}

/// Resident memory of `pid` in bytes (`statm`'s second field, in pages).
pub fn rss_bytes(proc_root: &Path, pid: i32) -> Option<u64> {
    let statm = std::fs::read_to_string(proc_root.join(format!("{pid}/statm"))).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    let page = match nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE) {
        Ok(Some(p)) if p > 0 => p as u64,
        _ => 4096,
    };
    pages.checked_mul(page)
}

/// Every process visible under `proc_root` with its parent: `(pid, ppid)`.
fn parents(proc_root: &Path) -> Vec<(i32, i32)> {
    let Ok(dir) = std::fs::read_dir(proc_root) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| Some((pid, stat(proc_root, pid)?.ppid)))
        .collect()
}

/// The descendants of `root` among `(pid, ppid)` pairs: its children, theirs, and so on,
/// parents before their children.
pub fn descendants_of(pairs: &[(i32, i32)], root: i32) -> Vec<i32> {
    let mut found = vec![root];
    let mut i = 0;
    while let Some(&parent) = found.get(i) {
        for (pid, _) in pairs.iter().filter(|(_, pp)| *pp == parent) {
            // A pid listed twice (or its own parent, in a made-up /proc) is taken once.
            if !found.contains(pid) {
                found.push(*pid);
            }
        }
        i += 1;
    }
    found.remove(0);
    found
}

/// The descendants of `root` as `/proc` (under `proc_root`) shows them now.
pub fn descendants(proc_root: &Path, root: i32) -> Vec<i32> {
    descendants_of(&parents(proc_root), root)
}

/// `sysconf(_SC_CLK_TCK)`, the unit of the stat times: 100 on every Linux we run on, and the
/// fallback if the call fails.
fn clock_ticks_per_second() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(hz)) if hz > 0 => hz as u64,
        _ => 100,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(dir: &Path, rel: &str, line: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, line).unwrap();
    }

    /// A stat line with this comm, state, utime, stime and nice.
    fn line(pid: i32, comm: &str, state: char, utime: u64, stime: u64, nice: i32) -> String {
        format!("{pid} ({comm}) {state} 1 1 1 0 -1 4194560 100 0 0 0 {utime} {stime} 0 0 20 {nice} 1 0 5 0 0")
    }

    #[test]
    fn process_cpu_and_rss_of_a_fake_process() {
        let dir = tempfile::tempdir().unwrap();
        fake(
            dir.path(),
            "20/stat",
            &line(20, "ovs-vswitchd", 'S', 250, 50, -10),
        );
        fake(dir.path(), "20/statm", "50000 1234 300 10 0 900 0\n");
        fake(dir.path(), "21/statm", "garbage");
        let hz = clock_ticks_per_second();
        assert_eq!(
            process_cpu(dir.path(), 20),
            Some(Duration::from_millis(300 * 1000 / hz))
        );
        let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .unwrap()
            .unwrap() as u64;
        assert_eq!(rss_bytes(dir.path(), 20), Some(1234 * page));
        assert_eq!(rss_bytes(dir.path(), 21), None);
        assert_eq!(rss_bytes(dir.path(), 22), None);
        assert_eq!(process_cpu(dir.path(), 22), None);
    }

    #[test]
    fn a_zombie_or_a_missing_pid_is_not_alive() {
        let dir = tempfile::tempdir().unwrap();
        fake(
            dir.path(),
            "10/stat",
            &line(10, "ovs-ovn-superv", 'S', 0, 0, 0),
        );
        fake(dir.path(), "11/stat", &line(11, "a) b", 'Z', 0, 0, 0));
        assert_eq!(alive(dir.path(), 10), Some(true));
        assert_eq!(alive(dir.path(), 11), Some(false));
        assert_eq!(alive(dir.path(), 12), None);
    }

    #[test]
    fn identity_is_the_parent_and_the_start_time() {
        let dir = tempfile::tempdir().unwrap();
        // Start time 5 (field 22), parent 1.
        fake(dir.path(), "30/stat", &line(30, "a) b (c", 'S', 0, 0, 0));
        fake(dir.path(), "31/stat", &line(31, "x", 'Z', 0, 0, 0));
        fake(dir.path(), "32/stat", "32 (x) S 1 2");
        let want = |live| {
            Some(Identity {
                ppid: 1,
                start: 5,
                live,
            })
        };
        assert_eq!(identity(dir.path(), 30), want(true));
        assert_eq!(identity(dir.path(), 31), want(false));
        assert_eq!(identity(dir.path(), 32), None);
        assert_eq!(identity(dir.path(), 33), None);
        let me = identity(Path::new("/proc"), std::process::id() as i32).unwrap();
        assert!(me.live && me.start > 0);
    }

    #[test]
    fn fields_are_counted_after_the_last_parenthesis() {
        let s = Stat::parse(&line(7, "x) R 9 (y", 'D', 12, 30, -10)).unwrap();
        assert_eq!(
            s,
            Stat {
                state: 'D',
                ppid: 1,
                cpu_ticks: 42,
                nice: -10,
                start: 5
            }
        );
        for bad in [
            "",
            "7 (x",
            "7 (x) S 1 2",
            "7 (x) S 1 1 1 0 -1 4 1 0 0 0 u s",
        ] {
            assert_eq!(Stat::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn descendants_are_found_through_every_generation() {
        // (pid, ppid): 10 spawned 11 and 12; 11's child 13 double-forked 14 and exited, so 14
        // was re-parented to 10 (its subreaper); 20 is somebody else's.
        let pairs = [
            (11, 10),
            (12, 10),
            (14, 10),
            (15, 14),
            (16, 15),
            (20, 1),
            (21, 20),
            (30, 30),
        ];
        let table: [(i32, &[i32]); 5] = [
            (10, &[11, 12, 14, 15, 16]),
            (14, &[15, 16]),
            (20, &[21]),
            (99, &[]),
            (30, &[]),
        ];
        for (root, want) in table {
            assert_eq!(descendants_of(&pairs, root), want, "{root}");
        }
        let dir = tempfile::tempdir().unwrap();
        fake(dir.path(), "10/stat", &line(10, "sup", 'S', 0, 0, 0));
        fake(
            dir.path(),
            "11/stat",
            "11 (a b) S 10 1 1 0 -1 4 1 0 0 0 1 1 0 0 20 0 1 0 5 0 0",
        );
        fake(
            dir.path(),
            "12/stat",
            "12 (c) S 11 1 1 0 -1 4 1 0 0 0 1 1 0 0 20 0 1 0 5 0 0",
        );
        fake(dir.path(), "self/stat", "not a process");
        assert_eq!(descendants(dir.path(), 10), vec![11, 12]);
    }

    #[test]
    fn the_main_threads_cpu_time_is_read_from_its_task_entry() {
        let dir = tempfile::tempdir().unwrap();
        // The process as a whole has used more (its other threads): only the main thread counts.
        fake(
            dir.path(),
            "20/stat",
            &line(20, "ovn-controller", 'R', 900, 100, 0),
        );
        fake(
            dir.path(),
            "20/task/20/stat",
            &line(20, "ovn-controller", 'R', 250, 50, 0),
        );
        let hz = clock_ticks_per_second();
        assert_eq!(
            main_thread_cpu(dir.path(), 20),
            Some(Duration::from_millis(300 * 1000 / hz))
        );
        assert_eq!(main_thread_cpu(dir.path(), 21), None);
        // The real thing: our own main thread has run.
        let me = std::process::id() as i32;
        assert!(main_thread_cpu(Path::new("/proc"), me).is_some());
    }
}

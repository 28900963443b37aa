//! Stale state left by a crash or a node reboot (pods stuck after reboot, seed 004): pidfiles,
//! control/management/db sockets and database lock files in the run and db directories.
//!
//! Invariants: only what is provably stale is removed — a pidfile whose pid is dead or runs
//! another program (`/proc/PID/comm`: pids are recycled after a reboot), a socket nobody listens
//! on (connect → ECONNREFUSED), a lock file no process holds (we can take its fcntl lock, the
//! lock OVS itself uses). A live daemon is never touched: it is reported. [`scan`] only reads;
//! [`remove`] is the only write.

use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg};
use nix::libc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    StalePidfile {
        path: PathBuf,
        pid: i32,
        why: String,
    },
    StaleSocket {
        path: PathBuf,
    },
    StaleLock {
        path: PathBuf,
    },
    /// A daemon that is alive and is the program its pidfile names: not ours to touch.
    LiveDaemon {
        pidfile: PathBuf,
        pid: i32,
        program: String,
    },
}

impl Finding {
    pub fn is_stale(&self) -> bool {
        !matches!(self, Finding::LiveDaemon { .. })
    }

    pub fn describe(&self) -> String {
        match self {
            Finding::StalePidfile { path, pid, why } => {
                format!("{}: pid {pid} {why}", path.display())
            }
            Finding::StaleSocket { path } => format!("{}: nobody listens", path.display()),
            Finding::StaleLock { path } => format!("{}: no process holds it", path.display()),
            Finding::LiveDaemon {
                pidfile,
                pid,
                program,
            } => {
                format!("{program} (pid {pid}, {}) is running", pidfile.display())
            }
        }
    }
}

/// The program a pidfile belongs to, as `/proc/PID/comm` shows it.
fn program_of(pidfile_name: &str) -> Option<&str> {
    let stem = pidfile_name.strip_suffix(".pid")?;
    Some(match stem {
        "ovnsb_db" | "ovnnb_db" => "ovsdb-server",
        other => other,
    })
}

/// `/proc/PID/comm` is the first 15 bytes of the program name.
fn comm_matches(comm: &str, program: &str) -> bool {
    let comm = comm.trim_end_matches('\n');
    let want: String = program.chars().take(15).collect();
    comm == want
}

/// State `Z` in `/proc/PID/stat` (the field after the parenthesised, space-holding comm).
fn is_zombie(proc_dir: &Path) -> bool {
    std::fs::read_to_string(proc_dir.join("stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

fn check_pidfile(path: &Path, name: &str, proc_root: &Path) -> Option<Finding> {
    let program = program_of(name)?;
    let content = std::fs::read_to_string(path).ok()?;
    let Ok(pid) = content.trim().parse::<i32>() else {
        return Some(Finding::StalePidfile {
            path: path.to_path_buf(),
            pid: 0,
            why: format!(
                "is not a pid ({:?})",
                content.chars().take(20).collect::<String>()
            ),
        });
    };
    let proc_dir = proc_root.join(pid.to_string());
    if is_zombie(&proc_dir) {
        // Exited but not yet reaped by whoever inherited it: as dead as it gets.
        return Some(Finding::StalePidfile {
            path: path.to_path_buf(),
            pid,
            why: "has exited (zombie)".into(),
        });
    }
    match std::fs::read_to_string(proc_dir.join("comm")) {
        Err(_) => Some(Finding::StalePidfile {
            path: path.to_path_buf(),
            pid,
            why: "is not running".into(),
        }),
        Ok(comm) if !comm_matches(&comm, program) => Some(Finding::StalePidfile {
            path: path.to_path_buf(),
            pid,
            why: format!("is now {:?}, not {program}", comm.trim_end()),
        }),
        Ok(_) => Some(Finding::LiveDaemon {
            pidfile: path.to_path_buf(),
            pid,
            program: program.to_string(),
        }),
    }
}

fn socket_is_stale(path: &Path) -> bool {
    matches!(
        std::os::unix::net::UnixStream::connect(path),
        Err(e) if e.raw_os_error() == Some(Errno::ECONNREFUSED as i32)
    )
}

/// True when nobody holds the OVS lock on `path` (we could take its fcntl write lock).
fn lock_is_free(path: &Path) -> bool {
    let Ok(f) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    else {
        return false;
    };
    // SAFETY: `flock` is a plain C struct for which all-zero bytes is a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    // The lock is released when `f` closes at the end of this function.
    fcntl(f.as_raw_fd(), FcntlArg::F_SETLK(&fl)).is_ok()
}

/// Looks through `run_dirs` for pidfiles and sockets, and at `lock_files`; changes nothing.
pub fn scan(run_dirs: &[&Path], lock_files: &[PathBuf], proc_root: &Path) -> Vec<Finding> {
    let mut found = Vec::new();
    for dir in run_dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_file() && name.ends_with(".pid") {
                found.extend(check_pidfile(&path, &name, proc_root));
            } else if ft.is_socket()
                && [".ctl", ".mgmt", ".sock"].iter().any(|s| name.ends_with(s))
                && socket_is_stale(&path)
            {
                found.push(Finding::StaleSocket { path });
            }
        }
    }
    for lock in lock_files {
        if lock.exists() && lock_is_free(lock) {
            found.push(Finding::StaleLock { path: lock.clone() });
        }
    }
    found
}

/// Removes the stale findings; a file already gone counts as removed.
pub fn remove(findings: &[Finding]) -> Vec<(PathBuf, std::io::Result<()>)> {
    findings
        .iter()
        .filter_map(|f| match f {
            Finding::StalePidfile { path, .. }
            | Finding::StaleSocket { path }
            | Finding::StaleLock { path } => Some(path.clone()),
            Finding::LiveDaemon { .. } => None,
        })
        .map(|p| {
            let r = match std::fs::remove_file(&p) {
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
                r => r,
            };
            (p, r)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_proc(root: &Path, pid: i32, comm: &str) {
        let d = root.join(pid.to_string());
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("comm"), format!("{comm}\n")).unwrap();
    }

    #[test]
    fn pidfiles_dead_recycled_live_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let proc_root = dir.path().join("proc");
        std::fs::create_dir_all(&run).unwrap();
        fake_proc(&proc_root, 100, "bash");
        fake_proc(&proc_root, 200, "ovs-vswitchd");
        fake_proc(&proc_root, 300, "ovsdb-server");
        fake_proc(&proc_root, 400, "ovs-vswitchd");
        std::fs::write(proc_root.join("400/stat"), "400 (ovs-vswitchd) Z 1 400").unwrap();
        std::fs::create_dir_all(run.join("old")).unwrap();
        std::fs::write(run.join("old/ovs-vswitchd.pid"), "400\n").unwrap();
        std::fs::write(run.join("ovsdb-server.pid"), "100\n").unwrap(); // recycled
        std::fs::write(run.join("ovs-vswitchd.pid"), "200\n").unwrap(); // live
        std::fs::write(run.join("ovn-controller.pid"), "999\n").unwrap(); // dead
        std::fs::write(run.join("ovnsb_db.pid"), "300\n").unwrap(); // live SB
        std::fs::write(run.join("garbage.pid"), "xyz").unwrap();
        std::fs::write(run.join("notes.txt"), "keep").unwrap();
        let zombie = scan(&[&run.join("old")], &[], &proc_root);
        assert!(zombie[0].describe().contains("zombie"), "{zombie:?}");
        let found = scan(&[&run], &[], &proc_root);
        let stale: Vec<_> = found
            .iter()
            .filter(|f| f.is_stale())
            .map(|f| f.describe())
            .collect();
        assert_eq!(stale.len(), 3, "{stale:?}");
        assert!(stale
            .iter()
            .any(|s| s.contains("ovn-controller.pid") && s.contains("not running")));
        assert!(stale
            .iter()
            .any(|s| s.contains("ovsdb-server.pid") && s.contains("\"bash\"")));
        assert!(stale.iter().any(|s| s.contains("garbage.pid")));
        let live: Vec<_> = found.iter().filter(|f| !f.is_stale()).collect();
        assert_eq!(live.len(), 2);
        remove(&found);
        assert!(run.join("ovs-vswitchd.pid").exists());
        assert!(run.join("ovnsb_db.pid").exists());
        assert!(!run.join("ovn-controller.pid").exists());
        assert!(run.join("notes.txt").exists());
    }

    #[test]
    fn sockets_only_when_refused() {
        let dir = tempfile::tempdir().unwrap();
        let live =
            std::os::unix::net::UnixListener::bind(dir.path().join("ovsdb-server.1.ctl")).unwrap();
        drop(std::os::unix::net::UnixListener::bind(dir.path().join("br-int.mgmt")).unwrap());
        drop(std::os::unix::net::UnixListener::bind(dir.path().join("db.sock")).unwrap());
        let found = scan(&[dir.path()], &[], Path::new("/proc"));
        let mut paths: Vec<_> = found.iter().map(|f| f.describe()).collect();
        paths.sort();
        assert_eq!(paths.len(), 2, "{paths:?}");
        assert!(paths[0].contains("br-int.mgmt") && paths[1].contains("db.sock"));
        drop(live);
    }

    #[test]
    fn lock_file_only_when_nobody_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join(".conf.db.~lock~");
        std::fs::write(&lock, "").unwrap();
        assert_eq!(
            scan(&[], std::slice::from_ref(&lock), Path::new("/proc")).len(),
            1
        );
        // Held by another process (fcntl locks are per process, so use a child).
        let mut holder = std::process::Command::new("python3")
            .arg("-c")
            .arg("import fcntl,sys,time; f=open(sys.argv[1],'r+'); fcntl.lockf(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(30)")
            .arg(&lock)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(holder.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "locked");
        assert!(scan(&[], std::slice::from_ref(&lock), Path::new("/proc")).is_empty());
        holder.kill().unwrap();
        let _ = holder.wait();
    }
}

//! Reading processes from `/proc` (under an injected root, so tests fake it in a tempdir).
//!
//! Invariant: nothing here signals or changes anything; a pid that is not visible (dead, or in
//! a pid namespace we cannot see) reads as `None`, never as an error.

use std::path::Path;

/// Whether `pid` is a live process as `/proc` (under `proc_root`) shows it: `None` when it is
/// not there at all (dead, or in a pid namespace we cannot see: the caller tells these apart
/// by asking at the request), `Some(false)` for a zombie.
pub fn alive(proc_root: &Path, pid: i32) -> Option<bool> {
    let stat = std::fs::read_to_string(proc_root.join(format!("{pid}/stat"))).ok()?;
    let state = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
    Some(!matches!(state, 'Z' | 'X'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zombie_or_a_missing_pid_is_not_alive() {
        let dir = tempfile::tempdir().unwrap();
        for (pid, stat) in [(10, "10 (ovs-ovn-superv) S 1"), (11, "11 (a) b) Z 1")] {
            std::fs::create_dir(dir.path().join(pid.to_string())).unwrap();
            std::fs::write(dir.path().join(format!("{pid}/stat")), stat).unwrap();
        }
        assert_eq!(alive(dir.path(), 10), Some(true));
        assert_eq!(alive(dir.path(), 11), Some(false));
        assert_eq!(alive(dir.path(), 12), None);
    }
}

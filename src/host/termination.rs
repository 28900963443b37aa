//! The termination message: why `run` exited non-zero, written where kubelet reads it
//! (`terminationMessagePath`, `/dev/termination-log` by default; `OVS_OVN_SUPERVISOR_TERMINATION_LOG`)
//! so `kubectl describe pod` shows it as the last state's message.
//!
//! Invariants: only a file that already exists is written (kubelet mounts it into the
//! container; outside Kubernetes there is none, and nothing is created); opened as any node
//! file is (`nodefile`: a regular file only, never through a symlink, never blocking); at
//! most [`MAX_BYTES`] (what kubelet reads), cut on a character boundary; a failure here is
//! logged by the caller and never changes the exit code.

use std::io::Write;
use std::path::{Path, PathBuf};

/// kubelet reads at most this much of the file.
pub const MAX_BYTES: usize = 4096;
pub const DEFAULT_PATH: &str = "/dev/termination-log";

#[derive(Debug, thiserror::Error)]
pub enum TerminationError {
    #[error("termination message {0}")]
    File(#[from] crate::nodefile::NodeFileError),
    #[error("termination message {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where to write, from the raw variable: unset or blank → the default, `off` → nowhere, an
/// absolute path → it; anything else → the default (the run is failing already: a bad value
/// here must not hide why).
pub fn path_from(raw: Option<&str>) -> Option<PathBuf> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Some(PathBuf::from(DEFAULT_PATH)),
        Some("off") => None,
        Some(p) if Path::new(p).is_absolute() => Some(PathBuf::from(p)),
        Some(_) => Some(PathBuf::from(DEFAULT_PATH)),
    }
}

/// The message for exit `code`: `exit CODE: MESSAGE`, cut to [`MAX_BYTES`].
pub fn message(code: u8, msg: &str) -> String {
    let mut m = format!("exit {code}: {msg}");
    if m.len() > MAX_BYTES {
        let mut end = MAX_BYTES;
        while !m.is_char_boundary(end) {
            end -= 1;
        }
        m.truncate(end);
    }
    m
}

/// Writes the message for `code` to `path` if it exists; `Ok(false)` when there is none.
pub fn record(path: &Path, code: u8, msg: &str) -> Result<bool, TerminationError> {
    use crate::nodefile::{open_for, Links};
    // Any size: what is there is replaced.
    let mut file = match open_for(path, u64::MAX, Links::Refuse, true) {
        Ok(f) => f,
        Err(e) if e.is_not_found() => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    let io = |source| TerminationError::Io {
        path: path.to_path_buf(),
        source,
    };
    file.set_len(0).map_err(io)?;
    file.write_all(message(code, msg).as_bytes()).map_err(io)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(path_from(None), Some(PathBuf::from(DEFAULT_PATH)));
        assert_eq!(path_from(Some("  ")), Some(PathBuf::from(DEFAULT_PATH)));
        assert_eq!(path_from(Some("off")), None);
        assert_eq!(path_from(Some("/x/msg")), Some(PathBuf::from("/x/msg")));
        assert_eq!(
            path_from(Some("rel/msg")),
            Some(PathBuf::from(DEFAULT_PATH))
        );
    }

    #[test]
    fn written_whole_then_cut_at_kubelets_limit_on_a_char_boundary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("termination-log");
        std::fs::write(&p, "an older, longer message from a previous run").unwrap();
        assert!(record(&p, 1, "ovn-controller: crash loop").unwrap());
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "exit 1: ovn-controller: crash loop"
        );
        let long = "é".repeat(5000);
        assert!(record(&p, 4, &long).unwrap());
        let got = std::fs::read_to_string(&p).unwrap();
        assert!(
            got.len() <= MAX_BYTES && got.len() > MAX_BYTES - 2,
            "{}",
            got.len()
        );
        assert!(got.starts_with("exit 4: éé"));
    }

    #[test]
    fn nothing_created_followed_or_blocked_on() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none");
        assert!(!record(&missing, 1, "x").unwrap());
        assert!(!missing.exists());
        let target = dir.path().join("root-owned");
        std::fs::write(&target, "keep").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(record(&link, 1, "x").is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // A FIFO nobody reads is refused from its stat, never opened (which could hang).
        assert!(matches!(
            record(&fifo, 1, "x"),
            Err(TerminationError::File(_))
        ));
        assert!(matches!(
            record(dir.path(), 1, "x"),
            Err(TerminationError::File(_))
        ));
    }
}

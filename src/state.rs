//! The supervisor's published state: a small JSON file in the OVS run dir that `probe` reads.
//!
//! Invariants: written atomically (temp file + rename), so a probe never reads half a file;
//! written only on stage changes, never polled; removed on a clean stop. A probe trusts it only
//! while the pid it names is alive, so a file left by a killed supervisor reads as "gone".

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a supervisor state file: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub supervisor_pid: i32,
    /// The stage in progress, or "ready" / "stopping".
    pub stage: String,
    pub ready: bool,
    /// Daemon name → pid, for the daemons started so far.
    pub daemons: BTreeMap<String, i32>,
    /// Completed stages and how long each took, in ms.
    pub timeline: Vec<(String, u64)>,
}

pub fn write(path: &Path, state: &State) -> Result<(), StateError> {
    let io = |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let body = serde_json::to_vec(state).map_err(|source| StateError::Parse {
        path: path.to_path_buf(),
        source,
    })?;
    std::fs::write(&tmp, body).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

pub fn read(path: &Path) -> Result<State, StateError> {
    let body = std::fs::read(path).map_err(|source| StateError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&body).map_err(|source| StateError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.state");
        let s = State {
            supervisor_pid: 7,
            stage: "ready".into(),
            ready: true,
            daemons: [("ovsdb-server".to_string(), 9)].into(),
            timeline: vec![("conf.db".into(), 12)],
        };
        write(&p, &s).unwrap();
        assert_eq!(read(&p).unwrap(), s);
        std::fs::write(&p, "{not json").unwrap();
        assert!(matches!(read(&p), Err(StateError::Parse { .. })));
    }
}

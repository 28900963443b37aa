//! `DEBUG_WRAPPER` programs that hold a daemon at its start, for tests that act while the
//! supervisor waits on it.

use std::path::Path;
use std::process::Command;

/// A wrapper (for `DEBUG_WRAPPER`) that replaces `daemon` by a long sleep, as a daemon stuck
/// at its start would be: it never opens its control socket.
pub fn hold_wrapper(dir: &Path, daemon: &str) -> String {
    let path = dir.join(format!("hold-{daemon}.sh"));
    std::fs::write(
        &path,
        format!("#!/bin/sh\ncase \"$1\" in */{daemon}) exec sleep 120;; esac\nexec \"$@\"\n"),
    )
    .unwrap();
    Command::new("chmod").arg("+x").arg(&path).status().unwrap();
    path.display().to_string()
}

//! `DEBUG_WRAPPER` programs that hold a daemon at its start, for tests that act while the
//! supervisor waits on it, and the executable scripts other wrappers are written as.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// A wrapper (for `DEBUG_WRAPPER`) that replaces `daemon` by a long sleep, as a daemon stuck
/// at its start would be: it never opens its control socket.
pub fn hold_wrapper(dir: &Path, daemon: &str) -> String {
    let path = dir.join(format!("hold-{daemon}.sh"));
    script(
        &path,
        &format!("#!/bin/sh\ncase \"$1\" in */{daemon}) exec sleep 120;; esac\nexec \"$@\"\n"),
    );
    path.display().to_string()
}

/// Writes an executable script (mode 0755) at `path`: a wrapper, or a stand-in for a tool.
pub fn script(path: &Path, body: &str) {
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

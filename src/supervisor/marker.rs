//! The readiness marker file (`OVS_OVN_SUPERVISOR_READY_FILE`): present exactly while the node
//! is ready, for dependents on the node that cannot run an exec probe (a CNI plugin waiting
//! for the switch before it wires pods).
//!
//! Invariant: written whole (temp file + rename) so a reader never sees a partial file; a
//! failure is a warning, never a reason to stop the node.

use std::path::Path;

/// Creates the marker when `ready`, removes it otherwise; `None`: no marker configured.
pub(super) fn set(path: Option<&Path>, ready: bool) {
    let Some(path) = path else {
        return;
    };
    let r = if ready {
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        std::fs::write(&tmp, format!("{}\n", crate::status::unix_ms()))
            .and_then(|()| std::fs::rename(&tmp, path))
    } else {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            r => r,
        }
    };
    if let Err(e) = r {
        tracing::warn!(path = %path.display(), error = %e, "readiness marker");
    }
}

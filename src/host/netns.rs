//! Keeps a sandbox's network devices off the host: a private network namespace when we may
//! create one, else vswitchd's dummy devices.
//!
//! Invariant: [`enter`] runs before the async runtime and the reaper thread exist, because
//! `unshare(CLONE_NEWNET)` moves only the calling thread and the threads it creates afterwards
//! (the log writer thread, already there, stays behind: it only writes to stderr). The sandbox's sockets are path-based unix sockets, which every network
//! namespace sees, so `probe` from the host still reaches the daemons.

use nix::errno::Errno;
use nix::sched::{unshare, CloneFlags};

use crate::config::SandboxNet;
use crate::daemon::NetMode;

#[derive(Debug, thiserror::Error)]
#[error("OVS_OVN_SUPERVISOR_SANDBOX_NET=netns: cannot create a network namespace ({0}); run as root or with CAP_SYS_ADMIN, or use auto or dummy")]
pub struct NetnsError(Errno);

/// Chooses and enters the sandbox's network mode; `None` (a real node) changes nothing.
pub fn enter(mode: Option<SandboxNet>) -> Result<NetMode, NetnsError> {
    match mode {
        None => Ok(NetMode::Real),
        Some(SandboxNet::Dummy) => Ok(NetMode::Dummy),
        Some(m) => match unshare(CloneFlags::CLONE_NEWNET) {
            Ok(()) => Ok(NetMode::Real),
            Err(e) if m == SandboxNet::Auto => {
                tracing::info!(error = %e, "no private network namespace; sandbox uses dummy devices");
                Ok(NetMode::Dummy)
            }
            Err(e) => Err(NetnsError(e)),
        },
    }
}

//! Stop signals that arrive before the supervisor can handle them.
//!
//! The supervisor's handlers (tokio's) exist only once it is built, after the configuration,
//! the host checks and a possible takeover; a SIGTERM in those first milliseconds would kill
//! the process by the default action, so Kubernetes would see a death by signal rather than a
//! clean stop. [`hold`] blocks the signals first thing; [`release`] unblocks them once the
//! handlers exist, and a signal that came meanwhile is delivered then and handled as usual.
//!
//! Invariant: children never inherit the mask (std's `Command` resets it in the child before
//! `exec`), and threads created while it is held keep it, so the signals go to the main thread.

use nix::sys::signal::{SigSet, SigmaskHow, Signal};

fn set() -> SigSet {
    let mut s = SigSet::empty();
    for sig in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ] {
        s.add(sig);
    }
    s
}

/// Blocks the stop signals in the calling thread (call it before any thread exists).
pub fn hold() -> nix::Result<()> {
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set()), None)
}

/// Unblocks them again, once their handlers are installed.
pub fn release() -> nix::Result<()> {
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&set()), None)
}

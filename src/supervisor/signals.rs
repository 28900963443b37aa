//! Signals: the ones the running supervisor handles, and stop signals that arrive before it can
//! handle them.
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
use tokio::signal::unix::{signal, Signal as Handler, SignalKind};

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

/// The signals the running supervisor handles (tokio's handlers: no work in the handler, the
/// supervisor loop acts on them).
pub(crate) struct Signals {
    term: Handler,
    int: Handler,
    hup: Handler,
    usr1: Handler,
    usr2: Handler,
}

pub(crate) enum SigEvent {
    Stop(&'static str),
    Hup,
    /// Caught so its default action (terminate) cannot take the node down; logged, not forwarded.
    Other(&'static str),
}

impl Signals {
    pub(crate) fn new() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
            usr1: signal(SignalKind::user_defined1())?,
            usr2: signal(SignalKind::user_defined2())?,
        })
    }
    pub(crate) async fn next(&mut self) -> SigEvent {
        tokio::select! {
            _ = self.term.recv() => SigEvent::Stop("SIGTERM"),
            _ = self.int.recv() => SigEvent::Stop("SIGINT"),
            _ = self.hup.recv() => SigEvent::Hup,
            _ = self.usr1.recv() => SigEvent::Other("SIGUSR1"),
            _ = self.usr2.recv() => SigEvent::Other("SIGUSR2"),
        }
    }
}

//! Signals: the ones the running supervisor handles, and signals that arrive before it can
//! handle them.
//!
//! Every signal whose default action would end the process is handled, so none can kill the
//! supervisor and leave its daemons running without it (before, SIGALRM did just that):
//! - SIGTERM and SIGINT (the pod's stop), and every other one that is asynchronous by nature —
//!   SIGQUIT, SIGALRM, SIGVTALRM, SIGPROF, SIGXCPU, SIGXFSZ, SIGIO, SIGPWR, SIGSTKFLT, the
//!   real-time signals — are an ordered stop, exit 0: the nearest thing to their default
//!   action that stops the daemons too (OVS daemons themselves die on SIGALRM);
//! - SIGHUP is log rotation (`vlog/reopen`), never forwarded: OVS daemons die on it;
//! - SIGUSR1/SIGUSR2 are logged and ignored, as the README has promised since the start;
//! - SIGPIPE is ignored (Rust's runtime sets that before `main`; children get the default back);
//! - not handled: SIGKILL (cannot be), and the faults a process raises on itself (SIGSEGV,
//!   SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT): returning from a handler would run the
//!   faulting instruction again, or hide a real crash;
//! - not handled either: SIGRTMAX, the one signal tokio cannot register (its handler table
//!   stops one short of it). Blocking it for good is no way out: children inherit the mask.
//!
//! The supervisor's handlers (tokio's) exist only once it is built, after the configuration,
//! the host checks and a possible takeover; a signal in those first milliseconds would kill the
//! process by the default action, so Kubernetes would see a death by signal rather than a clean
//! stop. [`hold`] blocks the signals first thing; [`release`] unblocks them once the handlers
//! exist, and a signal that came meanwhile is delivered then and handled as usual.
//!
//! Invariants: threads created while the signals are held keep them blocked, so the signals go
//! to the main thread. Children inherit the mask of the thread that spawns them (std's
//! `Command` does not reset it: checked with Rust 1.95): the host tools spawned while the
//! signals are held inherit the block, harmless as each runs under a deadline and is killed
//! with SIGKILL; the daemons are spawned after [`release`], from the main thread, with nothing
//! blocked. No work is done in a handler: tokio's only wakes the task that forwards the
//! signal to the supervisor loop, which acts on it.

use nix::libc;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

/// What a signal means to the running supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Meaning {
    Stop,
    Hup,
    /// Caught so its default action (terminate) cannot take the node down; logged, not forwarded.
    Ignore,
}

/// The signals with a name of their own that we handle.
const NAMED: [(Signal, Meaning); 14] = [
    (Signal::SIGTERM, Meaning::Stop),
    (Signal::SIGINT, Meaning::Stop),
    (Signal::SIGQUIT, Meaning::Stop),
    (Signal::SIGALRM, Meaning::Stop),
    (Signal::SIGVTALRM, Meaning::Stop),
    (Signal::SIGPROF, Meaning::Stop),
    (Signal::SIGXCPU, Meaning::Stop),
    (Signal::SIGXFSZ, Meaning::Stop),
    (Signal::SIGIO, Meaning::Stop),
    (Signal::SIGPWR, Meaning::Stop),
    (Signal::SIGSTKFLT, Meaning::Stop),
    (Signal::SIGHUP, Meaning::Hup),
    (Signal::SIGUSR1, Meaning::Ignore),
    (Signal::SIGUSR2, Meaning::Ignore),
];

/// Names for the real-time signals, by offset from SIGRTMIN.
const RT_NAMES: [&str; 32] = [
    "SIGRTMIN",
    "SIGRTMIN+1",
    "SIGRTMIN+2",
    "SIGRTMIN+3",
    "SIGRTMIN+4",
    "SIGRTMIN+5",
    "SIGRTMIN+6",
    "SIGRTMIN+7",
    "SIGRTMIN+8",
    "SIGRTMIN+9",
    "SIGRTMIN+10",
    "SIGRTMIN+11",
    "SIGRTMIN+12",
    "SIGRTMIN+13",
    "SIGRTMIN+14",
    "SIGRTMIN+15",
    "SIGRTMIN+16",
    "SIGRTMIN+17",
    "SIGRTMIN+18",
    "SIGRTMIN+19",
    "SIGRTMIN+20",
    "SIGRTMIN+21",
    "SIGRTMIN+22",
    "SIGRTMIN+23",
    "SIGRTMIN+24",
    "SIGRTMIN+25",
    "SIGRTMIN+26",
    "SIGRTMIN+27",
    "SIGRTMIN+28",
    "SIGRTMIN+29",
    "SIGRTMIN+30",
    "SIGRTMIN+31",
];

/// Every signal we handle: its number, name and meaning.
pub(crate) fn handled() -> Vec<(i32, &'static str, Meaning)> {
    let named = NAMED.iter().map(|(s, m)| (*s as i32, s.as_str(), *m));
    // SIGRTMAX itself is left out: tokio cannot register it (see the module doc).
    let rt = (libc::SIGRTMIN()..libc::SIGRTMAX()).map(|n| {
        let name = usize::try_from(n - libc::SIGRTMIN())
            .ok()
            .and_then(|i| RT_NAMES.get(i))
            .copied()
            .unwrap_or("SIGRT");
        (n, name, Meaning::Stop)
    });
    named.chain(rt).collect()
}

/// Every signal we handle, as a set.
fn set() -> SigSet {
    let mut named = SigSet::empty();
    for (s, _) in NAMED {
        named.add(s);
    }
    let mut raw = *named.as_ref();
    // SAFETY: `raw` is a copy of an initialized set, which sigaddset only writes bits of (it
    // refuses, returning -1, a number out of range); an initialized set is all that
    // from_sigset_t_unchecked asks for.
    unsafe {
        for n in libc::SIGRTMIN()..libc::SIGRTMAX() {
            libc::sigaddset(&mut raw, n);
        }
        SigSet::from_sigset_t_unchecked(raw)
    }
}

/// Blocks the handled signals in the calling thread (call it before any thread exists).
pub fn hold() -> nix::Result<()> {
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set()), None)
}

/// Unblocks them again, once their handlers are installed.
pub fn release() -> nix::Result<()> {
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&set()), None)
}

/// The signals the running supervisor handles, as they come.
pub(crate) struct Signals {
    rx: mpsc::UnboundedReceiver<SigEvent>,
    forwarders: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Signals {
    fn drop(&mut self) {
        for f in &self.forwarders {
            f.abort();
        }
    }
}

pub(crate) enum SigEvent {
    Stop(&'static str),
    Hup,
    /// Caught so its default action (terminate) cannot take the node down; logged, not forwarded.
    Other(&'static str),
}

impl Signals {
    /// Installs a handler for every signal in [`handled`], each forwarded by a task of its own.
    pub(crate) fn new() -> std::io::Result<Signals> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut forwarders = Vec::new();
        for (n, name, meaning) in handled() {
            let mut sig = signal(SignalKind::from_raw(n))?;
            let tx = tx.clone();
            let event = move || match meaning {
                Meaning::Stop => SigEvent::Stop(name),
                Meaning::Hup => SigEvent::Hup,
                Meaning::Ignore => SigEvent::Other(name),
            };
            forwarders.push(tokio::spawn(async move {
                while sig.recv().await.is_some() {
                    if tx.send(event()).is_err() {
                        return;
                    }
                }
            }));
        }
        Ok(Signals { rx, forwarders })
    }

    pub(crate) async fn next(&mut self) -> SigEvent {
        match self.rx.recv().await {
            Some(ev) => ev,
            // Every forwarder gone (the runtime is shutting down): nothing will come.
            None => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Signals whose default action does not end the process (ignore, stop, continue), and
    /// the two glibc keeps for itself (32, 33).
    fn harmless(n: i32) -> bool {
        use Signal::*;
        let quiet = [
            SIGCHLD, SIGURG, SIGWINCH, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU, SIGCONT,
        ];
        quiet.iter().any(|s| *s as i32 == n) || (32..libc::SIGRTMIN()).contains(&n)
    }

    #[test]
    fn every_signal_that_would_kill_us_is_handled_or_accounted_for() {
        use Signal::*;
        // Not handled, each for the reason the module doc gives.
        let not_handled = [
            SIGKILL, SIGPIPE, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT,
        ];
        let table = handled();
        for n in 1..=libc::SIGRTMAX() {
            if harmless(n) {
                continue;
            }
            let ours = table.iter().filter(|(h, ..)| *h == n).count();
            let excused = not_handled.iter().any(|s| *s as i32 == n) || n == libc::SIGRTMAX();
            assert!(ours == 1 || excused, "signal {n}: handled {ours} times");
            assert!(
                !(ours == 1 && excused),
                "signal {n} both handled and excused"
            );
        }
    }

    #[test]
    fn what_each_signal_means() {
        let table = handled();
        let meaning = |n: i32| {
            table
                .iter()
                .find(|(h, ..)| *h == n)
                .map(|(_, name, m)| (*name, *m))
        };
        let rows = [
            (Signal::SIGTERM as i32, Some(("SIGTERM", Meaning::Stop))),
            (Signal::SIGALRM as i32, Some(("SIGALRM", Meaning::Stop))),
            (Signal::SIGXFSZ as i32, Some(("SIGXFSZ", Meaning::Stop))),
            (Signal::SIGHUP as i32, Some(("SIGHUP", Meaning::Hup))),
            (Signal::SIGUSR1 as i32, Some(("SIGUSR1", Meaning::Ignore))),
            (libc::SIGRTMIN(), Some(("SIGRTMIN", Meaning::Stop))),
            (libc::SIGRTMIN() + 3, Some(("SIGRTMIN+3", Meaning::Stop))),
            (Signal::SIGPIPE as i32, None),
            (Signal::SIGSEGV as i32, None),
        ];
        for (n, want) in rows {
            assert_eq!(meaning(n), want, "signal {n}");
        }
    }

    #[test]
    fn hold_blocks_what_is_handled() {
        let held = set();
        let has = |n: i32| {
            // SAFETY: `held` is an initialized set; sigismember only reads it.
            unsafe { libc::sigismember(held.as_ref(), n) == 1 }
        };
        for (n, name, _) in handled() {
            assert!(has(n), "{name}");
        }
        assert!(!has(libc::SIGRTMAX()) && !has(Signal::SIGPIPE as i32));
    }
}

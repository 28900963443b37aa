//! After a handover: has the successor taken the node, must we take it back, or wait? (A
//! successor that died after the handover used to leave the node with no daemons at all; a
//! fake one answering `status` as started kept the old instance idle forever.) A pure
//! decision of (phase, what we saw, now); the supervisor's `handback` gathers the facts,
//! carries the action out, and looks again every 200 ms until it is terminated.
//!
//! Confirmation needs all of: the successor that asked still runs (the same process: pid and
//! start time); it holds the instance lock (the pid written in the held lock file is its own:
//! a real instance locks before it binds the socket or starts anything); it answers `status`
//! at the socket path as started, with its own pid; and the node's daemons answer (their
//! pidfiles name live processes, not ours, that answer their control sockets). Until then
//! the node may have no daemon at all, so:
//! - the instance lock is held (by anyone) → wait: whoever holds it may be running or starting
//!   the node, and a second node beside it is worse than none; the deadline does not change
//!   that (before, the take-back then failed on the lock and idled forever);
//! - the lock is free or its file is gone, and the successor is dead → take the node back;
//! - the lock is free while an instance answers at the path as started → take it back: a real
//!   instance never runs without the lock;
//! - the lock is free or gone past the deadline → take it back;
//! - otherwise (just handed over: the successor has not locked yet) → wait.
//!
//! Once confirmed, we keep watching: the successor dead and the lock free (its file gone
//! counts) → take the node back (a successor killed right after it confirmed left the daemons
//! unsupervised). The lock held by another, or the successor alive → stay idle.

use std::time::Instant;

/// Who answers at the control socket path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtPath {
    /// Still our own listener (the successor never bound the path).
    Ours,
    /// Nobody: no file, or nobody listening on it.
    Nobody,
    /// Another instance: the pid its `status` names, and whether it says it has started (an
    /// instance that accepts and stays silent has not).
    Other { pid: Option<i32>, started: bool },
}

/// The instance lock, as a try-lock of its file found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// Nobody held it.
    Free,
    /// No lock file at its path.
    Missing,
    /// Somebody holds it; the pid written in it, if any.
    Held { pid: Option<i32> },
}

/// What the supervisor saw this round. Once confirmed, only `successor_alive` and `lock` are
/// looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub successor_alive: bool,
    pub lock: Lock,
    pub at: AtPath,
    pub daemons_answer: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Handed over, not confirmed: take the node back after `deadline` if nobody holds it.
    Waiting {
        deadline: Instant,
    },
    Confirmed,
}

/// Why we take the node back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    #[error("the successor that asked for the node has died")]
    Died,
    #[error("the successor died after it took the node")]
    DiedAfterConfirming,
    #[error("an instance answers as started without holding the instance lock")]
    StartedWithoutLock,
    #[error("no successor confirmed within the deadline")]
    Deadline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Wait,
    Confirmed,
    /// Start the node again, holding the lock we found free (or creating its file).
    TakeBack(Reason),
}

pub fn decide(phase: Phase, seen: &Seen, successor: i32, now: Instant) -> Action {
    let free = matches!(seen.lock, Lock::Free | Lock::Missing);
    let deadline = match phase {
        Phase::Confirmed if !seen.successor_alive && free => {
            return Action::TakeBack(Reason::DiedAfterConfirming)
        }
        Phase::Confirmed => return Action::Wait,
        Phase::Waiting { deadline } => deadline,
    };
    let holds = seen.lock
        == Lock::Held {
            pid: Some(successor),
        };
    let runs = seen.at
        == AtPath::Other {
            pid: Some(successor),
            started: true,
        };
    if seen.successor_alive && holds && runs && seen.daemons_answer {
        return Action::Confirmed;
    }
    if !free {
        return Action::Wait;
    }
    if !seen.successor_alive {
        return Action::TakeBack(Reason::Died);
    }
    if seen.lock == Lock::Free && matches!(seen.at, AtPath::Other { started: true, .. }) {
        return Action::TakeBack(Reason::StartedWithoutLock);
    }
    if now >= deadline {
        return Action::TakeBack(Reason::Deadline);
    }
    Action::Wait
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn confirm_only_a_live_locked_started_successor_whose_daemons_answer() {
        const S: i32 = 40;
        let t0 = Instant::now();
        let waiting = Phase::Waiting {
            deadline: t0 + Duration::from_secs(90),
        };
        let (before, after) = (t0 + Duration::from_secs(1), t0 + Duration::from_secs(91));
        let (free, missing) = (Lock::Free, Lock::Missing);
        let held = Lock::Held { pid: Some(S) };
        let by_other = Lock::Held { pid: Some(41) };
        let unnamed = Lock::Held { pid: None };
        let started = AtPath::Other {
            pid: Some(S),
            started: true,
        };
        let other_started = AtPath::Other {
            pid: Some(41),
            started: true,
        };
        let starting = AtPath::Other {
            pid: Some(S),
            started: false,
        };
        let (ours, nobody) = (AtPath::Ours, AtPath::Nobody);
        let back = Action::TakeBack;
        use Action::{Confirmed, Wait};
        use Reason::*;
        // (phase, successor alive, lock, at the path, daemons answer, now, expected)
        let table = [
            // Everything holds: confirmed.
            (waiting, true, held, started, true, before, Confirmed),
            (waiting, true, held, started, true, after, Confirmed),
            // Anything missing: not confirmed; the lock held means never taken back.
            (waiting, true, held, started, false, before, Wait),
            (waiting, true, held, started, false, after, Wait),
            (waiting, true, held, starting, true, after, Wait),
            (waiting, true, held, other_started, true, before, Wait),
            (waiting, true, unnamed, started, true, before, Wait),
            (waiting, true, by_other, started, true, after, Wait),
            (waiting, false, held, started, true, before, Wait),
            (waiting, false, by_other, ours, false, after, Wait),
            // A fake answering as started without the lock: taken back at once.
            (
                waiting,
                true,
                free,
                started,
                true,
                before,
                back(StartedWithoutLock),
            ),
            (
                waiting,
                true,
                free,
                other_started,
                false,
                before,
                back(StartedWithoutLock),
            ),
            // The file deleted under a live successor: not acted on before the deadline.
            (waiting, true, missing, started, true, before, Wait),
            (waiting, true, missing, started, true, after, back(Deadline)),
            // The successor died: taken back, whoever answers at the path.
            (waiting, false, free, started, true, before, back(Died)),
            (waiting, false, free, ours, false, before, back(Died)),
            (waiting, false, missing, nobody, false, before, back(Died)),
            (waiting, false, free, starting, false, before, back(Died)),
            // Just handed over, the successor not locked yet: wait for it until the deadline.
            (waiting, true, free, ours, false, before, Wait),
            (waiting, true, free, nobody, false, before, Wait),
            (waiting, true, free, starting, false, before, Wait),
            (waiting, true, free, ours, false, after, back(Deadline)),
            (waiting, true, free, nobody, false, after, back(Deadline)),
            (waiting, true, free, starting, false, after, back(Deadline)),
            // Confirmed: watched until terminated; taken back once it is dead and unlocked.
            (Phase::Confirmed, true, held, started, true, after, Wait),
            (Phase::Confirmed, true, free, nobody, false, after, Wait),
            (
                Phase::Confirmed,
                false,
                by_other,
                nobody,
                false,
                after,
                Wait,
            ),
            (Phase::Confirmed, false, unnamed, nobody, false, after, Wait),
            (
                Phase::Confirmed,
                false,
                free,
                nobody,
                false,
                before,
                back(DiedAfterConfirming),
            ),
            (
                Phase::Confirmed,
                false,
                missing,
                started,
                true,
                before,
                back(DiedAfterConfirming),
            ),
        ];
        for (i, (phase, alive, lock, at, daemons, now, want)) in table.into_iter().enumerate() {
            let seen = Seen {
                successor_alive: alive,
                lock,
                at,
                daemons_answer: daemons,
            };
            assert_eq!(decide(phase, &seen, S, now), want, "row {i}: {seen:?}");
        }
    }
}

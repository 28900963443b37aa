//! After a handover: has the successor taken the node, or must we take it back? (A successor
//! that died after the handover used to leave the node with no daemons at all.) A pure
//! decision of (watch, what answers at the socket path, is the successor alive, now); the
//! supervisor's `handback` gathers the facts and carries the action out.
//!
//! The confirmation needs nothing new from the successor: once it runs the node it has bound
//! the control socket path (our own listener stays on the unlinked inode) and answers
//! `status` with `started: true`. Until then the node has no daemon at all, so:
//! - the successor confirmed → idle until terminated, as before;
//! - the successor that asked is dead (its pid came with the request and was visible to us —
//!   with `hostPID` it is; a pid we could not see at the request is never judged) → take the
//!   node back at once;
//! - the deadline passed and nobody else answers at the path → take the node back;
//! - something else answers at the path but has not started, and is not known dead → wait:
//!   a live successor still inside its own stage deadlines must not get a second node beside
//!   it; when it gives up and exits, one of the rules above applies.

use std::time::Instant;

/// Who answers at the control socket path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtPath {
    /// Still our own listener (the successor never bound the path).
    Ours,
    /// Nobody: no file, or nobody listening on it.
    Nobody,
    /// Another instance: it answered `status` (or accepted and stayed silent: not started).
    Other { started: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Wait,
    Confirmed,
    /// Start the node again; `rebind`: our listener no longer owns the path.
    TakeBack {
        reason: String,
        rebind: bool,
    },
}

pub fn decide(
    at: AtPath,
    successor_alive: Option<bool>,
    deadline: Instant,
    now: Instant,
) -> Action {
    let rebind = at != AtPath::Ours;
    match (at, successor_alive) {
        (AtPath::Other { started: true }, _) => Action::Confirmed,
        (_, Some(false)) => Action::TakeBack {
            reason: "the successor that asked for the node has died".into(),
            rebind,
        },
        (AtPath::Other { started: false }, _) => Action::Wait,
        _ if now >= deadline => Action::TakeBack {
            reason: "no successor confirmed within the deadline".into(),
            rebind,
        },
        _ => Action::Wait,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn take_back_only_when_nobody_can_be_running_the_node() {
        let t0 = Instant::now();
        let deadline = t0 + Duration::from_secs(90);
        let (before, after) = (t0 + Duration::from_secs(1), t0 + Duration::from_secs(91));
        let back = |rebind: bool, dead: bool| Action::TakeBack {
            reason: if dead {
                "the successor that asked for the node has died"
            } else {
                "no successor confirmed within the deadline"
            }
            .into(),
            rebind,
        };
        let started = AtPath::Other { started: true };
        let starting = AtPath::Other { started: false };
        // (at the path, successor alive, now, expected)
        let table = [
            (started, Some(true), before, Action::Confirmed),
            (started, None, after, Action::Confirmed),
            // A new instance that answers as started is the node's owner, whoever asked.
            (started, Some(false), before, Action::Confirmed),
            (starting, Some(true), before, Action::Wait),
            (starting, Some(true), after, Action::Wait),
            (starting, None, after, Action::Wait),
            (starting, Some(false), before, back(true, true)),
            (AtPath::Ours, Some(true), before, Action::Wait),
            (AtPath::Ours, Some(false), before, back(false, true)),
            (AtPath::Ours, None, after, back(false, false)),
            (AtPath::Nobody, Some(true), before, Action::Wait),
            (AtPath::Nobody, Some(true), after, back(true, false)),
            (AtPath::Nobody, Some(false), before, back(true, true)),
            (AtPath::Nobody, None, before, Action::Wait),
        ];
        for (i, (at, alive, now, want)) in table.into_iter().enumerate() {
            assert_eq!(decide(at, alive, deadline, now), want, "row {i}");
        }
    }
}

//! ovn-controller refusing a rebuilt or restored clustered Southbound, and the decision to reset
//! its view of the cluster.
//!
//! A raft client remembers the highest log index it has seen and refuses a server whose index is
//! lower, so it never goes back in time. After the Southbound cluster is recreated (or restored
//! from a backup) every server is "behind": ovn-controller logs `clustered database server has
//! stale data; trying another server` (OVS `lib/ovsdb-cs.c`, module `ovsdb_cs`, at WARN, on
//! every reconnect attempt: every 8 s once its backoff is at its maximum) and never connects
//! until it is restarted or told `sb-cluster-state-reset`, which zeroes that index and forces a
//! full recompute of its flows. There is no unixctl command that reports the condition, so the
//! relayed log is watched (as Kube-OVN's `ovs-healthcheck.sh` tails the log file).
//!
//! The decision is the pure [`StaleSouthbound::on`] of (state, event, now): a stale line opens
//! an episode; a health check that finds ovn-controller connected ends it, as does a new
//! ovn-controller process (which starts with no index) or [`QUIET_END`] without a stale line
//! (the Southbound is now failing some other way). A reset is sent when a health check finds
//! ovn-controller not connected in an episode that has lasted [`CONFIRM_AFTER`], then again
//! only if stale lines keep coming after it, and never twice within [`RESET_EVERY`] (across
//! episodes too, so an episode that ends and opens again spuriously costs at most one more).
//!
//! Invariants: times are unix ms; a clock that went backwards counts as "long ago" (a reset
//! held back by a wall-clock jump would bring the original bug back); nothing here does I/O.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How long an episode must last before a reset: longer than ovn-controller's maximal
/// reconnect backoff (8 s), so with several remotes it has tried another server at least once
/// and a member that is only catching up (a rolling restart of ovn-central) is left alone —
/// a reset there would let ovn-controller read older data than it already has.
pub const CONFIRM_AFTER: Duration = Duration::from_secs(10);

/// At most one reset per this long. A reset takes effect at ovn-controller's next reconnect
/// attempt (8 s at most) and costs a full recompute of its flows (seconds of CPU on a large
/// node), so a second one sooner could only add load; 30 s lets each reset see at least three
/// attempts, and still heals a second rebuild within a readiness probe's failure window.
pub const RESET_EVERY: Duration = Duration::from_secs(30);

/// An episode without a stale line for this long is over: ovn-controller logs one on every
/// reconnect attempt, at most 8 s apart, so three missed ones mean the cause changed.
pub const QUIET_END: Duration = Duration::from_secs(30);

/// A stale line relayed this soon after a reset may have been written before ovn-controller
/// read the reset: it does not prove the reset failed.
const IN_FLIGHT: Duration = Duration::from_secs(1);

const MARK: &str = ": clustered database server has stale data";

/// The server named in ovn-controller's stale-data line, if `line` is one (as relayed: the
/// console format `TIME|SEQ|ovsdb_cs|WARN|SERVER: clustered database server has stale data;
/// trying another server`, trailing whitespace trimmed).
pub fn parse_stale(line: &str) -> Option<&str> {
    let head = &line[..line.find(MARK)?];
    let server = head.rsplit('|').next().unwrap_or(head).trim();
    Some(server)
}

/// One stretch of ovn-controller refusing stale Southbound servers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Episode {
    /// The server named in the latest stale line.
    pub server: String,
    pub since_ms: u64,
    pub last_line_ms: u64,
    /// Stale lines seen in this episode.
    pub lines: u32,
    /// `sb-cluster-state-reset`s sent in this episode.
    pub resets: u32,
}

impl Episode {
    /// The readiness reason while it lasts.
    pub fn describe(&self, now_ms: u64) -> String {
        let resets = match self.resets {
            0 => format!(
                "resetting its cluster state (sb-cluster-state-reset) once it has lasted {} s",
                CONFIRM_AFTER.as_secs()
            ),
            n => format!("sb-cluster-state-reset sent {n} time(s), waiting for it to reconnect"),
        };
        format!(
            "Southbound {} has stale data (its cluster was rebuilt or restored): ovn-controller \
             refuses it, for {}; {resets}",
            self.server,
            super::human(now_ms.saturating_sub(self.since_ms))
        )
    }
}

/// What `status` shows, and the decision's whole state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaleSouthbound {
    pub episode: Option<Episode>,
    /// Resets sent in this supervisor's life.
    pub resets: u32,
    pub last_reset_at_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// ovn-controller logged that `server` has stale data.
    Line { server: &'a str },
    /// A health check asked ovn-controller `connection-status`.
    Checked { connected: bool },
    /// A new ovn-controller process (it starts without a remembered index).
    Restarted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Connected,
    Restarted,
    Quiet,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Nothing,
    /// Send `sb-cluster-state-reset` now; `n` is this episode's count including this one.
    Reset {
        server: String,
        n: u32,
        stale_for_ms: u64,
    },
    Ended {
        server: String,
        why: End,
        lasted_ms: u64,
        resets: u32,
    },
}

/// `now - then`, or "long ago" when the clock went backwards.
fn since(now_ms: u64, then_ms: u64) -> u64 {
    now_ms.checked_sub(then_ms).unwrap_or(u64::MAX)
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

impl StaleSouthbound {
    pub fn on(&mut self, event: Event, now_ms: u64) -> Action {
        match event {
            Event::Line { server } => {
                let ep = self.episode.get_or_insert_with(|| Episode {
                    server: String::new(),
                    since_ms: now_ms,
                    last_line_ms: now_ms,
                    lines: 0,
                    resets: 0,
                });
                ep.server = server.to_string();
                ep.last_line_ms = now_ms;
                ep.lines += 1;
                Action::Nothing
            }
            Event::Restarted => self.end(End::Restarted, now_ms),
            Event::Checked { connected: true } => self.end(End::Connected, now_ms),
            Event::Checked { connected: false } => self.not_connected(now_ms),
        }
    }

    fn not_connected(&mut self, now_ms: u64) -> Action {
        let Some(ep) = &self.episode else {
            return Action::Nothing;
        };
        if since(now_ms, ep.last_line_ms) > ms(QUIET_END) {
            return self.end(End::Quiet, now_ms);
        }
        if since(now_ms, ep.since_ms) < ms(CONFIRM_AFTER) {
            return Action::Nothing;
        }
        if let Some(last) = self.last_reset_at_ms {
            // A clock that went back makes the last reset "long ago" and every line "after" it.
            let clock_back = now_ms < last;
            let too_soon = !clock_back && now_ms - last < ms(RESET_EVERY);
            // After this episode's own reset, only a stale line written after it proves that
            // the reset did not take (the cluster was rebuilt again, or the command was lost).
            let took = ep.resets > 0 && !clock_back && ep.last_line_ms <= last + ms(IN_FLIGHT);
            if too_soon || took {
                return Action::Nothing;
            }
        }
        let Some(ep) = &mut self.episode else {
            return Action::Nothing;
        };
        ep.resets += 1;
        self.resets += 1;
        self.last_reset_at_ms = Some(now_ms);
        Action::Reset {
            server: ep.server.clone(),
            n: ep.resets,
            stale_for_ms: now_ms.saturating_sub(ep.since_ms),
        }
    }

    fn end(&mut self, why: End, now_ms: u64) -> Action {
        match self.episode.take() {
            None => Action::Nothing,
            Some(ep) => Action::Ended {
                server: ep.server,
                why,
                lasted_ms: now_ms.saturating_sub(ep.since_ms),
                resets: ep.resets,
            },
        }
    }

    /// The `status` line, if there is anything to say.
    pub fn render(&self, now_ms: u64) -> Option<String> {
        let ago = |t: u64| super::human(now_ms.saturating_sub(t)) + " ago";
        let last = self
            .last_reset_at_ms
            .map_or(String::new(), |t| format!(", last {}", ago(t)));
        let total = format!("{} sb-cluster-state-reset(s) in all{last}", self.resets);
        match &self.episode {
            Some(ep) => Some(format!(
                "stale Southbound: {} since {}, {} reset(s) in this episode; {total}",
                ep.server,
                ago(ep.since_ms),
                ep.resets
            )),
            None if self.resets > 0 => Some(format!("stale Southbound: none now; {total}")),
            None => None,
        }
    }
}

/// The state shared between ovn-controller's log relay (lines) and the supervisor (checks,
/// restarts, resets).
#[derive(Debug, Clone, Default)]
pub struct StaleWatch(Arc<Mutex<StaleSouthbound>>);

impl StaleWatch {
    /// A relayed ovn-controller line.
    pub fn observe(&self, line: &str, now_ms: u64) {
        if let Some(server) = parse_stale(line) {
            self.on(Event::Line { server }, now_ms);
        }
    }

    pub fn on(&self, event: Event, now_ms: u64) -> Action {
        // A panic elsewhere while holding the lock leaves consistent data (every change is
        // one assignment chain in `on`): keep deciding rather than go blind.
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        s.on(event, now_ms)
    }

    pub fn status(&self) -> StaleSouthbound {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests;

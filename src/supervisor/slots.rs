//! The supervisor's daemon table: spawning a daemon into its [`Slot`], applying events to it
//! and publishing the result.
//!
//! Invariants: every change to a slot goes through [`Slot::on`] here and is published in the
//! same call, so `status` and the probes never see a state the supervisor does not hold; a
//! spawned daemon is registered with the reaper before anything can wait for it, and its exit
//! reaches the supervisor loop as `(daemon, pid, status)`.

use std::path::Path;
use std::time::Instant;

use super::Supervisor;
use crate::daemon::state::{Action, Event, Slot};
use crate::daemon::Daemon;
use crate::process::ExitStatus;
use crate::status::{self, DaemonInfo};

/// Why a daemon could not be spawned.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error(transparent)]
    Binary(#[from] crate::daemon::DaemonError),
    #[error(transparent)]
    Process(#[from] crate::process::ProcessError),
}

impl Supervisor {
    /// Applies `event` to `d`'s slot, publishes it, and says what to do.
    pub(super) fn event(&mut self, d: Daemon, event: Event) -> Action {
        let policy = self.cfg.restart;
        let slot = self.slots.entry(d).or_default();
        let action = slot.on(
            &policy,
            event,
            Instant::now(),
            status::unix_ms(),
            fastrand::f64(),
        );
        self.publish();
        action
    }

    /// Every slot into the published snapshot, in daemon order.
    pub(super) fn publish(&self) {
        let daemons: Vec<DaemonInfo> = self.slots.iter().map(|(d, s)| info(*d, s)).collect();
        self.snap.send_modify(|s| s.daemons = daemons);
    }

    /// The current process of `d`, if there is one.
    pub(super) fn pid(&self, d: Daemon) -> Option<i32> {
        self.slots.get(&d).and_then(|s| s.pid)
    }

    /// Daemons that have a process, with its pid, in daemon order.
    pub(super) fn processes(&self) -> Vec<(Daemon, i32)> {
        (self.slots.iter())
            .filter_map(|(d, s)| s.pid.map(|p| (*d, p)))
            .collect()
    }

    /// Starts `d` (`restart`: again, after an exit) and records it in its slot.
    pub(super) fn spawn(&mut self, d: Daemon, restart: bool) -> Result<i32, SpawnError> {
        let inv = d.invocation(&self.cfg, self.net);
        let binary = d.find_binary()?;
        // The daemon's resolved path replaces its bare name, so a wrapper runs the same binary
        // we checked for, whatever the wrapper's own PATH.
        let mut argv: Vec<std::ffi::OsString> = inv.argv.iter().map(Into::into).collect();
        argv[inv.program_at] = binary.into_os_string();
        // The previous process of this daemon is dead (or was never ours): its pidfile must not
        // be mistaken for the new one's, and its `NAME.PID.ctl` (left by a kill -9) must not
        // pile up. The embedded Southbound's socket has a fixed name its successor binds again.
        let l = &self.cfg.layout;
        if let Ok(Some(old)) = d.read_pid(l) {
            let dead = !Path::new(&format!("/proc/{old}")).exists();
            if dead && d != Daemon::SbServer {
                let _ = std::fs::remove_file(d.ctl(l, old));
            }
        }
        let _ = std::fs::remove_file(d.pidfile(l));
        let mut cmd = std::process::Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .envs(inv.env.iter().map(|(k, v)| (k, v)));
        // A daemon that dumps core (core_pattern `core`, under the limit we raise) writes it
        // in its working directory: its own log dir, which we own and operators collect, not
        // wherever the supervisor was started (a test run left a `core` in our repository).
        if let Some(dir) = d.logfile(l).parent() {
            cmd.current_dir(dir);
        }
        crate::kubeovn_compat::nice_before_exec(&mut cmd);
        let mut s = self.reaper.spawn(d.name(), cmd)?;
        warn_if_not_niced(d, s.pid);
        if let Some(out) = s.stdout.take() {
            crate::logging::relay(d.name(), out);
        }
        if let Some(e) = s.stderr.take() {
            let observe: Option<crate::logging::LineObserver> =
                (d == Daemon::OvnController).then(|| {
                    self.skew.clear();
                    self.stale_sb_restarted();
                    let (skew, stale) = (self.skew.clone(), self.stale_sb.clone());
                    Box::new(move |line: &str| {
                        let now = status::unix_ms();
                        skew.observe(line, now);
                        stale.observe(line, now);
                    }) as _
                });
            crate::logging::relay_observed(d.name(), e, observe);
        }
        let (pid, tx, exit) = (s.pid, self.exits_tx.clone(), s.exit);
        tokio::spawn(async move {
            if let Ok(status) = exit.await {
                let _ = tx.send((d, pid, status));
            }
        });
        tracing::info!(daemon = d.name(), pid, "started");
        self.event(d, Event::Spawned { pid, restart });
        Ok(pid)
    }
}

fn warn_if_not_niced(d: Daemon, pid: i32) {
    use crate::kubeovn_compat::{nice_of, DAEMON_NICE};
    let nice = nice_of(Path::new("/proc"), pid);
    if nice.is_some_and(|n| n != DAEMON_NICE) {
        tracing::warn!(
            daemon = d.name(),
            nice,
            "cannot run it at nice {DAEMON_NICE} as ovs-ctl does (needs CAP_SYS_NICE)"
        );
    }
}

/// What `status` shows of one slot.
fn info(d: Daemon, s: &Slot) -> DaemonInfo {
    DaemonInfo {
        name: d.name().into(),
        pid: s.pid,
        state: s.state,
        since_ms: s.spawned_at_ms.filter(|_| s.pid.is_some()),
        restarts: s.track.restarts,
        last_exit: s.last_exit.map(|e| e.to_string()),
        restarted_at_ms: s.restarted_at_ms,
        since_restart_ms: None,
        restarts_by_cause: s.causes.clone(),
        last_exit_code: match s.last_exit {
            Some(ExitStatus::Exited(c)) => Some(c),
            _ => None,
        },
        last_exit_signal: match s.last_exit {
            Some(ExitStatus::Signaled(sig)) => Some(sig as i32),
            _ => None,
        },
    }
}

//! Running iptables: the narrow [`Runner`] trait the firewall logic calls; [`HostRunner`],
//! which runs the real programs on this host or inside a named network namespace, and
//! [`ReapedRunner`], which runs them through the supervisor's reaper once that owns
//! `waitpid(-1)`.
//!
//! Invariants:
//! - Every command ends: [`HostRunner`] kills it with its process group at its deadline
//!   ([`crate::process::bounded`]), and the error names the program and the deadline. Callers
//!   also pass [`LOCK_WAIT`] to iptables, so a lock held elsewhere ends in iptables' own
//!   message well before that.
//! - [`HostRunner`] only where no reaper thread calls `waitpid(-1)` (before the supervisor
//!   starts its reaper, or from the CLI): it waits for its own child, which the reaper would
//!   otherwise reap first. [`ReapedRunner`] everywhere after.
//! - Messages stay untranslated (`LC_ALL=C`): the firewall logic matches iptables' words.

use std::process::Command;
use std::time::Duration;

use crate::process::bounded::{self, BoundedError};
use crate::process::{ExitStatus, Reaper};

/// `-w SECONDS`: how long legacy iptables waits for the xtables lock before it gives up with
/// "Another app is currently holding the xtables lock" (exit 4). A bare `-w` waits forever, so
/// a writer stuck holding the lock would hang the node's start with no message. nft ignores
/// the lock, and both accept `-w 5` with every subcommand we use (`-S`, `-C`, `-I`, `-D`, and
/// `-N`/`-A` in tests), checked with iptables 1.8.9. Writers hold the lock for one update at a
/// time, so five seconds of waiting means a holder is stuck, and the error then says so.
pub const LOCK_WAIT: [&str; 2] = ["-w", "5"];

/// When [`HostRunner`] kills an iptables command: the lock wait above plus as long again for
/// the command itself (e.g. listing a legacy table holding tens of thousands of kube-proxy
/// rules), so a held lock fails first with iptables' own message, and only a tool stuck
/// elsewhere (nft's netlink, `ip netns exec`) reaches the deadline.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// What a finished command said.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output {
    /// `None` when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Why a command has no [`Output`]: it could not start, or it missed its deadline and was
/// killed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Bounded(#[from] BoundedError),
    #[error(transparent)]
    Reaped(#[from] crate::process::ProcessError),
}

/// Runs one program to completion. `Err` only when it could not be started or did not finish
/// in time; an exit status of its own is in the [`Output`].
pub trait Runner {
    fn run(&self, program: &str, args: &[&str]) -> Result<Output, RunError>;
}

/// Runs programs on this host, or inside the named network namespace (`ip netns exec`), each
/// killed at `deadline`.
#[derive(Debug, Clone)]
pub struct HostRunner {
    pub netns: Option<String>,
    /// [`DEADLINE`] unless a test wants a hung tool to fail sooner.
    pub deadline: Duration,
}

impl Default for HostRunner {
    fn default() -> Self {
        HostRunner::new(None)
    }
}

impl HostRunner {
    /// On this host (`None`) or inside the named network namespace, with [`DEADLINE`].
    pub fn new(netns: Option<String>) -> Self {
        HostRunner {
            netns,
            deadline: DEADLINE,
        }
    }
}

impl Runner for HostRunner {
    fn run(&self, program: &str, args: &[&str]) -> Result<Output, RunError> {
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, program]);
                c
            }
            None => Command::new(program),
        };
        cmd.args(args).env("LC_ALL", "C");
        let out = bounded::output(cmd, self.deadline)?;
        Ok(Output {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// Runs programs in the supervisor's network namespace through its [`Reaper`], each killed at
/// `deadline`. [`Runner::run`] blocks on the reaper's future, so it must be called on a
/// blocking thread of the runtime `handle` belongs to (`spawn_blocking`), never on a worker.
pub struct ReapedRunner {
    pub reaper: &'static Reaper,
    pub handle: tokio::runtime::Handle,
    pub deadline: Duration,
}

impl Runner for ReapedRunner {
    fn run(&self, program: &str, args: &[&str]) -> Result<Output, RunError> {
        let mut cmd = Command::new(program);
        cmd.args(args).env("LC_ALL", "C");
        let out = (self.handle).block_on(self.reaper.output(program, cmd, self.deadline))?;
        Ok(Output {
            code: match out.status {
                ExitStatus::Exited(c) => Some(c),
                ExitStatus::Signaled(_) => None,
            },
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }
}

#[cfg(test)]
mod tests;

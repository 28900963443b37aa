//! Before the supervisor starts anything: who runs the node now, the host checks, and the host
//! fixes — in the order that keeps a node safe.
//!
//! Invariants, in order: our own resource limits are set first (`process::limits`: every
//! daemon and host tool inherits them); the instance lock is taken before anything changes
//! the node (or a live supervisor that holds it is asked to hand over), and a readiness marker
//! a killed instance left is removed right after; the preflight report must have no fail after
//! the modules are loaded; a running node (a supervisor's or `ovs-ctl` daemons) is taken over
//! only once our ovn-controller is known to match ovn-northd (`takeover::northd`), else the
//! start is refused with the node untouched; only then is the run-dir link set, stale files
//! removed and the tunnel port rule ensured (a rule that cannot be set stops the start only
//! when the operator requires it). Runs before the reaper thread exists (modprobe and iptables
//! are waited on through std, each under a deadline).

use crate::config::Config;
use crate::host::instance::{self, InstanceLock, LockError};
use crate::host::preflight::Report;
use crate::host::prep::{self, HostPrepError, RuleAtStart};
use crate::takeover::{self, legacy, Predecessor, TakeoverError};

#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Host(#[from] HostPrepError),
    #[error(transparent)]
    Takeover(#[from] TakeoverError),
}

impl PrepareError {
    /// The node is not ours to run (a failed check, another instance that holds it): the
    /// preflight exit code, not a runtime failure.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            PrepareError::Host(HostPrepError::Refused(_))
                | PrepareError::Takeover(TakeoverError::Locked(LockError::Held { .. }))
                | PrepareError::Takeover(TakeoverError::NoHandover { .. })
                | PrepareError::Takeover(TakeoverError::Northd(_))
        )
    }
}

impl From<LockError> for PrepareError {
    fn from(e: LockError) -> Self {
        PrepareError::Takeover(e.into())
    }
}

/// Every host check, reading only, with whether another supervisor runs this node.
pub fn report(cfg: &Config) -> Report {
    prep::report(cfg, takeover::other_instance(cfg))
}

/// Takes the node: our resource limits, the lock, the checks, a handover or a legacy takeover,
/// the host fixes. Returns who ran the node before, the instance lock we hold from now on, and
/// whether the tunnel port rule is in place.
pub fn prepare(cfg: &Config) -> Result<(Predecessor, InstanceLock, RuleAtStart), PrepareError> {
    crate::process::limits::raise(cfg.core_limit, crate::config::CORE_LIMIT_VAR);
    let lock = takeover::claim(cfg)?;
    let mut report = report(cfg);
    prep::load_modules(cfg, &mut report)?;
    let mut predecessor = Predecessor::None;
    let lock = match takeover::other_instance(cfg).filter(|_| cfg.takeover) {
        Some(pid) => {
            let old = format!("the node of the running instance (pid {pid})");
            takeover::northd::check(cfg, &old).map_err(TakeoverError::from)?;
            let (p, lock) = takeover::hand_over(cfg, pid, lock)?;
            predecessor = p;
            lock
        }
        None => {
            // The holder we saw in `claim` may have gone since: then the lock is free.
            let lock = match lock {
                Some(l) => l,
                None => instance::try_acquire(&cfg.layout.ovs_rundir)?,
            };
            if let Some(old) = legacy::leftover(cfg).filter(|_| cfg.takeover) {
                let what = format!("the ovs-ctl/ovn-ctl node ({})", old.describe());
                takeover::northd::check(cfg, &what).map_err(TakeoverError::from)?;
                tracing::info!(old = %old.describe(), "ovs-ctl/ovn-ctl daemons run this node: taking it over");
                predecessor = Predecessor::Legacy {
                    node: old,
                    since: std::time::Instant::now(),
                };
            }
            lock
        }
    };
    // Ours now: a readiness marker there is a dead instance's (one that handed over removed
    // its own).
    super::marker::clear_leftover(cfg.ready_file.as_deref());
    let rule = prep::fix(cfg)?;
    Ok((predecessor, lock, rule))
}

//! The resource limits `ovs-ctl` gives the daemons, set on the supervisor itself once at the
//! start of `run`, so every daemon (and every restart of one) inherits them.
//!
//! What `ovs-ctl` does (OVS 3.1, `/usr/share/openvswitch/scripts/ovs-ctl`): before starting
//! ovs-vswitchd, `if [ $(ulimit -n) -lt 65535 ]; then ulimit -n 65535; fi`; before each daemon,
//! with `FORCE_COREFILES=yes` (its default; `--no-force-corefiles` turns it off), `ulimit -c
//! 67108864`, which `/bin/sh` counts in 512-byte blocks: 32 GiB. `ulimit` without `-S`/`-H`
//! sets soft and hard at once, so where the hard limit is lower and we lack
//! `CAP_SYS_RESOURCE` (uid 65534 in Kube-OVN's pod) the call fails ("error setting limit
//! (Operation not permitted)") and the daemons keep the runtime's soft limit — containerd 2's
//! 1024 open files, no core files.
//!
//! Ours, per resource, from the current soft and hard limits (the pure [`open_files`] and
//! [`core`]):
//! - open files: soft raised to `min(hard, 65535)`, never lowered (a runtime that gives more
//!   keeps giving it, as `ovs-ctl`'s `-lt` test does);
//! - core files: soft set to `min(hard, wanted)`, exactly (the operator's size, 0 for none);
//! - hard limits are never touched: raising one needs `CAP_SYS_RESOURCE`, and lowering one
//!   could not be undone by the daemon a later restart runs.
//!
//! Why once for the supervisor rather than in each daemon's `pre_exec`: the supervisor's own
//! descriptors count too (its control socket accepts every probe and `status` client), the
//! host tools it runs get the same limits, and the spawn path stays free of extra
//! async-signal-safety concerns. Runs before any thread exists.

use std::fmt;

use nix::errno::Errno;
use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};

/// `ovs-ctl`'s `MAXFD`: the open-file limit it gives ovs-vswitchd.
pub const OPEN_FILES: u64 = 65_535;

/// One limit value; `Unlimited` is `RLIM_INFINITY`, larger than any finite size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Size {
    Finite(u64),
    Unlimited,
}

impl Size {
    fn from_raw(v: u64) -> Size {
        match v {
            RLIM_INFINITY => Size::Unlimited,
            n => Size::Finite(n),
        }
    }

    fn raw(self) -> u64 {
        match self {
            Size::Finite(n) => n,
            Size::Unlimited => RLIM_INFINITY,
        }
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Size::Finite(n) => write!(f, "{n}"),
            Size::Unlimited => f.write_str("unlimited"),
        }
    }
}

/// A resource's soft and hard limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    pub soft: Size,
    pub hard: Size,
}

/// What to do about one resource: the soft limit it had and the one it gets, and what we
/// wanted when the hard limit holds it below that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub before: Pair,
    pub soft: Size,
    /// `Some(wanted)` when the hard limit is below what we wanted.
    pub short_of: Option<Size>,
}

/// Open files: soft to `min(hard, 65535)`, never lowered.
pub fn open_files(now: Pair) -> Plan {
    let wanted = Size::Finite(OPEN_FILES);
    Plan {
        before: now,
        soft: now.soft.max(now.hard.min(wanted)),
        short_of: (now.hard < wanted).then_some(wanted),
    }
}

/// Core files: soft to `min(hard, wanted)`, raised or lowered.
pub fn core(now: Pair, wanted: Size) -> Plan {
    Plan {
        before: now,
        soft: now.hard.min(wanted),
        short_of: (now.hard < wanted).then_some(wanted),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LimitsError {
    #[error("cannot read the {what} limit: {errno}")]
    Get { what: &'static str, errno: Errno },
    #[error("cannot set the {what} soft limit to {soft}: {errno}")]
    Set {
        what: &'static str,
        soft: Size,
        errno: Errno,
    },
}

fn apply(
    what: &'static str,
    resource: Resource,
    decide: impl FnOnce(Pair) -> Plan,
) -> Result<Plan, LimitsError> {
    let (soft, hard) = getrlimit(resource).map_err(|errno| LimitsError::Get { what, errno })?;
    let plan = decide(Pair {
        soft: Size::from_raw(soft),
        hard: Size::from_raw(hard),
    });
    if plan.soft != plan.before.soft {
        // A soft limit at or below the hard one needs no privilege.
        setrlimit(resource, plan.soft.raw(), hard).map_err(|errno| LimitsError::Set {
            what,
            soft: plan.soft,
            errno,
        })?;
    }
    Ok(plan)
}

/// Sets this process's open-file and core limits (see the module doc) and logs what it did:
/// a warning naming both numbers where a hard limit holds one below what we wanted. A
/// failure is logged and leaves that limit as it was: the daemons run either way.
/// `core_var` names the variable the core size came from.
pub fn raise(core_wanted: Size, core_var: &str) {
    match apply("open files", Resource::RLIMIT_NOFILE, open_files) {
        Ok(p) => {
            if let Some(wanted) = p.short_of {
                tracing::warn!(
                    "open files: the hard limit {} is below the {wanted} ovs-ctl gives the daemons; they get {} (raise the container runtime's nofile limit)",
                    p.before.hard, p.soft
                );
            }
            tracing::info!(soft = %p.soft, hard = %p.before.hard, was = %p.before.soft, "open files limit");
        }
        Err(e) => tracing::warn!("{e}; the daemons keep the limit they inherit"),
    }
    match apply("core file size", Resource::RLIMIT_CORE, |now| {
        core(now, core_wanted)
    }) {
        Ok(p) => {
            if let Some(wanted) = p.short_of {
                tracing::warn!(
                    "core files: the hard limit {} bytes is below the {wanted} bytes {core_var} asks for; cores are cut at {} bytes",
                    p.before.hard, p.soft
                );
            }
            tracing::info!(soft = %p.soft, hard = %p.before.hard, was = %p.before.soft, "core file size limit (bytes)");
        }
        Err(e) => tracing::warn!("{e}; the daemons keep the limit they inherit"),
    }
}

#[cfg(test)]
mod tests {
    use super::Size::{Finite as F, Unlimited as U};
    use super::*;

    fn pair(soft: Size, hard: Size) -> Pair {
        Pair { soft, hard }
    }

    #[test]
    #[rustfmt::skip]
    fn open_files_raised_to_the_hard_limit_up_to_what_ovs_ctl_sets() {
        // (soft, hard) → (new soft, short of 65535)
        let table: &[((Size, Size), Size, bool)] = &[
            ((F(1024), F(4096)), F(4096), true),          // containerd 2 with a low hard limit
            ((F(1024), F(524_288)), F(65_535), false),    // containerd 2's default
            ((F(1024), U), F(65_535), false),
            ((F(65_535), F(65_535)), F(65_535), false),   // nothing to do
            ((F(4096), F(4096)), F(4096), true),          // nothing possible: still said
            ((F(1_048_576), F(1_048_576)), F(1_048_576), false), // containerd 1: never lowered
            ((F(100_000), U), F(100_000), false),
            ((F(0), F(0)), F(0), true),
        ];
        for &((soft, hard), want, short) in table {
            let p = open_files(pair(soft, hard));
            assert_eq!(p.soft, want, "{soft}:{hard}");
            assert_eq!(p.short_of, short.then_some(F(OPEN_FILES)), "{soft}:{hard}");
            assert!(p.soft <= hard, "{soft}:{hard}: above the hard limit");
            assert!(p.soft >= soft, "{soft}:{hard}: lowered");
        }
    }

    #[test]
    #[rustfmt::skip]
    fn core_set_to_the_wanted_size_within_the_hard_limit() {
        const GIB32: u64 = 32 << 30;
        // (soft, hard, wanted) → (new soft, short)
        let table: &[((Size, Size, Size), Size, bool)] = &[
            ((F(0), U, F(GIB32)), F(GIB32), false),       // the runtime's "no cores"
            ((F(0), F(1 << 20), F(GIB32)), F(1 << 20), true),
            ((U, U, F(GIB32)), F(GIB32), false),          // lowered to the operator's size
            ((F(GIB32), U, F(0)), F(0), false),           // 0 turns cores off
            ((F(0), U, U), U, false),
            ((F(0), F(0), F(3 << 20)), F(0), true),       // the host forbids cores
            ((F(5), F(5), F(5)), F(5), false),
        ];
        for &((soft, hard, wanted), want, short) in table {
            let p = core(pair(soft, hard), wanted);
            assert_eq!(p.soft, want, "{soft}:{hard} wanted {wanted}");
            assert_eq!(p.short_of, short.then_some(wanted), "{soft}:{hard} wanted {wanted}");
        }
    }

    #[test]
    fn unlimited_is_rlim_infinity_and_the_largest_size() {
        assert_eq!(Size::from_raw(RLIM_INFINITY), U);
        assert_eq!(U.raw(), RLIM_INFINITY);
        assert_eq!(Size::from_raw(7), F(7));
        assert!(F(u64::MAX - 1) < U);
        assert_eq!(U.to_string(), "unlimited");
    }
}

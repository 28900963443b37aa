//! Operations on our rule in one iptables program's `INPUT` chain: check, insert, delete by
//! spec, count, and delete every copy.
//!
//! Invariants: every call is `LOCK_WAIT OP INPUT SPEC` through the [`Runner`], never an index;
//! "absent" is recognised only by iptables' own answer for a missing rule, so any other failure
//! (no such chain, a module that cannot load) is an error naming the command; deleting every
//! copy is bounded by [`MAX_DELETES`].

use super::rule::{count_in_listing, rule_for, Change};
use super::runner::{Output, Runner, LOCK_WAIT};
use super::{Backend, Family, FirewallError, CHAIN, MAX_DELETES};
use crate::config::TunnelType;

/// iptables' answer to `-C`/`-D` for a rule that is not there: exit 1 with "Bad rule (does a
/// matching rule exist in that chain?)". Exit 1 with another message (no such chain, a module
/// that cannot load, `ip netns exec` failing to start the program) is a real error.
pub(super) fn is_absent(out: &Output) -> bool {
    let e = out.stderr.trim();
    out.code == Some(1)
        && (e.is_empty() || e.contains("does a matching rule exist") || e.contains("Bad rule"))
}

/// iptables-nft found the rule, but a concurrent writer deleted it before the kernel applied
/// our delete: exit 4, "RULE_DELETE failed (No such file or directory)". The rule is gone,
/// which is what we wanted.
pub(super) fn lost_delete_race(out: &Output) -> bool {
    out.code == Some(4)
        && out.stderr.contains("RULE_DELETE failed")
        && out.stderr.contains("No such file or directory")
}

/// One iptables program operating on our chain.
pub(super) struct Ipt<'a> {
    runner: &'a dyn Runner,
    pub(super) program: &'static str,
}

impl<'a> Ipt<'a> {
    pub(super) fn new(runner: &'a dyn Runner, backend: Backend, family: Family) -> Self {
        let program = backend.program(family);
        Ipt { runner, program }
    }

    /// Runs `-w 5 OP INPUT SPEC`: `(true, stdout)` on exit 0, `(false, stdout)` when `absent`
    /// accepts the answer, otherwise the error naming the command.
    fn op(
        &self,
        op: &str,
        spec: &[String],
        absent: fn(&Output) -> bool,
    ) -> Result<(bool, String), FirewallError> {
        let mut args: Vec<String> = LOCK_WAIT.iter().map(|w| w.to_string()).collect();
        args.extend([op.into(), CHAIN.into()]);
        args.extend(spec.iter().cloned());
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let program = self.program.to_string();
        match self.runner.run(&program, &argv) {
            Err(source) => Err(FirewallError::Run {
                program,
                args,
                source,
            }),
            Ok(out) if out.code == Some(0) => Ok((true, out.stdout)),
            Ok(out) if absent(&out) => Ok((false, out.stdout)),
            Ok(out) => Err(FirewallError::Failed {
                program,
                args,
                code: out.code,
                stderr: out.stderr,
            }),
        }
    }

    pub(super) fn check(&self, spec: &[String]) -> Result<bool, FirewallError> {
        Ok(self.op("-C", spec, is_absent)?.0)
    }

    /// `Ok(false)` when a concurrent writer deleted it between our check and our delete.
    pub(super) fn delete(&self, spec: &[String]) -> Result<bool, FirewallError> {
        Ok(self
            .op("-D", spec, |o| is_absent(o) || lost_delete_race(o))?
            .0)
    }

    pub(super) fn insert(&self, spec: &[String]) -> Result<(), FirewallError> {
        self.op("-I", spec, |_| false).map(drop)
    }

    pub(super) fn count(&self, spec: &[String]) -> Result<usize, FirewallError> {
        let (_, listing) = self.op("-S", &[], |_| false)?;
        Ok(count_in_listing(&listing, CHAIN, spec))
    }

    /// Deletes every copy of each tunnel's rule, by spec, noting what this call deleted.
    pub(super) fn remove_all(
        &self,
        family: Family,
        tunnels: impl Iterator<Item = TunnelType>,
        changes: &mut Vec<Change>,
    ) -> Result<(), FirewallError> {
        for rule in tunnels.map(rule_for) {
            let spec = rule.spec();
            let mut count = 0;
            let mut rounds = 0..MAX_DELETES;
            while self.check(&spec)? {
                if rounds.next().is_none() {
                    let comment = rule.comment();
                    let program = self.program.into();
                    return Err(FirewallError::StillPresent {
                        program,
                        comment,
                        deleted: count,
                    });
                }
                count += u32::from(self.delete(&spec)?);
            }
            if count > 0 {
                changes.push(Change::Removed {
                    family,
                    rule,
                    count,
                });
            }
        }
        Ok(())
    }
}

//! The one iptables rule that opens this node's tunnel port: `INPUT` accepts the encapsulation
//! of the configured tunnel type (geneve udp/6081, vxlan udp/4789, stt tcp/7471), and nothing
//! else of ours stays behind.
//!
//! Why: Kube-OVN opened udp/6081 whatever the tunnel type, deleted rules by index (indexes
//! shift under concurrent writers: "Index of deletion too big", or someone else's rule gone),
//! duplicated rules, and re-inserted its rules at the head of chains in a loop, fighting Calico
//! for the first position.
//!
//! Invariants:
//! - Every rule of ours carries the comment `ovs-ovn-supervisor: <tunnel> tunnel`; we only ever
//!   check, insert or delete that exact spec, in the filter table's `INPUT` chain. Other rules,
//!   chains and tables are never touched.
//! - Deletion is always by content (`-D INPUT <spec>`), never by index.
//! - Our rule is inserted at the head only when `-C` says it is absent. A rule that is present
//!   stays where it is, even if another CNI has since inserted above it.
//! - Exactly one copy remains: after inserting (or when an older run left duplicates) the rule's
//!   occurrences in `-S INPUT` are counted and extras deleted by spec, re-checked until exactly
//!   one remains, because two concurrent `-C`/`-I` pairs can both insert.
//! - Every call passes `-w 5` ([`LOCK_WAIT`]), iptables' own lock, so a concurrent legacy
//!   writer is waited for, but not forever; and every command is killed at a deadline
//!   ([`DEADLINE`]), so a hung iptables fails the start with an error naming it.
//! - Decisions (specs, `-S` parsing, backend choice, IPv6 detection) are pure; commands go
//!   through the narrow [`Runner`] trait so tests substitute a fake.
//!
//! Layout: the rule and its changes in `rule`, backend and family detection in `backend`,
//! running iptables in `runner`, operations on one program's chain in `chain`, keeping the
//! rule while the node runs in [`keep`], and here the two things callers do: [`ensure`] and
//! [`remove`]. For an uninstall, [`kubeovn`] removes Kube-OVN's chains and rules (and ours)
//! from every backend and family.

mod backend;
mod chain;
pub mod keep;
pub mod kubeovn;
mod rule;
mod runner;

use std::time::Duration;

use crate::config::TunnelType;
use chain::Ipt;

pub use backend::{choose_backend, detect_backend, has_global_ipv6, ipv6_wanted, Backend, Family};
pub use rule::{count_in_listing, rule_for, split_words, Change, Rule};
pub use runner::{HostRunner, Output, ReapedRunner, RunError, Runner, DEADLINE, LOCK_WAIT};

const CHAIN: &str = "INPUT";
const ALL_TUNNELS: [TunnelType; 3] = [TunnelType::Geneve, TunnelType::Vxlan, TunnelType::Stt];
/// Count-and-fix rounds before giving up on a chain another writer keeps changing.
const MAX_ROUNDS: u32 = 16;
/// Bound on "delete while present", so a misbehaving iptables cannot loop us forever.
const MAX_DELETES: u32 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    /// The command could not start, or missed its deadline and was killed.
    #[error("cannot run `{}`: {source}", command_line(program, args))]
    Run {
        program: String,
        args: Vec<String>,
        #[source]
        source: RunError,
    },
    #[error("`{}` failed ({}): {}", command_line(program, args), status_text(*code), stderr.trim())]
    Failed {
        program: String,
        args: Vec<String>,
        code: Option<i32>,
        stderr: String,
    },
    #[error("{program}: INPUT still holds {count} copies of {comment:?} after {MAX_ROUNDS} rounds; another writer keeps changing the chain")]
    NotConverged {
        program: String,
        comment: String,
        count: usize,
    },
    #[error("{program}: {comment:?} still in INPUT after deleting it {deleted} times")]
    StillPresent {
        program: String,
        comment: String,
        deleted: u32,
    },
}

/// What an operator can do about `e`, read from iptables' own words (untranslated: the
/// runners set `LC_ALL=C`).
pub fn hint(e: &FirewallError) -> &'static str {
    use crate::process::{bounded::BoundedError, ProcessError};
    match e {
        // Legacy iptables as a user that cannot create or open the lock (uid 65534 in a pod
        // that does not mount the host's lock): "Fatal: can't open lock file
        // /run/xtables.lock: Permission denied", exit 4.
        FirewallError::Failed { stderr, .. } if stderr.contains("xtables.lock") => {
            "legacy iptables cannot open its lock file: mount the host's /run/xtables.lock into the pod (as kube-proxy does), writable by the pod's user"
        }
        FirewallError::Failed { stderr, .. } if stderr.contains("Permission denied") => {
            "iptables needs CAP_NET_ADMIN in the pod"
        }
        FirewallError::Failed { .. } => "run the command above in the pod to see why",
        FirewallError::Run {
            source:
                RunError::Bounded(BoundedError::Spawn { .. })
                | RunError::Reaped(ProcessError::Spawn { .. }),
            ..
        } => "install iptables in the image",
        FirewallError::Run { .. } => "find what holds iptables up (the xtables lock, a hung nft)",
        FirewallError::NotConverged { .. } | FirewallError::StillPresent { .. } => {
            "another program keeps rewriting INPUT"
        }
    }
}

fn command_line(program: &str, args: &[String]) -> String {
    std::iter::once(program)
        .chain(args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

fn status_text(code: Option<i32>) -> String {
    match code {
        Some(c) => format!("exit status {c}"),
        None => "killed by a signal".to_string(),
    }
}

/// Makes `tunnel`'s rule present exactly once in each family's `INPUT` and removes our rules for
/// the other tunnel types. Returns what changed (empty when everything was already right).
pub fn ensure(
    r: &dyn Runner,
    backend: Backend,
    tunnel: TunnelType,
    families: &[Family],
) -> Result<Vec<Change>, FirewallError> {
    let wanted = rule_for(tunnel);
    let mut changes = Vec::new();
    for &family in families {
        let ipt = Ipt::new(r, backend, family);
        // The wanted rule first: if removing the others then fails, the port this node needs
        // is already open.
        changes.extend(ensure_one(&ipt, family, wanted.clone())?);
        let others = ALL_TUNNELS.into_iter().filter(|&t| t != tunnel);
        ipt.remove_all(family, others, &mut changes)?;
    }
    Ok(changes)
}

fn ensure_one(ipt: &Ipt<'_>, family: Family, rule: Rule) -> Result<Vec<Change>, FirewallError> {
    let spec = rule.spec();
    let mut inserts = 0;
    if !ipt.check(&spec)? {
        ipt.insert(&spec)?;
        inserts += 1;
    }
    let (mut removed, mut count) = (0, 0);
    for round in 0..MAX_ROUNDS {
        if round > 0 {
            // Two runs that both inserted may both delete a copy and see none; a random pause
            // breaks that symmetry so one of them finds the rule settled. It grows with the
            // rounds: on a loaded host one legacy ip6tables call took longer than a fixed
            // 1-10 ms pause, three runs stayed in step for all 16 rounds, and two of them
            // gave up with no copy left (a CI run of `firewall_netns::legacy_ipv6`).
            let cap = 10u64 << round.min(5);
            std::thread::sleep(Duration::from_millis(fastrand::u64(1..=cap)));
        }
        count = ipt.count(&spec)?;
        match count {
            1 => break,
            0 if ipt.check(&spec)? => {
                // -C finds it but -S does not print it our way (another iptables version's
                // spelling): copies cannot be counted, so trust -C.
                tracing::warn!(program = ipt.program, rule = ?spec, "our rule is present but `-S` prints it differently; duplicates cannot be detected");
                count = 1;
                break;
            }
            // A concurrent run deleted the copy we relied on.
            0 => {
                ipt.insert(&spec)?;
                inserts += 1;
            }
            _ => removed += u32::from(ipt.delete(&spec)?),
        }
    }
    if count != 1 {
        let (program, comment) = (ipt.program.into(), rule.comment());
        return Err(FirewallError::NotConverged {
            program,
            comment,
            count,
        });
    }
    let mut changes = vec![
        Change::Inserted {
            family,
            rule: rule.clone()
        };
        inserts
    ];
    if removed > 0 {
        changes.push(Change::Removed {
            family,
            rule,
            count: removed,
        });
    }
    Ok(changes)
}

/// Deletes every rule of ours (all tunnel types, every copy, by spec) from each family's
/// `INPUT`. Other rules are untouched.
pub fn remove(
    r: &dyn Runner,
    backend: Backend,
    families: &[Family],
) -> Result<Vec<Change>, FirewallError> {
    let mut changes = Vec::new();
    for &family in families {
        let ipt = Ipt::new(r, backend, family);
        ipt.remove_all(family, ALL_TUNNELS.into_iter(), &mut changes)?;
    }
    Ok(changes)
}

#[cfg(test)]
mod fake;

#[cfg(test)]
mod tests;

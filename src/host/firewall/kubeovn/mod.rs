//! Removing Kube-OVN's iptables chains and rules, and our tunnel port rule, from every backend
//! (legacy, nft) and family (IPv4, IPv6) that holds them: what Kube-OVN's `uninstall.sh` does
//! with a fixed list of `iptables -D/-F/-X` lines, done by content from what each `*-save`
//! shows, so rules its newer kube-ovn-cni adds go too and a missing one is no error.
//!
//! Invariants:
//! - Only what [`owner::owner`] says is Kube-OVN's or ours is deleted, each by the spec its
//!   save printed (`-t TABLE -D CHAIN SPEC`, never an index), and only from the kernel's own
//!   chains; Kube-OVN's chains ([`owner::is_kube_ovn_chain`]) are flushed, then deleted by
//!   name. Another CNI's rules and chains are never touched: a chain of someone else's that
//!   still jumps into a Kube-OVN chain makes its deletion fail, and the error names it.
//! - A backend whose save program is not installed, or whose kernel support is absent, holds
//!   nothing and is skipped; one we cannot read is an error naming it, never "nothing there".
//! - Reading creates no table: the save programs dump what exists. The one exception is
//!   legacy's per-table fallback, for a reader that may not list the table names
//!   (`/proc/net/ip_tables_names` is root's, and the pod runs as uid 65534): it asks only for
//!   tables whose kernel module is loaded or built in.
//! - Done is checked by reading again: a round that leaves anything of Kube-OVN's or ours is
//!   followed by another, up to [`ROUNDS`], then an error naming what remains.
//!
//! Layout: the save format in `save`, whose rule and chain is what in `owner`, here the plan
//! (pure) and carrying it out.

pub mod owner;
pub mod save;

use std::path::Path;

use super::chain::{is_absent, lost_delete_race};
use super::{Backend, Family, FirewallError, Output, RunError, Runner, LOCK_WAIT};
use crate::host::preflight::modules::{self, Facts, State};
use crate::process::bounded::BoundedError;
use owner::Owner;
use save::Table;

/// Rounds of "delete, read again" before what remains is an error.
pub const ROUNDS: usize = 3;

const TABLES: [&str; 3] = ["filter", "nat", "mangle"];

#[derive(Debug, thiserror::Error)]
pub enum CleanError {
    #[error(transparent)]
    Command(#[from] FirewallError),
    #[error("{program}: still there after {ROUNDS} rounds (does another writer add them back?): {remaining}")]
    Remains {
        program: &'static str,
        remaining: String,
    },
}

/// One change to carry out, by content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `-t TABLE -D CHAIN SPEC`: a rule of Kube-OVN's (or ours) in a chain of the kernel's.
    Delete {
        table: String,
        chain: String,
        spec: Vec<String>,
        owner: Owner,
    },
    /// `-t TABLE -F CHAIN`: one of Kube-OVN's chains emptied.
    Flush { table: String, chain: String },
    /// `-t TABLE -X CHAIN`: one of Kube-OVN's chains deleted.
    DeleteChain { table: String, chain: String },
}

impl Op {
    fn args(&self) -> Vec<String> {
        let mut a: Vec<String> = LOCK_WAIT.iter().map(|w| w.to_string()).collect();
        let (table, flag, chain) = match self {
            Op::Delete { table, chain, .. } => (table, "-D", chain),
            Op::Flush { table, chain } => (table, "-F", chain),
            Op::DeleteChain { table, chain } => (table, "-X", chain),
        };
        a.extend(["-t".into(), table.clone(), flag.into(), chain.clone()]);
        if let Op::Delete { spec, .. } = self {
            a.extend(spec.iter().cloned());
        }
        a
    }

    /// iptables' answer that the rule or chain is not there (any more): a concurrent writer,
    /// or a rule listed twice and deleted once already.
    fn gone(&self, out: &Output) -> bool {
        match self {
            Op::Delete { .. } => is_absent(out) || lost_delete_race(out),
            Op::Flush { .. } | Op::DeleteChain { .. } => {
                out.code == Some(1) && out.stderr.contains("No chain/target/match by that name")
            }
        }
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Op::Delete {
                table,
                chain,
                spec,
                owner,
            } => {
                let whose = match owner {
                    Owner::KubeOvn => "Kube-OVN's",
                    Owner::Us => "our",
                };
                write!(f, "deleted {whose} rule {table} {chain} {}", spec.join(" "))
            }
            Op::Flush { table, chain } => write!(f, "flushed Kube-OVN's chain {table} {chain}"),
            Op::DeleteChain { table, chain } => {
                write!(f, "deleted Kube-OVN's chain {table} {chain}")
            }
        }
    }
}

/// What to do to `tables` (one backend and family): rule deletions first (they may jump into
/// Kube-OVN's chains), then every Kube-OVN chain flushed (they jump into each other), then
/// deleted.
pub fn plan(tables: &[Table]) -> Vec<Op> {
    let mut ops = Vec::new();
    for t in tables {
        for (chain, spec) in &t.rules {
            if !t.builtin.contains(chain) {
                continue;
            }
            if let Some(owner) = owner::owner(&t.name, chain, spec) {
                ops.push(Op::Delete {
                    table: t.name.clone(),
                    chain: chain.clone(),
                    spec: spec.clone(),
                    owner,
                });
            }
        }
    }
    let chains: Vec<(&str, &str)> = (tables.iter())
        .flat_map(|t| t.user.iter().map(move |c| (t.name.as_str(), c.as_str())))
        .filter(|(t, c)| owner::is_kube_ovn_chain(t, c))
        .collect();
    let owned = |(t, c): &(&str, &str)| (t.to_string(), c.to_string());
    ops.extend(
        chains
            .iter()
            .map(owned)
            .map(|(table, chain)| Op::Flush { table, chain }),
    );
    ops.extend((chains.iter().map(owned)).map(|(table, chain)| Op::DeleteChain { table, chain }));
    ops
}

/// Which iptables tables this kernel can hold, from its modules (the preflight's evidence).
pub struct Kernel {
    facts: Facts,
}

impl Kernel {
    /// Reads the module evidence under `host_root`.
    pub fn read(host_root: &Path) -> Kernel {
        let release = std::fs::read_to_string(host_root.join("proc/sys/kernel/osrelease"))
            .ok()
            .map(|r| r.trim().to_string());
        let names = [
            "nf_tables",
            "ip_tables",
            "ip6_tables",
            "iptable_filter",
            "iptable_nat",
            "iptable_mangle",
            "ip6table_filter",
            "ip6table_nat",
            "ip6table_mangle",
        ];
        Kernel {
            facts: modules::gather(host_root, release.as_deref(), &names),
        }
    }

    pub fn from_facts(facts: Facts) -> Kernel {
        Kernel { facts }
    }

    /// False only when the kernel can load modules and `module` is neither loaded nor built
    /// in: then nothing of it can hold a rule. Without module support, built-in code need not
    /// show anywhere, so anything may be there.
    pub fn may_have(&self, module: &str) -> bool {
        self.facts.loaded.is_none()
            || matches!(
                modules::state(module, &self.facts),
                State::Loaded | State::BuiltIn(_)
            )
    }
}

fn save_program(b: Backend, f: Family) -> &'static str {
    match (b, f) {
        (Backend::Legacy, Family::V4) => "iptables-legacy-save",
        (Backend::Legacy, Family::V6) => "ip6tables-legacy-save",
        (Backend::Nft, Family::V4) => "iptables-nft-save",
        (Backend::Nft, Family::V6) => "ip6tables-nft-save",
    }
}

/// The kernel module without which the backend holds nothing; and one per legacy table.
fn backend_module(b: Backend, f: Family) -> &'static str {
    match (b, f) {
        (Backend::Nft, _) => "nf_tables",
        (Backend::Legacy, Family::V4) => "ip_tables",
        (Backend::Legacy, Family::V6) => "ip6_tables",
    }
}

fn table_module(f: Family, table: &str) -> String {
    match f {
        Family::V4 => format!("iptable_{table}"),
        Family::V6 => format!("ip6table_{table}"),
    }
}

/// What one backend and family showed.
#[derive(Debug)]
enum Dump {
    Tables(Vec<Table>),
    /// Nothing can be there; why.
    Absent(&'static str),
}

fn not_installed(e: &RunError) -> bool {
    matches!(e, RunError::Bounded(BoundedError::Spawn { source, .. })
        if source.kind() == std::io::ErrorKind::NotFound)
}

fn failed(program: &str, args: &[&str], out: Output) -> FirewallError {
    FirewallError::Failed {
        program: program.into(),
        args: args.iter().map(|a| a.to_string()).collect(),
        code: out.code,
        stderr: out.stderr,
    }
}

fn dump(r: &dyn Runner, b: Backend, f: Family, k: &Kernel) -> Result<Dump, FirewallError> {
    let program = save_program(b, f);
    let out = match r.run(program, &[]) {
        Err(e) if not_installed(&e) => return Ok(Dump::Absent("not installed")),
        Err(source) => {
            let (program, args) = (program.into(), vec![]);
            return Err(FirewallError::Run {
                program,
                args,
                source,
            });
        }
        Ok(out) => out,
    };
    if out.code == Some(0) {
        return Ok(Dump::Tables(save::parse(&out.stdout)));
    }
    if !k.may_have(backend_module(b, f)) {
        return Ok(Dump::Absent("the kernel has no such tables"));
    }
    if b == Backend::Nft {
        return Err(failed(program, &[], out));
    }
    // Legacy, not allowed to list the table names: each table whose module is there, by name.
    let mut tables = Vec::new();
    for t in TABLES.iter().filter(|t| k.may_have(&table_module(f, t))) {
        let args = ["-t", t];
        let out = r.run(program, &args).map_err(|source| FirewallError::Run {
            program: program.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            source,
        })?;
        if out.code != Some(0) {
            return Err(failed(program, &args, out));
        }
        tables.extend(save::parse(&out.stdout));
    }
    Ok(Dump::Tables(tables))
}

fn carry_out(r: &dyn Runner, program: &'static str, op: &Op) -> Result<bool, FirewallError> {
    let args = op.args();
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    match r.run(program, &argv) {
        Err(source) => Err(FirewallError::Run {
            program: program.into(),
            args,
            source,
        }),
        Ok(out) if out.code == Some(0) => Ok(true),
        Ok(out) if op.gone(&out) => Ok(false),
        Ok(out) => Err(failed(program, &argv, out)),
    }
}

/// What [`remove`] did, per backend and family.
#[derive(Debug, Default)]
pub struct Outcome {
    /// `(program, what)` for every change made.
    pub removed: Vec<(&'static str, Op)>,
    /// `(program, why)` for every backend and family that holds nothing.
    pub skipped: Vec<(&'static str, &'static str)>,
    pub errors: Vec<CleanError>,
}

/// Removes Kube-OVN's chains and rules and our tunnel port rule from every backend and family,
/// going on after a failure so every failure is reported.
pub fn remove(r: &dyn Runner, k: &Kernel) -> Outcome {
    let mut outcome = Outcome::default();
    for b in [Backend::Nft, Backend::Legacy] {
        for f in [Family::V4, Family::V6] {
            if let Err(e) = remove_one(r, b, f, k, &mut outcome) {
                outcome.errors.push(e);
            }
        }
    }
    outcome
}

fn remove_one(
    r: &dyn Runner,
    b: Backend,
    f: Family,
    k: &Kernel,
    outcome: &mut Outcome,
) -> Result<(), CleanError> {
    let program = b.program(f);
    let mut ops = match dump(r, b, f, k)? {
        Dump::Absent(why) => {
            outcome.skipped.push((program, why));
            return Ok(());
        }
        Dump::Tables(t) => plan(&t),
    };
    for _ in 0..ROUNDS {
        if ops.is_empty() {
            return Ok(());
        }
        for op in ops {
            if carry_out(r, program, &op)? {
                outcome.removed.push((program, op));
            }
        }
        ops = match dump(r, b, f, k)? {
            Dump::Tables(t) => plan(&t),
            Dump::Absent(_) => Vec::new(),
        };
    }
    if ops.is_empty() {
        return Ok(());
    }
    let remaining: Vec<String> = ops.iter().map(Op::to_string).collect();
    Err(CleanError::Remains {
        program,
        remaining: remaining.join("; "),
    })
}

#[cfg(test)]
mod tests;

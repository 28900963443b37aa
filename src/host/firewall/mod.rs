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
//! - Every call passes `-w`, iptables' own lock, so a concurrent legacy writer is waited for.
//! - Decisions (specs, `-S` parsing, backend choice, IPv6 detection) are pure; commands go
//!   through the narrow [`Runner`] trait so tests substitute a fake.

use std::io;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::config::TunnelType;

const CHAIN: &str = "INPUT";
const COMMENT_PREFIX: &str = "ovs-ovn-supervisor: ";
const ALL_TUNNELS: [TunnelType; 3] = [TunnelType::Geneve, TunnelType::Vxlan, TunnelType::Stt];
/// Count-and-fix rounds before giving up on a chain another writer keeps changing.
const MAX_ROUNDS: u32 = 16;
/// Bound on "delete while present", so a misbehaving iptables cannot loop us forever.
const MAX_DELETES: u32 = 1000;
/// Chains kubelet and kube-proxy create in the backend they use (kubernetes-sigs/iptables-wrapper).
const KUBE_HINT_CHAINS: [&str; 2] = ["KUBE-IPTABLES-HINT", "KUBE-KUBELET-CANARY"];

/// One rule of ours: accept the given tunnel's encapsulation on `INPUT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub proto: &'static str,
    pub port: u16,
    pub tunnel: TunnelType,
}

pub fn rule_for(t: TunnelType) -> Rule {
    let (proto, port) = match t {
        TunnelType::Geneve => ("udp", 6081),
        TunnelType::Vxlan => ("udp", 4789),
        TunnelType::Stt => ("tcp", 7471),
    };
    Rule {
        proto,
        port,
        tunnel: t,
    }
}

impl Rule {
    pub fn comment(&self) -> String {
        format!("{COMMENT_PREFIX}{} tunnel", self.tunnel.as_str())
    }

    /// The rule's arguments exactly as `iptables -S` prints them back (with the implicit
    /// `-m <proto>` spelled out), so `-C`, `-D` and our `-S` count all match by content.
    pub fn spec(&self) -> Vec<String> {
        let (p, port) = (self.proto, self.port);
        let mut spec: Vec<String> = format!("-p {p} -m {p} --dport {port} -m comment --comment")
            .split(' ')
            .map(String::from)
            .collect();
        spec.extend([self.comment(), "-j".into(), "ACCEPT".into()]);
        spec
    }
}

/// What a finished command said.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output {
    /// `None` when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs one program to completion. `Err` only when it could not be started.
pub trait Runner {
    fn run(&self, program: &str, args: &[&str]) -> io::Result<Output>;
}

/// Runs programs on this host, or inside the named network namespace (`ip netns exec`).
///
/// Invariant: uses `std::process::Command::output`, which waits for its own child. That is only
/// safe where no reaper thread calls `waitpid(-1)`: before the supervisor starts its reaper, or
/// from the CLI. Once the reaper runs, commands must go through it (see `process`).
#[derive(Debug, Clone, Default)]
pub struct HostRunner {
    pub netns: Option<String>,
}

impl Runner for HostRunner {
    fn run(&self, program: &str, args: &[&str]) -> io::Result<Output> {
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, program]);
                c
            }
            None => Command::new(program),
        };
        // We match iptables' messages ("Bad rule"), so keep them untranslated.
        cmd.args(args).env("LC_ALL", "C").stdin(Stdio::null());
        let out = cmd.output()?;
        Ok(Output {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// Which of the two iptables implementations the node's other components use. Mixing them
/// leaves two rule sets the kernel evaluates separately, so we follow the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Legacy,
    Nft,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Backend {
    pub fn program(self, family: Family) -> &'static str {
        match (self, family) {
            (Backend::Legacy, Family::V4) => "iptables-legacy",
            (Backend::Legacy, Family::V6) => "ip6tables-legacy",
            (Backend::Nft, Family::V4) => "iptables-nft",
            (Backend::Nft, Family::V6) => "ip6tables-nft",
        }
    }

    fn save_program(self) -> &'static str {
        match self {
            Backend::Legacy => "iptables-legacy-save",
            Backend::Nft => "iptables-nft-save",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Inserted {
        family: Family,
        rule: Rule,
    },
    /// `count` copies deleted by spec: another tunnel type's rule, or duplicates of ours.
    Removed {
        family: Family,
        rule: Rule,
        count: u32,
    },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let table = |family: &Family| match family {
            Family::V4 => "iptables",
            Family::V6 => "ip6tables",
        };
        match self {
            Change::Inserted { family, rule } => write!(
                f,
                "inserted the INPUT accept rule for {} ({}/{}) in {}",
                rule.tunnel.as_str(),
                rule.proto,
                rule.port,
                table(family)
            ),
            Change::Removed {
                family,
                rule,
                count,
            } => write!(
                f,
                "removed {count} INPUT accept rule(s) for {} ({}/{}) from {}",
                rule.tunnel.as_str(),
                rule.proto,
                rule.port,
                table(family)
            ),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error("cannot run `{}`: {source}", command_line(program, args))]
    Spawn {
        program: String,
        args: Vec<String>,
        #[source]
        source: io::Error,
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

/// Chooses the backend the way kubernetes-sigs/iptables-wrapper does: the one where kubelet's
/// hint chains exist (nft first), else the one holding more rules, ties to nft (Debian 12's
/// default). When only one save program runs (exit 0), it wins; when neither does, nft.
pub fn detect_backend(r: &dyn Runner) -> Backend {
    let save = |b: Backend| -> Option<String> {
        match r.run(b.save_program(), &[]) {
            Ok(out) if out.code == Some(0) => Some(out.stdout),
            _ => None,
        }
    };
    let (nft, legacy) = (save(Backend::Nft), save(Backend::Legacy));
    match (&nft, &legacy) {
        (Some(_), None) => return Backend::Nft,
        (None, Some(_)) => return Backend::Legacy,
        _ => {}
    }
    let (nft, legacy) = (nft.unwrap_or_default(), legacy.unwrap_or_default());
    choose_backend(&nft, &legacy)
}

/// The pure half of [`detect_backend`], on the two save outputs.
pub fn choose_backend(nft_save: &str, legacy_save: &str) -> Backend {
    if has_kube_hint(nft_save) {
        return Backend::Nft;
    }
    let legacy = has_kube_hint(legacy_save) || count_rules(legacy_save) > count_rules(nft_save);
    if legacy {
        Backend::Legacy
    } else {
        Backend::Nft
    }
}

fn has_kube_hint(save: &str) -> bool {
    // The hints are chains: `:KUBE-IPTABLES-HINT - [0:0]`. Matching the declaration, not any
    // substring, keeps a comment that merely mentions the name from deciding.
    save.lines().any(|l| {
        l.strip_prefix(':')
            .and_then(|l| l.split_whitespace().next())
            .is_some_and(|chain| KUBE_HINT_CHAINS.contains(&chain))
    })
}

fn count_rules(save: &str) -> usize {
    save.lines().filter(|l| l.starts_with("-A")).count()
}

/// Splits one `iptables -S` line into words, undoing iptables' save quoting (`"..."` with `\"`
/// and `\\` escaped). `None` on an unterminated quote: such a line is not ours.
pub fn split_words(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(first) = chars.next() else {
            return Some(words);
        };
        let mut word = String::new();
        if first == '"' {
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => word.push(chars.next()?),
                    c => word.push(c),
                }
            }
        } else {
            word.push(first);
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                word.push(c);
            }
        }
        words.push(word);
    }
}

/// How many lines of an `iptables -S CHAIN` listing are `-A CHAIN <spec>`.
pub fn count_in_listing(listing: &str, chain: &str, spec: &[String]) -> usize {
    listing
        .lines()
        .filter_map(split_words)
        .filter(|w| w.len() == spec.len() + 2 && w[0] == "-A" && w[1] == chain && w[2..] == *spec)
        .count()
}

/// iptables' answer to `-C`/`-D` for a rule that is not there: exit 1 with "Bad rule (does a
/// matching rule exist in that chain?)". Exit 1 with another message (no such chain, a module
/// that cannot load, `ip netns exec` failing to start the program) is a real error.
fn is_absent(out: &Output) -> bool {
    let e = out.stderr.trim();
    out.code == Some(1)
        && (e.is_empty() || e.contains("does a matching rule exist") || e.contains("Bad rule"))
}

/// iptables-nft found the rule, but a concurrent writer deleted it before the kernel applied
/// our delete: exit 4, "RULE_DELETE failed (No such file or directory)". The rule is gone,
/// which is what we wanted.
fn lost_delete_race(out: &Output) -> bool {
    out.code == Some(4)
        && out.stderr.contains("RULE_DELETE failed")
        && out.stderr.contains("No such file or directory")
}

/// One iptables program operating on our chain.
struct Ipt<'a> {
    runner: &'a dyn Runner,
    program: &'static str,
}

impl<'a> Ipt<'a> {
    fn new(runner: &'a dyn Runner, backend: Backend, family: Family) -> Self {
        let program = backend.program(family);
        Ipt { runner, program }
    }

    /// Runs `-w OP INPUT SPEC`: `(true, stdout)` on exit 0, `(false, stdout)` when `absent`
    /// accepts the answer, otherwise the error naming the command.
    fn op(
        &self,
        op: &str,
        spec: &[String],
        absent: fn(&Output) -> bool,
    ) -> Result<(bool, String), FirewallError> {
        let mut args: Vec<String> = vec!["-w".into(), op.into(), CHAIN.into()];
        args.extend(spec.iter().cloned());
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let program = self.program.to_string();
        match self.runner.run(&program, &argv) {
            Err(source) => Err(FirewallError::Spawn {
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

    fn check(&self, spec: &[String]) -> Result<bool, FirewallError> {
        Ok(self.op("-C", spec, is_absent)?.0)
    }

    /// `Ok(false)` when a concurrent writer deleted it between our check and our delete.
    fn delete(&self, spec: &[String]) -> Result<bool, FirewallError> {
        Ok(self
            .op("-D", spec, |o| is_absent(o) || lost_delete_race(o))?
            .0)
    }

    fn insert(&self, spec: &[String]) -> Result<(), FirewallError> {
        self.op("-I", spec, |_| false).map(drop)
    }

    fn count(&self, spec: &[String]) -> Result<usize, FirewallError> {
        let (_, listing) = self.op("-S", &[], |_| false)?;
        Ok(count_in_listing(&listing, CHAIN, spec))
    }

    /// Deletes every copy of each tunnel's rule, by spec, noting what this call deleted.
    fn remove_all(
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
            // breaks that symmetry so one of them finds the rule settled.
            std::thread::sleep(Duration::from_millis(fastrand::u64(1..=10)));
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

/// Whether the node may carry IPv6 tunnel traffic: `proc/net/if_inet6` under `host_root` lists
/// a global-scope address other than `::1`. A missing or unreadable file means no IPv6.
pub fn ipv6_wanted(host_root: &Path) -> bool {
    std::fs::read_to_string(host_root.join("proc/net/if_inet6"))
        .map(|text| has_global_ipv6(&text))
        .unwrap_or(false)
}

/// The pure half of [`ipv6_wanted`]. Each line is `ADDR(32 hex) IFINDEX PREFIXLEN SCOPE FLAGS
/// NAME`, all hex; scope `00` is global, `10` host, `20` link.
pub fn has_global_ipv6(if_inet6: &str) -> bool {
    const LOOPBACK: &str = "00000000000000000000000000000001";
    if_inet6.lines().any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        f.len() >= 4 && f[0].len() == 32 && !f[0].eq_ignore_ascii_case(LOOPBACK) && f[3] == "00"
    })
}

#[cfg(test)]
mod tests;

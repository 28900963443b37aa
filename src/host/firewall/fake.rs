//! A fake iptables for the unit tests: one `INPUT` chain per program, modelled closely enough
//! for `-C/-I/-D/-S` (insert at the head, delete the first match, `-S` quoted the way iptables
//! quotes), recording every call; plus the rules the tests use.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::io;

use super::{rule_for, Change, Family, Output, RunError, Runner, ALL_TUNNELS, DEADLINE, LOCK_WAIT};
use crate::config::TunnelType::{self, Geneve, Stt, Vxlan};
use crate::process::bounded::BoundedError;

pub(super) fn words(s: &[&str]) -> Vec<String> {
    s.iter().map(|w| w.to_string()).collect()
}

const BAD_RULE: &str = "iptables: Bad rule (does a matching rule exist in that chain?).\n";
const NFT_RACE: &str = "iptables v1.8.9 (nf_tables):  RULE_DELETE failed (No such file or directory): rule in chain INPUT\n";

type Hook = Box<dyn FnOnce(&mut Vec<Vec<String>>)>;

/// A fake iptables: one `INPUT` chain per program, modelled closely enough for `-C/-I/-D/-S`
/// (insert at the head, delete the first match, `-S` quoted the way iptables quotes).
#[derive(Default)]
pub(super) struct Fake {
    pub(super) chains: RefCell<HashMap<String, Vec<Vec<String>>>>,
    pub(super) calls: RefCell<Vec<(String, Vec<String>)>>,
    /// Programs that give this answer to every call instead of the model's.
    pub(super) scripted: HashMap<&'static str, Output>,
    /// Programs that do not exist (spawn fails).
    pub(super) missing: Vec<&'static str>,
    /// Programs that hang until killed at `deadline`.
    pub(super) hung: Vec<&'static str>,
    /// `*-save` outputs; a save program not listed is missing.
    pub(super) saves: HashMap<&'static str, String>,
    /// One-shot hooks (a concurrent writer), each run on the chain just before the first
    /// later call with that op.
    pub(super) hooks: RefCell<VecDeque<(&'static str, Hook)>>,
    /// `-S` spells rules differently from our spec (another iptables version).
    pub(super) odd_listing: bool,
    /// `-D` answers success but deletes nothing.
    pub(super) sticky: bool,
    /// `-D` of a missing rule answers like iptables-nft losing a race (exit 4), not exit 1.
    pub(super) nft_race: bool,
}

impl Fake {
    pub(super) fn with(program: &str, rules: &[Vec<String>]) -> Fake {
        let f = Fake::default();
        f.chains.borrow_mut().insert(program.into(), rules.to_vec());
        f
    }

    pub(super) fn chain(&self, program: &str) -> Vec<Vec<String>> {
        self.chains
            .borrow()
            .get(program)
            .cloned()
            .unwrap_or_default()
    }

    pub(super) fn ops(&self) -> Vec<String> {
        let calls = self.calls.borrow();
        calls
            .iter()
            .map(|(_, a)| a.get(2).cloned().unwrap_or_default())
            .collect()
    }

    pub(super) fn hook(&self, op: &'static str, f: impl FnOnce(&mut Vec<Vec<String>>) + 'static) {
        self.hooks.borrow_mut().push_back((op, Box::new(f)));
    }

    /// Every mutation must be by content: never `-D INPUT 3`, never `-I INPUT 1 ...`.
    pub(super) fn assert_by_content(&self) {
        for (prog, args) in self.calls.borrow().iter() {
            if prog.ends_with("-save") {
                continue;
            }
            assert_eq!(args[..2], LOCK_WAIT, "no bounded lock wait: {args:?}");
            if matches!(args[2].as_str(), "-D" | "-I" | "-C") {
                assert_eq!(args[3], "INPUT");
                let spec = &args[4..];
                assert!(spec.len() > 1, "{prog} {args:?}");
                assert!(
                    spec[0].parse::<u32>().is_err(),
                    "index used: {prog} {args:?}"
                );
                let ours = ALL_TUNNELS.iter().any(|&t| rule_for(t).spec() == spec);
                assert!(ours, "touched a rule not ours: {args:?}");
            }
        }
    }
}

/// iptables' own save quoting (xtables_save_string).
pub(super) fn quote(w: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if !w.is_empty() && w.chars().all(plain) {
        return w.to_string();
    }
    let mut s = String::from("\"");
    for c in w.chars() {
        if matches!(c, '"' | '\\' | '\'') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

pub(super) fn output(code: Option<i32>, stdout: String, stderr: &str) -> Output {
    let stderr = stderr.to_string();
    Output {
        code,
        stdout,
        stderr,
    }
}

fn ok(stdout: String) -> Result<Output, RunError> {
    Ok(output(Some(0), stdout, ""))
}

impl Runner for Fake {
    fn run(&self, program: &str, args: &[&str]) -> Result<Output, RunError> {
        self.calls.borrow_mut().push((program.into(), words(args)));
        if self.missing.contains(&program) {
            return Err(not_found(program));
        }
        if self.hung.contains(&program) {
            let (program, deadline) = (program.to_string(), DEADLINE);
            return Err(BoundedError::Deadline { program, deadline }.into());
        }
        if let Some(out) = self.scripted.get(program) {
            return Ok(out.clone());
        }
        if program.ends_with("-save") {
            return match self.saves.get(program) {
                Some(s) => ok(s.clone()),
                None => Err(not_found(program)),
            };
        }
        let (op, spec) = (args[2], words(&args[4..]));
        let mut chains = self.chains.borrow_mut();
        let chain = chains.entry(program.into()).or_default();
        let due = self.hooks.borrow().front().is_some_and(|(o, _)| *o == op);
        if due {
            let (_, hook) = self.hooks.borrow_mut().pop_front().unwrap();
            hook(chain);
        }
        let pos = chain.iter().position(|r| *r == spec);
        match (op, pos) {
            ("-C", Some(_)) => ok(String::new()),
            ("-D", None) if self.nft_race => Ok(output(Some(4), String::new(), NFT_RACE)),
            ("-C" | "-D", None) => Ok(output(Some(1), String::new(), BAD_RULE)),
            ("-D", Some(i)) => {
                if !self.sticky {
                    chain.remove(i);
                }
                ok(String::new())
            }
            ("-I", _) => {
                chain.insert(0, spec);
                ok(String::new())
            }
            ("-S", _) => {
                let line = |r: &Vec<String>| {
                    let line = format!(
                        "-A INPUT {}\n",
                        r.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
                    );
                    if self.odd_listing {
                        line.replace(" -m udp", "")
                    } else {
                        line
                    }
                };
                ok("-P INPUT ACCEPT\n".to_string() + &chain.iter().map(line).collect::<String>())
            }
            _ => panic!("fake iptables: unexpected {program} {args:?}"),
        }
    }
}

pub(super) fn geneve() -> Vec<String> {
    rule_for(Geneve).spec()
}
pub(super) fn vxlan() -> Vec<String> {
    rule_for(Vxlan).spec()
}
pub(super) fn stt() -> Vec<String> {
    rule_for(Stt).spec()
}
pub(super) fn calico() -> Vec<String> {
    words(&["-m", "comment", "--comment", "cali:xyz", "-j", "ACCEPT"])
}
pub(super) fn drop_22() -> Vec<String> {
    words(&["-p", "tcp", "-m", "tcp", "--dport", "22", "-j", "DROP"])
}
pub(super) fn inserted(family: Family, t: TunnelType) -> Change {
    Change::Inserted {
        family,
        rule: rule_for(t),
    }
}
pub(super) fn removed(family: Family, t: TunnelType, count: u32) -> Change {
    Change::Removed {
        family,
        rule: rule_for(t),
        count,
    }
}

/// What a program that does not exist gives.
fn not_found(program: &str) -> RunError {
    let (program, source) = (
        program.to_string(),
        io::Error::from(io::ErrorKind::NotFound),
    );
    BoundedError::Spawn { program, source }.into()
}

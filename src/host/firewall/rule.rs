//! Our rule as data: its iptables spec per tunnel type, how `iptables -S` prints it back, and
//! the [`Change`]s `ensure`/`remove` report.
//!
//! Invariants: pure; [`Rule::spec`] is exactly what `iptables -S` prints for the rule, so
//! `-C`, `-D` and counting in a listing all match by content; a listing line we cannot parse
//! (an unterminated quote) is never counted as ours.

use super::backend::Family;
use crate::config::TunnelType;

const COMMENT_PREFIX: &str = "ovs-ovn-supervisor: ";

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

#[cfg(test)]
mod tests;

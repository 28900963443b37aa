//! `iptables-save` output as data: each table's chains (built-in ones with their policy, user
//! chains with `-`) and its rules in order, each as the words after `-A CHAIN`.
//!
//! Invariants: pure; a rule line whose quoting does not parse is kept as unparsable (never
//! matched, so never deleted); lines outside a `*table ... COMMIT` block, comments and
//! counters are ignored.

use super::super::rule::split_words;

/// One table of a save.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Table {
    pub name: String,
    /// Chains with a policy (`:INPUT ACCEPT [0:0]`): the kernel's own.
    pub builtin: Vec<String>,
    /// Chains declared with `-` (`:OVN-PREROUTING - [0:0]`).
    pub user: Vec<String>,
    /// `(chain, spec)` in save order; the spec is what follows `-A CHAIN`.
    pub rules: Vec<(String, Vec<String>)>,
}

/// Parses a whole `*-save` output (any number of tables).
pub fn parse(text: &str) -> Vec<Table> {
    let mut tables = Vec::new();
    let mut current: Option<Table> = None;
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('*') {
            current = Some(Table {
                name: name.to_string(),
                ..Table::default()
            });
            continue;
        }
        let Some(t) = current.as_mut() else {
            continue;
        };
        if line == "COMMIT" {
            tables.extend(current.take());
        } else if let Some(decl) = line.strip_prefix(':') {
            let mut w = decl.split_whitespace();
            if let (Some(chain), Some(policy)) = (w.next(), w.next()) {
                match policy {
                    "-" => t.user.push(chain.to_string()),
                    _ => t.builtin.push(chain.to_string()),
                }
            }
        } else if line.starts_with("-A ") {
            // Unparsable quoting: not a rule we could delete by content; skipped.
            if let Some(words) = split_words(line) {
                if let [_, chain, spec @ ..] = words.as_slice() {
                    t.rules.push((chain.clone(), spec.to_vec()));
                }
            }
        }
    }
    tables
}

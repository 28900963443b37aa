//! The preflight report: one [`Check`] per fact about the host, rendered for an operator
//! (an aligned table) or a machine (JSON).
//!
//! Invariants: a report never changes the host; the status words in the table are exactly
//! the serde names in the JSON (`ok`, `warn`, `fail`, `will-fix`), so an operator can grep
//! either; a module check is named `module/NAME` with the kernel's module name, which is how
//! [`Report::modules_to_load`] finds what to load without a second data structure.

use std::fmt;

use serde::Serialize;

/// Prefix of the check names that are about one kernel module.
pub const MODULE_PREFIX: &str = "module/";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Ok,
    Warn,
    Fail,
    /// Missing now, but the supervisor will fix it (load the module) before starting.
    WillFix,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::WillFix => "will-fix",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub detail: String,
    pub fix: Option<String>,
}

impl Check {
    pub fn new(name: impl Into<String>, status: Status, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            status,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn ok(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check::new(name, Status::Ok, detail)
    }

    pub fn with_fix(mut self, fix: impl Into<String>) -> Check {
        self.fix = Some(fix.into());
        self
    }

    /// The module this check is about, if it is a module check.
    pub fn module(&self) -> Option<&str> {
        self.name.strip_prefix(MODULE_PREFIX)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    /// True when any check failed: the node must not start.
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.status == Status::Fail)
    }

    /// Modules whose check is [`Status::WillFix`], in report order.
    pub fn modules_to_load(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| c.status == Status::WillFix)
            .filter_map(|c| c.module().map(str::to_string))
            .collect()
    }

    /// An aligned `CHECK STATUS DETAIL FIX` table, then a one-line tally.
    pub fn render_table(&self) -> String {
        let rows: Vec<[String; 4]> = self
            .checks
            .iter()
            .map(|c| {
                [
                    one_line(&c.name),
                    c.status.to_string(),
                    one_line(&c.detail),
                    c.fix.as_deref().map_or_else(|| "-".to_string(), one_line),
                ]
            })
            .collect();
        let header = ["CHECK", "STATUS", "DETAIL", "FIX"].map(str::to_string);
        let mut widths = [0usize; 3];
        for row in std::iter::once(&header).chain(&rows) {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&header).chain(&rows) {
            for (w, cell) in widths.iter().zip(row) {
                out.push_str(cell);
                out.extend(std::iter::repeat_n(' ', w - cell.chars().count() + 2));
            }
            // The last column is not padded, so lines carry no trailing blanks.
            out.push_str(&row[3]);
            out.push('\n');
        }
        let count = |s| self.checks.iter().filter(|c| c.status == s).count();
        out.push_str(&format!(
            "{} ok, {} warn, {} fail, {} will-fix{}\n",
            count(Status::Ok),
            count(Status::Warn),
            count(Status::Fail),
            count(Status::WillFix),
            if self.failed() {
                ": the node cannot start until every fail is fixed"
            } else {
                ""
            }
        ));
        out
    }

    /// `{"checks":[{"name","status","detail","fix"}...],"failed":bool}`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = match serde_json::to_value(self) {
            Ok(v) => v,
            // Strings and unit enums always serialize; this arm only keeps us panic-free.
            Err(e) => serde_json::json!({ "checks": [], "error": e.to_string() }),
        };
        if let Some(obj) = value.as_object_mut() {
            obj.insert("failed".into(), self.failed().into());
        }
        value
    }
}

/// Table cells must stay on one line: modprobe's stderr and file contents carry newlines.
fn one_line(s: &str) -> String {
    s.split(|c: char| c.is_control())
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests;

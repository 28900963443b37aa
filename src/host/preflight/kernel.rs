//! Kernel release checks: the release is parsed into numbers from `proc/sys/kernel/osrelease`.
//!
//! Why numbers and that file: Kube-OVN's script matched substrings of `uname -r`/`/proc/version`,
//! and `/proc/version` also holds the compiler's version ("gcc version 3.10..." would match).
//!
//! Rules (from Kube-OVN's start-ovs.sh and its incidents):
//! - the 3.10.0-862 family (RHEL/CentOS 7.5) fails: its OVS datapath conntrack has a NAT bug,
//!   fixed in 3.10.0-898;
//! - on 3.x kernels the geneve tunnel needs IPv6, seen as `proc/net/if_inet6` existing.
//!
//! Invariants: an unreadable or garbled release is a warning naming the path and content,
//! never a guess and never a panic; parsing is pure (`&str` in).

use std::io;
use std::path::{Path, PathBuf};

use crate::config::TunnelType;

use super::report::{Check, Status};

/// Relative to the host root.
pub const OSRELEASE: &str = "proc/sys/kernel/osrelease";
/// Relative to the host root; exists when the kernel has IPv6 enabled.
pub const IF_INET6: &str = "proc/net/if_inet6";

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("bad kernel release {value:?}: {reason}")]
    BadRelease { value: String, reason: &'static str },
}

/// A kernel release as numbers: `3.10.0-862.14.4.el7.x86_64` is 3, 10, 0, build 862.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
    /// The leading number after the first `-`, when there is one (distro build number).
    pub build: Option<u32>,
}

/// Parses an osrelease string. Needs at least `MAJOR.MINOR`; a missing patch is 0 and a fourth
/// component (2.6.32.71) is ignored. Anything after the numbers is a free-form suffix.
pub fn parse_release(s: &str) -> Result<Release, KernelError> {
    let bad = |reason| KernelError::BadRelease {
        value: s.to_string(),
        reason,
    };
    let text = s.trim();
    if text.is_empty() {
        return Err(bad("empty"));
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("contains blanks or control characters"));
    }
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (version, suffix) = text.split_at(end);
    let mut numbers = Vec::new();
    for part in version.split('.') {
        if part.is_empty() {
            return Err(bad("expected MAJOR.MINOR[.PATCH] at the start"));
        }
        numbers.push(
            part.parse::<u32>()
                .map_err(|_| bad("number out of range"))?,
        );
    }
    let (major, minor, patch) = match numbers[..] {
        [major, minor] => (major, minor, 0),
        [major, minor, patch] | [major, minor, patch, _] => (major, minor, patch),
        _ => return Err(bad("expected MAJOR.MINOR[.PATCH] at the start")),
    };
    let build = match suffix.strip_prefix('-') {
        Some(rest) => {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .map_or(rest, |i| &rest[..i]);
            if digits.is_empty() {
                None
            } else {
                Some(
                    digits
                        .parse::<u32>()
                        .map_err(|_| bad("build number out of range"))?,
                )
            }
        }
        None => None,
    };
    Ok(Release {
        major,
        minor,
        patch,
        build,
    })
}

/// The raw osrelease text, trimmed.
pub fn read_osrelease(root: &Path) -> Result<String, KernelError> {
    let path = root.join(OSRELEASE);
    std::fs::read_to_string(&path)
        .map(|s| s.trim().to_string())
        .map_err(|source| KernelError::Read { path, source })
}

/// The kernel checks, from what was read: `osrelease` as read from `path`, and whether
/// `proc/net/if_inet6` exists.
pub fn evaluate(
    path: &Path,
    osrelease: &Result<String, KernelError>,
    if_inet6: bool,
    tunnel: TunnelType,
) -> Vec<Check> {
    let raw = match osrelease {
        Ok(raw) => raw,
        Err(e) => {
            return vec![Check::new(
                "kernel",
                Status::Warn,
                format!("{e}; kernel version checks skipped"),
            )]
        }
    };
    let release = match parse_release(raw) {
        Ok(r) => r,
        Err(e) => {
            return vec![Check::new(
                "kernel",
                Status::Warn,
                format!(
                    "cannot parse {} (content {raw:?}): {e}; kernel version checks skipped",
                    path.display()
                ),
            )]
        }
    };
    let mut checks = vec![Check::ok("kernel", raw.as_str())];
    if let Some(c) = nat_bug(raw, release) {
        checks.push(c);
    }
    if release.major == 3 && tunnel == TunnelType::Geneve {
        checks.push(if if_inet6 {
            Check::ok(
                "kernel/geneve-ipv6",
                format!("IPv6 is enabled ({IF_INET6} exists), as geneve needs on 3.x kernels"),
            )
        } else {
            Check::new(
                "kernel/geneve-ipv6",
                Status::Fail,
                format!(
                    "{IF_INET6} is missing: IPv6 is disabled, and geneve on a {raw} kernel needs it"
                ),
            )
            .with_fix("boot with IPv6 enabled: remove ipv6.disable=1 from the kernel command line")
        });
    }
    checks
}

/// Only 3.10.0 kernels are judged: the bug and its fix are RHEL 7 build numbers.
fn nat_bug(raw: &str, r: Release) -> Option<Check> {
    if (r.major, r.minor, r.patch) != (3, 10, 0) {
        return None;
    }
    Some(if r.build == Some(862) {
        Check::new(
            "kernel/conntrack-nat",
            Status::Fail,
            format!(
                "{raw} is a 3.10.0-862 kernel: its OVS datapath conntrack has a known NAT bug \
                 (fixed in 3.10.0-898)"
            ),
        )
        .with_fix("upgrade the kernel to 3.10.0-898 or later")
    } else {
        Check::ok(
            "kernel/conntrack-nat",
            format!("{raw} is not in the 3.10.0-862 family (NAT bug)"),
        )
    })
}

#[cfg(test)]
mod tests;

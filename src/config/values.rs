//! Parsers of single values, each as the variable's readers expect it: whole numbers,
//! booleans (ours strict, Kube-OVN's as its scripts read them), choices, tristates, host names.
//!
//! Invariants: an unset or blank value means the default (Kubernetes manifests often render
//! `value: ""` for optional settings), and surrounding blanks are ignored; every rejection is a
//! [`ConfigError::Invalid`] naming the variable, the value and what is accepted; nothing here
//! wraps, truncates or guesses a value into range.

use std::net::IpAddr;
use std::time::Duration;

use super::error::ConfigError;
use super::{DatapathType, TakeoverFlows, TunnelType};
use crate::process::backoff::Policy;
use crate::process::limits::Size;

/// Largest interval OVSDB's integer columns and OVN's int parsing take without wrapping.
pub(super) const MAX_INTERVAL_MS: u64 = i32::MAX as u64;

/// Longest duration any of our millisecond knobs takes: a day.
const MAX_MS: u64 = 24 * 3600 * 1000;

/// An env value, or `None` when unset or empty.
pub(super) fn present(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.trim().is_empty()).map(str::trim)
}

/// Unsigned decimal in `min..=max`; signs, blanks and overflow are rejected, not wrapped.
pub fn parse_uint(
    var: &'static str,
    raw: &Option<String>,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some(s) = present(raw) else {
        return Ok(default);
    };
    let expected = || format!("a whole number from {min} to {max}");
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ConfigError::invalid(var, s, expected()));
    }
    match s.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError::invalid(var, s, expected())),
    }
}

/// [`parse_uint`] where unset means "not overridden".
pub(super) fn parse_opt_uint(
    var: &'static str,
    raw: &Option<String>,
    min: u64,
    max: u64,
) -> Result<Option<u64>, ConfigError> {
    if present(raw).is_none() {
        return Ok(None);
    }
    parse_uint(var, raw, 0, min, max).map(Some)
}

/// Milliseconds from `min` to a day.
pub(super) fn parse_ms(
    var: &'static str,
    raw: &Option<String>,
    default: u64,
    min: u64,
) -> Result<Duration, ConfigError> {
    parse_uint(var, raw, default, min, MAX_MS).map(Duration::from_millis)
}

/// A backoff from its two variables, `(name, value, default ms)` each; the cap may not be
/// below the base, since the first delay would then exceed the largest.
pub(super) fn parse_backoff(
    base: (&'static str, &Option<String>, u64),
    cap: (&'static str, &Option<String>, u64),
) -> Result<Policy, ConfigError> {
    let base_ms = parse_ms(base.0, base.1, base.2, 1)?;
    let cap_ms = parse_ms(cap.0, cap.1, cap.2, 1)?;
    if cap_ms < base_ms {
        return Err(ConfigError::invalid(
            cap.0,
            &cap_ms.as_millis().to_string(),
            format!("at least {} ({} ms)", base.0, base_ms.as_millis()),
        ));
    }
    Ok(Policy {
        base: base_ms,
        cap: cap_ms,
    })
}

pub fn parse_bool(var: &'static str, raw: &Option<String>) -> Result<bool, ConfigError> {
    let Some(s) = present(raw) else {
        return Ok(false);
    };
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::invalid(
            var,
            s,
            "true or false (1/0, yes/no, on/off also accepted)",
        )),
    }
}

/// [`parse_bool`], but unset or blank means `default`.
pub(super) fn parse_bool_or(
    var: &'static str,
    raw: &Option<String>,
    default: bool,
) -> Result<bool, ConfigError> {
    match present(raw) {
        None => Ok(default),
        Some(_) => parse_bool(var, raw),
    }
}

/// A boolean read the way Kube-OVN's scripts read it: unset or empty is off; `"true"` and
/// `"false"` mean what they say; any other value (`"True"`, `"1"`, `"yes"`) counts as
/// `other_means` — ENABLE_SSL is on for anything but "false", HW_OFFLOAD only for "true" — with
/// a warning, because the operator probably meant something else.
pub fn kube_ovn_flag(
    var: &'static str,
    raw: &Option<String>,
    other_means: bool,
    warnings: &mut Vec<String>,
) -> bool {
    match present(raw) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            let means = if other_means { "on" } else { "off" };
            warnings.push(format!(
                "{var}={other:?} is neither \"true\" nor \"false\": taken as {means}, as Kube-OVN reads it"
            ));
            other_means
        }
    }
}

pub fn parse_tunnel(raw: &Option<String>) -> Result<TunnelType, ConfigError> {
    parse_choice(
        "TUNNEL_TYPE",
        raw,
        TunnelType::Geneve,
        &[
            ("geneve", TunnelType::Geneve),
            ("vxlan", TunnelType::Vxlan),
            ("stt", TunnelType::Stt),
        ],
    )
}

/// `auto` (or unset) → `None`, else a boolean.
pub fn parse_tristate(
    var: &'static str,
    raw: &Option<String>,
) -> Result<Option<bool>, ConfigError> {
    match present(raw) {
        None => Ok(None),
        Some(s) if s.eq_ignore_ascii_case("auto") => Ok(None),
        Some(s) => parse_bool(var, raw)
            .map(Some)
            .map_err(|_| ConfigError::invalid(var, s, "auto, true or false")),
    }
}

/// A size in MiB from 0, or `unlimited`; the result in bytes.
pub(super) fn parse_mib_or_unlimited(
    var: &'static str,
    raw: &Option<String>,
    default_mib: u64,
) -> Result<Size, ConfigError> {
    match present(raw) {
        Some("unlimited") => Ok(Size::Unlimited),
        Some(s) => {
            let max = u64::MAX >> 20;
            let expected = format!("a whole number of MiB from 0 to {max}, or unlimited");
            parse_uint(var, raw, 0, 0, max)
                .map(|mib| Size::Finite(mib << 20))
                .map_err(|_| ConfigError::invalid(var, s, expected))
        }
        None => Ok(Size::Finite(default_mib << 20)),
    }
}

/// One of `choices`, spelled exactly (case matters: these are OVS's own words).
pub(super) fn parse_choice<T: Copy>(
    var: &'static str,
    raw: &Option<String>,
    default: T,
    choices: &[(&str, T)],
) -> Result<T, ConfigError> {
    let Some(s) = present(raw) else {
        return Ok(default);
    };
    choices
        .iter()
        .find(|(name, _)| *name == s)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
            ConfigError::invalid(var, s, format!("one of {}", names.join(", ")))
        })
}

/// A DNS name as RFC 1123 allows it: dot-separated labels of letters, digits and inner '-',
/// at most 63 bytes each and 253 in all, not all-numeric at the top.
fn is_dns_name(s: &str) -> bool {
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let s = s.strip_suffix('.').unwrap_or(s);
    s.len() <= 253
        && s.split('.').all(label_ok)
        && !s
            .rsplit('.')
            .next()
            .is_some_and(|top| top.bytes().all(|b| b.is_ascii_digit()))
}

/// A Kubernetes node name: an RFC 1123 subdomain (lowercase).
pub fn is_node_name(s: &str) -> bool {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    s.len() <= 253 && s.split('.').all(label_ok)
}

/// A host as written in `OVN_DB_IPS` (an IP, IPv6 optionally bracketed, or a DNS name, which
/// OVS resolves itself), rendered for an OVSDB remote.
pub(super) fn remote_host(var: &'static str, s: &str) -> Result<String, ConfigError> {
    let bare = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => Ok(a.to_string()),
        Ok(IpAddr::V6(a)) => Ok(format!("[{a}]")),
        Err(_) if is_dns_name(bare) => Ok(bare.to_string()),
        Err(_) => Err(ConfigError::invalid(
            var,
            s,
            "an IPv4 or IPv6 address, or a host name",
        )),
    }
}

/// `OVS_OVN_SUPERVISOR_TAKEOVER_FLOWS`. `auto` is `keep-or-restore` on the kernel datapath:
/// its flows forward through the takeover, so the restore is needed only when the new
/// ovn-controller delivers nothing, and skipping it made the takeover ready ~25 s sooner at
/// 105,000 rules under TCG (docs/benchmarks.md §7.1). On the userspace datapath nothing
/// outlives vswitchd, so `auto` is `restore` there.
pub(super) fn parse_takeover_flows(
    raw: &Option<String>,
    datapath: DatapathType,
) -> Result<TakeoverFlows, ConfigError> {
    const VAR: &str = "OVS_OVN_SUPERVISOR_TAKEOVER_FLOWS";
    match present(raw) {
        None | Some("auto") => Ok(match datapath {
            DatapathType::System => TakeoverFlows::KeepOrRestore,
            DatapathType::Netdev => TakeoverFlows::Restore,
        }),
        Some("restore") => Ok(TakeoverFlows::Restore),
        Some("keep") => Ok(TakeoverFlows::Keep),
        Some("keep-or-restore") => Ok(TakeoverFlows::KeepOrRestore),
        Some(other) => Err(ConfigError::invalid(
            VAR,
            other,
            "auto, restore, keep or keep-or-restore",
        )),
    }
}

//! ovn-northd's version as the node's Southbound holds it: `SB_Global.options:
//! northd_internal_version`, read with `ovsdb-client query` (a read-only transaction: never
//! `ovn-sbctl`, which inserts an `SB_Global` row when there is none).
//!
//! Invariants: the remotes are the node's own `ovn-remote`, tried in order with ovn-controller's
//! TLS files, each under what is left of [`DEADLINE`]; the first that answers decides (a raft
//! follower or a relay answers reads as ovn-controller sees them); the reply's parsing is pure.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::Northd;
use crate::config::Config;
use crate::process::bounded;

/// All remotes together.
pub const DEADLINE: Duration = Duration::from_secs(10);
/// One remote at most, so that a silent first one leaves time for the others.
const PER_REMOTE: Duration = Duration::from_secs(5);

/// Why no remote answered: each remote with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreachable(pub Vec<(String, String)>);

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let each: Vec<String> = self.0.iter().map(|(r, e)| format!("{r}: {e}")).collect();
        f.write_str(&each.join("; "))
    }
}

const QUERY: &str =
    r#"["OVN_Southbound",{"op":"select","table":"SB_Global","where":[],"columns":["options"]}]"#;

/// `ovsdb-client`'s arguments for one remote.
pub fn query_args(cfg: &Config, remote: &str, timeout: Duration) -> Vec<String> {
    let mut a = vec![format!("--timeout={}", timeout.as_secs().max(1))];
    if remote.starts_with("ssl:") {
        let t = &cfg.tls_dir;
        a.extend([
            format!("--private-key={}", t.join("key").display()),
            format!("--certificate={}", t.join("cert").display()),
            format!("--ca-cert={}", t.join("cacert").display()),
        ]);
    }
    a.extend(["query".to_string(), remote.to_string(), QUERY.to_string()]);
    a
}

/// The reply of the `SB_Global` select: `[{"rows":[{"options":["map",[[K,V],...]]}]}]`.
pub fn parse_reply(stdout: &str) -> Result<Northd, String> {
    let v: Value = serde_json::from_str(stdout.trim()).map_err(|e| format!("bad reply: {e}"))?;
    let result = v.get(0).ok_or("empty reply")?;
    if let Some(err) = result.get("error") {
        return Err(format!(
            "{err} {}",
            result.get("details").unwrap_or(&Value::Null)
        ));
    }
    let rows = result
        .get("rows")
        .and_then(Value::as_array)
        .ok_or("reply without rows")?;
    let Some(row) = rows.first() else {
        return Ok(Northd::NotWritten);
    };
    let pairs = row
        .get("options")
        .filter(|m| m.get(0).and_then(Value::as_str) == Some("map"))
        .and_then(|m| m.get(1))
        .and_then(Value::as_array)
        .ok_or("options is not a map")?;
    let version = pairs.iter().find_map(|p| {
        (p.get(0).and_then(Value::as_str) == Some("northd_internal_version"))
            .then(|| p.get(1).and_then(Value::as_str))
            .flatten()
    });
    Ok(match version {
        // ovn-controller compares against "" in that case: no northd has written it.
        Some(v) if !v.is_empty() => Northd::Version(v.to_string()),
        _ => Northd::NotWritten,
    })
}

/// The first answer among the node's remotes.
pub fn northd_version(cfg: &Config) -> Result<Northd, Unreachable> {
    let until = Instant::now() + DEADLINE;
    let mut errors = Vec::new();
    for remote in cfg.southbound.remote.split(',').filter(|r| !r.is_empty()) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            errors.push((remote.to_string(), "not tried: no time left".to_string()));
            continue;
        }
        let timeout = left.min(PER_REMOTE);
        let mut cmd = Command::new("ovsdb-client");
        cmd.args(query_args(cfg, remote, timeout));
        let reason = match bounded::output(cmd, timeout + Duration::from_millis(500)) {
            Ok(out) if out.status.success() => {
                match parse_reply(&String::from_utf8_lossy(&out.stdout)) {
                    Ok(northd) => return Ok(northd),
                    Err(e) => e,
                }
            }
            Ok(out) => {
                let stderr = String::from_utf8_lossy(&out.stderr);
                let last = stderr.lines().last().unwrap_or("").trim();
                format!("ovsdb-client {}: {last}", out.status)
            }
            Err(e) => e.to_string(),
        };
        errors.push((remote.to_string(), reason));
    }
    Err(Unreachable(errors))
}

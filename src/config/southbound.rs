//! Which OVN Southbound ovn-controller connects to, from Kube-OVN's variables in their order
//! of precedence: `OVN_SB_ADDR` (a whole `ovn-remote`), then `OVN_DB_IPS` with
//! `KUBE_OVN_SB_PORT`, then the `OVN_SB_SERVICE_HOST`/`_PORT` pair Kubernetes injects, then
//! (sandbox only) an embedded Southbound.
//!
//! Invariants: the remote's scheme follows `ENABLE_SSL`, except in `OVN_SB_ADDR`, which is
//! taken as written; `OVN_SB_SERVICE_PORT` is checked whatever takes precedence, since a bad
//! value is a mistake even while unused.

use super::cli::NodeArgs;
use super::error::ConfigError;
use super::values::{parse_uint, present, remote_host};
use super::Southbound;

/// Kube-OVN's default Southbound port.
const SB_PORT: u64 = 6642;

pub(super) fn southbound(
    args: &NodeArgs,
    ssl: bool,
    sandbox: bool,
) -> Result<Southbound, ConfigError> {
    let proto = if ssl { "ssl" } else { "tcp" };
    let var = "OVN_SB_SERVICE_PORT";
    let service_port = parse_uint(var, &args.ovn_sb_service_port, SB_PORT, 1, 65535)?;
    if let Some(addr) = present(&args.ovn_sb_addr) {
        return sb_addr(addr);
    }
    let port = parse_uint(
        "KUBE_OVN_SB_PORT",
        &args.kube_ovn_sb_port,
        SB_PORT,
        1,
        65535,
    )?;
    let remote = if let Some(ips) = present(&args.ovn_db_ips) {
        db_ips(ips, proto, port)?
    } else if let Some(host) = present(&args.ovn_sb_service_host) {
        let host = remote_host("OVN_SB_SERVICE_HOST", host)?;
        format!("{proto}:{host}:{service_port}")
    } else if sandbox {
        // Filled in with the sandbox's socket path by `Config::resolve`.
        return Ok(Southbound {
            remote: String::new(),
            embedded: true,
        });
    } else {
        return Err(ConfigError::NoSouthbound);
    };
    Ok(Southbound {
        remote,
        embedded: false,
    })
}

/// `OVN_SB_ADDR`: OVSDB remotes as ovn-controller takes them, checked for shape only.
fn sb_addr(addr: &str) -> Result<Southbound, ConfigError> {
    if addr.chars().any(char::is_whitespace) {
        return Err(ConfigError::invalid(
            "OVN_SB_ADDR",
            addr,
            "comma-separated OVSDB remotes without blanks, e.g. tcp:10.0.0.1:6642,tcp:10.0.0.2:6642",
        ));
    }
    for entry in addr.split(',') {
        let ok = ["tcp:", "ssl:", "unix:"]
            .iter()
            .any(|p| entry.starts_with(p) && entry.len() > p.len());
        if !ok {
            return Err(ConfigError::invalid(
                "OVN_SB_ADDR",
                addr,
                "comma-separated OVSDB remotes such as tcp:10.0.0.1:6642, ssl:[fd00::1]:6642 or unix:/path",
            ));
        }
    }
    Ok(Southbound {
        remote: addr.to_string(),
        embedded: false,
    })
}

/// `OVN_DB_IPS`: one remote per address, all on `port`.
fn db_ips(ips: &str, proto: &str, port: u64) -> Result<String, ConfigError> {
    // As Kube-OVN's scripts do: blanks anywhere are dropped.
    let ips: String = ips.chars().filter(|c| !c.is_whitespace()).collect();
    let mut remotes = Vec::new();
    for ip in ips.split(',').filter(|s| !s.is_empty()) {
        remotes.push(format!("{proto}:{}:{port}", remote_host("OVN_DB_IPS", ip)?));
    }
    if remotes.is_empty() {
        return Err(ConfigError::invalid(
            "OVN_DB_IPS",
            &ips,
            "a comma-separated list of IP addresses",
        ));
    }
    Ok(remotes.join(","))
}

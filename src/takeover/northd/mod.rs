//! Never freeze a working node by taking it over: with `external_ids:ovn-match-northd-version`
//! on, an ovn-controller whose internal version differs from the one ovn-northd wrote in
//! `SB_Global.options:northd_internal_version` applies nothing (no new port is bound, no flow
//! changes). So before a successor stops a running node's daemons (our own instance or a
//! `start-ovs.sh` node), it learns both versions and refuses the takeover when they differ.
//!
//! What the internal version is (OVN 23.03 to 25.03, `ovn_get_internal_version` in
//! lib/ovn-util.c): `PACKAGE_VERSION-SB_SCHEMA_VERSION-N_OVNACTS.OVN_INTERNAL_MINOR_VER`, e.g.
//! `23.03.1-20.27.0-70.6` (Debian 12). The first two parts show in `ovn-controller --version`,
//! the last two are compile-time constants (the number of OVN actions, a counter bumped by hand)
//! that no file or option shows, and a patched build (Kube-OVN's ~20 patches, versions renamed
//! `X+g<commit>`) may change any of them; so may a point release (Debian 13's 25.03.0 is
//! `25.03.0-20.41.0-77.6`, branch-25.03's head compiles `-78.9`). The old node's
//! ovn-controller tells nothing about ours: a rollout is when they differ. So ours is asked of
//! itself, privately ([`ours`]), and ovn-northd's is read from the Southbound the node will
//! use ([`southbound`]).
//!
//! Decisions, in order:
//! - key off (`OVS_OVN_SUPERVISOR_MATCH_NORTHD_VERSION=false`): ovn-controller ignores versions;
//!   nothing to check;
//! - our version unknown (the private run failed): refuse — an ovn-controller that cannot start
//!   privately would not serve the node either;
//! - versions equal: take over;
//! - versions differ, or ovn-northd wrote none (a fresh or restored Southbound): refuse, naming
//!   both;
//! - the Southbound cannot be read: refuse. Waiting costs the node nothing — the old node keeps
//!   forwarding with what it has, and while the Southbound is down no node gets changes anyway —
//!   and Kubernetes retries the pod, which passes once the Southbound answers. Taking over blind
//!   risks the very freeze this check exists for, found only when the Southbound is back. The
//!   remote read is the successor's own `ovn-remote`, so a successor whose Southbound setting
//!   is wrong does not replace a node whose setting works.
//!
//! Invariants: runs in `prepare`, before any thread exists, so every process is waited on
//! through std under a deadline; the check reads the Southbound and changes nothing in it.

pub mod ours;
pub mod southbound;

use std::time::Instant;

use crate::config::Config;

/// What ovn-northd wrote in the Southbound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Northd {
    Version(String),
    /// No `SB_Global` row, or no `northd_internal_version` in it: ovn-northd has not run on
    /// this Southbound yet.
    NotWritten,
}

impl std::fmt::Display for Northd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Northd::Version(v) => f.write_str(v),
            Northd::NotWritten => f.write_str("none (ovn-northd has written no version)"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NorthdError {
    #[error(
        "refusing to take over {old}: our ovn-controller's internal version {ours} differs \
         from ovn-northd's {northd} in the Southbound ({remote}); with \
         external_ids:ovn-match-northd-version=true it would apply nothing (no new port bound, \
         no flow changed) while the running node keeps working. The old node is left running. \
         Run an ovn-controller of ovn-northd's version, or upgrade ovn-northd first, or set \
         OVS_OVN_SUPERVISOR_MATCH_NORTHD_VERSION=false"
    )]
    Mismatch {
        old: String,
        ours: String,
        northd: Northd,
        remote: String,
    },
    #[error(
        "refusing to take over {old}: cannot read ovn-northd's version from the Southbound \
         ({errors}); with external_ids:ovn-match-northd-version=true our ovn-controller \
         (internal version {ours}) could apply nothing if it differs. The old node is left \
         running; the takeover is tried again when the pod restarts"
    )]
    Unreachable {
        old: String,
        ours: String,
        errors: String,
    },
    #[error(
        "refusing to take over {old}: cannot tell our ovn-controller's internal version, \
         which external_ids:ovn-match-northd-version=true requires to match ovn-northd's: \
         {source}. The old node is left running"
    )]
    OursUnknown {
        old: String,
        #[source]
        source: ours::OursError,
    },
}

/// The pure decision, once both versions are known.
pub fn decide(ours: &str, northd: &Northd) -> Result<(), (String, Northd)> {
    match northd {
        Northd::Version(v) if v == ours => Ok(()),
        other => Err((ours.to_string(), other.clone())),
    }
}

/// Before taking over `old` (described for the operator): Ok when our ovn-controller will be
/// accepted under `ovn-match-northd-version`, or the key is off.
pub fn check(cfg: &Config, old: &str) -> Result<(), NorthdError> {
    if !cfg.match_northd_version {
        tracing::debug!("ovn-match-northd-version is off: no version to match before the takeover");
        return Ok(());
    }
    let t0 = Instant::now();
    let ours = ours::internal_version(cfg).map_err(|source| NorthdError::OursUnknown {
        old: old.to_string(),
        source,
    })?;
    let learnt_ms = t0.elapsed().as_millis() as u64;
    let remote = cfg.southbound.remote.clone();
    let northd = southbound::northd_version(cfg).map_err(|e| NorthdError::Unreachable {
        old: old.to_string(),
        ours: ours.clone(),
        errors: e.to_string(),
    })?;
    let total_ms = t0.elapsed().as_millis() as u64;
    tracing::info!(
        ours = %ours,
        northd = %northd,
        learnt_ms,
        total_ms,
        "ovn-controller's internal version against ovn-northd's, before the takeover"
    );
    decide(&ours, &northd).map_err(|(ours, northd)| NorthdError::Mismatch {
        old: old.to_string(),
        ours,
        northd,
        remote,
    })
}

#[cfg(test)]
mod tests;

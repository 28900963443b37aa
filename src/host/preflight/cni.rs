//! Other CNIs on the node: the lessons of incidents where Kube-OVN fought Calico and Multus.
//!
//! The container runtime (kubelet's CNI loader, libcni) lists `etc/cni/net.d` for `.conf`,
//! `.conflist` and `.json` files, sorts them by file name and uses the first valid one as the
//! primary network. So another CNI's file sorting before Kube-OVN's silently takes pods over, and
//! a Multus config without an explicit master auto-detects whatever sorts first, which right after
//! a node reboot may be a leftover file rather than Kube-OVN's (not written yet).
//!
//! Invariants: read only, never changes a file; a missing or empty directory is fine (this pod may
//! start before kube-ovn-cni writes its file); a bad file is a warning naming it, never a failure.
//!
//! Layout: listing and parsing the files is in `config`; what their order means is here.

mod config;

use std::path::Path;

use super::report::{Check, Status};

pub use config::{
    is_config_file, list, parse_config, CniError, Config, Entry, Master, CNI_DIR, KUBE_OVN,
};

/// The CNI checks for the config files of a host.
pub fn checks(root: &Path) -> Vec<Check> {
    match list(root) {
        Ok(Some(entries)) => evaluate(&entries),
        Ok(None) => evaluate(&[]),
        Err(e) => vec![Check::new(
            "cni/configs",
            Status::Warn,
            format!("{e}; other CNIs not checked"),
        )],
    }
}

/// The checks for `entries`, which are in the runtime's order.
pub fn evaluate(entries: &[Entry]) -> Vec<Check> {
    if entries.is_empty() {
        return vec![Check::ok(
            "cni/configs",
            format!(
                "no CNI configuration found in {CNI_DIR} (kube-ovn-cni may not have written its \
                 file yet)"
            ),
        )];
    }
    let found: Vec<String> = entries
        .iter()
        .map(|(name, parsed)| match parsed {
            Ok(c) => c.describe(),
            Err(_) => format!("{name} (invalid)"),
        })
        .collect();
    let mut checks = vec![Check::ok("cni/configs", found.join("; "))];
    for (_, parsed) in entries {
        if let Err(e) = parsed {
            checks.push(
                Check::new(
                    "cni/config",
                    Status::Warn,
                    format!("{e}; the runtime skips this file"),
                )
                .with_fix("fix or remove the file"),
            );
        }
    }
    let valid: Vec<&Config> = entries
        .iter()
        .filter_map(|(_, p)| p.as_ref().ok())
        .collect();
    checks.extend(primary(&valid));
    for m in valid.iter().filter(|c| c.is_multus()) {
        checks.push(multus(m, &valid));
    }
    checks
}

/// Who is the primary network, and does anything other than Kube-OVN or Multus come first.
fn primary(valid: &[&Config]) -> Vec<Check> {
    let kube_ovn = valid.iter().position(|c| c.is_kube_ovn());
    let before = &valid[..kube_ovn.unwrap_or(valid.len())];
    let rivals: Vec<&&Config> = before
        .iter()
        .filter(|c| !c.is_kube_ovn() && !c.is_multus())
        .collect();
    match (kube_ovn, rivals.first()) {
        (Some(k), None) => {
            let ours = valid[k];
            let detail = match valid.first() {
                Some(first) if first.is_multus() => format!(
                    "{} is first; Kube-OVN's {} follows it",
                    first.describe(),
                    ours.file
                ),
                _ => format!("{} is the primary network", ours.describe()),
            };
            vec![Check::ok("cni/primary", detail)]
        }
        (Some(k), Some(_)) => rivals
            .iter()
            .map(|r| {
                Check::new(
                    "cni/primary",
                    Status::Warn,
                    format!(
                        "{} ({}) sorts before Kube-OVN's {}, so the runtime uses it as the \
                         primary network",
                        r.describe(),
                        r.product(),
                        valid[k].file
                    ),
                )
                .with_fix(format!(
                    "remove {} from {CNI_DIR} if {} is not meant to be the primary CNI, or chain \
                     it through Multus",
                    r.file,
                    r.product()
                ))
            })
            .collect(),
        (None, Some(r)) => vec![Check::new(
            "cni/primary",
            Status::Warn,
            format!(
                "no Kube-OVN config yet, and {} ({}) would be the primary network",
                r.describe(),
                r.product()
            ),
        )
        .with_fix(format!(
            "remove {} from {CNI_DIR} if {} is not meant to be the primary CNI",
            r.file,
            r.product()
        ))],
        (None, None) => Vec::new(),
    }
}

/// Whether a Multus config names Kube-OVN as its cluster network.
fn multus(m: &Config, valid: &[&Config]) -> Check {
    let warn = |detail: String| {
        Check::new("cni/multus", Status::Warn, detail).with_fix(format!(
            "set \"clusterNetwork\": \"{KUBE_OVN}\" (or the path of Kube-OVN's config) in {} or \
             in the Multus daemon's config",
            m.file
        ))
    };
    match &m.master {
        Some(Master::ClusterNetwork(target)) => match resolve(target, valid) {
            Some(c) if c.is_kube_ovn() => Check::ok(
                "cni/multus",
                format!("{}: clusterNetwork {target:?} is {}", m.file, c.describe()),
            ),
            Some(c) => warn(format!(
                "{}: clusterNetwork {target:?} is {} ({}), not Kube-OVN",
                m.file,
                c.describe(),
                c.product()
            )),
            None if target.to_ascii_lowercase().contains(KUBE_OVN) => Check::ok(
                "cni/multus",
                format!(
                    "{}: clusterNetwork {target:?} names Kube-OVN (not a file in {CNI_DIR}; \
                     judged by name)",
                    m.file
                ),
            ),
            None => warn(format!(
                "{}: clusterNetwork {target:?} does not name Kube-OVN's network",
                m.file
            )),
        },
        Some(Master::Delegate { name, types }) => {
            let label = format!(
                "first delegate {} ({})",
                name.as_deref().unwrap_or("(unnamed)"),
                types.join(", ")
            );
            if types.iter().any(|t| t == KUBE_OVN) {
                Check::ok("cni/multus", format!("{}: {label} is Kube-OVN", m.file))
            } else {
                warn(format!("{}: {label} is not Kube-OVN", m.file))
            }
        }
        Some(Master::None) | None => warn(format!(
            "{} has no explicit master (neither \"clusterNetwork\" nor \"delegates\"): Multus \
             then picks whatever config sorts first, which after a node reboot may not be \
             Kube-OVN's yet",
            m.file
        )),
    }
}

/// A clusterNetwork value that names a config file (by path) or a network (by name) in the dir.
fn resolve<'a>(target: &str, valid: &[&'a Config]) -> Option<&'a Config> {
    let file = target.rsplit('/').next().unwrap_or(target);
    let by_path = target.contains('/') || is_config_file(target);
    valid.iter().copied().find(|c| {
        if by_path {
            c.file == file
        } else {
            c.network.as_deref() == Some(target) && !c.is_multus()
        }
    })
}

#[cfg(test)]
mod tests;

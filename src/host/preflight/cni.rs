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

use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::report::{Check, Status};

/// Relative to the host root.
pub const CNI_DIR: &str = "etc/cni/net.d";
/// Kube-OVN's plugin type.
pub const KUBE_OVN: &str = "kube-ovn";

const EXTENSIONS: [&str; 3] = [".conf", ".conflist", ".json"];

/// Plugin types we can name for the operator: (type, product).
const KNOWN: &[(&str, &str)] = &[
    ("kube-ovn", "Kube-OVN"),
    ("multus", "Multus"),
    ("multus-shim", "Multus"),
    ("calico", "Calico"),
    ("cilium-cni", "Cilium"),
    ("cilium", "Cilium"),
    ("flannel", "Flannel"),
    ("canal", "Canal"),
    ("weave-net", "Weave Net"),
    ("antrea", "Antrea"),
    ("ovn-k8s-cni-overlay", "OVN-Kubernetes"),
    ("aws-cni", "AWS VPC CNI"),
    ("azure-vnet", "Azure CNI"),
    ("terway", "Terway"),
    ("kube-router", "kube-router"),
];

#[derive(Debug, thiserror::Error)]
pub enum CniError {
    #[error("cannot list {}: {source}", path.display())]
    List {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{file}: not valid JSON: {source}")]
    Json {
        file: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{file}: {reason}")]
    Shape { file: String, reason: &'static str },
}

/// Whom a Multus config names as the cluster (default) network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Master {
    /// `clusterNetwork`: a network name, NetworkAttachmentDefinition, or config file path.
    ClusterNetwork(String),
    /// `delegates[0]`: its network name and plugin types.
    Delegate {
        name: Option<String>,
        types: Vec<String>,
    },
    /// Neither: Multus auto-detects.
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub file: String,
    /// The network's `name`.
    pub network: Option<String>,
    /// Top-level `type`, then each `plugins[].type`.
    pub types: Vec<String>,
    /// `Some` for Multus configs.
    pub master: Option<Master>,
}

impl Config {
    pub fn is_kube_ovn(&self) -> bool {
        self.types.iter().any(|t| t == KUBE_OVN)
    }

    pub fn is_multus(&self) -> bool {
        self.types.iter().any(|t| is_multus_type(t))
    }

    /// `10-calico.conflist (calico, portmap)`.
    pub fn describe(&self) -> String {
        format!("{} ({})", self.file, self.types.join(", "))
    }

    /// The product behind the first known type, else the first type.
    pub fn product(&self) -> &str {
        self.types
            .iter()
            .find_map(|t| KNOWN.iter().find(|(k, _)| k == t).map(|(_, p)| *p))
            .or(self.types.first().map(String::as_str))
            .unwrap_or("unknown")
    }
}

fn is_multus_type(t: &str) -> bool {
    t == "multus" || t == "multus-shim"
}

pub fn is_config_file(name: &str) -> bool {
    EXTENSIONS.iter().any(|e| name.ends_with(e))
}

/// Plugin types of one config object: top-level `type`, then `plugins[].type`.
fn types_of(v: &Value) -> Vec<String> {
    let top = v.get("type").and_then(Value::as_str);
    let plugins = v
        .get("plugins")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("type").and_then(Value::as_str));
    top.into_iter()
        .chain(plugins)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// Parses one config file's text. Both shapes are accepted whatever the extension, as
/// runtimes differ in how strictly they tie the shape to `.conflist`.
pub fn parse_config(file: &str, text: &str) -> Result<Config, CniError> {
    let v: Value = serde_json::from_str(text).map_err(|source| CniError::Json {
        file: file.to_string(),
        source,
    })?;
    if !v.is_object() {
        return Err(CniError::Shape {
            file: file.to_string(),
            reason: "not a JSON object",
        });
    }
    let types = types_of(&v);
    if types.is_empty() {
        return Err(CniError::Shape {
            file: file.to_string(),
            reason: "no plugin type (neither \"type\" nor \"plugins\"[].type)",
        });
    }
    let multus = types.iter().any(|t| is_multus_type(t));
    let master = multus.then(|| {
        let cluster = v
            .get("clusterNetwork")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let first_delegate = v
            .get("delegates")
            .and_then(Value::as_array)
            .and_then(|d| d.first());
        match (cluster, first_delegate) {
            (Some(c), _) => Master::ClusterNetwork(c.to_string()),
            (None, Some(d)) => Master::Delegate {
                name: d.get("name").and_then(Value::as_str).map(str::to_string),
                types: types_of(d),
            },
            (None, None) => Master::None,
        }
    });
    Ok(Config {
        file: file.to_string(),
        network: v.get("name").and_then(Value::as_str).map(str::to_string),
        types,
        master,
    })
}

/// One directory entry: its file name and what parsing it gave.
pub type Entry = (String, Result<Config, CniError>);

/// Config files under `root`, in the runtime's order; `Ok(None)` when the directory is missing.
pub fn list(root: &Path) -> Result<Option<Vec<Entry>>, CniError> {
    let dir = root.join(CNI_DIR);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(CniError::List { path: dir, source }),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| CniError::List {
            path: dir.clone(),
            source,
        })?;
        // libcni skips directories; a symlink to a file counts, as the runtime follows it.
        if entry.path().is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_config_file(&name) {
            names.push(name);
        }
    }
    names.sort();
    Ok(Some(
        names
            .into_iter()
            .map(|name| {
                let path = dir.join(&name);
                let parsed = std::fs::read_to_string(&path)
                    .map_err(|source| CniError::Read { path, source })
                    .and_then(|text| parse_config(&name, &text));
                (name, parsed)
            })
            .collect(),
    ))
}

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

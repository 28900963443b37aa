//! Reading `etc/cni/net.d` as the container runtime does: which files count, in which order,
//! and what each one says (its plugin types, and for Multus whom it names as the master).
//!
//! Invariants: read only; a file that cannot be read or parsed is an [`Entry`] carrying the
//! error naming it, never a failure of the whole listing; only a directory that exists but
//! cannot be listed is an error.

use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::nodefile::Links;

/// Relative to the host root.
pub const CNI_DIR: &str = "etc/cni/net.d";
/// Kube-OVN's plugin type.
pub const KUBE_OVN: &str = "kube-ovn";

/// A CNI configuration is a few KiB; beyond this it is not one we would parse.
const MAX_CONFIG: u64 = 1 << 20;

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
                // Bounded and never blocking: a FIFO here must not hang the preflight.
                let parsed = crate::nodefile::read_to_string(&path, MAX_CONFIG, Links::Follow)
                    .map_err(|e| CniError::Read {
                        path,
                        source: e.into_io(),
                    })
                    .and_then(|text| parse_config(&name, &text));
                (name, parsed)
            })
            .collect(),
    ))
}

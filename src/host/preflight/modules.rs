//! Kernel module checks: is each module the node needs loaded, built in, loadable, or absent?
//!
//! Needed: `openvswitch` (kernel datapath only), the tunnel's module (`geneve`, `vxlan`, or the
//! out-of-tree `stt`), and `ip_tables`. Evidence, all under the host root, REL = osrelease:
//! - loaded: first field of `proc/modules`;
//! - built in: `lib/modules/REL/modules.builtin`, or `sys/module/NAME` without a proc/modules line
//!   (built-in code with parameters shows up there too);
//! - loadable: `lib/modules/REL/modules.dep`, or a `NAME.ko[.xz|.zst|.gz]` file under
//!   `lib/modules/REL` (symlinks such as `build` are not followed: they lead to source trees);
//! - no `proc/modules` at all: the kernel cannot load modules, so only built in counts.
//!
//! Invariants: `-` and `_` are the same in module names (the kernel normalizes to `_`); nothing
//! here writes; a file we cannot read is a warning naming it, never a panic; missing modules are
//! fatal only for the kernel datapath (`system`), and `stt` is at most a warning because no
//! upstream kernel has it.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use crate::config::{DatapathType, TunnelType};

use super::report::{Check, Status, MODULE_PREFIX};

#[derive(Debug, thiserror::Error)]
pub enum ModulesError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// How far below `lib/modules/REL` to look for module files: `kernel/drivers/net/ethernet/X/Y`
/// is the deepest layout in practice.
const MAX_WALK_DEPTH: usize = 10;
/// Bounds the walk on a huge or looping tree; a full distro kernel has ~6000 modules.
const MAX_WALK_ENTRIES: usize = 200_000;

const MODULE_SUFFIXES: [&str; 4] = [".ko", ".ko.xz", ".ko.zst", ".ko.gz"];

/// The kernel's canonical spelling of a module name.
pub fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// Names of the modules in `proc/modules` (first field of each line), normalized.
pub fn parse_proc_modules(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(normalize)
        .collect()
}

/// `geneve.ko.xz` -> `geneve`; `None` for anything that is not a module file.
pub fn module_name_of_file(file: &str) -> Option<&str> {
    MODULE_SUFFIXES
        .iter()
        .find_map(|s| file.strip_suffix(s))
        .filter(|stem| !stem.is_empty())
}

/// Module paths of `modules.builtin` or `modules.dep` (`kernel/net/ipv4/geneve.ko.xz: deps...`),
/// as normalized name -> path relative to `lib/modules/REL`.
pub fn parse_module_paths(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let path = line.split(':').next().unwrap_or("").trim();
        let file = path.rsplit('/').next().unwrap_or(path);
        if let Some(name) = module_name_of_file(file) {
            out.entry(normalize(name))
                .or_insert_with(|| path.to_string());
        }
    }
    out
}

/// True when `release` can name a directory under `lib/modules` without escaping it.
pub fn is_path_component(release: &str) -> bool {
    !release.is_empty()
        && release != "."
        && release != ".."
        && !release.contains(['/', '\0'])
        && !release.chars().any(char::is_control)
}

/// One needed (or explicitly unneeded) module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    pub name: &'static str,
    /// False: reported as not needed (openvswitch with the userspace datapath).
    pub needed: bool,
    /// Not in the upstream kernel: at most a warning.
    pub out_of_tree: bool,
    /// The kernel config option that builds it, for the fix text.
    pub config: Option<&'static str>,
}

pub fn needs(tunnel: TunnelType, datapath: DatapathType) -> Vec<Need> {
    let tunnel = match tunnel {
        TunnelType::Geneve => ("geneve", Some("CONFIG_GENEVE"), false),
        TunnelType::Vxlan => ("vxlan", Some("CONFIG_VXLAN"), false),
        TunnelType::Stt => ("stt", None, true),
    };
    vec![
        Need {
            name: "openvswitch",
            needed: datapath == DatapathType::System,
            out_of_tree: false,
            config: Some("CONFIG_OPENVSWITCH"),
        },
        Need {
            name: tunnel.0,
            needed: true,
            out_of_tree: tunnel.2,
            config: tunnel.1,
        },
        Need {
            name: "ip_tables",
            needed: true,
            out_of_tree: false,
            config: Some("CONFIG_IP_NF_IPTABLES"),
        },
    ]
}

/// What the host says about modules. Built by [`gather`]; tests build it directly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// `None`: no `proc/modules`, the kernel has no loadable-module support.
    pub loaded: Option<BTreeSet<String>>,
    /// name -> path, from modules.builtin.
    pub builtin: BTreeMap<String, String>,
    /// Normalized names whose `sys/module/NAME` exists.
    pub sysfs: BTreeSet<String>,
    /// name -> path relative to `lib/modules/REL`, from modules.dep or the walk.
    pub files: BTreeMap<String, String>,
    /// The release whose `lib/modules` was searched; `None` when unknown.
    pub release: Option<String>,
    /// Files that exist but could not be read.
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Loaded,
    /// With the evidence, for the detail.
    BuiltIn(String),
    /// Path relative to `lib/modules/REL`.
    Loadable(String),
    /// A module file exists, but the kernel cannot load modules.
    Unloadable(String),
    Absent,
}

pub fn state(name: &str, facts: &Facts) -> State {
    let n = normalize(name);
    if facts.loaded.as_ref().is_some_and(|l| l.contains(&n)) {
        return State::Loaded;
    }
    if let Some(path) = facts.builtin.get(&n) {
        return State::BuiltIn(format!("modules.builtin lists {path}"));
    }
    if facts.sysfs.contains(&n) {
        return State::BuiltIn(if facts.loaded.is_some() {
            format!("sys/module/{n} exists but proc/modules does not list it")
        } else {
            format!("sys/module/{n} exists")
        });
    }
    match (facts.files.get(&n), facts.loaded.is_some()) {
        (Some(file), true) => State::Loadable(file.clone()),
        (Some(file), false) => State::Unloadable(file.clone()),
        (None, _) => State::Absent,
    }
}

/// Reads the module evidence for `names` under `root`.
pub fn gather(root: &Path, release: Option<&str>, names: &[&str]) -> Facts {
    let mut facts = Facts {
        release: release.filter(|r| is_path_component(r)).map(str::to_string),
        ..Facts::default()
    };
    let mut read = |path: PathBuf| match read_optional(&path) {
        Ok(text) => text,
        Err(e) => {
            facts.problems.push(e.to_string());
            // Unreadable is not "absent": for proc/modules it still proves module support.
            Some(String::new())
        }
    };
    let loaded = read(root.join("proc/modules")).map(|t| parse_proc_modules(&t));
    let mut builtin = BTreeMap::new();
    let mut files = BTreeMap::new();
    let dir = facts
        .release
        .as_ref()
        .map(|r| root.join("lib/modules").join(r));
    if let Some(dir) = &dir {
        if let Some(text) = read(dir.join("modules.builtin")) {
            builtin = parse_module_paths(&text);
        }
        if let Some(text) = read(dir.join("modules.dep")) {
            files = parse_module_paths(&text);
        }
    }
    facts.loaded = loaded;
    facts.builtin = builtin;
    facts.files = files;
    for name in names {
        let n = normalize(name);
        let sys = root.join("sys/module");
        if sys.join(&n).is_dir() || sys.join(name).is_dir() {
            facts.sysfs.insert(n);
        }
    }
    let unresolved: BTreeSet<String> = names
        .iter()
        .map(|n| normalize(n))
        .filter(|n| state(n, &facts) == State::Absent)
        .collect();
    if let (Some(dir), false) = (&dir, unresolved.is_empty()) {
        // modules.dep can be stale or missing (depmod not run); the files are the truth.
        for (name, path) in walk(dir, &unresolved) {
            facts.files.entry(name).or_insert(path);
        }
    }
    facts
}

/// Finds module files for `wanted` names under `dir`, without following symlinks.
fn walk(dir: &Path, wanted: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    let mut stack = vec![(dir.to_path_buf(), 0usize)];
    let mut seen = 0usize;
    while let Some((current, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            seen += 1;
            if seen > MAX_WALK_ENTRIES {
                return found;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            if kind.is_dir() {
                if depth < MAX_WALK_DEPTH {
                    stack.push((path, depth + 1));
                }
            } else if kind.is_file() {
                let file = entry.file_name();
                let Some(name) = file.to_str().and_then(module_name_of_file) else {
                    continue;
                };
                let name = normalize(name);
                if wanted.contains(&name) {
                    let rel = path.strip_prefix(dir).unwrap_or(&path);
                    found
                        .entry(name)
                        .or_insert_with(|| rel.display().to_string());
                }
            }
        }
    }
    found
}

/// The module checks, in the order of `needs`, then one warning per unreadable file.
pub fn evaluate(needs: &[Need], facts: &Facts, manage: bool, datapath: DatapathType) -> Vec<Check> {
    let mut checks: Vec<Check> = needs
        .iter()
        .map(|need| module_check(need, &state(need.name, facts), facts, manage, datapath))
        .collect();
    for p in &facts.problems {
        checks.push(Check::new(
            "modules/files",
            Status::Warn,
            format!("{p}; module state may be wrong"),
        ));
    }
    checks
}

fn module_check(
    need: &Need,
    state: &State,
    facts: &Facts,
    manage: bool,
    datapath: DatapathType,
) -> Check {
    let name = format!("{MODULE_PREFIX}{}", need.name);
    let m = need.name;
    if !need.needed {
        return Check::ok(name, "not needed (userspace datapath)");
    }
    let rel = facts.release.as_deref().unwrap_or("REL");
    match state {
        State::Loaded => Check::ok(name, "loaded"),
        State::BuiltIn(evidence) => Check::ok(name, format!("built into the kernel ({evidence})")),
        State::Loadable(file) if manage => Check::new(
            name,
            Status::WillFix,
            format!("not loaded; will be loaded from lib/modules/{rel}/{file}"),
        )
        .with_fix(format!("modprobe {m}")),
        State::Loadable(file) => Check::new(
            name,
            unloaded_status(m, datapath),
            format!(
                "not loaded (available as lib/modules/{rel}/{file}, but automatic loading is \
                 off); {}",
                on_demand(m, datapath)
            ),
        )
        .with_fix(format!(
            "modprobe {m} on the node (DISABLE_MODULES_MANAGEMENT=true turns off automatic \
             loading)"
        )),
        State::Unloadable(file) => {
            let (status, why) = missing(need, datapath);
            let detail = format!(
                "not built in, and the kernel cannot load modules (no proc/modules), so \
                 lib/modules/{rel}/{file} is unusable; {why}"
            );
            Check::new(name, status, detail).with_fix(build_in(need))
        }
        State::Absent => absent_check(name, need, facts, datapath),
    }
}

/// A module that is neither loaded, built in, nor usable as a file: how bad that is for
/// `datapath` (stt, not being upstream, is at most a warning), and why.
fn missing(need: &Need, datapath: DatapathType) -> (Status, String) {
    if need.out_of_tree {
        let why = format!(
            "{} is not in the upstream kernel; OVS must provide it",
            need.name
        );
        (Status::Warn, why)
    } else if datapath == DatapathType::System {
        let why = "the kernel datapath (datapath_type=system) needs it";
        (Status::Fail, why.to_string())
    } else {
        let why = "the userspace datapath (netdev) can run without it";
        (Status::Warn, why.to_string())
    }
}

/// The fix when only a different kernel can provide the module.
fn build_in(need: &Need) -> String {
    match need.config {
        Some(opt) => format!("use a kernel built with {opt}=y"),
        None => format!("use a kernel that has {} built in", need.name),
    }
}

/// [`State::Absent`]: says where we looked, and what to install (or which kernel to use).
fn absent_check(name: String, need: &Need, facts: &Facts, datapath: DatapathType) -> Check {
    let m = need.name;
    let (status, why) = missing(need, datapath);
    let searched = match (&facts.release, facts.loaded.is_some()) {
        (_, false) => {
            "not built in, and the kernel cannot load modules (no proc/modules)".to_string()
        }
        (Some(rel), true) => {
            format!("not loaded, not built in, and not found under lib/modules/{rel}")
        }
        (None, true) => "not loaded and not built in; lib/modules not searched \
                         (kernel release unknown)"
            .to_string(),
    };
    let fix = if facts.loaded.is_none() {
        build_in(need)
    } else if need.out_of_tree {
        format!(
            "install Open vSwitch's kernel module package providing {m}, or use TUNNEL_TYPE=geneve"
        )
    } else {
        format!(
            "install the kernel module package providing {m}, or {}",
            build_in(need)
        )
    };
    Check::new(name, status, format!("{searched}; {why}")).with_fix(fix)
}

/// A module that exists on the host but is not loaded and that we may not load (no
/// CAP_SYS_MODULE, no modprobe, DISABLE_MODULES_MANAGEMENT): only the kernel datapath's own
/// module is fatal. Kube-OVN's pod has no CAP_SYS_MODULE and its init container loads
/// `openvswitch` alone; the kernel loads tunnel and netfilter modules itself on first use.
pub fn unloaded_status(module: &str, datapath: DatapathType) -> Status {
    if module == "openvswitch" && datapath == DatapathType::System {
        Status::Fail
    } else {
        Status::Warn
    }
}

/// Who is expected to load a module we did not, in words for the operator.
pub fn on_demand(m: &str, datapath: DatapathType) -> String {
    match m {
        "openvswitch" if datapath == DatapathType::System => {
            "the kernel datapath (datapath_type=system) needs it before ovs-vswitchd starts".into()
        }
        "openvswitch" => "not needed by the userspace datapath".into(),
        "ip_tables" => "the kernel loads it on demand when iptables first uses a table".into(),
        "stt" => "stt is not in the upstream kernel; OVS must provide it".into(),
        _ => format!(
            "the kernel loads it on demand when ovs-vswitchd creates the first {m} tunnel port"
        ),
    }
}

/// `Ok(None)` when the file, or a directory on its way, does not exist.
fn read_optional(path: &Path) -> Result<Option<String>, ModulesError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(None)
        }
        Err(source) => Err(ModulesError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests;

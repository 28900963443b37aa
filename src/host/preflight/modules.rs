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
//!
//! Layout: reading the evidence off the host is in `evidence`; what it means for each module
//! (the [`State`] and the [`Check`]) is here.

mod evidence;

use std::collections::{BTreeMap, BTreeSet};

use crate::config::{DatapathType, TunnelType};

use super::report::{Check, Status, MODULE_PREFIX};

pub use evidence::{
    gather, is_path_component, module_name_of_file, normalize, parse_module_paths,
    parse_proc_modules, ModulesError,
};

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

#[cfg(test)]
mod tests;

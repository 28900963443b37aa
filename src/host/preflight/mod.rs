//! Preflight: every host check the node needs before Open vSwitch starts, without changing
//! the host. Kernel release ([`kernel`]), kernel modules ([`modules`]) and other CNIs ([`cni`]),
//! gathered into one [`Report`].
//!
//! Invariants:
//! - [`check`] only reads, and only under `Input::host_root` ("/" in production; tests build
//!   fake hosts in temp dirs), so the same code judges a real node and a fixture.
//! - The only side effect is [`apply_fixes`], which loads the modules the report marked
//!   [`Status::WillFix`] through a [`ModuleLoader`], so tests drive it with a fake loader.
//! - A file we cannot read or understand is a warning naming it, never a panic; only facts
//!   that would break the node are [`Status::Fail`].

pub mod cni;
pub mod kernel;
pub mod modules;
pub mod report;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::config::{DatapathType, TunnelType};
use crate::process::bounded::{self, BoundedError};

pub use report::{Check, Report, Status};

#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub host_root: &'a Path,
    pub tunnel: TunnelType,
    pub datapath: DatapathType,
    /// False when DISABLE_MODULES_MANAGEMENT=true: missing modules are reported, not loaded.
    pub manage_modules: bool,
}

/// Runs every check against the host under `input.host_root`.
pub fn check(input: &Input) -> Report {
    let root = input.host_root;
    let osrelease = kernel::read_osrelease(root);
    // Only 3.x kernels consult it, but existence is one cheap stat.
    let if_inet6 = root.join(kernel::IF_INET6).exists();
    let mut checks = kernel::evaluate(
        &root.join(kernel::OSRELEASE),
        &osrelease,
        if_inet6,
        input.tunnel,
    );
    let needs = modules::needs(input.tunnel, input.datapath);
    let names: Vec<&str> = needs.iter().map(|n| n.name).collect();
    let facts = modules::gather(root, osrelease.as_deref().ok(), &names);
    checks.extend(modules::evaluate(
        &needs,
        &facts,
        input.manage_modules,
        input.datapath,
    ));
    checks.extend(cni::checks(root));
    Report { checks }
}

/// Loads a kernel module. A trait so [`apply_fixes`] is tested without touching the kernel.
pub trait ModuleLoader {
    fn load(&mut self, module: &str) -> Result<(), ModprobeError>;
}

#[derive(Debug, thiserror::Error)]
pub enum ModprobeError {
    #[error("{module:?} is not a module name (expected letters, digits, '_' or '-', not starting with '-')")]
    BadName { module: String },
    /// modprobe could not start, or missed its deadline and was killed.
    #[error("modprobe {module}: {source}")]
    Run {
        module: String,
        #[source]
        source: BoundedError,
    },
    #[error("modprobe {module} failed ({status}): {stderr}")]
    Failed {
        module: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("modprobe {module} exited 0 but {module} is not in {} (is modprobe a stub, as with Kube-OVN's DISABLE_MODULES_MANAGEMENT?)", proc_modules.display())]
    NotLoaded {
        module: String,
        proc_modules: std::path::PathBuf,
    },
}

/// How long one modprobe may take before it is killed. Loading a real module can take
/// seconds: modprobe loads its dependencies first, compressed modules are decompressed, and
/// each module's init runs inside the call. 30 s leaves room for that on a busy node, while a
/// modprobe stuck in the kernel cannot hold the start forever.
pub const MODPROBE_DEADLINE: Duration = Duration::from_secs(30);

/// Runs `modprobe -- NAME` in the container, against the host's `/lib/modules` mounted there,
/// killing it (with its process group) at `deadline`.
///
/// Invariant: called before the supervisor's reaper thread exists: [`bounded::output`] waits
/// for its own child with `waitpid(pid)`; once the reaper owns `waitpid(-1)` it could reap
/// modprobe first and the wait would get ECHILD.
///
/// `proc_modules`, when set, is read after a successful modprobe: Kube-OVN's chart turns module
/// management off by linking `modprobe` to `/bin/true`, which "succeeds" without loading.
#[derive(Debug, Clone)]
pub struct Modprobe {
    /// `modprobe`, found through PATH.
    pub program: std::path::PathBuf,
    pub proc_modules: Option<std::path::PathBuf>,
    /// [`MODPROBE_DEADLINE`] unless a test wants a hung modprobe to fail sooner.
    pub deadline: Duration,
}

impl Default for Modprobe {
    fn default() -> Self {
        Modprobe {
            program: "modprobe".into(),
            proc_modules: None,
            deadline: MODPROBE_DEADLINE,
        }
    }
}

impl Modprobe {
    pub fn run(&self, module: &str) -> Result<(), ModprobeError> {
        // `--` already stops option parsing; the name check also keeps paths and blanks out
        // of an argument that modprobe would resolve against the filesystem.
        let valid = !module.is_empty()
            && !module.starts_with('-')
            && module
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return Err(ModprobeError::BadName {
                module: module.to_string(),
            });
        }
        let mut cmd = Command::new(&self.program);
        cmd.arg("--").arg(module);
        let out = bounded::output(cmd, self.deadline).map_err(|source| ModprobeError::Run {
            module: module.to_string(),
            source,
        })?;
        if out.status.success() {
            return Ok(());
        }
        Err(ModprobeError::Failed {
            module: module.to_string(),
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

impl ModuleLoader for Modprobe {
    fn load(&mut self, module: &str) -> Result<(), ModprobeError> {
        self.run(module)?;
        let Some(path) = &self.proc_modules else {
            return Ok(());
        };
        let loaded = std::fs::read_to_string(path)
            .map(|text| modules::parse_proc_modules(&text).contains(&modules::normalize(module)))
            .unwrap_or(true);
        if loaded {
            Ok(())
        } else {
            Err(ModprobeError::NotLoaded {
                module: module.to_string(),
                proc_modules: path.clone(),
            })
        }
    }
}

/// Loads every module whose check is [`Status::WillFix`] and rewrites that check with the
/// outcome: loaded → ok; not loaded → fail only for `openvswitch` with the kernel datapath,
/// a warning naming who loads it on demand otherwise ([`modules::unloaded_status`]).
pub fn apply_fixes(report: &mut Report, loader: &mut dyn ModuleLoader, datapath: DatapathType) {
    for c in report
        .checks
        .iter_mut()
        .filter(|c| c.status == Status::WillFix)
    {
        let Some(module) = c.module().map(str::to_string) else {
            continue;
        };
        match loader.load(&module) {
            Ok(()) => {
                c.status = Status::Ok;
                c.detail = "loaded by modprobe".to_string();
                c.fix = None;
            }
            Err(e) => {
                c.status = modules::unloaded_status(&module, datapath);
                c.detail = format!(
                    "not loaded, and loading it here failed: {e}; {}",
                    modules::on_demand(&module, datapath)
                );
                c.fix = Some(format!(
                    "load it on the node (modprobe {module}, or Kube-OVN's privileged init container), or give the pod CAP_SYS_MODULE"
                ));
            }
        }
    }
}

#[cfg(test)]
mod testhost;

#[cfg(test)]
mod tests;

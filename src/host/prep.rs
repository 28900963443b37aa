//! Everything the node needs from the host before any daemon starts: the preflight report
//! (`preflight` prints it; `run` refuses to start on a fail) and the fixes `run` then applies —
//! modprobe, the run-dir link, stale-state removal, the tunnel port rule.
//!
//! Invariants: [`report`] only reads; [`load_modules`] and [`fix`] change the host, and the
//! caller (`supervisor::prepare`) runs them only after the report has no fail, before the
//! reaper thread exists (modprobe and iptables are waited on through std, each under a
//! deadline: `process::bounded`). The sandbox never
//! touches anything outside its directory: no modules, no link, no firewall (the config turns
//! those off), only its own stale files. Nothing here talks to another supervisor: who runs
//! the node is the caller's question, passed in.

use crate::config::Config;
use crate::daemon::Daemon;
use crate::host::firewall::{self, Family, HostRunner, Runner};
use crate::host::preflight::{self, Check, Report, Status};
use crate::process::bounded::BoundedError;
use crate::{host::stale, host::symlink, settings};

#[derive(Debug, thiserror::Error)]
pub enum HostPrepError {
    #[error("preflight failed, not starting:\n{0}")]
    Refused(String),
    #[error("run-dir link: {0}")]
    Symlink(#[from] symlink::SymlinkError),
    #[error("cannot remove stale {path}: {source}")]
    Stale {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("firewall: the tunnel port rule cannot be set: {source} ({hint}); OVS_OVN_SUPERVISOR_FIREWALL_REQUIRED=true: not starting without it")]
    FirewallRequired {
        source: firewall::FirewallError,
        hint: &'static str,
    },
}

/// The tunnel port rule once [`fix`] has run.
#[derive(Debug)]
pub enum RuleAtStart {
    /// We do not manage it (the sandbox, `OVS_OVN_SUPERVISOR_FIREWALL=false`).
    Unmanaged,
    InPlace,
    /// It could not be set: the node starts without it, and the recheck keeps trying.
    Missing(firewall::FirewallError),
}

fn check(name: &str, status: Status, detail: String, fix: Option<&str>) -> Check {
    Check {
        name: name.to_string(),
        status,
        detail,
        fix: fix.map(str::to_string),
    }
}

fn lock_files(cfg: &Config) -> Vec<std::path::PathBuf> {
    let l = &cfg.layout;
    let mut v = vec![l.ovs_dbdir.join(".conf.db.~lock~")];
    if cfg.southbound.embedded {
        v.push(l.ovn_dbdir.join(".ovnsb_db.db.~lock~"));
    }
    v
}

/// The files of the daemons we run, by name: never ovn-central's `ovnnb_db.*`, `ovnsb_db.*`
/// or `ovn-northd.*`, which share the host's /run/ovn on master nodes. The embedded
/// Southbound's files are ours only in a sandbox that runs one.
pub fn owned_files(cfg: &Config) -> Vec<stale::Owned> {
    let l = &cfg.layout;
    let mut daemons = vec![
        (Daemon::OvsdbServer, vec![l.db_sock()]),
        (Daemon::Vswitchd, vec![l.mgmt_sock(settings::BRIDGE)]),
        (Daemon::OvnController, vec![]),
    ];
    if cfg.southbound.embedded {
        daemons.push((Daemon::SbServer, vec![l.sb_sock(), l.sb_ctl()]));
    }
    daemons
        .into_iter()
        .map(|(d, sockets)| stale::Owned {
            program: d.program(),
            pidfile: d.pidfile(l),
            // The embedded Southbound's control socket has a fixed name (among `sockets`).
            ctl_prefix: (d != Daemon::SbServer).then_some(d.program()),
            sockets,
        })
        .collect()
}

pub fn stale_scan(cfg: &Config) -> Vec<stale::Finding> {
    stale::scan(&owned_files(cfg), &lock_files(cfg))
}

/// Removes what the stale scan proves stale; after a legacy takeover too, since a daemon that
/// had to be killed leaves its files behind.
pub fn remove_stale(cfg: &Config) -> Result<(), HostPrepError> {
    for (path, result) in stale::remove(&stale_scan(cfg)) {
        result.map_err(|source| HostPrepError::Stale {
            path: path.clone(),
            source,
        })?;
        tracing::info!(path = %path.display(), "removed stale file");
    }
    Ok(())
}

fn firewall_check(cfg: &Config) -> Check {
    let runner = HostRunner::default();
    let backend = firewall::detect_backend(&runner);
    let rule = firewall::rule_for(cfg.tunnel);
    let program = match backend {
        firewall::Backend::Legacy => "iptables-legacy",
        firewall::Backend::Nft => "iptables-nft",
    };
    let spec = rule.spec();
    let mut args = firewall::LOCK_WAIT.to_vec();
    args.extend(["-C", "INPUT"]);
    args.extend(spec.iter().map(String::as_str));
    let what = format!("INPUT accept {}/{} ({backend:?})", rule.proto, rule.port);
    match runner.run(program, &args) {
        Ok(o) if o.code == Some(0) => {
            check("firewall", Status::Ok, format!("{what} present"), None)
        }
        Ok(o) if o.code == Some(1) => check(
            "firewall",
            Status::WillFix,
            format!("{what} missing: run inserts it once"),
            None,
        ),
        Ok(o) => {
            let failed = firewall::FirewallError::Failed {
                program: program.into(),
                args: args.iter().map(|a| a.to_string()).collect(),
                code: o.code,
                stderr: o.stderr,
            };
            let hint = firewall::hint(&failed);
            let run = match cfg.firewall_required {
                true => "run fails (OVS_OVN_SUPERVISOR_FIREWALL_REQUIRED=true)",
                false => "run starts without the rule and keeps trying",
            };
            let detail = format!("{failed}; {run}");
            check("firewall", Status::Warn, detail, Some(hint))
        }
        Err(e) => check(
            "firewall",
            Status::Warn,
            format!("cannot run {program}: {e}"),
            Some(match e {
                firewall::RunError::Bounded(BoundedError::Spawn { .. }) => {
                    "install iptables in the image"
                }
                _ => "find what holds iptables up (the xtables lock, a hung nft)",
            }),
        ),
    }
}

/// The stale-state lines of the report; a live daemon is another supervisor's (`other`: not
/// listed), one of start-ovs.sh's to take over, or a fail.
fn stale_checks(cfg: &Config, other: bool) -> Vec<Check> {
    let findings = stale_scan(cfg);
    let mut checks = Vec::new();
    for f in &findings {
        checks.push(match f {
            stale::Finding::LiveDaemon { .. } if other => continue,
            stale::Finding::LiveDaemon { pidfile, .. }
                if cfg.takeover
                    && Daemon::NODE
                        .iter()
                        .any(|d| d.pidfile(&cfg.layout) == *pidfile) =>
            {
                check(
                    "stale state",
                    Status::WillFix,
                    format!(
                        "{}: taken over from ovs-ctl/ovn-ctl (start-ovs.sh) daemons",
                        f.describe()
                    ),
                    None,
                )
            }
            stale::Finding::LiveDaemon { pidfile, .. } => check(
                "stale state",
                Status::Fail,
                format!("{} outside any supervisor", f.describe()),
                Some(&format!(
                    "stop it (ovs-appctl -t {} exit) or the pod that runs it",
                    pidfile.with_extension("").display()
                )),
            ),
            _ => check(
                "stale state",
                Status::WillFix,
                format!("{}: will remove", f.describe()),
                None,
            ),
        });
    }
    if findings.is_empty() {
        checks.push(check(
            "stale state",
            Status::Ok,
            "no stale pidfiles, sockets or locks".into(),
            None,
        ));
    }
    checks
}

/// Every check, reading only. `other`: the pid of another supervisor that answers on this
/// run dir, if one does.
pub fn report(cfg: &Config, other: Option<i32>) -> Report {
    let mut r = preflight::check(&preflight::Input {
        host_root: &cfg.host_root,
        tunnel: cfg.tunnel,
        datapath: cfg.datapath_type,
        manage_modules: cfg.manage_modules,
    });
    if let Some(link) = &cfg.rundir_link {
        let target = &cfg.layout.ovs_rundir;
        r.checks.push(match symlink::state(link, target) {
            Ok(symlink::LinkState::Correct) => check(
                "run-dir link",
                Status::Ok,
                format!("{} links to {}", link.display(), target.display()),
                None,
            ),
            Ok(symlink::LinkState::NonEmptyDir) => check(
                "run-dir link",
                Status::Fail,
                format!("{} is a non-empty directory", link.display()),
                Some("move its contents to OVS_RUNDIR and remove it"),
            ),
            Ok(s) => check(
                "run-dir link",
                Status::WillFix,
                format!("{} {}", link.display(), s.describe(target)),
                None,
            ),
            Err(e) => check("run-dir link", Status::Fail, e.to_string(), None),
        });
    }
    r.checks.push(
        match crate::host::fsguard::check_layout(&cfg.layout, false) {
            Ok(()) => check(
                "directories",
                Status::Ok,
                "owned by root or us, not writable by others, no untrusted links".into(),
                None,
            ),
            Err(e) => check("directories", Status::Fail, e.to_string(), None),
        },
    );
    if let Some(pid) = other {
        let dir = cfg.layout.ovs_rundir.display();
        r.checks.push(if cfg.takeover {
            check(
                "instance",
                Status::WillFix,
                format!("ovs-ovn-supervisor pid {pid} runs this node ({dir}): run takes it over (rolling update)"),
                None,
            )
        } else {
            check(
                "instance",
                Status::Fail,
                format!("ovs-ovn-supervisor pid {pid} already runs this node ({dir})"),
                Some("stop the other instance first (expected when preflight runs inside the running pod)"),
            )
        });
    }
    r.checks.extend(stale_checks(cfg, other.is_some()));
    if cfg.firewall {
        r.checks.push(firewall_check(cfg));
    }
    r
}

fn failures(r: &Report) -> String {
    r.checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| {
            let fix = c
                .fix
                .as_deref()
                .map(|f| format!(" (fix: {f})"))
                .unwrap_or_default();
            format!("  {}: {}{fix}", c.name, c.detail)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Loads the modules the report found loadable (when we manage modules), logs every check, and
/// refuses when a fail is left.
pub fn load_modules(cfg: &Config, report: &mut Report) -> Result<(), HostPrepError> {
    if cfg.manage_modules {
        let mut loader = preflight::Modprobe {
            proc_modules: Some(cfg.host_root.join("proc/modules")),
            ..Default::default()
        };
        preflight::apply_fixes(report, &mut loader, cfg.datapath_type);
    }
    for c in &report.checks {
        let fix = c.fix.as_deref().unwrap_or("");
        match c.status {
            Status::Fail => tracing::error!(check = %c.name, fix, "{}", c.detail),
            Status::Warn => tracing::warn!(check = %c.name, fix, "{}", c.detail),
            _ => tracing::debug!(check = %c.name, status = ?c.status, "{}", c.detail),
        }
    }
    match report.failed() {
        true => Err(HostPrepError::Refused(failures(report))),
        false => Ok(()),
    }
}

/// The fixes `run` owns once the node is ours: the run-dir link, stale files, the tunnel port
/// rule (see [`ensure_rule`] for when its failure stops the start).
pub fn fix(cfg: &Config) -> Result<RuleAtStart, HostPrepError> {
    if let Some(link) = &cfg.rundir_link {
        match symlink::ensure(link, &cfg.layout.ovs_rundir) {
            Ok(symlink::LinkState::Correct) => {}
            Ok(before) => tracing::info!(link = %link.display(), was = ?before, "run-dir link set"),
            // Kube-OVN's image as 65534: no /usr/local/var, and nothing there looks for it.
            Err(e) if e.is_not_permitted() => tracing::warn!(
                link = %link.display(),
                "run-dir link not made ({e}): only programs built with a /usr/local prefix look there; set OVS_OVN_SUPERVISOR_RUNDIR_LINK to a writable path if one does"
            ),
            Err(e) => return Err(e.into()),
        }
    }
    remove_stale(cfg)?;
    match cfg.firewall {
        true => ensure_rule(cfg, &HostRunner::default()),
        false => Ok(RuleAtStart::Unmanaged),
    }
}

/// The tunnel port rule at start. A node without it still forwards everything but tunnel
/// traffic that the host's INPUT would drop, while a failed start forwards nothing and
/// crash-loops (`ovs-ctl` too goes on without its rule when iptables fails): so a failure is
/// a warning naming the backend, the command and iptables' words, unless the operator made
/// it fatal (`firewall_required`).
pub fn ensure_rule(cfg: &Config, runner: &dyn Runner) -> Result<RuleAtStart, HostPrepError> {
    let backend = firewall::detect_backend(runner);
    let families = families(cfg.firewall_ipv6, &cfg.host_root);
    match firewall::ensure(runner, backend, cfg.tunnel, &families) {
        Ok(changes) => {
            for change in changes {
                tracing::info!("firewall: {change}");
            }
            Ok(RuleAtStart::InPlace)
        }
        Err(source) if cfg.firewall_required => Err(HostPrepError::FirewallRequired {
            hint: firewall::hint(&source),
            source,
        }),
        Err(e) => {
            let retry = match cfg.firewall_recheck {
                Some(every) => format!("tried again every {every:?}"),
                None => "not tried again (OVS_OVN_SUPERVISOR_FIREWALL_RECHECK_MS=0)".into(),
            };
            tracing::warn!(
                ?backend,
                "firewall: starting without the tunnel port rule, {retry}: {e} ({}); OVS_OVN_SUPERVISOR_FIREWALL_REQUIRED=true refuses to start instead",
                firewall::hint(&e)
            );
            Ok(RuleAtStart::Missing(e))
        }
    }
}

/// Families the `firewall` subcommand acts on.
pub fn families(cfg_ipv6: Option<bool>, host_root: &std::path::Path) -> Vec<Family> {
    if cfg_ipv6.unwrap_or_else(|| firewall::ipv6_wanted(host_root)) {
        vec![Family::V4, Family::V6]
    } else {
        vec![Family::V4]
    }
}

#[cfg(test)]
mod tests;

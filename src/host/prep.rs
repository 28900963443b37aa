//! Everything the node needs from the host before any daemon starts: the preflight report
//! (`preflight` prints it; `run` refuses to start on a fail) and the fixes `run` then applies —
//! modprobe, the run-dir link, stale-state removal, the tunnel port rule.
//!
//! Invariants: [`report`] only reads; [`prepare`] changes the host only after the report has no
//! fail, and is called before the reaper thread exists (modprobe and iptables are waited on
//! through std). The sandbox never touches anything outside its directory: no modules, no link,
//! no firewall (the config turns those off), only its own stale files. Old daemons of
//! `ovs-ctl`/`ovn-ctl` are only found here; the first start stage stops them
//! ([`crate::takeover::legacy`]), since saving their flows needs the reaper.

use crate::config::Config;
use crate::daemon::Daemon;
use crate::host::firewall::{self, Family, HostRunner, Runner};
use crate::host::instance::{self, InstanceLock};
use crate::host::preflight::{self, Check, Report, Status};
use crate::takeover::Predecessor;
use crate::{control, host::stale, host::symlink, settings, takeover::legacy};

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
    #[error("firewall: {0}")]
    Firewall(#[from] firewall::FirewallError),
    #[error(transparent)]
    Locked(#[from] instance::LockError),
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

fn stale_scan(cfg: &Config) -> Vec<stale::Finding> {
    stale::scan(&owned_files(cfg), &lock_files(cfg))
}

/// Node daemons still running on our run dirs with no supervisor: a dead successor's, when a
/// handed-over instance takes the node back. Stopped the way an `ovs-ctl` node is.
pub fn leftover_daemons(cfg: &Config) -> Option<legacy::LegacyNode> {
    legacy::find(&cfg.layout, &stale_scan(cfg), &cfg.host_root.join("proc"))
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

/// Another live supervisor on this run dir: its control socket answers.
pub(crate) fn other_instance(cfg: &Config) -> Option<i32> {
    let status = control::ask(
        &cfg.layout.control_sock(),
        "status",
        std::time::Duration::from_millis(500),
    )
    .ok()?;
    let pid = status.get("pid")?.as_i64()? as i32;
    (pid != std::process::id() as i32).then_some(pid)
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
        Ok(o) => check(
            "firewall",
            Status::Warn,
            format!("{program} -C failed ({:?}): {}", o.code, o.stderr.trim()),
            Some("check that iptables works in the pod (NET_ADMIN, hostNetwork)"),
        ),
        Err(e) => check(
            "firewall",
            Status::Warn,
            format!("cannot run {program}: {e}"),
            Some("install iptables in the image"),
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
                if cfg.takeover && legacy::is_ours(&cfg.layout, pidfile) =>
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

/// Every check, reading only.
pub fn report(cfg: &Config) -> Report {
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
    let other = other_instance(cfg);
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

/// Applies the fixes `run` owns; refuses when the report (after loading modules) has a fail.
/// Takes the node over from a live instance first when allowed; returns who ran it before and
/// the instance lock (`lock` from [`claim`], or taken after the handover).
pub fn prepare(
    cfg: &Config,
    report: &mut Report,
    lock: Option<InstanceLock>,
) -> Result<(Predecessor, InstanceLock), HostPrepError> {
    if cfg.manage_modules {
        let mut loader = preflight::Modprobe {
            proc_modules: Some(cfg.host_root.join("proc/modules")),
            ..Default::default()
        };
        preflight::apply_fixes(report, &mut loader, cfg.datapath_type);
    }
    for c in &report.checks {
        match c.status {
            Status::Fail => {
                tracing::error!(check = %c.name, fix = c.fix.as_deref().unwrap_or(""), "{}", c.detail)
            }
            Status::Warn => {
                tracing::warn!(check = %c.name, fix = c.fix.as_deref().unwrap_or(""), "{}", c.detail)
            }
            _ => tracing::debug!(check = %c.name, status = ?c.status, "{}", c.detail),
        }
    }
    if report.failed() {
        return Err(HostPrepError::Refused(failures(report)));
    }
    let mut predecessor = Predecessor::None;
    let lock = if let Some(pid) = other_instance(cfg).filter(|_| cfg.takeover) {
        let (p, lock) = crate::takeover::hand_over(cfg, pid, lock)?;
        predecessor = p;
        lock
    } else {
        // The holder we saw in `claim` may have gone since: then the lock is free.
        let lock = match lock {
            Some(l) => l,
            None => instance::try_acquire(&cfg.layout.ovs_rundir)?,
        };
        let proc_root = cfg.host_root.join("proc");
        if let Some(old) =
            legacy::find(&cfg.layout, &stale_scan(cfg), &proc_root).filter(|_| cfg.takeover)
        {
            tracing::info!(old = %old.describe(), "ovs-ctl/ovn-ctl daemons run this node: taking it over");
            predecessor = Predecessor::Legacy(old);
        }
        lock
    };
    if let Some(link) = &cfg.rundir_link {
        let before = symlink::ensure(link, &cfg.layout.ovs_rundir)?;
        if before != symlink::LinkState::Correct {
            tracing::info!(link = %link.display(), was = ?before, "run-dir link set");
        }
    }
    remove_stale(cfg)?;
    if cfg.firewall {
        let runner = HostRunner::default();
        let backend = firewall::detect_backend(&runner);
        for change in firewall::ensure(
            &runner,
            backend,
            cfg.tunnel,
            &families(cfg.firewall_ipv6, &cfg.host_root),
        )? {
            tracing::info!(?change, "firewall");
        }
    }
    Ok((predecessor, lock))
}

/// Families the `firewall` subcommand acts on.
pub fn families(cfg_ipv6: Option<bool>, host_root: &std::path::Path) -> Vec<Family> {
    if cfg_ipv6.unwrap_or_else(|| firewall::ipv6_wanted(host_root)) {
        vec![Family::V4, Family::V6]
    } else {
        vec![Family::V4]
    }
}

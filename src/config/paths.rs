//! Where every file of the node lives: run dirs, databases, logs, sockets, pidfiles.
//!
//! Invariants: in sandbox mode every path is under the sandbox directory (the directory flags
//! are ignored, with a warning), so a sandbox never writes outside it; outside the sandbox the
//! defaults are the paths the pod's host mounts use. Socket paths are checked against the
//! kernel's `sun_path` limit here, before anything is created. Control-socket names follow OVS's
//! own `NAME.PID.ctl` convention so `ovs-appctl -t ovs-vswitchd` keeps working for operators.

use std::path::{Path, PathBuf};

use super::cli::PathArgs;
use super::error::ConfigError;

/// A path from the environment: no control characters (a newline in a path ends up in
/// `ovn-remote`, in log lines and in argv), and absolute unless `relative_ok` (only the sandbox
/// directory is taken relative to the current directory; any other relative path would depend on
/// where the pod happened to start).
pub fn check_path(var: &'static str, p: &Path, relative_ok: bool) -> Result<(), ConfigError> {
    let text = p.to_string_lossy();
    let invalid = |expected: &str| ConfigError::invalid(var, &text, expected);
    if text.chars().any(char::is_control) {
        return Err(invalid("a path without control characters or newlines"));
    }
    if !relative_ok && !p.is_absolute() {
        return Err(invalid("an absolute path"));
    }
    Ok(())
}

/// `sizeof(sun_path) - 1` on Linux.
const MAX_SOCKET_PATH: usize = 107;

/// Length of the random tag in [`Layout::version_probe_dir`].
pub const VERSION_PROBE_TAG: usize = 6;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub sandbox: Option<PathBuf>,
    pub ovs_rundir: PathBuf,
    pub ovs_dbdir: PathBuf,
    pub ovs_logdir: PathBuf,
    pub ovs_sysconfdir: PathBuf,
    pub ovn_rundir: PathBuf,
    pub ovn_logdir: PathBuf,
    /// The embedded Southbound's database directory (sandbox only).
    pub ovn_dbdir: PathBuf,
}

impl Layout {
    pub fn resolve(args: &PathArgs, cwd: &Path) -> Result<(Layout, Vec<String>), ConfigError> {
        let mut warnings = Vec::new();
        let given = [
            ("OVS_RUNDIR", &args.ovs_rundir),
            ("OVS_DBDIR", &args.ovs_dbdir),
            ("OVS_LOGDIR", &args.ovs_logdir),
            ("OVS_SYSCONFDIR", &args.ovs_sysconfdir),
            ("OVN_RUNDIR", &args.ovn_rundir),
            ("OVN_LOGDIR", &args.ovn_logdir),
        ];
        let layout = if let Some(dir) = &args.sandbox {
            check_path("OVS_OVN_SUPERVISOR_SANDBOX", dir, true)?;
            let dir = if dir.is_absolute() {
                dir.clone()
            } else {
                cwd.join(dir)
            };
            // The embedded Southbound's socket path becomes part of `ovn-remote`, a
            // comma-separated list of UTF-8 remotes (found by fuzzing).
            match dir.to_str() {
                Some(s) if !s.contains(',') => {}
                _ => {
                    return Err(ConfigError::invalid(
                        "OVS_OVN_SUPERVISOR_SANDBOX",
                        &dir.to_string_lossy(),
                        "a UTF-8 directory path without commas (it becomes part of the OVN Southbound address)",
                    ))
                }
            }
            for (var, v) in given {
                if v.is_some() {
                    warnings.push(format!(
                        "{var} is ignored in sandbox mode: every path is under {}",
                        dir.display()
                    ));
                }
            }
            Layout {
                ovs_rundir: dir.join("run/openvswitch"),
                ovs_dbdir: dir.join("etc/openvswitch"),
                ovs_logdir: dir.join("log/openvswitch"),
                ovs_sysconfdir: dir.join("etc"),
                ovn_rundir: dir.join("run/ovn"),
                ovn_logdir: dir.join("log/ovn"),
                ovn_dbdir: dir.join("lib/ovn"),
                sandbox: Some(dir),
            }
        } else {
            for (var, v) in given {
                if let Some(p) = v {
                    check_path(var, p, false)?;
                }
            }
            let or = |v: &Option<PathBuf>, d: &str| v.clone().unwrap_or_else(|| PathBuf::from(d));
            Layout {
                sandbox: None,
                ovs_rundir: or(&args.ovs_rundir, "/var/run/openvswitch"),
                ovs_dbdir: or(&args.ovs_dbdir, "/etc/openvswitch"),
                ovs_logdir: or(&args.ovs_logdir, "/var/log/openvswitch"),
                ovs_sysconfdir: or(&args.ovs_sysconfdir, "/etc"),
                ovn_rundir: or(&args.ovn_rundir, "/var/run/ovn"),
                ovn_logdir: or(&args.ovn_logdir, "/var/log/ovn"),
                ovn_dbdir: PathBuf::from("/etc/ovn"),
            }
        };
        layout.check_socket_lengths()?;
        Ok((layout, warnings))
    }

    /// The longest socket names we create or connect to, checked with a 7-digit pid.
    fn check_socket_lengths(&self) -> Result<(), ConfigError> {
        let var = if self.sandbox.is_some() {
            "OVS_OVN_SUPERVISOR_SANDBOX"
        } else {
            "OVS_RUNDIR or OVN_RUNDIR"
        };
        let candidates = [
            (
                &self.ovs_rundir,
                self.ovs_rundir.join("ovs-vswitchd.9999999.ctl"),
            ),
            (&self.ovs_rundir, self.ovs_rundir.join("br-int.mgmt")),
            (
                &self.ovn_rundir,
                self.ovn_rundir.join("ovn-controller.9999999.ctl"),
            ),
            // The private ovn-controller that tells its internal version before a takeover.
            (
                &self.ovn_rundir,
                self.version_probe_dir(&"X".repeat(VERSION_PROBE_TAG))
                    .join("ovn-controller.9999999.ctl"),
            ),
        ];
        for (dir, socket) in candidates {
            let len = socket.as_os_str().len();
            if len > MAX_SOCKET_PATH {
                return Err(ConfigError::SocketPathTooLong {
                    var,
                    path: dir.clone(),
                    socket,
                    len,
                });
            }
        }
        Ok(())
    }

    pub fn conf_db(&self) -> PathBuf {
        self.ovs_dbdir.join("conf.db")
    }
    pub fn db_sock(&self) -> PathBuf {
        self.ovs_rundir.join("db.sock")
    }
    pub fn system_id_file(&self) -> PathBuf {
        self.ovs_sysconfdir.join("openvswitch/system-id.conf")
    }
    pub fn mgmt_sock(&self, bridge: &str) -> PathBuf {
        self.ovs_rundir.join(format!("{bridge}.mgmt"))
    }
    pub fn sb_db(&self) -> PathBuf {
        self.ovn_dbdir.join("ovnsb_db.db")
    }
    pub fn sb_sock(&self) -> PathBuf {
        self.ovn_rundir.join("ovnsb_db.sock")
    }
    pub fn sb_ctl(&self) -> PathBuf {
        self.ovn_rundir.join("ovnsb_db.ctl")
    }
    /// A private directory for a short run of ovn-controller that tells its internal version
    /// (`takeover::northd`); `tag` is [`VERSION_PROBE_TAG`] random characters.
    pub fn version_probe_dir(&self, tag: &str) -> PathBuf {
        self.ovn_rundir.join(format!(".v{tag}"))
    }
    /// The running supervisor's control socket, asked by `probe` and `status`.
    pub fn control_sock(&self) -> PathBuf {
        self.ovs_rundir.join("ovs-ovn-supervisor.sock")
    }
    /// Directories `run` creates before starting anything.
    pub fn dirs(&self) -> Vec<&Path> {
        let mut v = vec![
            self.ovs_rundir.as_path(),
            self.ovs_dbdir.as_path(),
            self.ovs_logdir.as_path(),
            self.ovn_rundir.as_path(),
            self.ovn_logdir.as_path(),
        ];
        if self.sandbox.is_some() {
            v.push(self.ovn_dbdir.as_path());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_keeps_every_path_inside_and_warns_about_ignored_dirs() {
        let args = PathArgs {
            sandbox: Some(PathBuf::from("sb")),
            ovs_rundir: Some(PathBuf::from("/var/run/openvswitch")),
            ..Default::default()
        };
        let (l, warnings) = Layout::resolve(&args, Path::new("/tmp/x")).unwrap();
        let root = Path::new("/tmp/x/sb");
        for p in [
            &l.ovs_rundir,
            &l.ovs_dbdir,
            &l.ovs_logdir,
            &l.ovs_sysconfdir,
            &l.ovn_rundir,
            &l.ovn_logdir,
            &l.ovn_dbdir,
        ] {
            assert!(
                p.starts_with(root),
                "{} not under {}",
                p.display(),
                root.display()
            );
        }
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("OVS_RUNDIR"));
    }

    #[test]
    fn defaults_are_the_pod_mount_paths() {
        let (l, w) = Layout::resolve(&PathArgs::default(), Path::new("/")).unwrap();
        assert!(w.is_empty());
        assert_eq!(l.db_sock(), Path::new("/var/run/openvswitch/db.sock"));
        assert_eq!(l.conf_db(), Path::new("/etc/openvswitch/conf.db"));
        assert_eq!(
            l.system_id_file(),
            Path::new("/etc/openvswitch/system-id.conf")
        );
    }

    #[test]
    fn sandbox_paths_that_would_break_ovn_remote_are_refused() {
        use std::os::unix::ffi::OsStrExt;
        for bad in [
            PathBuf::from("/tmp/a,b"),
            PathBuf::from(std::ffi::OsStr::from_bytes(b"/tmp/\x9d")),
        ] {
            let args = PathArgs {
                sandbox: Some(bad.clone()),
                ..Default::default()
            };
            let err = Layout::resolve(&args, Path::new("/")).unwrap_err();
            assert!(
                err.to_string().starts_with("OVS_OVN_SUPERVISOR_SANDBOX="),
                "{err}"
            );
        }
    }

    #[test]
    fn too_long_socket_path_is_refused_before_anything_exists() {
        let long = format!("/tmp/{}", "d".repeat(90));
        let args = PathArgs {
            sandbox: Some(PathBuf::from(long)),
            ..Default::default()
        };
        let err = Layout::resolve(&args, Path::new("/")).unwrap_err();
        assert!(
            matches!(err, ConfigError::SocketPathTooLong { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("OVS_OVN_SUPERVISOR_SANDBOX"));
    }
}

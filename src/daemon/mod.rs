//! The daemons we run and exactly how: argv, environment, pidfile, control socket, log file.
//!
//! Invariants: every daemon runs in the foreground (no `--detach`, no `--monitor`: we are the
//! monitor); every daemon gets the same `OVS_RUNDIR`/`OVN_RUNDIR` as the others, because
//! ovn-controller computes `br-int.mgmt`'s path from `OVS_RUNDIR` (unset, it looks in
//! `/var/run/openvswitch` while vswitchd may be elsewhere); control sockets keep OVS's default
//! `NAME.PID.ctl` name so operators' `ovs-appctl -t NAME` keeps working (OVN 23.03's
//! ovn-controller rejects `--unixctl` anyway). Building the argv is pure; finding the binary
//! is the only host access.

pub mod policy;
pub mod state;
pub mod wait;

use std::path::{Path, PathBuf};

use crate::config::paths::Layout;
use crate::config::Config;
use crate::nodefile::Links;

/// A pidfile holds `PID\n`; anything much longer is not one.
const PIDFILE_MAX: u64 = 64;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{program} not found in PATH or /usr/sbin, /usr/bin, /usr/local/sbin, /usr/local/bin: install {package}")]
    NotFound {
        program: &'static str,
        package: &'static str,
    },
    #[error("{daemon}: cannot read pidfile {path}: {source}")]
    Pidfile {
        daemon: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{daemon}: pidfile {path} holds {content:?}, not a pid")]
    PidfileContent {
        daemon: &'static str,
        path: PathBuf,
        content: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Daemon {
    /// The embedded OVN Southbound of the sandbox.
    SbServer,
    OvsdbServer,
    Vswitchd,
    OvnController,
}

impl Daemon {
    /// The node's own daemons (not the sandbox's embedded Southbound), in stop order.
    pub const NODE: [Daemon; 3] = [Daemon::OvnController, Daemon::Vswitchd, Daemon::OvsdbServer];
}

/// How the sandbox keeps vswitchd's devices off the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetMode {
    /// Normal node, or a sandbox inside its own network namespace: real devices.
    Real,
    /// vswitchd's dummy netdevs: no kernel device is created at all.
    Dummy,
}

/// A daemon's command line and environment, ready to hand to `process::Reaper::spawn`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Where the daemon's own program stands in `argv` (after a `DEBUG_WRAPPER` prefix).
    pub program_at: usize,
}

impl Daemon {
    pub fn name(self) -> &'static str {
        match self {
            Daemon::SbServer => "ovsdb-server-sb",
            Daemon::OvsdbServer => "ovsdb-server",
            Daemon::Vswitchd => "ovs-vswitchd",
            Daemon::OvnController => "ovn-controller",
        }
    }

    pub fn from_name(name: &str) -> Option<Daemon> {
        [
            Daemon::SbServer,
            Daemon::OvsdbServer,
            Daemon::Vswitchd,
            Daemon::OvnController,
        ]
        .into_iter()
        .find(|d| d.name() == name)
    }

    pub fn program(self) -> &'static str {
        match self {
            Daemon::SbServer | Daemon::OvsdbServer => "ovsdb-server",
            Daemon::Vswitchd => "ovs-vswitchd",
            Daemon::OvnController => "ovn-controller",
        }
    }

    fn package(self) -> &'static str {
        match self {
            Daemon::SbServer | Daemon::OvsdbServer => "openvswitch-switch",
            Daemon::Vswitchd => "openvswitch-switch",
            Daemon::OvnController => "ovn-host",
        }
    }

    pub fn pidfile(self, l: &Layout) -> PathBuf {
        match self {
            Daemon::SbServer => l.ovn_rundir.join("ovnsb_db.pid"),
            Daemon::OvsdbServer => l.ovs_rundir.join("ovsdb-server.pid"),
            Daemon::Vswitchd => l.ovs_rundir.join("ovs-vswitchd.pid"),
            Daemon::OvnController => l.ovn_rundir.join("ovn-controller.pid"),
        }
    }

    pub fn logfile(self, l: &Layout) -> PathBuf {
        match self {
            Daemon::SbServer => l.ovn_logdir.join("ovsdb-server-sb.log"),
            Daemon::OvsdbServer => l.ovs_logdir.join("ovsdb-server.log"),
            Daemon::Vswitchd => l.ovs_logdir.join("ovs-vswitchd.log"),
            Daemon::OvnController => l.ovn_logdir.join("ovn-controller.log"),
        }
    }

    /// The unixctl socket of the daemon whose pidfile says `pid`.
    pub fn ctl(self, l: &Layout, pid: i32) -> PathBuf {
        match self {
            Daemon::SbServer => l.sb_ctl(),
            Daemon::OvsdbServer => l.ovs_rundir.join(format!("ovsdb-server.{pid}.ctl")),
            Daemon::Vswitchd => l.ovs_rundir.join(format!("ovs-vswitchd.{pid}.ctl")),
            Daemon::OvnController => l.ovn_rundir.join(format!("ovn-controller.{pid}.ctl")),
        }
    }

    /// The unixctl `exit` of the ordered stop: ovn-controller keeps its chassis and flows
    /// (`--restart`), vswitchd keeps datapath flows forwarding (no `--cleanup`).
    pub fn exit_args(self) -> &'static [&'static str] {
        match self {
            Daemon::OvnController => &["--restart"],
            _ => &[],
        }
    }

    pub fn invocation(self, cfg: &Config, net: NetMode) -> Invocation {
        let l = &cfg.layout;
        let d = |p: &Path| p.display().to_string();
        let logdir = self
            .logfile(l)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let mut argv = cfg.debug_wrapper.prefix(self.name(), &logdir);
        let program_at = argv.len();
        argv.push(self.program().to_string());
        let pidfile = format!("--pidfile={}", d(&self.pidfile(l)));
        let logfile = format!("--log-file={}", d(&self.logfile(l)));
        match self {
            Daemon::SbServer => argv.extend([
                d(&l.sb_db()),
                format!("--remote=punix:{}", d(&l.sb_sock())),
                format!("--unixctl={}", d(&l.sb_ctl())),
                pidfile,
                logfile,
            ]),
            Daemon::OvsdbServer => argv.extend([
                d(&l.conf_db()),
                format!("--remote=punix:{}", d(&l.db_sock())),
                // As ovs-ctl does: managers and SSL configured in the database take effect.
                "--remote=db:Open_vSwitch,Open_vSwitch,manager_options".to_string(),
                "--private-key=db:Open_vSwitch,SSL,private_key".to_string(),
                "--certificate=db:Open_vSwitch,SSL,certificate".to_string(),
                "--bootstrap-ca-cert=db:Open_vSwitch,SSL,ca_cert".to_string(),
                pidfile,
                logfile,
            ]),
            Daemon::Vswitchd => {
                argv.extend([format!("unix:{}", d(&l.db_sock())), pidfile, logfile]);
                if net == NetMode::Dummy {
                    argv.extend(["--enable-dummy=override".into(), "--disable-system".into()]);
                }
            }
            Daemon::OvnController => {
                argv.extend([format!("unix:{}", d(&l.db_sock())), pidfile, logfile]);
                if cfg.ssl {
                    let t = &cfg.tls_dir;
                    argv.extend([
                        format!("--private-key={}", d(&t.join("key"))),
                        format!("--certificate={}", d(&t.join("cert"))),
                        format!("--ca-cert={}", d(&t.join("cacert"))),
                    ]);
                }
            }
        }
        let mut env = vec![
            ("OVS_RUNDIR".into(), d(&l.ovs_rundir)),
            ("OVS_DBDIR".into(), d(&l.ovs_dbdir)),
            ("OVS_LOGDIR".into(), d(&l.ovs_logdir)),
            ("OVS_SYSCONFDIR".into(), d(&l.ovs_sysconfdir)),
            ("OVN_RUNDIR".into(), d(&l.ovn_rundir)),
            ("OVN_LOGDIR".into(), d(&l.ovn_logdir)),
        ];
        env.extend(cfg.debug_wrapper.env());
        Invocation {
            argv,
            env,
            program_at,
        }
    }

    /// Resolves the program to run (the wrapper's first word when `DEBUG_WRAPPER` is set).
    pub fn find_binary(self) -> Result<PathBuf, DaemonError> {
        find_in_path(self.program()).ok_or(DaemonError::NotFound {
            program: self.program(),
            package: self.package(),
        })
    }

    /// Reads the pid the daemon wrote; `Ok(None)` while the file does not exist yet.
    pub fn read_pid(self, l: &Layout) -> Result<Option<i32>, DaemonError> {
        let path = self.pidfile(l);
        // Bounded and never blocking: whatever is there was not necessarily written by OVS.
        let read = crate::nodefile::read_to_string(&path, PIDFILE_MAX, Links::Refuse);
        match read.map_err(crate::nodefile::NodeFileError::into_io) {
            Ok(s) => match s.trim().parse::<i32>() {
                Ok(pid) if pid > 0 => Ok(Some(pid)),
                // OVS writes the pidfile in one write of "PID\n"; an empty file is mid-write.
                _ if s.is_empty() => Ok(None),
                _ => Err(DaemonError::PidfileContent {
                    daemon: self.name(),
                    path,
                    content: s.chars().take(40).collect(),
                }),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(DaemonError::Pidfile {
                daemon: self.name(),
                path,
                source,
            }),
        }
    }
}

/// `PATH` first, then the directories Debian installs OVS/OVN into (sbin is often not in a
/// non-root PATH).
pub fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"]
                .iter()
                .map(PathBuf::from),
        )
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::cli::{NodeArgs, PathArgs};

    fn cfg(f: impl FnOnce(&mut NodeArgs)) -> Config {
        let mut a = NodeArgs {
            paths: PathArgs {
                sandbox: Some("/sb".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        f(&mut a);
        Config::resolve(&a, "h", Path::new("/")).unwrap()
    }

    #[test]
    fn daemons_run_in_the_foreground_with_shared_rundirs() {
        let c = cfg(|_| {});
        for d in [
            Daemon::SbServer,
            Daemon::OvsdbServer,
            Daemon::Vswitchd,
            Daemon::OvnController,
        ] {
            let inv = d.invocation(&c, NetMode::Real);
            assert_eq!(inv.argv[0], d.program());
            assert!(!inv.argv.iter().any(|a| a == "--detach" || a == "--monitor"));
            assert!(inv
                .env
                .contains(&("OVS_RUNDIR".into(), "/sb/run/openvswitch".into())));
            assert!(inv
                .env
                .contains(&("OVN_RUNDIR".into(), "/sb/run/ovn".into())));
        }
    }

    #[test]
    fn argv_details() {
        let c = cfg(|a| {
            a.debug_wrapper = Some("valgrind -q".into());
            a.enable_ssl = Some("true".into());
        });
        let v = Daemon::Vswitchd.invocation(&c, NetMode::Dummy).argv;
        assert_eq!(&v[..3], ["valgrind", "-q", "ovs-vswitchd"]);
        assert!(v.contains(&"--enable-dummy=override".to_string()));
        assert!(v.contains(&"unix:/sb/run/openvswitch/db.sock".to_string()));
        let o = Daemon::OvnController.invocation(&c, NetMode::Real).argv;
        assert!(o.contains(&"--ca-cert=/var/run/tls/cacert".to_string()));
        assert!(!o.iter().any(|a| a.starts_with("--unixctl")));
        let s = Daemon::OvsdbServer.invocation(&c, NetMode::Real).argv;
        assert!(s.contains(&"--remote=punix:/sb/run/openvswitch/db.sock".to_string()));
        assert!(s.contains(&"/sb/etc/openvswitch/conf.db".to_string()));
    }

    #[test]
    fn pidfile_reading() {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(|a| a.paths.sandbox = Some(dir.path().to_path_buf()));
        let l = &c.layout;
        assert_eq!(Daemon::Vswitchd.read_pid(l).unwrap(), None);
        std::fs::create_dir_all(&l.ovs_rundir).unwrap();
        std::fs::write(Daemon::Vswitchd.pidfile(l), "1234\n").unwrap();
        assert_eq!(Daemon::Vswitchd.read_pid(l).unwrap(), Some(1234));
        std::fs::write(Daemon::Vswitchd.pidfile(l), "garbage").unwrap();
        let e = Daemon::Vswitchd.read_pid(l).unwrap_err();
        assert!(e.to_string().contains("ovs-vswitchd.pid"), "{e}");
        assert_eq!(
            Daemon::Vswitchd.ctl(l, 42),
            l.ovs_rundir.join("ovs-vswitchd.42.ctl")
        );
    }
}

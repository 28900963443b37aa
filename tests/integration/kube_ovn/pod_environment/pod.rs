//! The pod of [`super`]'s test: Kube-OVN's own `ovs-ovn` environment, a temp dir, a network
//! namespace of its own with the central Southbound listening in it, and the node started,
//! waited for and stopped there; and what the test reads of it (columns, pidfiles, nice values,
//! file modes, the supervisor's log).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::super::READY;
use crate::harness::*;

/// Kube-OVN's own `ovs-ovn` pod environment (tests/fixtures/kube-ovn-ovs-ovn.env).
pub(super) fn kube_ovn_env() -> Vec<(String, String)> {
    let text = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/kube-ovn-ovs-ovn.env"
    ));
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#') && l.contains('='))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// A child process killed on drop.
pub(super) struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Everything around the node. Fields drop in order: the Southbound, the namespace, the dir.
pub(super) struct Pod {
    _sb: Proc,
    sb_local: String,
    pub(super) ns: Netns,
    env: Vec<(String, String)>,
    dir: tempfile::TempDir,
}

impl Pod {
    /// The central Southbound at OVN_DB_IPS:KUBE_OVN_SB_PORT, inside the node's namespace, up.
    pub(super) fn new(env: Vec<(String, String)>) -> Pod {
        let dir = tempfile::Builder::new().prefix("oos").tempdir().unwrap();
        let d = dir.path();
        let ns = Netns::new("oos-kovn");
        let sb_db = d.join("sb.db");
        create_sb_db(&sb_db);
        let sb_local = format!("unix:{}", d.join("sb.sock").display());
        let sb = Proc(
            ns.command("ovsdb-server")
                .arg(&sb_db)
                .arg(format!(
                    "--remote=ptcp:{}:{}",
                    env_of(&env, "KUBE_OVN_SB_PORT"),
                    env_of(&env, "OVN_DB_IPS")
                ))
                .arg(format!("--remote=p{sb_local}"))
                .arg(format!("--unixctl={}", d.join("sb.ctl").display()))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let pod = Pod {
            _sb: sb,
            sb_local,
            ns,
            env,
            dir,
        };
        let t0 = Instant::now();
        while !pod.sbctl(&["init"]).0 {
            assert!(t0.elapsed() < Duration::from_secs(10), "SB not up");
            std::thread::sleep(Duration::from_millis(20));
        }
        pod
    }

    pub(super) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The variable `key` of Kube-OVN's environment.
    pub(super) fn env(&self, key: &str) -> &str {
        env_of(&self.env, key)
    }

    /// Where the node links ovs-ctl's old run directory.
    pub(super) fn link(&self) -> PathBuf {
        self.path().join("usr/local/var/run/openvswitch")
    }

    /// `run` in the namespace with exactly Kube-OVN's environment and what isolates the test.
    pub(super) fn start(&self) -> Proc {
        let d = self.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("supervisor.log"))
            .unwrap();
        Proc(
            self.ns
                .command(BIN)
                .arg("run")
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .envs(self.env.iter().map(|(k, v)| (k, v)))
                // Only what isolates the test: its own paths and the userspace datapath.
                .envs(host_dirs(d))
                .env("OVS_OVN_SUPERVISOR_RUNDIR_LINK", self.link())
                .env("OVS_OVN_SUPERVISOR_DATAPATH_TYPE", "netdev")
                .env("OVS_OVN_SUPERVISOR_FIREWALL_IPV6", "false")
                // The rule is checked again every 200 ms instead of 10 s.
                .env("OVS_OVN_SUPERVISOR_FIREWALL_RECHECK_MS", "200")
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap(),
        )
    }

    pub(super) fn wait_ready(&self, node: &mut Proc) {
        let d = self.path();
        let t0 = Instant::now();
        loop {
            let (code, line) = host_probe(d, "readiness");
            if code == Some(0) {
                return;
            }
            if let Some(st) = node.0.try_wait().unwrap() {
                panic!("exited {st}: {}", self.log());
            }
            assert!(t0.elapsed() < READY, "not ready: {line}\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then the exit within the stop budget (25 s) and a little: a stop that hangs
    /// fails the test instead of hanging it.
    pub(super) fn stop(&self, node: &mut Proc) {
        kill("TERM", node.0.id() as i32);
        let t0 = Instant::now();
        let status = loop {
            if let Some(st) = node.0.try_wait().unwrap() {
                break st;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "no exit 30 s after SIGTERM: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "{status}: {}", self.log());
    }

    pub(super) fn log(&self) -> String {
        std::fs::read_to_string(self.path().join("supervisor.log")).unwrap()
    }

    pub(super) fn vsctl(&self, args: &[&str]) -> String {
        let db = self.path().join("run/openvswitch/db.sock");
        db_ctl("ovs-vsctl", &format!("unix:{}", db.display()), args)
    }

    /// `ovn-sbctl ARGS` on the central Southbound: whether it succeeded, and its stdout.
    pub(super) fn sbctl(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new("ovn-sbctl")
            .arg(format!("--db={}", self.sb_local))
            .arg("--timeout=5")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        )
    }

    /// `external_ids:KEY` of the Open_vSwitch row, as ovs-vsctl prints it.
    pub(super) fn external_id(&self, key: &str) -> String {
        self.vsctl(&["get", "Open_vSwitch", ".", &format!("external_ids:{key}")])
    }

    /// The pid in the pidfile at `rel`.
    pub(super) fn pid(&self, rel: &str) -> i32 {
        std::fs::read_to_string(self.path().join(rel))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
}

fn env_of<'a>(env: &'a [(String, String)], key: &str) -> &'a str {
    &env.iter().find(|(k, _)| k == key).unwrap().1
}

/// PID's nice value: field 19 of `/proc/PID/stat` (the 17th after the command's `)`).
pub(super) fn nice_of(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = stat.rsplit_once(')').unwrap().1;
    rest.split_whitespace().nth(16).unwrap().parse().unwrap()
}

pub(super) fn mode(p: &Path) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions()) & 0o7777
}

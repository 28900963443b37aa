//! [`Node`]: one sandbox node run by the real `ovs-ovn-supervisor` binary in a temp dir of its
//! own, with a clean environment (no Kube-OVN variables leak in from the machine). Starting,
//! signalling and stopping it, asking it (`probe`, `status`, `ovs-vsctl`), and the Drop guard
//! that stops it and kills any daemon whose pidfile is in its directory, so a failed test leaves
//! nothing running.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use super::{db_ctl, exists, BIN};

pub struct Node {
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
}

/// `run --sandbox DIR` with a clean environment (PATH only) and debug logging.
pub fn base_command(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("OVS_OVN_SUPERVISOR_LOG", "debug")
        .arg("run")
        .arg("--sandbox")
        .arg(dir);
    c
}

impl Node {
    pub fn new() -> Node {
        Node {
            dir: tempfile::Builder::new().prefix("oos").tempdir().unwrap(),
            child: None,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_path(&self) -> PathBuf {
        self.path().join("supervisor.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Starts the supervisor with extra environment; its stderr goes to `supervisor.log`
    /// (appended, so two runs on one directory keep both logs).
    pub fn start(&mut self, env: &[(&str, &str)]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let mut c = base_command(self.path());
        c.envs(env.iter().copied())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        self.child = Some(c.spawn().unwrap());
    }

    /// [`Self::start`] with the supervisor run by `prefix` (e.g. `prlimit --nofile=64:64`),
    /// which execs it: the child's pid is the supervisor's.
    pub fn start_under(&mut self, prefix: &[&str], env: &[(&str, &str)]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let cmd = base_command(self.path());
        let mut c = Command::new(prefix[0]);
        c.args(&prefix[1..])
            .arg(cmd.get_program())
            .args(cmd.get_args())
            .env_clear()
            .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))))
            .envs(env.iter().copied())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        self.child = Some(c.spawn().unwrap());
    }

    pub fn probe(&self, kind: &str) -> (i32, String) {
        let out = Command::new(BIN)
            .env_clear()
            .args(["probe", kind, "--sandbox"])
            .arg(self.path())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        )
    }

    /// `status --output json` from the running supervisor, if it answers.
    pub fn status(&self) -> Option<serde_json::Value> {
        let out = Command::new(BIN)
            .env_clear()
            .args(["status", "--output", "json", "--sandbox"])
            .arg(self.path())
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).ok()
    }

    /// One daemon's entry in `status --output json`.
    pub fn daemon_status(&self, name: &str) -> serde_json::Value {
        let status = self.status().expect("status answers");
        status["daemons"]
            .as_array()
            .and_then(|ds| ds.iter().find(|d| d["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {status}"))
    }

    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().unwrap().id();
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} {pid}");
    }

    pub fn stop(&mut self) -> (ExitStatus, Duration) {
        self.signal("TERM");
        self.wait_exit(Duration::from_secs(30))
    }

    pub fn db(&self) -> String {
        format!(
            "unix:{}",
            self.path().join("run/openvswitch/db.sock").display()
        )
    }

    pub fn vsctl(&self, args: &[&str]) -> String {
        db_ctl("ovs-vsctl", &self.db(), args)
    }

    pub fn file(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap_or_default()
    }
}

/// A second supervisor on `dir` (a rolling update's new pod) with `env`, logging into its own
/// temp dir.
pub fn instance_on(dir: &Path, env: &[(&str, &str)]) -> Node {
    let mut n = Node {
        dir: tempfile::tempdir().unwrap(),
        child: None,
    };
    let log = std::fs::File::create(n.log_path()).unwrap();
    n.child = Some(
        base_command(dir)
            .envs(env.iter().copied())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    n
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(15) {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        // Anything still alive from this sandbox is a leak of a failed test: end it.
        for (_, pid) in self.daemon_pids() {
            if exists(pid) && self.owns(pid) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

//! Host-side commands that need no running sandbox: `preflight` on a sandbox path, and the
//! directories and `probe` of a real (non-sandbox) node whose every path lies in a temp dir.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::BIN;

/// `preflight --sandbox SANDBOX EXTRA...` with `env`: its exit code and stdout.
pub fn preflight(sandbox: &Path, env: &[(&str, &str)], extra: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .arg("preflight")
        .arg("--sandbox")
        .arg(sandbox)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// OVS's and OVN's directory variables for a non-sandbox node whose directories all lie under
/// `d` as in a sandbox, so [`super::Node`]'s guard finds its pidfiles.
pub fn host_dirs(d: &Path) -> Vec<(&'static str, PathBuf)> {
    vec![
        ("OVS_RUNDIR", d.join("run/openvswitch")),
        ("OVS_DBDIR", d.join("etc/openvswitch")),
        ("OVS_LOGDIR", d.join("log/openvswitch")),
        ("OVS_SYSCONFDIR", d.join("etc")),
        ("OVN_RUNDIR", d.join("run/ovn")),
        ("OVN_LOGDIR", d.join("log/ovn")),
    ]
}

/// `probe KIND` against the non-sandbox node of [`host_dirs`]`(d)`: exit code and line.
pub fn host_probe(d: &Path, kind: &str) -> (Option<i32>, String) {
    let o = Command::new(BIN)
        .env_clear()
        .envs(host_dirs(d))
        .args(["probe", kind])
        .output()
        .unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).trim().to_string(),
    )
}

//! What Kube-OVN's `start-ovs.sh` (through `ovs-ctl`) did that users and Kube-OVN's other
//! components rely on, done here without a shell:
//! - the `Open_vSwitch` row's identity columns (`ovs_version`, `db_version`, `system_type`,
//!   `system_version`), which kube-ovn-pinger labels its metrics with;
//! - ovsdb-server's `jsonrpc` and `reconnect` file logging at `err` (every client connection
//!   would otherwise be logged);
//! - the daemons at nice -10, as `ovs-ctl` starts them (needs CAP_SYS_NICE; a warning without);
//! - the database directory's files at mode 0600;
//! - Kube-OVN's underlay bridges (`external_ids:vendor=kube-ovn`) whose link is gone (after a
//!   node reboot) deleted before vswitchd starts, so kube-ovn-cni recreates them cleanly.
//!
//! Invariants: the parsers are pure; a file is changed only through a descriptor opened without
//! following symlinks, so a link planted in the database directory redirects nothing.
//! `external_ids:ovn-match-northd-version`, which start-ovs.sh also set, is one of our
//! settings (`settings::owned`), checked before a takeover (`takeover::northd`).

use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::nodefile::{self, Links};
use crate::ovs::jsonrpc::Client;
use crate::ovs::ovsdb;
use crate::process::Reaper;

/// The priority `ovs-ctl` gives ovsdb-server and ovs-vswitchd (and `ovn-ctl` ovn-controller).
pub const DAEMON_NICE: i32 = -10;

/// Makes the child lower its own nice value right before `exec`, so every thread the daemon
/// creates inherits it (Linux nice values are per thread: renicing a running daemon from
/// outside would miss the threads it already has). A failure (no CAP_SYS_NICE) is left for
/// [`nice_of`] to notice, as the child cannot report it.
pub fn nice_before_exec(cmd: &mut std::process::Command) {
    // SAFETY: the closure runs in the forked child before exec, where only async-signal-safe
    // functions may be called; setpriority(2) is a plain system call and allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            nix::libc::setpriority(nix::libc::PRIO_PROCESS, 0, DAEMON_NICE);
            Ok(())
        });
    }
}

/// The nice value of `pid` (field 19 of `/proc/PID/stat`).
pub fn nice_of(proc_root: &Path, pid: i32) -> Option<i32> {
    crate::process::procfs::stat(proc_root, pid).map(|s| s.nice)
}

/// ovsdb-server's log levels as start-ovs.sh sets them.
pub const OVSDB_VLOG: [&str; 2] = ["jsonrpc:file:err", "reconnect:file:err"];

/// Sets ovsdb-server's log levels as start-ovs.sh does and asks its version (the package's,
/// written as `ovs_version`: vswitchd comes from the same package and is not running yet).
pub async fn ovsdb_server_setup(ctl: &Path, t: Duration) -> Result<String, SetupError> {
    let call = |method: &'static str, args: &'static [&'static str]| async move {
        crate::ovs::unixctl::call(ctl, method, args, t)
            .await
            .map_err(|source| SetupError::Call { method, source })
    };
    call("vlog/set", &OVSDB_VLOG).await?;
    let answer = call("version", &[]).await?;
    ovs_version_of(&answer).ok_or(SetupError::Version { answer })
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("ovsdb-server {method}: {source}")]
    Call {
        method: &'static str,
        source: crate::ovs::jsonrpc::RpcError,
    },
    #[error("ovsdb-server version: {answer:?}")]
    Version { answer: String },
}

/// `KEY=VALUE` from os-release text, unquoted as the shell would for these simple values.
pub fn os_release_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let v = l.trim().strip_prefix(key)?.strip_prefix('=')?;
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(v);
        Some(v.to_string())
    })
}

/// The version in `NAME (Open vSwitch) 3.1.0`, a daemon's `version` answer.
pub fn ovs_version_of(answer: &str) -> Option<String> {
    let first = answer.lines().next()?;
    first
        .contains("Open vSwitch")
        .then(|| first.split_whitespace().last().map(str::to_string))?
}

/// The `version` of an OVSDB schema file.
pub fn schema_version(schema: &Path) -> Option<String> {
    let text = std::fs::read_to_string(schema).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v.get("version")?.as_str().map(str::to_string)
}

/// What `ovs-ctl` writes as `system_type`/`system_version`: the contents of
/// `system-type.conf`/`system-version.conf` beside `system-id.conf` when present, else the
/// image's os-release `ID`/`VERSION_ID`, else "unknown".
pub fn system_ids(ovs_etc: &Path, os_release: &Path) -> (String, String) {
    // Files beside system-id.conf, read as it is (a FIFO or a huge file there must not
    // hang or bloat the settings stage); os-release is the image's, often a link.
    let read = |n: &str| {
        nodefile::read_to_string(&ovs_etc.join(n), 4096, Links::Refuse)
            .ok()
            .map(|s| s.trim().to_string())
    };
    if let Some(t) = read("system-type.conf") {
        return (t, read("system-version.conf").unwrap_or_default());
    }
    let text = nodefile::read_to_string(os_release, 64 * 1024, Links::Follow).unwrap_or_default();
    (
        os_release_value(&text, "ID").unwrap_or_else(|| "unknown".into()),
        os_release_value(&text, "VERSION_ID").unwrap_or_else(|| "unknown".into()),
    )
}

/// The identity columns, only those we could determine.
pub fn identity_columns(
    ovs_version: Option<String>,
    schema: &Path,
    ovs_etc: &Path,
    os_release: &Path,
) -> Vec<(String, String)> {
    let (system_type, system_version) = system_ids(ovs_etc, os_release);
    [
        ("ovs_version", ovs_version),
        ("db_version", schema_version(schema)),
        ("system_type", Some(system_type)),
        ("system_version", Some(system_version)),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
    .collect()
}

/// Sets every regular file directly in `dir` to mode 0600 (start-ovs.sh's
/// `chmod 600 /etc/openvswitch/*`). Symlinks and other non-regular entries are skipped.
pub fn restrict_files(dir: &Path) -> Vec<(PathBuf, std::io::Error)> {
    use std::os::unix::fs::PermissionsExt;
    let mut failed = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return failed;
    };
    for e in entries.flatten() {
        let path = e.path();
        // O_NOFOLLOW: a symlink fails to open (ELOOP) instead of redirecting the chmod.
        let file = std::fs::File::options()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
            .open(&path);
        let Ok(file) = file else { continue };
        match file.metadata() {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o7777 != 0o600 => {
                let r = nix::sys::stat::fchmod(
                    file.as_raw_fd(),
                    nix::sys::stat::Mode::from_bits_truncate(0o600),
                );
                if let Err(e) = r {
                    failed.push((path, std::io::Error::from(e)));
                }
            }
            _ => {}
        }
    }
    failed
}

/// An underlay bridge of Kube-OVN's, as the database holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnderlayBridge {
    pub uuid: String,
    pub name: String,
    /// `external_ids:exchange-link-name=true`: the bridge took its NIC's name, so the link of
    /// that name must be the bridge itself (type openvswitch), not the NIC.
    pub exchange_link_name: bool,
}

/// Kube-OVN's bridges in a `select` result of Bridge's `_uuid`, `name`, `external_ids`.
pub fn underlay_bridges(rows: &Value) -> Vec<UnderlayBridge> {
    let Some(rows) = rows.as_array() else {
        return Vec::new();
    };
    rows.iter()
        .filter_map(|r| {
            let ids = r.get("external_ids")?;
            if ovsdb::map_get(ids, "vendor").as_deref() != Some("kube-ovn") {
                return None;
            }
            Some(UnderlayBridge {
                uuid: r.get("_uuid")?.get(1)?.as_str()?.to_string(),
                name: r.get("name")?.as_str()?.to_string(),
                exchange_link_name: ovsdb::map_get(ids, "exchange-link-name").as_deref()
                    == Some("true"),
            })
        })
        .collect()
}

/// True when the bridge's link exists in this network namespace, as start-ovs.sh's
/// `ip link show` checks.
async fn link_present(reaper: &Reaper, b: &UnderlayBridge) -> bool {
    if nix::net::if_::if_nametoindex(b.name.as_str()).is_err() {
        return false;
    }
    if !b.exchange_link_name {
        return true;
    }
    let mut cmd = std::process::Command::new("ip");
    cmd.args(["-o", "link", "show", "dev", &b.name, "type", "openvswitch"]);
    // Unknown (no `ip`): keep the bridge; deleting is the irreversible choice.
    // `ip link show` answers in milliseconds; a hung one must not hold the start.
    match reaper.output("ip", cmd, Duration::from_secs(5)).await {
        Ok(out) if out.status.success() => !out.stdout.trim().is_empty(),
        Ok(_) => false,
        _ => true,
    }
}

/// Deletes Kube-OVN's underlay bridges whose link is gone; returns their names.
pub async fn prune_underlay_bridges(
    client: &Client,
    reaper: &Reaper,
    t: Duration,
) -> Result<Vec<String>, ovsdb::OvsdbError> {
    let r = ovsdb::transact(
        client,
        "Open_vSwitch",
        vec![ovsdb::op_select(
            "Bridge",
            json!([]),
            &["_uuid", "name", "external_ids"],
        )],
        t,
    )
    .await?;
    let rows = r
        .first()
        .and_then(|v| v.get("rows"))
        .cloned()
        .unwrap_or(Value::Null);
    let mut gone = Vec::new();
    for b in underlay_bridges(&rows) {
        if !link_present(reaper, &b).await {
            gone.push(b);
        }
    }
    if gone.is_empty() {
        return Ok(Vec::new());
    }
    // Bridge, Port and Interface are not root tables: dropping the reference deletes the
    // bridge and its ports, as `ovs-vsctl del-br` does.
    let uuids: Vec<Value> = gone.iter().map(|b| json!(["uuid", b.uuid])).collect();
    let op = json!({
        "op": "mutate", "table": "Open_vSwitch", "where": [],
        "mutations": [["bridges", "delete", ["set", uuids]]],
    });
    ovsdb::transact(client, "Open_vSwitch", vec![op], t).await?;
    Ok(gone.into_iter().map(|b| b.name).collect())
}

#[cfg(test)]
mod tests;

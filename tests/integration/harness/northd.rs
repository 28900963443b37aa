//! ovn-northd's internal version, as the installed (real) ovn-northd writes it into a
//! Southbound: learnt once per test binary by running ovn-northd between a throwaway
//! Northbound and Southbound, so a test Southbound can hold what a same-version ovn-northd
//! would have written (ovn-controller then matches it under `ovn-match-northd-version`), and
//! tests know the real version without asking the code under test.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use super::wait_for;

/// A Kube-OVN style version (OVN branch-25.03, renamed `X+g<commit>`) that no Debian
/// ovn-controller has.
pub const KUBE_OVN_NORTHD_VERSION: &str = "25.03.2+g0123456789ab-20.41.0-78.9";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn db_server(dir: &Path, name: &str, schema: &str) -> (Killed, String) {
    let db = dir.join(format!("{name}.db"));
    assert!(Command::new("ovsdb-tool")
        .arg("create")
        .arg(&db)
        .arg(schema)
        .status()
        .unwrap()
        .success());
    let sock = dir.join(format!("{name}.sock"));
    let child = Command::new("ovsdb-server")
        .arg(&db)
        .arg(format!("--remote=punix:{}", sock.display()))
        .arg(format!(
            "--unixctl={}",
            dir.join(format!("{name}.ctl")).display()
        ))
        .args(["-vconsole:off", "-vsyslog:off"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (Killed(child), format!("unix:{}", sock.display()))
}

/// `SB_Global.options:northd_internal_version` at `remote`, if written.
pub fn sb_northd_version(remote: &str) -> Option<String> {
    let out = Command::new("ovsdb-client")
        .args([
            "--timeout=5",
            "query",
            remote,
            r#"["OVN_Southbound",{"op":"select","table":"SB_Global","where":[],"columns":["options"]}]"#,
        ])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v[0]["rows"][0]["options"][1]
        .as_array()?
        .iter()
        .find(|p| p[0] == "northd_internal_version")
        .and_then(|p| p[1].as_str())
        .map(String::from)
}

/// The version the installed ovn-northd writes (and the installed ovn-controller matches).
pub fn northd_internal_version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (_nb, nb) = db_server(d, "nb", "/usr/share/ovn/ovn-nb.ovsschema");
        let (_sb, sb) = db_server(d, "sb", "/usr/share/ovn/ovn-sb.ovsschema");
        let _northd = Killed(
            Command::new("ovn-northd")
                .arg(format!("--ovnnb-db={nb}"))
                .arg(format!("--ovnsb-db={sb}"))
                .arg(format!("--unixctl={}", d.join("northd.ctl").display()))
                .args(["-vconsole:off", "-vsyslog:off"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let mut version = None;
        wait_for(
            "ovn-northd's version in SB_Global",
            Duration::from_secs(30),
            || {
                version = sb_northd_version(&sb);
                version.is_some()
            },
        );
        version.unwrap()
    })
}

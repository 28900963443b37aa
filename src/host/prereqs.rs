//! What the configuration needs from this machine, checked right after [`Config::resolve`]
//! and before anything is created (the sandbox directory, system-id, conf.db): the schemas the
//! package data directories must hold, the directory of the readiness marker, and the program
//! a `DEBUG_WRAPPER` names. Each failure names its variable, as a bad value does.
//!
//! Invariants: only reads (`stat`, a PATH search, the trust walk of the marker's directory); kept out of `config` so that resolving a
//! configuration stays a pure function.

use std::path::Path;

use crate::config::{Config, ConfigError};
use crate::daemon::find_in_path;

fn invalid(var: &'static str, value: &Path, expected: &str) -> ConfigError {
    ConfigError::Invalid {
        var,
        value: value.display().to_string(),
        expected: expected.to_string(),
    }
}

pub fn check(cfg: &Config) -> Result<(), ConfigError> {
    let schema_dir = |p: &Path| p.parent().unwrap_or(Path::new("/")).to_path_buf();
    if !cfg.vswitch_schema.is_file() {
        return Err(invalid(
            "OVS_PKGDATADIR",
            &schema_dir(&cfg.vswitch_schema),
            "a directory holding vswitch.ovsschema (Debian: openvswitch-common)",
        ));
    }
    if cfg.southbound.embedded && !cfg.sb_schema.is_file() {
        return Err(invalid(
            "OVN_PKGDATADIR",
            &schema_dir(&cfg.sb_schema),
            "a directory holding ovn-sb.ovsschema (Debian: ovn-common)",
        ));
    }
    if let Some(file) = &cfg.ready_file {
        marker_dir(file)?;
    }
    if let Some(program) = cfg.debug_wrapper.program() {
        let found = if program.contains('/') {
            Path::new(&program).is_file()
        } else {
            find_in_path(&program).is_some()
        };
        if !found {
            return Err(ConfigError::Invalid {
                var: "DEBUG_WRAPPER",
                value: program,
                expected: "a program installed in the image (not found in PATH)".into(),
            });
        }
    }
    Ok(())
}

/// The marker's directory exists and passes the trust checks of our run directories (we write
/// the marker there as root: a directory another user can write would let them aim it).
fn marker_dir(file: &Path) -> Result<(), ConfigError> {
    let var = "OVS_OVN_SUPERVISOR_READY_FILE";
    let dir = file.parent().unwrap_or(Path::new("/"));
    match crate::host::fsguard::secure_dir(dir, false, None) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(invalid(
            var,
            file,
            "a file in an existing directory (mount the host path it lives on)",
        )),
        Err(e) => Err(invalid(
            var,
            file,
            &format!("a file in a directory only root or this user can change ({e})"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::cli::{NodeArgs, PathArgs};

    fn cfg(f: impl FnOnce(&mut NodeArgs)) -> Config {
        let mut a = NodeArgs {
            paths: PathArgs {
                sandbox: Some("/nonexistent/sb".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        f(&mut a);
        Config::resolve(&a, "h", Path::new("/")).unwrap()
    }

    #[test]
    fn each_missing_thing_names_its_variable() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().to_path_buf();
        let ovs = |a: &mut NodeArgs| a.ovs_pkgdatadir = Some(empty.clone());
        let e = check(&cfg(ovs)).unwrap_err().to_string();
        assert!(
            e.starts_with("OVS_PKGDATADIR=") && e.contains("vswitch.ovsschema"),
            "{e}"
        );
        let sb = |a: &mut NodeArgs| a.ovn_pkgdatadir = Some(empty.clone());
        let e = check(&cfg(sb)).unwrap_err().to_string();
        assert!(e.starts_with("OVN_PKGDATADIR="), "{e}");
        let marker = |a: &mut NodeArgs| a.ready_file = Some(empty.join("no/such/ready"));
        let e = check(&cfg(marker)).unwrap_err().to_string();
        assert!(e.starts_with("OVS_OVN_SUPERVISOR_READY_FILE="), "{e}");
        // Any user may plant a link in a world-writable directory without the sticky bit.
        let open = empty.join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        let marker = |a: &mut NodeArgs| a.ready_file = Some(open.join("ready"));
        let e = check(&cfg(marker)).unwrap_err().to_string();
        assert!(
            e.starts_with("OVS_OVN_SUPERVISOR_READY_FILE=") && e.contains("world-writable"),
            "{e}"
        );
        let wrap = |a: &mut NodeArgs| a.debug_wrapper = Some("no-such-tool-xyz --flag".into());
        let e = check(&cfg(wrap)).unwrap_err().to_string();
        assert!(e.starts_with("DEBUG_WRAPPER=\"no-such-tool-xyz\""), "{e}");
        let wrap = |a: &mut NodeArgs| a.debug_wrapper = Some("/no/such/gdb".into());
        assert!(check(&cfg(wrap)).is_err());
    }

    #[test]
    fn present_things_pass() {
        let dir = tempfile::tempdir().unwrap();
        let ok = cfg(|a| {
            a.ready_file = Some(dir.path().join("ready"));
            a.debug_wrapper = Some("env FOO=1".into());
        });
        // The schemas come from this machine's packages, installed for the tests.
        assert_eq!(check(&ok), Ok(()));
        assert_eq!(
            check(&cfg(|a| a.debug_wrapper = Some("glibc".into()))),
            Ok(())
        );
    }
}

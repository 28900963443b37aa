//! The node's persistent files: `conf.db` (created or converted with `ovsdb-tool`) and the
//! chassis identity in `system-id.conf`.
//!
//! Invariants: a database is created atomically and checked for damage on every start
//! ([`crate::confdb::guard`]); an existing database is never replaced, only converted after a backup named as
//! ovs-ctl names it (`conf.db.backupVERSION-CKSUM`); the system-id is generated once, written
//! atomically (temp file + rename) and reused on every later start, because OVN identifies the
//! chassis by it — a new id after a restart would orphan the node's ports in the Southbound.
//! Tools run through the process-wide reaper, never `Command::output`, which would race it.

pub mod downgrade;
pub mod guard;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process::{ProcessError, Reaper};

#[derive(Debug, thiserror::Error)]
pub enum DbFileError {
    #[error("schema {path} not found: install the package that ships it or set {var}")]
    NoSchema { path: PathBuf, var: &'static str },
    #[error("ovsdb-tool not found in PATH or /usr/bin: install openvswitch-common")]
    NoTool,
    #[error("ovsdb-tool {args}: {status}: {stderr}")]
    Tool {
        args: String,
        status: String,
        stderr: String,
    },
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A rollback: the database was written by a newer version (see [`downgrade`]).
    #[error("{0}")]
    NewerThanSchema(Box<downgrade::Newer>),
    #[error(
        "{path} holds {content:?}, not a system-id (one word, no spaces); fix or remove the file"
    )]
    BadSystemId { path: PathBuf, content: String },
}

/// What happened to a database file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbAction {
    Created,
    Current,
    Converted {
        backup: PathBuf,
    },
    /// Found damaged: a copy was kept (and an empty file created again); served as it is.
    Damaged {
        copy: PathBuf,
    },
}

/// One `ovsdb-tool` run: conf.db is small (a conversion of a large one takes well under a
/// second here); a tool blocked this long (a hung disk) fails the conf.db stage naming it.
const TOOL_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

pub(crate) async fn tool(reaper: &Reaper, args: &[&str]) -> Result<String, DbFileError> {
    let bin = crate::daemon::find_in_path("ovsdb-tool").ok_or(DbFileError::NoTool)?;
    let mut cmd = Command::new(bin);
    cmd.args(args);
    let out = reaper.output("ovsdb-tool", cmd, TOOL_DEADLINE).await?;
    if !out.status.success() {
        return Err(DbFileError::Tool {
            args: args.join(" "),
            status: out.status.to_string(),
            stderr: out.stderr.trim().to_string(),
        });
    }
    Ok(out.stdout.trim().to_string())
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DbFileError + '_ {
    move |source| DbFileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates `db` from `schema` if missing, converts it (after a backup) if the schema is newer;
/// refuses, changing nothing, if the database's schema is newer than `schema` (a rollback).
pub async fn ensure_db(
    reaper: &Reaper,
    db: &Path,
    schema: &Path,
    schema_var: &'static str,
) -> Result<DbAction, DbFileError> {
    if !schema.is_file() {
        return Err(DbFileError::NoSchema {
            path: schema.to_path_buf(),
            var: schema_var,
        });
    }
    let (db_s, schema_s) = (db.to_string_lossy(), schema.to_string_lossy());
    if !db.exists() {
        crate::confdb::guard::create(reaper, db, schema).await?;
        return Ok(DbAction::Created);
    }
    if let Some(why) = crate::confdb::guard::damage(reaper, db).await? {
        let copy = crate::confdb::guard::keep_damaged(reaper, db, schema, &why).await?;
        return Ok(DbAction::Damaged { copy });
    }
    // `needs-conversion` is missing from `ovsdb-tool --help` in OVS 3.1 but is what ovs-ctl uses.
    if tool(reaper, &["needs-conversion", &db_s, &schema_s]).await? != "yes" {
        return Ok(DbAction::Current);
    }
    let version = tool(reaper, &["db-version", &db_s]).await?;
    // needs-conversion compares checksums, so it says yes for a newer database too, and
    // `convert` would then silently drop what the newer schema added: refuse a downgrade.
    let target = tool(reaper, &["schema-version", &schema_s]).await?;
    if let Some(newer) = downgrade::check(db, &version, schema, &target) {
        return Err(DbFileError::NewerThanSchema(Box::new(newer)));
    }
    let cksum = tool(reaper, &["db-cksum", &db_s]).await?;
    let cksum = cksum.split_whitespace().next().unwrap_or("0");
    let backup = PathBuf::from(format!("{db_s}.backup{version}-{cksum}"));
    std::fs::copy(db, &backup).map_err(io(&backup))?;
    tool(reaper, &["convert", &db_s, &schema_s]).await?;
    Ok(DbAction::Converted { backup })
}

/// Validates a stored system-id: OVN accepts any string, but whitespace or an empty file means
/// the file was damaged, and silently replacing it would change the chassis identity.
pub fn parse_system_id(path: &Path, content: &str) -> Result<String, DbFileError> {
    let id = content.trim();
    if id.is_empty() || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(DbFileError::BadSystemId {
            path: path.to_path_buf(),
            content: content.chars().take(80).collect(),
        });
    }
    Ok(id.to_string())
}

/// Reads the system-id, generating and persisting one on first start.
pub fn ensure_system_id(path: &Path) -> Result<(String, bool), DbFileError> {
    match std::fs::read_to_string(path) {
        Ok(s) => return parse_system_id(path, &s).map(|id| (id, false)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(path)(e)),
    }
    let id = new_uuid();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    // fsync before the rename: a crash must leave the old state or the whole id, never a
    // 0-byte file (which would be refused as damaged on every later start).
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        std::io::Write::write_all(&mut f, format!("{id}\n").as_bytes())?;
        f.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(&tmp)(e));
    }
    std::fs::rename(&tmp, path).map_err(io(path))?;
    crate::confdb::guard::sync_dir(path)?;
    Ok((id, true))
}

/// A random (version 4) UUID: the kernel's generator, or our own bits where /proc is absent.
fn new_uuid() -> String {
    if let Ok(s) = std::fs::read_to_string("/proc/sys/kernel/random/uuid") {
        let s = s.trim();
        if s.len() == 36 {
            return s.to_string();
        }
    }
    let mut b: [u8; 16] = fastrand::u128(..).to_be_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_id_is_generated_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("etc/openvswitch/system-id.conf");
        let (id, created) = ensure_system_id(&path).unwrap();
        assert!(created);
        assert_eq!(id.len(), 36);
        let (again, created) = ensure_system_id(&path).unwrap();
        assert!(!created);
        assert_eq!(id, again);
    }

    #[test]
    fn damaged_system_id_is_an_error_not_a_new_identity() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("system-id.conf");
        for bad in ["", "\n", "two words\n"] {
            std::fs::write(&path, bad).unwrap();
            let e = ensure_system_id(&path).unwrap_err();
            assert!(e.to_string().contains("system-id.conf"), "{e}");
            assert_eq!(std::fs::read_to_string(&path).unwrap(), bad);
        }
        assert_eq!(parse_system_id(&path, "abc\n").unwrap(), "abc");
    }

    #[test]
    fn fallback_uuid_has_version_4_shape() {
        let u = new_uuid();
        let parts: Vec<&str> = u.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
    }
}

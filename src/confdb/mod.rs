//! The node's persistent files: `conf.db` (created or converted with `ovsdb-tool`) and the
//! chassis identity in `system-id.conf`.
//!
//! Invariants: a database is created atomically and checked for damage on every start
//! ([`crate::confdb::guard`]); an existing database is never replaced, only converted after a backup named as
//! ovs-ctl names it (`conf.db.backupVERSION-CKSUM`); the system-id is generated once, written
//! atomically (temp file + rename) and reused on every later start, because OVN identifies the
//! chassis by it — a new id after a restart would orphan the node's ports in the Southbound;
//! system-id.conf is read only as a small regular file, never through a link ([`system_id`]).
//! Tools run through the process-wide reaper, never `Command::output`, which would race it.

pub mod downgrade;
pub mod guard;
pub mod system_id;

pub use system_id::ensure as ensure_system_id;

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
    #[error("{} holds {content:?}, not a system-id: expected {}; fix the file (removing it gives the node a new chassis identity)", path.display(), system_id::FORM)]
    BadSystemId { path: PathBuf, content: String },
    #[error("{0}; it holds the chassis identity (system-id): replace it with a regular file holding the id (removing it gives the node a new identity)")]
    SystemIdFile(#[source] crate::nodefile::NodeFileError),
    #[error(transparent)]
    Guard(#[from] crate::host::fsguard::FsGuardError),
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

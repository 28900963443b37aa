//! Keeping conf.db through disk-full starts, deletion and damage.
//!
//! - [`create`]: `ovsdb-tool create` writes a temp file in the same directory, which is fsynced
//!   and renamed into place, so a failed create (a full disk) leaves no partial database that
//!   every later start would trip over.
//! - [`damage`]: `ovsdb-tool show-log` reads every record and exits 1 on a truncated or
//!   corrupt one. Checked on OVS 3.1: `db-version`, `db-cksum`, `db-is-standalone` and
//!   `needs-conversion` read only the header and say nothing about a truncated file;
//!   `check-cluster` only knows clustered databases; ovsdb-server starts anyway and serves
//!   what it could parse. A damaged file is copied to `NAME.corrupt-TIMESTAMP` and reported at
//!   error level before anything reads it; an empty one (no schema at all) is created again.
//! - [`rewrite_if_deleted`]: a conf.db deleted under a live ovsdb-server is still open in it;
//!   `ovsdb-server/compact` writes the server's whole database to a new file and renames it over
//!   the path, and the server goes on writing there. Done from the health check, so before any
//!   restart could create an empty database.
//!
//! Invariant: only files in the database's own directory are created or renamed, and only
//! names derived from the database's (temp files carry our pid).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::confdb::{io, tool, DbFileError};
use crate::process::Reaper;

/// A sibling of `db` named `NAME.SUFFIX`.
fn sibling(db: &Path, suffix: &str) -> PathBuf {
    let name = db.file_name().unwrap_or_default().to_string_lossy();
    db.with_file_name(format!("{name}.{suffix}"))
}

/// The lock file ovsdb-tool leaves beside `path`: `.NAME.~lock~`.
fn tool_lock(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.~lock~"))
}

/// Creates `db` from `schema` atomically: temp file, fsync, rename, fsync of the directory.
pub async fn create(reaper: &Reaper, db: &Path, schema: &Path) -> Result<(), DbFileError> {
    let tmp = sibling(db, &format!("tmp-create.{}", std::process::id()));
    let cleanup = |tmp: &Path| {
        let _ = crate::host::fsguard::remove_file(tmp);
        let _ = crate::host::fsguard::remove_file(&tool_lock(tmp));
    };
    cleanup(&tmp);
    let made = tool(
        reaper,
        &["create", &tmp.to_string_lossy(), &schema.to_string_lossy()],
    )
    .await;
    let synced = made.and_then(|_| {
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io(&tmp))?;
        std::fs::rename(&tmp, db).map_err(io(db))?;
        sync_dir(db)
    });
    cleanup(&tmp);
    synced
}

/// Makes a rename in `path`'s directory durable.
pub fn sync_dir(path: &Path) -> Result<(), DbFileError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

/// `Some(reason)` when `ovsdb-tool show-log` cannot read every record of `db`.
pub async fn damage(reaper: &Reaper, db: &Path) -> Result<Option<String>, DbFileError> {
    match tool(reaper, &["show-log", &db.to_string_lossy()]).await {
        Ok(_) => Ok(None),
        Err(DbFileError::Tool { stderr, .. }) => Ok(Some(stderr)),
        Err(e) => Err(e),
    }
}

/// Copies a damaged `db` to `NAME.corrupt-YYYYMMDDTHHMMSSZ` and says so at error level;
/// an empty one is then created again (it holds nothing, and ovsdb-server cannot open it).
pub async fn keep_damaged(
    reaper: &Reaper,
    db: &Path,
    schema: &Path,
    why: &str,
) -> Result<PathBuf, DbFileError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let copy = sibling(db, &format!("corrupt-{}", utc_stamp(now)));
    std::fs::copy(db, &copy).map_err(io(&copy))?;
    let empty = std::fs::metadata(db).map_err(io(db))?.len() == 0;
    tracing::error!(
        db = %db.display(),
        copy = %copy.display(),
        "database damaged ({why}); kept a copy at {}{}",
        copy.display(),
        if empty { "; it is empty: creating it again" } else { "; ovsdb-server keeps what it can read" }
    );
    if empty {
        create(reaper, db, schema).await?;
    }
    Ok(copy)
}

/// While ovsdb-server (control socket `ctl`) runs: if `db` is gone, has the server write it
/// again from memory. `true` when it had to.
pub async fn rewrite_if_deleted(ctl: &Path, db: &Path, timeout: Duration) -> bool {
    if std::fs::symlink_metadata(db).is_ok() {
        return false;
    }
    tracing::warn!(db = %db.display(), "database deleted while ovsdb-server runs; writing it again from the server's memory");
    match crate::ovs::unixctl::call(ctl, "ovsdb-server/compact", &[], timeout).await {
        Ok(_) if db.exists() => tracing::warn!(db = %db.display(), "database written again"),
        Ok(_) => tracing::error!(db = %db.display(), "ovsdb-server/compact did not write it again"),
        Err(e) => tracing::error!(db = %db.display(), "cannot write the database again: {e}"),
    }
    true
}

/// `YYYYMMDDTHHMMSSZ` for a Unix time (days to civil date: H. Hinnant's algorithm).
fn utc_stamp(secs: u64) -> String {
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_utc_calendar_times() {
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        assert_eq!(utc_stamp(951_782_400), "20000229T000000Z");
        // Checked with `date -u -d @1795000000`.
        assert_eq!(utc_stamp(1_795_000_000), "20261118T110640Z");
    }

    #[test]
    fn temp_and_lock_names_stay_beside_the_database() {
        let db = Path::new("/d/conf.db");
        assert_eq!(sibling(db, "corrupt-X"), Path::new("/d/conf.db.corrupt-X"));
        assert_eq!(tool_lock(db), Path::new("/d/.conf.db.~lock~"));
    }
}

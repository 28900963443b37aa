//! Refusing to convert a database *down* to an older schema (a rollback after an upgrade).
//!
//! `ovsdb-tool needs-conversion` compares checksums, not versions: given a conf.db written by
//! OVS 3.5 (schema 8.8.0) and OVS 3.1's schema (8.3.1) it says `yes`, and `ovsdb-tool convert`
//! then succeeds (exit 0) while dropping every column 3.1 does not know (`Mirror:filter`,
//! `CT_Zone:limit`, ...) and the rows only those columns kept alive — checked with Debian 12's
//! 3.1 tools on a 3.5 database. ovs-ctl converts whenever the checksum differs, so a rolled-back
//! pod would silently lose data. We refuse instead, naming the database, both versions and the
//! backups an upgrade left (`conf.db.backupOLDVERSION-CKSUM`), and change nothing.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

/// An OVSDB schema version, `MAJOR.MINOR.PATCH` (RFC 7047 §3.2 `version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SchemaVersion(u32, u32, u32);

impl SchemaVersion {
    /// Parses `x.y.z` (as `ovsdb-tool db-version` / `schema-version` print it).
    pub fn parse(s: &str) -> Option<SchemaVersion> {
        let mut it = s.trim().split('.').map(|p| p.parse::<u32>().ok());
        let v = SchemaVersion(it.next()??, it.next()??, it.next()??);
        it.next().is_none().then_some(v)
    }
}

impl std::fmt::Display for SchemaVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// Why a conversion is refused: the database is newer than the schema we have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Newer {
    pub db: PathBuf,
    pub db_version: SchemaVersion,
    pub schema: PathBuf,
    pub schema_version: SchemaVersion,
    /// Backups of this database at the schema we have (`NAME.backupVERSION-*`), oldest name first.
    pub backups: Vec<PathBuf>,
}

impl std::fmt::Display for Newer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} has schema version {}, newer than {} ({}) of the Open vSwitch/OVN installed \
             here: refusing to convert it down, which would drop the columns the newer version \
             added; nothing was changed. Run the newer version again",
            self.db.display(),
            self.db_version,
            self.schema.display(),
            self.schema_version
        )?;
        match self.backups.as_slice() {
            [] => write!(f, " (no backup at schema {} found)", self.schema_version),
            b => {
                let names: Vec<String> = b.iter().map(|p| p.display().to_string()).collect();
                write!(
                    f,
                    ", or replace it with the backup made before the upgrade, losing what changed since: {}",
                    names.join(", ")
                )
            }
        }
    }
}

/// `Some` when `db_version` is newer than `schema_version` (both as the tools print them);
/// unparsable versions are not judged here (the conversion reports its own errors).
pub fn check(db: &Path, db_version: &str, schema: &Path, schema_version: &str) -> Option<Newer> {
    let (dv, sv) = (
        SchemaVersion::parse(db_version)?,
        SchemaVersion::parse(schema_version)?,
    );
    (dv.cmp(&sv) == Ordering::Greater).then(|| Newer {
        db: db.to_path_buf(),
        db_version: dv,
        schema: schema.to_path_buf(),
        schema_version: sv,
        backups: backups_at(db, sv),
    })
}

/// `NAME.backupVERSION-*` beside `db`: what an upgrade from `version` left.
fn backups_at(db: &Path, version: SchemaVersion) -> Vec<PathBuf> {
    let name = db.file_name().unwrap_or_default().to_string_lossy();
    let prefix = format!("{name}.backup{version}-");
    let dir = db.parent().unwrap_or(Path::new("."));
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_order_numerically() {
        let v = |s| SchemaVersion::parse(s).unwrap();
        assert!(v("8.8.0") > v("8.3.1"));
        assert!(v("8.10.0") > v("8.9.9"), "not a string comparison");
        assert_eq!(v(" 20.41.0\n").to_string(), "20.41.0");
        for bad in ["", "8.3", "8.3.1.2", "8.x.1", "-1.0.0"] {
            assert_eq!(SchemaVersion::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_a_newer_database_is_refused_and_the_backups_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("conf.db");
        let schema = Path::new("/usr/share/openvswitch/vswitch.ovsschema");
        assert_eq!(check(&db, "8.3.1", schema, "8.8.0"), None, "an upgrade");
        assert_eq!(check(&db, "8.3.1", schema, "8.3.1"), None);
        assert_eq!(check(&db, "garbage", schema, "8.3.1"), None);
        std::fs::write(dir.path().join("conf.db.backup8.3.1-123"), "").unwrap();
        std::fs::write(dir.path().join("conf.db.backup8.1.0-9"), "").unwrap();
        let n = check(&db, "8.8.0", schema, "8.3.1").expect("a rollback is refused");
        assert_eq!(n.backups, [dir.path().join("conf.db.backup8.3.1-123")]);
        let msg = n.to_string();
        for part in [
            "conf.db has schema version 8.8.0",
            "(8.3.1)",
            "backup8.3.1-123",
        ] {
            assert!(msg.contains(part), "{part:?} not in {msg}");
        }
    }
}

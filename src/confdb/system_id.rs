//! `system-id.conf`: the chassis identity, read as ovs-ctl and Kube-OVN read it (the file's
//! text, trimmed), generated once when missing.
//!
//! The accepted form ([`FORM`]): OVS itself takes any string as `external_ids:system-id`, and
//! OVN names the chassis after it. What writes the file in practice is a UUID (`ovs-ctl
//! --system-id=random` and Kube-OVN's start-ovs.sh: `uuidgen`; we: the kernel's random UUID),
//! and operators who set their own (`ovs-ctl --system-id=NAME`) use host names. So: 1 to 253
//! characters (a DNS name's length) of letters, digits and `-_.:` — every UUID and every host
//! name, and nothing that would need quoting anywhere the id travels (an OVSDB string, a
//! Kubernetes annotation, a log line, OVN's tunnel port names). Anything else is damage or a
//! planted file, and replacing it would silently change the node's identity: refused.
//!
//! Invariants: the file is read only if it is a regular file of at most [`MAX_FILE`] bytes,
//! never through a symlink, and never with a blocking open ([`crate::nodefile`]: a FIFO there
//! used to hang the start with SIGTERM ignored, `/dev/zero` ran us out of memory); a new id is
//! written through the checked directory's descriptor ([`crate::host::fsguard::write_atomic`]),
//! fsynced before and after its rename, so a crash leaves no file or the whole id.

use std::path::Path;

use super::DbFileError;
use crate::nodefile::{self, Links};

/// The largest system-id.conf read: an id and its newline fit many times over.
pub const MAX_FILE: u64 = 4096;
/// The longest id: a DNS name's.
pub const MAX_ID: usize = 253;
/// The accepted form, for errors and docs.
pub const FORM: &str =
    "a UUID or a host-name-like id: 1 to 253 letters, digits, '-', '_', '.' or ':'";

fn valid(id: &str) -> bool {
    (1..=MAX_ID).contains(&id.len())
        && (id.bytes()).all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// The id in a system-id.conf's `content` (surrounding whitespace trimmed, as ovs-ctl's `cat`
/// and Kube-OVN's `TrimSpace` do).
pub fn parse(path: &Path, content: &str) -> Result<String, DbFileError> {
    let id = content.trim();
    if !valid(id) {
        return Err(DbFileError::BadSystemId {
            path: path.to_path_buf(),
            content: content.chars().take(80).collect(),
        });
    }
    Ok(id.to_string())
}

/// The stored id; `None` when there is no file (or no directory for it) yet.
pub fn read(path: &Path) -> Result<Option<String>, DbFileError> {
    match nodefile::read(path, MAX_FILE, Links::Refuse) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            parse(path, &text).map(Some)
        }
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(DbFileError::SystemIdFile(e)),
    }
}

/// Reads the system-id, generating and persisting one on first start; true when generated.
pub fn ensure(path: &Path) -> Result<(String, bool), DbFileError> {
    if let Some(id) = read(path)? {
        return Ok((id, false));
    }
    let id = new_uuid();
    crate::host::fsguard::write_atomic(path, format!("{id}\n").as_bytes(), 0o644, true)?;
    Ok((id, true))
}

/// A random (version 4) UUID: the kernel's generator, or our own bits where /proc is absent.
fn new_uuid() -> String {
    let kernel = Path::new("/proc/sys/kernel/random/uuid");
    if let Ok(s) = nodefile::read_to_string(kernel, 64, Links::Refuse) {
        let s = s.trim();
        if s.len() == 36 && valid(s) {
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
        let path = dir.path().join("system-id.conf");
        let (id, created) = ensure(&path).unwrap();
        assert!(created);
        assert_eq!(id.len(), 36);
        let (again, created) = ensure(&path).unwrap();
        assert!(!created);
        assert_eq!(id, again);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "a temp file was left"
        );
    }

    /// (content, accepted id): what ovs-ctl, Kube-OVN and operators write, and damage.
    #[test]
    fn the_ids_form() {
        let long = "a".repeat(MAX_ID);
        let too_long = "a".repeat(MAX_ID + 1);
        let rows: [(&str, Option<&str>); 11] = [
            (
                "3c5f0b1e-0000-4000-8000-000000000031\n",
                Some("3c5f0b1e-0000-4000-8000-000000000031"),
            ),
            (
                "3C5F0B1E-0000-4000-8000-000000000031",
                Some("3C5F0B1E-0000-4000-8000-000000000031"),
            ),
            ("  node-1.example.com\n\n", Some("node-1.example.com")),
            ("chassis_7:a", Some("chassis_7:a")),
            (&long, Some(&long)),
            (&too_long, None),
            ("", None),
            ("\n", None),
            ("two words\n", None),
            ("id\"; rm -rf /", None),
            ("ünïcode", None),
        ];
        let p = Path::new("/e/system-id.conf");
        for (content, want) in rows {
            let got = parse(p, content).ok();
            assert_eq!(got.as_deref(), want, "{content:?}");
        }
        let e = parse(p, "two words").unwrap_err().to_string();
        assert!(
            e.contains("/e/system-id.conf") && e.contains("a UUID"),
            "{e}"
        );
    }

    #[test]
    fn hostile_files_are_refused_and_left_as_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("system-id.conf");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let e = ensure(&path).unwrap_err().to_string();
        assert!(
            e.contains("system-id.conf: is a FIFO; expected a regular file"),
            "{e}"
        );
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
        let e = ensure(&path).unwrap_err().to_string();
        assert!(e.contains("is a symlink"), "{e}");
        assert_eq!(std::fs::read_link(&path).unwrap(), Path::new("/dev/zero"));
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, vec![b'a'; MAX_FILE as usize + 1]).unwrap();
        let e = ensure(&path).unwrap_err().to_string();
        assert!(e.contains("at most 4096 bytes"), "{e}");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), MAX_FILE + 1);
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

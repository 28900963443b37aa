//! Files we write whole into a trusted directory (the readiness marker, system-id.conf): through
//! the directory's descriptor from [`super::secure_dir`], under a temp name nobody can guess,
//! created `O_CREAT|O_EXCL|O_NOFOLLOW`, then `renameat` over the final name.
//!
//! Invariants: a symlink planted at the final name is replaced by our file, never written
//! through (rename acts on the name, not on a link's target); one planted at a temp name makes
//! that create fail with EEXIST and another name is drawn, so nothing outside the directory is
//! ever opened for writing; a reader sees the old file or the whole new one. [`remove_if_ours`]
//! unlinks a name only while it still holds the file we made (same device, inode and mtime),
//! so another instance's file at the same path is left alone.

use std::ffi::OsStr;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, renameat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, Mode};
use nix::unistd::{unlinkat, UnlinkatFlags};

use super::{secure_dir, FsGuardError};

/// The file we put at a name: its device, inode and modification time (an inode number is
/// reused as soon as it is free; the time tells a later file that got it from ours).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Created {
    pub dev: u64,
    pub ino: u64,
    pub mtime: (i64, i64),
}

impl Created {
    fn of(st: &nix::sys::stat::FileStat) -> Created {
        Created {
            dev: st.st_dev,
            ino: st.st_ino,
            mtime: (st.st_mtime, st.st_mtime_nsec),
        }
    }
}

/// Temp names tried before giving up (each collision is a file someone planted, or a miracle).
const TRIES: usize = 8;

/// Sixteen hex digits from the kernel's random source.
fn random_suffix() -> String {
    let mut b = [0u8; 8];
    // SAFETY: getrandom writes at most `b.len()` bytes into `b`, which we own and which lives
    // across the call; flags 0 blocks only before the pool is initialised at boot.
    let n = unsafe { nix::libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != b.len() as isize {
        b = fastrand::u64(..).to_ne_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn split(path: &Path) -> Result<(&Path, &OsStr), FsGuardError> {
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => Ok((dir, name)),
        _ => Err(FsGuardError::Sys {
            path: path.into(),
            component: path.into(),
            errno: Errno::EINVAL,
        }),
    }
}

/// The checked directory of `path`, which must exist.
fn dir_fd(path: &Path, dir: &Path) -> Result<OwnedFd, FsGuardError> {
    secure_dir(dir, false, None)?.ok_or_else(|| FsGuardError::Sys {
        path: path.into(),
        component: dir.into(),
        errno: Errno::ENOENT,
    })
}

/// Writes `contents` to `path` atomically (see the module invariants), mode `mode`; with
/// `durable`, the file and then the directory are fsynced, so a crash leaves the old file or
/// the whole new one. Returns what it created.
pub fn write_atomic(
    path: &Path,
    contents: &[u8],
    mode: u32,
    durable: bool,
) -> Result<Created, FsGuardError> {
    let (dir, name) = split(path)?;
    let dfd = dir_fd(path, dir)?;
    let sys = |component: PathBuf, errno| FsGuardError::Sys {
        path: path.into(),
        component,
        errno,
    };
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut opened = None;
    for _ in 0..TRIES {
        let tmp = format!(".{}.{}", name.to_string_lossy(), random_suffix());
        match openat(
            Some(dfd.as_raw_fd()),
            tmp.as_str(),
            flags,
            Mode::from_bits_truncate(mode),
        ) {
            Ok(fd) => {
                opened = Some((fd, tmp));
                break;
            }
            Err(Errno::EEXIST) => continue,
            Err(e) => return Err(sys(dir.join(tmp), e)),
        }
    }
    let Some((fd, tmp)) = opened else {
        return Err(sys(dir.into(), Errno::EEXIST));
    };
    // SAFETY: `openat` returned a new descriptor that nothing else owns.
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let errno = |e: std::io::Error| Errno::from_raw(e.raw_os_error().unwrap_or(Errno::EIO as i32));
    let written = (file.write_all(contents))
        .and_then(|()| if durable { file.sync_all() } else { Ok(()) })
        .map_err(errno)
        .and_then(|()| fstat(file.as_raw_fd()))
        .and_then(|st| {
            renameat(
                Some(dfd.as_raw_fd()),
                tmp.as_str(),
                Some(dfd.as_raw_fd()),
                name,
            )?;
            Ok(st)
        });
    let st = match written {
        Ok(st) => st,
        Err(e) => {
            let _ = unlinkat(
                Some(dfd.as_raw_fd()),
                tmp.as_str(),
                UnlinkatFlags::NoRemoveDir,
            );
            return Err(sys(dir.join(tmp), e));
        }
    };
    if durable {
        nix::unistd::fsync(dfd.as_raw_fd()).map_err(|e| sys(dir.into(), e))?;
    }
    Ok(Created::of(&st))
}

/// Unlinks `path` if it is still the file we created; true when it did. Gone already, or
/// another file now: false, and nothing is touched.
pub fn remove_if_ours(path: &Path, ours: Created) -> Result<bool, FsGuardError> {
    let (dir, name) = split(path)?;
    let dfd = match dir_fd(path, dir) {
        Ok(fd) => fd,
        Err(FsGuardError::Sys {
            errno: Errno::ENOENT,
            ..
        }) => return Ok(false),
        Err(e) => return Err(e),
    };
    let sys = |errno| FsGuardError::Sys {
        path: path.into(),
        component: path.into(),
        errno,
    };
    match fstatat(Some(dfd.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if Created::of(&st) == ours => {}
        Ok(_) | Err(Errno::ENOENT) => return Ok(false),
        Err(e) => return Err(sys(e)),
    }
    match unlinkat(Some(dfd.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) => Ok(true),
        Err(Errno::ENOENT) => Ok(false),
        Err(e) => Err(sys(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_at_the_name_is_replaced_and_its_target_kept() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        let path = d.path().join("ready");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let made = write_atomic(&path, b"1\n", 0o644, false).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        assert!(std::fs::symlink_metadata(&path).unwrap().is_file());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "1\n");
        // Only the marker and the victim: no temp file is left behind.
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 2);
        assert!(remove_if_ours(&path, made).unwrap());
        assert!(!path.exists());
        assert!(!remove_if_ours(&path, made).unwrap());
    }

    #[test]
    fn another_file_at_the_name_is_not_removed() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("ready");
        let made = write_atomic(&path, b"1\n", 0o644, true).unwrap();
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, "theirs\n").unwrap();
        assert!(!remove_if_ours(&path, made).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "theirs\n");
    }

    #[test]
    fn temp_names_differ_and_an_untrusted_directory_is_refused() {
        assert_ne!(random_suffix(), random_suffix());
        let d = tempfile::tempdir().unwrap();
        let open = d.path().join("open");
        std::fs::create_dir(&open).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = write_atomic(&open.join("ready"), b"1\n", 0o644, false).unwrap_err();
        assert!(e.to_string().contains("world-writable"), "{e}");
        assert_eq!(std::fs::read_dir(&open).unwrap().count(), 0);
    }
}

//! Reading a small file that someone else may have put on the node (system-id.conf, a
//! pidfile, a CNI configuration, os-release): a FIFO there used to block `open()` forever, a
//! 100 MB file was read whole, and a link to `/dev/zero` ran us out of memory.
//!
//! Invariants:
//! - Only a regular file is ever opened: the path is `stat`ed first (without following a final
//!   symlink when links are refused) and anything else — FIFO, socket, device, directory — is
//!   refused without an `open`, which for a device could itself have effects.
//! - The open is `O_NONBLOCK` (a FIFO swapped in after the `stat` cannot block it) and
//!   `O_NOFOLLOW` when links are refused; what was opened is `fstat`ed again and must be the
//!   same regular file.
//! - At most `max` bytes are read: a bigger file is refused from its size, and a file growing
//!   under us is refused at `max + 1` bytes, never read to its end.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Whether a symlink at the file's own name is followed (a link on the way to it always is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    Follow,
    Refuse,
}

#[derive(Debug, thiserror::Error)]
pub enum NodeFileError {
    #[error("{}: is a symlink; expected a regular file (links are not followed here)", path.display())]
    Symlink { path: PathBuf },
    #[error("{}: is a {kind}; expected a regular file", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("{}: is {len} bytes; expected a regular file of at most {max} bytes", path.display())]
    TooBig { path: PathBuf, len: u64, max: u64 },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl NodeFileError {
    /// Nothing at the path (or a directory on the way is missing).
    pub fn is_not_found(&self) -> bool {
        matches!(self, NodeFileError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }

    fn path(&self) -> &Path {
        match self {
            NodeFileError::Symlink { path }
            | NodeFileError::NotRegular { path, .. }
            | NodeFileError::TooBig { path, .. }
            | NodeFileError::Io { path, .. } => path,
        }
    }

    /// The error without its path, for a caller whose own error names the file.
    pub fn into_io(self) -> std::io::Error {
        let full = self.to_string();
        let prefix = format!("{}: ", self.path().display());
        match self {
            NodeFileError::Io { source, .. } => source,
            _ => std::io::Error::other(full.strip_prefix(&prefix).unwrap_or(&full).to_string()),
        }
    }
}

/// What a file type is called in an error.
fn kind(ft: std::fs::FileType) -> &'static str {
    if ft.is_fifo() {
        "FIFO"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_char_device() {
        "character device"
    } else if ft.is_block_device() {
        "block device"
    } else if ft.is_dir() {
        "directory"
    } else if ft.is_symlink() {
        "symlink"
    } else {
        "regular file"
    }
}

/// Opens `path` for reading if, and only if, it is a regular file of at most `max` bytes.
pub fn open(path: &Path, max: u64, links: Links) -> Result<File, NodeFileError> {
    open_for(path, max, links, false)
}

/// [`open`], for reading and writing when `write` (to take an fcntl write lock on it).
pub fn open_for(path: &Path, max: u64, links: Links, write: bool) -> Result<File, NodeFileError> {
    let io = |source| NodeFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = match links {
        Links::Follow => std::fs::metadata(path),
        Links::Refuse => std::fs::symlink_metadata(path),
    }
    .map_err(io)?;
    check(path, &meta, max, links)?;
    let mut flags = nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC;
    if links == Links::Refuse {
        flags |= nix::libc::O_NOFOLLOW;
    }
    let file = File::options()
        .read(true)
        .write(write)
        .custom_flags(flags)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            // O_NOFOLLOW on a link swapped in since the stat.
            Some(nix::libc::ELOOP) if links == Links::Refuse => NodeFileError::Symlink {
                path: path.to_path_buf(),
            },
            _ => io(e),
        })?;
    let opened = file.metadata().map_err(io)?;
    check(path, &opened, max, links)?;
    if (opened.dev(), opened.ino()) != (meta.dev(), meta.ino()) {
        return Err(io(std::io::Error::other(
            "was replaced while we opened it; try again",
        )));
    }
    Ok(file)
}

fn check(
    path: &Path,
    meta: &std::fs::Metadata,
    max: u64,
    links: Links,
) -> Result<(), NodeFileError> {
    let ft = meta.file_type();
    if ft.is_symlink() && links == Links::Refuse {
        return Err(NodeFileError::Symlink {
            path: path.to_path_buf(),
        });
    }
    if !ft.is_file() {
        return Err(NodeFileError::NotRegular {
            path: path.to_path_buf(),
            kind: kind(ft),
        });
    }
    if meta.len() > max {
        return Err(NodeFileError::TooBig {
            path: path.to_path_buf(),
            len: meta.len(),
            max,
        });
    }
    Ok(())
}

/// The bytes of the regular file `path`, at most `max` of them (see the module invariants).
pub fn read(path: &Path, max: u64, links: Links) -> Result<Vec<u8>, NodeFileError> {
    let file = open(path, max, links)?;
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| NodeFileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > max {
        return Err(NodeFileError::TooBig {
            path: path.to_path_buf(),
            len: bytes.len() as u64,
            max,
        });
    }
    Ok(bytes)
}

/// [`read`] as UTF-8 text.
pub fn read_to_string(path: &Path, max: u64, links: Links) -> Result<String, NodeFileError> {
    String::from_utf8(read(path, max, links)?).map_err(|_| NodeFileError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn regular_files_within_the_bound_are_read() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, "abc\n").unwrap();
        assert_eq!(read_to_string(&p, 4, Links::Refuse).unwrap(), "abc\n");
        let e = read(&p, 3, Links::Refuse).unwrap_err();
        assert!(
            matches!(e, NodeFileError::TooBig { len: 4, max: 3, .. }),
            "{e}"
        );
        let e = read(&d.path().join("none"), 3, Links::Refuse).unwrap_err();
        assert!(e.is_not_found(), "{e}");
    }

    /// (what is at the path, links, expected error kind); each is refused at once.
    #[test]
    fn hostile_files_are_refused_without_blocking_or_reading() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let real = d.path().join("real");
        std::fs::write(&real, "x").unwrap();
        let to_real = d.path().join("to-real");
        std::os::unix::fs::symlink(&real, &to_real).unwrap();
        let to_zero = d.path().join("to-zero");
        std::os::unix::fs::symlink("/dev/zero", &to_zero).unwrap();
        let rows: [(&Path, Links, &str); 6] = [
            (&fifo, Links::Follow, "is a FIFO"),
            (&to_zero, Links::Refuse, "is a symlink"),
            (&to_zero, Links::Follow, "is a character device"),
            (
                Path::new("/dev/zero"),
                Links::Follow,
                "is a character device",
            ),
            (d.path(), Links::Follow, "is a directory"),
            (&to_real, Links::Refuse, "is a symlink"),
        ];
        for (path, links, want) in rows {
            let t0 = Instant::now();
            let e = read(path, 4096, links).unwrap_err();
            assert!(t0.elapsed() < Duration::from_secs(1), "{path:?} blocked");
            assert!(e.to_string().contains(want), "{path:?} {links:?}: {e}");
            assert!(e.to_string().contains("regular file"), "{e}");
        }
        assert_eq!(read(&to_real, 1, Links::Follow).unwrap(), b"x");
        let e = read(&fifo, 1, Links::Follow)
            .unwrap_err()
            .into_io()
            .to_string();
        assert_eq!(e, "is a FIFO; expected a regular file");
    }
}

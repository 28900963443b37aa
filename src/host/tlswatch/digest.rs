//! What a watched TLS file holds, as a [`Digest`]: its length and a hash of its first
//! [`MAX_READ`] bytes, read through [`crate::nodefile`] (symlinks followed: a secret volume is
//! made of them).
//!
//! Invariants: a missing file or a dangling link is [`Digest::Absent`], not an error; anything
//! but a regular file is refused without being opened (a FIFO used to be able to block us); at
//! most [`MAX_READ`] bytes are read, whatever the file's size.

use std::collections::hash_map::DefaultHasher;
use std::hash::Hasher;
use std::io::Read;
use std::path::Path;

use super::TlsWatchError;
use crate::nodefile::{self, Links, NodeFileError};

/// Bytes hashed per file. Certificates and keys are a few KiB; a bigger file is hashed on its
/// first MiB plus its length rather than read without bound.
pub const MAX_READ: u64 = 1 << 20;

/// What a file held when last read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Digest {
    Absent,
    /// `len` is the whole file's length; `hash` covers at most its first [`MAX_READ`] bytes.
    Present {
        len: u64,
        hash: u64,
    },
}

/// Reads `path` (following symlinks) into a [`Digest`]; not there means [`Digest::Absent`].
pub fn digest_file(path: &Path) -> Result<Digest, TlsWatchError> {
    let read_err = |source| TlsWatchError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = match nodefile::open(path, u64::MAX, Links::Follow) {
        Ok(f) => f,
        Err(NodeFileError::Io { source, .. }) => {
            return match source.raw_os_error().map(nix::errno::Errno::from_raw) {
                // ENOTDIR: a path component is a file; ENOENT also covers dangling links, which
                // a swap leaves for an instant.
                Some(nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR) => Ok(Digest::Absent),
                _ => Err(read_err(source)),
            };
        }
        Err(_) => {
            return Err(TlsWatchError::NotRegular {
                path: path.to_path_buf(),
            })
        }
    };
    let len = file.metadata().map_err(read_err)?.len();
    let mut bytes = Vec::with_capacity(usize::try_from(len.min(MAX_READ)).unwrap_or(0));
    file.take(MAX_READ)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    Ok(digest_bytes(&bytes, len))
}

/// The digest of `bytes` (at most the first [`MAX_READ`] of a file) from a file `len` long.
pub fn digest_bytes(bytes: &[u8], len: u64) -> Digest {
    let mut hasher = DefaultHasher::new();
    hasher.write(bytes);
    Digest::Present {
        len,
        hash: hasher.finish(),
    }
}

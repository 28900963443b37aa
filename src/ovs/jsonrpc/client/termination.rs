//! Why a connection stopped, in a form every waiter can get its own copy of: the reader hands
//! one [`Termination`] to all pending calls and keeps it for later ones.
//!
//! Invariant: rebuilding the error for a waiter keeps what a log line needs (the I/O error
//! kind and OS code, the codec error's text and offsets), since the originals cannot be cloned.

use std::io;
use std::path::Path;

use super::super::codec::CodecError;
use super::RpcError;

/// Why the connection stopped; cloneable so every waiter gets its own error.
#[derive(Debug, Clone)]
pub(super) enum Termination {
    Eof,
    Io {
        kind: io::ErrorKind,
        raw: Option<i32>,
        msg: String,
    },
    Codec(CodecErrorCopy),
    /// A write could not complete, so the stream may hold half a message.
    WriterBroken,
}

/// `CodecError` holds a non-`Clone` `serde_json::Error`; this keeps what is
/// needed to rebuild an equivalent error for each waiter.
#[derive(Debug, Clone)]
pub(super) enum CodecErrorCopy {
    Malformed { msg: String, offset: usize },
    TooLarge { limit: usize },
    NotJsonRpc { snippet: String },
    Truncated { bytes: usize },
}

impl CodecErrorCopy {
    pub(super) fn of(e: &CodecError) -> Self {
        match e {
            CodecError::Malformed { source, offset } => CodecErrorCopy::Malformed {
                msg: source.to_string(),
                offset: *offset,
            },
            CodecError::TooLarge { limit } => CodecErrorCopy::TooLarge { limit: *limit },
            CodecError::NotJsonRpc { snippet } => CodecErrorCopy::NotJsonRpc {
                snippet: snippet.clone(),
            },
            CodecError::Truncated { bytes } => CodecErrorCopy::Truncated { bytes: *bytes },
        }
    }

    fn rebuild(&self) -> CodecError {
        match self {
            CodecErrorCopy::Malformed { msg, offset } => CodecError::Malformed {
                source: <serde_json::Error as serde::de::Error>::custom(msg),
                offset: *offset,
            },
            CodecErrorCopy::TooLarge { limit } => CodecError::TooLarge { limit: *limit },
            CodecErrorCopy::NotJsonRpc { snippet } => CodecError::NotJsonRpc {
                snippet: snippet.clone(),
            },
            CodecErrorCopy::Truncated { bytes } => CodecError::Truncated { bytes: *bytes },
        }
    }
}

impl Termination {
    pub(super) fn to_error(&self, path: &Path, method: &str) -> RpcError {
        let path = path.to_path_buf();
        match self {
            Termination::Eof | Termination::WriterBroken => RpcError::Closed {
                path,
                method: method.to_owned(),
            },
            Termination::Io { kind, raw, msg } => RpcError::Io {
                path,
                source: match raw {
                    Some(code) => io::Error::from_raw_os_error(*code),
                    None => io::Error::new(*kind, msg.clone()),
                },
            },
            Termination::Codec(c) => RpcError::Codec {
                path,
                source: c.rebuild(),
            },
        }
    }
}

//! Async JSON-RPC 1.0 client over one Unix socket (OVSDB or unixctl).
//!
//! A background reader task owns the read half and the [`Decoder`]; it routes
//! each reply to the call waiting on its id, answers the server's `echo`
//! requests, and forwards notifications. Writers share the write half behind
//! a tokio mutex so whole messages never interleave.
//!
//! Invariants:
//! - Every call ends: with its reply, its own timeout, or the connection's
//!   terminal error, which the reader hands to all pending calls at once and
//!   to every later call.
//! - A timed-out call leaves no pending entry behind; a late reply for it is
//!   logged at debug level and dropped like any unknown id.
//! - Dropping the last [`Client`] clone aborts the reader task.
//! - Only notifications arriving after [`Client::notifications`] was first
//!   called are kept, so an unread stream cannot grow without bound.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{timeout, timeout_at, Instant};

use super::codec::{encode_error, encode_request, encode_response, CodecError, Decoder, Message};

const READ_CHUNK: usize = 64 * 1024;

/// Bounds how long the reader may be kept from reading by an echo reply
/// waiting behind a stuck writer.
const ECHO_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("connect to {}: {source}", path.display())]
    Connect {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("I/O on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{method} on {} timed out after {after:?}", path.display())]
    Timeout {
        method: String,
        path: PathBuf,
        after: Duration,
    },
    #[error("{method} on {}: connection closed by peer", path.display())]
    Closed { path: PathBuf, method: String },
    #[error("protocol error on {}: {source}", path.display())]
    Codec {
        path: PathBuf,
        #[source]
        source: CodecError,
    },
    #[error("{method} on {}: server error: {}", path.display(), compact(error))]
    Remote {
        path: PathBuf,
        method: String,
        error: Value,
    },
}

fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Why the connection stopped; cloneable so every waiter gets its own error.
#[derive(Debug, Clone)]
enum Termination {
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
enum CodecErrorCopy {
    Malformed { msg: String, offset: usize },
    TooLarge { limit: usize },
    NotJsonRpc { snippet: String },
    Truncated { bytes: usize },
}

impl CodecErrorCopy {
    fn of(e: &CodecError) -> Self {
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
    fn to_error(&self, path: &Path, method: &str) -> RpcError {
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

type Reply = Result<(Value, Value), Termination>;

#[derive(Default)]
struct Pending {
    waiters: HashMap<u64, oneshot::Sender<Reply>>,
    /// Set once by the reader when it stops; later calls fail at once.
    closed: Option<Termination>,
}

struct Shared {
    path: PathBuf,
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    /// Set when a write was cut short: the stream may hold half a message.
    writer_broken: AtomicBool,
    pending: Mutex<Pending>,
    next_id: AtomicU64,
    notify_tx: Mutex<Option<mpsc::UnboundedSender<(String, Value)>>>,
    notify_taken: AtomicBool,
}

/// Poisoning only means another thread panicked mid-update of plain maps;
/// the data is still consistent enough to keep serving.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Writes one whole message; a write interrupted by the deadline marks
    /// the connection unusable because the peer would see a torn message.
    async fn write_message(&self, bytes: &[u8], deadline: Instant) -> Result<(), WriteFail> {
        let mut w = timeout_at(deadline, self.writer.lock())
            .await
            .map_err(|_| WriteFail::Timeout)?;
        if self.writer_broken.load(Ordering::Acquire) {
            return Err(WriteFail::Broken);
        }
        match timeout_at(deadline, w.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                self.writer_broken.store(true, Ordering::Release);
                Err(WriteFail::Io(e))
            }
            Err(_) => {
                self.writer_broken.store(true, Ordering::Release);
                Err(WriteFail::Timeout)
            }
        }
    }
}

enum WriteFail {
    Timeout,
    Broken,
    Io(io::Error),
}

struct Inner {
    shared: Arc<Shared>,
    reader: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Handle to one connection; clones share it.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("path", &self.inner.shared.path)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects to a Unix socket. Connection failures keep the `io::Error`
    /// so callers can tell "not there yet" (ENOENT, ECONNREFUSED) apart.
    pub async fn connect(path: &Path, timeout_after: Duration) -> Result<Client, RpcError> {
        let stream = match timeout(timeout_after, UnixStream::connect(path)).await {
            Ok(Ok(s)) => s,
            Ok(Err(source)) => {
                return Err(RpcError::Connect {
                    path: path.to_path_buf(),
                    source,
                })
            }
            Err(_) => {
                return Err(RpcError::Timeout {
                    method: "connect".to_owned(),
                    path: path.to_path_buf(),
                    after: timeout_after,
                })
            }
        };
        let (read_half, write_half) = stream.into_split();
        let shared = Arc::new(Shared {
            path: path.to_path_buf(),
            writer: tokio::sync::Mutex::new(write_half),
            writer_broken: AtomicBool::new(false),
            pending: Mutex::new(Pending::default()),
            next_id: AtomicU64::new(0),
            notify_tx: Mutex::new(None),
            notify_taken: AtomicBool::new(false),
        });
        let reader = tokio::spawn(read_loop(Arc::clone(&shared), read_half));
        Ok(Client {
            inner: Arc::new(Inner { shared, reader }),
        })
    }

    /// Socket path this client is connected to.
    pub fn path(&self) -> &Path {
        &self.inner.shared.path
    }

    /// Sends `method(params)` and waits up to `timeout_after` for the reply.
    pub async fn call(
        &self,
        method: &str,
        params: Value,
        timeout_after: Duration,
    ) -> Result<Value, RpcError> {
        let shared = &self.inner.shared;
        let deadline = Instant::now() + timeout_after;
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut p = lock(&shared.pending);
            if let Some(t) = &p.closed {
                return Err(t.to_error(&shared.path, method));
            }
            p.waiters.insert(id, tx);
        }
        // Removes the waiter on every early exit, including the caller
        // dropping this future, so the map never accumulates dead entries.
        let guard = PendingGuard { shared, id };
        let bytes = encode_request(&Value::from(id), method, &params);
        let timed_out = || RpcError::Timeout {
            method: method.to_owned(),
            path: shared.path.clone(),
            after: timeout_after,
        };
        match shared.write_message(&bytes, deadline).await {
            Ok(()) => {}
            Err(WriteFail::Timeout) => return Err(timed_out()),
            Err(WriteFail::Broken) => {
                return Err(Termination::WriterBroken.to_error(&shared.path, method))
            }
            Err(WriteFail::Io(source)) => {
                return Err(RpcError::Io {
                    path: shared.path.clone(),
                    source,
                })
            }
        }
        let reply = timeout_at(deadline, rx).await;
        drop(guard);
        match reply {
            Err(_) => Err(timed_out()),
            Ok(Err(_)) => Err(RpcError::Closed {
                path: shared.path.clone(),
                method: method.to_owned(),
            }),
            Ok(Ok(Err(t))) => Err(t.to_error(&shared.path, method)),
            Ok(Ok(Ok((result, error)))) => {
                if error.is_null() {
                    Ok(result)
                } else {
                    Err(RpcError::Remote {
                        path: shared.path.clone(),
                        method: method.to_owned(),
                        error,
                    })
                }
            }
        }
    }

    /// The notification stream, `(method, params)`; `Some` only on the first
    /// call. Notifications received before this is first called are dropped.
    pub fn notifications(&self) -> Option<mpsc::UnboundedReceiver<(String, Value)>> {
        let shared = &self.inner.shared;
        if shared.notify_taken.swap(true, Ordering::AcqRel) {
            return None;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        *lock(&shared.notify_tx) = Some(tx);
        Some(rx)
    }
}

struct PendingGuard<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        lock(&self.shared.pending).waiters.remove(&self.id);
    }
}

async fn read_loop(shared: Arc<Shared>, mut read_half: OwnedReadHalf) {
    let mut decoder = Decoder::new();
    let mut buf = vec![0u8; READ_CHUNK];
    let termination = loop {
        let n = match read_half.read(&mut buf).await {
            Ok(0) => match decoder.finish() {
                Ok(()) => break Termination::Eof,
                Err(e) => break Termination::Codec(CodecErrorCopy::of(&e)),
            },
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                break Termination::Io {
                    kind: e.kind(),
                    raw: e.raw_os_error(),
                    msg: e.to_string(),
                }
            }
        };
        match decoder.feed(&buf[..n]) {
            Ok(messages) => {
                for m in messages {
                    dispatch(&shared, m).await;
                }
            }
            Err(e) => {
                tracing::warn!(path = %shared.path.display(), error = %e, "JSON-RPC stream unusable");
                break Termination::Codec(CodecErrorCopy::of(&e));
            }
        }
    };
    tracing::debug!(path = %shared.path.display(), ?termination, "JSON-RPC reader stopped");
    let waiters = {
        let mut p = lock(&shared.pending);
        p.closed = Some(termination.clone());
        std::mem::take(&mut p.waiters)
    };
    for (_, tx) in waiters {
        let _ = tx.send(Err(termination.clone()));
    }
    // Ends the notification stream so consumers see the connection is gone.
    lock(&shared.notify_tx).take();
}

async fn dispatch(shared: &Shared, m: Message) {
    match m {
        Message::Response { id, result, error } => {
            let waiter = id
                .as_u64()
                .and_then(|n| lock(&shared.pending).waiters.remove(&n));
            match waiter {
                // The caller may have just timed out; nothing else to do.
                Some(tx) => drop(tx.send(Ok((result, error)))),
                None => {
                    tracing::debug!(path = %shared.path.display(), %id, "reply with unknown id dropped")
                }
            }
        }
        Message::Request { id, method, params } => {
            let reply = if method == "echo" {
                encode_response(&id, &params)
            } else {
                tracing::debug!(path = %shared.path.display(), %method, "refusing server request");
                encode_error(&id, &Value::String("unknown method".to_owned()))
            };
            let deadline = Instant::now() + ECHO_WRITE_TIMEOUT;
            if shared.write_message(&reply, deadline).await.is_err() {
                tracing::debug!(path = %shared.path.display(), %method, "could not answer server request");
            }
        }
        Message::Notification { method, params } => {
            let mut tx = lock(&shared.notify_tx);
            if let Some(sender) = tx.as_ref() {
                if sender.send((method, params)).is_err() {
                    // Receiver gone: stop queueing for nobody.
                    tx.take();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;

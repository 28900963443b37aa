//! Async JSON-RPC 1.0 client over one Unix socket (OVSDB or unixctl).
//!
//! A background reader task owns the read half and the [`Decoder`](super::Decoder); it routes
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
//!
//! Layout: [`Client`] (connecting, calls, the notification stream) is here; the shared state
//! and the reader task are in `conn`, and why a connection stopped in `termination`.

mod conn;
mod termination;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{timeout, timeout_at, Instant};

use super::codec::{encode_request, CodecError};
use conn::{lock, read_loop, Pending, Shared, WriteFail};
use termination::Termination;

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

#[cfg(test)]
mod tests;

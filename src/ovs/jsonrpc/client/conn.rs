//! One connection's shared state and its reader task: the write half behind a lock so whole
//! messages never interleave, the calls waiting for replies by id, and the loop that decodes
//! what the server sends and routes it (replies to their waiters, `echo` answered,
//! notifications forwarded).
//!
//! Invariants: a write cut short marks the connection broken for every later write (the peer
//! may hold half a message); when the reader stops, every pending call and every later one
//! gets the same [`Termination`]; an answer to the server never blocks the reader for longer
//! than [`ECHO_WRITE_TIMEOUT`].

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{timeout_at, Instant};

use super::super::codec::{encode_error, encode_response, Decoder, Message};
use super::termination::{CodecErrorCopy, Termination};

const READ_CHUNK: usize = 64 * 1024;

/// Bounds how long the reader may be kept from reading by an echo reply
/// waiting behind a stuck writer.
const ECHO_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) type Reply = Result<(Value, Value), Termination>;

#[derive(Default)]
pub(super) struct Pending {
    pub(super) waiters: HashMap<u64, oneshot::Sender<Reply>>,
    /// Set once by the reader when it stops; later calls fail at once.
    pub(super) closed: Option<Termination>,
}

pub(super) struct Shared {
    pub(super) path: PathBuf,
    pub(super) writer: tokio::sync::Mutex<OwnedWriteHalf>,
    /// Set when a write was cut short: the stream may hold half a message.
    pub(super) writer_broken: AtomicBool,
    pub(super) pending: Mutex<Pending>,
    pub(super) next_id: AtomicU64,
    pub(super) notify_tx: Mutex<Option<mpsc::UnboundedSender<(String, Value)>>>,
    pub(super) notify_taken: AtomicBool,
}

/// Poisoning only means another thread panicked mid-update of plain maps;
/// the data is still consistent enough to keep serving.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Writes one whole message; a write interrupted by the deadline marks
    /// the connection unusable because the peer would see a torn message.
    pub(super) async fn write_message(
        &self,
        bytes: &[u8],
        deadline: Instant,
    ) -> Result<(), WriteFail> {
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

pub(super) enum WriteFail {
    Timeout,
    Broken,
    Io(io::Error),
}

pub(super) async fn read_loop(shared: Arc<Shared>, mut read_half: OwnedReadHalf) {
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

//! The supervisor's control socket (`OVS_RUNDIR/ovs-ovn-supervisor.sock`): probes and
//! `status` ask the running supervisor instead of forking tools.
//!
//! Protocol: JSON-RPC 1.0 with our codec, one request per connection: `startup`, `liveness`,
//! `readiness` answer `{"ok": bool, "reason": "..."}`; `status` answers the [`Snapshot`].
//! Answers come from the published [`Snapshot`]: daemon exits and stage changes as they
//! happen, daemon health from the supervisor's background check at its cadence.
//!
//! Invariants: the socket is mode 0600 from the moment it has its name (bound under a temp
//! name, chmod, renamed); a request larger than [`MAX_REQUEST`], slower than [`READ_DEADLINE`]
//! or malformed gets an error or a closed connection and nothing else; at most
//! [`MAX_CONNECTIONS`] are open at once, a newcomer evicting the oldest idle one
//! ([`crate::control::conns`]) — idle, slow or many clients can neither starve probes nor
//! block the supervisor, and running out of file descriptors makes it back off, not spin.
//! The server does no work while nobody asks. The client side is [`crate::control::client`].
//!
//! `handover` (a newer instance, `params[1].pid` its pid) is answered once our daemons have
//! stopped; at once with an error while we stop for good, or with `handed_over: false` when
//! we handed the node over already and run nothing. `uninstall` (only from our own uid:
//! [`crate::control::uninstall`]) is answered once the daemons have stopped for good.

pub mod client;
pub mod conns;
pub mod uninstall;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

pub use crate::control::client::{ask, ask_with, probe};
pub use crate::control::uninstall::UninstallRequest;
use crate::ovs::jsonrpc::{codec, Decoder, Message};
pub use crate::status::unix_ms;
use crate::status::{verdict, Snapshot};

pub const MAX_REQUEST: usize = 64 * 1024;
pub const READ_DEADLINE: Duration = Duration::from_secs(1);
pub const MAX_CONNECTIONS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("control socket {path}: {source}")]
    Bind {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Binds the socket (0600) and serves it until the task is dropped.
/// A newer instance asks this one to hand the node over (rolling update): the supervisor
/// answers on `reply` once its daemons have stopped, with where it saved br-int's flows.
pub struct HandoverRequest {
    pub reply: tokio::sync::oneshot::Sender<Result<Value, String>>,
    /// The asking instance's pid (`params[1].pid`), if we could see it when it asked, so we
    /// can tell if it dies.
    pub successor: Option<i32>,
}

/// Longest a handover may take before the asking instance gives up.
pub const HANDOVER_DEADLINE: Duration = Duration::from_secs(60);

/// The socket we bound, by device and inode: at exit we unlink the path only while it is still
/// ours (after a handover, or a racing start, it may be another instance's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    pub dev: u64,
    pub ino: u64,
}

impl Bound {
    /// True while the file at `path` is the socket we bound (nobody replaced or removed it).
    pub fn is_at(&self, path: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        std::fs::symlink_metadata(path).is_ok_and(|m| m.dev() == self.dev && m.ino() == self.ino)
    }
}

/// Removes the socket at `path` only when it is the one we bound.
pub fn remove_if_ours(path: &Path, bound: Bound) {
    if !bound.is_at(path) {
        tracing::info!(path = %path.display(), "control socket is no longer ours: left in place");
        return;
    }
    if let Err(e) = crate::host::fsguard::remove_file(path) {
        tracing::warn!(path = %path.display(), "cannot remove the control socket: {e}");
    }
}

pub fn serve(
    path: &Path,
    snapshot: watch::Receiver<Snapshot>,
    handover: tokio::sync::mpsc::Sender<HandoverRequest>,
    uninstall: tokio::sync::mpsc::Sender<UninstallRequest>,
) -> Result<(tokio::task::JoinHandle<()>, Bound), ControlError> {
    let err = |source| ControlError::Bind {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension(format!("sock.tmp.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp).map_err(err)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    let meta = std::fs::symlink_metadata(&tmp).map_err(err)?;
    let bound = Bound {
        dev: std::os::unix::fs::MetadataExt::dev(&meta),
        ino: std::os::unix::fs::MetadataExt::ino(&meta),
    };
    std::fs::rename(&tmp, path).map_err(err)?;
    let task = tokio::spawn(crate::control::conns::accept_loop(
        listener,
        MAX_CONNECTIONS,
        move |stream, busy| {
            let requests = Requests {
                handover: handover.clone(),
                uninstall: uninstall.clone(),
            };
            handle(stream, snapshot.clone(), requests, busy)
        },
    ));
    Ok((task, bound))
}

async fn read_request(stream: &mut UnixStream) -> Result<(Value, String, Value), String> {
    let mut dec = Decoder::with_limit(MAX_REQUEST);
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("connection closed before a complete request".to_string());
            }
            let msgs = dec.feed(&buf[..n]).map_err(|e| e.to_string())?;
            if let Some(m) = msgs.into_iter().next() {
                return match m {
                    Message::Request { id, method, params } => Ok((id, method, params)),
                    _ => Err("expected a request".to_string()),
                };
            }
        }
    };
    tokio::time::timeout(READ_DEADLINE, read)
        .await
        .map_err(|_| format!("no complete request within {READ_DEADLINE:?}"))?
}

/// Where requests that the supervisor loop must carry out go.
struct Requests {
    handover: tokio::sync::mpsc::Sender<HandoverRequest>,
    uninstall: tokio::sync::mpsc::Sender<UninstallRequest>,
}

async fn handle(
    mut stream: UnixStream,
    snap: watch::Receiver<Snapshot>,
    requests: Requests,
    busy: Arc<AtomicBool>,
) {
    let request = read_request(&mut stream).await;
    // A complete request: no longer an idle client that a newcomer may evict.
    busy.store(true, Ordering::Relaxed);
    let reply = match request {
        Ok((id, method, params)) if method == "handover" => {
            // One borrow: a second read guard while a writer waits could block this thread.
            let stopping_for_good = {
                let s = snap.borrow();
                s.stopping && s.handover.is_none()
            };
            match hand_over(stopping_for_good, &params, &requests.handover).await {
                Ok(v) => codec::encode_response(&id, &v),
                Err(e) => codec::encode_error(&id, &json!(e)),
            }
        }
        Ok((id, method, _)) if method == "uninstall" => {
            match uninstall::ask_supervisor(&stream, &requests.uninstall).await {
                Ok(v) => codec::encode_response(&id, &v),
                Err(e) => codec::encode_error(&id, &json!(e)),
            }
        }
        Ok((id, method, _params)) => {
            let snapshot = snap.borrow().clone();
            match answer(&method, &snapshot, unix_ms()) {
                Ok(result) => codec::encode_response(&id, &result),
                Err(e) => codec::encode_error(&id, &json!(e)),
            }
        }
        Err(e) => codec::encode_error(&Value::Null, &json!(e)),
    };
    let _ = tokio::time::timeout(READ_DEADLINE, stream.write_all(&reply)).await;
}

/// Asks the supervisor loop to hand the node over to the sender of `params` and waits for
/// its answer; at once when our daemons are being stopped for good anyway.
async fn hand_over(
    stopping_for_good: bool,
    params: &Value,
    handover: &tokio::sync::mpsc::Sender<HandoverRequest>,
) -> Result<Value, String> {
    if stopping_for_good {
        return Err("stopping: nothing to hand over".into());
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let successor = params
        .get(1)
        .and_then(|p| p.get("pid"))
        .and_then(Value::as_i64)
        .and_then(|p| i32::try_from(p).ok())
        // Judged dead later only if we can see it now (another pid namespace: never).
        .filter(|p| crate::process::procfs::alive(Path::new("/proc"), *p).is_some());
    handover
        .try_send(HandoverRequest {
            reply: tx,
            successor,
        })
        .map_err(|_| "a handover is already under way".to_string())?;
    match tokio::time::timeout(HANDOVER_DEADLINE, rx).await {
        Ok(Ok(r)) => r,
        _ => Err("handover did not finish".to_string()),
    }
}

/// Answers from the published knowledge alone: no I/O, so a probe costs the exchange only.
pub fn answer(method: &str, snap: &Snapshot, now_ms: u64) -> Result<Value, String> {
    let verdict = match method {
        "status" => {
            return serde_json::to_value(with_ages(snap, now_ms)).map_err(|e| e.to_string())
        }
        "startup" => verdict::startup(snap),
        "liveness" => verdict::liveness(snap, now_ms),
        "readiness" => verdict::readiness(snap, now_ms),
        other => return Err(format!("unknown method {other:?}")),
    };
    serde_json::to_value(verdict).map_err(|e| e.to_string())
}

/// The snapshot with each daemon's time since its last restart as of `now_ms`.
fn with_ages(snap: &Snapshot, now_ms: u64) -> Snapshot {
    let mut s = snap.clone();
    for d in &mut s.daemons {
        d.since_restart_ms = d.restarted_at_ms.map(|t| now_ms.saturating_sub(t));
    }
    s
}

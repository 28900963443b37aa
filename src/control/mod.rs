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
//! [`MAX_CONNECTIONS`] are open at once, fewer when the fd limit leaves less room beside the
//! supervisor's own work (the cap is computed from the limit in force when the socket is
//! bound), a newcomer evicting the oldest one still waiting for its request
//! ([`crate::control::conns`]) — idle, slow or many clients can neither starve probes nor
//! the health checks' own connects, nor block the supervisor, and running out of file
//! descriptors makes it back off, not spin.
//! The server does no work while nobody asks. The client side is [`crate::control::client`].
//!
//! `handover` (a newer instance, `params[1].pid` its pid, `params[1].flows` whether it wants
//! br-int's table saved) is served only to a peer that
//! [`peer::admit`]s (our uid, naming its own pid, our program); anyone else gets an error and
//! nothing stops. It is answered once our daemons have stopped; at once with an error while
//! we stop for good, and with an error while handed over already (a pending handover is never
//! replaced or extended by another request). `uninstall` (only from our own uid:
//! [`crate::control::uninstall`]) is answered once the daemons have stopped for good.

pub mod client;
pub mod conns;
pub mod counters;
pub mod http;
pub mod peer;
pub mod uninstall;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

pub use crate::control::client::{ask, ask_with, probe};
use crate::control::conns::Conn;
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
    /// The asking instance, admitted by [`peer::admit`]: we watch it until it runs the node.
    pub successor: peer::Successor,
    /// Whether it wants br-int's table saved: false when it asked with `flows: keep`
    /// (`OVS_OVN_SUPERVISOR_TAKEOVER_FLOWS`); an earlier release does not say, and gets one.
    pub save: bool,
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
    let cap = crate::process::fds::cap_now(MAX_CONNECTIONS);
    if cap < MAX_CONNECTIONS {
        tracing::info!(
            cap,
            soft_limit = crate::process::fds::soft_limit(),
            "control socket: fewer connections at once, to leave fds for the daemons and checks"
        );
    }
    let task = tokio::spawn(crate::control::conns::accept_loop(
        listener,
        cap,
        move |stream, conn| {
            let requests = Requests {
                handover: handover.clone(),
                uninstall: uninstall.clone(),
            };
            handle(stream, snapshot.clone(), requests, conn)
        },
    ));
    Ok((task, bound))
}

/// Reads one request; `conn` learns when a read found none complete (from then on the
/// connection may be closed for a newcomer).
async fn read_request(
    stream: &mut UnixStream,
    conn: &Conn,
) -> Result<(Value, String, Value), String> {
    let mut dec = Decoder::with_limit(MAX_REQUEST);
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            // try_read first: a request already there (a probe's) is read without yielding, so
            // the connection is never seen waiting before its first read.
            let n = match stream.try_read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    conn.waiting();
                    stream.readable().await.map_err(|e| e.to_string())?;
                    continue;
                }
                Err(e) => return Err(e.to_string()),
            };
            if n == 0 {
                return Err("connection closed before a complete request".to_string());
            }
            let msgs = dec.feed(&buf[..n]).map_err(|e| e.to_string())?;
            match msgs.into_iter().next() {
                Some(Message::Request { id, method, params }) => return Ok((id, method, params)),
                Some(_) => return Err("expected a request".to_string()),
                None => conn.waiting(),
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
    conn: Conn,
) {
    let request = read_request(&mut stream, &conn).await;
    if request.is_ok() {
        // A complete request: no longer a client a newcomer may evict.
        conn.busy();
    }
    counters::control_request(request.as_ref().ok().map(|(_, m, _)| m.as_str()));
    let reply = match request {
        Ok((id, method, params)) if method == "handover" => {
            // One borrow: a second read guard while a writer waits could block this thread.
            let stopping_for_good = {
                let s = snap.borrow();
                s.stopping && s.handover.is_none()
            };
            let peer = peer_of(&stream);
            match hand_over(stopping_for_good, peer, &params, &requests.handover).await {
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

/// The peer's credentials as the kernel recorded them at connect (`SO_PEERCRED`).
fn peer_of(stream: &UnixStream) -> Result<peer::Peer, String> {
    let cred = stream
        .peer_cred()
        .map_err(|e| format!("cannot read the peer's credentials: {e}"))?;
    Ok(peer::Peer {
        pid: cred.pid().unwrap_or(0),
        uid: cred.uid(),
    })
}

/// Asks the supervisor loop to hand the node over to the peer and waits for its answer; at
/// once when the peer may not ask ([`peer::admit`]) or our daemons are being stopped for good
/// anyway.
async fn hand_over(
    stopping_for_good: bool,
    peer: Result<peer::Peer, String>,
    params: &Value,
    handover: &tokio::sync::mpsc::Sender<HandoverRequest>,
) -> Result<Value, String> {
    let admitted = peer.and_then(|p| {
        peer::admit(p, params, Path::new("/proc")).map_err(|e| {
            tracing::warn!(peer = ?p, "handover refused: {e}");
            e.to_string()
        })
    });
    let successor = admitted.map_err(|e| format!("handover refused: {e}"))?;
    if stopping_for_good {
        return Err("stopping: nothing to hand over".into());
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    handover
        .try_send(HandoverRequest {
            reply: tx,
            successor,
            save: wants_saved_table(params),
        })
        .map_err(|_| "a handover is already under way".to_string())?;
    match tokio::time::timeout(HANDOVER_DEADLINE, rx).await {
        Ok(Ok(r)) => r,
        _ => Err("handover did not finish".to_string()),
    }
}

/// Whether a `handover` request's `params` want br-int's table saved: unless `flows` is `keep`.
fn wants_saved_table(params: &Value) -> bool {
    let flows = params.get(1).and_then(|p| p.get("flows"));
    flows.and_then(Value::as_str) != Some(crate::config::TakeoverFlows::Keep.as_str())
}

/// Answers from the published knowledge alone: no I/O, so a probe costs the exchange only.
pub fn answer(method: &str, snap: &Snapshot, now_ms: u64) -> Result<Value, String> {
    if method == "status" {
        return serde_json::to_value(with_ages(snap, now_ms)).map_err(|e| e.to_string());
    }
    let verdict =
        probe_verdict(method, snap, now_ms).ok_or_else(|| format!("unknown method {method:?}"))?;
    serde_json::to_value(verdict).map_err(|e| e.to_string())
}

/// The verdict a probe method (`startup`, `liveness`, `readiness`) is answered with: the one
/// function the control socket and the HTTP endpoint both answer from.
pub fn probe_verdict(method: &str, snap: &Snapshot, now_ms: u64) -> Option<crate::status::Verdict> {
    Some(match method {
        "startup" => verdict::startup(snap),
        "liveness" => verdict::liveness(snap, now_ms),
        "readiness" => verdict::readiness(snap, now_ms),
        _ => return None,
    })
}

/// The snapshot with each daemon's time since its last restart as of `now_ms`.
fn with_ages(snap: &Snapshot, now_ms: u64) -> Snapshot {
    let mut s = snap.clone();
    s.http_addr = http::bound();
    for d in &mut s.daemons {
        d.since_restart_ms = d.restarted_at_ms.map(|t| now_ms.saturating_sub(t));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_successor_that_keeps_the_datapaths_flows_goes_without_a_saved_table() {
        // As the client sends them: the sender's clock, then the request's own object.
        let table = [
            (
                json!([1764820000000u64, {"pid": 7, "flows": "keep"}]),
                false,
            ),
            (
                json!([1764820000000u64, {"pid": 7, "flows": "restore"}]),
                true,
            ),
            // An earlier release says nothing: it restores what it is handed.
            (json!([1764820000000u64, {"pid": 7}]), true),
            (json!([1764820000000u64, {"pid": 7, "flows": 1}]), true),
            (json!([1764820000000u64]), true),
            (json!(null), true),
        ];
        for (params, save) in table {
            assert_eq!(wants_saved_table(&params), save, "{params}");
        }
    }
}

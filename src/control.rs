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
//! [`MAX_CONNECTIONS`] are served at once, the rest are closed at once — a misbehaving client
//! can never block the supervisor. The server does no work while nobody asks. The client side
//! ([`ask`]) is blocking std I/O, so a probe needs no async runtime.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{watch, Semaphore};

use crate::health;
use crate::jsonrpc::{codec, Decoder, Message};

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

/// What a daemon is doing, as the supervisor knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonInfo {
    pub name: String,
    pub pid: Option<i32>,
    /// starting, running, restarting, exited, stopped
    pub state: String,
    /// Unix time in ms of the current process's start.
    pub since_ms: Option<u64>,
    pub restarts: u32,
    pub last_exit: Option<String>,
}

/// The supervisor's live knowledge, published on every change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Snapshot {
    pub pid: i32,
    pub version: String,
    /// The stage in progress, or "ready" / "stopping".
    pub stage: String,
    /// The first full start has finished.
    pub started: bool,
    pub stopping: bool,
    pub started_at_ms: u64,
    pub daemons: Vec<DaemonInfo>,
    /// Completed start stages and their durations, ms.
    pub timeline: Vec<(String, u64)>,
    /// The last background health check; `None` until the first one after the start.
    pub health: Option<Health>,
    /// After this long without a health check the verdicts are stale (the checker is stuck).
    pub health_max_age_ms: u64,
    /// The `ovn-remote` ovn-controller connects to, for readiness reasons.
    #[serde(default)]
    pub southbound: String,
    /// ovn-controller's version skew with ovn-northd, while its log keeps reporting one.
    #[serde(default)]
    pub version_skew: Option<crate::skew::VersionSkew>,
}

/// Verdicts of one background health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub checked_at_ms: u64,
    /// Daemons that did not answer their control socket in this check.
    #[serde(default)]
    pub unresponsive: Vec<String>,
    pub liveness: Verdict,
    pub readiness: Verdict,
}

impl Snapshot {
    pub fn daemon(&self, name: &str) -> Option<&DaemonInfo> {
        self.daemons.iter().find(|d| d.name == name)
    }

    /// The `status` table: one line per daemon, then the start timeline.
    pub fn render(&self, now_ms: u64) -> String {
        let mut out = format!(
            "supervisor pid {} (v{}), stage {}, up {}\n\n",
            self.pid,
            self.version,
            self.stage,
            human(now_ms.saturating_sub(self.started_at_ms))
        );
        let rows: Vec<[String; 6]> = self
            .daemons
            .iter()
            .map(|d| {
                [
                    d.name.clone(),
                    d.pid.map_or("-".into(), |p| p.to_string()),
                    d.state.clone(),
                    d.since_ms
                        .filter(|_| d.state == "running")
                        .map_or("-".into(), |t| human(now_ms.saturating_sub(t))),
                    d.restarts.to_string(),
                    d.last_exit.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        let head = ["DAEMON", "PID", "STATE", "UPTIME", "RESTARTS", "LAST EXIT"].map(String::from);
        let mut width = head.clone().map(|h| h.len());
        for r in &rows {
            for (w, c) in width.iter_mut().zip(r) {
                *w = (*w).max(c.len());
            }
        }
        for r in std::iter::once(&head).chain(&rows) {
            let line: Vec<String> = r
                .iter()
                .zip(width)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
        }
        out.push_str("\nstart timeline:");
        let total: u64 = self.timeline.iter().map(|(_, ms)| ms).sum();
        for (stage, ms) in &self.timeline {
            out.push_str(&format!(" {stage} {ms} ms;"));
        }
        out.push_str(&format!(" total {total} ms\n"));
        out
    }
}

/// 0s, 42s, 5m03s, 2h07m, 3d04h.
fn human(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86399 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub ok: bool,
    pub reason: String,
}

pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Binds the socket (0600) and serves it until the task is dropped.
/// A newer instance asks this one to hand the node over (rolling update): the supervisor
/// answers on `reply` once its daemons have stopped, with where it saved br-int's flows.
pub struct HandoverRequest {
    pub reply: tokio::sync::oneshot::Sender<Result<Value, String>>,
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

/// Removes the socket at `path` only when it is the one we bound.
pub fn remove_if_ours(path: &Path, bound: Bound) {
    use std::os::unix::fs::MetadataExt;
    let ours =
        std::fs::symlink_metadata(path).is_ok_and(|m| m.dev() == bound.dev && m.ino() == bound.ino);
    if !ours {
        tracing::info!(path = %path.display(), "control socket is no longer ours: left in place");
        return;
    }
    if let Err(e) = crate::fsguard::remove_file(path) {
        tracing::warn!(path = %path.display(), "cannot remove the control socket: {e}");
    }
}

pub fn serve(
    path: &Path,
    snapshot: watch::Receiver<Snapshot>,
    handover: tokio::sync::mpsc::Sender<HandoverRequest>,
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
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            // Over the limit: close at once rather than queue behind slow clients.
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                continue;
            };
            let (snap, handover) = (snapshot.clone(), handover.clone());
            tokio::spawn(async move {
                handle(stream, snap, handover).await;
                drop(permit);
            });
        }
    });
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

async fn handle(
    mut stream: UnixStream,
    snap: watch::Receiver<Snapshot>,
    handover: tokio::sync::mpsc::Sender<HandoverRequest>,
) {
    let reply = match read_request(&mut stream).await {
        Ok((id, method, _params)) if method == "handover" => {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let sent = handover.try_send(HandoverRequest { reply: tx }).is_ok();
            let result = match tokio::time::timeout(HANDOVER_DEADLINE, rx).await {
                Ok(Ok(r)) if sent => r,
                _ if !sent => Err("a handover is already under way".to_string()),
                _ => Err("handover did not finish".to_string()),
            };
            match result {
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

/// Answers from the published knowledge alone: no I/O, so a probe costs the exchange only.
pub fn answer(method: &str, snap: &Snapshot, now_ms: u64) -> Result<Value, String> {
    let verdict = match method {
        "status" => return serde_json::to_value(snap).map_err(|e| e.to_string()),
        "startup" => health::startup(snap),
        "liveness" => health::liveness(snap, now_ms),
        "readiness" => health::readiness(snap, now_ms),
        other => return Err(format!("unknown method {other:?}")),
    };
    serde_json::to_value(verdict).map_err(|e| e.to_string())
}

/// Asks the supervisor behind `path`; blocking, bounded by `timeout` in all. The error is a
/// one-line reason fit for a probe's output.
pub fn ask(path: &Path, method: &str, timeout: Duration) -> Result<Value, String> {
    let t0 = Instant::now();
    let mut s = std::os::unix::net::UnixStream::connect(path).map_err(|e| {
        match e.raw_os_error().map(nix::errno::Errno::from_raw) {
            Some(nix::errno::Errno::ENOENT) => {
                format!(
                    "supervisor not running: no control socket {}",
                    path.display()
                )
            }
            Some(nix::errno::Errno::ECONNREFUSED) => {
                format!("supervisor gone: nobody listens on {}", path.display())
            }
            _ => format!("cannot reach the supervisor at {}: {e}", path.display()),
        }
    })?;
    let left = |t0: Instant| {
        timeout
            .saturating_sub(t0.elapsed())
            .max(Duration::from_millis(1))
    };
    let io = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => format!(
            "supervisor did not answer within {} ms",
            timeout.as_millis()
        ),
        _ => format!("control socket {}: {e}", path.display()),
    };
    s.set_write_timeout(Some(left(t0))).map_err(io)?;
    // The server's own checks get most of the budget; the rest covers the exchange itself.
    let server_ms = (timeout.as_millis() as u64 * 4 / 5).max(1);
    s.write_all(&codec::encode_request(
        &json!(1),
        method,
        &json!([server_ms]),
    ))
    .map_err(io)?;
    let mut dec = Decoder::with_limit(1 << 20);
    let mut buf = [0u8; 8192];
    loop {
        s.set_read_timeout(Some(left(t0))).map_err(io)?;
        let n = s.read(&mut buf).map_err(io)?;
        if n == 0 {
            return Err("supervisor closed the control connection without an answer".into());
        }
        let msgs = dec
            .feed(&buf[..n])
            .map_err(|e| format!("bad answer: {e}"))?;
        if let Some(Message::Response { result, error, .. }) = msgs.into_iter().next() {
            return if error.is_null() {
                Ok(result)
            } else {
                Err(format!(
                    "supervisor: {}",
                    error.as_str().unwrap_or(&error.to_string())
                ))
            };
        }
    }
}

/// A probe: `Ok(reason)` when the supervisor says ok, `Err(reason)` otherwise.
pub fn probe(path: &Path, kind: &str, timeout: Duration) -> Result<String, String> {
    let v: Verdict = serde_json::from_value(ask(path, kind, timeout)?)
        .map_err(|e| format!("bad answer: {e}"))?;
    if v.ok {
        Ok(v.reason)
    } else {
        Err(v.reason)
    }
}

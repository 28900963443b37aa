//! The client side of the control socket: what probes, `status` and a new instance asking
//! for a handover use. Blocking std I/O bounded by one timeout in all, so a probe needs no
//! async runtime; every error is a one-line reason fit for a probe's output.
//!
//! A question that changes nothing ([`ask`]: probes, `status`) is asked once more, within the
//! same timeout, when the connection is reset or closed before any answer: the server closes
//! connections still waiting for their request to make room under a flood of clients, and a
//! probe that connected just before writing can be one of them. A handover ([`ask_with`]) is
//! never asked twice.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::ovs::jsonrpc::{codec, CodecError, Decoder, Message};
use crate::status::Verdict;

/// Why the supervisor gave no answer; each a one-line reason fit for a probe's output.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    #[error("supervisor not running: no control socket {}", path.display())]
    NotRunning { path: PathBuf },
    #[error("supervisor gone: nobody listens on {}", path.display())]
    Gone { path: PathBuf },
    #[error("cannot reach the supervisor at {}: {source}", path.display())]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("supervisor did not answer within {} ms", timeout.as_millis())]
    Timeout { timeout: Duration },
    #[error("control socket {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("supervisor closed the control connection without an answer")]
    Closed,
    #[error("bad answer: {0}")]
    Codec(#[from] CodecError),
    #[error("bad answer: {0}")]
    Shape(#[from] serde_json::Error),
    #[error("supervisor: {0}")]
    Refused(String),
}

impl AskError {
    /// The connection was reset or closed before any answer: the server closed it to make
    /// room (or it went away): nothing was done with the request.
    fn cut_short(&self) -> bool {
        match self {
            AskError::Closed => true,
            AskError::Io { source, .. } => matches!(
                source.raw_os_error().map(nix::errno::Errno::from_raw),
                Some(nix::errno::Errno::ECONNRESET | nix::errno::Errno::EPIPE)
            ),
            _ => false,
        }
    }
}

/// Asks the supervisor behind `path` a question that changes nothing; blocking, bounded by
/// `timeout` in all, asked once more if the first connection is cut short.
pub fn ask(path: &Path, method: &str, timeout: Duration) -> Result<Value, AskError> {
    let t0 = Instant::now();
    match exchange(path, method, None, timeout) {
        Err(e) if e.cut_short() && t0.elapsed() < timeout => {
            match exchange(path, method, None, timeout.saturating_sub(t0.elapsed())) {
                // The reason names the whole time the caller gave, not what was left of it.
                Err(AskError::Timeout { .. }) => Err(AskError::Timeout { timeout }),
                other => other,
            }
        }
        other => other,
    }
}

/// [`ask`] with one more parameter after the server's time budget (`handover`: who asks),
/// asked once only.
pub fn ask_with(
    path: &Path,
    method: &str,
    extra: Option<Value>,
    timeout: Duration,
) -> Result<Value, AskError> {
    exchange(path, method, extra, timeout)
}

/// One connection, one request, one answer, all within `timeout`.
fn exchange(
    path: &Path,
    method: &str,
    extra: Option<Value>,
    timeout: Duration,
) -> Result<Value, AskError> {
    let t0 = Instant::now();
    let mut s = std::os::unix::net::UnixStream::connect(path).map_err(|source| {
        let path = path.to_path_buf();
        match source.raw_os_error().map(nix::errno::Errno::from_raw) {
            Some(nix::errno::Errno::ENOENT) => AskError::NotRunning { path },
            Some(nix::errno::Errno::ECONNREFUSED) => AskError::Gone { path },
            _ => AskError::Connect { path, source },
        }
    })?;
    let left = |t0: Instant| {
        timeout
            .saturating_sub(t0.elapsed())
            .max(Duration::from_millis(1))
    };
    let io = |source: std::io::Error| match source.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            AskError::Timeout { timeout }
        }
        _ => AskError::Io {
            path: path.to_path_buf(),
            source,
        },
    };
    s.set_write_timeout(Some(left(t0))).map_err(io)?;
    // The server's own checks get most of the budget; the rest covers the exchange itself.
    let server_ms = (timeout.as_millis() as u64 * 4 / 5).max(1);
    let mut params = vec![json!(server_ms)];
    params.extend(extra);
    s.write_all(&codec::encode_request(
        &json!(1),
        method,
        &Value::Array(params),
    ))
    .map_err(io)?;
    let mut dec = Decoder::with_limit(1 << 20);
    let mut buf = [0u8; 8192];
    loop {
        s.set_read_timeout(Some(left(t0))).map_err(io)?;
        let n = s.read(&mut buf).map_err(io)?;
        if n == 0 {
            return Err(AskError::Closed);
        }
        let msgs = dec.feed(&buf[..n])?;
        if let Some(Message::Response { result, error, .. }) = msgs.into_iter().next() {
            return if error.is_null() {
                Ok(result)
            } else {
                Err(AskError::Refused(
                    error
                        .as_str()
                        .map_or_else(|| error.to_string(), str::to_string),
                ))
            };
        }
    }
}

/// A probe: `Ok(reason)` when the supervisor says ok, `Err(reason)` otherwise (its verdict's
/// reason, or why there was none): both are the probe's one line of output.
pub fn probe(path: &Path, kind: &str, timeout: Duration) -> Result<String, String> {
    let answer = ask(path, kind, timeout).map_err(|e| e.to_string())?;
    let v: Verdict = serde_json::from_value(answer).map_err(|e| AskError::from(e).to_string())?;
    if v.ok {
        Ok(v.reason)
    } else {
        Err(v.reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A server that closes its first `cut` connections unread, then answers `ok`.
    fn server(
        cut: usize,
    ) -> (
        tempfile::TempDir,
        std::path::PathBuf,
        std::thread::JoinHandle<()>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let l = UnixListener::bind(&path).unwrap();
        let t = std::thread::spawn(move || {
            for i in 0..=cut {
                let Ok((mut c, _)) = l.accept() else { return };
                if i < cut {
                    // Closed unread: the client's write fails (EPIPE), or its read is reset or
                    // finds the end, depending on which comes first.
                    drop(c);
                    continue;
                }
                let mut buf = [0u8; 4096];
                let _ = c.read(&mut buf);
                let _ =
                    c.write_all(br#"{"id":1,"result":{"ok":true,"reason":"fine"},"error":null}"#);
            }
        });
        (dir, path, t)
    }

    #[test]
    fn a_question_cut_short_is_asked_once_more() {
        let (_d, path, t) = server(1);
        let got = probe(&path, "readiness", Duration::from_secs(2));
        assert_eq!(got, Ok("fine".to_string()));
        t.join().unwrap();
    }

    #[test]
    fn only_once_more() {
        let (_d, path, _t) = server(2);
        let e = ask(&path, "readiness", Duration::from_secs(2)).unwrap_err();
        assert!(e.cut_short(), "{e}");
    }

    #[test]
    fn a_handover_is_never_asked_twice() {
        let (_d, path, _t) = server(1);
        let e = ask_with(&path, "handover", None, Duration::from_secs(2)).unwrap_err();
        assert!(e.cut_short(), "{e}");
    }
}

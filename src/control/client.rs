//! The client side of the control socket: what probes, `status` and a new instance asking
//! for a handover use. Blocking std I/O bounded by one timeout in all, so a probe needs no
//! async runtime; every error is a one-line reason fit for a probe's output.

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

/// Asks the supervisor behind `path`; blocking, bounded by `timeout` in all.
pub fn ask(path: &Path, method: &str, timeout: Duration) -> Result<Value, AskError> {
    ask_with(path, method, None, timeout)
}

/// [`ask`] with one more parameter after the server's time budget (`handover`: who asks).
pub fn ask_with(
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

//! The client side of the control socket: what probes, `status` and a new instance asking
//! for a handover use. Blocking std I/O bounded by one timeout in all, so a probe needs no
//! async runtime; every error is a one-line reason fit for a probe's output.

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::ovs::jsonrpc::{codec, Decoder, Message};
use crate::status::Verdict;

/// Asks the supervisor behind `path`; blocking, bounded by `timeout` in all. The error is a
/// one-line reason fit for a probe's output.
pub fn ask(path: &Path, method: &str, timeout: Duration) -> Result<Value, String> {
    ask_with(path, method, None, timeout)
}

/// [`ask`] with one more parameter after the server's time budget (`handover`: who asks).
pub fn ask_with(
    path: &Path,
    method: &str,
    extra: Option<Value>,
    timeout: Duration,
) -> Result<Value, String> {
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

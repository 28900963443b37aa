//! Is a bridge's `RUNDIR/BRIDGE.mgmt` unix socket answering OpenFlow?
//!
//! ovs-vswitchd creates `br-int.mgmt` only after it holds the db lock, has
//! read the database and created the datapath, so a switch that answers
//! there is really up. ovn-controller connects to it with its own 1-2-4-8 s
//! reconnect backoff; probing first means ovn-controller starts against a
//! switch that is ready instead of losing seconds in that backoff.
//!
//! The probe: connect, exchange OFPT_HELLO (we offer OpenFlow 1.0 through 1.5
//! with a version bitmap), then send OFPT_ECHO_REQUEST with the negotiated
//! version and wait for the OFPT_ECHO_REPLY with our xid, which proves the
//! switch's main loop processes requests rather than just accepting.
//! Checked against ovs-vswitchd 3.1: with the bridge's `protocols` column
//! empty it answers a plain (bitmap-less) HELLO of version 0x06 and we
//! negotiate OpenFlow 1.5; with `protocols=OpenFlow13` it answers version
//! 0x04 with a bitmap and we negotiate 1.3.
//!
//! Invariants: every read is bounded in size (an OpenFlow length is a u16, so
//! at most 64 KiB per message) and in count (`MAX_SKIPPED` unrelated
//! messages), every stage is bounded in time, and nothing from the peer can
//! panic us. Errors keep the errno so callers can tell "not created yet"
//! (ENOENT) from "stale socket of a dead vswitchd" (ECONNREFUSED).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::process::backoff::{Policy, PolicyError, Retry};

mod session;
pub mod table;
pub mod tlv;
mod wire;

pub use session::Session;

pub use wire::*;

/// Unrelated messages we tolerate while waiting for the echo reply.
pub const MAX_SKIPPED: usize = 16;

/// Where in the probe something went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Connect,
    Hello,
    Echo,
    /// Listing the switch's table.
    Dump,
    /// Writing a table into the switch.
    Install,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Connect => "connect",
            Stage::Hello => "hello exchange",
            Stage::Echo => "echo exchange",
            Stage::Dump => "listing the table",
            Stage::Install => "installing the table",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpenFlowError {
    #[error("{}: connect: {}", path.display(), connect_meaning(source))]
    Connect {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: {stage}: {}", path.display(), io_meaning(source))]
    Io {
        path: PathBuf,
        stage: Stage,
        #[source]
        source: io::Error,
    },
    #[error("{}: timed out during {stage}", path.display())]
    Timeout { path: PathBuf, stage: Stage },
    #[error("{}: not OpenFlow as expected: {what}", path.display())]
    Protocol { path: PathBuf, what: String },
    #[error(
        "{}: no OpenFlow answer before the deadline after {attempts} attempts; last error: {last}",
        path.display()
    )]
    Deadline {
        path: PathBuf,
        attempts: u32,
        last: Box<OpenFlowError>,
    },
    #[error("invalid retry policy for {}", path.display())]
    Policy {
        path: PathBuf,
        #[source]
        source: PolicyError,
    },
}

impl OpenFlowError {
    /// The OS error behind a failed connect or socket read/write (for
    /// `Deadline`, that of the last attempt).
    pub fn errno(&self) -> Option<Errno> {
        match self {
            OpenFlowError::Connect { source, .. } | OpenFlowError::Io { source, .. } => {
                source.raw_os_error().map(Errno::from_raw)
            }
            OpenFlowError::Deadline { last, .. } => last.errno(),
            _ => None,
        }
    }
}

/// What a connect errno means for a vswitchd management socket.
fn connect_meaning(e: &io::Error) -> String {
    match e.raw_os_error().map(Errno::from_raw) {
        Some(Errno::ENOENT) => "no such file: vswitchd has not created the bridge yet".into(),
        Some(Errno::ECONNREFUSED) => "connection refused: stale socket from a dead vswitchd".into(),
        Some(Errno::EAGAIN) => "listen backlog full: vswitchd is not accepting".into(),
        Some(Errno::EACCES | Errno::EPERM) => "permission denied".into(),
        // nix's Display gives both the name and the text ("EIO: I/O error").
        Some(errno) => errno.to_string(),
        None => e.kind().to_string(),
    }
}

/// What a read/write failure after connecting means.
fn io_meaning(e: &io::Error) -> String {
    match (e.kind(), e.raw_os_error().map(Errno::from_raw)) {
        (io::ErrorKind::UnexpectedEof, _) => "peer closed the connection".into(),
        (_, Some(errno)) => errno.to_string(),
        (kind, None) => kind.to_string(),
    }
}

/// Answers the ECHO_REQUEST `h` (with `body`) on `s`: the same xid and payload, as a reply.
async fn answer_echo<S: AsyncWrite + Unpin>(s: &mut S, h: Header, body: &[u8]) -> io::Result<()> {
    let reply = Header {
        msg_type: OFPT_ECHO_REPLY,
        ..h
    };
    s.write_all(&reply.encode()).await?;
    s.write_all(body).await?;
    s.flush().await
}

async fn read_message<S: AsyncRead + Unpin>(s: &mut S) -> io::Result<(Header, Vec<u8>)> {
    let mut raw = [0u8; OFP_HEADER_LEN];
    s.read_exact(&mut raw).await?;
    let header = Header::decode(&raw);
    let len = usize::from(header.length);
    if len < OFP_HEADER_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message length {len} below header size"),
        ));
    }
    // At most 64 KiB - 9 bytes, since the length field is a u16.
    let mut body = vec![0u8; len - OFP_HEADER_LEN];
    s.read_exact(&mut body).await?;
    Ok((header, body))
}

fn describe_error(body: &[u8]) -> String {
    match body {
        [t0, t1, c0, c1, ..] => format!(
            "peer sent OFPT_ERROR type {} code {}",
            u16::from_be_bytes([*t0, *t1]),
            u16::from_be_bytes([*c0, *c1])
        ),
        _ => "peer sent a truncated OFPT_ERROR".into(),
    }
}

/// Runs one probe stage against the shared deadline, naming path and stage
/// in whatever goes wrong.
async fn within<T>(
    path: &Path,
    stage: Stage,
    deadline: tokio::time::Instant,
    fut: impl std::future::Future<Output = io::Result<T>>,
) -> Result<T, OpenFlowError> {
    let path = path.to_path_buf();
    match tokio::time::timeout_at(deadline, fut).await {
        Err(_) => Err(OpenFlowError::Timeout { path, stage }),
        Ok(Err(source)) if stage == Stage::Connect => Err(OpenFlowError::Connect { path, source }),
        Ok(Err(source)) => Err(OpenFlowError::Io {
            path,
            stage,
            source,
        }),
        Ok(Ok(v)) => Ok(v),
    }
}

/// HELLO then ECHO on any byte stream, so the protocol logic does not care
/// what the socket is. Returns the negotiated version.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    path: &Path,
    echo_xid: u32,
    deadline: tokio::time::Instant,
) -> Result<u8, OpenFlowError> {
    let protocol = |what: String| OpenFlowError::Protocol {
        path: path.to_path_buf(),
        what,
    };
    let hello = async {
        s.write_all(&encode_hello(HELLO_XID)).await?;
        read_message(s).await
    };
    let (peer, body) = within(path, Stage::Hello, deadline, hello).await?;
    match peer.msg_type {
        OFPT_HELLO => {}
        OFPT_ERROR => return Err(protocol(describe_error(&body))),
        other => return Err(protocol(format!("expected HELLO, got type {other}"))),
    }
    let version = negotiate(&peer, &body).map_err(protocol)?;

    let echo = async {
        s.write_all(&encode_echo_request(version, echo_xid)).await?;
        for _ in 0..=MAX_SKIPPED {
            let (h, body) = read_message(s).await?;
            match h.msg_type {
                OFPT_ECHO_REPLY if h.xid == echo_xid => return Ok(Ok(())),
                OFPT_ERROR => return Ok(Err(describe_error(&body))),
                // Answer a keepalive so a strict peer does not drop us.
                OFPT_ECHO_REQUEST => answer_echo(s, h, &body).await?,
                _ => {}
            }
        }
        Ok(Err(format!(
            "no ECHO_REPLY in {} messages",
            MAX_SKIPPED + 1
        )))
    };
    within(path, Stage::Echo, deadline, echo)
        .await?
        .map_err(protocol)?;
    Ok(version)
}

/// One probe of `path` within `timeout`: connect, HELLO, ECHO. Returns the
/// negotiated OpenFlow wire version (0x06 = OpenFlow 1.5).
pub async fn hello(path: &Path, timeout: Duration) -> Result<u8, OpenFlowError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let connect = UnixStream::connect(path);
    let mut stream = within(path, Stage::Connect, deadline, connect).await?;
    exchange(&mut stream, path, fastrand::u32(..), deadline).await
}

/// A successful `wait_ready`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ready {
    pub attempts: u32,
    pub version: u8,
    pub elapsed: Duration,
}

/// Probes `path` with `hello` until it answers or `deadline` passes,
/// sleeping full-jitter backoff between attempts. Each attempt gets at most
/// `per_attempt`, and never more than what is left before the deadline.
pub async fn wait_ready(
    path: &Path,
    policy: Policy,
    deadline: Instant,
    per_attempt: Duration,
) -> Result<Ready, OpenFlowError> {
    // A zero base would retry without ever sleeping and starve the runtime.
    policy.validate().map_err(|source| OpenFlowError::Policy {
        path: path.to_path_buf(),
        source,
    })?;
    let start = Instant::now();
    let mut retry = Retry::new(policy, deadline);
    let mut attempts: u32 = 0;
    loop {
        attempts = attempts.saturating_add(1);
        let budget = per_attempt.min(deadline.saturating_duration_since(Instant::now()));
        let err = match hello(path, budget).await {
            Ok(version) => {
                let elapsed = start.elapsed();
                let path = path.display();
                tracing::info!(%path, attempts, version, ?elapsed, "OpenFlow socket answers");
                return Ok(Ready {
                    attempts,
                    version,
                    elapsed,
                });
            }
            Err(e) => e,
        };
        let delay = retry.next_delay_random(Instant::now());
        // errno separately so logs can be filtered on ENOENT vs ECONNREFUSED.
        let (errno, shown) = (err.errno(), path.display());
        tracing::debug!(path = %shown, attempt = attempts, ?errno, error = %err, ?delay, "OpenFlow not ready");
        match delay {
            Some(delay) => tokio::time::sleep(delay).await,
            None => {
                let (path, last) = (path.to_path_buf(), Box::new(err));
                return Err(OpenFlowError::Deadline {
                    path,
                    attempts,
                    last,
                });
            }
        }
    }
}

#[cfg(test)]
mod session_tests;
#[cfg(test)]
mod table_tests;
#[cfg(test)]
mod tests;

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

use crate::backoff::{Policy, PolicyError, Retry};

pub const OFP_HEADER_LEN: usize = 8;
pub const OFPT_HELLO: u8 = 0;
pub const OFPT_ERROR: u8 = 1;
pub const OFPT_ECHO_REQUEST: u8 = 2;
pub const OFPT_ECHO_REPLY: u8 = 3;
/// The version we put in our HELLO header: OpenFlow 1.5.
pub const OUR_VERSION: u8 = 0x06;
/// Bit N set = we accept wire version N: 0x01 (1.0) through 0x06 (1.5).
/// Offering all of them lets us talk to a bridge restricted by its
/// `protocols` column to any single version.
pub const OUR_VERSIONS: u32 = 0b0111_1110;
const OFPHET_VERSIONBITMAP: u16 = 1;
const HELLO_XID: u32 = 1;
/// Unrelated messages we tolerate while waiting for the echo reply.
pub const MAX_SKIPPED: usize = 16;

/// Where in the probe something went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Connect,
    Hello,
    Echo,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Connect => "connect",
            Stage::Hello => "hello exchange",
            Stage::Echo => "echo exchange",
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

/// The fixed 8-byte header of every OpenFlow message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    pub msg_type: u8,
    /// Total message length, header included.
    pub length: u16,
    pub xid: u32,
}

impl Header {
    pub const fn new(version: u8, msg_type: u8, length: u16, xid: u32) -> Header {
        Header {
            version,
            msg_type,
            length,
            xid,
        }
    }

    pub fn encode(&self) -> [u8; OFP_HEADER_LEN] {
        let mut b = [0u8; OFP_HEADER_LEN];
        b[0] = self.version;
        b[1] = self.msg_type;
        b[2..4].copy_from_slice(&self.length.to_be_bytes());
        b[4..8].copy_from_slice(&self.xid.to_be_bytes());
        b
    }

    pub fn decode(b: &[u8; OFP_HEADER_LEN]) -> Header {
        Header {
            version: b[0],
            msg_type: b[1],
            length: u16::from_be_bytes([b[2], b[3]]),
            xid: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
}

/// Our HELLO: header plus one versionbitmap element (4 bytes of element
/// header, one 32-bit bitmap word; 8 bytes, so no padding is needed).
pub fn encode_hello(xid: u32) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&Header::new(OUR_VERSION, OFPT_HELLO, 16, xid).encode());
    b[8..10].copy_from_slice(&OFPHET_VERSIONBITMAP.to_be_bytes());
    b[10..12].copy_from_slice(&8u16.to_be_bytes());
    b[12..16].copy_from_slice(&OUR_VERSIONS.to_be_bytes());
    b
}

pub fn encode_echo_request(version: u8, xid: u32) -> [u8; OFP_HEADER_LEN] {
    Header::new(version, OFPT_ECHO_REQUEST, OFP_HEADER_LEN as u16, xid).encode()
}

/// The first word of the peer's versionbitmap element, if its HELLO body
/// has one. Malformed elements end the scan: a peer that answered HELLO at
/// all is alive, and the header version is still there to negotiate with.
pub fn hello_bitmap(body: &[u8]) -> Option<u32> {
    let mut rest = body;
    while rest.len() >= 4 {
        let kind = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        if len < 4 || len > rest.len() {
            return None;
        }
        if kind == OFPHET_VERSIONBITMAP && len >= 8 {
            return Some(u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]));
        }
        // Elements are padded to a multiple of 8 bytes.
        let padded = len.div_ceil(8) * 8;
        rest = rest.get(padded..).unwrap_or(&[]);
    }
    None
}

/// OpenFlow version negotiation (OF 1.3.1+ section 6.3.1): with bitmaps on
/// both sides, the highest common version; otherwise the smaller of the two
/// header versions, if we support it.
pub fn negotiate(peer: &Header, body: &[u8]) -> Result<u8, String> {
    if peer.version == 0 {
        return Err("peer HELLO has version 0".into());
    }
    match hello_bitmap(body) {
        Some(theirs) => {
            let common = theirs & OUR_VERSIONS;
            if common == 0 {
                return Err(format!("no common version (peer bitmap {theirs:#x})"));
            }
            Ok((31 - common.leading_zeros()) as u8)
        }
        None => {
            let v = peer.version.min(OUR_VERSION);
            if OUR_VERSIONS & (1u32 << v) == 0 {
                return Err(format!("peer version {:#04x} not supported", peer.version));
            }
            Ok(v)
        }
    }
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
                OFPT_ECHO_REQUEST => {
                    let reply = Header {
                        msg_type: OFPT_ECHO_REPLY,
                        ..h
                    };
                    s.write_all(&reply.encode()).await?;
                    s.write_all(&body).await?;
                }
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
mod tests {
    use super::*;
    use std::process::{Child, Command, Stdio};
    use tokio::net::UnixListener;

    #[test]
    fn header_roundtrip_and_wire_layout() {
        let h = Header::new(0x04, OFPT_ECHO_REPLY, 0x0102, 0xdead_beef);
        let wire = h.encode();
        assert_eq!(wire, [0x04, 0x03, 0x01, 0x02, 0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(Header::decode(&wire), h);
        let hello = encode_hello(7);
        assert_eq!(hello, [6, 0, 0, 16, 0, 0, 0, 7, 0, 1, 0, 8, 0, 0, 0, 0x7e]);
        assert_eq!(encode_echo_request(1, 9), [1, 2, 0, 8, 0, 0, 0, 9]);
    }

    #[test]
    #[rustfmt::skip]
    fn negotiation_table() {
        let hdr = |version| Header::new(version, OFPT_HELLO, 8, 0);
        let bitmap = |b: u32| [&[0, 1, 0, 8][..], &b.to_be_bytes()].concat();
        // What vswitchd 3.1 sends with protocols=OpenFlow13: an unknown
        // element first must be skipped by its padded length.
        let after_unknown = [&[0, 9, 0, 5, 0, 0, 0, 0][..], &bitmap(1 << 4)].concat();
        // (peer header version, hello body, negotiated)
        let table: &[(u8, Vec<u8>, Result<u8, ()>)] = &[
            (6, vec![], Ok(6)), (4, vec![], Ok(4)), (1, vec![], Ok(1)), (9, vec![], Ok(6)),
            (0, vec![], Err(())), (4, bitmap(1 << 4), Ok(4)), (9, bitmap(1 << 9), Err(())),
            (6, bitmap((1 << 1) | (1 << 4)), Ok(4)), (4, after_unknown, Ok(4)),
            // A malformed element (length 2) falls back to the header version.
            (5, vec![0, 1, 0, 2], Ok(5)),
        ];
        for (version, body, want) in table {
            let got = negotiate(&hdr(*version), body).map_err(|_| ());
            assert_eq!(&got, want, "{version} {body:?}");
        }
    }

    /// What a fake switch does after reading our HELLO.
    #[derive(Clone, Copy)]
    enum Peer {
        Good,
        NotHello,
        CloseEarly,
        SplitHello,
        Silent,
    }

    async fn serve(listener: UnixListener, peer: Peer) {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (h, _) = read_message(&mut s).await.unwrap();
                assert_eq!(h.msg_type, OFPT_HELLO);
                let hello = Header::new(4, OFPT_HELLO, 8, 5);
                match peer {
                    Peer::Good => s.write_all(&hello.encode()).await.unwrap(),
                    Peer::NotHello => {
                        let features = Header::new(4, 6, 8, 5); // OFPT_FEATURES_REQUEST
                        s.write_all(&features.encode()).await.unwrap()
                    }
                    Peer::CloseEarly => {
                        s.write_all(&hello.encode()[..3]).await.unwrap();
                        return;
                    }
                    Peer::SplitHello => {
                        let wire = hello.encode();
                        for chunk in wire.chunks(3) {
                            s.write_all(chunk).await.unwrap();
                            s.flush().await.unwrap();
                            tokio::task::yield_now().await;
                        }
                    }
                    Peer::Silent => {
                        let _ = s.read_u8().await;
                        return;
                    }
                }
                while let Ok((h, body)) = read_message(&mut s).await {
                    if h.msg_type == OFPT_ECHO_REQUEST {
                        assert_eq!(h.version, 4, "echo uses the negotiated version");
                        // Unrelated chatter first: must be skipped.
                        let other = Header::new(4, OFPT_ECHO_REPLY, 8, h.xid ^ 1);
                        s.write_all(&other.encode()).await.unwrap();
                        let reply = Header::new(4, OFPT_ECHO_REPLY, h.length, h.xid);
                        s.write_all(&reply.encode()).await.unwrap();
                        s.write_all(&body).await.unwrap();
                    }
                }
            });
        }
    }

    fn fake_switch(dir: &Path, peer: Peer) -> PathBuf {
        let path = dir.join("br-int.mgmt");
        let listener = UnixListener::bind(&path).unwrap();
        tokio::spawn(serve(listener, peer));
        path
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[tokio::test]
    async fn fake_switch_outcomes() {
        let table = [
            (Peer::Good, "ok"),
            (Peer::SplitHello, "ok"),
            (Peer::NotHello, "protocol"),
            (Peer::CloseEarly, "io"),
            (Peer::Silent, "timeout"),
        ];
        for (peer, want) in table {
            let dir = tempfile::tempdir().unwrap();
            let path = fake_switch(dir.path(), peer);
            let got = match hello(&path, SECOND / 4).await {
                Ok(4) => "ok",
                Ok(v) => panic!("negotiated {v}"),
                Err(OpenFlowError::Protocol { .. }) => "protocol",
                Err(OpenFlowError::Io { source, .. }) => {
                    assert_eq!(source.kind(), io::ErrorKind::UnexpectedEof);
                    "io"
                }
                Err(OpenFlowError::Timeout { stage, .. }) => {
                    assert_eq!(stage, Stage::Hello);
                    "timeout"
                }
                Err(e) => panic!("{e}"),
            };
            assert_eq!(got, want);
        }
    }

    #[tokio::test]
    async fn missing_and_stale_sockets_keep_their_errno() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("br-int.mgmt");
        let err = hello(&missing, SECOND).await.unwrap_err();
        assert_eq!(err.errno(), Some(Errno::ENOENT));
        let text = err.to_string();
        assert!(text.contains("has not created the bridge"), "{text}");

        // A dead vswitchd leaves its socket file behind.
        let stale = dir.path().join("stale.mgmt");
        drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
        let err = hello(&stale, SECOND).await.unwrap_err();
        assert!(matches!(err, OpenFlowError::Connect { .. }), "{err:?}");
        assert_eq!(err.errno(), Some(Errno::ECONNREFUSED));
        assert!(err.to_string().contains("stale socket"), "{err}");
    }

    fn quick() -> Policy {
        Policy::new(Duration::from_millis(5), Duration::from_millis(50)).unwrap()
    }

    #[tokio::test]
    async fn wait_ready_sees_a_late_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("br-int.mgmt");
        let late = path.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let listener = UnixListener::bind(&late).unwrap();
            serve(listener, Peer::Good).await;
        });
        let ready = wait_ready(&path, quick(), Instant::now() + 10 * SECOND, SECOND)
            .await
            .unwrap();
        assert!(ready.attempts > 1, "{ready:?}");
        assert_eq!(ready.version, 4);
        assert!(ready.elapsed >= Duration::from_millis(200), "{ready:?}");
    }

    #[tokio::test]
    async fn wait_ready_gives_up_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("never.mgmt");
        let start = Instant::now();
        let err = wait_ready(&path, quick(), start + SECOND / 4, SECOND)
            .await
            .unwrap_err();
        assert!(start.elapsed() < 2 * SECOND);
        let OpenFlowError::Deadline { attempts, last, .. } = &err else {
            panic!("{err:?}");
        };
        assert!(*attempts >= 2, "{attempts}");
        assert!(matches!(**last, OpenFlowError::Connect { .. }));
        assert_eq!(err.errno(), Some(Errno::ENOENT));
        let text = err.to_string();
        let want = format!("after {attempts} attempts; last error: {last}");
        assert!(
            text.contains(&want) && text.contains("bridge yet"),
            "{text}"
        );

        let bad = Policy {
            cap: SECOND,
            ..quick()
        };
        let bad = Policy {
            base: Duration::ZERO,
            ..bad
        };
        let err = wait_ready(&path, bad, start, SECOND).await.unwrap_err();
        assert!(matches!(err, OpenFlowError::Policy { .. }), "{err:?}");
    }

    /// Real daemons under a tempdir; killed (TERM, then KILL) on drop.
    struct Ovs {
        dir: tempfile::TempDir,
        children: Vec<Child>,
    }

    impl Drop for Ovs {
        fn drop(&mut self) {
            use nix::sys::signal::{kill, Signal};
            for child in self.children.iter_mut().rev() {
                let pid = nix::unistd::Pid::from_raw(child.id() as i32);
                let _ = kill(pid, Signal::SIGTERM);
                for _ in 0..100 {
                    if let Ok(Some(_)) = child.try_wait() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    fn find_bin(name: &str) -> Option<PathBuf> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain(["/usr/sbin".into(), "/usr/bin".into()])
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    }

    impl Ovs {
        /// `line` is split on whitespace after `{D}` becomes the tempdir
        /// (tempdir paths have no spaces).
        fn cmd(&self, line: &str) -> Command {
            let d = self.dir.path();
            let line = line.replace("{D}", d.to_str().unwrap());
            let mut words = line.split_whitespace();
            let mut c = Command::new(find_bin(words.next().unwrap()).unwrap());
            // Keep every daemon file in the tempdir, never /var/run/openvswitch.
            c.args(words)
                .env("OVS_RUNDIR", d)
                .env("OVS_DBDIR", d)
                .env("OVS_LOGDIR", d);
            c
        }

        fn run(&self, line: &str) {
            let out = self.cmd(line).output().unwrap();
            assert!(out.status.success(), "{line}: {out:?}");
        }

        fn spawn(&mut self, line: &str) {
            let mut c = self.cmd(line);
            c.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            self.children.push(c.spawn().unwrap());
        }
    }

    #[tokio::test]
    async fn real_vswitchd_answers_on_bridge_mgmt() {
        let tools = ["ovsdb-tool", "ovsdb-server", "ovs-vsctl", "ovs-vswitchd"];
        let schema = "/usr/share/openvswitch/vswitch.ovsschema";
        if tools.iter().any(|t| find_bin(t).is_none()) || !Path::new(schema).exists() {
            eprintln!("SKIPPED: Open vSwitch is not installed");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let mut ovs = Ovs {
            dir,
            children: vec![],
        };
        ovs.run(&format!("ovsdb-tool create {{D}}/conf.db {schema}"));
        ovs.spawn(
            "ovsdb-server {D}/conf.db --remote=punix:{D}/db.sock \
             --pidfile={D}/o.pid --unixctl={D}/o.ctl",
        );
        // --retry is the readiness wait: it keeps connecting until the
        // server's socket answers (bounded by --timeout).
        ovs.run("ovs-vsctl --db=unix:{D}/db.sock --retry --timeout=20 --no-wait init");
        ovs.run(
            "ovs-vsctl --db=unix:{D}/db.sock --no-wait add-br br0 \
             -- set bridge br0 datapath_type=netdev fail_mode=secure",
        );
        ovs.spawn(
            "ovs-vswitchd unix:{D}/db.sock --pidfile={D}/v.pid --enable-dummy=override \
             --disable-system --log-file={D}/v.log",
        );
        let d = ovs.dir.path();
        let policy = Policy::new(Duration::from_millis(20), Duration::from_millis(500)).unwrap();
        let deadline = Instant::now() + 30 * SECOND;
        let result = wait_ready(&d.join("br0.mgmt"), policy, deadline, 2 * SECOND).await;
        let ready = result.unwrap_or_else(|e| {
            let log = std::fs::read_to_string(d.join("v.log")).unwrap_or_default();
            panic!("{e}\nvswitchd log:\n{log}")
        });
        eprintln!("real ovs-vswitchd: {ready:?}");
        // Empty `protocols` column: vswitchd 3.1 enables OpenFlow 1.0 to 1.5.
        assert_eq!(ready.version, 0x06);
    }
}

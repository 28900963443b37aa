//! An OpenFlow 1.5 session on a bridge's management socket that reads the switch's table
//! ([`Session::list`]: flows, groups, meters as the mods that recreate them) and writes one
//! back ([`Session::install`]: meters first, then groups and flows in one atomic, ordered
//! bundle, as `ovs-ofctl --bundle` does).
//!
//! Invariants: every exchange is bounded by the caller's deadline; every read is one message
//! of at most 64 KiB (the length is a u16); any OFPT_ERROR from the switch fails the whole
//! operation, naming the type and code and which message it answered; writes are pipelined
//! while replies are read, so neither side waits on a full socket buffer. Echo requests are
//! answered while waiting for a reply, not inside a pipelined install: vswitchd probes a
//! `.mgmt` connection only after 60 s without traffic (the management controller's
//! `probe_interval` in OVS's bridge.c), no shorter than the callers' whole deadline.

use std::io;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

type Stream = BufReader<UnixStream>;

use super::table::{self, Listing, TABLE_VERSION};
use super::wire::{OFPT_ECHO_REQUEST, OFPT_ERROR};
use super::{answer_echo, describe_error, exchange, read_message, within, OpenFlowError, Stage};

/// Bytes of bundled messages written per `write_all`.
const WRITE_BATCH: usize = 256 * 1024;

pub struct Session {
    stream: Stream,
    path: PathBuf,
    xid: u32,
    deadline: tokio::time::Instant,
}

impl Session {
    /// Connects to `path` and negotiates OpenFlow 1.5; all of this session's work must end by
    /// `deadline`.
    pub async fn open(
        path: &Path,
        deadline: tokio::time::Instant,
    ) -> Result<Session, OpenFlowError> {
        let connect = UnixStream::connect(path);
        let mut stream = within(path, Stage::Connect, deadline, connect).await?;
        let version = exchange(&mut stream, path, fastrand::u32(..), deadline).await?;
        if version != TABLE_VERSION {
            return Err(OpenFlowError::Protocol {
                path: path.to_path_buf(),
                what: format!(
                    "negotiated version {version:#04x}; saving a table needs OpenFlow 1.5 (0x06)"
                ),
            });
        }
        Ok(Session {
            stream: BufReader::with_capacity(128 * 1024, stream),
            path: path.to_path_buf(),
            xid: 0x1000,
            deadline,
        })
    }

    fn next_xid(&mut self) -> u32 {
        self.xid = self.xid.wrapping_add(1);
        self.xid
    }

    fn protocol(&self, what: impl Into<String>) -> OpenFlowError {
        OpenFlowError::Protocol {
            path: self.path.clone(),
            what: what.into(),
        }
    }

    /// The switch's flow count (an aggregate request: the switch counts).
    pub async fn flow_count(&mut self) -> Result<u32, OpenFlowError> {
        let xid = self.next_xid();
        let body = self
            .ask(&table::multipart_request(Listing::Aggregate, xid), xid, "")
            .await?;
        table::aggregate_flow_count(&body).map_err(|e| self.protocol(e.to_string()))
    }

    /// Sends `request` (xid `xid`) and returns the body of its reply; an OFPT_ERROR answer is a
    /// protocol error whose text starts with `what`.
    async fn ask(
        &mut self,
        request: &[u8],
        xid: u32,
        what: &str,
    ) -> Result<Vec<u8>, OpenFlowError> {
        let reply = async {
            self.stream.write_all(request).await?;
            self.stream.flush().await?;
            reply_to(&mut self.stream, xid).await
        };
        let (path, deadline) = (self.path.clone(), self.deadline);
        let body = within(&path, Stage::Dump, deadline, reply).await?;
        body.map_err(|e| self.protocol(format!("{what}{e}")))
    }

    /// The switch's Geneve TLV map: its 8-byte entries as a reply gives them ([`super::tlv`]).
    pub async fn tlv_maps(&mut self) -> Result<Vec<u8>, OpenFlowError> {
        let xid = self.next_xid();
        let body = self
            .ask(&super::tlv::request(xid), xid, "TLV table: ")
            .await?;
        let maps = super::tlv::reply_maps(&body).map_err(|e| self.protocol(e.to_string()))?;
        Ok(maps.to_vec())
    }

    /// One barrier round trip: back once the switch has handled everything this session sent
    /// before it (and, vswitchd reading its connections in turn, taken at least one more pass
    /// over the others).
    pub async fn barrier(&mut self) -> Result<(), OpenFlowError> {
        let xid = self.next_xid();
        let request = table::barrier(xid);
        let (path, deadline) = (self.path.clone(), self.deadline);
        let done = pipelined(&mut self.stream, &request, xid, table::OFPT_BARRIER_REPLY);
        let done = within(&path, Stage::Echo, deadline, done).await?;
        done.map_err(|e| self.protocol(format!("barrier: {e}")))
    }

    /// Every entry of `listing`, appended to `out` as the ADD mod that recreates it (whole
    /// messages, xid 0). Returns how many.
    pub async fn list(
        &mut self,
        listing: Listing,
        out: &mut Vec<u8>,
    ) -> Result<usize, OpenFlowError> {
        let xid = self.next_xid();
        let request = table::multipart_request(listing, xid);
        let (path, deadline) = (self.path.clone(), self.deadline);
        let stream = &mut self.stream;
        let work = async {
            stream.write_all(&request).await?;
            stream.flush().await?;
            let mut n = 0;
            loop {
                let body = match reply_to(stream, xid).await? {
                    Ok(body) => body,
                    Err(e) => return Ok(Err(e)),
                };
                let (entries, more) = match table::reply_entries(listing, &body) {
                    Ok(v) => v,
                    Err(e) => return Ok(Err(e.to_string())),
                };
                for e in entries {
                    match table::entry_to_mod(listing, e) {
                        Ok(m) => out.extend_from_slice(&m),
                        Err(e) => return Ok(Err(e.to_string())),
                    }
                    n += 1;
                }
                if !more {
                    return Ok(Ok(n));
                }
            }
        };
        let listed = within(&path, Stage::Dump, deadline, work).await?;
        listed.map_err(|e| self.protocol(format!("listing {}s: {e}", listing.name())))
    }

    /// `meters` (sent first, then a barrier: a bundle cannot hold them; a TLV map goes there
    /// too, before the flows that use its fields), then `bundled` (groups before the flows
    /// that use them) in one atomic, ordered bundle, committed.
    pub async fn install<'a>(
        &mut self,
        meters: &[&'a [u8]],
        bundled: &[&'a [u8]],
    ) -> Result<(), OpenFlowError> {
        let (path, deadline) = (self.path.clone(), self.deadline);
        if !meters.is_empty() {
            let mut out = Vec::new();
            for m in meters {
                let start = out.len();
                out.extend_from_slice(m);
                let xid = self.next_xid();
                table::with_xid(&mut out[start..], xid);
            }
            let barrier = self.next_xid();
            out.extend_from_slice(&table::barrier(barrier));
            let done = pipelined(&mut self.stream, &out, barrier, table::OFPT_BARRIER_REPLY);
            let done = within(&path, Stage::Install, deadline, done).await?;
            done.map_err(|e| self.protocol(format!("adding the TLV map and meters: {e}")))?;
        }
        let id = fastrand::u32(..);
        let open = self.next_xid();
        let request = table::bundle_control(id, table::OFPBCT_OPEN_REQUEST, open);
        let opened = pipelined(&mut self.stream, &request, open, table::OFPT_BUNDLE_CONTROL);
        let opened = within(&path, Stage::Install, deadline, opened).await?;
        opened.map_err(|e| self.protocol(format!("opening a bundle: {e}")))?;
        let mut out = Vec::with_capacity(bundled.iter().map(|m| m.len() + 16).sum::<usize>() + 16);
        for m in bundled {
            let xid = self.next_xid();
            table::bundle_add(&mut out, id, xid, m).map_err(|e| self.protocol(e.to_string()))?;
        }
        let commit = self.next_xid();
        out.extend_from_slice(&table::bundle_control(
            id,
            table::OFPBCT_COMMIT_REQUEST,
            commit,
        ));
        let done = pipelined(&mut self.stream, &out, commit, table::OFPT_BUNDLE_CONTROL);
        let done = within(&path, Stage::Install, deadline, done).await?;
        done.map_err(|e| self.protocol(format!("bundle of {} messages: {e}", bundled.len())))
    }
}

/// The body of the reply with `xid` (echo requests answered, other messages skipped); an
/// OFPT_ERROR is `Err` with its description.
async fn reply_to<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    xid: u32,
) -> io::Result<Result<Vec<u8>, String>> {
    loop {
        let (h, body) = read_message(s).await?;
        match h.msg_type {
            OFPT_ERROR => return Ok(Err(format!("{} (xid {:#x})", describe_error(&body), h.xid))),
            OFPT_ECHO_REQUEST => answer_echo(s, h, &body).await?,
            _ if h.xid == xid => return Ok(Ok(body)),
            _ => {}
        }
    }
}

/// Writes `out` in batches while reading, until the message of `want` type with xid `last`
/// arrives; any OFPT_ERROR before it ends the wait with its description.
async fn pipelined(
    s: &mut Stream,
    out: &[u8],
    last: u32,
    want: u8,
) -> io::Result<Result<(), String>> {
    // The session's reader, split: bytes it already buffered are read first.
    let (mut r, mut w) = tokio::io::split(s);
    let write = async {
        for chunk in out.chunks(WRITE_BATCH) {
            w.write_all(chunk).await?;
        }
        w.flush().await?;
        Ok::<_, io::Error>(())
    };
    let read = async {
        loop {
            let (h, body) = read_message(&mut r).await?;
            match h.msg_type {
                OFPT_ERROR => {
                    return Ok(Err(format!("{} (xid {:#x})", describe_error(&body), h.xid)))
                }
                t if t == want && h.xid == last => {
                    if t == table::OFPT_BUNDLE_CONTROL {
                        let kind = table::parse_bundle_control(&body).map(|(_, k)| k);
                        if !matches!(
                            kind,
                            Some(table::OFPBCT_OPEN_REPLY | table::OFPBCT_COMMIT_REPLY)
                        ) {
                            return Ok(Err(format!("unexpected bundle control reply {kind:?}")));
                        }
                    }
                    return Ok(Ok(()));
                }
                _ => {}
            }
        }
    };
    tokio::pin!(write, read);
    let mut written = false;
    loop {
        tokio::select! {
            w = &mut write, if !written => { w?; written = true; }
            r = &mut read => return r,
        }
    }
}

//! The streaming half of the codec: `ovsdb-server` and every OVS unixctl socket send JSON
//! values back to back with no framing, so the [`Decoder`] accepts arbitrary chunks (several
//! messages in one read, one message split over many reads, even inside a multi-byte UTF-8
//! character) and returns each complete message exactly once.
//!
//! Invariants:
//! - Bytes not yet forming a complete message stay buffered; nothing is lost
//!   or duplicated whatever the chunking.
//! - A single message (complete or still partial) never exceeds the configured
//!   limit; exceeding it is an error rather than unbounded growth.
//! - After an error the decoder's state is unspecified (messages completed
//!   earlier in the same `feed` are discarded): the stream can no longer be
//!   trusted and the caller must drop the connection.
//! - Work is linear in the bytes fed: a cheap structural scan decides when a parse can
//!   produce anything.
//! - No I/O, no panics on any input.

use serde_json::Value;

use super::{classify, CodecError, Message};

/// Default cap on one buffered message. Real OVN databases can produce
/// initial monitor replies of tens of MiB, hence the generous default.
pub const DEFAULT_MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// Incremental decoder. Feed it bytes as they arrive.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    limit: usize,
    /// Bytes of the stream already consumed and dropped from `buf`.
    consumed: usize,
    scan: Scanner,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    pub fn new() -> Self {
        Self::with_limit(DEFAULT_MAX_MESSAGE)
    }

    pub fn with_limit(max: usize) -> Self {
        Decoder {
            buf: Vec::new(),
            limit: max,
            consumed: 0,
            scan: Scanner::default(),
        }
    }

    /// Appends `bytes` and returns every message completed by them, in order.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Message>, CodecError> {
        // Whitespace between messages belongs to no message: never buffer it, so it neither
        // counts toward the size limit nor grows memory (found by fuzzing: the limit depended
        // on where reads split).
        let bytes = if self.buf.is_empty() {
            let skip = skip_ws(bytes, 0);
            self.consumed += skip;
            &bytes[skip..]
        } else {
            bytes
        };
        let start = self.buf.len();
        self.buf.extend_from_slice(bytes);
        // Running serde_json over the whole buffer on every read would be
        // quadratic for a large message arriving in small chunks, so a cheap
        // structural scan decides whether a parse can produce anything.
        if !self.scan.advance(&self.buf, start) {
            return self.check_limit().map(|()| Vec::new());
        }
        let mut out = Vec::new();
        let mut stream = serde_json::Deserializer::from_slice(&self.buf).into_iter::<Value>();
        let mut end = 0;
        loop {
            let begin = end;
            match stream.next() {
                None => break,
                Some(Ok(v)) => {
                    end = stream.byte_offset();
                    if end - skip_ws(&self.buf, begin) > self.limit {
                        return Err(CodecError::TooLarge { limit: self.limit });
                    }
                    out.push(classify(v)?);
                }
                Some(Err(e)) if e.is_eof() => break,
                Some(Err(e)) => {
                    return Err(CodecError::Malformed {
                        source: e,
                        offset: self.consumed + skip_ws(&self.buf, begin),
                    });
                }
            }
        }
        let keep_from = skip_ws(&self.buf, end);
        self.buf.drain(..keep_from);
        self.consumed += keep_from;
        self.scan = Scanner::default();
        // The tail is a (possibly empty) prefix of one message; rescanning it
        // once per completed message keeps the total work linear.
        self.scan.advance(&self.buf, 0);
        self.check_limit()?;
        Ok(out)
    }

    /// Bytes held back waiting for the rest of a message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Call at end of stream: errors if a partial message is still buffered.
    pub fn finish(&self) -> Result<(), CodecError> {
        if self.buf.iter().all(|b| is_ws(*b)) {
            Ok(())
        } else {
            Err(CodecError::Truncated {
                bytes: self.buf.len(),
            })
        }
    }

    fn check_limit(&self) -> Result<(), CodecError> {
        if self.buf.len() > self.limit {
            Err(CodecError::TooLarge { limit: self.limit })
        } else {
            Ok(())
        }
    }
}

/// Tracks JSON nesting across chunks without building values, so the decoder
/// knows when a top-level value may have completed.
#[derive(Debug, Default)]
struct Scanner {
    /// Index in the buffer up to which bytes have been examined.
    pos: usize,
    /// Open brackets, so a mismatched close is reported at once instead of
    /// waiting for more input that can never fix it.
    open: Vec<u8>,
    in_string: bool,
    escaped: bool,
}

impl Scanner {
    /// Examines `buf[from..]` and returns true when a parse attempt may yield
    /// a value or an error: a container closed back to depth 0, a bracket
    /// mismatched, or something other than whitespace or a container opener
    /// appeared at depth 0.
    fn advance(&mut self, buf: &[u8], from: usize) -> bool {
        let mut ready = false;
        for &b in buf.get(from.max(self.pos)..).unwrap_or(&[]) {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match b {
                b'"' if !self.open.is_empty() => self.in_string = true,
                b'{' | b'[' => self.open.push(b),
                b'}' | b']' if !self.open.is_empty() => {
                    let opener = if b == b'}' { b'{' } else { b'[' };
                    if self.open.pop() != Some(opener) || self.open.is_empty() {
                        ready = true;
                    }
                }
                _ if self.open.is_empty() && !is_ws(b) => ready = true,
                _ => {}
            }
        }
        self.pos = buf.len();
        ready
    }
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn skip_ws(buf: &[u8], mut i: usize) -> usize {
    while i < buf.len() && is_ws(buf[i]) {
        i += 1;
    }
    i
}

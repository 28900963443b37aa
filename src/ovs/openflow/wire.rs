//! OpenFlow's wire format, as much of it as the probe needs: the header, HELLO with a version
//! bitmap, ECHO_REQUEST, and version negotiation.
//!
//! Invariant: pure functions of bytes; nothing here does I/O or can panic on a peer's bytes.

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
pub(super) const HELLO_XID: u32 = 1;

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

//! JSON-RPC 1.0 as spoken by `ovsdb-server` and by every OVS/OVN daemon's
//! unixctl control socket (`DAEMON.PID.ctl`).
//!
//! [`codec`] turns an unframed byte stream into messages with no I/O;
//! [`client`] runs one connection over a Unix socket, matching replies to
//! calls by id, answering the server's `echo` keep-alives and forwarding
//! notifications. Errors carry the socket path and method so that a log line
//! alone says which daemon misbehaved.

pub mod client;
pub mod codec;

pub use client::{Client, RpcError};
pub use codec::{
    classify, encode_error, encode_request, encode_response, CodecError, Decoder, Message,
    DEFAULT_MAX_MESSAGE,
};

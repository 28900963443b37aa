//! Talking to the OVS/OVN daemons: the JSON-RPC 1.0 codec and client, OVSDB helpers, unixctl
//! and a minimal OpenFlow client. Primitives: nothing here knows about the node's config.

pub mod jsonrpc;
pub mod openflow;
pub mod ovsdb;
pub mod unixctl;

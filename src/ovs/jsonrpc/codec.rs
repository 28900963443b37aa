//! OVSDB-flavoured JSON-RPC 1.0 (RFC 7047 §4) as bytes and back, with no I/O: the
//! [`Message`]s, sorting a JSON value into one ([`classify`]), encoding requests and replies,
//! and (in `decoder`) the streaming [`Decoder`] that finds messages in an unframed stream.
//!
//! Invariants: no I/O, no panics on any input; a value that is JSON but not a JSON-RPC message
//! is an error ([`CodecError::NotJsonRpc`]) carrying a bounded excerpt of it, never a guess.

mod decoder;

use serde_json::{Map, Value};

pub use decoder::{Decoder, DEFAULT_MAX_MESSAGE};

/// Longest excerpt of an offending value kept in [`CodecError::NotJsonRpc`].
const SNIPPET_LEN: usize = 200;

/// One decoded JSON-RPC 1.0 message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A call that expects an answer carrying the same `id`.
    Request {
        id: Value,
        method: String,
        params: Value,
    },
    /// A method call with `"id": null` (or no id): no answer expected.
    Notification { method: String, params: Value },
    /// An answer; `error` is `Value::Null` on success.
    Response {
        id: Value,
        result: Value,
        error: Value,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("malformed JSON at stream offset {offset}: {source}")]
    Malformed {
        #[source]
        source: serde_json::Error,
        /// Offset in the whole stream where the offending value began.
        offset: usize,
    },
    #[error("message exceeds the {limit}-byte limit")]
    TooLarge { limit: usize },
    #[error("JSON value is not a JSON-RPC message: {snippet}")]
    NotJsonRpc { snippet: String },
    #[error("stream ended inside a message ({bytes} bytes buffered)")]
    Truncated { bytes: usize },
}

/// Sorts one JSON value into a [`Message`].
///
/// Missing `params` becomes `[]` and missing `result`/`error` become `null`,
/// because real servers omit `result` on error replies.
pub fn classify(v: Value) -> Result<Message, CodecError> {
    let mut map = match v {
        Value::Object(map) => map,
        other => return Err(not_jsonrpc(&other)),
    };
    match map.remove("method") {
        Some(Value::String(method)) => {
            let params = map
                .remove("params")
                .unwrap_or_else(|| Value::Array(Vec::new()));
            match map.remove("id") {
                None | Some(Value::Null) => Ok(Message::Notification { method, params }),
                Some(id) => Ok(Message::Request { id, method, params }),
            }
        }
        Some(other) => {
            map.insert("method".to_owned(), other);
            Err(not_jsonrpc(&Value::Object(map)))
        }
        None if map.contains_key("result") || map.contains_key("error") => Ok(Message::Response {
            id: map.remove("id").unwrap_or(Value::Null),
            result: map.remove("result").unwrap_or(Value::Null),
            error: map.remove("error").unwrap_or(Value::Null),
        }),
        None => Err(not_jsonrpc(&Value::Object(map))),
    }
}

fn not_jsonrpc(v: &Value) -> CodecError {
    let text = v.to_string();
    let snippet = match text.char_indices().nth(SNIPPET_LEN) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    };
    CodecError::NotJsonRpc { snippet }
}

pub fn encode_request(id: &Value, method: &str, params: &Value) -> Vec<u8> {
    let mut m = Map::new();
    m.insert("id".to_owned(), id.clone());
    m.insert("method".to_owned(), Value::String(method.to_owned()));
    m.insert("params".to_owned(), params.clone());
    Value::Object(m).to_string().into_bytes()
}

pub fn encode_response(id: &Value, result: &Value) -> Vec<u8> {
    encode_reply(id, result.clone(), Value::Null)
}

/// Error reply, used to refuse requests this side does not implement.
pub fn encode_error(id: &Value, error: &Value) -> Vec<u8> {
    encode_reply(id, Value::Null, error.clone())
}

fn encode_reply(id: &Value, result: Value, error: Value) -> Vec<u8> {
    let mut m = Map::new();
    m.insert("id".to_owned(), id.clone());
    m.insert("result".to_owned(), result);
    m.insert("error".to_owned(), error);
    Value::Object(m).to_string().into_bytes()
}

#[cfg(test)]
mod tests;

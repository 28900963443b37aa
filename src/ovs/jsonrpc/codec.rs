//! Pure byte-level codec for OVSDB-flavoured JSON-RPC 1.0 (RFC 7047 §4).
//!
//! `ovsdb-server` and every OVS unixctl socket send JSON values back to back
//! with no framing, so the [`Decoder`] accepts arbitrary chunks (several
//! messages in one read, one message split over many reads, even inside a
//! multi-byte UTF-8 character) and returns each complete message exactly once.
//!
//! Invariants:
//! - Bytes not yet forming a complete message stay buffered; nothing is lost
//!   or duplicated whatever the chunking.
//! - A single message (complete or still partial) never exceeds the configured
//!   limit; exceeding it is an error rather than unbounded growth.
//! - After an error the decoder's state is unspecified (messages completed
//!   earlier in the same `feed` are discarded): the stream can no longer be
//!   trusted and the caller must drop the connection.
//! - No I/O, no panics on any input.

use serde_json::{Map, Value};

/// Default cap on one buffered message. Real OVN databases can produce
/// initial monitor replies of tens of MiB, hence the generous default.
pub const DEFAULT_MAX_MESSAGE: usize = 64 * 1024 * 1024;

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
mod tests {
    use super::*;
    use serde_json::json;

    fn decode_all(chunks: &[&[u8]]) -> Result<Vec<Message>, CodecError> {
        let mut d = Decoder::new();
        let mut out = Vec::new();
        for c in chunks {
            out.extend(d.feed(c)?);
        }
        d.finish()?;
        Ok(out)
    }

    fn resp(id: Value, result: Value, error: Value) -> Message {
        Message::Response { id, result, error }
    }

    const MULTI: &str = concat!(
        r#"{"id":1,"result":["Open_vSwitch","_Server"],"error":null}"#,
        "\n",
        r#"{"id":null,"method":"update","params":["m",{"t":{"r":{"new":{"s":"héllo ☃ 🦀"}}}}]}"#,
        r#"  {"id":"echo","method":"echo","params":[]}"#,
        "\t\r\n",
        r#"{"id":[1,"x"],"result":null,"error":{"error":"syntax error","details":"a \"}\" here"}}"#,
    );

    fn multi_expected() -> Vec<Message> {
        vec![
            resp(json!(1), json!(["Open_vSwitch", "_Server"]), Value::Null),
            Message::Notification {
                method: "update".into(),
                params: json!(["m", {"t": {"r": {"new": {"s": "héllo ☃ 🦀"}}}}]),
            },
            Message::Request {
                id: json!("echo"),
                method: "echo".into(),
                params: json!([]),
            },
            resp(
                json!([1, "x"]),
                Value::Null,
                json!({"error": "syntax error", "details": "a \"}\" here"}),
            ),
        ]
    }

    #[test]
    fn table_of_whole_inputs() {
        let cases: Vec<(&str, Vec<Message>)> = vec![
            (
                r#"{"id":7,"result":"ok","error":null}"#,
                vec![resp(json!(7), json!("ok"), Value::Null)],
            ),
            (
                r#"{"id":1,"result":null,"error":"unknown method"}"#,
                vec![resp(json!(1), Value::Null, json!("unknown method"))],
            ),
            (
                r#"{"id":2,"error":{"error":"syntax error","details":"x"}}"#,
                vec![resp(
                    json!(2),
                    Value::Null,
                    json!({"error":"syntax error","details":"x"}),
                )],
            ),
            (
                r#"{"id":null,"method":"locked","params":["lock"]}"#,
                vec![Message::Notification {
                    method: "locked".into(),
                    params: json!(["lock"]),
                }],
            ),
            (
                r#"{"method":"update2"}"#,
                vec![Message::Notification {
                    method: "update2".into(),
                    params: json!([]),
                }],
            ),
            (
                r#"{"id":1,"result":1,"error":null}{"id":2,"result":2,"error":null}"#,
                vec![
                    resp(json!(1), json!(1), Value::Null),
                    resp(json!(2), json!(2), Value::Null),
                ],
            ),
            ("  \n\t ", vec![]),
            (MULTI, multi_expected()),
        ];
        for (input, want) in cases {
            let got = decode_all(&[input.as_bytes()]).unwrap();
            assert_eq!(got, want, "input {input}");
        }
    }

    #[test]
    fn every_split_point_yields_same_messages() {
        let bytes = MULTI.as_bytes();
        let want = multi_expected();
        for i in 0..=bytes.len() {
            let got = decode_all(&[&bytes[..i], &bytes[i..]]).unwrap();
            assert_eq!(got, want, "split at {i}");
            for j in i..=bytes.len() {
                let got = decode_all(&[&bytes[..i], &bytes[i..j], &bytes[j..]]).unwrap();
                assert_eq!(got, want, "split at {i},{j}");
            }
        }
    }

    #[test]
    fn byte_by_byte_yields_each_message_when_complete() {
        let bytes = MULTI.as_bytes();
        let mut d = Decoder::new();
        let mut got = Vec::new();
        for b in bytes {
            got.extend(d.feed(std::slice::from_ref(b)).unwrap());
        }
        d.finish().unwrap();
        assert_eq!(got, multi_expected());
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn split_inside_multibyte_utf8() {
        let text = r#"{"id":3,"result":"🦀","error":null}"#;
        let bytes = text.as_bytes();
        let crab = text.find('🦀').unwrap();
        for cut in crab + 1..crab + 4 {
            let mut d = Decoder::new();
            assert!(d.feed(&bytes[..cut]).unwrap().is_empty());
            assert_eq!(d.buffered(), cut);
            assert!(matches!(d.finish(), Err(CodecError::Truncated { bytes }) if bytes == cut));
            let got = d.feed(&bytes[cut..]).unwrap();
            assert_eq!(got, vec![resp(json!(3), json!("🦀"), Value::Null)]);
        }
    }

    #[test]
    fn malformed_inputs() {
        let cases: &[(&str, usize)] = &[
            ("{\"id\":1,\"result\" 1}", 0),
            ("}", 0),
            ("{\"id\":1,\"result\":1,\"error\":null} garbage", 33),
            ("{\"a\":[1,2}", 0),
            ("[1,}", 0),
        ];
        for (input, want_offset) in cases {
            let mut d = Decoder::new();
            match d.feed(input.as_bytes()) {
                Err(CodecError::Malformed { offset, .. }) => {
                    assert_eq!(offset, *want_offset, "input {input}")
                }
                other => panic!("input {input}: {other:?}"),
            }
        }
    }

    #[test]
    fn non_jsonrpc_values() {
        for input in [
            "[1,2,3]",
            "\"just a string\"",
            "{\"id\":1}",
            "{\"id\":1,\"method\":5}",
            "true ",
        ] {
            let mut d = Decoder::new();
            match d.feed(input.as_bytes()) {
                Err(CodecError::NotJsonRpc { snippet }) => assert!(!snippet.is_empty()),
                other => panic!("input {input}: {other:?}"),
            }
        }
    }

    #[test]
    fn whitespace_between_messages_never_counts_toward_the_limit() {
        let a = br#"{"id":1,"result":1,"error":null}"#;
        let b = br#"{"id":2,"result":2,"error":null}"#;
        let spaces = vec![b' '; 1000];
        let whole: Vec<u8> = [&a[..], &spaces, &b[..]].concat();
        let mut d = Decoder::with_limit(1024);
        assert_eq!(d.feed(&whole).unwrap().len(), 2);
        let mut d = Decoder::with_limit(1024);
        assert_eq!(d.feed(&[&a[..], &spaces].concat()).unwrap().len(), 1);
        assert_eq!(d.feed(b).unwrap().len(), 1);
        let mut d = Decoder::with_limit(1024);
        assert!(d.feed(&vec![b'\n'; 5000]).unwrap().is_empty());
        assert_eq!(d.buffered(), 0);
        assert!(d.finish().is_ok());
    }

    #[test]
    fn oversize_partial_and_complete() {
        let mut d = Decoder::with_limit(16);
        assert!(d.feed(b"{\"id\":1,").unwrap().is_empty());
        assert!(matches!(
            d.feed(b"\"result\":\"0123456789\""),
            Err(CodecError::TooLarge { limit: 16 })
        ));
        let mut d = Decoder::with_limit(16);
        assert!(matches!(
            d.feed(br#"{"id":1,"result":"0123456789","error":null}"#),
            Err(CodecError::TooLarge { limit: 16 })
        ));
        let mut d = Decoder::with_limit(40);
        let one = br#"{"id":1,"result":2,"error":null}"#;
        let mut many = Vec::new();
        for _ in 0..10 {
            many.extend_from_slice(one);
        }
        assert_eq!(d.feed(&many).unwrap().len(), 10);
    }

    #[test]
    fn string_containing_braces_does_not_confuse_scanner() {
        let text = r#"{"id":1,"result":"}}]]{{\\\"","error":null}"#;
        let got = decode_all(&[&text.as_bytes()[..20], &text.as_bytes()[20..]]).unwrap();
        assert_eq!(got, vec![resp(json!(1), json!("}}]]{{\\\""), Value::Null)]);
    }

    #[test]
    fn encoders_round_trip() {
        let req = encode_request(&json!(5), "transact", &json!(["db", {"op": "comment"}]));
        assert_eq!(
            serde_json::from_slice::<Value>(&req).unwrap(),
            json!({"id":5,"method":"transact","params":["db",{"op":"comment"}]})
        );
        let rsp = encode_response(&json!("echo"), &json!([]));
        assert_eq!(
            serde_json::from_slice::<Value>(&rsp).unwrap(),
            json!({"id":"echo","result":[],"error":null})
        );
        let err = encode_error(&json!(3), &json!("unknown method"));
        assert_eq!(
            decode_all(&[&err]).unwrap(),
            vec![resp(json!(3), Value::Null, json!("unknown method"))]
        );
    }
}

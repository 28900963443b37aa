//! Tests of [`super`]: whole inputs, every way of splitting them across reads (also inside a
//! multi-byte character), malformed and non-JSON-RPC values, the size limit, and the encoders.

use serde_json::{json, Value};

use super::*;

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

//! Fuzzes the JSON-RPC 1.0 stream decoder (`src/jsonrpc/codec.rs`).
//!
//! Input layout: byte 0 picks a fixed chunk size (1..=64), byte 1 seeds a
//! pseudo-random chunking (chunks of 1..=32 bytes), the rest is the stream.
//!
//! Invariants checked (any violation panics, which libFuzzer reports):
//! - `feed`/`finish` never panic, also when fed more after an error;
//! - an independent reference (serde_json's stream parser + `classify` over
//!   the whole input) agrees with the decoder on whether the stream is clean
//!   (every value a JSON-RPC message, nothing but whitespace left over) and,
//!   when clean, on the messages;
//! - feeding all bytes at once, in fixed-size chunks and in random chunks
//!   gives the same cleanliness and, when clean, the same messages; when not
//!   clean, the messages emitted before the error by any two chunkings are
//!   prefixes of one another (nothing invented, reordered or duplicated);
//! - `Decoder::with_limit(1024)`: after a successful feed at most 1024 bytes
//!   stay buffered, and the feed that first fails holds at most 1024 + that
//!   chunk; it only reports `TooLarge` when more than 1024 bytes were fed, and
//!   otherwise behaves exactly as the unlimited decoder with the same chunking;
//! - the bounded decoder gives the same answer whatever the chunking (whitespace
//!   between messages never counts toward the limit: finding #2 of the first run);
//! - errors are well formed (non-empty Display, offsets inside the stream,
//!   bounded snippets, non-zero truncation counts).

#![no_main]


use libfuzzer_sys::fuzz_target;
use ovs_ovn_supervisor::ovs::jsonrpc::codec::{
    classify, CodecError, Decoder, Message, DEFAULT_MAX_MESSAGE,
};

const LIMIT: usize = 1024;

/// What one pass over the stream produced.
#[derive(Debug)]
struct Outcome {
    /// Messages returned before the first error (all of them when clean).
    msgs: Vec<Message>,
    /// First error from `feed` or `finish`, as a short tag plus Display.
    error: Option<(&'static str, String)>,
}

impl Outcome {
    fn clean(&self) -> bool {
        self.error.is_none()
    }
}

fn tag(e: &CodecError) -> &'static str {
    match e {
        CodecError::Malformed { .. } => "Malformed",
        CodecError::TooLarge { .. } => "TooLarge",
        CodecError::NotJsonRpc { .. } => "NotJsonRpc",
        CodecError::Truncated { .. } => "Truncated",
    }
}

fn check_error(e: &CodecError, fed_so_far: usize, limit: usize) {
    let shown = e.to_string();
    assert!(!shown.is_empty(), "empty Display for {e:?}");
    match e {
        CodecError::Malformed { offset, .. } => {
            assert!(
                *offset < fed_so_far.max(1),
                "Malformed offset {offset} beyond the {fed_so_far} bytes fed"
            );
        }
        CodecError::TooLarge { limit: l } => {
            assert_eq!(*l, limit);
            assert!(
                fed_so_far > limit,
                "TooLarge after only {fed_so_far} bytes (limit {limit})"
            );
        }
        CodecError::NotJsonRpc { snippet } => {
            assert!(!snippet.is_empty(), "empty NotJsonRpc snippet");
            assert!(
                snippet.chars().count() <= 200 + 3,
                "snippet of {} chars",
                snippet.chars().count()
            );
        }
        CodecError::Truncated { bytes } => {
            assert!(
                *bytes > 0 && *bytes <= fed_so_far,
                "Truncated {{ bytes: {bytes} }}"
            );
        }
    }
}

/// Feeds `chunks` in order to a decoder with `limit`, checking the buffering
/// bound, and keeps feeding after the first error to make sure nothing panics.
fn run(chunks: &[&[u8]], limit: usize) -> Outcome {
    let mut d = Decoder::with_limit(limit);
    let mut msgs = Vec::new();
    let mut error = None;
    let mut fed = 0;
    for chunk in chunks {
        fed += chunk.len();
        let r = d.feed(chunk);
        if error.is_some() {
            // State is unspecified after an error; only require no panic.
            let _ = d.buffered();
            continue;
        }
        match r {
            Ok(m) => {
                assert!(
                    d.buffered() <= limit,
                    "{} bytes buffered after a successful feed (limit {limit})",
                    d.buffered()
                );
                msgs.extend(m);
            }
            Err(e) => {
                check_error(&e, fed, limit);
                assert!(
                    d.buffered() <= limit.saturating_add(chunk.len()),
                    "{} bytes buffered after a failed feed of {} bytes (limit {limit})",
                    d.buffered(),
                    chunk.len()
                );
                error = Some((tag(&e), e.to_string()));
            }
        }
    }
    let fin = d.finish();
    if error.is_none() {
        if let Err(e) = fin {
            check_error(&e, fed, limit);
            error = Some((tag(&e), e.to_string()));
        }
    }
    // One more feed and finish after the end: still no panic.
    let _ = d.feed(b"{\"id\":0,\"result\":0,\"error\":null}");
    let _ = d.finish();
    Outcome { msgs, error }
}

/// The specification, computed without the decoder: the whole stream is
/// parsed by serde_json and each value classified.
fn reference(data: &[u8]) -> Option<Vec<Message>> {
    let mut out = Vec::new();
    for v in serde_json::Deserializer::from_slice(data).into_iter::<serde_json::Value>() {
        out.push(classify(v.ok()?).ok()?);
    }
    Some(out)
}

fn is_prefix(a: &[Message], b: &[Message]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

fn compare(what: &str, a: &Outcome, b: &Outcome) {
    assert_eq!(
        a.clean(),
        b.clean(),
        "{what}: cleanliness differs\n a: {a:?}\n b: {b:?}"
    );
    if a.clean() {
        assert_eq!(a.msgs, b.msgs, "{what}: messages differ");
    } else {
        assert!(
            is_prefix(&a.msgs, &b.msgs),
            "{what}: messages before the error are not prefixes of one another\n a: {a:?}\n b: {b:?}"
        );
    }
}

/// Small deterministic generator for split points.
fn xorshift(state: &mut u32) -> u32 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    x
}

fn fixed_chunks(data: &[u8], size: usize) -> Vec<&[u8]> {
    data.chunks(size).collect()
}

fn random_chunks(data: &[u8], seed: u8) -> Vec<&[u8]> {
    let mut state = 0x9E37_79B9 ^ u32::from(seed).wrapping_mul(0x0101_0101) | 1;
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let n = (xorshift(&mut state) as usize % 32 + 1).min(rest.len());
        let (head, tail) = rest.split_at(n);
        out.push(head);
        rest = tail;
    }
    out
}

fuzz_target!(|input: &[u8]| {
    let (size_byte, seed, data) = match input {
        [a, b, rest @ ..] => (*a, *b, rest),
        _ => return,
    };
    let size = usize::from(size_byte % 64) + 1;
    let big = DEFAULT_MAX_MESSAGE;

    let whole = run(&[data], big);
    let fixed = run(&fixed_chunks(data, size), big);
    let random = run(&random_chunks(data, seed), big);

    // Against the reference parser (the input is far below the default limit).
    match reference(data) {
        Some(want) => {
            assert!(
                whole.clean(),
                "reference accepts but decoder fails: {whole:?}"
            );
            assert_eq!(whole.msgs, want, "decoder and reference disagree");
        }
        None => assert!(
            !whole.clean(),
            "reference rejects but decoder accepts: {whole:?}"
        ),
    }

    compare("whole vs fixed chunks", &whole, &fixed);
    compare("whole vs random chunks", &whole, &random);
    compare("fixed vs random chunks", &fixed, &random);

    // Bounded decoder: same as unlimited unless the limit was what stopped it.
    let mut limited_runs = Vec::new();
    for (what, chunks, unlimited) in [
        ("limited whole", vec![data], &whole),
        ("limited fixed", fixed_chunks(data, size), &fixed),
        ("limited random", random_chunks(data, seed), &random),
    ] {
        let limited = run(&chunks, LIMIT);
        match &limited.error {
            Some(("TooLarge", _)) => {
                assert!(
                    is_prefix(&limited.msgs, &unlimited.msgs),
                    "{what}: messages before TooLarge differ"
                );
            }
            _ => {
                assert_eq!(
                    limited.error, unlimited.error,
                    "{what}: error differs from the unlimited decoder"
                );
                assert_eq!(limited.msgs, unlimited.msgs, "{what}: messages differ");
            }
        }
        limited_runs.push(limited);
    }
    // Finding #2 of the first fuzzing run (fixed): whether `TooLarge` fired
    // depended on where whitespace between messages was split.
    compare("limited whole vs fixed", &limited_runs[0], &limited_runs[1]);
    compare(
        "limited whole vs random",
        &limited_runs[0],
        &limited_runs[2],
    );
});

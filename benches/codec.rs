//! JSON-RPC decoder throughput (criterion) and allocations per message.
//!
//! Messages as ovsdb-server sends them to us: a small transact reply, an `update` monitor
//! notification with a few rows, and a 64 KiB transact reply (a `select` of many rows), each
//! fed whole and in 1 KiB chunks; plus a mix of all three in one stream. A counting global
//! allocator (in this bench binary only) gives allocations and allocated bytes per message in
//! steady state (the decoder's buffer already grown, as on a long-lived connection).
//!
//! Run: `cargo bench --bench codec` (scripts/bench.sh). After criterion's own report it prints
//! one markdown table built from criterion's medians (`target/criterion/codec/*/new`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use ovs_ovn_supervisor::ovs::jsonrpc::Decoder;
use serde_json::{json, Value};

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(l.size() as u64, Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(l.size() as u64, Relaxed);
        System.alloc_zeroed(l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        // A realloc is an allocation event too (it may move and copy).
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(new.saturating_sub(l.size()) as u64, Relaxed);
        System.realloc(p, l, new)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn uuid(i: usize) -> String {
    format!("{:08x}-1c2d-4e5f-8a9b-{:012x}", 0x5eed_0000 + i, i * 7919)
}

/// `{"id":N,"result":[{"rows":[{"next_cfg":N}]}],"error":null}`: a settings reply.
fn small_reply() -> Vec<u8> {
    json!({"id": 42, "result": [{}, {"count": 1}, {"rows": [{"next_cfg": 7}]}], "error": null})
        .to_string()
        .into_bytes()
}

/// A monitor `update` notification: three Interface rows changing, as vswitchd reports.
fn update_notification() -> Vec<u8> {
    let mut rows = serde_json::Map::new();
    for i in 0..3 {
        rows.insert(
            uuid(i),
            json!({
                "new": {
                    "name": format!("veth{i:04}_h"),
                    "ofport": 10 + i,
                    "admin_state": "up", "link_state": "up",
                    "mac_in_use": format!("02:00:00:00:00:{i:02x}"),
                    "external_ids": ["map", [["iface-id", format!("pod-{i}.default")],
                                             ["ip", format!("10.16.0.{}", 10 + i)],
                                             ["pod_netns", format!("/var/run/netns/cni-{}", uuid(i))]]],
                    "statistics": ["map", [["rx_packets", 1000 * i], ["tx_packets", 900 * i],
                                           ["rx_bytes", 64000 * i], ["tx_bytes", 58000 * i]]],
                },
                "old": {"ofport": ["set", []], "link_state": "down"},
            }),
        );
    }
    json!({"id": null, "method": "update", "params": [["monitor", 1], {"Interface": rows}]})
        .to_string()
        .into_bytes()
}

/// A transact reply of about 64 KiB: a `select` of Port rows with maps and sets.
fn large_reply() -> Vec<u8> {
    let mut rows = Vec::new();
    let mut i = 0;
    loop {
        rows.push(json!({
            "_uuid": ["uuid", uuid(i)],
            "name": format!("veth{i:05}_h"),
            "interfaces": ["uuid", uuid(i + 100_000)],
            "tag": ["set", []],
            "external_ids": ["map", [["iface-id", format!("pod-{i}.kube-system")],
                                     ["vendor", "kube-ovn"]]],
            "other_config": ["map", []],
        }));
        let v = json!({"id": 9, "result": [{"rows": rows}], "error": null}).to_string();
        if v.len() >= 64 * 1024 {
            return v.into_bytes();
        }
        i += 1;
    }
}

/// Feeds `stream` in `chunk`-byte pieces; returns how many messages came out.
fn decode(d: &mut Decoder, stream: &[u8], chunk: usize) -> usize {
    let mut n = 0;
    for piece in stream.chunks(chunk) {
        n += black_box(d.feed(piece).expect("valid stream")).len();
    }
    n
}

struct Case {
    name: &'static str,
    stream: Vec<u8>,
    msgs: usize,
}

fn cases() -> Vec<Case> {
    let (s, u, l) = (small_reply(), update_notification(), large_reply());
    // The mix: per 64 KiB reply, 20 small replies and 20 updates (a busy monitor connection).
    let mut mix = Vec::new();
    for _ in 0..20 {
        mix.extend_from_slice(&s);
        mix.extend_from_slice(&u);
    }
    mix.extend_from_slice(&l);
    vec![
        Case {
            name: "small_reply",
            msgs: 1,
            stream: s,
        },
        Case {
            name: "update_3_rows",
            msgs: 1,
            stream: u,
        },
        Case {
            name: "reply_64KiB",
            msgs: 1,
            stream: l,
        },
        Case {
            name: "mix_41",
            msgs: 41,
            stream: mix,
        },
    ]
}

const CHUNKS: [(&str, usize); 2] = [("whole", usize::MAX), ("1KiB", 1024)];

fn criterion_dir() -> PathBuf {
    std::env::var_os("CRITERION_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/criterion"))
}

/// Median ns per iteration from criterion's estimates of `codec/ID`.
fn median_ns(name: &str, fed: &str) -> Option<f64> {
    let p = criterion_dir()
        .join("codec")
        .join(name)
        .join(fed)
        .join("new/estimates.json");
    let v: Value = serde_json::from_slice(&std::fs::read(p).ok()?).ok()?;
    v["median"]["point_estimate"].as_f64()
}

/// Steady-state allocations per message: one warm-up pass, then the average over `reps` passes.
fn allocs_per_msg(c: &Case, chunk: usize) -> (f64, f64) {
    let reps = 200;
    let mut d = Decoder::new();
    decode(&mut d, &c.stream, chunk);
    let (a0, b0) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
    for _ in 0..reps {
        decode(&mut d, &c.stream, chunk);
    }
    let n = (reps * c.msgs) as f64;
    (
        (ALLOCS.load(Relaxed) - a0) as f64 / n,
        (BYTES.load(Relaxed) - b0) as f64 / n,
    )
}

fn main() {
    let cases = cases();
    let mut crit = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .output_directory(&criterion_dir())
        .configure_from_args();
    {
        let mut g = crit.benchmark_group("codec");
        for c in &cases {
            for (cname, chunk) in CHUNKS {
                g.throughput(Throughput::Elements(c.msgs as u64));
                g.bench_with_input(BenchmarkId::new(c.name, cname), c, |b, c| {
                    let mut d = Decoder::new();
                    b.iter(|| decode(&mut d, &c.stream, chunk))
                });
            }
        }
        g.finish();
    }
    crit.final_summary();

    println!();
    println!("| codec: message (bytes) | fed | median ns/msg | msgs/s | MB/s | allocs/msg | alloc bytes/msg |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let mut rows = Vec::new();
    for c in &cases {
        for (cname, chunk) in CHUNKS {
            let (allocs, bytes) = allocs_per_msg(c, chunk);
            let (ns, rate, mbs) = match median_ns(c.name, cname) {
                Some(ns) => {
                    let per = ns / c.msgs as f64;
                    let mbs = c.stream.len() as f64 / ns * 1e3;
                    (
                        format!("{per:.0}"),
                        format!("{:.0}", 1e9 / per),
                        format!("{mbs:.0}"),
                    )
                }
                None => ("-".into(), "-".into(), "-".into()),
            };
            println!(
                "| {} ({}) | {} | {ns} | {rate} | {mbs} | {allocs:.1} | {bytes:.0} |",
                c.name,
                c.stream.len(),
                cname
            );
            rows.push(format!(
                "@codec case={} fed={cname} bytes={} msgs_per_s={rate} allocs={allocs:.1} alloc_bytes={bytes:.0}",
                c.name,
                c.stream.len()
            ));
        }
    }
    for r in rows {
        println!("{r}");
    }
}

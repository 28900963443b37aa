//! A running sandbox node, measured from outside: the supervisor's idle cost and recovery
//! after `kill -9` of each daemon.
//!
//! `idle`: start a sandbox (log level info, default 2 s health interval), wait until ready,
//! let it settle 2 s, then sample the SUPERVISOR process only (not the daemons) every 20 ms for
//! IDLE_S seconds (default 60) without probing it: peak RSS (VmHWM), CPU (utime+stime and
//! per-thread schedstat ns), voluntary/involuntary context switches per thread, and wakeup
//! bursts (20 ms bins in which any thread switched, merged when adjacent) against the
//! health-check cadence.
//!
//! `recovery`: with the default 2 s health interval, kill -9 each daemon RECOVERY_N times
//! (default 10): time from the kill to a new pid in its pidfile AND `probe readiness` passing.
//! Each kill is on a freshly started node (ready + 1 s), so it measures a first crash: neither
//! our restart backoff nor the daemons' own reconnect backoff is left over from the last kill.
//!
//! Run: `cargo bench --bench node -- idle|recovery` (both without an argument).
//! Prints markdown tables.

// The integration tests' harness, for its `Node`: this bench uses a few of its items, and
// rustc checks the rest for dead code where they are used, in the integration test binary.
#[allow(dead_code, unused_imports)]
#[path = "../tests/integration/harness/mod.rs"]
mod harness;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use harness::*;

const READY: Duration = Duration::from_secs(30);

fn status_field(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(key)?
                .trim_start_matches(':')
                .split_whitespace()
                .next()
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[derive(Clone, Debug, Default)]
struct ThreadSample {
    name: String,
    vol: u64,
    invol: u64,
    cpu_ns: u64,
}

fn threads(pid: u32) -> BTreeMap<u32, ThreadSample> {
    let mut m = BTreeMap::new();
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return m;
    };
    for e in rd.flatten() {
        let Ok(tid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let p = e.path();
        let st = std::fs::read_to_string(p.join("status")).unwrap_or_default();
        let sched = std::fs::read_to_string(p.join("schedstat")).unwrap_or_default();
        m.insert(
            tid,
            ThreadSample {
                name: std::fs::read_to_string(p.join("comm"))
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
                vol: status_field(&st, "voluntary_ctxt_switches"),
                invol: status_field(&st, "nonvoluntary_ctxt_switches"),
                cpu_ns: sched
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            },
        );
    }
    m
}

/// utime + stime of the whole process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the comm: state is field 3, utime 14, stime 15 (1-based) -> index 11, 12.
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn idle() {
    let secs: u64 = std::env::var("IDLE_S")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let mut node = Node::new();
    node.start(&[("OVS_OVN_SUPERVISOR_LOG", "info")]);
    node.wait_ready(READY);
    std::thread::sleep(Duration::from_secs(2));
    let pid = node.child.as_ref().unwrap().id();
    let tick = 100.0; // USER_HZ on Linux
    let status = |k| {
        status_field(
            &std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default(),
            k,
        )
    };

    let first = threads(pid);
    let ticks0 = cpu_ticks(pid);
    let wall0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let log0 = node.log().len();
    let bin = Duration::from_millis(20);
    let t0 = Instant::now();
    let mut prev: BTreeMap<u32, u64> = first.iter().map(|(t, s)| (*t, s.vol + s.invol)).collect();
    let mut active_bins: Vec<f64> = Vec::new();
    let mut next = t0 + bin;
    while t0.elapsed() < Duration::from_secs(secs) {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        next += bin;
        let cur = threads(pid);
        let mut any = false;
        for (t, s) in &cur {
            let c = s.vol + s.invol;
            if prev.get(t).is_none_or(|p| *p != c) {
                any = true;
            }
            prev.insert(*t, c);
        }
        if any {
            active_bins.push(t0.elapsed().as_secs_f64());
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    if std::env::var_os("IDLE_TRACE").is_some() {
        eprintln!("active bins (s after the window opened): {active_bins:.3?}");
    }
    let last = threads(pid);
    let ticks = cpu_ticks(pid) - ticks0;
    let hwm = status("VmHWM");
    // Daemon output the supervisor re-emitted during the window (OVS's `|module|LEVEL|` lines),
    // placed on the window's time axis from the supervisor's own UTC timestamps.
    let day0 = wall0 % 86400.0;
    let output: Vec<(f64, String)> = node.log()[log0..]
        .lines()
        .filter(|l| l.contains("daemon=\"") && l.contains('|'))
        .filter_map(|l| {
            let t = l
                .split_whitespace()
                .next()?
                .split('T')
                .nth(1)?
                .trim_end_matches('Z');
            let mut hms = t.split(':');
            let (h, m, sec): (f64, f64, f64) = (
                hms.next()?.parse().ok()?,
                hms.next()?.parse().ok()?,
                hms.next()?.parse().ok()?,
            );
            let mut rel = h * 3600.0 + m * 60.0 + sec - day0;
            if rel < -43200.0 {
                rel += 86400.0;
            }
            let d = l
                .rsplit("daemon=\"")
                .next()?
                .trim_end_matches('"')
                .to_string();
            Some((rel, d))
        })
        .collect();
    let rss = status("VmRSS");
    node.stop();

    // Adjacent active bins are one burst (one health check takes a few ms).
    let merge = |gap: f64| {
        let mut out: Vec<(f64, f64)> = Vec::new();
        for t in &active_bins {
            match out.last_mut() {
                Some(last) if t - last.1 <= gap => last.1 = *t,
                _ => out.push((*t, *t)),
            }
        }
        out
    };
    let bursts = merge(2.5 * bin.as_secs_f64());
    // Bursts within 250 ms of each other: one health check and the timer wakeups before it.
    let clusters = merge(0.25);
    // A cluster with re-emitted daemon output in it (±60 ms: bins are 20 ms, sampled after).
    let with_output = |c: &&(f64, f64)| {
        output
            .iter()
            .any(|(t, _)| *t >= c.0 - 0.06 && *t <= c.1 + 0.06)
    };
    type Span<'a> = Vec<&'a (f64, f64)>;
    let (daemon_clusters, cadence_clusters): (Span, Span) = clusters.iter().partition(with_output);
    let mut gaps: Vec<f64> = cadence_clusters
        .windows(2)
        .map(|w| (w[1].0 - w[0].0) * 1000.0)
        .collect();
    gaps.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let cadence_ms = 2000.0;
    let expected = elapsed * 1000.0 / cadence_ms;
    let off_cadence = gaps.iter().filter(|g| **g < cadence_ms * 0.75).count();
    let mut by_daemon: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, d) in &output {
        *by_daemon.entry(d.as_str()).or_default() += 1;
    }
    let by_daemon: Vec<String> = by_daemon.iter().map(|(d, n)| format!("{d} {n}")).collect();

    println!(
        "idle: supervisor pid only, {elapsed:.1} s after ready, sampled every 20 ms, no probes"
    );
    println!("| idle cost | value |");
    println!("| --- | --- |");
    println!("| peak RSS (VmHWM) | {:.1} MB |", hwm as f64 / 1024.0);
    println!("| RSS at the end (VmRSS) | {:.1} MB |", rss as f64 / 1024.0);
    let cpu_ns: u64 = last
        .iter()
        .map(|(t, s)| s.cpu_ns - first.get(t).map_or(0, |f| f.cpu_ns))
        .sum();
    println!(
        "| CPU (utime+stime) | {:.2} s in {elapsed:.0} s ({:.3} %); schedstat {:.1} ms ({:.4} %) |",
        ticks as f64 / tick,
        ticks as f64 / tick / elapsed * 100.0,
        cpu_ns as f64 / 1e6,
        cpu_ns as f64 / 1e9 / elapsed * 100.0
    );
    let (mut vol, mut invol) = (0, 0);
    for (tid, s) in &last {
        let f = first.get(tid).cloned().unwrap_or_default();
        let (v, i) = (s.vol - f.vol, s.invol - f.invol);
        vol += v;
        invol += i;
        println!(
            "| thread {tid} `{}`: context switches vol/invol | {v} / {i} ({:.2}/s); CPU {:.1} ms |",
            s.name,
            (v + i) as f64 / elapsed,
            (s.cpu_ns - f.cpu_ns) as f64 / 1e6
        );
    }
    println!(
        "| all threads: context switches vol/invol | {vol} / {invol} ({:.2}/s; {:.1} per health check) |",
        (vol + invol) as f64 / elapsed,
        (vol + invol) as f64 / expected
    );
    println!(
        "| wakeup bursts (20 ms bins, adjacent merged) | {} in {elapsed:.0} s = {:.1} per health check due ({expected:.0} due, every {cadence_ms:.0} ms) |",
        bursts.len(),
        bursts.len() as f64 / expected
    );
    println!(
        "| daemon output lines re-emitted in the window | {} ({}) |",
        output.len(),
        if by_daemon.is_empty() {
            "-".to_string()
        } else {
            by_daemon.join(", ")
        }
    );
    println!(
        "| bursts clustered within 250 ms | {} clusters: {} with daemon output in them, {} without |",
        clusters.len(),
        daemon_clusters.len(),
        cadence_clusters.len()
    );
    println!(
        "| clusters without daemon output: gap median (min–max); gaps under 1500 ms | {} ms ({}); {off_cadence} |",
        gaps.get(gaps.len() / 2).map_or("-".into(), |g| format!("{g:.0}")),
        match (gaps.first(), gaps.last()) {
            (Some(a), Some(b)) => format!("{a:.0}–{b:.0}"),
            _ => "-".into(),
        }
    );
    println!(
        "@idle secs={elapsed:.1} hwm_mb={:.2} cpu_ms={:.1} cpu_pct={:.4} cs={} cs_per_s={:.2} bursts={} clusters={} output_clusters={} output_lines={} cadence_clusters={} due={expected:.0} off_cadence={off_cadence} threads={}",
        hwm as f64 / 1024.0,
        cpu_ns as f64 / 1e6,
        cpu_ns as f64 / 1e9 / elapsed * 100.0,
        vol + invol,
        (vol + invol) as f64 / elapsed,
        bursts.len(),
        clusters.len(),
        daemon_clusters.len(),
        output.len(),
        cadence_clusters.len(),
        last.len()
    );
}

fn recovery() {
    let n: usize = std::env::var("RECOVERY_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    println!("recovery: kill -9 → new pid + `probe readiness` passes; {n} kills per daemon, each on a freshly started node (ready + 1 s), health interval 2000 ms (default)");
    println!(
        "| kill -9 of | median ms | min–max ms | supervisor's own recovered_ms, median (min–max) |"
    );
    println!("| --- | --- | --- | --- |");
    let mut summary = Vec::new();
    for (name, pidfile) in [
        ("Southbound ovsdb-server (sandbox)", "ovnsb_db.pid"),
        ("ovsdb-server", "ovsdb-server.pid"),
        ("ovs-vswitchd", "ovs-vswitchd.pid"),
        ("ovn-controller", "ovn-controller.pid"),
    ] {
        let (mut v, mut own) = (Vec::new(), Vec::new());
        for _ in 0..n {
            // A fresh node each time: the daemons' own reconnect backoff (OVS's reconnect
            // doubles up to 8 s while a connection keeps dropping) starts from scratch, as on a
            // node where this is the first crash in a long while.
            let mut node = Node::new();
            node.start(&[("OVS_OVN_SUPERVISOR_LOG", "info")]);
            node.wait_ready(READY);
            std::thread::sleep(Duration::from_secs(1));
            v.push(node.crash_and_recover(pidfile).as_secs_f64() * 1000.0);
            // The supervisor logs `recovered_ms=N` when the restarted daemon answers again.
            if let Some(ms) = node.log().lines().find_map(|l| {
                l.split("recovered_ms=")
                    .nth(1)?
                    .split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse::<u64>()
                    .ok()
            }) {
                own.push(ms);
            }
            assert!(node.stop().0.success(), "{}", node.log());
        }
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        own.sort();
        let own_s = if own.is_empty() {
            "-".to_string()
        } else {
            format!("{} ({}–{})", own[own.len() / 2], own[0], own[own.len() - 1])
        };
        println!(
            "| {name} | {:.0} | {:.0}–{:.0} | {own_s} |",
            v[v.len() / 2],
            v[0],
            v[v.len() - 1]
        );
        summary.push(format!(
            "@recovery daemon={pidfile} n={n} median={:.0} min={:.0} max={:.0}",
            v[v.len() / 2],
            v[0],
            v[v.len() - 1]
        ));
    }
    for l in summary {
        println!("{l}");
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs bench targets too (test =
    // false does not stop it), and this one starts real daemons for seconds to minutes.
    if !std::env::args().any(|a| a == "--bench") {
        println!("skipped: run through `cargo bench` (scripts/bench.sh)");
        return;
    }
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let all = which.is_empty();
    if all || which.iter().any(|w| w == "idle") {
        idle();
    }
    if all || which.iter().any(|w| w == "recovery") {
        recovery();
    }
}

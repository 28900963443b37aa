//! Metrics that move as the node does, read from a real node's `/metrics` and checked against
//! `status --output json` and the switch itself: a takeover counted, timed and its flows
//! tallied on the new instance (flows saved and restored equal to br-int's rule count at the
//! handover, flow-restore-wait seen set during it and cleared after); the Southbound gauge
//! following an outage; every start stage's duration. The migration from a `start-ovs.sh`
//! node is in `migrate::metrics`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::harness::*;

const READY: Duration = Duration::from_secs(30);

/// A sandbox whose supervisor, and so its listener, stays in the test's network namespace
/// (dummy devices), listening on `http`.
fn env(http: &str) -> Vec<(&'static str, String)> {
    vec![
        ("OVS_OVN_SUPERVISOR_SANDBOX_NET", "dummy".into()),
        ("OVS_OVN_SUPERVISOR_HTTP_ADDR", http.into()),
        ("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "200".into()),
    ]
}

fn as_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// A port nobody listens on now (the new instance's, fixed so that its endpoint can be
/// sampled from its first moment).
fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// One GET: the status code and the body; `None` while nothing answers there.
pub(crate) fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: node\r\nAccept: text/plain\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

/// Every sample of an exposition, by its series (`name{labels}`).
pub(crate) fn samples(body: &str) -> BTreeMap<String, f64> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

pub(crate) fn scrape(addr: SocketAddr) -> BTreeMap<String, f64> {
    let (code, body) = get(addr, "/metrics").expect("/metrics answers");
    assert_eq!(code, 200, "{body}");
    samples(&body)
}

/// The value of `ovs_ovn_supervisor_SERIES`, which must be served.
pub(crate) fn value(m: &BTreeMap<String, f64>, series: &str) -> f64 {
    let name = format!("ovs_ovn_supervisor_{series}");
    *m.get(&name)
        .unwrap_or_else(|| panic!("{name} not served: {:?}", m.keys()))
}

/// The address the node's endpoint listens on, once it does.
pub(crate) fn http_addr(node: &Node) -> SocketAddr {
    let mut addr = None;
    wait_for("the HTTP endpoint", READY, || {
        addr = node
            .status()
            .and_then(|s| s["http_addr"].as_str().and_then(|a| a.parse().ok()));
        addr.is_some()
    });
    addr.unwrap()
}

/// br-int's rule count once ovn-controller has installed its table: non-empty and unchanged
/// for 1 s (twenty reads 50 ms apart).
pub(crate) fn settled_flow_count(dir: &std::path::Path) -> usize {
    let (mut last, mut same) = (0, 0);
    wait_for("br-int's table to settle", READY, || {
        let n = flow_count(dir).unwrap_or(0);
        same = if n == last && n > 0 { same + 1 } else { 0 };
        last = n;
        std::thread::sleep(Duration::from_millis(50));
        same >= 20
    });
    last
}

/// Samples `flow_restore_wait` at `addr` every 10 ms until stopped.
struct WaitSampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Waited>,
}

/// What [`WaitSampler`] saw, times from its start.
#[derive(Debug, Default)]
struct Waited {
    /// Each value as it changed.
    values: Vec<f64>,
    /// The first answer of the endpoint (after the takeover's request: the endpoint is up
    /// only once the instance has taken the node).
    first_answer: Option<Duration>,
    /// The last sample that read 1.
    last_set: Option<Duration>,
}

impl WaitSampler {
    fn start(addr: SocketAddr) -> WaitSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let (t0, mut w) = (Instant::now(), Waited::default());
            while !s.load(Ordering::Relaxed) {
                if let Some((200, body)) = get(addr, "/metrics") {
                    w.first_answer.get_or_insert(t0.elapsed());
                    let v = samples(&body)
                        .get("ovs_ovn_supervisor_flow_restore_wait")
                        .copied();
                    if v == Some(1.0) {
                        w.last_set = Some(t0.elapsed());
                    }
                    if w.values.last() != v.as_ref() {
                        w.values.extend(v);
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            w
        });
        WaitSampler { stop, thread }
    }

    fn finish(self) -> Waited {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// A rolling-update takeover, as the new instance's `/metrics` and `status` tell it: counted
/// once under `from="supervisor"`, timed within what the test saw, the flows the old instance
/// saved (carried in its answer) and the new one restored both equal to br-int's rule count at
/// the handover, flow-restore-wait 1 during the takeover and 0 after it.
#[test]
fn a_takeover_is_counted_timed_and_its_flows_tallied_by_the_new_instance() {
    let mut old = Node::new();
    let fresh = env("127.0.0.1:0");
    old.start(&as_refs(&fresh));
    old.wait_ready(READY);
    let before = scrape(http_addr(&old));
    for from in ["supervisor", "start-ovs"] {
        let s = format!("takeovers_total{{from=\"{from}\"}}");
        assert_eq!(value(&before, &s), 0.0, "{from}");
    }
    assert_eq!(value(&before, "takeover_duration_seconds"), 0.0);
    assert_eq!(value(&before, "flows_restored"), 0.0);
    let flows = settled_flow_count(old.path());

    let port = free_port();
    let sampler = WaitSampler::start(port);
    let t0 = Instant::now();
    let mut new = instance_on(old.path(), &as_refs(&env(&port.to_string())));
    let new_pid = new.child.as_ref().unwrap().id() as i64;
    old.wait_owner(new_pid, READY, Some(&mut new), || {});
    let took = t0.elapsed();
    let m = scrape(port);
    let seen = sampler.finish();
    let status = old.status().expect("the new instance answers");
    assert_eq!(status["pid"], new_pid);

    assert_eq!(value(&m, "takeovers_total{from=\"supervisor\"}"), 1.0);
    assert_eq!(value(&m, "takeovers_total{from=\"start-ovs\"}"), 0.0);
    // Within what the test saw: after the spawn, and at least from the endpoint's first
    // answer (the request came before it) to the last sample with flow-restore-wait set.
    let duration = value(&m, "takeover_duration_seconds");
    let first = seen.first_answer.expect("the new endpoint never answered");
    let last_set = (seen.last_set).unwrap_or_else(|| panic!("flow_restore_wait never 1: {seen:?}"));
    let floor = last_set.saturating_sub(first).as_secs_f64();
    assert!(
        floor <= duration && duration <= took.as_secs_f64(),
        "takeover {duration} s; flow-restore-wait seen set {floor} s after the endpoint answered, ready within {took:?}"
    );
    assert!(duration >= value(&m, "start_duration_seconds"));
    assert_eq!(
        value(&m, "flows_saved"),
        flows as f64,
        "br-int held {flows}"
    );
    assert_eq!(
        value(&m, "flows_restored"),
        flows as f64,
        "br-int held {flows}"
    );
    assert_eq!(
        value(&m, "flow_groups_saved"),
        value(&m, "flow_groups_restored")
    );
    assert!(value(&m, "flows_save_duration_seconds") > 0.0);
    assert!(value(&m, "flows_restore_duration_seconds") > 0.0);
    assert_eq!(value(&m, "flow_restore_wait"), 0.0);
    // 1 while the takeover ran (0 after it: above, read once the node was ready).
    assert!(
        seen.values.contains(&1.0),
        "flow_restore_wait not seen set during the takeover: {seen:?}"
    );

    eprintln!(
        "takeover figures: duration {duration} s (test saw ready after {took:?}); {flows} flows; save {} s, restore {} s",
        value(&m, "flows_save_duration_seconds"),
        value(&m, "flows_restore_duration_seconds")
    );
    // `status` shows the same figures.
    let t = &status["takeover"];
    assert_eq!(t["from"], "supervisor", "{status}");
    assert_eq!(t["duration_ms"].as_f64().unwrap() / 1000.0, duration);
    for (key, metric) in [("saved", "save"), ("restored", "restore")] {
        assert_eq!(t[key]["flows"], flows, "{status}");
        let ms = t[key]["elapsed_ms"].as_f64().unwrap();
        let s = value(&m, &format!("flows_{metric}_duration_seconds"));
        assert_eq!(ms / 1000.0, s, "{key}");
    }
    let text = status_text(old.path());
    let line = format!(
        "took over from supervisor in {} ms; flows saved {flows} (",
        t["duration_ms"]
    );
    assert!(text.contains(&line), "{line:?} not in:\n{text}");
    stages_match_the_timeline(&m, &status, &["flow-restore-wait", "restore-flows"]);

    assert!(old.stop().0.success());
    new.signal("TERM");
    assert!(new.wait_exit(READY).0.success());
}

/// `status` as an operator reads it (the table).
fn status_text(dir: &std::path::Path) -> String {
    let out = std::process::Command::new(BIN)
        .env_clear()
        .args(["status", "--sandbox"])
        .arg(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every stage of the status timeline has its `start_stage_duration_seconds`, equal to it and
/// above 0, the `expected` stages among them; and no other stage is served.
pub(crate) fn stages_match_the_timeline(
    m: &BTreeMap<String, f64>,
    status: &serde_json::Value,
    expected: &[&str],
) {
    let timeline: Vec<(String, f64)> = (status["timeline"].as_array().unwrap().iter())
        .map(|s| (s[0].as_str().unwrap().to_string(), s[1].as_f64().unwrap()))
        .collect();
    for e in expected {
        assert!(timeline.iter().any(|(s, _)| s == e), "{e}: {timeline:?}");
    }
    for (stage, ms) in &timeline {
        let v = value(
            m,
            &format!("start_stage_duration_seconds{{stage=\"{stage}\"}}"),
        );
        assert!(v > 0.0, "{stage}: {v}");
        assert_eq!(v, ms / 1000.0, "{stage}");
    }
    let served = m
        .keys()
        .filter(|k| k.starts_with("ovs_ovn_supervisor_start_stage_duration_seconds"))
        .count();
    assert_eq!(served, timeline.len(), "{timeline:?}");
}

/// After a fresh start every stage the timeline names has its duration, above 0.
#[test]
fn every_start_stage_has_its_duration_after_the_start() {
    let mut node = Node::new();
    node.start(&as_refs(&env("127.0.0.1:0")));
    node.wait_ready(READY);
    let m = scrape(http_addr(&node));
    let status = node.status().unwrap();
    let stages = [
        "conf.db",
        "southbound",
        "ovsdb-server",
        "settings",
        "ovs-vswitchd",
        "br-int.mgmt",
        "ovn-controller",
    ];
    stages_match_the_timeline(&m, &status, &stages);
    let total: f64 = (status["timeline"].as_array().unwrap().iter())
        .map(|s| s[1].as_f64().unwrap())
        .sum();
    assert_eq!(value(&m, "start_duration_seconds"), total / 1000.0);
    assert!(node.stop().0.success());
}

/// The Southbound stopped: `southbound_connected` goes 0 and `/readyz` 503 within a deadline,
/// liveness stays; back to 1 and 200 once it answers again.
#[test]
fn the_southbound_gauge_follows_an_outage() {
    let sb_dir = tempfile::tempdir().unwrap();
    let (mut sb, remote) = southbound(sb_dir.path());
    let mut node = Node::new();
    let mut e = env("127.0.0.1:0");
    e.push(("OVN_SB_ADDR", remote.clone()));
    node.start(&as_refs(&e));
    node.wait_ready(READY);
    let addr = http_addr(&node);
    let connected = |want: f64, code: u16| {
        let m = scrape(addr);
        let ready = get(addr, "/readyz").map(|(c, _)| c);
        m.get("ovs_ovn_supervisor_southbound_connected") == Some(&want) && ready == Some(code)
    };
    wait_for("southbound_connected 1", READY, || connected(1.0, 200));

    sb.0.kill().unwrap();
    sb.0.wait().unwrap();
    wait_for(
        "southbound_connected 0 and /readyz 503",
        Duration::from_secs(10),
        || connected(0.0, 503),
    );
    assert_eq!(get(addr, "/livez").map(|(c, _)| c), Some(200));
    assert_eq!(value(&scrape(addr), "live"), 1.0);

    // Back: the same remote, a Southbound as a same-version ovn-northd leaves it.
    drop(sb);
    std::fs::remove_file(sb_dir.path().join("sb.db")).unwrap();
    let (_sb, again) = southbound(sb_dir.path());
    assert_eq!(again, remote);
    wait_for("southbound_connected 1 again", READY, || {
        connected(1.0, 200)
    });
    assert!(node.stop().0.success());
}

use std::collections::BTreeMap;

use super::*;
use crate::daemon::state::{DaemonState, RestartCause};
use crate::status::{DaemonInfo, Health, Verdict};

const NOW: u64 = 1_800_000_000_000;

fn snapshot(ready: bool) -> Snapshot {
    let daemon = |name: &str, pid, state| DaemonInfo {
        name: name.into(),
        pid: Some(pid),
        state,
        ..DaemonInfo::default()
    };
    let mut controller = daemon("ovn-controller", 4242, DaemonState::Running);
    controller.restarts = 3;
    controller.restarts_by_cause =
        BTreeMap::from([(RestartCause::Signal, 2), (RestartCause::Hung, 1)]);
    controller.restarted_at_ms = Some(NOW - 5_000);
    controller.last_exit_signal = Some(9);
    Snapshot {
        pid: 4000,
        version: "9.8.7".into(),
        stage: "ready".into(),
        started: true,
        started_at_ms: NOW - 60_000,
        daemons: vec![
            daemon("ovsdb-server", 4100, DaemonState::Running),
            daemon("ovs-vswitchd", 4200, DaemonState::Running),
            controller,
        ],
        timeline: vec![("conf.db".into(), 12), ("ovs-vswitchd".into(), 1500)],
        health: Some(Health {
            checked_at_ms: NOW - 100,
            unresponsive: vec![],
            not_asked: vec![],
            main_cpu_ms: BTreeMap::new(),
            liveness: Verdict {
                ok: true,
                reason: "alive: 3 daemons answer".into(),
            },
            readiness: Verdict {
                ok: ready,
                reason: if ready {
                    "ready".into()
                } else {
                    "not connected to tcp:10.1.2.3:6642".into()
                },
            },
            southbound_connected: Some(ready),
        }),
        health_max_age_ms: 10_000,
        southbound: "tcp:10.1.2.3:6642".into(),
        ..Snapshot::default()
    }
}

fn body(r: Response<Full<Bytes>>) -> (u16, String, String) {
    use http_body_util::BodyExt;
    let code = r.status().as_u16();
    let ct = r
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = futures_lite_block_on(r.into_body().collect())
        .unwrap()
        .to_bytes();
    (code, ct, String::from_utf8(bytes.to_vec()).unwrap())
}

/// Full bodies are ready at once: one poll.
fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

fn get(path: &str, accept: &str, snap: &Snapshot) -> (u16, String, String) {
    body(route(
        &Method::GET,
        path,
        accept,
        snap,
        NOW,
        std::path::Path::new("/nonexistent"),
    ))
}

#[test]
fn probe_endpoints_answer_the_probes_verdicts() {
    for (ready, code) in [(true, 200), (false, 503)] {
        let s = snapshot(ready);
        let (c, _, text) = get("/readyz", "", &s);
        let want = crate::status::verdict::readiness(&s, NOW);
        assert_eq!((c, text.trim()), (code, want.reason.as_str()));
        let (c, _, text) = get("/livez", "", &s);
        assert_eq!(
            (c, text.trim()),
            (
                200,
                crate::status::verdict::liveness(&s, NOW).reason.as_str()
            )
        );
        let (c, _, _) = get("/startupz", "", &s);
        assert_eq!(c, 200);
    }
    let mut starting = snapshot(true);
    starting.started = false;
    starting.stage = "ovs-vswitchd".into();
    let (c, _, text) = get("/startupz", "", &starting);
    assert_eq!((c, text.trim()), (503, "starting: stage ovs-vswitchd"));
}

#[test]
fn read_only_and_nothing_but_the_endpoints() {
    let s = snapshot(true);
    for m in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        for p in ["/readyz", "/status", "/metrics"] {
            let r = route(&m, p, "", &s, NOW, std::path::Path::new("/"));
            assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED, "{m} {p}");
            assert_eq!(r.headers()[header::ALLOW], "GET, HEAD");
        }
    }
    for p in [
        "/",
        "/handover",
        "/stop",
        "/readyz/x",
        "/metrics?x=1/../handover",
    ] {
        assert_eq!(get(p, "", &s).0, 404, "{p}");
    }
    let r = route(
        &Method::HEAD,
        "/livez",
        "",
        &s,
        NOW,
        std::path::Path::new("/"),
    );
    assert_eq!(r.status(), StatusCode::OK);
}

#[test]
fn status_is_the_status_json() {
    let s = snapshot(true);
    let (c, ct, text) = get("/status", "", &s);
    assert_eq!((c, ct.as_str()), (200, "application/json"));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v, crate::control::answer("status", &s, NOW).unwrap());
    assert_eq!(v["daemons"][2]["since_restart_ms"], 5_000);
}

#[test]
fn metrics_by_content_negotiation() {
    let mut s = snapshot(false);
    s.daemons[1].state = DaemonState::Busy;
    let (c, ct, om) = get(
        "/metrics",
        "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
        &s,
    );
    assert_eq!((c, ct.as_str()), (200, OPENMETRICS));
    assert!(om.ends_with("# EOF\n"), "{om}");
    for line in [
        "ovs_ovn_supervisor_ready 0",
        "ovs_ovn_supervisor_live 1",
        "ovs_ovn_supervisor_started 1",
        "ovs_ovn_supervisor_southbound_connected 0",
        "ovs_ovn_supervisor_northd_version_match 1",
        "ovs_ovn_supervisor_southbound_stale 0",
        "ovs_ovn_supervisor_southbound_stale_resets_total 0",
        "ovs_ovn_supervisor_firewall_rule_restores_total 0",
        "ovs_ovn_supervisor_build_info{version=\"9.8.7\"} 1",
        "ovs_ovn_supervisor_daemon_up{daemon=\"ovs-vswitchd\"} 1",
        "ovs_ovn_supervisor_daemon_state{daemon=\"ovs-vswitchd\",state=\"busy\"} 1",
        "ovs_ovn_supervisor_daemon_state{daemon=\"ovs-vswitchd\",state=\"running\"} 0",
        "ovs_ovn_supervisor_daemon_restarts_total{daemon=\"ovn-controller\",cause=\"signal\"} 2",
        "ovs_ovn_supervisor_daemon_restarts_total{daemon=\"ovn-controller\",cause=\"hung\"} 1",
        "ovs_ovn_supervisor_daemon_restarts_total{daemon=\"ovn-controller\",cause=\"busy_limit\"} 0",
        "ovs_ovn_supervisor_daemon_last_exit_signal{daemon=\"ovn-controller\"} 9",
        "ovs_ovn_supervisor_daemon_last_restart_timestamp_seconds{daemon=\"ovn-controller\"} 1799999995",
        "ovs_ovn_supervisor_start_stage_duration_seconds{stage=\"ovs-vswitchd\"} 1.5",
        "ovs_ovn_supervisor_start_duration_seconds 1.512",
        "# TYPE ovs_ovn_supervisor_daemon_restarts counter",
    ] {
        assert!(om.lines().any(|l| l == line), "{line:?} not in:\n{om}");
    }
    // No pid is ever a label: cardinality stays bounded whatever restarts.
    assert!(!om.contains("4242") && !om.contains("pid="), "{om}");

    let (c, ct, text) = get("/metrics", "text/plain;version=0.0.4;q=1,*/*;q=0.1", &s);
    assert_eq!((c, ct.as_str()), (200, PROMETHEUS_TEXT));
    assert!(
        !text.contains("# EOF") && !text.contains("# UNIT"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE ovs_ovn_supervisor_daemon_restarts_total counter\n"),
        "{text}"
    );
    assert!(text.contains("ovs_ovn_supervisor_ready 0\n"), "{text}");
}

#[test]
fn requests_are_counted_by_path_and_code() {
    let s = snapshot(true);
    let count = |path: &str, code: &str| {
        counters::http_counts()
            .into_iter()
            .find(|(p, c, _)| *p == path && c == code)
            .map_or(0, |(_, _, n)| n)
    };
    let before = (count("/readyz", "200"), count("other", "404"));
    get("/readyz", "", &s);
    get("/no/such/thing", "", &s);
    // Counters are process-wide and other tests run at once: at least ours.
    assert!(count("/readyz", "200") > before.0);
    assert!(count("other", "404") > before.1);
}

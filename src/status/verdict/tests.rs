//! Table tests of the verdicts the control socket answers with, as pure functions of a snapshot.

use super::*;
use crate::status::{DaemonInfo, HandedOver};

fn d(name: &str, state: &str) -> DaemonInfo {
    DaemonInfo {
        name: name.into(),
        pid: Some(1),
        // The table names states as `status` shows them.
        state: serde_json::from_value(serde_json::json!(state)).unwrap(),
        since_ms: Some(0),
        ..DaemonInfo::default()
    }
}

fn snap(
    started: bool,
    stopping: bool,
    states: &[&str],
    health: Option<(u64, bool, bool)>,
) -> Snapshot {
    Snapshot {
        stage: if started { "ready" } else { "ovs-vswitchd" }.into(),
        started,
        stopping,
        daemons: ["ovsdb-server", "ovs-vswitchd", "ovn-controller"]
            .iter()
            .zip(states)
            .map(|(n, s)| d(n, s))
            .collect(),
        health: health.map(|(at, live, ready)| Health {
            checked_at_ms: at,
            unresponsive: vec![],
            not_asked: vec![],
            main_cpu_ms: Default::default(),
            southbound_connected: None,
            liveness: Verdict {
                ok: live,
                reason: "live-reason".into(),
            },
            readiness: Verdict {
                ok: ready,
                reason: "ready-reason".into(),
            },
        }),
        health_max_age_ms: 10_000,
        ..Snapshot::default()
    }
}

/// An instance that handed the node over to pid 42 and stopped its daemons.
fn handed(confirmed: bool, now: u64) -> Snapshot {
    let mut s = snap(
        true,
        true,
        &["handed-over"; 3],
        Some((now - 500, true, true)),
    );
    s.handover = Some(HandedOver {
        successor: Some(42),
        confirmed,
        take_back_at_ms: now + 5_000,
    });
    s
}

/// A node `uninstall` stopped for good (`started`: after its start finished), its last health
/// check old: nothing checks an uninstalled node.
fn uninstalled(started: bool) -> Snapshot {
    let mut s = snap(started, true, &["stopped"; 3], Some((0, false, false)));
    s.uninstalled = Some(crate::status::Uninstalled::default());
    s
}

#[test]
fn verdicts_in_every_state() {
    let now = 100_000;
    let run3 = ["running"; 3];
    let fresh = |live, ready| Some((now - 500, live, ready));
    let with = |states: &[&str]| snap(true, false, states, fresh(true, true));
    // (what, snapshot, startup, liveness, readiness, reason fragment of the first failing one)
    #[rustfmt::skip]
    let cases: Vec<(&str, Snapshot, bool, bool, bool, &str)> = vec![
        ("starting", snap(false, false, &["running"], None), false, true, false, "starting: stage ovs-vswitchd"),
        ("ready", snap(true, false, &run3, fresh(true, true)), true, true, true, ""),
        ("SB down: ready fails, live holds", snap(true, false, &run3, fresh(true, false)), true, true, false, "ready-reason"),
        ("hung daemon", snap(true, false, &run3, fresh(false, false)), true, false, false, "live-reason"),
        ("daemon exited", with(&["running", "exited", "running"]), true, false, false, "ovs-vswitchd is exited"),
        ("daemon restarting", with(&["running", "restarting", "running"]), true, true, false, "ovs-vswitchd is restarting"),
        ("daemon busy computing: live, not ready", with(&["running", "running", "busy"]), true, true, false, "ovn-controller is busy"),
        ("daemon killed as hung, its restart coming", with(&["running", "hung", "running"]), true, true, false, "ovs-vswitchd is hung"),
        ("keeping the datapath's flows", Snapshot { flow_restore_wait: true, ..with(&run3) }, true, true, false, "flow-restore-wait"),
        ("checker stalled", snap(true, false, &run3, Some((now - 60_000, true, true))), true, false, false, "stalled"),
        ("no check yet", snap(true, false, &run3, None), true, false, false, "pending"),
        ("stopping", snap(true, true, &run3, fresh(true, true)), true, true, false, "stopping"),
        ("handed over, successor not confirmed: nothing runs", handed(false, now), true, false, false, "has not confirmed: no daemon runs"),
        ("handed over and confirmed: idle until terminated", handed(true, now), true, true, false, "which runs it"),
        ("uninstalled: alive, never ready", uninstalled(true), true, true, false, "uninstalled"),
        ("uninstalled during the start: started too", uninstalled(false), true, true, false, "uninstalled"),
    ];
    for (what, s, want_start, want_live, want_ready, reason) in cases {
        assert_eq!(startup(&s).ok, want_start, "{what}: startup");
        let l = liveness(&s, now);
        let r = readiness(&s, now);
        assert_eq!(l.ok, want_live, "{what}: liveness {l:?}");
        assert_eq!(r.ok, want_ready, "{what}: readiness {r:?}");
        let first_fail = [&l, &r]
            .into_iter()
            .find(|v| !v.ok)
            .map(|v| v.reason.clone())
            .unwrap_or_default();
        assert!(
            first_fail.contains(reason),
            "{what}: {first_fail:?} lacks {reason:?}"
        );
    }
}

#[test]
fn silence_fails_liveness_unless_every_silent_daemon_is_busy() {
    let failed = fail("ovn-controller does not answer: timed out");
    let silent = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let busy = [(
        "ovn-controller",
        Some(std::time::Duration::from_millis(8_000)),
    )];
    let v = excusing_busy(failed.clone(), &silent(&["ovn-controller"]), &busy);
    assert!(v.ok, "{v:?}");
    assert!(
        v.reason.contains("ovn-controller (silent for 8000 ms)"),
        "{v:?}"
    );
    // Another daemon silent too, and not busy: the failure stands.
    let both = silent(&["ovn-controller", "ovs-vswitchd"]);
    assert_eq!(excusing_busy(failed.clone(), &both, &busy), failed);
    assert_eq!(
        excusing_busy(failed.clone(), &silent(&["ovn-controller"]), &[]),
        failed
    );
    // A failure that is not about silence (nothing silent) is not excused.
    assert_eq!(excusing_busy(failed.clone(), &[], &busy), failed);
}

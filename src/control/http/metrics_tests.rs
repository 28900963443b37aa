//! The takeover's series, from a snapshot: every one present before any takeover (0), and
//! each figure of a takeover in its own series.

use super::*;
use crate::dataplane::tally::FlowTally;
use crate::status::TookOver;

fn exposition(takeover: Option<TookOver>) -> String {
    let snap = Snapshot {
        takeover,
        ..Snapshot::default()
    };
    openmetrics(&snap, 0, Path::new("/nonexistent"))
}

fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn takeover_series() {
    let t = |flows, groups, elapsed_ms| FlowTally {
        flows,
        groups,
        elapsed_ms,
    };
    let migrated = TookOver {
        from: TakeoverFrom::StartOvs,
        requested_at_ms: 1,
        duration_ms: Some(2_500),
        saved: Some(t(1234, 7, 40)),
        restored: Some(t(1234, 7, 125)),
    };
    let under_way = TookOver {
        from: TakeoverFrom::Supervisor,
        duration_ms: None,
        restored: None,
        ..migrated.clone()
    };
    let p = "ovs_ovn_supervisor_";
    let rows: [(Option<TookOver>, [f64; 10]); 3] = [
        (None, [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
        (
            Some(migrated),
            [0.0, 1.0, 2.5, 1234.0, 7.0, 1234.0, 7.0, 0.04, 0.125, 0.0],
        ),
        (
            Some(under_way),
            [1.0, 0.0, 0.0, 1234.0, 7.0, 0.0, 0.0, 0.04, 0.0, 0.0],
        ),
    ];
    let series = [
        "takeovers_total{from=\"supervisor\"}",
        "takeovers_total{from=\"start-ovs\"}",
        "takeover_duration_seconds",
        "flows_saved",
        "flow_groups_saved",
        "flows_restored",
        "flow_groups_restored",
        "flows_save_duration_seconds",
        "flows_restore_duration_seconds",
        "flow_restore_wait",
    ];
    for (took, want) in rows {
        let text = exposition(took.clone());
        for (s, w) in series.iter().zip(want) {
            assert_eq!(
                sample(&text, &format!("{p}{s}")),
                Some(w),
                "{s} of {took:?}"
            );
        }
    }
}

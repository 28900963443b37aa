//! Table tests of the stale-Southbound decision, and of the line as OVN 23.03 prints it.

use super::*;

/// Exactly as the real ovn-controller (OVN 23.03, OVS 3.1) wrote it to its console, relayed.
const REAL: &str = "2026-12-03T06:43:42Z|00027|ovsdb_cs|WARN|unix:/tmp/stale-repro/sb/sb.sock: clustered database server has stale data; trying another server";

#[test]
fn stale_lines() {
    assert_eq!(parse_stale(REAL), Some("unix:/tmp/stale-repro/sb/sb.sock"));
    let ssl = "2026-12-03T06:43:42.516Z|00027|ovsdb_cs|WARN|ssl:[fd00::1]:6642: clustered database server has stale data; trying another server";
    assert_eq!(parse_stale(ssl), Some("ssl:[fd00::1]:6642"));
    for other in [
        "",
        "2026-12-03T06:43:42Z|00026|reconnect|INFO|unix:/x/sb.sock: connected",
        "|ovsdb_cs|INFO|tcp:1.2.3.4:6642: clustered database server is not cluster leader; trying another server",
        "|main|INFO|Resetting southbound database cluster state",
    ] {
        assert_eq!(parse_stale(other), None, "{other}");
    }
}

/// What a step should produce, by kind.
#[derive(Debug, PartialEq)]
enum Want {
    Nothing,
    Reset(u32),
    Ended(End, u32),
}

fn kind(a: &Action) -> Want {
    match a {
        Action::Nothing => Want::Nothing,
        Action::Reset { n, .. } => Want::Reset(*n),
        Action::Ended { why, resets, .. } => Want::Ended(*why, *resets),
    }
}

/// (what, steps of (at ms, event, wanted action), total resets at the end, episode left open)
type Case = (&'static str, Vec<(u64, Event<'static>, Want)>, u32, bool);

const LINE: Event = Event::Line {
    server: "tcp:[10.0.0.1]:6642",
};
const DOWN: Event = Event::Checked { connected: false };
const UP: Event = Event::Checked { connected: true };

#[test]
fn episodes_resets_and_their_rate() {
    use End::*;
    use Want::*;
    let s = |secs: u64| secs * 1000;
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("not connected without a stale line: nothing to reset",
         vec![(s(1), DOWN, Nothing), (s(60), DOWN, Nothing)], 0, false),
        ("a stale line, then not connected: wait to confirm, then reset once",
         vec![(s(0), LINE, Nothing), (s(2), DOWN, Nothing), (s(9), DOWN, Nothing),
              (s(10), DOWN, Reset(1)), (s(12), DOWN, Nothing), (s(16), UP, Ended(Connected, 1))], 1, false),
        ("another server was fine: connected before the confirmation, no reset",
         vec![(s(0), LINE, Nothing), (s(2), DOWN, Nothing), (s(4), UP, Ended(Connected, 0)),
              (s(20), DOWN, Nothing)], 0, false),
        ("the reset took (a line in flight does not count): never a second one; the quiet ends it",
         vec![(s(0), LINE, Nothing), (s(10), DOWN, Reset(1)), (s(10) + 500, LINE, Nothing),
              (s(40), DOWN, Nothing), (s(41), DOWN, Ended(Quiet, 1))], 1, false),
        ("stale lines keep coming after the reset: again, no sooner than RESET_EVERY",
         vec![(s(0), LINE, Nothing), (s(10), DOWN, Reset(1)), (s(14), LINE, Nothing),
              (s(22), LINE, Nothing), (s(30), LINE, Nothing), (s(38), DOWN, Nothing),
              (s(40), DOWN, Reset(2)), (s(42), DOWN, Nothing), (s(48), LINE, Nothing),
              (s(56), LINE, Nothing), (s(64), LINE, Nothing), (s(69), DOWN, Nothing),
              (s(70), DOWN, Reset(3))], 3, true),
        ("a spurious end and a new episode: the rate still holds across them",
         vec![(s(0), LINE, Nothing), (s(10), DOWN, Reset(1)), (s(11), UP, Ended(Connected, 1)),
              (s(12), LINE, Nothing), (s(22), DOWN, Nothing), (s(39), DOWN, Nothing),
              (s(40), DOWN, Reset(1))], 2, true),
        ("a new ovn-controller ends the episode (it starts without an index)",
         vec![(s(0), LINE, Nothing), (s(10), DOWN, Reset(1)), (s(11), Event::Restarted, Ended(Restarted, 1)),
              (s(20), DOWN, Nothing)], 1, false),
        ("no stale line for QUIET_END: the Southbound fails some other way now",
         vec![(s(0), LINE, Nothing), (s(8), LINE, Nothing), (s(10), DOWN, Reset(1)),
              (s(38), DOWN, Nothing), (s(38) + 1, DOWN, Ended(Quiet, 1)), (s(80), DOWN, Nothing)], 1, false),
        ("the wall clock went back: the last reset counts as long ago",
         vec![(s(100), LINE, Nothing), (s(110), DOWN, Reset(1)), (s(50), LINE, Nothing),
              (s(51), DOWN, Reset(2))], 2, true),
        ("events without an episode change nothing",
         vec![(s(1), UP, Nothing), (s(2), Event::Restarted, Nothing)], 0, false),
    ];
    for (what, steps, resets, open) in cases {
        let mut st = StaleSouthbound::default();
        for (i, (at, ev, want)) in steps.into_iter().enumerate() {
            let got = st.on(ev, at);
            assert_eq!(
                kind(&got),
                want,
                "{what}: step {i} ({ev:?} at {at} ms): {got:?}"
            );
        }
        assert_eq!(st.resets, resets, "{what}: total resets");
        assert_eq!(st.episode.is_some(), open, "{what}: episode open");
    }
}

#[test]
fn readiness_and_status_name_the_server_and_the_resets() {
    let w = StaleWatch::default();
    w.observe(
        "2026-12-03T06:43:42Z|00026|reconnect|INFO|unix:/x: connected",
        1_000,
    );
    assert_eq!(w.status(), StaleSouthbound::default());
    assert_eq!(w.status().render(1_000), None);
    w.observe(REAL, 1_000);
    let ep = w.status().episode.unwrap();
    let why = ep.describe(4_000);
    assert!(
        why.starts_with("Southbound unix:/tmp/stale-repro/sb/sb.sock has stale data"),
        "{why}"
    );
    assert!(why.contains("for 3s"), "{why}");
    let reset = w.on(Event::Checked { connected: false }, 11_000);
    let Action::Reset {
        server,
        n: 1,
        stale_for_ms: 10_000,
    } = reset
    else {
        panic!("{reset:?}");
    };
    assert_eq!(server, "unix:/tmp/stale-repro/sb/sb.sock");
    let st = w.status();
    assert!(st
        .episode
        .as_ref()
        .unwrap()
        .describe(12_000)
        .contains("sent 1 time(s)"));
    let line = st.render(12_000).unwrap();
    assert!(
        line.contains("since 11s ago, 1 reset(s) in this episode"),
        "{line}"
    );
    w.on(Event::Checked { connected: true }, 15_000);
    let line = w.status().render(75_000).unwrap();
    assert_eq!(
        line,
        "stale Southbound: none now; 1 sb-cluster-state-reset(s) in all, last 1m04s ago"
    );
}

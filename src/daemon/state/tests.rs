use super::*;
use crate::daemon::policy::Answer;
use crate::process::backoff;
use crate::process::busy::Working;
use nix::sys::signal::Signal;

fn policy() -> Policy {
    Policy {
        backoff: backoff::Policy {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(10),
        },
        stable_after: Duration::from_secs(60),
        max_restarts: 2,
        window: Duration::from_secs(60),
        hung_after: Duration::from_secs(6),
        busy_limit: Duration::from_secs(120),
    }
}

fn slot(state: DaemonState, pid: Option<i32>) -> Slot {
    Slot {
        state,
        pid,
        ..Slot::default()
    }
}

const KILLED: ExitStatus = ExitStatus::Signaled(Signal::SIGKILL);

#[test]
fn transitions() {
    use DaemonState::*;
    let t0 = Instant::now();
    let (s, ms) = (Duration::from_secs, Duration::from_millis);
    let down = |state, pid, since| Slot {
        down_since: Some(since),
        ..slot(state, pid)
    };
    let planned = Slot {
        planned: true,
        ..slot(Running, Some(7))
    };
    let failing = Slot {
        track: Track {
            unresponsive_since: Some(t0),
            stalled_since: Some(t0),
            ..Track::default()
        },
        ..slot(Running, Some(7))
    };
    // Checked at t0 with 1 s of main-thread CPU; silent since t0 if `silent`.
    let checked = |state, silent: bool| Slot {
        track: Track {
            unresponsive_since: silent.then_some(t0),
            cpu: Working::seen(t0, s(1)),
            ..Track::default()
        },
        ..slot(state, Some(7))
    };
    let health = |answered: bool, cpu_ms| Event::Health {
        answer: if answered {
            Answer::Answered
        } else {
            Answer::Silent
        },
        cpu: Some(ms(cpu_ms)),
    };
    let not_asked = Event::Health {
        answer: Answer::NotAsked,
        cpu: None,
    };
    let exited = |pid| Event::Exited {
        pid,
        status: KILLED,
    };
    // (before, event, at, after: state and pid, action); unit 0.5 jitters 100 ms to 50 ms.
    #[rustfmt::skip]
    let rows: Vec<(Slot, Event, Instant, DaemonState, Option<i32>, Action)> = vec![
        (Slot::default(), Event::Spawned { pid: 7, restart: false }, t0, Starting, Some(7), Action::Recorded),
        (slot(Starting, Some(7)), Event::Answering { pid: 7 }, t0, Running, Some(7), Action::Recorded),
        // An older process's report changes nothing.
        (slot(Starting, Some(7)), Event::Answering { pid: 6 }, t0, Starting, Some(7), Action::Ignore),
        (slot(Running, Some(7)), exited(6), t0, Running, Some(7), Action::Ignore),
        (slot(Running, Some(7)), Event::DiedStarting { pid: 7, status: KILLED }, t0, Exited, None, Action::Recorded),
        (slot(Running, Some(7)), exited(7), t0, Restarting, None, Action::RestartAt(t0 + ms(50))),
        (slot(Restarting, None), Event::Spawned { pid: 8, restart: true }, t0, Restarting, Some(8), Action::Recorded),
        (down(Restarting, Some(8), t0), Event::Answering { pid: 8 }, t0 + s(1), Running, Some(8), Action::Recovered { down_for: Some(s(1)) }),
        (slot(Restarting, Some(8)), Event::NeverAnswered { pid: 8 }, t0, Hung, Some(8), Action::Kill(8)),
        (slot(Hung, Some(8)), exited(8), t0, Restarting, None, Action::RestartAt(t0 + ms(50))),
        // A planned exit restarts at once and is no crash.
        (planned, Event::Exited { pid: 7, status: ExitStatus::Exited(0) }, t0, Restarting, None, Action::RestartAt(t0)),
        // Health: killed as hung only after failing for `hung_after`.
        (slot(Running, Some(7)), Event::Health { answer: Answer::Silent, cpu: None }, t0, Running, Some(7), Action::Ignore),
        (failing.clone(), Event::Health { answer: Answer::Silent, cpu: None }, t0 + s(6), Hung, Some(7), Action::Kill(7)),
        // Not asked (the supervisor out of fds): never killed, the silence before forgotten.
        (failing, not_asked, t0 + s(60), Running, Some(7), Action::Ignore),
        (checked(Busy, true), not_asked, t0 + s(200), Busy, Some(7), Action::Ignore),
        // Silent while its main thread computes: busy, not hung, until the busy limit.
        (checked(Running, false), health(false, 2_900), t0 + s(2), Busy, Some(7), Action::Busy),
        (checked(Busy, true), health(false, 60_000), t0 + s(60), Busy, Some(7), Action::Ignore),
        (checked(Busy, true), health(true, 1_100), t0 + s(8), Running, Some(7), Action::NoLongerBusy { silent_for: Some(s(8)) }),
        // Its thread went idle: running again as far as anyone knows, hung_after counts.
        (checked(Busy, true), health(false, 1_000), t0 + s(8), Running, Some(7), Action::Ignore),
        (checked(Busy, true), health(false, 100_000), t0 + s(120), Hung, Some(7), Action::Kill(7)),
        // Not running (restarting): health answers are not about it.
        (slot(Restarting, Some(8)), Event::Health { answer: Answer::Silent, cpu: None }, t0 + s(60), Restarting, Some(8), Action::Ignore),
        (slot(Running, Some(7)), Event::Stopped { handed_over: false }, t0, Stopped, None, Action::Recorded),
        (slot(Running, Some(7)), Event::Stopped { handed_over: true }, t0, HandedOver, None, Action::Recorded),
        // A restart that could not be spawned counts as an exit.
        (slot(Restarting, None), Event::SpawnFailed, t0, Restarting, None, Action::RestartAt(t0 + ms(50))),
    ];
    for (i, (mut before, event, now, state, pid, action)) in rows.into_iter().enumerate() {
        let got = before.on(&policy(), event, now, 1_000, 0.5);
        assert_eq!(
            (before.state, before.pid, got),
            (state, pid, action),
            "row {i}: {event:?}"
        );
    }
}

#[test]
fn a_crash_loop_gives_up_and_leaves_the_daemon_exited() {
    let (p, t0) = (policy(), Instant::now());
    let mut s = slot(DaemonState::Running, Some(1));
    for pid in 1..=2 {
        s.pid = Some(pid);
        assert!(matches!(
            s.on(
                &p,
                Event::Exited {
                    pid,
                    status: KILLED
                },
                t0,
                0,
                0.0
            ),
            Action::RestartAt(_)
        ));
    }
    s.pid = Some(3);
    let a = s.on(
        &p,
        Event::Exited {
            pid: 3,
            status: KILLED,
        },
        t0,
        0,
        0.0,
    );
    assert_eq!(
        a,
        Action::GiveUp {
            restarts: 2,
            window: p.window
        }
    );
    assert_eq!(
        (s.state, s.pid, s.last_exit),
        (DaemonState::Exited, None, Some(KILLED))
    );
}

#[test]
fn states_serialize_as_status_shows_them() {
    for (state, name) in [
        (DaemonState::Running, "running"),
        (DaemonState::HandedOver, "handed-over"),
        (DaemonState::Hung, "hung"),
    ] {
        assert_eq!(
            serde_json::to_value(state).unwrap(),
            serde_json::json!(name)
        );
        assert_eq!(state.to_string(), name);
    }
    assert!(DaemonState::Restarting.is_up_or_coming());
    assert!(!DaemonState::Exited.is_up_or_coming());
}

/// Each way a daemon goes down is counted under its own cause, once per restart: a crash by
/// its signal or exit code, our kill of a hung or a too-long-busy one by that (not by the
/// SIGKILL it died of), a planned exit as planned.
#[test]
fn restarts_are_counted_by_cause() {
    use RestartCause::*;
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let p = policy();
    let exit = |pid, status| Event::Exited { pid, status };
    let idle = |answer| Event::Health {
        answer,
        cpu: Some(s(1)),
    };
    // (events leading to the exit, the exit's status, the cause counted)
    type Case = (Vec<(Event, Instant)>, ExitStatus, RestartCause);
    let cases: Vec<Case> = vec![
        (
            vec![],
            ExitStatus::Signaled(nix::sys::signal::Signal::SIGSEGV),
            Signal,
        ),
        (vec![], ExitStatus::Exited(3), ExitCode),
        (
            vec![(Event::PlannedExit, t0)],
            ExitStatus::Exited(0),
            Planned,
        ),
        (
            vec![
                (idle(Answer::Silent), t0),
                (idle(Answer::Silent), t0 + s(7)),
            ],
            KILLED,
            Hung,
        ),
        (
            vec![
                (idle(Answer::Silent), t0),
                (
                    Event::Health {
                        answer: Answer::Silent,
                        cpu: Some(s(5)),
                    },
                    t0 + s(5),
                ),
                (
                    Event::Health {
                        answer: Answer::Silent,
                        cpu: Some(s(125)),
                    },
                    t0 + s(125),
                ),
            ],
            KILLED,
            BusyLimit,
        ),
    ];
    for (i, (events, status, cause)) in cases.into_iter().enumerate() {
        let mut slot = slot(DaemonState::Running, Some(7));
        slot.track.cpu = Working::seen(t0, s(1));
        let mut last = t0;
        for (e, at) in events {
            slot.on(&p, e, at, 0, 0.5);
            last = at;
        }
        let a = slot.on(&p, exit(7, status), last, 0, 0.5);
        assert!(matches!(a, Action::RestartAt(_)), "case {i}: {a:?}");
        let want: std::collections::BTreeMap<_, _> = [(cause, 1)].into();
        assert_eq!(slot.causes, want, "case {i}");
        // The next process starts clean: its own crash is not counted as our kill.
        slot.on(
            &p,
            Event::Spawned {
                pid: 8,
                restart: true,
            },
            last,
            0,
            0.5,
        );
        slot.on(&p, Event::Answering { pid: 8 }, last, 0, 0.5);
        slot.on(&p, exit(8, ExitStatus::Exited(1)), last + s(200), 0, 0.5);
        assert_eq!(
            slot.causes.get(&ExitCode).copied().unwrap_or(0),
            1 + u32::from(cause == ExitCode),
            "case {i}"
        );
    }
}

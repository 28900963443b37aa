//! Table-driven tests of the restart policy: one row per (state, event, now) and the decision.
use super::*;
use crate::process::backoff;

fn policy() -> Policy {
    Policy {
        backoff: backoff::Policy {
            base: Duration::from_millis(50),
            cap: Duration::from_secs(10),
        },
        stable_after: Duration::from_secs(60),
        max_restarts: 5,
        window: Duration::from_secs(60),
        hung_after: Duration::from_secs(6),
        busy_limit: Duration::from_secs(120),
    }
}

const KILLED: ExitStatus = ExitStatus::Signaled(nix::sys::signal::Signal::SIGKILL);

/// One event of a table row: an exit (with its jitter unit) or the restarted daemon
/// answering again.
#[derive(Clone, Copy)]
enum Ev {
    Exit(f64),
    Ready,
}

/// Runs `(ms after t0, event, decision expected from an exit)` rows through one track.
fn run(p: &Policy, rows: &[(u64, Ev, Option<Decision>)]) -> Track {
    let t0 = Instant::now();
    let mut t = Track::default();
    for (i, (ms, ev, want)) in rows.iter().enumerate() {
        let now = t0 + Duration::from_millis(*ms);
        match ev {
            Ev::Exit(unit) => {
                assert_eq!(Some(t.on_exit(p, KILLED, now, *unit)), *want, "row {i}")
            }
            Ev::Ready => t.on_ready(now),
        }
    }
    t
}

fn restart_ms(ms: u64) -> Option<Decision> {
    Some(Decision::RestartIn(Duration::from_millis(ms)))
}

#[test]
fn restarts_that_never_answer_back_off_then_give_up_within_the_window() {
    let p = policy();
    let give_up = Some(Decision::GiveUp {
        restarts: 5,
        window: p.window,
    });
    let t = run(
        &p,
        &[
            (
                0,
                Ev::Exit(0.999),
                Some(Decision::RestartIn(Duration::from_micros(49_950))),
            ),
            (1000, Ev::Exit(0.5), restart_ms(50)),
            (2000, Ev::Exit(0.5), restart_ms(100)),
            (3000, Ev::Exit(0.0), restart_ms(0)),
            (4000, Ev::Exit(1.0), restart_ms(800)),
            (5000, Ev::Exit(0.5), give_up),
        ],
    );
    assert_eq!(t.restarts, 5);
    assert_eq!(t.last_exit, Some(KILLED));
    assert_eq!(t.exits, vec![KILLED; EXITS_KEPT]);
}

#[test]
fn answering_again_resets_the_backoff_but_not_crash_loop_detection() {
    let p = policy();
    let give_up = Some(Decision::GiveUp {
        restarts: 5,
        window: p.window,
    });
    run(
        &p,
        &[
            // Killed from outside every 1.5 s, back within 0.3 s each time: every restart
            // comes from the shortest ceiling (it used to climb
            // to a 10 s ceiling, so a node killed often was down for seconds each time).
            (0, Ev::Exit(1.0), restart_ms(50)),
            (300, Ev::Ready, None),
            (1500, Ev::Exit(1.0), restart_ms(50)),
            (1800, Ev::Ready, None),
            (3000, Ev::Exit(1.0), restart_ms(50)),
            // Never answers after this one: the ceiling doubles again.
            (3200, Ev::Exit(1.0), restart_ms(100)),
            (3500, Ev::Exit(1.0), restart_ms(200)),
            (3900, Ev::Ready, None),
            // The sixth exit within 60 s is a crash loop, answering or not.
            (4500, Ev::Exit(1.0), give_up),
        ],
    );
}

#[test]
fn old_restarts_leave_the_window() {
    let mut p = policy();
    p.max_restarts = 3;
    run(
        &p,
        &[
            (0, Ev::Exit(1.0), restart_ms(50)),
            (1000, Ev::Exit(1.0), restart_ms(100)),
            (2000, Ev::Exit(1.0), restart_ms(200)),
            // 60 s after the first restart it has left the window: a fourth is allowed,
            // and the backoff, never reset by an answer, keeps growing.
            (60_000, Ev::Exit(1.0), restart_ms(400)),
            (60_500, Ev::Ready, None),
            (61_000, Ev::Exit(1.0), restart_ms(50)),
            (
                61_500,
                Ev::Exit(1.0),
                Some(Decision::GiveUp {
                    restarts: 3,
                    window: p.window,
                }),
            ),
        ],
    );
}

/// Runs `(s after t0, answer, main-thread CPU ms, judgement expected)` rows through one
/// track (`true`/`false`: answered or silent).
fn health(p: &Policy, rows: &[(u64, impl Into<Answer> + Copy, Option<u64>, Judgement)]) {
    let t0 = Instant::now();
    let mut t = Track::default();
    for (i, (s, answer, cpu, want)) in rows.iter().enumerate() {
        let cpu = cpu.map(Duration::from_millis);
        let got = t.on_health(p, (*answer).into(), cpu, t0 + Duration::from_secs(*s));
        assert_eq!(got, *want, "row {i}");
    }
}

impl From<bool> for Answer {
    fn from(answered: bool) -> Answer {
        if answered {
            Answer::Answered
        } else {
            Answer::Silent
        }
    }
}

#[test]
fn a_check_that_could_not_ask_never_counts_toward_hung() {
    use Answer::{NotAsked, Silent};
    use Judgement::{Hung, Stalled};
    health(
        &policy(),
        &[
            (0, Silent, Some(100), Stalled),
            (5, Silent, Some(100), Stalled),
            // Out of fds for longer than hung_after: never hung, and what came before is
            // forgotten.
            (6, NotAsked, None, Judgement::NotAsked),
            (20, NotAsked, None, Judgement::NotAsked),
            (21, Silent, Some(100), Stalled),
            (26, Silent, Some(100), Stalled),
            // Real questions unanswered for the whole hung_after: hung.
            (27, Silent, Some(100), Hung),
        ],
    );
}

fn busy(s: u64) -> Judgement {
    Judgement::Busy {
        silent_for: Duration::from_secs(s),
    }
}

#[test]
fn an_idle_silent_daemon_is_hung_after_hung_after() {
    use Judgement::*;
    health(
        &policy(),
        &[
            (0, false, Some(100), Stalled),
            (4, false, Some(100), Stalled),
            // One good answer resets the clock.
            (5, true, Some(100), Answers),
            (6, false, Some(100), Stalled),
            (11, false, Some(110), Stalled),
            (12, false, Some(110), Hung),
        ],
    );
    // Without CPU readings (a pid we cannot read), as before: silence alone counts.
    health(
        &policy(),
        &[
            (0, false, None, Stalled),
            (5, false, None, Stalled),
            (6, false, None, Hung),
        ],
    );
}

#[test]
fn a_busy_silent_daemon_is_left_to_compute_until_busy_limit() {
    use Judgement::*;
    health(
        &policy(),
        &[
            (0, true, Some(0), Answers),
            // Silent while its main thread ran 1.9 s of every 2: busy, however long it
            // takes below busy_limit (the 6 s of hung_after would have killed it here).
            (2, false, Some(1_900), busy(0)),
            (4, false, Some(3_800), busy(2)),
            (10, false, Some(9_500), busy(8)),
            // Its thread stops working: from then on hung_after applies.
            (12, false, Some(9_500), Stalled),
            (16, false, Some(9_600), Stalled),
            (18, false, Some(9_600), Hung),
        ],
    );
    health(
        &policy(),
        &[
            (0, true, Some(0), Answers),
            (2, false, Some(1_000), busy(0)),
            (3, true, Some(1_500), Answers),
            // 10 % of the wall time is the least that counts as work.
            (5, false, Some(1_700), busy(0)),
            (7, false, Some(1_899), Stalled),
            (119, false, Some(100_000), busy(114)),
            (121, false, Some(102_000), busy(116)),
            // Silent for busy_limit: a computation that never ends is a hang too.
            (125, false, Some(106_000), Hung),
        ],
    );
}

//! Waiting, always on a real condition and under a deadline, panicking with what did not happen
//! (and the supervisor's log): [`wait_for`] for any condition, and a [`Node`]'s waits for
//! readiness, a start stage, a new owner after a takeover, and its exit.

use std::process::ExitStatus;
use std::time::{Duration, Instant};

use super::Node;

/// Waits for `cond` under a deadline, naming what did not happen.
pub fn wait_for(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < within, "{what} not within {within:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl Node {
    /// Waits until `probe readiness` passes; panics with the last reason and the log otherwise.
    pub fn wait_ready(&mut self, within: Duration) -> Duration {
        let t0 = Instant::now();
        let mut last = String::new();
        while t0.elapsed() < within {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("supervisor exited early with {st}; log:\n{}", self.log());
            }
            let (code, line) = self.probe("readiness");
            if code == 0 {
                return t0.elapsed();
            }
            last = line;
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("not ready within {within:?}: {last}; log:\n{}", self.log());
    }

    /// Waits for the published stage to become `stage`.
    pub fn wait_stage(&mut self, stage: &str, within: Duration) {
        let t0 = Instant::now();
        while t0.elapsed() < within {
            if self.status().is_some_and(|s| s["stage"] == stage) {
                return;
            }
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "supervisor exited with {st} before stage {stage}; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!(
            "stage {stage} not reached in {within:?}; log:\n{}",
            self.log()
        );
    }

    /// Waits until the supervisor answering on this node's control socket is `pid` with the
    /// node ready (after a takeover or a take-back); panics, with both logs, if this node's or
    /// `other`'s supervisor exits first or `within` passes. `each` runs every round.
    pub fn wait_owner(
        &mut self,
        pid: i64,
        within: Duration,
        mut other: Option<&mut Node>,
        mut each: impl FnMut(),
    ) -> Duration {
        let t0 = Instant::now();
        loop {
            each();
            let owner = self
                .status()
                .is_some_and(|s| s["pid"] == pid && s["stage"] == "ready");
            if owner && self.probe("readiness").0 == 0 {
                return t0.elapsed();
            }
            let others = other.as_deref().map(Node::log).unwrap_or_default();
            for n in std::iter::once(&mut *self).chain(other.as_deref_mut()) {
                if let Some(st) = n.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                    panic!(
                        "{st} before pid {pid} ran the node:
{}
other:
{others}",
                        n.log()
                    );
                }
            }
            assert!(
                t0.elapsed() < within,
                "pid {pid} does not run the node after {within:?}: {:?}
{}
other:
{others}",
                self.status(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the supervisor to exit; panics after `within`.
    pub fn wait_exit(&mut self, within: Duration) -> (ExitStatus, Duration) {
        let t0 = Instant::now();
        let child = self.child.as_mut().unwrap();
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                self.child = None;
                return (st, t0.elapsed());
            }
            assert!(
                t0.elapsed() < within,
                "supervisor still running after {within:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

//! The control socket's accept loop and connection table: probes keep getting answers while
//! any number of idle, slow or streaming clients hold or churn connections, and a full fd
//! table never makes the loop spin (before, 64 idle clients starved the probes and EMFILE made
//! the loop spin; then 300 reconnecting clients evicted probes before their request was read).
//!
//! Invariants: at most `cap` connections are open at once (`cap` comes from the fd headroom:
//! [`crate::process::fds::connection_cap`]). Each connection is in one `Phase`: `New` until
//! its handler has read once, `Waiting` once a read found no complete request (an idle, slow
//! or whitespace-streaming client), `Busy` once its request is complete. Only a `Waiting`
//! connection is ever closed to make room — the oldest first — so a connection is never closed
//! before its handler had a look at it (a probe writes its request as it connects: its first
//! read completes it), and one being answered (a handover can take a while) is never closed.
//! A closed connection counts toward the cap until its task is dropped, and the loop makes
//! room before it accepts, so the fds held never exceed the cap (aborted tasks are dropped at
//! the runtime's next turn: accepting meanwhile let a fast churn pile up closed-but-not-yet-
//! released sockets up to the fd limit). At the cap with no `Waiting` connection, the loop
//! accepts nothing more until one leaves or starts waiting: newcomers wait in the listen
//! backlog instead of being closed. An accept
//! that fails because the process or system is out of file descriptors (matched by `Errno`)
//! closes the oldest waiting connection to free one, then waits a jittered backoff (5 ms
//! doubling to 1 s, reset by the next successful accept) instead of retrying at once: the
//! refused connection stays in the backlog, so an immediate retry fails again forever. Memory
//! is bounded by the cap times one connection's buffers (a 4 KiB read buffer and a request of
//! at most `MAX_REQUEST`).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use crate::process::backoff;
pub use crate::process::fds::out_of_fds;

/// Accept retry delays while file descriptors are exhausted.
const ACCEPT_BACKOFF: backoff::Policy = backoff::Policy {
    base: Duration::from_millis(5),
    cap: Duration::from_secs(1),
};

/// Where a connection is in its one exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Phase {
    /// Accepted; its handler has not read yet.
    New = 0,
    /// A read found no complete request: idle, slow or streaming junk. May be closed.
    Waiting = 1,
    /// Its request is complete: being answered.
    Busy = 2,
    /// Closed for a newcomer; its fd is released once its task is dropped (the runtime does
    /// that at its next turn), and until then it still counts toward the cap.
    Closing = 3,
}

impl Phase {
    fn of(a: &AtomicU8) -> Phase {
        match a.load(Ordering::Acquire) {
            0 => Phase::New,
            1 => Phase::Waiting,
            2 => Phase::Busy,
            _ => Phase::Closing,
        }
    }
}

/// A connection's handle for its handler: says how far its exchange got.
pub struct Conn {
    phase: Arc<AtomicU8>,
    room: Arc<Notify>,
}

impl Conn {
    /// A read found no complete request: from now on this connection may be closed for a
    /// newcomer (the first such call only).
    pub fn waiting(&self) {
        let (new, waiting) = (Phase::New as u8, Phase::Waiting as u8);
        let cas = self
            .phase
            .compare_exchange(new, waiting, Ordering::AcqRel, Ordering::Acquire);
        if cas.is_ok() {
            self.room.notify_one();
        }
    }

    /// The request is complete: never closed for a newcomer from now on.
    pub fn busy(&self) {
        // Not once it is closing: its task is being dropped.
        let closing = Phase::Closing as u8;
        let _ = (self.phase).fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| {
            (p != closing).then_some(Phase::Busy as u8)
        });
    }
}

/// One open connection.
struct Entry {
    phase: Arc<AtomicU8>,
    abort: Option<AbortHandle>,
}

/// Open connections by accept order (ids only grow, so the first entry is the oldest).
#[derive(Default)]
struct Table {
    next: u64,
    open: BTreeMap<u64, Entry>,
}

/// The oldest waiting connection, if any: the one to close for a newcomer.
fn victim<'a>(open: impl IntoIterator<Item = (&'a u64, Phase)>) -> Option<u64> {
    (open.into_iter())
        .find(|(_, phase)| *phase == Phase::Waiting)
        .map(|(id, _)| *id)
}

type Shared = Arc<Mutex<Table>>;

/// What the table says about a newcomer now.
fn room(table: &Shared, cap: usize) -> Room {
    let Ok(t) = table.lock() else {
        return Room::Full;
    };
    if t.open.len() < cap {
        return Room::Free;
    }
    let phases = t.open.iter().map(|(id, e)| (id, Phase::of(&e.phase)));
    match victim(phases) {
        Some(_) => Room::ByClosing,
        None => Room::Full,
    }
}

#[derive(PartialEq, Eq)]
enum Room {
    Free,
    /// Full, with a waiting connection to close.
    ByClosing,
    /// Full of connections that may not be closed.
    Full,
}

/// Closes the oldest waiting connection; false when there is none. It stays in the table,
/// closing, until its task is dropped and its fd released.
fn evict(table: &Shared) -> bool {
    let Ok(t) = table.lock() else {
        return false;
    };
    let phases = t.open.iter().map(|(id, e)| (id, Phase::of(&e.phase)));
    let Some(e) = victim(phases).and_then(|id| t.open.get(&id)) else {
        return false;
    };
    e.phase.store(Phase::Closing as u8, Ordering::Release);
    // Aborting drops the task, and with it the stream: the client sees the connection closed.
    if let Some(a) = &e.abort {
        a.abort();
    }
    true
}

/// Removes its connection from the table when the connection's task ends, however it ends,
/// and tells the accept loop there is room.
struct Leave(Shared, u64, Arc<Notify>);

impl Drop for Leave {
    fn drop(&mut self) {
        if let Ok(mut t) = self.0.lock() {
            t.open.remove(&self.1);
        }
        self.2.notify_one();
    }
}

/// Accepts on `listener` forever, at most `cap` connections at once, serving each with
/// `serve(stream, conn)`; `serve` must call [`Conn::waiting`] when a read finds no complete
/// request and [`Conn::busy`] once it has one.
pub async fn accept_loop<F, Fut>(listener: UnixListener, cap: usize, serve: F)
where
    F: Fn(UnixStream, Conn) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let table: Shared = Arc::default();
    let notify = Arc::new(Notify::new());
    let mut attempt = 0u32;
    loop {
        // Room first, so the fds in use never exceed the cap: at the cap, close the oldest
        // waiting connection and wait until its task has gone; with nobody to close, leave
        // newcomers in the backlog until someone leaves or starts waiting.
        loop {
            match room(&table, cap) {
                Room::Free => break,
                Room::ByClosing => {
                    evict(&table);
                }
                Room::Full => {}
            }
            notify.notified().await;
        }
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                if out_of_fds(&e) {
                    if attempt == 0 {
                        tracing::warn!("control socket: cannot accept: {e}; closing the oldest waiting connection and backing off");
                    }
                    evict(&table);
                } else {
                    tracing::debug!("control socket: accept: {e}");
                }
                // Any failed accept waits: a persistent error must not turn into a busy loop.
                tokio::time::sleep(ACCEPT_BACKOFF.delay_random(attempt)).await;
                attempt = attempt.saturating_add(1);
                continue;
            }
        };
        attempt = 0;
        enter(&table, &notify, stream, &serve);
    }
}

/// Enters `stream` in the table and spawns its handler.
fn enter<F, Fut>(table: &Shared, notify: &Arc<Notify>, stream: UnixStream, serve: &F)
where
    F: Fn(UnixStream, Conn) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let phase = Arc::new(AtomicU8::new(Phase::New as u8));
    let Ok(mut t) = table.lock() else {
        return;
    };
    let id = t.next;
    t.next += 1;
    // Held across the spawn, so the task cannot leave the table before it is entered.
    t.open.insert(
        id,
        Entry {
            phase: phase.clone(),
            abort: None,
        },
    );
    let leave = Leave(table.clone(), id, notify.clone());
    let fut = serve(
        stream,
        Conn {
            phase,
            room: notify.clone(),
        },
    );
    let task = tokio::spawn(async move {
        let _leave = leave;
        fut.await;
    });
    if let Some(e) = t.open.get_mut(&id) {
        e.abort = Some(task.abort_handle());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_waiting_connection_is_the_victim() {
        use Phase::*;
        /// Open connections as (id, phase).
        type Open<'a> = &'a [(u64, Phase)];
        // (open connections, expected victim)
        let table: &[(Open, Option<u64>)] = &[
            (&[], None),
            (&[(3, Waiting), (4, Waiting)], Some(3)),
            (&[(3, Busy), (4, Waiting), (7, Waiting)], Some(4)),
            (&[(3, Busy), (4, Busy)], None),
            // Never one its handler has not read yet: a probe whose request is on its way.
            (&[(3, New), (4, New), (5, Busy)], None),
            (&[(3, New), (4, Busy), (5, Waiting)], Some(5)),
        ];
        for (open, want) in table {
            let got = victim(open.iter().map(|(id, p)| (id, *p)));
            assert_eq!(got, *want, "{open:?}");
        }
    }

    #[test]
    fn a_connection_waits_once_and_never_after_it_is_busy() {
        let conn = Conn {
            phase: Arc::new(AtomicU8::new(Phase::New as u8)),
            room: Arc::new(Notify::new()),
        };
        conn.waiting();
        assert_eq!(Phase::of(&conn.phase), Phase::Waiting);
        conn.busy();
        conn.waiting();
        assert_eq!(Phase::of(&conn.phase), Phase::Busy);
        // Closing for a newcomer: its handler can no longer make it busy.
        conn.phase.store(Phase::Closing as u8, Ordering::Release);
        conn.busy();
        assert_eq!(Phase::of(&conn.phase), Phase::Closing);
    }
}

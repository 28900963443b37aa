//! The control socket's accept loop and connection table: probes keep getting answers while
//! any number of idle or slow clients hold connections, and a full fd table never makes the
//! loop spin (before, 64 idle clients starved the probes and EMFILE made the loop spin).
//!
//! Invariants: at most `cap` connections are open at once; a new one over the cap evicts the
//! oldest connection that has not yet sent a complete request (an idle or slow client), so
//! the newest client — a probe writes its request right after connecting — is served, and a
//! connection whose request is being answered (a handover can take a while) is never evicted;
//! only when every open connection is busy is the newcomer closed. An accept that fails
//! because the process or system is out of file descriptors (matched by `Errno`) evicts the
//! oldest idle connection to free one, then waits a jittered backoff (5 ms doubling to 1 s,
//! reset by the next successful accept) instead of retrying at once: the refused connection
//! stays in the backlog, so an immediate retry fails again forever. Memory is bounded by the
//! cap times one connection's buffers (a 4 KiB read buffer and a request of at most
//! `MAX_REQUEST`).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::errno::Errno;
use tokio::net::{UnixListener, UnixStream};
use tokio::task::AbortHandle;

use crate::process::backoff;

/// Accept retry delays while file descriptors are exhausted.
const ACCEPT_BACKOFF: backoff::Policy = backoff::Policy {
    base: Duration::from_millis(5),
    cap: Duration::from_secs(1),
};

/// One open connection: set `busy` once its request is complete.
struct Entry {
    busy: Arc<AtomicBool>,
    abort: Option<AbortHandle>,
}

/// Open connections by accept order (ids only grow, so the first entry is the oldest).
#[derive(Default)]
struct Table {
    next: u64,
    open: BTreeMap<u64, Entry>,
}

/// The oldest connection that is not busy, if any: the one to close for a newcomer.
fn victim<'a>(open: impl IntoIterator<Item = (&'a u64, bool)>) -> Option<u64> {
    open.into_iter().find(|(_, busy)| !busy).map(|(id, _)| *id)
}

/// True when an accept failed for want of file descriptors (or kernel memory for one):
/// retrying at once cannot succeed.
pub fn out_of_fds(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error().map(Errno::from_raw),
        Some(Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM)
    )
}

type Shared = Arc<Mutex<Table>>;

/// Closes the oldest idle connection; false when every open one is busy.
fn evict(table: &Shared) -> bool {
    let Ok(mut t) = table.lock() else {
        return false;
    };
    let Some(id) = victim(
        t.open
            .iter()
            .map(|(id, e)| (id, e.busy.load(Ordering::Relaxed))),
    ) else {
        return false;
    };
    if let Some(e) = t.open.remove(&id) {
        // Aborting drops the task's stream: the client sees the connection closed.
        if let Some(a) = e.abort {
            a.abort();
        }
    }
    true
}

/// Removes its connection from the table when the connection's task ends, however it ends.
struct Leave(Shared, u64);

impl Drop for Leave {
    fn drop(&mut self) {
        if let Ok(mut t) = self.0.lock() {
            t.open.remove(&self.1);
        }
    }
}

/// Accepts on `listener` forever, serving each connection with `serve(stream, busy)`; `serve`
/// must set `busy` once it has a complete request.
pub async fn accept_loop<F, Fut>(listener: UnixListener, cap: usize, serve: F)
where
    F: Fn(UnixStream, Arc<AtomicBool>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let table: Shared = Arc::default();
    let mut attempt = 0u32;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                if out_of_fds(&e) {
                    if attempt == 0 {
                        tracing::warn!("control socket: cannot accept: {e}; closing the oldest idle connection and backing off");
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
        let full = table.lock().map(|t| t.open.len() >= cap).unwrap_or(true);
        if full && !evict(&table) {
            continue; // Every connection is being answered: close the newcomer.
        }
        let busy = Arc::new(AtomicBool::new(false));
        let Ok(mut t) = table.lock() else {
            continue;
        };
        let id = t.next;
        t.next += 1;
        // Held across the spawn, so the task cannot leave the table before it is entered.
        t.open.insert(
            id,
            Entry {
                busy: busy.clone(),
                abort: None,
            },
        );
        let leave = Leave(table.clone(), id);
        let fut = serve(stream, busy);
        let task = tokio::spawn(async move {
            let _leave = leave;
            fut.await;
        });
        if let Some(e) = t.open.get_mut(&id) {
            e.abort = Some(task.abort_handle());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_idle_connection_is_the_victim() {
        /// Open connections as (id, busy).
        type Open<'a> = &'a [(u64, bool)];
        // (open connections, expected victim)
        let table: &[(Open, Option<u64>)] = &[
            (&[], None),
            (&[(3, false), (4, false)], Some(3)),
            (&[(3, true), (4, false), (7, false)], Some(4)),
            (&[(3, true), (4, true)], None),
        ];
        for (open, want) in table {
            let got = victim(open.iter().map(|(id, b)| (id, *b)));
            assert_eq!(got, *want, "{open:?}");
        }
    }

    #[test]
    fn fd_exhaustion_is_told_by_errno() {
        let table = [
            (Errno::EMFILE, true),
            (Errno::ENFILE, true),
            (Errno::ENOBUFS, true),
            (Errno::ENOMEM, true),
            (Errno::ECONNABORTED, false),
            (Errno::EINTR, false),
        ];
        for (errno, want) in table {
            let e = std::io::Error::from_raw_os_error(errno as i32);
            assert_eq!(out_of_fds(&e), want, "{errno}");
        }
    }
}

//! Our log's writer: a bounded queue and one thread that writes it out, so logging never blocks
//! supervision. Before, every line was written on the runtime's only thread: with stderr on a
//! pipe nobody read, the supervisor blocked after ~58 KB, probes timed out, SIGTERM was not
//! acted on, and vswitchd blocked on its own stderr, which we no longer drained.
//!
//! Invariants: a producer never waits (it hands its line over with `try_send`); a line that
//! does not fit — more than [`MAX_LINES`] lines or [`MAX_BYTES`] bytes queued — is dropped and
//! counted ([`Queue::dropped`]). Only the writer thread writes to the output, and it alone may
//! block there. Once it has caught up (or a second after its last notice, if it never does),
//! it has the drops since its last notice reported as one more line through `notice` — "N log
//! lines dropped". [`Queue::flush`] waits for the queue to drain, for at most its bound, so an
//! exit can never hang on a pipe nobody reads. We use no crate for this: tracing-appender's
//! `non_blocking` does the same, but its guard prints to stdout when the queue is full at
//! exit (which blocks on the very pipe we must not block on) and it pulls in the `time` crate,
//! whose current releases need a newer Rust than ours.

use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Lines queued at most: a few seconds of a busy node's output.
pub const MAX_LINES: usize = 4096;
/// Bytes queued at most (a daemon's line may be 16 KiB: lines alone do not bound memory).
pub const MAX_BYTES: usize = 4 << 20;
/// A writer that never catches up still reports its drops this often.
const NOTICE_EVERY: Duration = Duration::from_secs(1);

/// Says how many lines were dropped since the last notice (as a log line of its own).
pub type Notice = Box<dyn Fn(u64) + Send>;

struct Inner {
    tx: SyncSender<Vec<u8>>,
    dropped: AtomicU64,
    queued_bytes: AtomicUsize,
    max_bytes: usize,
    /// Lines handed over and not yet written out.
    pending: Mutex<usize>,
    drained: Condvar,
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, usize> {
        // A plain counter: a panic elsewhere cannot leave it inconsistent.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One line is out (written, or failed to write): wakes a flush once none is left.
    fn done(&self, bytes: usize) {
        self.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
        let mut p = self.lock();
        *p = p.saturating_sub(1);
        if *p == 0 {
            self.drained.notify_all();
        }
    }
}

/// The queue's producer side; clones share it.
#[derive(Clone)]
pub struct Queue {
    inner: Arc<Inner>,
}

impl Queue {
    /// Starts the writer thread on `out`, with room for `max_lines` lines and `max_bytes`.
    pub fn start(
        out: impl Write + Send + 'static,
        max_lines: usize,
        max_bytes: usize,
        notice: Notice,
    ) -> std::io::Result<Queue> {
        let (tx, rx) = sync_channel(max_lines);
        let inner = Arc::new(Inner {
            tx,
            dropped: AtomicU64::new(0),
            queued_bytes: AtomicUsize::new(0),
            max_bytes,
            pending: Mutex::new(0),
            drained: Condvar::new(),
        });
        let writer = inner.clone();
        std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || write_out(&writer, rx, out, notice))?;
        Ok(Queue { inner })
    }

    /// Hands `line` to the writer, or drops and counts it when the queue is full. Never waits.
    pub fn push(&self, line: Vec<u8>) {
        let inner = &self.inner;
        let len = line.len();
        let before = inner.queued_bytes.fetch_add(len, Ordering::AcqRel);
        if before.saturating_add(len) > inner.max_bytes {
            inner.queued_bytes.fetch_sub(len, Ordering::AcqRel);
            inner.dropped.fetch_add(1, Ordering::AcqRel);
            return;
        }
        // Counted before it is sent, so the writer's `done` can never come first.
        *inner.lock() += 1;
        match inner.tx.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                inner.dropped.fetch_add(1, Ordering::AcqRel);
                inner.done(len);
            }
        }
    }

    /// Lines dropped so far.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Acquire)
    }

    /// Waits until every queued line is written, for at most `bound`; false if some are not.
    pub fn flush(&self, bound: Duration) -> bool {
        let p = self.inner.lock();
        let (p, _) = (self.inner.drained)
            .wait_timeout_while(p, bound, |n| *n > 0)
            .unwrap_or_else(|e| e.into_inner());
        *p == 0
    }
}

/// One event being formatted: handed to the queue whole when tracing is done with it.
pub struct Line<'a> {
    queue: &'a Queue,
    buf: Vec<u8>,
}

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line<'_> {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            self.queue.push(std::mem::take(&mut self.buf));
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Queue {
    type Writer = Line<'a>;
    fn make_writer(&'a self) -> Line<'a> {
        Line {
            queue: self,
            buf: Vec::new(),
        }
    }
}

/// The writer thread: writes each line as it comes (blocking only itself), and reports drops
/// when it has caught up, or every [`NOTICE_EVERY`] if it never does.
fn write_out(inner: &Inner, rx: Receiver<Vec<u8>>, mut out: impl Write, notice: Notice) {
    let (mut reported, mut noticed_at) = (0u64, Instant::now());
    loop {
        // Idle waits are long: nothing to do until a line comes (the timeout only bounds
        // how long a drop that came with no line after it goes unreported).
        let line = match rx.recv_timeout(NOTICE_EVERY) {
            Ok(l) => l,
            Err(RecvTimeoutError::Timeout) => {
                reported = report(inner, reported, &notice);
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        };
        // A reader that went away (EPIPE) or a full disk: nothing better to do than go on.
        let _ = out.write_all(&line).and_then(|_| out.flush());
        let caught_up = *inner.lock() == 1;
        if caught_up || noticed_at.elapsed() >= NOTICE_EVERY {
            // Before this line counts as done, so a flush also waits for the notice.
            reported = report(inner, reported, &notice);
            noticed_at = Instant::now();
        }
        inner.done(line.len());
    }
}

/// Has the drops since `reported` told; returns the new total reported.
fn report(inner: &Inner, reported: u64, notice: &Notice) -> u64 {
    let dropped = inner.dropped.load(Ordering::Acquire);
    if dropped > reported {
        notice(dropped - reported);
    }
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// An output that blocks every write until `open` is set, then keeps what it is given.
    #[derive(Clone, Default)]
    struct Gate {
        open: Arc<(Mutex<bool>, Condvar)>,
        got: Arc<Mutex<Vec<u8>>>,
    }

    impl Gate {
        fn open(&self) {
            *self.open.0.lock().unwrap() = true;
            self.open.1.notify_all();
        }
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.got.lock().unwrap()).into_owned()
        }
    }

    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let g = self.open.0.lock().unwrap();
            drop(self.open.1.wait_while(g, |open| !*open).unwrap());
            self.got.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A queue on `gate` whose notices go back into it, as the real one's do through tracing.
    fn queue(gate: &Gate, lines: usize, bytes: usize) -> (Queue, mpsc::Receiver<u64>) {
        let (tx, rx) = mpsc::channel();
        let slot: Arc<Mutex<Option<Queue>>> = Arc::default();
        let back = slot.clone();
        let notice: Notice = Box::new(move |n| {
            let _ = tx.send(n);
            if let Some(q) = back.lock().unwrap().as_ref() {
                q.push(format!("{n} log lines dropped\n").into_bytes());
            }
        });
        let q = Queue::start(gate.clone(), lines, bytes, notice).unwrap();
        *slot.lock().unwrap() = Some(q.clone());
        (q, rx)
    }

    #[test]
    fn lines_are_written_in_order_and_flushed() {
        let gate = Gate::default();
        gate.open();
        let (q, notices) = queue(&gate, 16, 1 << 20);
        for i in 0..10 {
            q.push(format!("line {i}\n").into_bytes());
        }
        assert!(q.flush(Duration::from_secs(5)));
        let want: String = (0..10).map(|i| format!("line {i}\n")).collect();
        assert_eq!(gate.text(), want);
        assert_eq!(q.dropped(), 0);
        assert!(notices.try_recv().is_err());
    }

    #[test]
    fn a_blocked_output_never_blocks_the_producer_and_drops_are_counted_then_told() {
        let gate = Gate::default();
        let (q, notices) = queue(&gate, 8, 1 << 20);
        let t0 = Instant::now();
        for i in 0..100 {
            q.push(format!("line {i}\n").into_bytes());
        }
        assert!(t0.elapsed() < Duration::from_secs(1), "the producer waited");
        // The writer holds one line (blocked writing it), the queue 8: the rest are dropped.
        let dropped = q.dropped();
        assert!((91..=92).contains(&dropped), "{dropped}");
        // Bounded: a flush gives up while the output stays blocked.
        let t0 = Instant::now();
        assert!(!q.flush(Duration::from_millis(200)));
        assert!(t0.elapsed() < Duration::from_secs(2));
        gate.open();
        assert!(q.flush(Duration::from_secs(5)));
        assert_eq!(notices.recv_timeout(Duration::from_secs(5)), Ok(dropped));
        let text = gate.text();
        let notice = format!("{dropped} log lines dropped");
        assert_eq!(text.lines().filter(|l| *l == notice).count(), 1, "{text}");
        assert_eq!(text.lines().count() as u64, 100 - dropped + 1, "{text}");
    }

    #[test]
    fn bytes_bound_the_queue_too() {
        let gate = Gate::default();
        let (q, _notices) = queue(&gate, 1000, 100);
        for _ in 0..10 {
            q.push(vec![b'x'; 40]);
        }
        // Two fit (80 of 100 bytes, the one being written still counted): eight dropped.
        assert_eq!(q.dropped(), 8);
        gate.open();
        assert!(q.flush(Duration::from_secs(5)));
    }
}

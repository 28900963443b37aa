//! Logging: our own events through tracing (text or JSON on stderr), and each daemon's
//! stdout/stderr re-emitted line by line, tagged with the daemon's name and at the level OVS
//! wrote in the line.
//!
//! Invariants: a daemon line is bounded (a line without a newline is cut at [`MAX_LINE`]
//! bytes), never parsed beyond its level field, and invalid UTF-8 is replaced, not fatal. The
//! daemons keep their own log files too (`--log-file`), so nothing depends on this relay.
//! Logging never blocks: lines go through a bounded queue to a writer thread of their own
//! (`queue.rs`); when stderr is not read fast enough (or at all) lines are dropped and counted
//! ([`dropped`], shown in `status`), never waited for, so the daemons' pipes keep being
//! drained and supervision goes on. [`flush`] at exit waits for the queue under a bound.

mod queue;

use std::io::IsTerminal;
use std::os::fd::OwnedFd;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;
use queue::Queue;

/// The process's log queue, once [`init`] started it.
static QUEUE: OnceLock<Queue> = OnceLock::new();

/// Our log's writer: the queue to stderr, or stderr itself if its thread cannot start.
fn writer() -> BoxMakeWriter {
    if let Some(q) = QUEUE.get() {
        return BoxMakeWriter::new(q.clone());
    }
    let notice: queue::Notice = Box::new(|n| {
        tracing::warn!(log_lines_dropped = n, "{n} log lines dropped");
    });
    match Queue::start(
        std::io::stderr(),
        queue::MAX_LINES,
        queue::MAX_BYTES,
        notice,
    ) {
        Ok(q) => BoxMakeWriter::new(QUEUE.get_or_init(|| q).clone()),
        Err(e) => {
            eprintln!("ovs-ovn-supervisor: cannot start the log writer thread ({e}); logging to stderr directly");
            BoxMakeWriter::new(std::io::stderr)
        }
    }
}

/// Log lines dropped so far because stderr was not read fast enough.
pub fn dropped() -> u64 {
    QUEUE.get().map_or(0, Queue::dropped)
}

/// Waits, for at most `bound`, until every queued line is written (at exit).
pub fn flush(bound: Duration) {
    if let Some(q) = QUEUE.get() {
        q.flush(bound);
    }
}

/// Writes `line` to stderr as it is, in order with the log and without blocking once logging
/// is set up (the last words of a failed `run`).
pub fn print(line: &str) {
    match QUEUE.get() {
        Some(q) => q.push(format!("{line}\n").into_bytes()),
        None => eprintln!("{line}"),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("OVS_OVN_SUPERVISOR_LOG={filter:?} is invalid: expected a tracing filter such as \"info\" or \"ovs_ovn_supervisor=debug\" ({reason})")]
pub struct LogError {
    filter: String,
    reason: String,
}

pub fn init(format: LogFormat, filter: &str) -> Result<(), LogError> {
    let env_filter = EnvFilter::try_new(filter).map_err(|e| LogError {
        filter: filter.to_string(),
        reason: e.to_string(),
    })?;
    let b = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(writer())
        // Colour codes only on a terminal: `kubectl logs` and log shippers read a pipe.
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    // Failing to install means a subscriber is already there (tests); keep that one.
    let _ = match format {
        LogFormat::Text => b.try_init(),
        LogFormat::Json => b.json().flatten_event(true).try_init(),
    };
    Ok(())
}

/// OVS's own level names, as they appear in the 4th `|` field of a console line
/// (`2026-11-22T12:21:52Z|00001|module|WARN|text`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineLevel {
    Error,
    Warn,
    Info,
    Debug,
}

pub fn ovs_level(line: &str) -> LineLevel {
    match line.split('|').nth(3) {
        Some("EMER") | Some("ERR") => LineLevel::Error,
        Some("WARN") => LineLevel::Warn,
        Some("DBG") => LineLevel::Debug,
        _ => LineLevel::Info,
    }
}

pub const MAX_LINE: usize = 16 * 1024;

/// Sees every line a daemon writes (after it is relayed to our log).
pub type LineObserver = Box<dyn FnMut(&str) + Send>;

fn emit(daemon: &str, bytes: &[u8], observe: &mut Option<LineObserver>) {
    let line = String::from_utf8_lossy(bytes);
    let line = line.trim_end();
    if line.is_empty() {
        return;
    }
    if let Some(f) = observe {
        f(line);
    }
    match ovs_level(line) {
        LineLevel::Error => tracing::error!(daemon, "{line}"),
        LineLevel::Warn => tracing::warn!(daemon, "{line}"),
        LineLevel::Info => tracing::info!(daemon, "{line}"),
        LineLevel::Debug => tracing::debug!(daemon, "{line}"),
    }
}

/// Splits a byte stream into lines, emitting complete ones and over-long fragments.
#[derive(Default)]
pub struct LineSplitter {
    buf: Vec<u8>,
}

impl LineSplitter {
    pub fn push(&mut self, chunk: &[u8], mut out: impl FnMut(&[u8])) {
        for &b in chunk {
            if b == b'\n' {
                out(&self.buf);
                self.buf.clear();
            } else {
                self.buf.push(b);
                if self.buf.len() >= MAX_LINE {
                    out(&self.buf);
                    self.buf.clear();
                }
            }
        }
    }
    pub fn finish(&mut self, mut out: impl FnMut(&[u8])) {
        if !self.buf.is_empty() {
            out(&self.buf);
            self.buf.clear();
        }
    }
}

/// Re-emits a daemon's pipe until it closes. Runs as a task on the current runtime.
pub fn relay(daemon: &'static str, pipe: impl Into<OwnedFd>) {
    relay_observed(daemon, pipe, None);
}

/// Like [`relay`], also handing every line to `observe` (a watcher of the daemon's log).
pub fn relay_observed(
    daemon: &'static str,
    pipe: impl Into<OwnedFd>,
    mut observe: Option<LineObserver>,
) {
    let Ok(mut rx) = tokio::net::unix::pipe::Receiver::from_owned_fd(pipe.into()) else {
        tracing::warn!(daemon, "cannot relay output: pipe not usable");
        return;
    };
    tokio::spawn(async move {
        let mut split = LineSplitter::default();
        let mut chunk = [0u8; 4096];
        loop {
            match rx.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => split.push(&chunk[..n], |l| emit(daemon, l, &mut observe)),
            }
        }
        split.finish(|l| emit(daemon, l, &mut observe));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_come_from_the_ovs_line() {
        let cases = [
            (
                "2026-11-22T12:21:52Z|00001|fatal_signal(urcu1)|WARN|terminating",
                LineLevel::Warn,
            ),
            ("2026-11-22T12:21:52Z|00002|ovsdb|ERR|bad", LineLevel::Error),
            (
                "2026-11-22T12:21:52Z|00002|ovsdb|EMER|worse",
                LineLevel::Error,
            ),
            ("2026-11-22T12:21:52Z|00003|x|DBG|detail", LineLevel::Debug),
            ("==123== valgrind says hi", LineLevel::Info),
            ("", LineLevel::Info),
        ];
        for (line, want) in cases {
            assert_eq!(ovs_level(line), want, "{line}");
        }
    }

    #[test]
    fn splitter_handles_split_and_long_lines() {
        let mut got = Vec::new();
        let mut s = LineSplitter::default();
        s.push(b"ab", |l| got.push(l.to_vec()));
        s.push(b"c\nd", |l| got.push(l.to_vec()));
        s.push(&vec![b'x'; MAX_LINE + 5], |l| got.push(l.to_vec()));
        s.finish(|l| got.push(l.to_vec()));
        assert_eq!(got[0], b"abc");
        assert_eq!(got[1].len(), MAX_LINE);
        assert!(got[1].starts_with(b"d"));
        assert_eq!(got[2].len(), 6);
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn bad_filter_names_the_variable() {
        let e = init(LogFormat::Text, "info,[[[").unwrap_err();
        assert!(e.to_string().starts_with("OVS_OVN_SUPERVISOR_LOG="), "{e}");
    }
}

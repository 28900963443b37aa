//! The supervisor's side of the TLS watch ([`crate::host::tlswatch`]): with `ENABLE_SSL`, a
//! change to the key, certificate or CA certificate restarts ovn-controller gracefully.
//!
//! Invariant: the watch never stops for good. A FIFO or a directory appearing once at a
//! watched name, and a TLS directory that appears only after the start, are handled inside the
//! watch; a watch that cannot be set up (the directory's parent missing, no inotify instance
//! left) or that fails is set up again every [`RETRY`]. Limit: a change made while no watch
//! exists is not seen; the new watch starts from the files as they are then.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::Supervisor;
use crate::config::Config;
use crate::daemon::state::Event;
use crate::daemon::Daemon;
use crate::host::tlswatch::TlsWatch;
use crate::ovs::unixctl;
use crate::status::check;

/// Between two attempts to set the watch up.
const RETRY: Duration = Duration::from_secs(10);
/// A rotation is several events: the files are compared once they have been quiet this long.
const DEBOUNCE: Duration = Duration::from_millis(500);
const FILES: [&str; 3] = ["key", "cert", "cacert"];

pub(super) struct Watch {
    /// The TLS directory; `None` without `ENABLE_SSL`.
    dir: Option<PathBuf>,
    watch: Option<TlsWatch>,
    retry_at: Instant,
}

fn open(dir: &Path) -> Option<TlsWatch> {
    match TlsWatch::new(dir, &FILES, DEBOUNCE) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(
                "cannot watch the TLS files in {}: {e}; trying again in {} s",
                dir.display(),
                RETRY.as_secs()
            );
            None
        }
    }
}

impl Watch {
    pub(super) fn new(cfg: &Config) -> Watch {
        let dir = cfg.ssl.then(|| cfg.tls_dir.clone());
        Watch {
            watch: dir.as_deref().and_then(open),
            dir,
            retry_at: Instant::now() + RETRY,
        }
    }

    /// The files that changed; never resolves without `ENABLE_SSL`. Cancel-safe.
    pub(super) async fn changed(&mut self) -> Vec<String> {
        let Some(dir) = self.dir.clone() else {
            return std::future::pending().await;
        };
        loop {
            match self.watch.as_mut() {
                Some(w) => match w.changed().await {
                    Ok(files) => return files,
                    Err(e) => {
                        tracing::error!(
                            "TLS watch failed: {e}; setting it up again in {} s",
                            RETRY.as_secs()
                        );
                        self.watch = None;
                        self.retry_at = Instant::now() + RETRY;
                    }
                },
                None => {
                    tokio::time::sleep_until(self.retry_at.into()).await;
                    self.watch = open(&dir);
                    self.retry_at = Instant::now() + RETRY;
                }
            }
        }
    }
}

impl Supervisor {
    /// TLS files changed: ovn-controller exits gracefully and is restarted at once with them.
    pub(super) async fn reload_tls(&mut self, files: Vec<String>) {
        let d = Daemon::OvnController;
        tracing::info!(
            ?files,
            "TLS files changed; restarting ovn-controller gracefully"
        );
        let Some(pid) = self.pid(d) else {
            return;
        };
        self.event(d, Event::PlannedExit);
        let sent = match check::ctl_of(&self.cfg.layout, d, Some(pid)) {
            Some(ctl) => unixctl::call(&ctl, "exit", d.exit_args(), Duration::from_secs(2))
                .await
                .is_ok(),
            None => false,
        };
        if !sent {
            self.reaper.signal(pid, Signal::SIGTERM, true);
        }
    }
}

//! [`MarkerSampler`]: `probe readiness` and the readiness marker's presence, sampled together
//! back to back from a thread, to check that both give one verdict.
//!
//! A sample is (marker, probe, marker, probe, marker): the marker is compared only when both
//! probes agree and the marker was the same file (or absent) at all three reads, so a
//! transition inside the sample is not taken for a disagreement (on a loaded machine a node
//! can go not ready, ready and not ready again between two probes: the marker is then written
//! and removed, and the sample is left out), and a marker that lags the verdict for longer
//! than one sample is. Samples where no supervisor answers at all are left
//! out: no process is there to keep the marker (a killed instance's stays until the next one
//! takes the instance lock).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use super::BIN;

/// What a [`MarkerSampler`] saw.
#[derive(Debug, Default)]
pub struct Agreement {
    /// Samples whose two probes agreed: ready, not ready.
    pub ready: usize,
    pub not_ready: usize,
    /// Those where the marker said otherwise: (probe's answer, marker present).
    pub disagreements: Vec<(String, bool)>,
}

/// Samples until [`MarkerSampler::finish`].
pub struct MarkerSampler {
    stop: Arc<AtomicBool>,
    /// Ready samples so far, for a test to wait on before it moves the node on: on a loaded
    /// machine a ready spell can be shorter than one sample (two `probe` executions).
    ready: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<Agreement>>,
}

/// `probe readiness` on the sandbox `dir`: passed, and its line.
fn probe(dir: &Path) -> (bool, String) {
    let out = Command::new(BIN)
        .env_clear()
        .args(["probe", "readiness", "--sandbox"])
        .arg(dir)
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success(), line)
}

/// Which file is at `marker`, if any: a marker removed and written again is another.
fn identity(marker: &Path) -> Option<(u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::symlink_metadata(marker).ok()?;
    Some((md.ino(), md.mtime(), md.mtime_nsec()))
}

/// The probe found no supervisor at all.
fn absent(line: &str) -> bool {
    line.starts_with("supervisor gone") || line.starts_with("supervisor not running")
}

impl MarkerSampler {
    pub fn start(dir: &Path, marker: &Path) -> MarkerSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let (dir, marker): (PathBuf, PathBuf) = (dir.into(), marker.into());
        let flag = stop.clone();
        let ready = Arc::new(AtomicUsize::new(0));
        let readies = ready.clone();
        let thread = std::thread::spawn(move || {
            let mut a = Agreement::default();
            while !flag.load(Ordering::Relaxed) {
                let first = identity(&marker);
                let (before, line) = probe(&dir);
                let middle = identity(&marker);
                let (after, _) = probe(&dir);
                let last = identity(&marker);
                let present = middle.is_some();
                // No supervisor answers (before the new one binds its socket): nobody can
                // keep a marker then, not even remove a dead one's.
                if before != after || absent(&line) || first != middle || middle != last {
                    continue;
                }
                match before {
                    true => {
                        a.ready += 1;
                        readies.store(a.ready, Ordering::Relaxed);
                    }
                    false => a.not_ready += 1,
                }
                if present != before {
                    a.disagreements.push((line, present));
                }
            }
            a
        });
        MarkerSampler {
            stop,
            ready,
            thread: Some(thread),
        }
    }

    /// Ready samples taken so far (both probes ready, whatever the marker said).
    pub fn ready_samples(&self) -> usize {
        self.ready.load(Ordering::Relaxed)
    }

    pub fn finish(mut self) -> Agreement {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for MarkerSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

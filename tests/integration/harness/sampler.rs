//! [`Sampler`]: watches a node back to back from a thread during a switch-over (a takeover, a
//! migration): how many ovsdb-servers and vswitchds ran on its files at once, and how long
//! br-int's flow table was unreachable or empty.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::count;

/// What a [`Sampler`] saw during a switch-over.
pub struct Sampled {
    /// Most ovsdb-servers on the one conf.db at once.
    pub max_servers: usize,
    /// Most vswitchds on the one db.sock at once.
    pub max_switches: usize,
    /// How long br-int's flow table was unreachable or empty in all, and at the longest.
    pub gap: Duration,
    pub longest: Duration,
}

/// Samples a node back to back from a thread until [`Sampler::finish`].
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Sampled>>,
}

impl Sampler {
    /// `mgmt` is the ovs-ofctl target (`unix:.../br-int.mgmt`).
    pub fn start(conf_db: &str, db_sock: &str, mgmt: &str) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let (conf_db, db_sock, mgmt) = (conf_db.to_string(), db_sock.to_string(), mgmt.to_string());
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut s = Sampled {
                max_servers: 0,
                max_switches: 0,
                gap: Duration::ZERO,
                longest: Duration::ZERO,
            };
            let (mut empty_since, mut last) = (None::<Instant>, Instant::now());
            while !flag.load(Ordering::Relaxed) {
                s.max_servers = s.max_servers.max(count("ovsdb-server", &conf_db));
                s.max_switches = s.max_switches.max(count("ovs-vswitchd", &db_sock));
                let out = Command::new("ovs-ofctl")
                    .args(["dump-flows", "--no-stats", &mgmt])
                    .stderr(Stdio::null())
                    .output()
                    .unwrap();
                let flows = String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter(|l| l.starts_with(' '))
                    .count();
                let now = Instant::now();
                if !out.status.success() || flows == 0 {
                    s.gap += now - last;
                    let since = *empty_since.get_or_insert(last);
                    s.longest = s.longest.max(now - since);
                } else {
                    empty_since = None;
                }
                last = now;
            }
            s
        });
        Sampler {
            stop,
            thread: Some(thread),
        }
    }

    pub fn finish(mut self) -> Sampled {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Sampler {
    /// A failed test stops the sampling thread too.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

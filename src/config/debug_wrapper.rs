//! `DEBUG_WRAPPER`, as Kube-OVN's scripts (through ovs-ctl/ovn-ctl) read it: the keywords
//! `valgrind`, `strace` and `glibc`, each with the output file or environment ovs-ctl gives
//! it, or else a command prefix for every daemon's argv.
//!
//! Invariant: pure: what runs and where its output goes is decided here; finding the program
//! is [`crate::host::prereqs`]'s, spawning it the supervisor's. A wrapper may fork and leave
//! processes of its own (a double-forked daemon, a helper in a session of its own): they stay
//! our descendants, and the supervisor ends them before it exits (`supervisor::stop::sweep`).

use std::path::Path;

/// `DEBUG_WRAPPER`: Kube-OVN's keywords (as ovs-ctl/ovn-ctl read them), or a command prefix.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DebugWrapper {
    #[default]
    None,
    /// `valgrind`: each daemon's report to `LOGDIR/DAEMON.valgrind.log.PID`.
    Valgrind,
    /// `strace`: each daemon's trace to `LOGDIR/DAEMON.strace.log.PID` (strace -ff).
    Strace,
    /// `glibc`: glibc's malloc checking (`MALLOC_CHECK_=2 MALLOC_PERTURB_=165`).
    Glibc,
    /// Anything else: a command prefix, split on whitespace.
    Command(Vec<String>),
}

impl DebugWrapper {
    pub fn parse(raw: &Option<String>) -> DebugWrapper {
        match raw.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => DebugWrapper::None,
            Some("valgrind") => DebugWrapper::Valgrind,
            Some("strace") => DebugWrapper::Strace,
            Some("glibc") => DebugWrapper::Glibc,
            Some(cmd) => DebugWrapper::Command(cmd.split_whitespace().map(String::from).collect()),
        }
    }

    /// The words before the daemon's own argv; `daemon` and `logdir` name its output files.
    pub fn prefix(&self, daemon: &str, logdir: &Path) -> Vec<String> {
        let log = |kind: &str| {
            logdir
                .join(format!("{daemon}.{kind}.log"))
                .display()
                .to_string()
        };
        match self {
            DebugWrapper::None | DebugWrapper::Glibc => Vec::new(),
            DebugWrapper::Valgrind => vec![
                "valgrind".into(),
                "-q".into(),
                "--leak-check=full".into(),
                "--time-stamp=yes".into(),
                format!("--log-file={}.%p", log("valgrind")),
            ],
            // -D: strace runs as a detached grandchild, so the daemon keeps the pid we spawned.
            DebugWrapper::Strace => vec![
                "strace".into(),
                "-tt".into(),
                "-T".into(),
                "-s".into(),
                "256".into(),
                "-ff".into(),
                "-D".into(),
                "-o".into(),
                log("strace"),
            ],
            DebugWrapper::Command(words) => words.clone(),
        }
    }

    /// Extra environment for the daemon.
    pub fn env(&self) -> Vec<(String, String)> {
        match self {
            DebugWrapper::Glibc => vec![
                ("MALLOC_CHECK_".into(), "2".into()),
                ("MALLOC_PERTURB_".into(), "165".into()),
            ],
            _ => Vec::new(),
        }
    }

    /// The program the wrapper runs, if it wraps anything (the first word of its prefix).
    pub fn program(&self) -> Option<String> {
        self.prefix("", Path::new("")).into_iter().next()
    }

    /// True when the spawned process is not the daemon itself (its pid comes from its pidfile).
    pub fn wraps(&self) -> bool {
        !matches!(self, DebugWrapper::None | DebugWrapper::Glibc)
    }
}

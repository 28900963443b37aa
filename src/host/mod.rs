//! The host the node runs on: every check made before a daemon starts and every change made
//! to the host outside our daemons (modules, the run-dir link, stale files, the tunnel port
//! rule, directory trust, the one-instance lock), each read under an injected root.

pub mod diskspace;
pub mod firewall;
pub mod fsguard;
pub mod instance;
pub mod netns;
pub mod preflight;
pub mod prep;
pub mod prereqs;
pub mod stale;
pub mod symlink;
pub mod termination;
pub mod tlswatch;
pub mod uninstall;

//! The one harness of the integration tests: a sandbox node run by the real
//! `ovs-ovn-supervisor` binary in a temp dir, and what tests need around it.
//!
//! Every node gets its own directory (and, as root, its own network namespace, which the
//! supervisor creates), a clean environment, and a Drop guard that stops it and kills any daemon
//! whose pidfile is in that directory, so a failed test leaves nothing running. Waiting is always
//! on a real condition with a deadline. Tests run at once in this one binary (libtest's default
//! thread count), so nothing here uses a fixed path, port or name of the machine's: each test's
//! files, sockets, namespaces and processes are its own.
//!
//! One file per concern: [`node`] (start, ask, stop, the guard), [`wait`] (deadline waits),
//! [`processes`] (pidfiles and `/proc`), [`southbound`] (a central Southbound and the `*ctl`
//! clients), [`northd`] (the installed ovn-northd's internal version), [`openflow`] (br-int's target and
//! flow count), [`host`] (`preflight`,
//! real-node directories and probes), [`netns`], [`sampler`] (switch-over sampling),
//! [`readiness`] (the marker and the probe, sampled together), [`verdicts`] (the HTTP
//! endpoint's verdicts and the probe's, sampled together), [`wrapper`] (`DEBUG_WRAPPER`
//! holds), [`own_process`] (a test body in a process of its own), [`impostor`] (a process named
//! as ours that asks for a handover and fakes a successor).

mod host;
mod impostor;
mod netns;
mod node;
mod northd;
mod openflow;
mod own_process;
mod processes;
mod readiness;
mod sampler;
mod southbound;
mod verdicts;
mod wait;
mod wrapper;

pub use host::*;
pub use impostor::*;
pub use netns::*;
pub use node::*;
pub use northd::*;
pub use openflow::*;
pub use own_process::*;
pub use processes::*;
pub use readiness::*;
pub use sampler::*;
pub use southbound::*;
pub use verdicts::*;
pub use wait::*;
pub use wrapper::*;

/// The binary under test, built by cargo for this test target.
pub const BIN: &str = env!("CARGO_BIN_EXE_ovs-ovn-supervisor");

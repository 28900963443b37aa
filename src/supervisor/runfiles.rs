//! The run dir's files that make this instance reachable and exclusive: the control socket and
//! the instance lock. Bound and taken at the start; while this instance runs the node, every
//! health tick makes sure both are still there and ours. Deleted (an `rm` of the run dir's
//! contents) or replaced, the socket is bound again and the lock file locked again — before,
//! both stayed gone: every probe failed for good, and a second instance found no lock and no
//! supervisor and could start a second node beside ours.
//!
//! Invariants: never while handed over (the files are the successor's then); a file at the
//! path that another process holds locked is reported, not taken; a failure is logged once
//! until the files are right again, and retried at the next tick.

use tokio::task::JoinHandle;

use super::Supervisor;
use crate::control::{self, ControlError};
use crate::host::instance::{self, Kept, LockError};

/// Our control socket: the task serving it and the file we bound.
pub(super) struct Server {
    task: JoinHandle<()>,
    bound: control::Bound,
    /// A repair of the socket, of the lock, failed and was logged: quiet until it succeeds.
    failing: bool,
    lock_failing: bool,
}

impl Supervisor {
    /// Binds the control socket path (again), replacing any listener of ours.
    pub(super) fn bind_control(&mut self) -> Result<(), ControlError> {
        let (task, bound) = control::serve(
            &self.cfg.layout.control_sock(),
            self.snap.subscribe(),
            self.handover_tx.clone(),
            self.uninstall_tx.clone(),
        )?;
        if let Some(old) = self.control.replace(Server {
            task,
            bound,
            failing: false,
            lock_failing: false,
        }) {
            old.task.abort();
        }
        Ok(())
    }

    /// The socket file we bound last, if any.
    pub(super) fn control_bound(&self) -> Option<control::Bound> {
        self.control.as_ref().map(|s| s.bound)
    }

    /// Stops serving; removes the socket file if it is still the one we bound.
    pub(super) fn close_control(&mut self) {
        if let Some(s) = self.control.take() {
            s.task.abort();
            control::remove_if_ours(&self.cfg.layout.control_sock(), s.bound);
        }
    }

    /// The control socket and the instance lock, put right if they were deleted or replaced.
    pub(super) fn keep_run_files(&mut self) {
        self.keep_socket();
        self.keep_lock();
    }

    fn keep_socket(&mut self) {
        let sock = self.cfg.layout.control_sock();
        let Some(s) = self.control.as_ref() else {
            return;
        };
        if s.bound.is_at(&sock) {
            return;
        }
        let failing = s.failing;
        match self.bind_control() {
            Ok(()) => tracing::warn!(
                path = %sock.display(),
                "the control socket was removed or replaced: bound again"
            ),
            Err(e) => {
                if !failing {
                    tracing::error!("{e}; probes cannot reach this instance until it is bound");
                }
                if let Some(s) = self.control.as_mut() {
                    s.failing = true;
                }
            }
        }
    }

    fn keep_lock(&mut self) {
        let (Some(lock), Some(server)) = (self.lock.as_mut(), self.control.as_mut()) else {
            return;
        };
        let kept = instance::keep(lock, &self.cfg.layout.ovs_rundir);
        let was_failing = std::mem::replace(&mut server.lock_failing, kept.is_err());
        match kept {
            Ok(Kept::Same) => {}
            Ok(kept) => tracing::warn!(
                path = %lock.path().display(),
                ?kept,
                "the instance lock file was removed or replaced: locked again"
            ),
            Err(_) if was_failing => {}
            Err(e @ LockError::Held { .. }) => {
                tracing::error!("{e}: two instances may now run this node")
            }
            Err(e) => tracing::error!("instance lock: {e}"),
        }
    }
}

//! Running one start stage: its deadline, its place in the timeline, and everything that may
//! interrupt it (a stop signal, a started daemon exiting, a handover or uninstall request).
//!
//! Invariants: a stage never outlives its deadline — its future is dropped when the deadline
//! passes and the start fails naming the stage and what it waited for; the waits inside a
//! stage carry the same budget, so they normally fail first with the more precise reason, and
//! this deadline catches whatever has none (a hung transaction, a tool, a disk).

use std::future::Future;
use std::time::{Duration, Instant};

use super::signals::SigEvent;
use super::{Interrupt, RunError, Supervisor};

/// Why a stage failed (its deadline aside): the error of the step that failed, as it is.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error(transparent)]
    Spawn(#[from] super::SpawnError),
    #[error(transparent)]
    Process(#[from] crate::process::ProcessError),
    #[error(transparent)]
    Wait(#[from] crate::daemon::wait::WaitError),
    #[error(transparent)]
    ConfDb(#[from] crate::confdb::DbFileError),
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
    #[error(transparent)]
    Tuning(#[from] crate::settings::tuning::TuningError),
    #[error(transparent)]
    Ovsdb(#[from] crate::ovs::ovsdb::OvsdbError),
    #[error(transparent)]
    Rpc(#[from] crate::ovs::jsonrpc::RpcError),
    #[error(transparent)]
    Legacy(#[from] crate::takeover::legacy::LegacyError),
    #[error(transparent)]
    HostPrep(#[from] crate::host::prep::HostPrepError),
    #[error(transparent)]
    RestoreWait(#[from] crate::dataplane::restore_wait::ClearError),
    #[error("ovsdb-server closed the connection")]
    Closed,
}

/// Slack past a stage's own budget before its deadline fires: the waits inside use the same
/// budget and should report first, with their own reason.
const SLACK: Duration = Duration::from_secs(1);

/// One start stage: its name, how long it may take, and what it waits for (named when it
/// does not finish).
pub(super) struct Stage {
    pub name: &'static str,
    pub budget: Duration,
    pub waiting_for: &'static str,
}

impl Supervisor {
    /// Runs `fut` as `stage`, racing it against its deadline, signals and daemon exits.
    pub(super) async fn stage<T>(
        &mut self,
        stage: Stage,
        fut: impl Future<Output = Result<T, StageError>>,
    ) -> Result<T, Interrupt> {
        let t0 = Instant::now();
        let name = stage.name;
        self.set_stage(name);
        tracing::debug!(stage = name, "stage started");
        let deadline = tokio::time::sleep(stage.budget + SLACK);
        tokio::pin!(fut, deadline);
        loop {
            tokio::select! {
                r = &mut fut => {
                    // Rounded up: a stage that ran never reads 0 ms (flow-restore-wait on
                    // the userspace datapath takes well under one).
                    let ms = (t0.elapsed().as_micros() as u64).div_ceil(1000);
                    self.snap.send_modify(|s| s.timeline.push((name.to_string(), ms)));
                    return r.map_err(|source| Interrupt::Failed(RunError::Stage { stage: name, source: Box::new(source) }));
                }
                _ = &mut deadline => {
                    return Err(Interrupt::Failed(RunError::Deadline {
                        stage: name,
                        deadline: stage.budget,
                        waiting_for: stage.waiting_for,
                    }));
                }
                ev = self.signals.next() => match ev {
                    SigEvent::Stop(s) => return Err(Interrupt::Stop(s)),
                    SigEvent::Hup => self.reopen_logs().await,
                    SigEvent::Other(s) => tracing::info!(signal = s, "ignored"),
                },
                Some((d, pid, st)) = self.exits.recv() => return Err(Interrupt::Died(d, pid, st)),
                Some(req) = self.handover_rx.recv() => {
                    let _ = req.reply.send(Err(format!("still starting (stage {name}); not handing over a half-started node")));
                }
                // Stopping for good needs no finished start: what runs is stopped.
                Some(req) = self.uninstall_rx.recv() => return Err(Interrupt::Uninstall(req.reply)),
            }
        }
    }
}

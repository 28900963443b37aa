//! Stopping the node for good (`uninstall`), the supervisor's half of Kube-OVN's
//! `uninstall.sh`; the host's half runs in the `uninstall` command ([`command`]).
//!
//! In order: ovn-controller stops (so nothing adds tunnel ports back); the integration
//! bridge's tunnel ports are deleted and ovs-vswitchd, still running, removes their kernel
//! devices; ovs-vswitchd exits with `--cleanup` (it deletes its datapaths: the kernel's
//! `ovs-system`, or the userspace one with its tap devices), then ovsdb-server; a kernel
//! datapath still there is deleted with `ovs-dpctl del-dp`, as Kube-OVN's script does.
//!
//! Invariants: once asked, no daemon is ever started again by this process: the supervision
//! loop has returned and the idle loop here starts nothing; the supervisor stays alive, so
//! kubelet does not restart the container (which would start the node again) until it is
//! terminated, and then exits 0. Liveness and startup pass, readiness fails, while it idles
//! (`status::verdict`). A repeated request is answered at once with the same record
//! (`already`); a handover request gets "nothing to hand over" and the instance lock, so a
//! newer instance may start the node afresh. A step that fails is recorded in the answer's
//! `problems` and the next steps still run.

pub mod command;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::oneshot;

use super::signals::SigEvent;
use super::stop::{stop_all, StopFor};
use super::Supervisor;
use crate::daemon::Daemon;
use crate::host::firewall::ReapedRunner;
use crate::host::uninstall::datapath;
use crate::ovs::jsonrpc::Client;
use crate::status::{self, Uninstalled};

type Reply = oneshot::Sender<Result<serde_json::Value, String>>;

/// How long the tunnel ports' removal (the transaction and vswitchd applying it) may take.
const TUNNELS_BUDGET: Duration = Duration::from_secs(10);
/// How long `ovs-dpctl del-dp` may take.
const DPCTL_DEADLINE: Duration = Duration::from_secs(10);

impl Supervisor {
    /// Stops the node for good, answers `reply`, and idles until a stop signal, whose name it
    /// returns with whether every daemon stopped cleanly.
    pub(super) async fn stop_for_good(&mut self, reply: Reply) -> (&'static str, bool) {
        let done = self.uninstall().await;
        let _ = reply.send(serde_json::to_value(&done).map_err(|e| e.to_string()));
        let sig = self.idle_uninstalled().await;
        (sig, done.stopped_cleanly)
    }

    async fn uninstall(&mut self) -> Uninstalled {
        tracing::warn!("uninstall: stopping every daemon for good; nothing will be restarted");
        self.snap.send_modify(|s| {
            s.stage = "uninstalling".into();
            s.stopping = true;
        });
        let end = Instant::now() + self.cfg.stop_budget;
        let left = || end.saturating_duration_since(Instant::now());
        let mut problems = Vec::new();
        let running: BTreeMap<Daemon, i32> = self.processes().into_iter().collect();
        let (controller, rest): (BTreeMap<_, _>, BTreeMap<_, _>) = running
            .into_iter()
            .partition(|(d, _)| *d == Daemon::OvnController);
        // A share of the budget for ovn-controller, as the ordered stop would give it.
        let share = left() / (controller.len() + rest.len()).max(1) as u32;
        let (cfg, reaper) = (self.cfg.clone(), self.reaper);
        let mut clean = stop_all(
            &cfg,
            reaper,
            &controller,
            &mut self.exits,
            share,
            StopFor::Good,
        )
        .await;
        let tunnel_ports = match rest.contains_key(&Daemon::Vswitchd) {
            true => self.remove_tunnel_ports(&mut problems).await,
            false => Vec::new(),
        };
        clean &= stop_all(&cfg, reaper, &rest, &mut self.exits, left(), StopFor::Good).await;
        self.mark_all(false);
        let datapath_deleted = self.delete_datapath(&mut problems).await;
        if let Err(e) = datapath::tunnel_devices_left() {
            problems.push(e.to_string());
        }
        if !clean {
            problems.push("a daemon did not stop cleanly (SIGKILL was needed)".into());
        }
        let done = Uninstalled {
            at_ms: status::unix_ms(),
            already: false,
            stopped_cleanly: clean,
            tunnel_ports,
            datapath_deleted,
            problems,
        };
        tracing::warn!(clean, tunnel_ports = ?done.tunnel_ports, datapath_deleted, problems = ?done.problems, "uninstalled: no daemon runs; idle until terminated");
        self.snap.send_modify(|s| {
            s.stage = "uninstalled".into();
            s.uninstalled = Some(done.clone());
        });
        done
    }

    /// Deletes br-int's tunnel ports and waits for vswitchd to have removed them; their names.
    async fn remove_tunnel_ports(&self, problems: &mut Vec<String>) -> Vec<String> {
        let deadline = Instant::now() + TUNNELS_BUDGET;
        let result = async {
            let client = Client::connect(&self.cfg.layout.db_sock(), TUNNELS_BUDGET).await?;
            let (names, next_cfg) =
                crate::dataplane::tunnels::remove(&client, TUNNELS_BUDGET).await?;
            if let Some(next) = next_cfg {
                super::start::steps::wait_cur_cfg(&client, next, deadline).await?;
            }
            Ok::<_, super::StageError>(names)
        };
        match tokio::time::timeout(TUNNELS_BUDGET, result).await {
            Ok(Ok(names)) => {
                if !names.is_empty() {
                    tracing::info!(ports = ?names, "uninstall: tunnel ports deleted; ovs-vswitchd removed their devices");
                }
                names
            }
            Ok(Err(e)) => {
                problems.push(format!("cannot delete the tunnel ports of br-int: {e}"));
                Vec::new()
            }
            Err(_) => {
                problems.push(format!(
                    "ovs-vswitchd did not remove the tunnel ports within {TUNNELS_BUDGET:?}"
                ));
                Vec::new()
            }
        }
    }

    /// `ovs-dpctl del-dp system@ovs-system` when vswitchd's cleanup left the kernel datapath.
    async fn delete_datapath(&self, problems: &mut Vec<String>) -> bool {
        let runner = ReapedRunner {
            reaper: self.reaper,
            handle: tokio::runtime::Handle::current(),
            deadline: DPCTL_DEADLINE,
        };
        match tokio::task::spawn_blocking(move || datapath::delete_datapath(&runner)).await {
            Ok(Ok(deleted)) => deleted,
            Ok(Err(e)) => {
                problems.push(e.to_string());
                false
            }
            Err(e) => {
                problems.push(format!("deleting the kernel datapath: {e}"));
                false
            }
        }
    }

    /// Starts nothing, answers every request, until a stop signal.
    async fn idle_uninstalled(&mut self) -> &'static str {
        loop {
            tokio::select! {
                ev = self.signals.next() => match ev {
                    SigEvent::Stop(sig) => {
                        tracing::info!(signal = sig, "uninstalled node: exiting");
                        return sig;
                    }
                    SigEvent::Hup => {}
                    SigEvent::Other(s) => tracing::info!(signal = s, "ignored"),
                },
                Some(req) = self.uninstall_rx.recv() => {
                    let mut again = self.snap.borrow().uninstalled.clone().unwrap_or_default();
                    again.already = true;
                    let _ = req.reply.send(serde_json::to_value(&again).map_err(|e| e.to_string()));
                }
                Some(req) = self.handover_rx.recv() => {
                    // A newer instance may start the node afresh: it needs the lock.
                    if let Some(lock) = self.lock.take() {
                        crate::host::instance::release(lock);
                    }
                    let _ = req.reply.send(Ok(json!({
                        "handed_over": false,
                        "reason": "this instance was uninstalled and runs no daemon",
                    })));
                }
            }
        }
    }
}

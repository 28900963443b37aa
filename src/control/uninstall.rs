//! `uninstall` on the control socket: the running supervisor is asked to stop the node for
//! good (`ovs-ovn-supervisor uninstall`, run by Kube-OVN's `cleanup.sh` through
//! `/kube-ovn/uninstall.sh`). The answer is the [`Uninstalled`](crate::status::Uninstalled)
//! record, once the daemons have stopped.
//!
//! Invariants: only a client running as our own uid may ask (`SO_PEERCRED`, which the kernel
//! fills in at `connect`: it cannot be forged), since the answer is a node without networking;
//! anyone else gets a refusal naming both uids and nothing happens. One request is carried at
//! a time: another while one is queued is refused at once; the asker waits at most
//! [`UNINSTALL_DEADLINE`].

use std::time::Duration;

use serde_json::Value;
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};

/// A request to stop the node for good; answered on `reply` once the daemons have stopped.
pub struct UninstallRequest {
    pub reply: oneshot::Sender<Result<Value, String>>,
}

/// Longest the server waits for the supervisor's answer: the stop budget, the tunnel ports'
/// removal and the datapath's deletion fit well within it.
pub const UNINSTALL_DEADLINE: Duration = Duration::from_secs(110);

/// The peer's uid when it is ours; otherwise the refusal.
pub(super) fn check_peer(stream: &UnixStream) -> Result<(), String> {
    let ours = nix::unistd::geteuid().as_raw();
    match stream.peer_cred() {
        Ok(c) if c.uid() == ours => Ok(()),
        Ok(c) => Err(format!(
            "uninstall refused: asked by uid {}; only uid {ours}, the pod's own, may stop the node for good",
            c.uid()
        )),
        Err(e) => Err(format!(
            "uninstall refused: cannot tell who asks (SO_PEERCRED: {e})"
        )),
    }
}

/// Passes the request to the supervisor loop and waits for its answer.
pub(super) async fn ask_supervisor(
    stream: &UnixStream,
    tx: &mpsc::Sender<UninstallRequest>,
) -> Result<Value, String> {
    check_peer(stream)?;
    let (reply, rx) = oneshot::channel();
    tx.try_send(UninstallRequest { reply })
        .map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => "an uninstall is already under way".to_string(),
            mpsc::error::TrySendError::Closed(_) => "the supervisor is exiting".to_string(),
        })?;
    match tokio::time::timeout(UNINSTALL_DEADLINE, rx).await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => Err("the supervisor ended before it could answer".to_string()),
        Err(_) => Err(format!(
            "the supervisor did not stop the node within {UNINSTALL_DEADLINE:?}"
        )),
    }
}

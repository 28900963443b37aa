//! "Is this daemon answering yet?" — one wait per daemon kind, used by the start stages, the
//! restart path and the takeover alike.
//!
//! What answering means, per daemon:
//! - the embedded Southbound and ovsdb-server: their database socket accepts a JSON-RPC
//!   connection and `list_dbs` answers (ovsdb-server must serve `Open_vSwitch`);
//! - ovs-vswitchd: `br-int.mgmt` completes an OpenFlow exchange (what ovn-controller needs
//!   before it starts, or its own 1-2-4-8 s reconnect backoff begins);
//! - ovn-controller: its unixctl socket answers `connection-status`, connected to the OVN
//!   Southbound or not — a Southbound outage must not stop a node (Kube-OVN #1588).
//!
//! Invariants: every wait ends by its deadline ([`Daemon::answer_budget`]) and the error names
//! the daemon, the deadline and the last attempt's failure; retries use full-jitter backoff
//! (5 ms .. 100 ms) so a daemon that comes up in 20 ms is seen within a few ms of it.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Daemon, DaemonError};
use crate::config::Config;
use crate::ovs::jsonrpc::{Client, RpcError};
use crate::ovs::openflow::{self, OpenFlowError};
use crate::ovs::{ovsdb, unixctl};
use crate::process::backoff::{Policy, Retry};
use crate::settings;

#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error("{daemon} did not answer within {deadline:?}: {last}")]
    Deadline {
        daemon: &'static str,
        deadline: Duration,
        #[source]
        last: Attempt,
    },
    #[error("ovsdb-server serves {dbs:?}, not Open_vSwitch")]
    WrongDatabase { dbs: Vec<String> },
    #[error("br-int.mgmt: {0}")]
    OpenFlow(#[from] OpenFlowError),
}

/// Why one attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum Attempt {
    #[error("{}: {source}", socket.display())]
    Connect {
        socket: PathBuf,
        #[source]
        source: RpcError,
    },
    #[error("list_dbs: {0}")]
    ListDbs(#[source] ovsdb::OvsdbError),
    #[error(transparent)]
    Pidfile(#[from] DaemonError),
    #[error("{} not written yet (spawned pid {spawned})", path.display())]
    NoPid { path: PathBuf, spawned: i32 },
    #[error("ovn-controller does not answer on {}: {source}", ctl.display())]
    Unixctl {
        ctl: PathBuf,
        #[source]
        source: RpcError,
    },
    #[error("ovn-controller is {status:?} to the OVN Southbound")]
    NotConnected { status: String },
}

/// What a daemon that answers gives its caller.
#[derive(Debug)]
pub enum Answering {
    /// A connection to its database (the Southbound's or conf.db's).
    Database(Client),
    /// `br-int.mgmt` answered OpenFlow.
    Switch,
    /// ovn-controller's control socket.
    Controller { ctl: PathBuf },
}

impl Daemon {
    /// How long a freshly spawned daemon gets to answer.
    pub fn answer_budget(self, cfg: &Config) -> Duration {
        match self {
            Daemon::Vswitchd => cfg.mgmt_deadline,
            _ => cfg.stage_deadline,
        }
    }

    /// Waits until the process we spawned as `spawned` answers (see the module doc).
    pub async fn wait_answering(self, cfg: &Config, spawned: i32) -> Result<Answering, WaitError> {
        let budget = self.answer_budget(cfg);
        let deadline = Instant::now() + budget;
        let over = |last| WaitError::Deadline {
            daemon: self.name(),
            deadline: budget,
            last,
        };
        let l = &cfg.layout;
        match self {
            Daemon::SbServer => Ok(Answering::Database(
                connect_when_up(&l.sb_sock(), deadline)
                    .await
                    .map_err(over)?,
            )),
            Daemon::OvsdbServer => {
                let (c, dbs) = retry(deadline, |left| async move {
                    let c = connect(&l.db_sock(), left).await?;
                    let dbs = ovsdb::list_dbs(&c, left).await.map_err(Attempt::ListDbs)?;
                    Ok((c, dbs))
                })
                .await
                .map_err(over)?;
                match dbs.iter().any(|d| d == "Open_vSwitch") {
                    true => Ok(Answering::Database(c)),
                    false => Err(WaitError::WrongDatabase { dbs }),
                }
            }
            Daemon::Vswitchd => {
                let mgmt = l.mgmt_sock(settings::BRIDGE);
                openflow::wait_ready(&mgmt, cfg.mgmt_backoff, deadline, Duration::from_secs(1))
                    .await?;
                Ok(Answering::Switch)
            }
            Daemon::OvnController => {
                let pid = self.own_pid(cfg, spawned, deadline).await.map_err(over)?;
                let ctl = self.ctl(l, pid);
                retry(deadline, |left| {
                    let ctl = &ctl;
                    async move {
                        unixctl::call(ctl, "connection-status", &[], left.min(SECOND))
                            .await
                            .map(|_| ())
                            .map_err(|source| Attempt::Unixctl {
                                ctl: ctl.clone(),
                                source,
                            })
                    }
                })
                .await
                .map_err(over)?;
                Ok(Answering::Controller { ctl })
            }
        }
    }

    /// The daemon's own pid: the one we spawned, or its pidfile's under a `DEBUG_WRAPPER`
    /// (whose pid is the wrapper's).
    async fn own_pid(self, cfg: &Config, spawned: i32, deadline: Instant) -> Result<i32, Attempt> {
        if !cfg.debug_wrapper.wraps() {
            return Ok(spawned);
        }
        let l = &cfg.layout;
        retry(deadline, |_| async move {
            // `spawn` removed the old pidfile, so any pid in it now is this daemon's (a
            // wrapper that `exec`s keeps `spawned`; one that forks does not).
            match self.read_pid(l)? {
                Some(pid) => Ok(pid),
                None => Err(Attempt::NoPid {
                    path: self.pidfile(l),
                    spawned,
                }),
            }
        })
        .await
    }
}

const SECOND: Duration = Duration::from_secs(1);

async fn connect(path: &Path, left: Duration) -> Result<Client, Attempt> {
    Client::connect(path, left.min(2 * SECOND))
        .await
        .map_err(|source| Attempt::Connect {
            socket: path.to_path_buf(),
            source,
        })
}

/// Connects, retrying while the socket is missing or refused (the daemon is still starting).
pub async fn connect_when_up(path: &Path, deadline: Instant) -> Result<Client, Attempt> {
    retry(deadline, |left| connect(path, left)).await
}

/// Asks ovn-controller behind `ctl` once whether it is connected to the OVN Southbound.
pub async fn controller_connected(ctl: &Path, t: Duration) -> Result<(), Attempt> {
    match unixctl::call(ctl, "connection-status", &[], t).await {
        Ok(status) if status == "connected" => Ok(()),
        Ok(status) => Err(Attempt::NotConnected { status }),
        Err(source) => Err(Attempt::Unixctl {
            ctl: ctl.to_path_buf(),
            source,
        }),
    }
}

/// Waits until ovn-controller behind `ctl` is connected to the Southbound, until `deadline`.
pub async fn controller_connected_by(ctl: &Path, deadline: Instant) -> Result<(), Attempt> {
    retry(deadline, |left| controller_connected(ctl, left.min(SECOND))).await
}

/// Retries `f` with full-jitter backoff (5 ms .. 100 ms) until it succeeds or `deadline`;
/// `f` gets the time left. The error is the last attempt's.
pub async fn retry<T, E, F, Fut>(deadline: Instant, mut f: F) -> Result<T, E>
where
    F: FnMut(Duration) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let policy = Policy {
        base: Duration::from_millis(5),
        cap: Duration::from_millis(100),
    };
    let mut r = Retry::new(policy, deadline);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let err = match f(left.max(Duration::from_millis(1))).await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        match r.next_delay(Instant::now(), fastrand::f64()) {
            Some(d) => tokio::time::sleep(d).await,
            None => return Err(err),
        }
    }
}

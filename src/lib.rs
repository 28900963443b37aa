//! ovs-ovn-supervisor: the whole entrypoint of Kube-OVN's `ovs-ovn` pod.
//!
//! `run` brings a node up stage by stage (config → conf.db → ovsdb-server → one settings
//! transaction → ovs-vswitchd → br-int.mgmt answering OpenFlow → ovn-controller) and supervises
//! the daemons in the foreground; `probe` answers Kubernetes exec probes.
//!
//! The folders are the architecture (docs/architecture.md has the map). Arrows point one way:
//! `main` → [`supervisor`] → the concerns ([`config`], [`host`], [`confdb`], [`settings`],
//! [`kubeovn_compat`], [`daemon`], [`status`], [`control`], [`takeover`]) → the primitives
//! ([`ovs`]: JSON-RPC, OVSDB, unixctl, OpenFlow; [`process`]: the reaper and backoff;
//! [`nodefile`]: bounded, non-blocking reads of files others may have put there). Side
//! effects live at the edges so the decisions can be tested without a host.

pub mod confdb;
pub mod config;
pub mod control;
pub mod daemon;
pub mod dataplane;
pub mod host;
pub mod kubeovn_compat;
pub mod logging;
pub mod nodefile;
pub mod ovs;
pub mod process;
pub mod settings;
pub mod status;
pub mod supervisor;
pub mod takeover;

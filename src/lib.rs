//! ovs-ovn-supervisor: the whole entrypoint of Kube-OVN's `ovs-ovn` pod.
//!
//! `run` brings a node up stage by stage (config → conf.db → ovsdb-server → one settings
//! transaction → ovs-vswitchd → br-int.mgmt answering OpenFlow → ovn-controller) and supervises
//! the daemons in the foreground; `probe` answers Kubernetes exec probes. Each module owns one
//! concern; side effects live at the edges so the decisions can be tested without a host.

pub mod backoff;
pub mod cli;
pub mod config;
pub mod control;
pub mod control_client;
pub mod control_conns;
pub mod daemons;
pub mod dbfile;
pub mod dbguard;
pub mod debug_wrapper;
pub mod diskspace;
pub mod firewall;
pub mod fsguard;
pub mod handback;
pub mod health;
pub mod hostcheck;
pub mod hostprep;
pub mod instance;
pub mod jsonrpc;
pub mod kubeovn_compat;
pub mod logging;
pub mod netns;
pub mod openflow;
pub mod ovsdb;
pub mod paths;
pub mod policy;
pub mod preflight;
pub mod process;
pub mod settings;
pub mod signals;
pub mod skew;
pub mod stale;
pub mod supervisor;
pub mod symlink;
pub mod takeover;
pub mod takeover_legacy;
pub mod tlswatch;
pub mod tuning;
pub mod unixctl;

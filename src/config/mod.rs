//! Turns raw flag/env strings into a validated [`Config`], before anything touches the disk.
//!
//! Invariants: resolution is pure (the host name and current directory come in as arguments);
//! every rejected value yields a [`ConfigError`] naming the variable, the value and what is
//! accepted; an empty variable counts as unset, because Kubernetes manifests often render
//! `value: ""` for optional settings.
//!
//! Layout: the types of a resolved configuration are here; [`Config::resolve`] and its groups
//! of settings are in `resolve`, the Southbound's precedence in `southbound`, parsers of single
//! values in `values`, the error in `error`, and where the node's files live in [`paths`].

pub mod cli;
pub mod debug_wrapper;
mod error;
pub mod http;
pub mod paths;
mod resolve;
pub mod restart;
mod southbound;
mod values;

use std::path::PathBuf;
use std::time::Duration;

use crate::config::paths::Layout;
use crate::process::backoff::Policy;

pub use crate::config::debug_wrapper::DebugWrapper;
pub use crate::config::error::ConfigError;
pub use crate::config::values::{
    is_node_name, kube_ovn_flag, parse_bool, parse_tristate, parse_tunnel, parse_uint,
};

/// The variable of [`Config::core_limit`], named where the limit is applied.
pub const CORE_LIMIT_VAR: &str = "OVS_OVN_SUPERVISOR_CORE_LIMIT_MB";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelType {
    Geneve,
    Vxlan,
    Stt,
}

impl TunnelType {
    pub fn as_str(self) -> &'static str {
        match self {
            TunnelType::Geneve => "geneve",
            TunnelType::Vxlan => "vxlan",
            TunnelType::Stt => "stt",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatapathType {
    System,
    Netdev,
}

impl DatapathType {
    pub fn as_str(self) -> &'static str {
        match self {
            DatapathType::System => "system",
            DatapathType::Netdev => "netdev",
        }
    }
}

/// What a rolling-update takeover does with br-int's table (`OVS_OVN_SUPERVISOR_TAKEOVER_FLOWS`;
/// the successor's setting rules: it is sent with the handover request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TakeoverFlows {
    /// The old instance saves br-int's table, the new one restores it into its vswitchd before
    /// ovn-controller starts.
    Restore,
    /// Nothing saved: the new vswitchd keeps the kernel datapath's flows (flow-restore-wait)
    /// until ovn-controller's table is in.
    Keep,
    /// The old instance saves br-int's table; the new one keeps the datapath's flows as with
    /// `Keep`, and restores the saved table only if ovn-controller has put nothing in br-int
    /// by the time the flag must go ([`crate::dataplane::late_restore`]).
    KeepOrRestore,
}

impl TakeoverFlows {
    pub fn as_str(self) -> &'static str {
        match self {
            TakeoverFlows::Restore => "restore",
            TakeoverFlows::Keep => "keep",
            TakeoverFlows::KeepOrRestore => "keep-or-restore",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// How a sandbox keeps its bridge's devices off the host's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxNet {
    /// A private network namespace if we may create one, otherwise dummy devices.
    Auto,
    /// A private network namespace, or fail.
    Netns,
    /// vswitchd's dummy devices (`--enable-dummy=override`): no kernel device at all.
    Dummy,
}

/// The OVN Southbound the node's ovn-controller connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Southbound {
    /// The `external_ids:ovn-remote` value.
    pub remote: String,
    /// True when we run the Southbound ovsdb-server ourselves (sandbox only).
    pub embedded: bool,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub layout: Layout,
    /// `Some` in sandbox mode.
    pub sandbox_net: Option<SandboxNet>,
    pub tunnel: TunnelType,
    pub hostname: String,
    pub southbound: Southbound,
    pub ssl: bool,
    pub remote_probe_interval_ms: u64,
    pub openflow_probe_interval_s: u64,
    pub hw_offload: bool,
    pub debug_wrapper: DebugWrapper,
    pub datapath_type: DatapathType,
    pub handler_threads: Option<u32>,
    pub revalidator_threads: Option<u32>,
    /// ovn-controller's `ovn-ofctrl-wait-before-clear`; zero: not set.
    pub ofctrl_wait_before_clear: Duration,
    pub mgmt_backoff: Policy,
    pub mgmt_deadline: Duration,
    pub stage_deadline: Duration,
    pub stop_budget: Duration,
    /// How long a handed-over instance waits for its successor to confirm before it takes
    /// the node back (`supervisor_handback`).
    pub handover_confirm: Duration,
    pub log_format: LogFormat,
    pub log_filter: String,
    pub tls_dir: PathBuf,
    pub vswitch_schema: PathBuf,
    pub sb_schema: PathBuf,
    pub pod: Option<String>,
    /// Where host files are read (`/` in production; a fake host in tests).
    pub host_root: PathBuf,
    pub manage_modules: bool,
    /// The compatibility link to `OVS_RUNDIR`; `None` in the sandbox.
    pub rundir_link: Option<PathBuf>,
    /// Manage the tunnel port rule; never in the sandbox.
    pub firewall: bool,
    /// `None` = decide from the host's addresses.
    pub firewall_ipv6: Option<bool>,
    /// How often the rule is checked again while the node runs; `None`: only at start (or no
    /// firewall at all).
    pub firewall_recheck: Option<Duration>,
    /// A rule that cannot be set at start stops the start; otherwise the node starts without
    /// it (a warning, `status`) and the recheck keeps trying.
    pub firewall_required: bool,
    /// Take over from a live instance (rolling update) rather than refuse to start.
    pub takeover: bool,
    /// br-int's table through a takeover.
    pub takeover_flows: TakeoverFlows,
    /// `external_ids:ovn-match-northd-version`; with it, a takeover first checks that our
    /// ovn-controller's internal version matches ovn-northd's (`takeover::northd`).
    pub match_northd_version: bool,
    /// How crashed and hung daemons are restarted.
    pub restart: restart::Policy,
    /// Readiness marker for dependents: present exactly while the node is ready.
    pub ready_file: Option<PathBuf>,
    /// Cadence of the background health check.
    pub health_interval: Duration,
    /// The HTTP endpoint's address; `None`: off.
    pub http: Option<std::net::SocketAddr>,
    /// HTTPS on the HTTP endpoint from these files; `None`: plain HTTP.
    pub http_tls: Option<http::TlsFiles>,
    /// The daemons' core file size limit (soft; capped at the hard limit when applied).
    pub core_limit: crate::process::limits::Size,
    /// Things worth telling the operator that do not stop the start.
    pub warnings: Vec<String>,
}

#[cfg(test)]
mod readme_tests;
#[cfg(test)]
mod tests;

//! Turns raw flag/env strings into a validated [`Config`], before anything touches the disk.
//!
//! Invariants: resolution is pure (the host name and current directory come in as arguments);
//! every rejected value yields a [`ConfigError`] naming the variable, the value and what is
//! accepted; an empty variable counts as unset, because Kubernetes manifests often render
//! `value: ""` for optional settings.

pub mod cli;
pub mod debug_wrapper;
pub mod paths;
pub mod restart;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::cli::NodeArgs;
use crate::config::paths::Layout;
use crate::process::backoff::Policy;

pub use crate::config::debug_wrapper::DebugWrapper;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{var}={value:?} is invalid: expected {expected}")]
    Invalid {
        var: &'static str,
        value: String,
        expected: String,
    },
    #[error("no OVN Southbound address: set OVN_SB_ADDR, OVN_DB_IPS, or OVN_SB_SERVICE_HOST and OVN_SB_SERVICE_PORT (or use --sandbox for an embedded one)")]
    NoSouthbound,
    #[error("{path}: unix socket path {socket} is {len} bytes, over the kernel's limit of 107; use a shorter {var}")]
    SocketPathTooLong {
        var: &'static str,
        path: PathBuf,
        socket: PathBuf,
        len: usize,
    },
}

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
    /// Take over from a live instance (rolling update) rather than refuse to start.
    pub takeover: bool,
    /// How crashed and hung daemons are restarted.
    pub restart: restart::Policy,
    /// Readiness marker for dependents: present exactly while the node is ready.
    pub ready_file: Option<PathBuf>,
    /// Cadence of the background health check.
    pub health_interval: Duration,
    /// Things worth telling the operator that do not stop the start.
    pub warnings: Vec<String>,
}

/// Largest interval OVSDB's integer columns and OVN's int parsing take without wrapping.
const MAX_INTERVAL_MS: u64 = i32::MAX as u64;

/// An env value, or `None` when unset or empty.
fn present(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.trim().is_empty()).map(str::trim)
}

fn invalid(var: &'static str, value: &str, expected: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        var,
        value: value.to_string(),
        expected: expected.into(),
    }
}

/// Unsigned decimal in `min..=max`; signs, blanks and overflow are rejected, not wrapped.
pub fn parse_uint(
    var: &'static str,
    raw: &Option<String>,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some(s) = present(raw) else {
        return Ok(default);
    };
    let expected = || format!("a whole number from {min} to {max}");
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(var, s, expected()));
    }
    match s.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(invalid(var, s, expected())),
    }
}

fn parse_opt_uint(
    var: &'static str,
    raw: &Option<String>,
    min: u64,
    max: u64,
) -> Result<Option<u64>, ConfigError> {
    if present(raw).is_none() {
        return Ok(None);
    }
    parse_uint(var, raw, 0, min, max).map(Some)
}

pub fn parse_bool(var: &'static str, raw: &Option<String>) -> Result<bool, ConfigError> {
    let Some(s) = present(raw) else {
        return Ok(false);
    };
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(invalid(
            var,
            s,
            "true or false (1/0, yes/no, on/off also accepted)",
        )),
    }
}

/// A boolean read the way Kube-OVN's scripts read it: unset or empty is off; `"true"` and
/// `"false"` mean what they say; any other value (`"True"`, `"1"`, `"yes"`) counts as
/// `other_means` — ENABLE_SSL is on for anything but "false", HW_OFFLOAD only for "true" — with
/// a warning, because the operator probably meant something else.
pub fn kube_ovn_flag(
    var: &'static str,
    raw: &Option<String>,
    other_means: bool,
    warnings: &mut Vec<String>,
) -> bool {
    match present(raw) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            let means = if other_means { "on" } else { "off" };
            warnings.push(format!(
                "{var}={other:?} is neither \"true\" nor \"false\": taken as {means}, as Kube-OVN reads it"
            ));
            other_means
        }
    }
}

pub fn parse_tunnel(raw: &Option<String>) -> Result<TunnelType, ConfigError> {
    parse_choice(
        "TUNNEL_TYPE",
        raw,
        TunnelType::Geneve,
        &[
            ("geneve", TunnelType::Geneve),
            ("vxlan", TunnelType::Vxlan),
            ("stt", TunnelType::Stt),
        ],
    )
}

/// `auto` (or unset) → `None`, else a boolean.
pub fn parse_tristate(
    var: &'static str,
    raw: &Option<String>,
) -> Result<Option<bool>, ConfigError> {
    match present(raw) {
        None => Ok(None),
        Some(s) if s.eq_ignore_ascii_case("auto") => Ok(None),
        Some(_) => parse_bool(var, raw)
            .map(Some)
            .map_err(|_| invalid(var, present(raw).unwrap_or_default(), "auto, true or false")),
    }
}

fn parse_choice<T: Copy>(
    var: &'static str,
    raw: &Option<String>,
    default: T,
    choices: &[(&str, T)],
) -> Result<T, ConfigError> {
    let Some(s) = present(raw) else {
        return Ok(default);
    };
    choices
        .iter()
        .find(|(name, _)| *name == s)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
            invalid(var, s, format!("one of {}", names.join(", ")))
        })
}

/// A DNS name as RFC 1123 allows it: dot-separated labels of letters, digits and inner '-',
/// at most 63 bytes each and 253 in all, not all-numeric at the top.
fn is_dns_name(s: &str) -> bool {
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let s = s.strip_suffix('.').unwrap_or(s);
    s.len() <= 253
        && s.split('.').all(label_ok)
        && !s
            .rsplit('.')
            .next()
            .is_some_and(|top| top.bytes().all(|b| b.is_ascii_digit()))
}

/// A Kubernetes node name: an RFC 1123 subdomain (lowercase).
pub fn is_node_name(s: &str) -> bool {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    s.len() <= 253 && s.split('.').all(label_ok)
}

/// A host as written in `OVN_DB_IPS` (an IP, IPv6 optionally bracketed, or a DNS name, which
/// OVS resolves itself), rendered for an OVSDB remote.
fn remote_host(var: &'static str, s: &str) -> Result<String, ConfigError> {
    let bare = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => Ok(a.to_string()),
        Ok(IpAddr::V6(a)) => Ok(format!("[{a}]")),
        Err(_) if is_dns_name(bare) => Ok(bare.to_string()),
        Err(_) => Err(invalid(var, s, "an IPv4 or IPv6 address, or a host name")),
    }
}

fn southbound(args: &NodeArgs, ssl: bool, sandbox: bool) -> Result<Southbound, ConfigError> {
    let proto = if ssl { "ssl" } else { "tcp" };
    // Checked whatever takes precedence: a bad value is a mistake even when unused.
    let service_port = parse_uint(
        "OVN_SB_SERVICE_PORT",
        &args.ovn_sb_service_port,
        6642,
        1,
        65535,
    )?;
    if let Some(addr) = present(&args.ovn_sb_addr) {
        if addr.chars().any(char::is_whitespace) {
            return Err(invalid(
                "OVN_SB_ADDR",
                addr,
                "comma-separated OVSDB remotes without blanks, e.g. tcp:10.0.0.1:6642,tcp:10.0.0.2:6642",
            ));
        }
        for entry in addr.split(',') {
            let ok = ["tcp:", "ssl:", "unix:"]
                .iter()
                .any(|p| entry.starts_with(p) && entry.len() > p.len());
            if !ok {
                return Err(invalid(
                    "OVN_SB_ADDR",
                    addr,
                    "comma-separated OVSDB remotes such as tcp:10.0.0.1:6642, ssl:[fd00::1]:6642 or unix:/path",
                ));
            }
        }
        return Ok(Southbound {
            remote: addr.to_string(),
            embedded: false,
        });
    }
    let port = parse_uint("KUBE_OVN_SB_PORT", &args.kube_ovn_sb_port, 6642, 1, 65535)?;
    if let Some(ips) = present(&args.ovn_db_ips) {
        let mut remotes = Vec::new();
        // As Kube-OVN's scripts do: blanks anywhere are dropped.
        let ips: String = ips.chars().filter(|c| !c.is_whitespace()).collect();
        for ip in ips.split(',').filter(|s| !s.is_empty()) {
            remotes.push(format!("{proto}:{}:{port}", remote_host("OVN_DB_IPS", ip)?));
        }
        if remotes.is_empty() {
            return Err(invalid(
                "OVN_DB_IPS",
                &ips,
                "a comma-separated list of IP addresses",
            ));
        }
        return Ok(Southbound {
            remote: remotes.join(","),
            embedded: false,
        });
    }
    if let Some(host) = present(&args.ovn_sb_service_host) {
        let host = remote_host("OVN_SB_SERVICE_HOST", host)?;
        return Ok(Southbound {
            remote: format!("{proto}:{host}:{service_port}"),
            embedded: false,
        });
    }
    if sandbox {
        // Filled in with the sandbox's socket path by `resolve`.
        return Ok(Southbound {
            remote: String::new(),
            embedded: true,
        });
    }
    Err(ConfigError::NoSouthbound)
}

impl Config {
    /// Validates everything. `hostname` is the machine's name, used when neither `NODE_NAME`
    /// nor `KUBE_NODE_NAME` is set; `cwd` anchors a relative sandbox path.
    pub fn resolve(args: &NodeArgs, hostname: &str, cwd: &Path) -> Result<Config, ConfigError> {
        let mut warnings = Vec::new();
        let sandbox = args.paths.sandbox.is_some();
        let (layout, layout_warnings) = Layout::resolve(&args.paths, cwd)?;
        warnings.extend(layout_warnings);

        let remote_probe_interval_ms = parse_uint(
            "OVN_REMOTE_PROBE_INTERVAL",
            &args.ovn_remote_probe_interval,
            10_000,
            0,
            MAX_INTERVAL_MS,
        )?;
        if (1..1000).contains(&remote_probe_interval_ms) {
            warnings.push(format!(
                "OVN_REMOTE_PROBE_INTERVAL={remote_probe_interval_ms}: OVN raises nonzero intervals below 1000 ms to 1000 ms"
            ));
        }
        let openflow_probe_interval_s = parse_uint(
            "OVN_REMOTE_OPENFLOW_INTERVAL",
            &args.ovn_remote_openflow_interval,
            180,
            0,
            MAX_INTERVAL_MS / 1000,
        )?;
        let tunnel = parse_tunnel(&args.tunnel_type)?;
        let ssl = kube_ovn_flag("ENABLE_SSL", &args.enable_ssl, true, &mut warnings);
        let hw_offload = kube_ovn_flag("HW_OFFLOAD", &args.hw_offload, false, &mut warnings);
        for (var, raw) in [
            ("NODE_NAME", &args.node_name),
            ("KUBE_NODE_NAME", &args.kube_node_name),
        ] {
            if let Some(name) = present(raw).filter(|n| !is_node_name(n)) {
                return Err(invalid(
                    var,
                    name,
                    "a Kubernetes node name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters",
                ));
            }
        }
        let hostname = present(&args.node_name)
            .or(present(&args.kube_node_name))
            .unwrap_or(hostname)
            .to_string();
        if hostname.is_empty() || hostname.chars().any(|c| c.is_control()) {
            return Err(invalid("NODE_NAME", &hostname, "a node name"));
        }
        let mut southbound = southbound(args, ssl, sandbox)?;
        if southbound.embedded {
            southbound.remote = format!("unix:{}", layout.sb_sock().display());
        }
        let datapath_type = parse_choice(
            "OVS_OVN_SUPERVISOR_DATAPATH_TYPE",
            &args.datapath_type,
            if sandbox {
                DatapathType::Netdev
            } else {
                DatapathType::System
            },
            &[
                ("system", DatapathType::System),
                ("netdev", DatapathType::Netdev),
            ],
        )?;
        let threads = |var, raw| parse_opt_uint(var, raw, 1, 1024).map(|o| o.map(|n| n as u32));
        let handler_threads = threads(
            "OVS_OVN_SUPERVISOR_N_HANDLER_THREADS",
            &args.n_handler_threads,
        )?;
        let revalidator_threads = threads(
            "OVS_OVN_SUPERVISOR_N_REVALIDATOR_THREADS",
            &args.n_revalidator_threads,
        )?;
        let ms = |var, raw, default, min| {
            parse_uint(var, raw, default, min, 24 * 3600 * 1000).map(Duration::from_millis)
        };
        let base = ms(
            "OVS_OVN_SUPERVISOR_MGMT_BACKOFF_BASE_MS",
            &args.mgmt_backoff_base_ms,
            10,
            1,
        )?;
        let cap = ms(
            "OVS_OVN_SUPERVISOR_MGMT_BACKOFF_CAP_MS",
            &args.mgmt_backoff_cap_ms,
            500,
            1,
        )?;
        if cap < base {
            return Err(invalid(
                "OVS_OVN_SUPERVISOR_MGMT_BACKOFF_CAP_MS",
                &cap.as_millis().to_string(),
                format!(
                    "at least OVS_OVN_SUPERVISOR_MGMT_BACKOFF_BASE_MS ({} ms)",
                    base.as_millis()
                ),
            ));
        }
        let mgmt_deadline = ms(
            "OVS_OVN_SUPERVISOR_MGMT_DEADLINE_MS",
            &args.mgmt_deadline_ms,
            60_000,
            1,
        )?;
        let stage_deadline = ms(
            "OVS_OVN_SUPERVISOR_STAGE_DEADLINE_MS",
            &args.stage_deadline_ms,
            30_000,
            1,
        )?;
        let stop_budget = ms(
            "OVS_OVN_SUPERVISOR_STOP_BUDGET_MS",
            &args.stop_budget_ms,
            25_000,
            100,
        )?;
        let handover_confirm = ms(
            "OVS_OVN_SUPERVISOR_HANDOVER_CONFIRM_MS",
            &args.handover_confirm_ms,
            (stage_deadline + mgmt_deadline).as_millis() as u64,
            100,
        )?;
        let log_format = parse_choice(
            "OVS_OVN_SUPERVISOR_LOG_FORMAT",
            &args.log_format,
            LogFormat::Text,
            &[("text", LogFormat::Text), ("json", LogFormat::Json)],
        )?;
        let sandbox_net = if sandbox {
            Some(parse_choice(
                "OVS_OVN_SUPERVISOR_SANDBOX_NET",
                &args.sandbox_net,
                SandboxNet::Auto,
                &[
                    ("auto", SandboxNet::Auto),
                    ("netns", SandboxNet::Netns),
                    ("dummy", SandboxNet::Dummy),
                ],
            )?)
        } else {
            None
        };
        let debug_wrapper = DebugWrapper::parse(&args.debug_wrapper);
        for (var, p) in [
            ("OVS_PKGDATADIR", &args.ovs_pkgdatadir),
            ("OVN_PKGDATADIR", &args.ovn_pkgdatadir),
            ("OVS_OVN_SUPERVISOR_TLS_DIR", &args.tls_dir),
            ("OVS_OVN_SUPERVISOR_READY_FILE", &args.ready_file),
            ("OVS_OVN_SUPERVISOR_HOST_ROOT", &args.host_root),
            ("OVS_OVN_SUPERVISOR_RUNDIR_LINK", &args.rundir_link),
        ] {
            if let Some(p) = p {
                crate::config::paths::check_path(var, p, false)?;
            }
        }
        let ovs_share = args
            .ovs_pkgdatadir
            .clone()
            .unwrap_or_else(|| PathBuf::from("/usr/share/openvswitch"));
        let ovn_share = args
            .ovn_pkgdatadir
            .clone()
            .unwrap_or_else(|| PathBuf::from("/usr/share/ovn"));
        let pod = match (present(&args.pod_namespace), present(&args.pod_name)) {
            (Some(ns), Some(name)) => Some(format!("{ns}/{name}")),
            (None, Some(name)) => Some(name.to_string()),
            _ => None,
        };
        let manage_modules = !parse_bool(
            "DISABLE_MODULES_MANAGEMENT",
            &args.disable_modules_management,
        )? && !sandbox;
        let firewall = match present(&args.firewall) {
            None => !sandbox,
            Some(_) => parse_bool("OVS_OVN_SUPERVISOR_FIREWALL", &args.firewall)? && !sandbox,
        };
        let firewall_ipv6 =
            parse_tristate("OVS_OVN_SUPERVISOR_FIREWALL_IPV6", &args.firewall_ipv6)?;
        let rundir_link = (!sandbox).then(|| {
            args.rundir_link
                .clone()
                .unwrap_or_else(|| PathBuf::from("/usr/local/var/run/openvswitch"))
        });
        let health_interval = ms(
            "OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS",
            &args.health_interval_ms,
            2_000,
            100,
        )?;
        let restart_base = ms(
            "OVS_OVN_SUPERVISOR_RESTART_BACKOFF_BASE_MS",
            &args.restart_backoff_base_ms,
            50,
            1,
        )?;
        let restart_cap = ms(
            "OVS_OVN_SUPERVISOR_RESTART_BACKOFF_CAP_MS",
            &args.restart_backoff_cap_ms,
            10_000,
            1,
        )?;
        if restart_cap < restart_base {
            return Err(invalid(
                "OVS_OVN_SUPERVISOR_RESTART_BACKOFF_CAP_MS",
                &restart_cap.as_millis().to_string(),
                format!(
                    "at least OVS_OVN_SUPERVISOR_RESTART_BACKOFF_BASE_MS ({} ms)",
                    restart_base.as_millis()
                ),
            ));
        }
        let restart = restart::Policy {
            backoff: Policy {
                base: restart_base,
                cap: restart_cap,
            },
            stable_after: ms(
                "OVS_OVN_SUPERVISOR_RESTART_STABLE_MS",
                &args.restart_stable_ms,
                60_000,
                1,
            )?,
            max_restarts: parse_uint(
                "OVS_OVN_SUPERVISOR_CRASH_LOOP_RESTARTS",
                &args.crash_loop_restarts,
                5,
                1,
                1000,
            )? as u32,
            window: ms(
                "OVS_OVN_SUPERVISOR_CRASH_LOOP_WINDOW_MS",
                &args.crash_loop_window_ms,
                60_000,
                1,
            )?,
            hung_after: ms(
                "OVS_OVN_SUPERVISOR_HUNG_AFTER_MS",
                &args.hung_after_ms,
                6_000,
                1,
            )?,
        };
        let takeover = match present(&args.takeover) {
            None => true,
            Some(_) => parse_bool("OVS_OVN_SUPERVISOR_TAKEOVER", &args.takeover)?,
        };
        Ok(Config {
            takeover,
            restart,
            ready_file: args
                .ready_file
                .clone()
                .filter(|p| !p.as_os_str().is_empty()),
            health_interval,
            host_root: args.host_root.clone().unwrap_or_else(|| PathBuf::from("/")),
            manage_modules,
            rundir_link,
            firewall,
            firewall_ipv6,
            layout,
            sandbox_net,
            tunnel,
            hostname,
            southbound,
            ssl,
            remote_probe_interval_ms,
            openflow_probe_interval_s,
            hw_offload,
            debug_wrapper,
            datapath_type,
            handler_threads,
            revalidator_threads,
            mgmt_backoff: Policy { base, cap },
            mgmt_deadline,
            stage_deadline,
            stop_budget,
            handover_confirm,
            log_format,
            log_filter: present(&args.log).unwrap_or("info").to_string(),
            tls_dir: args
                .tls_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("/var/run/tls")),
            vswitch_schema: ovs_share.join("vswitch.ovsschema"),
            sb_schema: ovn_share.join("ovn-sb.ovsschema"),
            pod,
            warnings,
        })
    }
}

#[cfg(test)]
mod tests;

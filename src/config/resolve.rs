//! [`Config::resolve`]: every flag and variable validated into a [`Config`], one function per
//! group of settings (probes, node identity, datapath, deadlines, files, host preparation,
//! restart policy).
//!
//! Invariants: pure (the host name and current directory come in as arguments); the groups are
//! resolved in a fixed order, so with several bad values the same one is always reported
//! first; defaults that differ in the sandbox (datapath, modules, firewall, link) are decided
//! here and nowhere else.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::cli::NodeArgs;
use super::error::ConfigError;
use super::paths::{check_path, Layout};
use super::restart::Policy as RestartPolicy;
use super::southbound::southbound;
use super::values::{
    kube_ovn_flag, parse_backoff, parse_bool, parse_bool_or, parse_choice, parse_mib_or_unlimited,
    parse_ms, parse_opt_uint, parse_takeover_flows, parse_tristate, parse_tunnel, parse_uint,
    present, MAX_INTERVAL_MS,
};
use super::{Config, DatapathType, DebugWrapper, LogFormat, SandboxNet, CORE_LIMIT_VAR};
use crate::process::backoff::Policy;

impl Config {
    /// Validates everything. `hostname` is the machine's name, used when neither `NODE_NAME`
    /// nor `KUBE_NODE_NAME` is set; `cwd` resolves a relative sandbox path.
    pub fn resolve(args: &NodeArgs, hostname: &str, cwd: &Path) -> Result<Config, ConfigError> {
        let mut warnings = Vec::new();
        let sandbox = args.paths.sandbox.is_some();
        let (layout, layout_warnings) = Layout::resolve(&args.paths, cwd)?;
        warnings.extend(layout_warnings);
        let (remote_probe_interval_ms, openflow_probe_interval_s) = probes(args, &mut warnings)?;
        let tunnel = parse_tunnel(&args.tunnel_type)?;
        let ssl = kube_ovn_flag("ENABLE_SSL", &args.enable_ssl, true, &mut warnings);
        let hw_offload = kube_ovn_flag("HW_OFFLOAD", &args.hw_offload, false, &mut warnings);
        let hostname = node_name(args, hostname)?;
        let mut southbound = southbound(args, ssl, sandbox)?;
        if southbound.embedded {
            southbound.remote = format!("unix:{}", layout.sb_sock().display());
        }
        let datapath = datapath(args, sandbox)?;
        let deadlines = deadlines(args)?;
        let (log_format, sandbox_net) = log_format_and_sandbox_net(args, sandbox)?;
        let files = files(args, sandbox)?;
        let host = host_prep(args, sandbox)?;
        let (health_interval, restart) = restart(args)?;
        let takeover = parse_bool_or("OVS_OVN_SUPERVISOR_TAKEOVER", &args.takeover, true)?;
        let takeover_flows = parse_takeover_flows(&args.takeover_flows, datapath.kind)?;
        // No ovn-northd writes a version into the sandbox's own Southbound: the key would
        // stop its ovn-controller for good.
        let match_northd_version = parse_tristate(
            "OVS_OVN_SUPERVISOR_MATCH_NORTHD_VERSION",
            &args.match_northd_version,
        )?
        .unwrap_or(!southbound.embedded);
        let core_limit = parse_mib_or_unlimited(CORE_LIMIT_VAR, &args.core_limit_mb, CORE_MIB)?;
        Ok(Config {
            layout,
            sandbox_net,
            tunnel,
            hostname,
            southbound,
            ssl,
            remote_probe_interval_ms,
            openflow_probe_interval_s,
            hw_offload,
            debug_wrapper: DebugWrapper::parse(&args.debug_wrapper),
            datapath_type: datapath.kind,
            handler_threads: datapath.handler_threads,
            revalidator_threads: datapath.revalidator_threads,
            ofctrl_wait_before_clear: datapath.wait_before_clear,
            mgmt_backoff: deadlines.mgmt_backoff,
            mgmt_deadline: deadlines.mgmt,
            stage_deadline: deadlines.stage,
            stop_budget: deadlines.stop_budget,
            handover_confirm: deadlines.handover_confirm,
            log_format,
            log_filter: present(&args.log).unwrap_or("info").to_string(),
            tls_dir: files.tls_dir,
            vswitch_schema: files.vswitch_schema,
            sb_schema: files.sb_schema,
            pod: pod_name(args),
            host_root: files.host_root,
            manage_modules: host.manage_modules,
            rundir_link: files.rundir_link,
            firewall: host.firewall,
            firewall_ipv6: host.firewall_ipv6,
            firewall_recheck: host.firewall_recheck,
            firewall_required: host.firewall_required,
            takeover,
            takeover_flows,
            match_northd_version,
            restart,
            ready_file: files.ready_file,
            health_interval,
            http: super::http::http_addr(&args.http_addr, sandbox)?,
            http_tls: super::http::http_tls(&args.http_tls_cert, &args.http_tls_key)?,
            core_limit,
            warnings,
        })
    }
}

/// `ovs-ctl`'s core size: `ulimit -c 67108864` under `/bin/sh`, which counts 512-byte blocks
/// (dash, and bash as `sh`): 32 GiB.
const CORE_MIB: u64 = 32 * 1024;

/// ovn-controller's Southbound probe interval (ms) and its OpenFlow probe interval (s).
fn probes(args: &NodeArgs, warnings: &mut Vec<String>) -> Result<(u64, u64), ConfigError> {
    let remote_ms = parse_uint(
        "OVN_REMOTE_PROBE_INTERVAL",
        &args.ovn_remote_probe_interval,
        10_000,
        0,
        MAX_INTERVAL_MS,
    )?;
    if (1..1000).contains(&remote_ms) {
        warnings.push(format!(
            "OVN_REMOTE_PROBE_INTERVAL={remote_ms}: OVN raises nonzero intervals below 1000 ms to 1000 ms"
        ));
    }
    let openflow_s = parse_uint(
        "OVN_REMOTE_OPENFLOW_INTERVAL",
        &args.ovn_remote_openflow_interval,
        180,
        0,
        MAX_INTERVAL_MS / 1000,
    )?;
    Ok((remote_ms, openflow_s))
}

/// `NODE_NAME`, else `KUBE_NODE_NAME`, else the machine's name. Either variable, when set,
/// must be a Kubernetes node name, the one not used included.
fn node_name(args: &NodeArgs, machine: &str) -> Result<String, ConfigError> {
    for (var, raw) in [
        ("NODE_NAME", &args.node_name),
        ("KUBE_NODE_NAME", &args.kube_node_name),
    ] {
        if let Some(name) = present(raw).filter(|n| !super::is_node_name(n)) {
            return Err(ConfigError::invalid(
                var,
                name,
                "a Kubernetes node name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters",
            ));
        }
    }
    let hostname = present(&args.node_name)
        .or(present(&args.kube_node_name))
        .unwrap_or(machine)
        .to_string();
    // The machine's own name is not held to Kubernetes' rules, only kept printable.
    if hostname.is_empty() || hostname.chars().any(|c| c.is_control()) {
        return Err(ConfigError::invalid("NODE_NAME", &hostname, "a node name"));
    }
    Ok(hostname)
}

struct Datapath {
    kind: DatapathType,
    handler_threads: Option<u32>,
    revalidator_threads: Option<u32>,
    wait_before_clear: Duration,
}

/// With the kernel datapath, a restarted ovn-controller computes its whole table before it
/// replaces br-int's flows, or the flows missing from a partial table drop packets (the kernel
/// datapath's flows are checked against the new table). OVN's own advice is twice the longest
/// recompute; a small node recomputes in well under a second. The userspace datapath dies with
/// vswitchd, so there the wait would only delay a restarted vswitchd's flows: off by default.
const WAIT_BEFORE_CLEAR_MS: u64 = 2_000;

/// The datapath type (the sandbox defaults to userspace), vswitchd's thread overrides and how
/// long ovn-controller computes before it replaces br-int's flows.
fn datapath(args: &NodeArgs, sandbox: bool) -> Result<Datapath, ConfigError> {
    let kind = parse_choice(
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
    Ok(Datapath {
        kind,
        handler_threads: threads(
            "OVS_OVN_SUPERVISOR_N_HANDLER_THREADS",
            &args.n_handler_threads,
        )?,
        revalidator_threads: threads(
            "OVS_OVN_SUPERVISOR_N_REVALIDATOR_THREADS",
            &args.n_revalidator_threads,
        )?,
        wait_before_clear: parse_ms(
            "OVS_OVN_SUPERVISOR_OFCTRL_WAIT_BEFORE_CLEAR_MS",
            &args.ofctrl_wait_before_clear_ms,
            match kind {
                DatapathType::System => WAIT_BEFORE_CLEAR_MS,
                DatapathType::Netdev => 0,
            },
            0,
        )?,
    })
}

struct Deadlines {
    mgmt_backoff: Policy,
    mgmt: Duration,
    stage: Duration,
    stop_budget: Duration,
    handover_confirm: Duration,
}

/// How long the start and the stop may take, and the br-int.mgmt retry backoff.
fn deadlines(args: &NodeArgs) -> Result<Deadlines, ConfigError> {
    let mgmt_backoff = parse_backoff(
        (
            "OVS_OVN_SUPERVISOR_MGMT_BACKOFF_BASE_MS",
            &args.mgmt_backoff_base_ms,
            10,
        ),
        (
            "OVS_OVN_SUPERVISOR_MGMT_BACKOFF_CAP_MS",
            &args.mgmt_backoff_cap_ms,
            500,
        ),
    )?;
    let var = "OVS_OVN_SUPERVISOR_MGMT_DEADLINE_MS";
    let mgmt = parse_ms(var, &args.mgmt_deadline_ms, 60_000, 1)?;
    let var = "OVS_OVN_SUPERVISOR_STAGE_DEADLINE_MS";
    let stage = parse_ms(var, &args.stage_deadline_ms, 30_000, 1)?;
    let var = "OVS_OVN_SUPERVISOR_STOP_BUDGET_MS";
    let stop_budget = parse_ms(var, &args.stop_budget_ms, 25_000, 100)?;
    // A successor gets the whole start it may take to confirm: a stage plus br-int.mgmt.
    let whole_start = (stage + mgmt).as_millis() as u64;
    let var = "OVS_OVN_SUPERVISOR_HANDOVER_CONFIRM_MS";
    let handover_confirm = parse_ms(var, &args.handover_confirm_ms, whole_start, 100)?;
    Ok(Deadlines {
        mgmt_backoff,
        mgmt,
        stage,
        stop_budget,
        handover_confirm,
    })
}

fn log_format_and_sandbox_net(
    args: &NodeArgs,
    sandbox: bool,
) -> Result<(LogFormat, Option<SandboxNet>), ConfigError> {
    let log_format = parse_choice(
        "OVS_OVN_SUPERVISOR_LOG_FORMAT",
        &args.log_format,
        LogFormat::Text,
        &[("text", LogFormat::Text), ("json", LogFormat::Json)],
    )?;
    if !sandbox {
        return Ok((log_format, None));
    }
    let net = parse_choice(
        "OVS_OVN_SUPERVISOR_SANDBOX_NET",
        &args.sandbox_net,
        SandboxNet::Auto,
        &[
            ("auto", SandboxNet::Auto),
            ("netns", SandboxNet::Netns),
            ("dummy", SandboxNet::Dummy),
        ],
    )?;
    Ok((log_format, Some(net)))
}

struct Files {
    tls_dir: PathBuf,
    vswitch_schema: PathBuf,
    sb_schema: PathBuf,
    ready_file: Option<PathBuf>,
    host_root: PathBuf,
    rundir_link: Option<PathBuf>,
}

/// Paths outside the node's layout: schemas, TLS files, the ready marker, the host root and
/// the compatibility link (none in the sandbox).
fn files(args: &NodeArgs, sandbox: bool) -> Result<Files, ConfigError> {
    for (var, p) in [
        ("OVS_PKGDATADIR", &args.ovs_pkgdatadir),
        ("OVN_PKGDATADIR", &args.ovn_pkgdatadir),
        ("OVS_OVN_SUPERVISOR_TLS_DIR", &args.tls_dir),
        ("OVS_OVN_SUPERVISOR_READY_FILE", &args.ready_file),
        ("OVS_OVN_SUPERVISOR_HOST_ROOT", &args.host_root),
        ("OVS_OVN_SUPERVISOR_RUNDIR_LINK", &args.rundir_link),
    ] {
        if let Some(p) = p {
            check_path(var, p, false)?;
        }
    }
    let or = |v: &Option<PathBuf>, d: &str| v.clone().unwrap_or_else(|| PathBuf::from(d));
    let ovs_share = or(&args.ovs_pkgdatadir, "/usr/share/openvswitch");
    let ovn_share = or(&args.ovn_pkgdatadir, "/usr/share/ovn");
    Ok(Files {
        tls_dir: or(&args.tls_dir, "/var/run/tls"),
        vswitch_schema: ovs_share.join("vswitch.ovsschema"),
        sb_schema: ovn_share.join("ovn-sb.ovsschema"),
        ready_file: args
            .ready_file
            .clone()
            .filter(|p| !p.as_os_str().is_empty()),
        host_root: or(&args.host_root, "/"),
        rundir_link: (!sandbox).then(|| or(&args.rundir_link, "/usr/local/var/run/openvswitch")),
    })
}

/// `NAMESPACE/NAME` of our pod, for log lines and status.
fn pod_name(args: &NodeArgs) -> Option<String> {
    match (present(&args.pod_namespace), present(&args.pod_name)) {
        (Some(ns), Some(name)) => Some(format!("{ns}/{name}")),
        (None, Some(name)) => Some(name.to_string()),
        _ => None,
    }
}

struct HostPrep {
    manage_modules: bool,
    firewall: bool,
    firewall_ipv6: Option<bool>,
    firewall_recheck: Option<Duration>,
    firewall_required: bool,
}

/// What `run` may change on the host; the sandbox changes nothing outside its directory, so
/// modules and firewall are off there whatever the variables say (they are still validated).
fn host_prep(args: &NodeArgs, sandbox: bool) -> Result<HostPrep, ConfigError> {
    let var = "DISABLE_MODULES_MANAGEMENT";
    let manage_modules = !parse_bool(var, &args.disable_modules_management)? && !sandbox;
    let var = "OVS_OVN_SUPERVISOR_FIREWALL";
    let firewall = parse_bool_or(var, &args.firewall, true)? && !sandbox;
    let var = "OVS_OVN_SUPERVISOR_FIREWALL_IPV6";
    let firewall_ipv6 = parse_tristate(var, &args.firewall_ipv6)?;
    let var = "OVS_OVN_SUPERVISOR_FIREWALL_RECHECK_MS";
    let recheck = parse_ms(var, &args.firewall_recheck_ms, 10_000, 0)?;
    let var = "OVS_OVN_SUPERVISOR_FIREWALL_REQUIRED";
    let firewall_required = parse_bool_or(var, &args.firewall_required, false)?;
    Ok(HostPrep {
        manage_modules,
        firewall,
        firewall_ipv6,
        firewall_recheck: Some(recheck).filter(|d| firewall && !d.is_zero()),
        firewall_required,
    })
}

/// The health check's cadence and how crashed and hung daemons are restarted.
fn restart(args: &NodeArgs) -> Result<(Duration, RestartPolicy), ConfigError> {
    let var = "OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS";
    let health_interval = parse_ms(var, &args.health_interval_ms, 2_000, 100)?;
    let backoff = parse_backoff(
        (
            "OVS_OVN_SUPERVISOR_RESTART_BACKOFF_BASE_MS",
            &args.restart_backoff_base_ms,
            50,
        ),
        (
            "OVS_OVN_SUPERVISOR_RESTART_BACKOFF_CAP_MS",
            &args.restart_backoff_cap_ms,
            10_000,
        ),
    )?;
    let var = "OVS_OVN_SUPERVISOR_RESTART_STABLE_MS";
    let stable_after = parse_ms(var, &args.restart_stable_ms, 60_000, 1)?;
    let var = "OVS_OVN_SUPERVISOR_CRASH_LOOP_RESTARTS";
    let max_restarts = parse_uint(var, &args.crash_loop_restarts, 5, 1, 1000)? as u32;
    let var = "OVS_OVN_SUPERVISOR_CRASH_LOOP_WINDOW_MS";
    let window = parse_ms(var, &args.crash_loop_window_ms, 60_000, 1)?;
    let var = "OVS_OVN_SUPERVISOR_HUNG_AFTER_MS";
    let hung_after = parse_ms(var, &args.hung_after_ms, 6_000, 1)?;
    let busy_var = "OVS_OVN_SUPERVISOR_BUSY_LIMIT_MS";
    let busy_limit = parse_ms(busy_var, &args.busy_limit_ms, 120_000, 1)?;
    if busy_limit < hung_after {
        return Err(ConfigError::invalid(
            busy_var,
            &busy_limit.as_millis().to_string(),
            format!("at least {var} ({} ms)", hung_after.as_millis()),
        ));
    }
    let policy = RestartPolicy {
        backoff,
        stable_after,
        max_restarts,
        window,
        hung_after,
        busy_limit,
    };
    Ok((health_interval, policy))
}

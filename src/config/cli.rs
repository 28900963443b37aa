//! Command-line and environment surface.
//!
//! Every knob is a clap argument with an `env` name, so `--help` lists the variable an operator
//! sets. Kube-OVN's names are honoured verbatim; new knobs share the `OVS_OVN_SUPERVISOR_`
//! prefix. Values are taken as raw strings here and validated in [`crate::config`], so an error
//! can name the variable, the value and what is accepted — clap's own messages cannot name the
//! env var a value came from.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

/// Prefix of every knob this project adds (Kube-OVN's own names are used as they are).
pub const PREFIX: &str = "OVS_OVN_SUPERVISOR_";

#[derive(Debug, Parser)]
#[command(
    name = "ovs-ovn-supervisor",
    version,
    about = "Entrypoint of the ovs-ovn pod: runs ovsdb-server, ovs-vswitchd and ovn-controller in order and supervises them",
    after_help = "Exit codes: 0 clean stop or probe success; 1 runtime failure (a stage failed or missed its deadline, a daemon died during the start, a crash loop, a host fix failed); 2 bad configuration or usage, or a system-id.conf that is not a small regular file holding an id (nothing changed on disk); 3 probe failure; 4 preflight failure (run refused to start: a failed check, an untrusted directory, the instance lock held by another supervisor, a takeover whose ovn-controller ovn-northd would not accept; or preflight found a fail)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Bring the node up and supervise it in the foreground until SIGTERM/SIGINT.
    Run(Box<NodeArgs>),
    /// Answer a Kubernetes exec probe: exit 0 when the condition holds, 3 with a reason otherwise.
    Probe(ProbeArgs),
    /// Show each daemon (pid, state, uptime, restarts, last exit) and the start timeline.
    Status(StatusArgs),
    /// Check the host (kernel, modules, run-dir link, stale state, firewall, other CNIs) without
    /// changing anything; exit 4 when something would stop `run`.
    Preflight(Box<PreflightArgs>),
    /// Add or remove the tunnel port's INPUT accept rule (by content, never by index).
    Firewall(FirewallArgs),
    /// Take the node away for good (Kube-OVN's cleanup.sh runs it as /kube-ovn/uninstall.sh):
    /// the running supervisor stops every daemon and restarts none (it idles until SIGTERM);
    /// the tunnel devices and the datapath, Kube-OVN's iptables chains, rules and ipsets, our
    /// tunnel port rule and the files in our directories are removed. Exit 0 when all of it is
    /// done (again, or with no supervisor running, too); 1 naming what failed.
    Uninstall(UninstallArgs),
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub paths: PathArgs,
    /// table or json.
    #[arg(long, env = "OVS_OVN_SUPERVISOR_OUTPUT")]
    pub output: Option<String>,
}

#[derive(Debug, Args)]
pub struct PreflightArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// table or json.
    #[arg(long, env = "OVS_OVN_SUPERVISOR_OUTPUT")]
    pub output: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FirewallAction {
    /// Make sure the rule for TUNNEL_TYPE is present once; remove ours for other tunnel types.
    Ensure,
    /// Remove every rule of ours, and nothing else.
    Remove,
}

#[derive(Debug, Args)]
pub struct FirewallArgs {
    #[arg(value_enum)]
    pub action: FirewallAction,
    #[arg(long, env = "TUNNEL_TYPE")]
    pub tunnel_type: Option<String>,
    #[arg(long, env = "OVS_OVN_SUPERVISOR_HOST_ROOT", value_name = "DIR")]
    pub host_root: Option<PathBuf>,
    /// auto (when the node has a global IPv6 address), true or false.
    #[arg(long, env = "OVS_OVN_SUPERVISOR_FIREWALL_IPV6")]
    pub firewall_ipv6: Option<String>,
    /// Run iptables inside this named network namespace (`ip netns exec NAME`).
    #[arg(long, env = "OVS_OVN_SUPERVISOR_FIREWALL_NETNS")]
    pub netns: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProbeKind {
    /// The first full start has finished (for a startupProbe, so liveness can be strict).
    Startup,
    /// The supervisor and every local daemon answer (never depends on the OVN Southbound).
    Liveness,
    /// The node can forward: every start stage reached and all daemons answer.
    Readiness,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    #[arg(value_enum)]
    pub kind: ProbeKind,
    #[command(flatten)]
    pub paths: PathArgs,
    /// How long the probe may take in all, in milliseconds (default 1000).
    #[arg(long, env = "OVS_OVN_SUPERVISOR_PROBE_TIMEOUT_MS")]
    pub timeout_ms: Option<String>,
}

#[derive(Debug, Args)]
pub struct UninstallArgs {
    #[command(flatten)]
    pub paths: PathArgs,
    /// Read the kernel's modules (which iptables backends can hold rules) under DIR.
    #[arg(long, env = "OVS_OVN_SUPERVISOR_HOST_ROOT", value_name = "DIR")]
    pub host_root: Option<PathBuf>,
}

/// Where the node's files live. Shared by `run` and `probe` so both agree on the layout.
#[derive(Debug, Args, Clone, Default)]
pub struct PathArgs {
    /// Run a whole node inside DIR: userspace datapath, embedded local OVN Southbound, nothing
    /// outside DIR touched.
    #[arg(long, value_name = "DIR", env = "OVS_OVN_SUPERVISOR_SANDBOX")]
    pub sandbox: Option<PathBuf>,
    #[arg(long, env = "OVS_RUNDIR", value_name = "DIR")]
    pub ovs_rundir: Option<PathBuf>,
    #[arg(long, env = "OVS_DBDIR", value_name = "DIR")]
    pub ovs_dbdir: Option<PathBuf>,
    #[arg(long, env = "OVS_LOGDIR", value_name = "DIR")]
    pub ovs_logdir: Option<PathBuf>,
    /// system-id.conf lives in SYSCONFDIR/openvswitch, as ovs-ctl keeps it.
    #[arg(long, env = "OVS_SYSCONFDIR", value_name = "DIR")]
    pub ovs_sysconfdir: Option<PathBuf>,
    #[arg(long, env = "OVN_RUNDIR", value_name = "DIR")]
    pub ovn_rundir: Option<PathBuf>,
    #[arg(long, env = "OVN_LOGDIR", value_name = "DIR")]
    pub ovn_logdir: Option<PathBuf>,
}

#[derive(Debug, Args, Default)]
pub struct NodeArgs {
    #[command(flatten)]
    pub paths: PathArgs,

    // --- Kube-OVN's names ---
    /// ovn-controller's Southbound probe interval, ms (0 disables; OVN raises 1..999 to 1000).
    #[arg(long, env = "OVN_REMOTE_PROBE_INTERVAL")]
    pub ovn_remote_probe_interval: Option<String>,
    /// OpenFlow probe interval between ovn-controller and br-int, seconds.
    #[arg(long, env = "OVN_REMOTE_OPENFLOW_INTERVAL")]
    pub ovn_remote_openflow_interval: Option<String>,
    /// geneve, vxlan or stt.
    #[arg(long, env = "TUNNEL_TYPE")]
    pub tunnel_type: Option<String>,
    /// This node's name (external_ids:hostname).
    #[arg(long, env = "NODE_NAME")]
    pub node_name: Option<String>,
    /// Older name of NODE_NAME, used when NODE_NAME is unset.
    #[arg(long, env = "KUBE_NODE_NAME")]
    pub kube_node_name: Option<String>,
    /// Comma-separated Southbound IPs or host names (IPv6 may be bracketed).
    #[arg(long, env = "OVN_DB_IPS")]
    pub ovn_db_ips: Option<String>,
    #[arg(long, env = "KUBE_OVN_SB_PORT")]
    pub kube_ovn_sb_port: Option<String>,
    /// Full ovn-remote value; overrides OVN_DB_IPS and the service variables.
    #[arg(long, env = "OVN_SB_ADDR")]
    pub ovn_sb_addr: Option<String>,
    #[arg(long, env = "OVN_SB_SERVICE_HOST")]
    pub ovn_sb_service_host: Option<String>,
    #[arg(long, env = "OVN_SB_SERVICE_PORT")]
    pub ovn_sb_service_port: Option<String>,
    /// ssl: remotes, TLS files from the TLS dir. On for any value but "false" (as Kube-OVN).
    #[arg(long, env = "ENABLE_SSL")]
    pub enable_ssl: Option<String>,
    /// other_config:hw-offload; on only for "true" (as Kube-OVN).
    #[arg(long, env = "HW_OFFLOAD")]
    pub hw_offload: Option<String>,
    /// valgrind or strace (each daemon's output to its own file in its log dir), glibc (malloc
    /// checking), or a command prefix for each daemon's argv, e.g. "perf record -g".
    #[arg(long, env = "DEBUG_WRAPPER")]
    pub debug_wrapper: Option<String>,
    #[arg(long, env = "POD_NAME")]
    pub pod_name: Option<String>,
    #[arg(long, env = "POD_NAMESPACE")]
    pub pod_namespace: Option<String>,
    /// Directory of vswitch.ovsschema (OVS's own variable).
    #[arg(long, env = "OVS_PKGDATADIR")]
    pub ovs_pkgdatadir: Option<PathBuf>,
    /// Directory of ovn-sb.ovsschema (OVN's own variable).
    #[arg(long, env = "OVN_PKGDATADIR")]
    pub ovn_pkgdatadir: Option<PathBuf>,

    // --- our own knobs ---
    /// system (kernel) or netdev (userspace); the sandbox defaults to netdev.
    #[arg(long, env = "OVS_OVN_SUPERVISOR_DATAPATH_TYPE")]
    pub datapath_type: Option<String>,
    /// Override of other_config:n-handler-threads (default: scaled from usable CPUs).
    #[arg(long, env = "OVS_OVN_SUPERVISOR_N_HANDLER_THREADS")]
    pub n_handler_threads: Option<String>,
    /// Override of other_config:n-revalidator-threads (default: scaled from usable CPUs).
    #[arg(long, env = "OVS_OVN_SUPERVISOR_N_REVALIDATOR_THREADS")]
    pub n_revalidator_threads: Option<String>,
    /// How long a (re)connecting ovn-controller computes before it replaces br-int's flows
    /// (external_ids:ovn-ofctrl-wait-before-clear), ms; 0 leaves the key unset.
    #[arg(long, env = "OVS_OVN_SUPERVISOR_OFCTRL_WAIT_BEFORE_CLEAR_MS")]
    pub ofctrl_wait_before_clear_ms: Option<String>,
    /// First retry delay ceiling of the br-int.mgmt check, ms.
    #[arg(long, env = "OVS_OVN_SUPERVISOR_MGMT_BACKOFF_BASE_MS")]
    pub mgmt_backoff_base_ms: Option<String>,
    /// Largest retry delay of the br-int.mgmt check, ms.
    #[arg(long, env = "OVS_OVN_SUPERVISOR_MGMT_BACKOFF_CAP_MS")]
    pub mgmt_backoff_cap_ms: Option<String>,
    /// Deadline of the br-int.mgmt check, ms.
    #[arg(long, env = "OVS_OVN_SUPERVISOR_MGMT_DEADLINE_MS")]
    pub mgmt_deadline_ms: Option<String>,
    /// Deadline of every other start stage, ms.
    #[arg(long, env = "OVS_OVN_SUPERVISOR_STAGE_DEADLINE_MS")]
    pub stage_deadline_ms: Option<String>,
    /// Budget of the ordered stop, ms; keep it below the pod's terminationGracePeriodSeconds.
    #[arg(long, env = "OVS_OVN_SUPERVISOR_STOP_BUDGET_MS")]
    pub stop_budget_ms: Option<String>,
    /// After handing the node over, how long to wait for the successor to confirm (its control
    /// socket answering as started) before taking the node back, ms; default the stage
    /// deadline plus the br-int.mgmt deadline.
    #[arg(long, env = "OVS_OVN_SUPERVISOR_HANDOVER_CONFIRM_MS")]
    pub handover_confirm_ms: Option<String>,
    /// text or json.
    #[arg(long, env = "OVS_OVN_SUPERVISOR_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// tracing filter, e.g. "info" or "ovs_ovn_supervisor=debug".
    #[arg(long, env = "OVS_OVN_SUPERVISOR_LOG")]
    pub log: Option<String>,
    /// Directory of the TLS key, cert and CA cert used with ENABLE_SSL.
    #[arg(long, env = "OVS_OVN_SUPERVISOR_TLS_DIR")]
    pub tls_dir: Option<PathBuf>,
    /// First restart delay ceiling of a crashed daemon, ms (full jitter from 0).
    #[arg(long, env = "OVS_OVN_SUPERVISOR_RESTART_BACKOFF_BASE_MS")]
    pub restart_backoff_base_ms: Option<String>,
    /// Largest restart delay, ms.
    #[arg(long, env = "OVS_OVN_SUPERVISOR_RESTART_BACKOFF_CAP_MS")]
    pub restart_backoff_cap_ms: Option<String>,
    /// A daemon up this long starts again from the shortest restart delay, ms.
    #[arg(long, env = "OVS_OVN_SUPERVISOR_RESTART_STABLE_MS")]
    pub restart_stable_ms: Option<String>,
    /// More restarts of one daemon than this within the window is a crash loop: stop, exit 1.
    #[arg(long, env = "OVS_OVN_SUPERVISOR_CRASH_LOOP_RESTARTS")]
    pub crash_loop_restarts: Option<String>,
    #[arg(long, env = "OVS_OVN_SUPERVISOR_CRASH_LOOP_WINDOW_MS")]
    pub crash_loop_window_ms: Option<String>,
    /// A daemon failing every health check this long with its main thread idle is killed and
    /// restarted, ms.
    #[arg(long, env = "OVS_OVN_SUPERVISOR_HUNG_AFTER_MS")]
    pub hung_after_ms: Option<String>,
    /// A daemon failing every health check this long is killed and restarted even while its
    /// main thread works (a computation that never ends), ms; at least the hung-after time.
    #[arg(long, env = "OVS_OVN_SUPERVISOR_BUSY_LIMIT_MS")]
    pub busy_limit_ms: Option<String>,
    /// Take the node over from a live instance on the same run dir (rolling update) instead
    /// of refusing to start.
    #[arg(long, env = "OVS_OVN_SUPERVISOR_TAKEOVER")]
    pub takeover: Option<String>,
    /// br-int's table through a takeover: `restore` (saved by the old instance, restored
    /// before ovn-controller starts), `keep` (nothing saved: the kernel datapath's flows are
    /// kept until ovn-controller's table is in), or `auto` (restore).
    #[arg(long, env = "OVS_OVN_SUPERVISOR_TAKEOVER_FLOWS")]
    pub takeover_flows: Option<String>,
    /// Readiness marker: written atomically when the node becomes ready, removed when it stops
    /// being ready or shuts down. A dependent DaemonSet's init container can wait for it.
    #[arg(long, env = "OVS_OVN_SUPERVISOR_READY_FILE", value_name = "PATH")]
    pub ready_file: Option<PathBuf>,
    /// Cadence of the background health check behind liveness, readiness and the marker, ms.
    #[arg(long, env = "OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS")]
    pub health_interval_ms: Option<String>,
    /// Read every host file (/proc, /sys, /lib/modules, /etc/cni/net.d) under DIR.
    #[arg(long, env = "OVS_OVN_SUPERVISOR_HOST_ROOT", value_name = "DIR")]
    pub host_root: Option<PathBuf>,
    /// Kube-OVN's switch: true stops us from loading kernel modules.
    #[arg(long, env = "DISABLE_MODULES_MANAGEMENT")]
    pub disable_modules_management: Option<String>,
    /// The compatibility link to OVS_RUNDIR made outside the sandbox.
    #[arg(long, env = "OVS_OVN_SUPERVISOR_RUNDIR_LINK", value_name = "PATH")]
    pub rundir_link: Option<PathBuf>,
    /// Manage the tunnel port's INPUT accept rule (never in the sandbox).
    #[arg(long, env = "OVS_OVN_SUPERVISOR_FIREWALL")]
    pub firewall: Option<String>,
    /// auto (when the node has a global IPv6 address), true or false.
    #[arg(long, env = "OVS_OVN_SUPERVISOR_FIREWALL_IPV6")]
    pub firewall_ipv6: Option<String>,
    /// How often the tunnel port rule is checked again while the node runs (and put back if
    /// another program removed it), ms; 0: only at start.
    #[arg(long, env = "OVS_OVN_SUPERVISOR_FIREWALL_RECHECK_MS")]
    pub firewall_recheck_ms: Option<String>,
    /// true: a tunnel port rule that cannot be set at start stops the start (exit 1); false
    /// (default): the node starts without it, with a warning, and the recheck keeps trying.
    #[arg(long, env = "OVS_OVN_SUPERVISOR_FIREWALL_REQUIRED")]
    pub firewall_required: Option<String>,
    /// Sandbox networking: auto (a private network namespace when permitted, else dummy
    /// devices), netns, or dummy.
    #[arg(long, env = "OVS_OVN_SUPERVISOR_SANDBOX_NET")]
    pub sandbox_net: Option<String>,
    /// HTTP endpoint for httpGet probes and Prometheus (/livez /readyz /startupz /status
    /// /metrics): ADDR:PORT ([::]:10668 on a real node), or off (the default in the sandbox).
    #[arg(
        long,
        env = "OVS_OVN_SUPERVISOR_HTTP_ADDR",
        value_name = "ADDR:PORT|off"
    )]
    pub http_addr: Option<String>,
    /// PEM certificate chain for HTTPS on the HTTP endpoint (with --http-tls-key); re-read
    /// when it changes.
    #[arg(long, env = "OVS_OVN_SUPERVISOR_HTTP_TLS_CERT", value_name = "PATH")]
    pub http_tls_cert: Option<String>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of --http-tls-cert.
    #[arg(long, env = "OVS_OVN_SUPERVISOR_HTTP_TLS_KEY", value_name = "PATH")]
    pub http_tls_key: Option<String>,
    /// Where `run` writes why it exited non-zero, if that file exists (kubelet's
    /// terminationMessagePath): a path, or off.
    #[arg(
        long,
        env = "OVS_OVN_SUPERVISOR_TERMINATION_LOG",
        value_name = "PATH|off"
    )]
    pub termination_log: Option<String>,
    /// external_ids:ovn-match-northd-version, which start-ovs.sh set to true on every start:
    /// ovn-controller applies nothing while its internal version differs from ovn-northd's.
    /// With it on, a takeover is refused (exit 4) unless our ovn-controller matches ovn-northd.
    /// auto (true, except with the sandbox's embedded Southbound, which has no ovn-northd),
    /// true or false.
    #[arg(long, env = "OVS_OVN_SUPERVISOR_MATCH_NORTHD_VERSION")]
    pub match_northd_version: Option<String>,
    /// Core file size limit of the daemons, MiB (0: no core files; "unlimited"); default
    /// 32768, what ovs-ctl sets. Capped at the hard limit the container runtime gives.
    #[arg(long, env = "OVS_OVN_SUPERVISOR_CORE_LIMIT_MB")]
    pub core_limit_mb: Option<String>,
}

/// A variable clap would read but cannot name in its own error.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvError {
    #[error("{var}={value:?} is invalid: expected UTF-8 text")]
    NotUtf8 { var: String, value: String },
}

/// The clap command, adjusted to the environment `env` shows: a variable that is set but empty
/// or blank counts as unset (Kubernetes manifests render `value: ""` for optional settings, and
/// clap would reject an empty path naming only the flag), and a value that is not UTF-8 is
/// refused naming its variable (clap's message names neither).
pub fn command(env: &dyn Fn(&OsStr) -> Option<OsString>) -> Result<clap::Command, EnvError> {
    adjust(Cli::command(), env)
}

fn adjust(
    mut cmd: clap::Command,
    env: &dyn Fn(&OsStr) -> Option<OsString>,
) -> Result<clap::Command, EnvError> {
    let mut blank = Vec::new();
    for arg in cmd.get_arguments() {
        let Some(var) = arg.get_env() else { continue };
        let Some(value) = env(var) else { continue };
        match value.to_str() {
            None => {
                return Err(EnvError::NotUtf8 {
                    var: var.to_string_lossy().into_owned(),
                    value: value.to_string_lossy().into_owned(),
                })
            }
            Some(v) if v.trim().is_empty() => blank.push(arg.get_id().clone()),
            Some(_) => {}
        }
    }
    for id in blank {
        cmd = cmd.mut_arg(id, |a| a.env(None));
    }
    let subs: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in subs {
        let Some(sub) = cmd.find_subcommand(&name).cloned() else {
            continue;
        };
        let sub = adjust(sub, env)?;
        cmd = cmd.mut_subcommand(name, |_| sub);
    }
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::FromArgMatches;
    use std::os::unix::ffi::OsStringExt;

    fn parse(vars: &[(&str, OsString)], argv: &[&str]) -> Result<Cli, String> {
        let env = |k: &OsStr| {
            vars.iter()
                .find(|(n, _)| OsStr::new(n) == k)
                .map(|(_, v)| v.clone())
        };
        let cmd = command(&env).map_err(|e| e.to_string())?;
        // clap reads the real environment for what is left: keep these names out of it.
        let m = cmd.try_get_matches_from(argv).map_err(|e| e.to_string())?;
        Cli::from_arg_matches(&m).map_err(|e| e.to_string())
    }

    #[test]
    fn non_utf8_values_name_their_variable() {
        let bad = OsString::from_vec(b"gen\xffeve".to_vec());
        let e = parse(&[("TUNNEL_TYPE", bad)], &["x", "run"]).unwrap_err();
        assert!(e.starts_with("TUNNEL_TYPE=\"gen"), "{e}");
        assert!(e.contains("UTF-8"), "{e}");
        let bad = OsString::from_vec(b"/tmp/\xff".to_vec());
        let e = parse(&[("OVS_RUNDIR", bad)], &["x", "probe", "liveness"]).unwrap_err();
        assert!(e.starts_with("OVS_RUNDIR="), "{e}");
    }

    #[test]
    fn adjusting_keeps_every_argument_of_every_subcommand() {
        let env = |_: &OsStr| Some(OsString::from(" "));
        let adjusted = command(&env).unwrap();
        let names = |c: &clap::Command| {
            c.get_subcommands()
                .map(|s| (s.get_name().to_string(), s.get_arguments().count()))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&adjusted), names(&Cli::command()));
        // Every env-backed argument of `run` lost its variable.
        let run = adjusted.find_subcommand("run").unwrap();
        assert!(run.get_arguments().all(|a| a.get_env().is_none()));
    }
}

//! Thin entry point: parse → resolve config → run → map the outcome to a documented exit code.
//!
//! Exit codes: 0 clean stop / probe success; 1 runtime failure (a stage failed or missed its
//! deadline, a daemon died, a host fix failed); 2 bad configuration or usage, or a
//! system-id.conf that is not a small regular file holding an id (nothing was changed on disk); 3 probe failure; 4 preflight failure (`run` refused to start — a failed
//! check, a run/db/log directory another user could redirect, the instance lock held by
//! another supervisor, or a takeover whose ovn-controller ovn-northd would not accept — or
//! `preflight` found something that would stop it).

use std::process::ExitCode;
use std::time::Duration;

use clap::FromArgMatches;
use ovs_ovn_supervisor::config::cli::{
    Cli, Command, FirewallAction, FirewallArgs, NodeArgs, PathArgs, PreflightArgs, ProbeArgs,
    ProbeKind, StatusArgs, UninstallArgs,
};
use ovs_ovn_supervisor::config::paths::Layout;
use ovs_ovn_supervisor::config::{parse_tristate, parse_tunnel, parse_uint, Config};
use ovs_ovn_supervisor::host::prep;
use ovs_ovn_supervisor::process::Reaper;
use ovs_ovn_supervisor::supervisor::prepare;
use ovs_ovn_supervisor::supervisor::Supervisor;
use ovs_ovn_supervisor::{confdb, control, host::fsguard, host::netns, logging};

const RUNTIME_FAILURE: u8 = 1;
const BAD_CONFIG: u8 = 2;
const PROBE_FAILED: u8 = 3;
const PREFLIGHT_FAILED: u8 = 4;

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Prints `msg` on stderr (after the log, never blocking once logging is set up).
fn fail(code: u8, msg: impl std::fmt::Display) -> ExitCode {
    logging::print(&format!("ovs-ovn-supervisor: {msg}"));
    ExitCode::from(code)
}

/// How long an exit waits for the log to be written: stderr may be a pipe nobody reads.
const LOG_FLUSH: Duration = Duration::from_secs(1);

/// Why `run` ended non-zero: the exit code and the message.
struct Failed(u8, String);

impl Failed {
    fn new(code: u8, msg: impl std::fmt::Display) -> Failed {
        Failed(code, msg.to_string())
    }

    /// A failed run past the configuration: a full filesystem under the node's directories is
    /// named (ENOSPC), whatever step ran into it, and the message is logged too.
    fn of_run(code: u8, e: impl std::fmt::Display, dirs: &[std::path::PathBuf]) -> Failed {
        let msg = match ovs_ovn_supervisor::host::diskspace::hint(dirs) {
            Some(full) => format!("{e}; {full}"),
            None => e.to_string(),
        };
        tracing::error!("{msg}");
        Failed(code, msg)
    }
}

fn resolve(args: &NodeArgs) -> Result<Config, Failed> {
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
    let cfg = Config::resolve(args, &host, &cwd).map_err(|e| Failed::new(BAD_CONFIG, e))?;
    // Before the prerequisites: the marker's directory is judged by the same trust rule.
    if cfg.layout.sandbox.is_none() {
        fsguard::trust_owner(fsguard::KUBE_OVN_POD_UID);
    }
    ovs_ovn_supervisor::host::prereqs::check(&cfg).map_err(|e| Failed::new(BAD_CONFIG, e))?;
    Ok(cfg)
}

/// `run`: on a non-zero exit the reason is printed and left for kubelet as the container's
/// termination message (never failing the exit itself).
fn run(args: &NodeArgs) -> ExitCode {
    let code = match run_node(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failed(code, msg)) => {
            use ovs_ovn_supervisor::host::termination;
            if let Some(path) = termination::path_from(args.termination_log.as_deref()) {
                if let Err(e) = termination::record(&path, code, &msg) {
                    tracing::warn!("{e}");
                }
            }
            fail(code, msg)
        }
    };
    logging::flush(LOG_FLUSH);
    code
}

fn run_node(args: &NodeArgs) -> Result<(), Failed> {
    // Before anything else: a SIGTERM from here on means a clean stop, not death by signal.
    ovs_ovn_supervisor::supervisor::signals::hold()
        .map_err(|e| Failed::new(RUNTIME_FAILURE, format!("cannot block stop signals: {e}")))?;
    let cfg = resolve(args)?;
    logging::init(cfg.log_format, &cfg.log_filter).map_err(|e| Failed::new(BAD_CONFIG, e))?;
    let dirs: Vec<std::path::PathBuf> = cfg.layout.dirs().iter().map(|d| d.to_path_buf()).collect();
    // Directories an attacker could redirect, and a system-id.conf that is not one (a FIFO, a
    // link, a huge or damaged file), are refused before anything is created.
    fsguard::check_layout(&cfg.layout, false)
        .map_err(|e| Failed::of_run(PREFLIGHT_FAILED, e, &dirs))?;
    confdb::system_id::read(&cfg.layout.system_id_file())
        .map_err(|e| Failed::of_run(BAD_CONFIG, e, &dirs))?;
    if let Some(files) = &cfg.http_tls {
        ovs_ovn_supervisor::control::http::tls::load(files)
            .map_err(|e| Failed::of_run(BAD_CONFIG, e, &dirs))?;
    }
    fsguard::prepare_layout(&cfg.layout).map_err(|e| Failed::of_run(PREFLIGHT_FAILED, e, &dirs))?;
    // Host fixes run before the reaper thread exists (the log writer's only writes stderr):
    // modprobe and iptables are waited on through std
    // (under deadlines), which must not race the reaper. The instance lock comes first.
    let (predecessor, lock, rule) = prepare::prepare(&cfg).map_err(|e| {
        let code = match e.is_refusal() {
            true => PREFLIGHT_FAILED,
            false => RUNTIME_FAILURE,
        };
        Failed::of_run(code, e, &dirs)
    })?;
    let net = netns::enter(cfg.sandbox_net).map_err(|e| Failed::new(BAD_CONFIG, e))?;
    let rt = runtime()
        .map_err(|e| Failed::new(RUNTIME_FAILURE, format!("cannot start the runtime: {e}")))?;
    let result = rt.block_on(async {
        let reaper = Reaper::global().map_err(anyhow::Error::from)?;
        let supervisor = Supervisor::new(cfg, net, reaper, predecessor)?
            .with_lock(lock)
            .with_firewall(&rule);
        // Its handlers exist now: a stop signal held since the start is delivered and handled.
        ovs_ovn_supervisor::supervisor::signals::release().map_err(anyhow::Error::from)?;
        supervisor.run().await?;
        anyhow::Ok(())
    });
    // Our errors carry their sources in their own message: `{e}`, not the chain, or each cause
    // would print twice.
    result.map_err(|e| Failed::of_run(RUNTIME_FAILURE, e, &dirs))
}

fn probe_timeout(raw: &Option<String>) -> Result<Duration, ExitCode> {
    parse_uint("OVS_OVN_SUPERVISOR_PROBE_TIMEOUT_MS", raw, 1000, 1, 600_000)
        .map(Duration::from_millis)
        .map_err(|e| fail(BAD_CONFIG, e))
}

fn layout(paths: &PathArgs) -> Result<Layout, ExitCode> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
    Layout::resolve(paths, &cwd)
        .map(|(l, _)| l)
        .map_err(|e| fail(BAD_CONFIG, e))
}

/// No async runtime and no logging here: a probe is one blocking exchange on the control
/// socket, so it costs about a millisecond.
fn probe(args: &ProbeArgs) -> ExitCode {
    let (timeout, layout) = match (probe_timeout(&args.timeout_ms), layout(&args.paths)) {
        (Ok(t), Ok(l)) => (t, l),
        (Err(c), _) | (_, Err(c)) => return c,
    };
    let kind = match args.kind {
        ProbeKind::Startup => "startup",
        ProbeKind::Liveness => "liveness",
        ProbeKind::Readiness => "readiness",
    };
    match control::probe(&layout.control_sock(), kind, timeout) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(reason) => {
            println!("{reason}");
            ExitCode::from(PROBE_FAILED)
        }
    }
}

fn status(args: &StatusArgs) -> ExitCode {
    let json = match output_format(&args.output) {
        Ok(j) => j,
        Err(c) => return c,
    };
    let layout = match layout(&args.paths) {
        Ok(l) => l,
        Err(c) => return c,
    };
    let v = match control::ask(&layout.control_sock(), "status", Duration::from_secs(2)) {
        Ok(v) => v,
        Err(reason) => return fail(PROBE_FAILED, reason),
    };
    if json {
        println!("{v}");
        return ExitCode::SUCCESS;
    }
    match serde_json::from_value::<ovs_ovn_supervisor::status::Snapshot>(v) {
        Ok(snap) => {
            print!("{}", snap.render(control::unix_ms()));
            ExitCode::SUCCESS
        }
        Err(e) => fail(PROBE_FAILED, format!("bad status answer: {e}")),
    }
}

fn output_format(raw: &Option<String>) -> Result<bool, ExitCode> {
    match raw.as_deref().map(str::trim) {
        None | Some("") | Some("table") => Ok(false),
        Some("json") => Ok(true),
        Some(other) => Err(fail(
            BAD_CONFIG,
            format!("OVS_OVN_SUPERVISOR_OUTPUT={other:?} is invalid: expected one of table, json"),
        )),
    }
}

fn preflight(args: &PreflightArgs) -> ExitCode {
    let json = match output_format(&args.output) {
        Ok(j) => j,
        Err(c) => return c,
    };
    let cfg = match resolve(&args.node) {
        Ok(c) => c,
        Err(Failed(code, msg)) => return fail(code, msg),
    };
    let report = prepare::report(&cfg);
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.render_table());
    }
    if report.failed() {
        ExitCode::from(PREFLIGHT_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}

fn firewall(args: &FirewallArgs) -> ExitCode {
    use ovs_ovn_supervisor::host::firewall;
    let tunnel = match parse_tunnel(&args.tunnel_type) {
        Ok(t) => t,
        Err(e) => return fail(BAD_CONFIG, e),
    };
    let ipv6 = match parse_tristate("OVS_OVN_SUPERVISOR_FIREWALL_IPV6", &args.firewall_ipv6) {
        Ok(v) => v,
        Err(e) => return fail(BAD_CONFIG, e),
    };
    let root = args.host_root.clone().unwrap_or_else(|| "/".into());
    let families = prep::families(ipv6, &root);
    let runner = firewall::HostRunner::new(args.netns.clone());
    let backend = firewall::detect_backend(&runner);
    let result = match args.action {
        FirewallAction::Ensure => firewall::ensure(&runner, backend, tunnel, &families),
        FirewallAction::Remove => firewall::remove(&runner, backend, &families),
    };
    match result {
        Ok(changes) => {
            let backend = match backend {
                firewall::Backend::Legacy => "iptables-legacy",
                firewall::Backend::Nft => "iptables-nft",
            };
            if changes.is_empty() {
                println!("nothing to change ({backend})");
            }
            for c in changes {
                println!("{c} ({backend})");
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(RUNTIME_FAILURE, e),
    }
}

/// Stops the node for good and removes what it leaves on the host; 0 when all of it is done.
fn uninstall(args: &UninstallArgs) -> ExitCode {
    use ovs_ovn_supervisor::supervisor::uninstall_command as u;
    let layout = match layout(&args.paths) {
        Ok(l) => l,
        Err(c) => return c,
    };
    if layout.sandbox.is_none() {
        fsguard::trust_owner(fsguard::KUBE_OVN_POD_UID);
    }
    let host_root = args.host_root.clone().unwrap_or_else(|| "/".into());
    let report = u::command(&u::Options {
        layout,
        host_root,
        timeout: u::ASK_TIMEOUT,
    });
    for line in &report.done {
        println!("{line}");
    }
    if report.failures.is_empty() {
        println!("uninstall: done");
        return ExitCode::SUCCESS;
    }
    for f in &report.failures {
        eprintln!("ovs-ovn-supervisor: uninstall: {f}");
    }
    fail(
        RUNTIME_FAILURE,
        format!("uninstall: {} step(s) failed", report.failures.len()),
    )
}

fn main() -> ExitCode {
    let cmd = match ovs_ovn_supervisor::config::cli::command(&|k| std::env::var_os(k)) {
        Ok(c) => c,
        Err(e) => return fail(BAD_CONFIG, e),
    };
    let cli = match Cli::from_arg_matches(&cmd.get_matches()) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    match &cli.command {
        Command::Run(args) => run(args),
        Command::Probe(args) => probe(args),
        Command::Status(args) => status(args),
        Command::Preflight(args) => preflight(args),
        Command::Firewall(args) => firewall(args),
        Command::Uninstall(args) => uninstall(args),
    }
}

//! Thin entry point: parse → resolve config → run → map the outcome to a documented exit code.
//!
//! Exit codes: 0 clean stop / probe success; 1 runtime failure (a stage failed or missed its
//! deadline, a daemon died, a host fix failed); 2 bad configuration or usage (nothing was
//! changed on disk); 3 probe failure; 4 preflight failure (`run` refused to start — a failed
//! check, a run/db/log directory another user could redirect, or the instance lock held by
//! another supervisor — or `preflight` found something that would stop it).

use std::process::ExitCode;
use std::time::Duration;

use clap::FromArgMatches;
use ovs_ovn_supervisor::config::cli::{
    Cli, Command, FirewallAction, FirewallArgs, NodeArgs, PathArgs, PreflightArgs, ProbeArgs,
    ProbeKind, StatusArgs,
};
use ovs_ovn_supervisor::config::paths::Layout;
use ovs_ovn_supervisor::config::{parse_tristate, parse_tunnel, parse_uint, Config};
use ovs_ovn_supervisor::host::prep;
use ovs_ovn_supervisor::process::Reaper;
use ovs_ovn_supervisor::supervisor::prepare;
use ovs_ovn_supervisor::supervisor::Supervisor;
use ovs_ovn_supervisor::{control, host::fsguard, host::netns, logging};

const RUNTIME_FAILURE: u8 = 1;
const BAD_CONFIG: u8 = 2;
const PROBE_FAILED: u8 = 3;
const PREFLIGHT_FAILED: u8 = 4;

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

fn fail(code: u8, msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("ovs-ovn-supervisor: {msg}");
    ExitCode::from(code)
}

/// A failed `run`, logged and printed; a full filesystem under the node's directories is named
/// (ENOSPC), whatever step ran into it.
fn fail_run(code: u8, e: impl std::fmt::Display, dirs: &[std::path::PathBuf]) -> ExitCode {
    let msg = match ovs_ovn_supervisor::host::diskspace::hint(dirs) {
        Some(full) => format!("{e}; {full}"),
        None => e.to_string(),
    };
    tracing::error!("{msg}");
    fail(code, msg)
}

fn resolve(args: &NodeArgs) -> Result<Config, ExitCode> {
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
    let cfg = Config::resolve(args, &host, &cwd).map_err(|e| fail(BAD_CONFIG, e))?;
    ovs_ovn_supervisor::host::prereqs::check(&cfg).map_err(|e| fail(BAD_CONFIG, e))?;
    if cfg.layout.sandbox.is_none() {
        fsguard::trust_owner(fsguard::KUBE_OVN_POD_UID);
    }
    Ok(cfg)
}

fn run(args: &NodeArgs) -> ExitCode {
    // Before anything else: a SIGTERM from here on means a clean stop, not death by signal.
    if let Err(e) = ovs_ovn_supervisor::supervisor::signals::hold() {
        return fail(RUNTIME_FAILURE, format!("cannot block stop signals: {e}"));
    }
    let cfg = match resolve(args) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Err(e) = logging::init(cfg.log_format, &cfg.log_filter) {
        return fail(BAD_CONFIG, e);
    }
    let dirs: Vec<std::path::PathBuf> = cfg.layout.dirs().iter().map(|d| d.to_path_buf()).collect();
    // Directories an attacker could redirect are refused before anything is created.
    if let Err(e) = fsguard::prepare_layout(&cfg.layout) {
        return fail_run(PREFLIGHT_FAILED, e, &dirs);
    }
    // Host fixes run before any thread exists: modprobe and iptables are waited on through std
    // (under deadlines), which must not race the reaper. The instance lock comes first.
    let (predecessor, lock, rule) = match prepare::prepare(&cfg) {
        Ok(p) => p,
        Err(e) => {
            let code = match e.is_refusal() {
                true => PREFLIGHT_FAILED,
                false => RUNTIME_FAILURE,
            };
            return fail_run(code, e, &dirs);
        }
    };
    let net = match netns::enter(cfg.sandbox_net) {
        Ok(n) => n,
        Err(e) => return fail(BAD_CONFIG, e),
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(RUNTIME_FAILURE, format!("cannot start the runtime: {e}")),
    };
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
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // Our errors carry their sources in their own message: `{e}`, not the chain, or each
        // cause would print twice.
        Err(e) => fail_run(RUNTIME_FAILURE, e, &dirs),
    }
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
        Err(code) => return code,
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
    }
}

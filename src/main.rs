//! Thin entry point: parse → resolve config → run → map the outcome to a documented exit code.
//!
//! Exit codes: 0 clean stop / probe success; 1 runtime failure (a stage failed or missed its
//! deadline, a daemon died); 2 bad configuration or usage (nothing was changed on disk);
//! 3 probe failure.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use ovs_ovn_supervisor::cli::{Cli, Command, NodeArgs, ProbeArgs};
use ovs_ovn_supervisor::config::{parse_uint, Config, LogFormat};
use ovs_ovn_supervisor::paths::Layout;
use ovs_ovn_supervisor::process::Reaper;
use ovs_ovn_supervisor::supervisor::Supervisor;
use ovs_ovn_supervisor::{logging, netns, probe};

const RUNTIME_FAILURE: u8 = 1;
const BAD_CONFIG: u8 = 2;
const PROBE_FAILED: u8 = 3;

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

fn fail(code: u8, msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("ovs-ovn-supervisor: {msg}");
    ExitCode::from(code)
}

fn run(args: &NodeArgs) -> ExitCode {
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
    let cfg = match Config::resolve(args, &host, &cwd) {
        Ok(c) => c,
        Err(e) => return fail(BAD_CONFIG, e),
    };
    if let Err(e) = logging::init(cfg.log_format, &cfg.log_filter) {
        return fail(BAD_CONFIG, e);
    }
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
        Supervisor::new(cfg, net, reaper)?.run().await?;
        anyhow::Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            fail(RUNTIME_FAILURE, format!("{e:#}"))
        }
    }
}

fn probe(args: &ProbeArgs) -> ExitCode {
    let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
    let timeout = match parse_uint(
        "OVS_OVN_SUPERVISOR_PROBE_TIMEOUT_MS",
        &args.timeout_ms,
        1000,
        1,
        600_000,
    ) {
        Ok(ms) => Duration::from_millis(ms),
        Err(e) => return fail(BAD_CONFIG, e),
    };
    let layout = match Layout::resolve(&args.paths, &cwd) {
        Ok((l, _)) => l,
        Err(e) => return fail(BAD_CONFIG, e),
    };
    let _ = logging::init(LogFormat::Text, "off");
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(PROBE_FAILED, format!("cannot start the runtime: {e}")),
    };
    match rt.block_on(probe::run(args.kind, &layout, timeout)) {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Run(args) => run(args),
        Command::Probe(args) => probe(args),
    }
}

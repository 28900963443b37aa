//! Fuzzes configuration resolution (`src/config.rs`, `src/paths.rs`).
//!
//! Input layout: the bytes are split on 0x00 into segments. The first byte of
//! each segment picks a slot (modulo the number of slots: every `NodeArgs`
//! field, the host name and the current directory) and the rest is its value
//! (lossily converted to UTF-8 for string fields, raw bytes for path fields).
//! A later segment for the same slot overrides an earlier one. Every segment
//! value is also fed straight to `parse_uint`, `parse_bool`, `parse_tristate`
//! and `parse_tunnel`, checked against simple oracles.
//!
//! Invariants: nothing panics; resolution is deterministic; an `Err` displays
//! a non-empty message that starts with the variable's name (`VAR=`), with the
//! offending path (socket length) or with "no OVN Southbound address"; an `Ok`
//! config respects the documented ranges (thread counts, durations, backoff
//! policy valid, socket paths within the kernel's limit, sandbox keeps every
//! path inside and disables host-touching features).

#![no_main]

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use ovs_ovn_supervisor::config::cli::{NodeArgs, PREFIX};
use ovs_ovn_supervisor::config::{
    parse_bool, parse_tristate, parse_tunnel, parse_uint, Config, ConfigError, TunnelType,
};

/// Variables without our prefix that `Config::resolve` may name in an error.
const KUBE_OVN_VARS: &[&str] = &[
    "OVN_REMOTE_PROBE_INTERVAL",
    "OVN_REMOTE_OPENFLOW_INTERVAL",
    "TUNNEL_TYPE",
    "NODE_NAME",
    "KUBE_NODE_NAME",
    "OVN_DB_IPS",
    "KUBE_OVN_SB_PORT",
    "OVN_SB_ADDR",
    "OVN_SB_SERVICE_HOST",
    "OVN_SB_SERVICE_PORT",
    "ENABLE_SSL",
    "HW_OFFLOAD",
    "DEBUG_WRAPPER",
    "POD_NAME",
    "POD_NAMESPACE",
    "OVS_PKGDATADIR",
    "OVN_PKGDATADIR",
    "DISABLE_MODULES_MANAGEMENT",
    "OVS_RUNDIR",
    "OVS_DBDIR",
    "OVS_LOGDIR",
    "OVS_SYSCONFDIR",
    "OVN_RUNDIR",
    "OVN_LOGDIR",
];

/// Variables `SocketPathTooLong` may name.
const SOCKET_VARS: &[&str] = &["OVS_OVN_SUPERVISOR_SANDBOX", "OVS_RUNDIR or OVN_RUNDIR"];

const MAX_SOCKET_PATH: usize = 107;

/// String fields of `NodeArgs`, in a fixed order (slot = index).
fn string_field(a: &mut NodeArgs, i: usize) -> Option<&mut Option<String>> {
    Some(match i {
        0 => &mut a.ovn_remote_probe_interval,
        1 => &mut a.ovn_remote_openflow_interval,
        2 => &mut a.tunnel_type,
        3 => &mut a.node_name,
        4 => &mut a.kube_node_name,
        5 => &mut a.ovn_db_ips,
        6 => &mut a.kube_ovn_sb_port,
        7 => &mut a.ovn_sb_addr,
        8 => &mut a.ovn_sb_service_host,
        9 => &mut a.ovn_sb_service_port,
        10 => &mut a.enable_ssl,
        11 => &mut a.hw_offload,
        12 => &mut a.debug_wrapper,
        13 => &mut a.pod_name,
        14 => &mut a.pod_namespace,
        15 => &mut a.datapath_type,
        16 => &mut a.n_handler_threads,
        17 => &mut a.n_revalidator_threads,
        18 => &mut a.mgmt_backoff_base_ms,
        19 => &mut a.mgmt_backoff_cap_ms,
        20 => &mut a.mgmt_deadline_ms,
        21 => &mut a.stage_deadline_ms,
        22 => &mut a.stop_budget_ms,
        23 => &mut a.log_format,
        24 => &mut a.log,
        25 => &mut a.health_interval_ms,
        26 => &mut a.disable_modules_management,
        27 => &mut a.firewall,
        28 => &mut a.firewall_ipv6,
        29 => &mut a.sandbox_net,
        _ => return None,
    })
}
const N_STRING: usize = 30;

/// Path fields of `NodeArgs` (slot = N_STRING + index).
fn path_field(a: &mut NodeArgs, i: usize) -> Option<&mut Option<PathBuf>> {
    Some(match i {
        0 => &mut a.paths.sandbox,
        1 => &mut a.paths.ovs_rundir,
        2 => &mut a.paths.ovs_dbdir,
        3 => &mut a.paths.ovs_logdir,
        4 => &mut a.paths.ovs_sysconfdir,
        5 => &mut a.paths.ovn_rundir,
        6 => &mut a.paths.ovn_logdir,
        7 => &mut a.ovs_pkgdatadir,
        8 => &mut a.ovn_pkgdatadir,
        9 => &mut a.tls_dir,
        10 => &mut a.ready_file,
        11 => &mut a.host_root,
        12 => &mut a.rundir_link,
        _ => return None,
    })
}
const N_PATH: usize = 13;
const SLOT_HOSTNAME: usize = N_STRING + N_PATH;
const SLOT_CWD: usize = SLOT_HOSTNAME + 1;
const N_SLOTS: usize = SLOT_CWD + 1;

/// The same trimming `config` applies: unset, empty and blank mean "not given".
fn present(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// `extra`: test-only variable names the direct parser calls use.
fn check_error(e: &ConfigError, extra: &[&str]) {
    let shown = e.to_string();
    assert!(!shown.is_empty(), "empty Display for {e:?}");
    match e {
        ConfigError::Invalid { var, expected, .. } => {
            assert!(
                var.starts_with(PREFIX) || KUBE_OVN_VARS.contains(var) || extra.contains(var),
                "unknown variable {var:?} in {shown:?}"
            );
            assert!(
                shown.starts_with(&format!("{var}=")),
                "error does not start with {var}=: {shown:?}"
            );
            assert!(!expected.is_empty(), "no 'expected' text: {shown:?}");
        }
        ConfigError::NoSouthbound => {
            assert!(shown.starts_with("no OVN Southbound address"), "{shown:?}");
        }
        ConfigError::SocketPathTooLong {
            var,
            path,
            socket,
            len,
        } => {
            assert!(SOCKET_VARS.contains(var), "unknown variable {var:?}");
            assert!(
                shown.starts_with(&format!("{}: unix socket path", path.display())),
                "{shown:?}"
            );
            assert!(*len > MAX_SOCKET_PATH, "{len} bytes is within the limit");
            assert_eq!(*len, socket.as_os_str().len());
            assert!(socket.starts_with(path), "{socket:?} not under {path:?}");
            assert!(
                shown.ends_with(&format!("use a shorter {var}")),
                "{shown:?}"
            );
        }
    }
}

fn check_config(c: &Config, args: &NodeArgs) {
    let sandbox = args.paths.sandbox.is_some();
    let l = &c.layout;
    assert_eq!(l.sandbox.is_some(), sandbox);
    for (dir, name) in [
        (&l.ovs_rundir, "ovs-vswitchd.9999999.ctl"),
        (&l.ovs_rundir, "br-int.mgmt"),
        (&l.ovn_rundir, "ovn-controller.9999999.ctl"),
    ] {
        let len = dir.join(name).as_os_str().len();
        assert!(len <= MAX_SOCKET_PATH, "accepted a {len}-byte socket path");
    }
    if let Some(root) = &l.sandbox {
        for p in [
            &l.ovs_rundir,
            &l.ovs_dbdir,
            &l.ovs_logdir,
            &l.ovs_sysconfdir,
            &l.ovn_rundir,
            &l.ovn_logdir,
            &l.ovn_dbdir,
        ] {
            assert!(p.starts_with(root), "{p:?} outside the sandbox {root:?}");
        }
        assert!(
            c.southbound.embedded
                || present(&args.ovn_sb_addr).is_some()
                || present(&args.ovn_db_ips).is_some()
                || present(&args.ovn_sb_service_host).is_some()
        );
        assert!(!c.firewall, "firewall managed in the sandbox");
        assert!(!c.manage_modules, "modules managed in the sandbox");
        assert!(c.rundir_link.is_none(), "run-dir link made in the sandbox");
        assert!(c.sandbox_net.is_some());
    } else {
        assert!(
            !c.southbound.embedded,
            "embedded Southbound outside the sandbox"
        );
        assert!(c.rundir_link.is_some());
        assert!(c.sandbox_net.is_none());
    }
    assert!(!c.southbound.remote.is_empty(), "empty ovn-remote");
    if c.southbound.embedded {
        // The embedded Southbound's remote must name its socket exactly
        // (finding #1 of the first fuzzing run, fixed: sandbox paths that are
        // not UTF-8 or contain ',' are refused).
        let sock = l.sb_sock();
        let exact = sock.to_str().map(|s| format!("unix:{s}"));
        assert_eq!(
            Some(&c.southbound.remote),
            exact.as_ref(),
            "embedded remote does not name {sock:?}"
        );
    }
    for remote in c.southbound.remote.split(',') {
        assert!(
            ["tcp:", "ssl:", "unix:"]
                .iter()
                .any(|p| remote.starts_with(p)),
            "bad remote {remote:?} in {:?}",
            c.southbound.remote
        );
    }
    assert!(!c.hostname.is_empty());
    assert!(
        !c.hostname.chars().any(char::is_control),
        "{:?}",
        c.hostname
    );
    assert!(c.remote_probe_interval_ms <= i32::MAX as u64);
    assert!(c.openflow_probe_interval_s <= i32::MAX as u64 / 1000);
    for t in [c.handler_threads, c.revalidator_threads]
        .into_iter()
        .flatten()
    {
        assert!((1..=1024).contains(&t), "{t} threads");
    }
    c.mgmt_backoff
        .validate()
        .expect("resolved backoff policy invalid");
    let day = Duration::from_secs(24 * 3600);
    for d in [c.mgmt_deadline, c.stage_deadline, c.mgmt_backoff.cap] {
        assert!(d >= Duration::from_millis(1) && d <= day, "{d:?}");
    }
    for d in [c.stop_budget, c.health_interval] {
        assert!(d >= Duration::from_millis(100) && d <= day, "{d:?}");
    }
    if let ovs_ovn_supervisor::config::DebugWrapper::Command(words) = &c.debug_wrapper {
        assert!(!words.is_empty());
        assert!(words
            .iter()
            .all(|w| !w.is_empty() && !w.chars().any(char::is_whitespace)));
    }
    assert!(!c.log_filter.is_empty());
    if let Some(p) = &c.ready_file {
        assert!(!p.as_os_str().is_empty());
    }
}

/// `parse_uint`, `parse_bool`, `parse_tristate` and `parse_tunnel` against oracles.
fn check_parsers(raw: &Option<String>, knobs: u64) {
    let default = knobs & 0xffff;
    let a = (knobs >> 16) & 0xffff_ffff;
    let b = if knobs >> 63 == 1 {
        u64::MAX
    } else {
        a.wrapping_mul(7919)
    };
    let (min, max) = (a.min(b), a.max(b));
    let got = parse_uint("FUZZ_UINT", raw, default, min, max);
    let want = match present(raw) {
        None => Some(default),
        Some(s) if s.bytes().all(|c| c.is_ascii_digit()) => {
            s.parse::<u64>().ok().filter(|n| (min..=max).contains(n))
        }
        Some(_) => None,
    };
    match (&got, want) {
        (Ok(n), Some(w)) => assert_eq!(*n, w),
        (Err(e), None) => {
            check_error(e, &["FUZZ_UINT"]);
            let shown = e.to_string();
            assert!(shown.starts_with("FUZZ_UINT="), "{shown:?}");
            assert!(shown.contains(&format!("from {min} to {max}")), "{shown:?}");
        }
        _ => panic!("parse_uint({raw:?}, {default}, {min}..={max}) = {got:?}, want {want:?}"),
    }

    let lower = present(raw).map(str::to_ascii_lowercase);
    let want_bool = match lower.as_deref() {
        None => Some(false),
        Some("true" | "1" | "yes" | "on") => Some(true),
        Some("false" | "0" | "no" | "off") => Some(false),
        Some(_) => None,
    };
    let got = parse_bool("FUZZ_BOOL", raw);
    assert_eq!(
        got.as_ref().ok().copied(),
        want_bool,
        "parse_bool({raw:?}) = {got:?}"
    );
    if let Err(e) = &got {
        check_error(e, &["FUZZ_BOOL"]);
    }

    let got = parse_tristate("FUZZ_TRI", raw);
    let want_tri = match lower.as_deref() {
        None | Some("auto") => Some(None),
        Some(_) => want_bool.map(Some),
    };
    assert_eq!(
        got.as_ref().ok().copied(),
        want_tri,
        "parse_tristate({raw:?}) = {got:?}"
    );
    if let Err(e) = &got {
        check_error(e, &["FUZZ_TRI"]);
    }

    let got = parse_tunnel(raw);
    let want_tunnel = match present(raw) {
        None | Some("geneve") => Some(TunnelType::Geneve),
        Some("vxlan") => Some(TunnelType::Vxlan),
        Some("stt") => Some(TunnelType::Stt),
        Some(_) => None,
    };
    assert_eq!(
        got.as_ref().ok().copied(),
        want_tunnel,
        "parse_tunnel({raw:?}) = {got:?}"
    );
    if let Err(e) = &got {
        check_error(e, &[]);
        assert!(e.to_string().starts_with("TUNNEL_TYPE="), "{e}");
    }
}

fuzz_target!(|data: &[u8]| {
    let mut args = NodeArgs::default();
    let mut hostname = String::from("node-a");
    let mut cwd = PathBuf::from("/work");
    let mut knobs: u64 = 0x0123_4567_89ab_cdef;
    for seg in data.split(|&b| b == 0).take(64) {
        let Some((&sel, value)) = seg.split_first() else {
            continue;
        };
        knobs = knobs.rotate_left(8) ^ u64::from(sel) ^ (value.len() as u64) << 32;
        let slot = usize::from(sel) % N_SLOTS;
        let text = String::from_utf8_lossy(value).into_owned();
        check_parsers(&Some(text.clone()), knobs);
        if let Some(f) = string_field(&mut args, slot) {
            *f = Some(text);
        } else if let Some(f) = path_field(&mut args, slot - N_STRING) {
            *f = Some(PathBuf::from(OsStr::from_bytes(value)));
        } else if slot == SLOT_HOSTNAME {
            hostname = text;
        } else if slot == SLOT_CWD {
            cwd = PathBuf::from(OsStr::from_bytes(value));
        }
    }
    check_parsers(&None, knobs);

    let first = Config::resolve(&args, &hostname, Path::new(&cwd));
    let second = Config::resolve(&args, &hostname, Path::new(&cwd));
    assert_eq!(
        format!("{first:?}"),
        format!("{second:?}"),
        "resolution is not deterministic"
    );
    match &first {
        Ok(c) => check_config(c, &args),
        Err(e) => check_error(e, &[]),
    }
});

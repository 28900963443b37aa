//! Table-driven tests of [`Config::resolve`]: every accepted and rejected form of each variable.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::cli::{NodeArgs, PathArgs};
use super::*;

fn sandbox_args() -> NodeArgs {
    NodeArgs {
        paths: PathArgs {
            sandbox: Some(PathBuf::from("/tmp/sb")),
            ..Default::default()
        },
        ..Default::default()
    }
}

pub(super) fn resolve(f: impl FnOnce(&mut NodeArgs)) -> Result<Config, ConfigError> {
    let mut a = sandbox_args();
    f(&mut a);
    Config::resolve(&a, "host-a", Path::new("/"))
}

pub(super) fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

#[test]
fn defaults_in_the_sandbox() {
    let c = resolve(|_| {}).unwrap();
    assert_eq!(c.remote_probe_interval_ms, 10_000);
    assert_eq!(c.openflow_probe_interval_s, 180);
    assert_eq!(c.tunnel, TunnelType::Geneve);
    assert_eq!(c.hostname, "host-a");
    assert_eq!(c.datapath_type, DatapathType::Netdev);
    assert!(c.southbound.embedded);
    assert_eq!(
        c.southbound.remote,
        "unix:/tmp/sb/run/ovn/ovnsb_db.sock".to_string()
    );
    assert_eq!(c.stop_budget, Duration::from_secs(25));
    // A successor gets the whole start it may take (stage + br-int.mgmt deadlines) to confirm.
    assert_eq!(c.handover_confirm, Duration::from_secs(90));
    assert_eq!(c.sandbox_net, Some(SandboxNet::Auto));
}

/// Sets the field that the variable `var` feeds, as clap would from the environment.
fn set(a: &mut NodeArgs, var: &str, value: &str) {
    let field = match var {
        "OVN_REMOTE_PROBE_INTERVAL" => &mut a.ovn_remote_probe_interval,
        "OVN_REMOTE_OPENFLOW_INTERVAL" => &mut a.ovn_remote_openflow_interval,
        "TUNNEL_TYPE" => &mut a.tunnel_type,
        "KUBE_OVN_SB_PORT" => &mut a.kube_ovn_sb_port,
        "OVN_DB_IPS" => &mut a.ovn_db_ips,
        "OVN_SB_ADDR" => &mut a.ovn_sb_addr,
        "OVN_SB_SERVICE_HOST" => &mut a.ovn_sb_service_host,
        "OVN_SB_SERVICE_PORT" => &mut a.ovn_sb_service_port,
        "OVS_OVN_SUPERVISOR_DATAPATH_TYPE" => &mut a.datapath_type,
        "OVS_OVN_SUPERVISOR_N_HANDLER_THREADS" => &mut a.n_handler_threads,
        "OVS_OVN_SUPERVISOR_N_REVALIDATOR_THREADS" => &mut a.n_revalidator_threads,
        "OVS_OVN_SUPERVISOR_MGMT_BACKOFF_BASE_MS" => &mut a.mgmt_backoff_base_ms,
        "OVS_OVN_SUPERVISOR_MGMT_BACKOFF_CAP_MS" => &mut a.mgmt_backoff_cap_ms,
        "OVS_OVN_SUPERVISOR_STOP_BUDGET_MS" => &mut a.stop_budget_ms,
        "OVS_OVN_SUPERVISOR_LOG_FORMAT" => &mut a.log_format,
        "OVS_OVN_SUPERVISOR_SANDBOX_NET" => &mut a.sandbox_net,
        "OVS_OVN_SUPERVISOR_OFCTRL_WAIT_BEFORE_CLEAR_MS" => &mut a.ofctrl_wait_before_clear_ms,
        "OVS_OVN_SUPERVISOR_MATCH_NORTHD_VERSION" => &mut a.match_northd_version,
        "OVS_OVN_SUPERVISOR_TAKEOVER_FLOWS" => &mut a.takeover_flows,
        "OVS_OVN_SUPERVISOR_FIREWALL_REQUIRED" => &mut a.firewall_required,
        "OVS_OVN_SUPERVISOR_CORE_LIMIT_MB" => &mut a.core_limit_mb,
        other => panic!("no field for {other} in this test"),
    };
    *field = s(value);
}

#[test]
#[rustfmt::skip]
fn rejected_values_name_the_variable_and_what_is_accepted() {
    // (variable named in the error, settings as (variable, value), part of what is accepted)
    type Case = (&'static str, &'static [(&'static str, &'static str)], &'static str);
    let cases: &[Case] = &[
        ("OVN_REMOTE_PROBE_INTERVAL", &[("OVN_REMOTE_PROBE_INTERVAL", "abc")], "whole number"),
        ("OVN_REMOTE_PROBE_INTERVAL", &[("OVN_REMOTE_PROBE_INTERVAL", "-5")], "whole number"),
        ("OVN_REMOTE_PROBE_INTERVAL", &[("OVN_REMOTE_PROBE_INTERVAL", "+5")], "whole number"),
        ("OVN_REMOTE_PROBE_INTERVAL", &[("OVN_REMOTE_PROBE_INTERVAL", "99999999999999999999999")], "whole number"),
        ("OVN_REMOTE_PROBE_INTERVAL", &[("OVN_REMOTE_PROBE_INTERVAL", "2147483648")], "2147483647"),
        ("OVN_REMOTE_PROBE_INTERVAL", &[("OVN_REMOTE_PROBE_INTERVAL", "1.5")], "whole number"),
        ("OVN_REMOTE_OPENFLOW_INTERVAL", &[("OVN_REMOTE_OPENFLOW_INTERVAL", "3m")], "whole number"),
        ("TUNNEL_TYPE", &[("TUNNEL_TYPE", "gre0")], "geneve, vxlan, stt"),
        ("TUNNEL_TYPE", &[("TUNNEL_TYPE", "GENEVE ")], "geneve, vxlan, stt"),
        ("KUBE_OVN_SB_PORT", &[("OVN_DB_IPS", "10.0.0.1"), ("KUBE_OVN_SB_PORT", "70000")], "65535"),
        ("KUBE_OVN_SB_PORT", &[("OVN_DB_IPS", "10.0.0.1"), ("KUBE_OVN_SB_PORT", "0")], "from 1"),
        ("OVN_DB_IPS", &[("OVN_DB_IPS", "10.0.0.1,node_b")], "or a host name"),
        ("OVN_DB_IPS", &[("OVN_DB_IPS", "10.0.0.300")], "or a host name"),
        ("OVN_DB_IPS", &[("OVN_DB_IPS", "-bad.example")], "or a host name"),
        ("OVN_DB_IPS", &[("OVN_DB_IPS", ",,")], "comma-separated"),
        ("OVN_SB_ADDR", &[("OVN_SB_ADDR", "10.0.0.1:6642")], "tcp:"),
        ("OVN_SB_ADDR", &[("OVN_SB_ADDR", "tcp:")], "tcp:"),
        ("OVN_SB_SERVICE_HOST", &[("OVN_SB_SERVICE_HOST", "not an ip")], "IPv4 or IPv6"),
        ("OVN_SB_SERVICE_PORT", &[("OVN_SB_SERVICE_HOST", "10.96.0.5"), ("OVN_SB_SERVICE_PORT", "x")], "whole number"),
        ("OVS_OVN_SUPERVISOR_DATAPATH_TYPE", &[("OVS_OVN_SUPERVISOR_DATAPATH_TYPE", "dpdk")], "system, netdev"),
        ("OVS_OVN_SUPERVISOR_N_HANDLER_THREADS", &[("OVS_OVN_SUPERVISOR_N_HANDLER_THREADS", "0")], "from 1 to 1024"),
        ("OVS_OVN_SUPERVISOR_N_REVALIDATOR_THREADS", &[("OVS_OVN_SUPERVISOR_N_REVALIDATOR_THREADS", "5000")], "from 1 to 1024"),
        ("OVS_OVN_SUPERVISOR_MGMT_BACKOFF_CAP_MS", &[("OVS_OVN_SUPERVISOR_MGMT_BACKOFF_BASE_MS", "100"), ("OVS_OVN_SUPERVISOR_MGMT_BACKOFF_CAP_MS", "50")], "at least"),
        ("OVS_OVN_SUPERVISOR_MGMT_BACKOFF_BASE_MS", &[("OVS_OVN_SUPERVISOR_MGMT_BACKOFF_BASE_MS", "0")], "from 1"),
        ("OVS_OVN_SUPERVISOR_STOP_BUDGET_MS", &[("OVS_OVN_SUPERVISOR_STOP_BUDGET_MS", "5")], "from 100"),
        ("OVS_OVN_SUPERVISOR_LOG_FORMAT", &[("OVS_OVN_SUPERVISOR_LOG_FORMAT", "xml")], "text, json"),
        ("OVS_OVN_SUPERVISOR_SANDBOX_NET", &[("OVS_OVN_SUPERVISOR_SANDBOX_NET", "host")], "auto, netns, dummy"),
        ("OVS_OVN_SUPERVISOR_MATCH_NORTHD_VERSION", &[("OVS_OVN_SUPERVISOR_MATCH_NORTHD_VERSION", "always")], "auto, true or false"),
        ("OVS_OVN_SUPERVISOR_FIREWALL_REQUIRED", &[("OVS_OVN_SUPERVISOR_FIREWALL_REQUIRED", "maybe")], "true or false"),
        ("OVS_OVN_SUPERVISOR_TAKEOVER_FLOWS", &[("OVS_OVN_SUPERVISOR_TAKEOVER_FLOWS", "save")], "auto, restore, keep or keep-or-restore"),
        ("OVS_OVN_SUPERVISOR_TAKEOVER_FLOWS", &[("OVS_OVN_SUPERVISOR_TAKEOVER_FLOWS", "Keep")], "auto, restore, keep or keep-or-restore"),
        ("OVS_OVN_SUPERVISOR_CORE_LIMIT_MB", &[("OVS_OVN_SUPERVISOR_CORE_LIMIT_MB", "32G")], "whole number of MiB"),
        ("OVS_OVN_SUPERVISOR_CORE_LIMIT_MB", &[("OVS_OVN_SUPERVISOR_CORE_LIMIT_MB", "-1")], "or unlimited"),
        ("OVS_OVN_SUPERVISOR_CORE_LIMIT_MB", &[("OVS_OVN_SUPERVISOR_CORE_LIMIT_MB", "17592186044416")], "17592186044415"),
        ("OVS_OVN_SUPERVISOR_CORE_LIMIT_MB", &[("OVS_OVN_SUPERVISOR_CORE_LIMIT_MB", "Unlimited")], "or unlimited"),
    ];
    for (var, settings, expected) in cases {
        let err = resolve(|a| settings.iter().for_each(|(v, value)| set(a, v, value))).expect_err(var);
        let msg = err.to_string();
        assert!(msg.starts_with(var), "{var}: {msg}");
        assert!(msg.contains(expected), "{var}: {msg} lacks {expected:?}");
    }
}

#[test]
fn accepted_values() {
    let c = resolve(|a| {
        a.ovn_remote_probe_interval = s("0");
        a.ovn_remote_openflow_interval = s("30");
        a.tunnel_type = s("vxlan");
        a.hw_offload = s("true");
        a.enable_ssl = s("true");
        a.node_name = s("node-1");
        a.kube_node_name = s("ignored");
        a.ovn_db_ips = s("10.0.0.1, [fd00::2],fd00::3 ,ovn-central.kube-system");
        a.n_handler_threads = s("3");
        a.debug_wrapper = s("valgrind  --leak-check=full");
    })
    .unwrap();
    assert_eq!(c.remote_probe_interval_ms, 0);
    assert_eq!(c.openflow_probe_interval_s, 30);
    assert_eq!(c.tunnel, TunnelType::Vxlan);
    assert!(c.hw_offload && c.ssl);
    assert_eq!(c.hostname, "node-1");
    assert_eq!(
        c.southbound,
        Southbound {
            remote: "ssl:10.0.0.1:6642,ssl:[fd00::2]:6642,ssl:[fd00::3]:6642,ssl:ovn-central.kube-system:6642".into(),
            embedded: false
        }
    );
    assert_eq!(c.handler_threads, Some(3));
    assert_eq!(c.revalidator_threads, None);
    assert_eq!(
        c.debug_wrapper,
        DebugWrapper::Command(vec!["valgrind".into(), "--leak-check=full".into()])
    );
}

#[test]
fn empty_values_count_as_unset() {
    let c = resolve(|a| {
        a.hw_offload = s("");
        a.tunnel_type = s(" ");
        a.node_name = s("");
        a.kube_node_name = s("old-name");
    })
    .unwrap();
    assert!(!c.hw_offload);
    assert_eq!(c.tunnel, TunnelType::Geneve);
    assert_eq!(c.hostname, "old-name");
}

#[test]
fn southbound_precedence() {
    let c = resolve(|a| {
        a.ovn_sb_addr = s("tcp:1.2.3.4:6642");
        a.ovn_db_ips = s("10.0.0.1");
        a.ovn_sb_service_host = s("10.96.0.5");
    })
    .unwrap();
    assert_eq!(c.southbound.remote, "tcp:1.2.3.4:6642");
    let c = resolve(|a| {
        a.ovn_db_ips = s("10.0.0.1");
        a.kube_ovn_sb_port = s("16642");
        a.ovn_sb_service_host = s("10.96.0.5");
    })
    .unwrap();
    assert_eq!(c.southbound.remote, "tcp:10.0.0.1:16642");
    let c = resolve(|a| {
        a.ovn_sb_service_host = s("fd00::10");
        a.ovn_sb_service_port = s("6643");
    })
    .unwrap();
    assert_eq!(c.southbound.remote, "tcp:[fd00::10]:6643");
}

#[test]
fn outside_the_sandbox_a_southbound_is_required() {
    let a = NodeArgs::default();
    let err = Config::resolve(&a, "h", Path::new("/")).unwrap_err();
    assert_eq!(err, ConfigError::NoSouthbound);
    let a = NodeArgs {
        ovn_db_ips: s("10.0.0.1"),
        ..Default::default()
    };
    let c = Config::resolve(&a, "h", Path::new("/")).unwrap();
    assert_eq!(c.datapath_type, DatapathType::System);
    assert_eq!(c.sandbox_net, None);
}

#[test]
fn ovn_controller_computes_before_replacing_flows_on_the_kernel_datapath_only() {
    let wait = |f: fn(&mut NodeArgs)| resolve(f).unwrap().ofctrl_wait_before_clear;
    assert_eq!(wait(|_| {}), Duration::ZERO, "userspace datapath");
    let system = |a: &mut NodeArgs| set(a, "OVS_OVN_SUPERVISOR_DATAPATH_TYPE", "system");
    assert_eq!(wait(system), Duration::from_secs(2));
    assert_eq!(
        wait(|a| {
            set(a, "OVS_OVN_SUPERVISOR_DATAPATH_TYPE", "system");
            set(a, "OVS_OVN_SUPERVISOR_OFCTRL_WAIT_BEFORE_CLEAR_MS", "0");
        }),
        Duration::ZERO
    );
    let e = resolve(|a| set(a, "OVS_OVN_SUPERVISOR_OFCTRL_WAIT_BEFORE_CLEAR_MS", "soon"));
    assert!(e
        .unwrap_err()
        .to_string()
        .contains("OVS_OVN_SUPERVISOR_OFCTRL_WAIT_BEFORE_CLEAR_MS"));
}

#[test]
fn small_nonzero_probe_interval_is_accepted_with_a_warning() {
    let c = resolve(|a| a.ovn_remote_probe_interval = s("500")).unwrap();
    assert_eq!(c.remote_probe_interval_ms, 500);
    assert!(c.warnings.iter().any(|w| w.contains("1000 ms")));
}

#[test]
fn booleans_as_kube_ovn_reads_them() {
    // (value, ENABLE_SSL, HW_OFFLOAD, warned)
    let table: &[(Option<&str>, bool, bool, bool)] = &[
        (None, false, false, false),
        (Some(""), false, false, false),
        (Some("false"), false, false, false),
        (Some("true"), true, true, false),
        (Some(" true "), true, true, false),
        (Some("True"), true, false, true),
        (Some("1"), true, false, true),
        (Some("no"), true, false, true),
        (Some("FALSE"), true, false, true),
    ];
    for &(value, ssl, hw, warned) in table {
        let c = resolve(|a| {
            a.enable_ssl = value.map(String::from);
            a.hw_offload = value.map(String::from);
        })
        .unwrap();
        assert_eq!((c.ssl, c.hw_offload), (ssl, hw), "{value:?}");
        let warnings: Vec<_> = c
            .warnings
            .iter()
            .filter(|w| w.starts_with("ENABLE_SSL=") || w.starts_with("HW_OFFLOAD="))
            .collect();
        assert_eq!(
            warnings.len(),
            if warned { 2 } else { 0 },
            "{value:?}: {warnings:?}"
        );
        if warned {
            assert!(warnings[0].contains("taken as on"), "{warnings:?}");
            assert!(warnings[1].contains("taken as off"), "{warnings:?}");
        }
    }
}

#[test]
fn debug_wrapper_keywords() {
    use std::path::Path;
    let w = |v: &str| DebugWrapper::parse(&Some(v.to_string()));
    let log = Path::new("/var/log/openvswitch");
    let v = w("valgrind").prefix("ovs-vswitchd", log);
    assert_eq!(v[0], "valgrind");
    assert!(
        v.contains(&"--log-file=/var/log/openvswitch/ovs-vswitchd.valgrind.log.%p".to_string()),
        "{v:?}"
    );
    let st = w("strace").prefix("ovn-controller", Path::new("/var/log/ovn"));
    assert_eq!(st[0], "strace");
    assert!(st.contains(&"-D".to_string()));
    assert_eq!(st.last().unwrap(), "/var/log/ovn/ovn-controller.strace.log");
    assert!(w("glibc").prefix("x", log).is_empty());
    assert!(w("glibc")
        .env()
        .contains(&("MALLOC_CHECK_".into(), "2".into())));
    assert!(!w("glibc").wraps());
    assert_eq!(w("gdb -batch").prefix("x", log), ["gdb", "-batch"]);
    assert!(w("gdb -batch").wraps());
    assert_eq!(DebugWrapper::parse(&Some(" ".into())), DebugWrapper::None);
}

#[test]
fn ovn_match_northd_version_is_on_wherever_an_ovn_northd_writes_its_version() {
    // (OVN_SB_ADDR, OVS_OVN_SUPERVISOR_MATCH_NORTHD_VERSION, resolved)
    let table: &[(Option<&str>, Option<&str>, bool)] = &[
        // The sandbox's embedded Southbound: no ovn-northd, so no version to match.
        (None, None, false),
        (None, Some("auto"), false),
        (None, Some("true"), true),
        // A real Southbound, as start-ovs.sh set it.
        (Some("tcp:10.0.0.1:6642"), None, true),
        (Some("tcp:10.0.0.1:6642"), Some(""), true),
        (Some("tcp:10.0.0.1:6642"), Some("false"), false),
        (Some("tcp:10.0.0.1:6642"), Some("off"), false),
    ];
    for &(sb, value, want) in table {
        let c = resolve(|a| {
            a.ovn_sb_addr = sb.map(String::from);
            a.match_northd_version = value.map(String::from);
        })
        .unwrap();
        assert_eq!(c.match_northd_version, want, "{sb:?} {value:?}");
    }
}

#[test]
fn a_takeover_keeps_the_kernels_flows_and_restores_br_ints_table_where_nothing_else_forwards() {
    use crate::config::TakeoverFlows::{Keep, KeepOrRestore, Restore};
    // (OVS_OVN_SUPERVISOR_DATAPATH_TYPE, OVS_OVN_SUPERVISOR_TAKEOVER_FLOWS, resolved)
    let table: &[(&str, Option<&str>, TakeoverFlows)] = &[
        ("system", None, KeepOrRestore),
        ("system", Some(""), KeepOrRestore),
        ("system", Some("auto"), KeepOrRestore),
        ("system", Some("keep"), Keep),
        ("system", Some("restore"), Restore),
        ("system", Some("keep-or-restore"), KeepOrRestore),
        ("netdev", None, Restore),
        ("netdev", Some("auto"), Restore),
        ("netdev", Some("keep"), Keep),
        ("netdev", Some("keep-or-restore"), KeepOrRestore),
    ];
    for &(datapath, value, want) in table {
        let c = resolve(|a| {
            a.datapath_type = Some(datapath.into());
            a.takeover_flows = value.map(String::from);
        })
        .unwrap();
        assert_eq!(c.takeover_flows, want, "{datapath} {value:?}");
    }
}

#[test]
fn firewall_failure_at_start_is_fatal_only_when_required() {
    let required = |v: Option<&str>| {
        resolve(|a| a.firewall_required = v.map(String::from))
            .unwrap()
            .firewall_required
    };
    assert!(!required(None), "default: start without the rule");
    assert!(!required(Some("")));
    assert!(required(Some("true")));
    assert!(required(Some("1")));
    assert!(!required(Some("off")));
}

#[test]
fn core_limit_in_mib_zero_or_unlimited_default_as_ovs_ctl() {
    use crate::process::limits::Size;
    let core = |v: Option<&str>| {
        resolve(|a| a.core_limit_mb = v.map(String::from))
            .unwrap()
            .core_limit
    };
    // ovs-ctl's `ulimit -c 67108864` in 512-byte blocks.
    assert_eq!(core(None), Size::Finite(67_108_864 * 512));
    assert_eq!(core(Some(" ")), Size::Finite(32 << 30));
    assert_eq!(core(Some("0")), Size::Finite(0));
    assert_eq!(core(Some("3")), Size::Finite(3 << 20));
    assert_eq!(core(Some(" unlimited ")), Size::Unlimited);
    assert_eq!(
        core(Some("17592186044415")),
        Size::Finite((u64::MAX >> 20) << 20)
    );
}

//! The README's configuration table against [`Config::resolve`]: every default it promises is
//! read from its own row, so a changed default and a stale README cannot pass together.

use std::path::Path;
use std::time::Duration;

use super::cli::NodeArgs;
use super::tests::{resolve, s};
use super::*;

/// The README's configuration table promises these defaults; each is read from the README's
/// own row and compared with what an empty environment resolves to, so a changed default and
/// a stale README cannot pass together.
#[test]
fn the_readmes_defaults_are_the_resolved_defaults() {
    let readme = include_str!("../../README.md");
    let row = |var: &str| -> Vec<u64> {
        let line = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{var}`")))
            .unwrap_or_else(|| panic!("no README row for {var}"));
        let default = line.split('|').nth(2).unwrap();
        default
            .split(',')
            .map(|n| {
                n.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{var}: {default:?}"))
            })
            .collect()
    };
    let c = resolve(|_| {}).unwrap();
    let ms = |d: Duration| d.as_millis() as u64;
    let r = &c.restart;
    let table: [(&str, Vec<u64>); 10] = [
        (
            "OVN_REMOTE_PROBE_INTERVAL",
            vec![c.remote_probe_interval_ms],
        ),
        (
            "OVN_REMOTE_OPENFLOW_INTERVAL",
            vec![c.openflow_probe_interval_s],
        ),
        (
            "OVS_OVN_SUPERVISOR_MGMT_BACKOFF_BASE_MS",
            vec![
                ms(c.mgmt_backoff.base),
                ms(c.mgmt_backoff.cap),
                ms(c.mgmt_deadline),
            ],
        ),
        (
            "OVS_OVN_SUPERVISOR_STAGE_DEADLINE_MS",
            vec![ms(c.stage_deadline)],
        ),
        ("OVS_OVN_SUPERVISOR_STOP_BUDGET_MS", vec![ms(c.stop_budget)]),
        (
            "OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS",
            vec![ms(c.health_interval)],
        ),
        (
            "OVS_OVN_SUPERVISOR_RESTART_BACKOFF_BASE_MS",
            vec![ms(r.backoff.base), ms(r.backoff.cap), ms(r.stable_after)],
        ),
        (
            "OVS_OVN_SUPERVISOR_CRASH_LOOP_RESTARTS",
            vec![u64::from(r.max_restarts), ms(r.window)],
        ),
        ("OVS_OVN_SUPERVISOR_HUNG_AFTER_MS", vec![ms(r.hung_after)]),
        ("OVS_OVN_SUPERVISOR_BUSY_LIMIT_MS", vec![ms(r.busy_limit)]),
    ];
    for (var, resolved) in table {
        assert_eq!(
            row(var),
            resolved,
            "{var}: the README's default vs the resolved one"
        );
    }
    // The firewall is never managed in the sandbox: its recheck is a real node's default.
    let node = NodeArgs {
        ovn_db_ips: s("10.16.0.2"),
        ..Default::default()
    };
    let node = Config::resolve(&node, "host-b", Path::new("/")).unwrap();
    assert_eq!(
        row("OVS_OVN_SUPERVISOR_FIREWALL_RECHECK_MS"),
        [ms(node.firewall_recheck.unwrap())]
    );
}

//! [`super::ensure_rule`] fed what the real iptables-legacy 1.8.9 answers as uid 65534 without
//! the host's lock: the start goes on without the rule, or stops when the operator said so.

use std::cell::RefCell;
use std::path::Path;

use super::*;
use crate::config::cli::NodeArgs;
use crate::host::firewall::{FirewallError, Output, RunError};

/// iptables-legacy's answer (exit 4) where the lock cannot be opened, captured with
/// `setpriv --reuid 65534 --inh-caps +net_admin,+net_raw --ambient-caps +net_admin,+net_raw
/// iptables-legacy -w 5 -C INPUT ...` on a host whose /run/xtables.lock is root's, mode 0600.
const LOCK_DENIED: &str = "Fatal: can't open lock file /run/xtables.lock: Permission denied\n";

/// A legacy node (kubelet's hint chain in legacy mangle) whose iptables-legacy cannot lock.
#[derive(Default)]
struct LockedLegacy {
    calls: RefCell<Vec<String>>,
}

impl Runner for LockedLegacy {
    fn run(&self, program: &str, args: &[&str]) -> Result<Output, RunError> {
        self.calls
            .borrow_mut()
            .push(format!("{program} {}", args.join(" ")));
        let (code, stdout, stderr) = match program {
            "iptables-legacy-save" => (0, "*mangle\n:KUBE-IPTABLES-HINT - [0:0]\nCOMMIT\n", ""),
            "iptables-nft-save" => (0, "", ""),
            "iptables-legacy" => (4, "", LOCK_DENIED),
            other => panic!("unexpected {other}"),
        };
        Ok(Output {
            code: Some(code),
            stdout: stdout.into(),
            stderr: stderr.into(),
        })
    }
}

fn node(required: Option<&str>) -> Config {
    let a = NodeArgs {
        ovn_db_ips: Some("10.0.0.1".into()),
        firewall_ipv6: Some("false".into()),
        firewall_required: required.map(String::from),
        ..Default::default()
    };
    Config::resolve(&a, "node-a", Path::new("/")).unwrap()
}

#[test]
fn a_rule_that_cannot_be_set_leaves_the_start_going_unless_required() {
    let r = LockedLegacy::default();
    let at_start = ensure_rule(&node(None), &r).unwrap();
    let RuleAtStart::Missing(FirewallError::Failed {
        program,
        code,
        stderr,
        ..
    }) = &at_start
    else {
        panic!("{at_start:?}");
    };
    assert_eq!((program.as_str(), *code), ("iptables-legacy", Some(4)));
    assert_eq!(stderr, LOCK_DENIED);
    assert_eq!(
        r.calls.borrow().last().unwrap(),
        "iptables-legacy -w 5 -C INPUT -p udp -m udp --dport 6081 -m comment --comment ovs-ovn-supervisor: geneve tunnel -j ACCEPT"
    );

    let err = ensure_rule(&node(Some("true")), &LockedLegacy::default()).unwrap_err();
    let text = err.to_string();
    for part in [
        "`iptables-legacy -w 5 -C INPUT",
        "exit status 4",
        "can't open lock file /run/xtables.lock: Permission denied",
        "mount the host's /run/xtables.lock",
        "OVS_OVN_SUPERVISOR_FIREWALL_REQUIRED=true",
    ] {
        assert!(text.contains(part), "{part:?} not in {text}");
    }
}

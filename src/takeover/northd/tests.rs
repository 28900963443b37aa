//! The pure parts: the decision, ovn-controller's version line, the Southbound's reply and the
//! query's arguments.

use std::path::Path;
use std::time::Duration;

use super::southbound::{parse_reply, query_args};
use super::*;
use crate::config::cli::{NodeArgs, PathArgs};

#[test]
fn a_takeover_goes_on_only_when_ovn_northd_wrote_our_exact_version() {
    let stock = "23.03.1-20.27.0-70.6";
    // Kube-OVN's build: OVN branch-25.03 with its version renamed `X+g<commit>`.
    let kube_ovn = "25.03.2+g0123456789ab-20.41.0-78.9";
    let v = |s: &str| Northd::Version(s.to_string());
    // (ours, northd's, accepted)
    let table: &[(&str, Northd, bool)] = &[
        (stock, v(stock), true),
        (kube_ovn, v(kube_ovn), true),
        (stock, v(kube_ovn), false),
        (kube_ovn, v("25.03.2-20.41.0-78.9"), false),
        // Same package, another build with one more OVN action.
        (stock, v("23.03.1-20.27.0-71.6"), false),
        (stock, Northd::NotWritten, false),
    ];
    for (ours, northd, accepted) in table {
        let got = decide(ours, northd);
        assert_eq!(got.is_ok(), *accepted, "{ours} vs {northd}");
        if let Err((o, n)) = got {
            assert_eq!((o.as_str(), &n), (*ours, northd));
        }
    }
}

#[test]
fn the_refusal_names_both_versions_and_the_way_out() {
    let e = NorthdError::Mismatch {
        old: "the running instance (pid 42)".into(),
        ours: "23.03.1-20.27.0-70.6".into(),
        northd: Northd::Version("25.03.2+g0123456789ab-20.41.0-78.9".into()),
        remote: "tcp:10.0.0.1:6642".into(),
    }
    .to_string();
    for needle in [
        "23.03.1-20.27.0-70.6",
        "25.03.2+g0123456789ab-20.41.0-78.9",
        "pid 42",
        "tcp:10.0.0.1:6642",
        "left running",
        "OVS_OVN_SUPERVISOR_MATCH_NORTHD_VERSION=false",
    ] {
        assert!(e.contains(needle), "{needle} missing: {e}");
    }
    assert!(Northd::NotWritten.to_string().contains("none"));
}

#[test]
fn ovn_controllers_version_line() {
    // As OVN 23.03's ovn-controller writes it on its console.
    let line =
        "2026-12-03T06:44:32Z|00004|main|INFO|OVN internal version is : [23.03.1-20.27.0-70.6]";
    assert_eq!(ours::parse_line(line), Some("23.03.1-20.27.0-70.6"));
    let kube_ovn = "x|main|INFO|OVN internal version is : [25.03.2+g0123456789ab-20.41.0-78.9]";
    assert_eq!(
        ours::parse_line(kube_ovn),
        Some("25.03.2+g0123456789ab-20.41.0-78.9")
    );
    for other in [
        "",
        "x|main|INFO|OVN internal version is : []",
        "x|main|INFO|OVN internal version is : [23.03.1",
        "x|reconnect|INFO|unix:/tmp/db.sock: connected",
    ] {
        assert_eq!(ours::parse_line(other), None, "{other}");
    }
}

#[test]
fn the_southbounds_reply() {
    let reply = |options: &str| format!(r#"[{{"rows":[{{"options":["map",{options}]}}]}}]"#);
    // (stdout, result)
    let table: Vec<(String, Result<Northd, ()>)> = vec![
        (
            reply(
                r#"[["mac_prefix","6e:1a:3a"],["northd_internal_version","23.03.1-20.27.0-70.6"]]"#,
            ),
            Ok(Northd::Version("23.03.1-20.27.0-70.6".into())),
        ),
        (reply("[]"), Ok(Northd::NotWritten)),
        (
            reply(r#"[["northd_internal_version",""]]"#),
            Ok(Northd::NotWritten),
        ),
        (r#"[{"rows":[]}]"#.into(), Ok(Northd::NotWritten)),
        (
            r#"[{"error":"unknown database","details":"OVN_Southbound"}]"#.into(),
            Err(()),
        ),
        ("".into(), Err(())),
        ("[]".into(), Err(())),
        (r#"[{"rows":[{"options":"x"}]}]"#.into(), Err(())),
    ];
    for (stdout, want) in table {
        assert_eq!(parse_reply(&stdout).map_err(|_| ()), want, "{stdout}");
    }
}

#[test]
fn the_query_uses_ovn_controllers_tls_files_on_ssl_remotes_only() {
    let a = NodeArgs {
        paths: PathArgs {
            sandbox: Some("/sb".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let cfg = Config::resolve(&a, "node-a", Path::new("/")).unwrap();
    let tcp = query_args(&cfg, "tcp:10.0.0.1:6642", Duration::from_millis(4_500));
    assert_eq!(&tcp[..3], ["--timeout=4", "query", "tcp:10.0.0.1:6642"]);
    assert!(tcp[3].contains(r#""table":"SB_Global""#));
    assert_eq!(tcp.len(), 4);
    let ssl = query_args(&cfg, "ssl:[fd00::1]:6642", Duration::ZERO);
    assert_eq!(ssl[0], "--timeout=1");
    assert!(
        ssl.contains(&"--ca-cert=/var/run/tls/cacert".to_string()),
        "{ssl:?}"
    );
    assert!(ssl.contains(&"--private-key=/var/run/tls/key".to_string()));
    assert!(ssl.contains(&"--certificate=/var/run/tls/cert".to_string()));
}

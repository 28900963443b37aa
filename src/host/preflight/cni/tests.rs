//! Tests of [`super`]: config parsing on strings, then the checks on fake `etc/cni/net.d` dirs.

use super::*;
use crate::host::preflight::testhost::host;

const KUBE_OVN_CONF: &str = r#"{"name":"kube-ovn","cniVersion":"0.3.1","plugins":[
  {"type":"kube-ovn","server_socket":"/run/openvswitch/kube-ovn-daemon.sock",
   "ipam":{"type":"kube-ovn"}},{"type":"portmap","capabilities":{"portMappings":true}}]}"#;
const CALICO_CONF: &str = r#"{"name":"k8s-pod-network","cniVersion":"0.3.1","plugins":[
  {"type":"calico","ipam":{"type":"calico-ipam"}},{"type":"bandwidth"}]}"#;
const MULTUS_AUTO: &str = r#"{"name":"multus-cni-network","type":"multus","kubeconfig":"/k"}"#;

fn names_and_statuses(checks: &[Check]) -> Vec<(&str, Status)> {
    checks.iter().map(|c| (c.name.as_str(), c.status)).collect()
}

#[test]
#[rustfmt::skip]
fn parses_both_shapes_and_multus_masters() {
    let table: &[(&str, &[&str], Option<Master>)] = &[
        (KUBE_OVN_CONF, &["kube-ovn", "portmap"], None),
        (r#"{"type":"flannel","delegate":{"hairpinMode":true}}"#, &["flannel"], None),
        (MULTUS_AUTO, &["multus"], Some(Master::None)),
        (r#"{"type":"multus","clusterNetwork":"  "}"#, &["multus"], Some(Master::None)),
        (r#"{"type":"multus","delegates":[]}"#, &["multus"], Some(Master::None)),
        (r#"{"type":"multus-shim","clusterNetwork":"kube-ovn"}"#, &["multus-shim"],
         Some(Master::ClusterNetwork("kube-ovn".into()))),
        (r#"{"type":"multus","delegates":[{"name":"kube-ovn","plugins":[{"type":"kube-ovn"}]}]}"#,
         &["multus"], Some(Master::Delegate { name: Some("kube-ovn".into()), types: vec!["kube-ovn".into()] })),
        (r#"{"type":"multus","clusterNetwork":"/host/etc/cni/net.d/10-calico.conflist","delegates":[{"type":"x"}]}"#,
         &["multus"], Some(Master::ClusterNetwork("/host/etc/cni/net.d/10-calico.conflist".into()))),
    ];
    for (text, types, master) in table {
        let c = parse_config("f.conf", text).unwrap();
        assert_eq!(c.types, *types, "{text}");
        assert_eq!(c.master, *master, "{text}");
    }
}

#[test]
fn bad_configs_name_the_file() {
    for text in [
        "{",
        "[1,2]",
        "{}",
        r#"{"plugins":[]}"#,
        r#"{"type":""}"#,
        r#"{"type":7}"#,
        "",
    ] {
        let err = parse_config("05-bad.conf", text).unwrap_err();
        assert!(
            err.to_string().starts_with("05-bad.conf: "),
            "{text}: {err}"
        );
    }
}

#[test]
fn calico_sorting_before_kube_ovn_warns_naming_both() {
    let dir = host(&[
        ("etc/cni/net.d/10-calico.conflist", CALICO_CONF),
        ("etc/cni/net.d/20-kube-ovn.conflist", KUBE_OVN_CONF),
        (
            "etc/cni/net.d/calico-kubeconfig",
            "not a config: wrong extension",
        ),
        ("etc/cni/net.d/00-subdir.conf/", ""),
    ]);
    let got = checks(dir.path());
    assert_eq!(
        names_and_statuses(&got),
        [("cni/configs", Status::Ok), ("cni/primary", Status::Warn)]
    );
    assert_eq!(
        got[0].detail,
        "10-calico.conflist (calico, bandwidth); 20-kube-ovn.conflist (kube-ovn, portmap)"
    );
    let w = &got[1].detail;
    assert!(
        w.contains("10-calico.conflist") && w.contains("20-kube-ovn.conflist"),
        "{w}"
    );
    assert!(w.contains("Calico"), "{w}");
}

#[test]
fn kube_ovn_first_or_behind_multus_is_ok() {
    let dir = host(&[
        ("etc/cni/net.d/01-kube-ovn.conflist", KUBE_OVN_CONF),
        ("etc/cni/net.d/10-calico.conflist", CALICO_CONF),
    ]);
    let got = checks(dir.path());
    assert_eq!(
        names_and_statuses(&got),
        [("cni/configs", Status::Ok), ("cni/primary", Status::Ok)]
    );
    assert_eq!(
        got[0].detail,
        "01-kube-ovn.conflist (kube-ovn, portmap); 10-calico.conflist (calico, bandwidth)"
    );

    let dir = host(&[
        (
            "etc/cni/net.d/00-multus.conf",
            r#"{"type":"multus","clusterNetwork":"kube-ovn"}"#,
        ),
        ("etc/cni/net.d/01-kube-ovn.conflist", KUBE_OVN_CONF),
    ]);
    let got = checks(dir.path());
    assert_eq!(
        names_and_statuses(&got),
        [
            ("cni/configs", Status::Ok),
            ("cni/primary", Status::Ok),
            ("cni/multus", Status::Ok)
        ]
    );
}

#[test]
#[rustfmt::skip]
fn multus_masters() {
    let kube = ("01-kube-ovn.conflist", KUBE_OVN_CONF);
    let calico = ("10-calico.conflist", CALICO_CONF);
    // (multus config, whether the multus check warns)
    let table: &[(&str, Status)] = &[
        (MULTUS_AUTO, Status::Warn),
        (r#"{"type":"multus","clusterNetwork":"kube-ovn"}"#, Status::Ok),
        (r#"{"type":"multus","clusterNetwork":"/host/etc/cni/net.d/01-kube-ovn.conflist"}"#, Status::Ok),
        (r#"{"type":"multus","clusterNetwork":"/host/etc/cni/net.d/10-calico.conflist"}"#, Status::Warn),
        (r#"{"type":"multus","clusterNetwork":"k8s-pod-network"}"#, Status::Warn),
        (r#"{"type":"multus","clusterNetwork":"kube-system/kube-ovn"}"#, Status::Ok),
        (r#"{"type":"multus","clusterNetwork":"weave"}"#, Status::Warn),
        (r#"{"type":"multus","delegates":[{"name":"kube-ovn","plugins":[{"type":"kube-ovn"}]}]}"#, Status::Ok),
        (r#"{"type":"multus","delegates":[{"name":"cbr0","type":"flannel"}]}"#, Status::Warn),
    ];
    for (text, want) in table {
        let entries: Vec<Entry> = [("00-multus.conf", *text), kube, calico]
            .iter()
            .map(|(f, t)| (f.to_string(), parse_config(f, t)))
            .collect();
        let got = evaluate(&entries);
        let m = got.iter().find(|c| c.name == "cni/multus").unwrap();
        assert_eq!(m.status, *want, "{text}: {}", m.detail);
        assert!(m.detail.contains("00-multus.conf"), "{}", m.detail);
        if *want == Status::Warn {
            assert!(m.fix.as_deref().unwrap().contains("clusterNetwork"), "{m:?}");
        }
    }
    let entries = vec![("00-multus.conf".to_string(), parse_config("00-multus.conf", MULTUS_AUTO))];
    let got = evaluate(&entries);
    let m = got.iter().find(|c| c.name == "cni/multus").unwrap();
    assert!(m.detail.contains("no explicit master"), "{}", m.detail);
}

#[test]
fn bad_json_warns_and_is_skipped_for_the_primary() {
    let dir = host(&[
        ("etc/cni/net.d/00-broken.conf", "{\"type\": \"calico\","),
        ("etc/cni/net.d/01-kube-ovn.conflist", KUBE_OVN_CONF),
    ]);
    let got = checks(dir.path());
    assert_eq!(
        names_and_statuses(&got),
        [
            ("cni/configs", Status::Ok),
            ("cni/config", Status::Warn),
            ("cni/primary", Status::Ok)
        ]
    );
    assert!(got[0].detail.contains("00-broken.conf (invalid)"));
    assert!(
        got[1].detail.starts_with("00-broken.conf: not valid JSON"),
        "{}",
        got[1].detail
    );
}

#[test]
fn missing_or_empty_dir_is_ok_and_nothing_is_written() {
    for dir in [host(&[]), host(&[("etc/cni/net.d/", "")])] {
        let got = checks(dir.path());
        assert_eq!(names_and_statuses(&got), [("cni/configs", Status::Ok)]);
        assert!(got[0].detail.starts_with("no CNI configuration found"));
    }
    let dir = host(&[("etc/cni/net.d/10-calico.conflist", CALICO_CONF)]);
    let before = std::fs::read_dir(dir.path().join(CNI_DIR)).unwrap().count();
    let got = checks(dir.path());
    assert_eq!(names_and_statuses(&got)[1], ("cni/primary", Status::Warn));
    assert!(got[1].detail.contains("no Kube-OVN config yet"));
    assert_eq!(
        std::fs::read_dir(dir.path().join(CNI_DIR)).unwrap().count(),
        before
    );
    let text = std::fs::read_to_string(dir.path().join(CNI_DIR).join("10-calico.conflist"));
    assert_eq!(text.unwrap(), CALICO_CONF);
}

#[test]
fn a_fifo_among_the_configs_is_reported_not_waited_on() {
    let dir = host(&[("etc/cni/net.d/01-kube-ovn.conflist", KUBE_OVN_CONF)]);
    let fifo = dir.path().join(CNI_DIR).join("00-stuck.conf");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let t0 = std::time::Instant::now();
    let got = checks(dir.path());
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(1),
        "blocked on the FIFO"
    );
    assert_eq!(names_and_statuses(&got)[2], ("cni/primary", Status::Ok));
    let warn = got.iter().find(|c| c.name == "cni/config").unwrap();
    assert!(
        warn.detail.contains("is a FIFO; expected a regular file"),
        "{}",
        warn.detail
    );
}

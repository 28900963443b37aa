//! Tests of [`super`]: parser tables, the state decision on built facts, and fake hosts.

use super::*;
use crate::host::preflight::testhost::host;

#[test]
fn proc_modules_first_field_normalized() {
    let text = "openvswitch 176128 2 - Live 0x0000000000000000\n\
                nf_conncount 24576 1 openvswitch, Live 0x0\n\
                \n\
                some-dashed 1 0 - Live 0x0\n";
    let got = parse_proc_modules(text);
    let want: BTreeSet<String> = ["openvswitch", "nf_conncount", "some_dashed"]
        .map(String::from)
        .into();
    assert_eq!(got, want);
    assert!(parse_proc_modules("").is_empty());
}

#[test]
#[rustfmt::skip]
fn module_file_names() {
    let table: &[(&str, Option<&str>)] = &[
        ("geneve.ko", Some("geneve")), ("geneve.ko.xz", Some("geneve")),
        ("vxlan.ko.zst", Some("vxlan")), ("ip_tables.ko.gz", Some("ip_tables")),
        ("x-y.ko", Some("x-y")), (".ko", None), ("geneve.o", None), ("geneve.ko.bz2", None),
        ("modules.dep", None), ("", None),
    ];
    for (file, want) in table {
        assert_eq!(module_name_of_file(file), *want, "{file:?}");
    }
}

#[test]
fn builtin_and_dep_paths() {
    let builtin = "kernel/net/openvswitch/openvswitch.ko\nkernel/drivers/net/vxlan/vxlan.ko\n";
    let got = parse_module_paths(builtin);
    assert_eq!(got["openvswitch"], "kernel/net/openvswitch/openvswitch.ko");
    assert_eq!(got["vxlan"], "kernel/drivers/net/vxlan/vxlan.ko");

    let dep = "kernel/net/ipv4/geneve.ko.xz: kernel/net/ipv4/udp_tunnel.ko.xz\n\
               kernel/net/ipv4/netfilter/ip_tables.ko.zst: kernel/net/netfilter/x_tables.ko.zst\n\
               kernel/drivers/some-thing.ko.gz:\n\
               garbage line without colon\n\
               :\n";
    let got = parse_module_paths(dep);
    assert_eq!(got["geneve"], "kernel/net/ipv4/geneve.ko.xz");
    assert_eq!(
        got["ip_tables"],
        "kernel/net/ipv4/netfilter/ip_tables.ko.zst"
    );
    assert_eq!(got["some_thing"], "kernel/drivers/some-thing.ko.gz");
    assert!(
        !got.contains_key("udp_tunnel"),
        "dependencies are not entries: {got:?}"
    );
    assert_eq!(got.len(), 3);
}

#[test]
fn release_as_path_component() {
    for ok in ["6.1.0-13-amd64", "3.10.0-862.14.4.el7.x86_64"] {
        assert!(is_path_component(ok), "{ok}");
    }
    for bad in ["", ".", "..", "../etc", "a/b", "a\0b", "a\nb"] {
        assert!(!is_path_component(bad), "{bad:?}");
    }
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn state_precedence() {
    let facts = Facts {
        loaded: Some(set(&["openvswitch", "ip_tables"])),
        builtin: [("vxlan".to_string(), "kernel/vxlan.ko".to_string())].into(),
        sysfs: set(&["openvswitch", "bridge"]),
        files: [("geneve".to_string(), "kernel/geneve.ko.xz".to_string())].into(),
        release: Some("6.1.0".into()),
        problems: vec![],
    };
    assert_eq!(state("openvswitch", &facts), State::Loaded);
    assert_eq!(state("ip-tables", &facts), State::Loaded);
    assert!(matches!(state("vxlan", &facts), State::BuiltIn(e) if e.contains("modules.builtin")));
    assert!(
        matches!(state("bridge", &facts), State::BuiltIn(e) if e.contains("sys/module/bridge"))
    );
    assert_eq!(
        state("geneve", &facts),
        State::Loadable("kernel/geneve.ko.xz".into())
    );
    assert_eq!(state("stt", &facts), State::Absent);

    let no_support = Facts {
        loaded: None,
        ..facts
    };
    assert!(matches!(
        state("openvswitch", &no_support),
        State::BuiltIn(_)
    ));
    assert_eq!(state("ip_tables", &no_support), State::Absent);
    assert_eq!(
        state("geneve", &no_support),
        State::Unloadable("kernel/geneve.ko.xz".into())
    );
}

#[test]
fn gather_walks_for_files_missing_from_modules_dep() {
    let rel = "5.15.0-91-generic";
    let dir = host(&[
        ("proc/modules", "openvswitch 1 0 - Live 0x0\n"),
        (
            "lib/modules/5.15.0-91-generic/modules.dep",
            "kernel/net/ipv4/geneve.ko.zst:\n",
        ),
        (
            "lib/modules/5.15.0-91-generic/kernel/net/netfilter/ip_tables.ko.xz",
            "\x7fELF",
        ),
        (
            "lib/modules/5.15.0-91-generic/kernel/drivers/net/vxlan/vxlan.ko",
            "\x7fELF",
        ),
        ("sys/module/bridge/", ""),
    ]);
    let facts = gather(
        dir.path(),
        Some(rel),
        &["openvswitch", "geneve", "ip_tables", "bridge"],
    );
    assert_eq!(facts.loaded, Some(set(&["openvswitch"])));
    assert_eq!(facts.files["geneve"], "kernel/net/ipv4/geneve.ko.zst");
    assert_eq!(
        facts.files["ip_tables"],
        "kernel/net/netfilter/ip_tables.ko.xz"
    );
    assert!(
        !facts.files.contains_key("vxlan"),
        "only wanted names are walked for"
    );
    assert_eq!(facts.sysfs, set(&["bridge"]));
    assert!(facts.problems.is_empty(), "{:?}", facts.problems);

    // An unsafe release never becomes a path.
    let facts = gather(dir.path(), Some("../../etc"), &["geneve"]);
    assert_eq!(facts.release, None);
    assert!(facts.files.is_empty());
}

#[test]
fn stt_is_at_most_a_warning() {
    let facts = Facts {
        loaded: Some(set(&[])),
        release: Some("6.1.0".into()),
        ..Facts::default()
    };
    let needs = needs(TunnelType::Stt, DatapathType::System);
    let checks = evaluate(&needs, &facts, true, DatapathType::System);
    let stt = checks.iter().find(|c| c.name == "module/stt").unwrap();
    assert_eq!(stt.status, Status::Warn);
    assert!(stt
        .detail
        .contains("stt is not in the upstream kernel; OVS must provide it"));
    let ovs = checks
        .iter()
        .find(|c| c.name == "module/openvswitch")
        .unwrap();
    assert_eq!(ovs.status, Status::Fail);
}

#[test]
fn unreadable_file_is_a_warning() {
    // A directory where proc/modules should be: reading it fails with EISDIR, not ENOENT.
    let dir = host(&[("proc/modules/", "")]);
    let facts = gather(dir.path(), Some("6.1.0"), &["geneve"]);
    assert_eq!(
        facts.loaded,
        Some(set(&[])),
        "unreadable still proves module support"
    );
    let checks = evaluate(
        &needs(TunnelType::Geneve, DatapathType::Netdev),
        &facts,
        true,
        DatapathType::Netdev,
    );
    let w = checks.iter().find(|c| c.name == "modules/files").unwrap();
    assert_eq!(w.status, Status::Warn);
    assert!(w.detail.contains("proc/modules"), "{}", w.detail);
}

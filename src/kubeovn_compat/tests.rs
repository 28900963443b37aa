use super::*;

#[test]
fn os_release_values() {
    let text = "PRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"13\"\nID=debian\nID_LIKE='rhel fedora'\n";
    assert_eq!(os_release_value(text, "ID").as_deref(), Some("debian"));
    assert_eq!(os_release_value(text, "VERSION_ID").as_deref(), Some("13"));
    assert_eq!(
        os_release_value(text, "ID_LIKE").as_deref(),
        Some("rhel fedora")
    );
    assert_eq!(os_release_value(text, "VERSION"), None);
    assert_eq!(os_release_value("", "ID"), None);
}

#[test]
fn versions() {
    assert_eq!(
        ovs_version_of("ovsdb-server (Open vSwitch) 3.1.0\n").as_deref(),
        Some("3.1.0")
    );
    assert_eq!(
        ovs_version_of("ovs-vswitchd (Open vSwitch) 3.5.0\nDPDK 24.11.1\n").as_deref(),
        Some("3.5.0")
    );
    assert_eq!(ovs_version_of("something else 1.0"), None);
    assert_eq!(ovs_version_of(""), None);
}

#[test]
fn system_ids_prefer_the_conf_files_then_os_release() {
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc/openvswitch");
    std::fs::create_dir_all(&etc).unwrap();
    let os = dir.path().join("os-release");
    std::fs::write(&os, "ID=ubuntu\nVERSION_ID=\"24.04\"\n").unwrap();
    assert_eq!(
        system_ids(&etc, &os),
        ("ubuntu".to_string(), "24.04".to_string())
    );
    std::fs::write(etc.join("system-type.conf"), "KVM\n").unwrap();
    std::fs::write(etc.join("system-version.conf"), "4.18.el8_6\n").unwrap();
    assert_eq!(
        system_ids(&etc, &os),
        ("KVM".to_string(), "4.18.el8_6".to_string())
    );
    // A FIFO there is passed over at once (it used to block the settings stage's read).
    std::fs::remove_file(etc.join("system-type.conf")).unwrap();
    nix::unistd::mkfifo(&etc.join("system-type.conf"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    assert_eq!(
        system_ids(&etc, &os),
        ("ubuntu".to_string(), "24.04".to_string())
    );
    let none = dir.path().join("none");
    assert_eq!(
        system_ids(&none, &none),
        ("unknown".to_string(), "unknown".to_string())
    );
    let schema = dir.path().join("s.ovsschema");
    std::fs::write(
        &schema,
        r#"{"name":"Open_vSwitch","version":"8.3.1","tables":{}}"#,
    )
    .unwrap();
    let cols = identity_columns(Some("3.1.0".into()), &schema, &none, &os);
    assert_eq!(
        cols,
        [
            ("ovs_version".to_string(), "3.1.0".to_string()),
            ("db_version".into(), "8.3.1".into()),
            ("system_type".into(), "ubuntu".into()),
            ("system_version".into(), "24.04".into()),
        ]
    );
    assert_eq!(identity_columns(None, &none, &none, &os).len(), 2);
}

#[test]
fn restrict_files_changes_regular_files_only_and_never_follows_links() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    std::fs::write(&victim, "x").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    let d = dir.path();
    std::fs::write(d.join("conf.db"), "db").unwrap();
    std::fs::write(d.join("system-id.conf"), "id").unwrap();
    std::fs::set_permissions(d.join("conf.db"), std::fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::symlink(&victim, d.join("planted")).unwrap();
    std::fs::create_dir(d.join("sub")).unwrap();
    assert!(restrict_files(d).is_empty());
    let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&d.join("conf.db")), 0o600);
    assert_eq!(mode(&d.join("system-id.conf")), 0o600);
    assert_eq!(mode(&victim), 0o644, "followed a symlink");
    assert_eq!(mode(&d.join("sub")), 0o755);
    assert!(restrict_files(&d.join("missing")).is_empty());
}

#[test]
fn kube_ovn_bridges_in_a_select_result() {
    let rows = json!([
        {"_uuid": ["uuid", "u1"], "name": "br-int", "external_ids": ["map", []]},
        {"_uuid": ["uuid", "u2"], "name": "br-provider",
         "external_ids": ["map", [["vendor", "kube-ovn"]]]},
        {"_uuid": ["uuid", "u3"], "name": "eth1",
         "external_ids": ["map", [["exchange-link-name", "true"], ["vendor", "kube-ovn"]]]},
        {"_uuid": ["uuid", "u4"], "name": "br-other",
         "external_ids": ["map", [["vendor", "someone-else"]]]},
        {"name": "broken"},
    ]);
    assert_eq!(
        underlay_bridges(&rows),
        [
            UnderlayBridge {
                uuid: "u2".into(),
                name: "br-provider".into(),
                exchange_link_name: false
            },
            UnderlayBridge {
                uuid: "u3".into(),
                name: "eth1".into(),
                exchange_link_name: true
            },
        ]
    );
    assert!(underlay_bridges(&Value::Null).is_empty());
}

#[test]
fn nice_from_proc_stat() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("42");
    std::fs::create_dir_all(&p).unwrap();
    // comm with spaces and a ')' inside, as the kernel allows.
    std::fs::write(
        p.join("stat"),
        "42 (ovs vswitchd) x) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 10 -10 5 0 100 1000 200",
    )
    .unwrap();
    assert_eq!(nice_of(dir.path(), 42), Some(-10));
    assert_eq!(nice_of(dir.path(), 43), None);
    assert_eq!(
        nice_of(Path::new("/proc"), std::process::id() as i32).map(|n| n.abs() <= 20),
        Some(true)
    );
}

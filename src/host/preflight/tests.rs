//! Tests of [`super`]: `check` on fake hosts built in temp dirs, and `apply_fixes` with a fake
//! loader. Nothing here reads the machine's own files except the smoke test on "/".

use super::testhost::host;
use super::*;

use DatapathType::{Netdev, System};
use TunnelType::{Geneve, Stt, Vxlan};

fn run(root: &Path, tunnel: TunnelType, datapath: DatapathType, manage: bool) -> Report {
    check(&Input {
        host_root: root,
        tunnel,
        datapath,
        manage_modules: manage,
    })
}

fn find<'a>(r: &'a Report, name: &str) -> &'a Check {
    r.checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} in\n{}", r.render_table()))
}

const REL: &str = "lib/modules/5.15.0-91-generic";

fn with_release<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut files = vec![("proc/sys/kernel/osrelease", "5.15.0-91-generic\n")];
    files.extend_from_slice(extra);
    files
}

#[test]
fn host_like_this_machine_has_no_fail() {
    // No proc/modules, no lib/modules, some built-ins under sys/module, netdev.
    let dir = host(&[
        ("proc/sys/kernel/osrelease", "6.18.44-fc-v669\n"),
        ("proc/net/if_inet6", ""),
        ("sys/module/vxlan/", ""),
        ("sys/module/ipv6/", ""),
    ]);
    for tunnel in [Geneve, Vxlan, Stt] {
        let r = run(dir.path(), tunnel, Netdev, true);
        assert!(!r.failed(), "{}", r.render_table());
        assert!(
            r.modules_to_load().is_empty(),
            "no module support: never will-fix"
        );
        assert_eq!(find(&r, "kernel").detail, "6.18.44-fc-v669");
        assert_eq!(
            find(&r, "module/openvswitch").detail,
            "not needed (userspace datapath)"
        );
        assert_eq!(find(&r, "module/ip_tables").status, Status::Warn);
    }
    let r = run(dir.path(), Vxlan, Netdev, true);
    assert_eq!(find(&r, "module/vxlan").status, Status::Ok);
    assert_eq!(
        find(&r, "module/vxlan").detail,
        "built into the kernel (sys/module/vxlan exists)"
    );
    // The same host with the kernel datapath cannot run.
    let r = run(dir.path(), Geneve, System, true);
    assert_eq!(find(&r, "module/openvswitch").status, Status::Fail);
}

#[test]
fn kernel_3_10_0_862_fails_with_the_fix() {
    let dir = host(&[
        ("proc/sys/kernel/osrelease", "3.10.0-862.14.4.el7.x86_64\n"),
        ("proc/net/if_inet6", ""),
    ]);
    let r = run(dir.path(), Geneve, Netdev, true);
    assert!(r.failed());
    let c = find(&r, "kernel/conntrack-nat");
    assert_eq!(c.status, Status::Fail);
    assert_eq!(
        c.fix.as_deref(),
        Some("upgrade the kernel to 3.10.0-898 or later")
    );
    assert_eq!(find(&r, "kernel/geneve-ipv6").status, Status::Ok);
}

#[test]
fn geneve_on_3_10_needs_ipv6_vxlan_does_not() {
    let dir = host(&[("proc/sys/kernel/osrelease", "3.10.0-1160.el7.x86_64\n")]);
    let r = run(dir.path(), Geneve, Netdev, true);
    let c = find(&r, "kernel/geneve-ipv6");
    assert_eq!(c.status, Status::Fail);
    assert!(c.fix.as_deref().unwrap().contains("ipv6.disable=1"));
    assert_eq!(find(&r, "kernel/conntrack-nat").status, Status::Ok);

    let r = run(dir.path(), Vxlan, Netdev, true);
    assert!(!r.failed(), "{}", r.render_table());
    assert!(r.checks.iter().all(|c| c.name != "kernel/geneve-ipv6"));
}

#[test]
#[rustfmt::skip]
fn module_states_on_fake_hosts() {
    let proc_modules = ("proc/modules", "openvswitch 176128 0 - Live 0x0\nnf_conntrack 1 1 openvswitch, Live 0x0\n");
    let builtin = (concat!("lib/modules/5.15.0-91-generic", "/modules.builtin"),
                   "kernel/net/ipv4/netfilter/ip_tables.ko\n");
    let dep = (concat!("lib/modules/5.15.0-91-generic", "/modules.dep"),
               "kernel/net/ipv4/udp_tunnel.ko.xz:\n");
    let geneve_file = (concat!("lib/modules/5.15.0-91-generic", "/kernel/drivers/net/geneve.ko.xz"), "");
    let files = with_release(&[proc_modules, builtin, dep, geneve_file, ("sys/module/vxlan/", "")]);
    let dir = host(&files);
    assert!(dir.path().join(REL).is_dir());

    // loaded / built in via modules.builtin / loadable .ko.xz with manage → will-fix
    let r = run(dir.path(), Geneve, System, true);
    assert_eq!(find(&r, "module/openvswitch").detail, "loaded");
    assert_eq!(find(&r, "module/ip_tables").status, Status::Ok);
    assert!(find(&r, "module/ip_tables").detail.contains("modules.builtin"));
    let g = find(&r, "module/geneve");
    assert_eq!(g.status, Status::WillFix, "{g:?}");
    assert!(g.detail.contains("kernel/drivers/net/geneve.ko.xz"), "{g:?}");
    assert_eq!(r.modules_to_load(), ["geneve"]);
    assert!(!r.failed());

    // built in via sys/module while proc/modules does not list it
    let r = run(dir.path(), Vxlan, System, true);
    assert_eq!(find(&r, "module/vxlan").status, Status::Ok);
    assert!(find(&r, "module/vxlan").detail.contains("sys/module/vxlan"));

    // loadable without manage + system → a warning that the kernel loads geneve on demand
    // (Kube-OVN's pod cannot load it; the kernel does when vswitchd adds the tunnel port);
    // the fix still names the switch
    let r = run(dir.path(), Geneve, System, false);
    let g = find(&r, "module/geneve");
    assert_eq!(g.status, Status::Warn, "{g:?}");
    assert!(g.detail.contains("loads it on demand when ovs-vswitchd creates the first geneve tunnel port"), "{g:?}");
    let fix = g.fix.as_deref().unwrap();
    assert!(fix.contains("modprobe geneve") && fix.contains("DISABLE_MODULES_MANAGEMENT=true"), "{fix}");
    assert!(r.modules_to_load().is_empty());
    assert!(!r.failed());
    // ... but openvswitch itself, loadable and not loaded, is a fail with the kernel datapath
    let no_ovs = host(&with_release(&[("proc/modules", ""), dep,
        (concat!("lib/modules/5.15.0-91-generic", "/kernel/net/openvswitch/openvswitch.ko"), "")]));
    let o = find(&run(no_ovs.path(), Geneve, System, false), "module/openvswitch").clone();
    assert_eq!(o.status, Status::Fail, "{o:?}");
    assert!(o.detail.contains("needs it before ovs-vswitchd starts"), "{o:?}");
    // ... and with netdev only a warning
    assert_eq!(find(&run(dir.path(), Geneve, Netdev, false), "module/geneve").status, Status::Warn);

    // absent + netdev → warn; absent + system → fail
    let absent = host(&with_release(&[proc_modules]));
    let r = run(absent.path(), Geneve, Netdev, true);
    assert_eq!(find(&r, "module/geneve").status, Status::Warn);
    assert!(!r.failed());
    let r = run(absent.path(), Geneve, System, true);
    let g = find(&r, "module/geneve");
    assert_eq!(g.status, Status::Fail);
    assert!(g.detail.contains("not found under lib/modules/5.15.0-91-generic"), "{g:?}");
}

#[test]
fn no_proc_modules_means_only_builtin_counts() {
    let files = with_release(&[
        (
            concat!("lib/modules/5.15.0-91-generic", "/modules.dep"),
            "kernel/net/openvswitch/openvswitch.ko:\n",
        ),
        (
            concat!("lib/modules/5.15.0-91-generic", "/modules.builtin"),
            "kernel/net/ipv4/geneve.ko\n",
        ),
    ]);
    let dir = host(&files);
    let r = run(dir.path(), Geneve, System, true);
    assert!(r.modules_to_load().is_empty(), "{}", r.render_table());
    let ovs = find(&r, "module/openvswitch");
    assert_eq!(ovs.status, Status::Fail);
    assert!(ovs.detail.contains("cannot load modules"), "{ovs:?}");
    assert_eq!(
        ovs.fix.as_deref(),
        Some("use a kernel built with CONFIG_OPENVSWITCH=y")
    );
    assert_eq!(find(&r, "module/geneve").status, Status::Ok);
}

#[test]
fn dash_and_underscore_are_the_same_module() {
    let dir = host(&with_release(&[
        ("proc/modules", "ip-tables 1 0 - Live 0x0\n"),
        (
            concat!("lib/modules/5.15.0-91-generic", "/modules.dep"),
            "kernel/net/open-vswitch.ko.zst:\n",
        ),
        ("sys/module/gen-eve/", ""),
    ]));
    let r = run(dir.path(), Geneve, System, true);
    assert_eq!(find(&r, "module/ip_tables").detail, "loaded");
    assert_eq!(
        find(&r, "module/openvswitch").status,
        Status::Fail,
        "open-vswitch is not openvswitch"
    );
    let dir = host(&with_release(&[
        ("proc/modules", ""),
        (
            concat!("lib/modules/5.15.0-91-generic", "/kernel/ip-tables.ko.gz"),
            "",
        ),
    ]));
    let r = run(dir.path(), Vxlan, Netdev, true);
    assert_eq!(find(&r, "module/ip_tables").status, Status::WillFix);
    assert_eq!(r.modules_to_load(), ["ip_tables"]);
}

/// Records what it was asked to load; fails for the names in `fail`.
struct FakeLoader {
    fail: Vec<&'static str>,
    calls: Vec<String>,
}

impl ModuleLoader for FakeLoader {
    fn load(&mut self, module: &str) -> Result<(), ModprobeError> {
        self.calls.push(module.to_string());
        if self.fail.contains(&module) {
            Err(ModprobeError::Failed {
                module: module.to_string(),
                status: std::os::unix::process::ExitStatusExt::from_raw(1 << 8),
                stderr: format!("FATAL: Module {module} not found"),
            })
        } else {
            Ok(())
        }
    }
}

fn loadable_host() -> tempfile::TempDir {
    host(&with_release(&[
        ("proc/modules", ""),
        (
            concat!("lib/modules/5.15.0-91-generic", "/modules.dep"),
            "kernel/net/openvswitch/openvswitch.ko.zst:\nkernel/net/ipv4/geneve.ko.xz:\n\
          kernel/net/ipv4/netfilter/ip_tables.ko:\n",
        ),
    ]))
}

#[test]
fn apply_fixes_success_and_failure() {
    let dir = loadable_host();
    let mut report = run(dir.path(), Geneve, System, true);
    assert_eq!(
        report.modules_to_load(),
        ["openvswitch", "geneve", "ip_tables"]
    );
    let mut loader = FakeLoader {
        fail: vec!["geneve"],
        calls: vec![],
    };
    apply_fixes(&mut report, &mut loader, System);
    assert_eq!(loader.calls, ["openvswitch", "geneve", "ip_tables"]);
    let ovs = find(&report, "module/openvswitch");
    assert_eq!(
        (ovs.status, ovs.detail.as_str(), &ovs.fix),
        (Status::Ok, "loaded by modprobe", &None)
    );
    // geneve failing to load (EPERM without CAP_SYS_MODULE, say) is a warning: the kernel
    // loads it when vswitchd creates the tunnel port.
    let g = find(&report, "module/geneve");
    assert_eq!(g.status, Status::Warn);
    assert!(g.detail.contains("FATAL: Module geneve not found"), "{g:?}");
    assert!(g.detail.contains("the kernel loads it on demand"), "{g:?}");
    assert!(!report.failed());
    assert!(report.modules_to_load().is_empty());

    // openvswitch failing to load is fatal with the kernel datapath.
    let mut report = run(dir.path(), Geneve, System, true);
    let mut loader = FakeLoader {
        fail: vec!["openvswitch"],
        calls: vec![],
    };
    apply_fixes(&mut report, &mut loader, System);
    let o = find(&report, "module/openvswitch");
    assert_eq!(o.status, Status::Fail, "{o:?}");
    assert!(
        o.fix.as_deref().unwrap().contains("CAP_SYS_MODULE"),
        "{o:?}"
    );
    assert!(report.failed());

    // netdev: a failed load is a warning, and openvswitch is not even attempted.
    let mut report = run(dir.path(), Geneve, Netdev, true);
    let mut loader = FakeLoader {
        fail: vec!["geneve"],
        calls: vec![],
    };
    apply_fixes(&mut report, &mut loader, Netdev);
    assert_eq!(loader.calls, ["geneve", "ip_tables"]);
    assert_eq!(find(&report, "module/geneve").status, Status::Warn);
    assert!(!report.failed());
}

#[test]
fn a_modprobe_that_succeeds_without_loading_is_a_failure() {
    // Kube-OVN's chart links modprobe to /bin/true when module management is off.
    let dir = tempfile::tempdir().unwrap();
    let modules = dir.path().join("modules");
    std::fs::write(&modules, "openvswitch 1 0 - Live 0x0\n").unwrap();
    let mut m = Modprobe {
        program: "/bin/true".into(),
        proc_modules: Some(modules),
        ..Default::default()
    };
    assert!(m.load("openvswitch").is_ok());
    let e = m.load("geneve").unwrap_err().to_string();
    assert!(
        e.contains("modprobe geneve exited 0 but geneve is not in"),
        "{e}"
    );
    assert!(e.contains("stub"), "{e}");
}

#[test]
fn modprobe_rejects_names_that_are_not_module_names() {
    for bad in ["", "-v", "../x", "a b", "a/b"] {
        let err = Modprobe::default().load(bad).unwrap_err().to_string();
        assert!(err.contains("is not a module name"), "{bad:?}: {err}");
    }
}

#[test]
fn a_hung_modprobe_is_killed_at_its_deadline_naming_module_and_deadline() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("modprobe");
    std::fs::write(&program, "#!/bin/sh\nexec sleep 60\n").unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let deadline = std::time::Duration::from_millis(200);
    let m = Modprobe {
        program,
        deadline,
        ..Default::default()
    };
    // Another test's fork may hold the script's write descriptor a moment longer (ETXTBSY).
    let busy = |e: &ModprobeError| matches!(e, ModprobeError::Run { source: BoundedError::Spawn { source, .. }, .. } if source.raw_os_error() == Some(nix::libc::ETXTBSY));
    let mut err = m.run("geneve").unwrap_err();
    for _ in 0..50 {
        if !busy(&err) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        err = m.run("geneve").unwrap_err();
    }
    let ModprobeError::Run {
        module,
        source: BoundedError::Deadline { deadline: d, .. },
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!((module.as_str(), *d), ("geneve", deadline));
    let text = err.to_string();
    assert!(text.starts_with("modprobe geneve: "), "{text}");
    assert!(text.contains("did not finish within 200ms"), "{text}");
}

#[test]
fn garbage_osrelease_does_not_panic() {
    for garbage in [
        "",
        "\0\0\0",
        "\u{7f}ELF\u{1}",
        "Linux version 3.10.0-862 (gcc 3.10)",
        "../../etc",
    ] {
        let dir = host(&[("proc/sys/kernel/osrelease", garbage), ("proc/modules", "")]);
        for tunnel in [Geneve, Vxlan, Stt] {
            let r = run(dir.path(), tunnel, System, true);
            let k = find(&r, "kernel");
            assert_eq!(k.status, Status::Warn, "{garbage:?}");
            assert!(k.detail.contains("osrelease"), "{}", k.detail);
            assert!(r.checks.iter().all(|c| !c.name.starts_with("kernel/")));
        }
    }
    // Bytes that are not UTF-8 make the read itself fail; still a warning.
    let dir = host(&[]);
    std::fs::create_dir_all(dir.path().join("proc/sys/kernel")).unwrap();
    std::fs::write(dir.path().join("proc/sys/kernel/osrelease"), b"\xff\xfe6.1").unwrap();
    let r = run(dir.path(), Geneve, Netdev, true);
    assert_eq!(find(&r, "kernel").status, Status::Warn);
}

#[test]
fn this_machine_smoke() {
    // Only read; the outcome depends on the machine, the absence of panics does not.
    let r = run(Path::new("/"), Geneve, Netdev, true);
    assert!(r.checks.iter().any(|c| c.name == "kernel"));
    assert!(!r.render_table().is_empty());
}

//! TLS reload: with ENABLE_SSL, a Kubernetes-style secret update (the `..data` symlink swap)
//! restarts ovn-controller gracefully with the new files, once, and the node is ready again.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::*;

const READY: Duration = Duration::from_secs(30);

/// A self-signed key/cert pair and CA cert in `dir`, made by openssl.
fn make_certs(dir: &Path, cn: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let ok = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
        ])
        .arg(format!("/CN={cn}"))
        .arg("-keyout")
        .arg(dir.join("key"))
        .arg("-out")
        .arg(dir.join("cert"))
        .output()
        .unwrap()
        .status
        .success();
    assert!(ok, "openssl failed");
    std::fs::copy(dir.join("cert"), dir.join("cacert")).unwrap();
}

/// Points `tls/..data` at `tls/name` the way kubelet does: a temp link renamed over it.
fn publish(tls: &Path, name: &str) {
    let tmp = tls.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(name, &tmp).unwrap();
    std::fs::rename(&tmp, tls.join("..data")).unwrap();
}

#[test]
fn a_rotated_certificate_restarts_ovn_controller_gracefully() {
    let mut node = Node::new();
    let tls = node.path().join("tls");
    make_certs(&tls.join("..2026_11_22_one"), "one");
    publish(&tls, "..2026_11_22_one");
    for f in ["key", "cert", "cacert"] {
        std::os::unix::fs::symlink(format!("..data/{f}"), tls.join(f)).unwrap();
    }
    node.start(&[
        ("ENABLE_SSL", "true"),
        ("OVS_OVN_SUPERVISOR_TLS_DIR", tls.to_str().unwrap()),
    ]);
    node.wait_ready(READY);
    let pid = |n: &Node| {
        n.daemon_pids()
            .into_iter()
            .find(|(f, _)| f == "ovn-controller.pid")
            .map(|(_, p)| p)
    };
    let old = pid(&node).unwrap();
    let cmdline = std::fs::read_to_string(format!("/proc/{old}/cmdline")).unwrap();
    assert!(
        cmdline.contains(&format!("--certificate={}", tls.join("cert").display())),
        "{cmdline:?}"
    );

    make_certs(&tls.join("..2026_11_22_two"), "two");
    publish(&tls, "..2026_11_22_two");
    std::fs::remove_dir_all(tls.join("..2026_11_22_one")).unwrap();
    let t0 = Instant::now();
    loop {
        if pid(&node).is_some_and(|p| p != old && exists(p)) && node.probe("readiness").0 == 0 {
            break;
        }
        assert!(
            t0.elapsed() < READY,
            "ovn-controller not restarted:\n{}",
            node.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "TLS rotation: ovn-controller restarted and ready {} ms after the swap",
        t0.elapsed().as_millis()
    );
    let log = node.log();
    assert_eq!(log.matches("TLS files changed").count(), 1, "{log}");
    assert!(log.contains("stopped for a planned restart"), "{log}");
    // Graceful, and not counted as a crash.
    let oc = node.daemon_status("ovn-controller");
    assert_eq!(oc["restarts"], 0, "{oc}");
    assert_eq!(oc["last_exit"], "exit code 0", "{oc}");
    assert!(node.stop().0.success());
}

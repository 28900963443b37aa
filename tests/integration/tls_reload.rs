//! TLS reload: with ENABLE_SSL, a Kubernetes-style secret update (the `..data` symlink swap)
//! restarts ovn-controller gracefully with the new files, once, and the node is ready again;
//! a TLS volume that appears after the start, or a FIFO once at a TLS file, does not end the
//! watch.

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

fn controller_pid(n: &Node) -> Option<i32> {
    n.daemon_pids()
        .into_iter()
        .find(|(f, _)| f == "ovn-controller.pid")
        .map(|(_, p)| p)
}

/// Waits until an ovn-controller other than `old` runs and the node is ready; its pid.
fn wait_reloaded(node: &Node, old: i32, what: &str) -> i32 {
    let t0 = Instant::now();
    loop {
        if let Some(p) = controller_pid(node).filter(|p| *p != old && exists(*p)) {
            if node.probe("readiness").0 == 0 {
                return p;
            }
        }
        assert!(
            t0.elapsed() < READY,
            "{what}: ovn-controller not restarted:\n{}",
            node.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A graceful restart, not counted as a crash.
fn assert_graceful(node: &Node) {
    let oc = node.daemon_status("ovn-controller");
    assert_eq!(oc["restarts"], 0, "{oc}");
    assert_eq!(oc["last_exit"], "exit code 0", "{oc}");
}

/// The TLS volume mounted after the start: its arrival restarts ovn-controller with the files,
/// and a FIFO put once at `cert` (not a rotation) neither restarts it nor ends the watch: the
/// next real rotation restarts it again. Before the fix the watch was never set up (the
/// directory did not exist), or ended at the FIFO, and nothing was restarted.
#[test]
fn a_late_tls_dir_and_a_fifo_at_cert_do_not_end_the_watch() {
    let mut node = Node::new();
    let tls = node.path().join("tls");
    node.start(&[
        ("ENABLE_SSL", "true"),
        ("OVS_OVN_SUPERVISOR_TLS_DIR", tls.to_str().unwrap()),
    ]);
    node.wait_ready(READY);
    let first = controller_pid(&node).unwrap();

    std::fs::create_dir(&tls).unwrap();
    make_certs(&tls.join("..2026_11_22_one"), "one");
    publish(&tls, "..2026_11_22_one");
    for f in ["key", "cert", "cacert"] {
        std::os::unix::fs::symlink(format!("..data/{f}"), tls.join(f)).unwrap();
    }
    let second = wait_reloaded(&node, first, "the TLS dir appeared");

    // A FIFO where the certificate was, then the certificate back: no rotation.
    let cert = tls.join("cert");
    std::fs::remove_file(&cert).unwrap();
    nix::unistd::mkfifo(&cert, nix::sys::stat::Mode::S_IRUSR).unwrap();
    // The watch compares once events have been quiet for 500 ms: wait past it, on the log
    // line that says the FIFO was looked at and not taken for a rotation.
    let t0 = Instant::now();
    while !node.log().contains("not a certificate rotation") {
        assert!(
            t0.elapsed() < READY,
            "FIFO never looked at:\n{}",
            node.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::remove_file(&cert).unwrap();
    std::os::unix::fs::symlink("..data/cert", &cert).unwrap();
    assert_eq!(controller_pid(&node), Some(second), "restarted for a FIFO");

    make_certs(&tls.join("..2026_11_22_two"), "two");
    publish(&tls, "..2026_11_22_two");
    wait_reloaded(&node, second, "a rotation after the FIFO");
    assert_graceful(&node);
    assert!(node.stop().0.success());
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

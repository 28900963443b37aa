//! HTTPS on the HTTP endpoint of a real node, from a certificate and key laid out as Kubernetes
//! mounts a TLS secret (`tls.crt -> ..data/tls.crt`, `..data -> ..TIMESTAMP`), checked with
//! curl against the CA that signed it: the verdicts are served over HTTPS only; a secret
//! update (the `..data` link swapped to a certificate of another CA) is put in use without a
//! restart and counted; a bad update (a certificate that is not PEM) keeps the old pair served
//! and is counted as a failure; the exec probes never notice any of it. A pair that is wrong
//! at start is a configuration error: exit 2 naming the variable or file, nothing created.

use std::net::SocketAddr;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::harness::*;
use crate::http_metrics::{http_addr, samples, value};

const READY: Duration = Duration::from_secs(30);
/// The files are compared every 2 s; a change is served well within this.
const ROTATION: Duration = Duration::from_secs(15);

/// A CA and a server certificate it signed for 127.0.0.1: `(ca.pem, tls.crt, tls.key)`.
fn issue(ca_name: &str) -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, ca_name);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut leaf = rcgen::CertificateParams::new(vec!["node-7.cluster.test".to_string()]).unwrap();
    leaf.subject_alt_names
        .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let cert = leaf.signed_by(&key, &ca_cert, &ca_key).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

/// A secret volume at `dir` whose `..data` is (now) `..gen`, holding `crt` and `key`: the
/// layout and the atomic swap the kubelet makes on an update.
/// `key: None` leaves `tls.key` dangling (an update that lost a key).
fn publish(dir: &Path, gen: &str, crt: &str, key: Option<&str>) {
    let data = dir.join(format!("..{gen}"));
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("tls.crt"), crt).unwrap();
    if let Some(key) = key {
        std::fs::write(data.join("tls.key"), key).unwrap();
    }
    let tmp = dir.join("..data_tmp");
    symlink(format!("..{gen}"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for f in ["tls.crt", "tls.key"] {
        if std::fs::symlink_metadata(dir.join(f)).is_err() {
            symlink(format!("..data/{f}"), dir.join(f)).unwrap();
        }
    }
}

/// `curl --cacert CA https://ADDR/PATH`: curl's exit code, the HTTP code and the body.
fn curl(ca: &Path, addr: SocketAddr, path: &str) -> (i32, String) {
    let out = Command::new("curl")
        .args(["--silent", "--max-time", "5", "--cacert"])
        .arg(ca)
        .arg(format!("https://{addr}{path}"))
        .output()
        .expect("curl runs (scripts/install-deps.sh installs it)");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn scrape(ca: &Path, addr: SocketAddr) -> std::collections::BTreeMap<String, f64> {
    let (rc, body) = curl(ca, addr, "/metrics");
    assert_eq!(rc, 0, "/metrics over HTTPS: {body}");
    samples(&body)
}

/// What a plain-HTTP request reads back from the endpoint (nothing HTTP when it is HTTPS).
fn plain_get(addr: SocketAddr) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(b"GET /readyz HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    String::from_utf8_lossy(&raw).into_owned()
}

#[test]
fn https_from_a_secret_volume_follows_its_updates_and_survives_a_bad_one() {
    let secrets = tempfile::tempdir().unwrap();
    let tls = secrets.path().join("tls");
    std::fs::create_dir(&tls).unwrap();
    let (ca1, crt1, key1) = issue("cluster CA one");
    let (ca2, crt2, key2) = issue("cluster CA two");
    let ca1_pem: PathBuf = secrets.path().join("ca1.pem");
    let ca2_pem: PathBuf = secrets.path().join("ca2.pem");
    std::fs::write(&ca1_pem, ca1).unwrap();
    std::fs::write(&ca2_pem, ca2).unwrap();
    publish(&tls, "2026_12_04_01", &crt1, Some(&key1));

    let mut node = Node::new();
    let (cert, key) = (tls.join("tls.crt"), tls.join("tls.key"));
    node.start(&[
        ("OVS_OVN_SUPERVISOR_SANDBOX_NET", "dummy"),
        ("OVS_OVN_SUPERVISOR_HTTP_ADDR", "127.0.0.1:0"),
        ("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "200"),
        ("OVS_OVN_SUPERVISOR_HTTP_TLS_CERT", cert.to_str().unwrap()),
        ("OVS_OVN_SUPERVISOR_HTTP_TLS_KEY", key.to_str().unwrap()),
    ]);
    node.wait_ready(READY);
    let addr = http_addr(&node);

    let (rc, body) = curl(&ca1_pem, addr, "/readyz");
    assert_eq!(
        rc,
        0,
        "HTTPS /readyz with the first CA: {body}\n{}",
        node.log()
    );
    assert!(body.starts_with("ready"), "{body}");
    let (rc, _) = curl(&ca2_pem, addr, "/readyz");
    assert_eq!(rc, 60, "a certificate of another CA must not verify");
    let plain = plain_get(addr);
    assert!(!plain.starts_with("HTTP/"), "plain HTTP answered: {plain}");
    let m = scrape(&ca1_pem, addr);
    assert_eq!(value(&m, "http_tls_reloads_total"), 0.0);
    assert_eq!(value(&m, "http_tls_reload_failures_total"), 0.0);

    // A secret update: the new pair is served without a restart, the old CA no longer verifies.
    publish(&tls, "2026_12_04_02", &crt2, Some(&key2));
    wait_for("the second certificate to be served", ROTATION, || {
        curl(&ca2_pem, addr, "/livez").0 == 0
    });
    assert_eq!(curl(&ca1_pem, addr, "/livez").0, 60);
    let m = scrape(&ca2_pem, addr);
    assert_eq!(value(&m, "http_tls_reloads_total"), 1.0);
    assert_eq!(value(&m, "http_tls_reload_failures_total"), 0.0);

    // A bad update: refused once, counted once, and the pair in use is still served.
    publish(&tls, "2026_12_04_03", "not a certificate\n", Some(&key2));
    wait_for("the bad update to be counted", ROTATION, || {
        value(&scrape(&ca2_pem, addr), "http_tls_reload_failures_total") >= 1.0
    });
    // Two more comparison rounds: still one failure, not one per round.
    std::thread::sleep(Duration::from_secs(5));
    let m = scrape(&ca2_pem, addr);
    assert_eq!(value(&m, "http_tls_reload_failures_total"), 1.0);
    assert_eq!(value(&m, "http_tls_reloads_total"), 1.0);
    let (rc, body) = curl(&ca2_pem, addr, "/readyz");
    assert_eq!((rc, body.starts_with("ready")), (0, true), "{body}");

    // An update that lost its key (unreadable, not unparsable): one more failure, however long
    // it lasts; then a good update is served again.
    publish(&tls, "2026_12_04_04", &crt1, None);
    wait_for("the keyless update to be counted", ROTATION, || {
        value(&scrape(&ca2_pem, addr), "http_tls_reload_failures_total") >= 2.0
    });
    std::thread::sleep(Duration::from_secs(5));
    let m = scrape(&ca2_pem, addr);
    assert_eq!(value(&m, "http_tls_reload_failures_total"), 2.0);
    publish(&tls, "2026_12_04_05", &crt1, Some(&key1));
    wait_for("the first certificate to be served again", ROTATION, || {
        curl(&ca1_pem, addr, "/livez").0 == 0
    });
    let m = scrape(&ca1_pem, addr);
    assert_eq!(value(&m, "http_tls_reloads_total"), 2.0);
    assert_eq!(value(&m, "http_tls_reload_failures_total"), 2.0);
    assert_eq!(node.probe("readiness").0, 0, "exec readiness");
    assert_eq!(node.probe("liveness").0, 0, "exec liveness");
    let pid = node.child.as_ref().unwrap().id() as i32;
    assert!(exists(pid), "the supervisor is still running");
}

/// Variables and their values.
type Env = Vec<(&'static str, String)>;

/// A TLS setting wrong at start: exit 2, the message naming what is wrong, nothing created.
#[test]
fn a_bad_tls_setting_exits_2_naming_it_and_creates_nothing() {
    let secrets = tempfile::tempdir().unwrap();
    let (_, crt, key) = issue("cluster CA one");
    let (_, _, other_key) = issue("cluster CA two");
    let dir = secrets.path();
    std::fs::write(dir.join("tls.crt"), &crt).unwrap();
    std::fs::write(dir.join("tls.key"), &key).unwrap();
    std::fs::write(dir.join("other.key"), &other_key).unwrap();
    std::fs::write(dir.join("garbage.crt"), "-----BEGIN CERTIFICATE-----\nxx\n").unwrap();
    let p = |f: &str| dir.join(f).to_str().unwrap().to_string();
    let cases: Vec<(Env, Vec<String>)> = vec![
        (
            vec![("OVS_OVN_SUPERVISOR_HTTP_TLS_CERT", p("tls.crt"))],
            vec![
                "OVS_OVN_SUPERVISOR_HTTP_TLS_CERT".into(),
                "OVS_OVN_SUPERVISOR_HTTP_TLS_KEY".into(),
            ],
        ),
        (
            vec![
                ("OVS_OVN_SUPERVISOR_HTTP_TLS_CERT", p("tls.crt")),
                ("OVS_OVN_SUPERVISOR_HTTP_TLS_KEY", p("other.key")),
            ],
            vec![
                p("tls.crt"),
                p("other.key"),
                "private key of that certificate".into(),
            ],
        ),
        (
            vec![
                ("OVS_OVN_SUPERVISOR_HTTP_TLS_CERT", p("garbage.crt")),
                ("OVS_OVN_SUPERVISOR_HTTP_TLS_KEY", p("tls.key")),
            ],
            vec![p("garbage.crt"), "PEM certificate".into()],
        ),
        (
            vec![
                ("OVS_OVN_SUPERVISOR_HTTP_TLS_CERT", p("missing.crt")),
                ("OVS_OVN_SUPERVISOR_HTTP_TLS_KEY", p("tls.key")),
            ],
            vec![p("missing.crt")],
        ),
    ];
    for (env, expected) in cases {
        let parent = tempfile::tempdir().unwrap();
        let sandbox = parent.path().join("sandbox");
        let out = base_command(&sandbox)
            .env("OVS_OVN_SUPERVISOR_HTTP_ADDR", "127.0.0.1:0")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{env:?}: {stderr}");
        for e in &expected {
            assert!(stderr.contains(e.as_str()), "{env:?}: no {e:?} in {stderr}");
        }
        assert!(!sandbox.exists(), "{env:?} created {}", sandbox.display());
    }
}

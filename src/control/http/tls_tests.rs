//! The pair check on PEM bytes that rcgen makes, and the file rules on a temp dir.

use super::*;

fn pair(name: &str) -> (Vec<u8>, Vec<u8>) {
    let c = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
    (
        c.cert.pem().into_bytes(),
        c.key_pair.serialize_pem().into_bytes(),
    )
}

fn files() -> TlsFiles {
    TlsFiles {
        cert: "/srv/tls/tls.crt".into(),
        key: "/srv/tls/tls.key".into(),
    }
}

#[test]
fn a_matching_pair_is_served_over_http_1_1() {
    let (cert, key) = pair("node-7.example");
    let cfg = build(&files(), &Pem { cert, key }).unwrap();
    assert_eq!(cfg.alpn_protocols, vec![b"http/1.1".to_vec()]);
}

#[test]
fn a_key_of_another_certificate_is_refused_naming_both_files() {
    let (cert, _) = pair("node-7.example");
    let (_, key) = pair("node-8.example");
    let e = build(&files(), &Pem { cert, key }).unwrap_err();
    assert!(matches!(e, TlsError::Pair { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("tls.crt") && msg.contains("tls.key"), "{msg}");
}

#[test]
fn garbage_or_swapped_files_are_refused_naming_the_file() {
    let (cert, key) = pair("node-7.example");
    let e = build(
        &files(),
        &Pem {
            cert: b"not pem".to_vec(),
            key: key.clone(),
        },
    )
    .unwrap_err();
    assert!(matches!(e, TlsError::Certificate { .. }), "{e}");
    assert!(e.to_string().contains("tls.crt"), "{e}");
    let e = build(
        &files(),
        &Pem {
            cert: key,
            key: cert,
        },
    )
    .unwrap_err();
    assert!(
        matches!(e, TlsError::Certificate { .. } | TlsError::Key { .. }),
        "{e}"
    );
}

#[test]
fn a_fifo_or_an_oversized_file_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = pair("node-7.example");
    let f = TlsFiles {
        cert: dir.path().join("tls.crt"),
        key: dir.path().join("tls.key"),
    };
    std::fs::write(&f.cert, &cert).unwrap();
    nix::unistd::mkfifo(&f.key, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    assert!(matches!(load(&f), Err(TlsError::File(_))));
    std::fs::remove_file(&f.key).unwrap();
    let mut big = key.clone();
    big.resize(usize::try_from(MAX_PEM).unwrap() + 1, b'\n');
    std::fs::write(&f.key, &big).unwrap();
    assert!(matches!(load(&f), Err(TlsError::File(_))));
    std::fs::write(&f.key, &key).unwrap();
    load(&f).unwrap();
}

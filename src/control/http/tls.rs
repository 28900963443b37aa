//! HTTPS for the HTTP endpoint from a certificate chain and key in files
//! (`OVS_OVN_SUPERVISOR_HTTP_TLS_CERT`, `_KEY`), as Kubernetes mounts a TLS secret, re-read
//! when they change (a secret update swaps the volume's `..data` link; nothing signals it).
//!
//! Invariants:
//! - The files are read through [`crate::nodefile`] with links followed (a secret volume is made
//!   of links into `..data`), refused unless they are regular files (a FIFO never blocks us),
//!   and at most [`MAX_PEM`] bytes each.
//! - A pair is served only when both parse and the key belongs to the certificate; a changed
//!   pair that does not is refused with a warning naming the files and counted, and the pair in
//!   use stays in use: a bad rotation never takes HTTPS probes down.
//! - The watch is its own task, reading two small files every [`RELOAD_EVERY`]; it never runs
//!   on the supervision loop. New handshakes take the newest pair; open ones keep theirs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use tokio::sync::watch;

use crate::config::http::TlsFiles;
use crate::control::counters;
use crate::nodefile::{self, Links, NodeFileError};

/// A certificate chain or key is a few KiB; a bigger file is not one.
pub const MAX_PEM: u64 = 64 * 1024;
/// How often the files are compared with the pair in use.
pub const RELOAD_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("HTTP TLS file {0}")]
    File(#[from] NodeFileError),
    #[error("{}: {reason}; expected a PEM certificate chain (-----BEGIN CERTIFICATE-----)", path.display())]
    Certificate { path: PathBuf, reason: String },
    #[error("{}: {reason}; expected a PEM private key (PKCS#8, PKCS#1 or SEC1)", path.display())]
    Key { path: PathBuf, reason: String },
    #[error("{} with {}: {reason}; expected the private key of that certificate", cert.display(), key.display())]
    Pair {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

/// What the two files hold, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pem {
    cert: Vec<u8>,
    key: Vec<u8>,
}

fn read(files: &TlsFiles) -> Result<Pem, TlsError> {
    Ok(Pem {
        cert: nodefile::read(&files.cert, MAX_PEM, Links::Follow)?,
        key: nodefile::read(&files.key, MAX_PEM, Links::Follow)?,
    })
}

/// The server configuration of a pair of PEM files' contents (pure: bytes in, config out).
fn build(files: &TlsFiles, pem: &Pem) -> Result<Arc<ServerConfig>, TlsError> {
    let cert_err = |reason: String| TlsError::Certificate {
        path: files.cert.clone(),
        reason,
    };
    let chain = CertificateDer::pem_slice_iter(&pem.cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_err(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_err("no certificate in it".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(&pem.key).map_err(|e| TlsError::Key {
        path: files.key.clone(),
        reason: e.to_string(),
    })?;
    let pair = |reason: String| TlsError::Pair {
        cert: files.cert.clone(),
        key: files.key.clone(),
        reason,
    };
    // with_single_cert refuses a key that does not sign for the certificate's public key
    // (rustls 0.23.46 as required; a_bad_tls_setting_exits_2_naming_it_and_creates_nothing holds it).
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| pair(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| pair(e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Reads and checks the pair, as at start: an error names the file and what was expected.
pub fn load(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    build(files, &read(files)?)
}

/// Serves the pair from `files` (already [`load`]ed as `first`) and keeps it current: a task
/// compares the files with the pair in use every [`RELOAD_EVERY`] until the receiver is gone.
pub fn watch(files: TlsFiles, first: Arc<ServerConfig>) -> watch::Receiver<Arc<ServerConfig>> {
    let (tx, rx) = watch::channel(first);
    tokio::spawn(async move {
        let mut seen = read(&files).ok();
        let mut failing = false;
        loop {
            tokio::time::sleep(RELOAD_EVERY).await;
            if tx.is_closed() {
                return;
            }
            let outcome = read(&files).and_then(|pem| {
                if seen.as_ref() == Some(&pem) {
                    return Ok(None);
                }
                let built = build(&files, &pem);
                seen = Some(pem);
                built.map(Some)
            });
            match outcome {
                Ok(None) => failing = false,
                Ok(Some(cfg)) => {
                    failing = false;
                    counters::tls_reload(true);
                    tracing::info!(cert = %files.cert.display(), "HTTP endpoint: a new TLS certificate is in use");
                    let _ = tx.send(cfg);
                }
                // One warning and one count per bad state, not one every 2 s while it lasts.
                Err(e) if !failing => {
                    failing = true;
                    counters::tls_reload(false);
                    tracing::warn!("HTTP endpoint keeps its TLS certificate: {e}");
                }
                Err(_) => {}
            }
        }
    });
    rx
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;

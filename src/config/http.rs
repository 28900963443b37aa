//! `OVS_OVN_SUPERVISOR_HTTP_ADDR`: where the HTTP endpoint listens.
//!
//! Invariant: pure. A real node listens on every address of the node by default (kubelet's
//! `httpGet` probes and Prometheus reach a host-network pod at the node's IP), on a port no
//! Kube-OVN component uses (8080 pinger, 10660 controller, 10661 monitor, 10665 cni, 10666,
//! 10667, 10669 at kube-ovn 1533681d); the sandbox listens nowhere unless asked, so that many
//! sandboxes on one machine never compete for a port.

use std::net::SocketAddr;

use super::error::ConfigError;
use super::values::present;

pub const DEFAULT_PORT: u16 = 10668;
const VAR: &str = "OVS_OVN_SUPERVISOR_HTTP_ADDR";

/// `[::]:10668` on a real node, off in the sandbox; `off` turns it off, `ADDR:PORT` (IPv6
/// bracketed, port 0 for any free one) sets it.
pub fn http_addr(raw: &Option<String>, sandbox: bool) -> Result<Option<SocketAddr>, ConfigError> {
    match present(raw) {
        None if sandbox => Ok(None),
        None => Ok(Some(SocketAddr::from((
            std::net::Ipv6Addr::UNSPECIFIED,
            DEFAULT_PORT,
        )))),
        Some("off") => Ok(None),
        Some(v) => v.parse::<SocketAddr>().map(Some).map_err(|_| {
            ConfigError::invalid(
                VAR,
                v,
                "ADDR:PORT (an IP address, IPv6 in brackets, and a port: 0.0.0.0:10668, [::]:10668) or off",
            )
        }),
    }
}

const VAR_CERT: &str = "OVS_OVN_SUPERVISOR_HTTP_TLS_CERT";
const VAR_KEY: &str = "OVS_OVN_SUPERVISOR_HTTP_TLS_KEY";

/// The certificate chain and private key the HTTP endpoint serves HTTPS with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

/// `OVS_OVN_SUPERVISOR_HTTP_TLS_CERT` and `_KEY`: both (absolute paths) turn HTTPS on, neither
/// leaves plain HTTP; one alone is a mistake, refused rather than guessed at.
pub fn http_tls(
    cert: &Option<String>,
    key: &Option<String>,
) -> Result<Option<TlsFiles>, ConfigError> {
    let path = |var: &'static str, v: &str| {
        let p = std::path::PathBuf::from(v);
        match p.is_absolute() {
            true => Ok(p),
            false => Err(ConfigError::invalid(
                var,
                v,
                "an absolute path to a PEM file",
            )),
        }
    };
    match (present(cert), present(key)) {
        (None, None) => Ok(None),
        (Some(c), Some(k)) => Ok(Some(TlsFiles {
            cert: path(VAR_CERT, c)?,
            key: path(VAR_KEY, k)?,
        })),
        (Some(c), None) => Err(ConfigError::invalid(
            VAR_CERT,
            c,
            format!("set together with {VAR_KEY} (the certificate's private key), or neither"),
        )),
        (None, Some(k)) => Err(ConfigError::invalid(
            VAR_KEY,
            k,
            format!("set together with {VAR_CERT} (the certificate chain), or neither"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_files_come_in_pairs_of_absolute_paths() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(http_tls(&None, &None).unwrap(), None);
        assert_eq!(
            http_tls(&s("/etc/tls/a.crt"), &s("/etc/tls/a.key")).unwrap(),
            Some(TlsFiles {
                cert: "/etc/tls/a.crt".into(),
                key: "/etc/tls/a.key".into()
            })
        );
        let e = http_tls(&s("/etc/tls/a.crt"), &None)
            .unwrap_err()
            .to_string();
        assert!(e.contains(VAR_CERT) && e.contains(VAR_KEY), "{e}");
        let e = http_tls(&None, &s("/etc/tls/a.key"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(VAR_CERT) && e.contains(VAR_KEY), "{e}");
        let e = http_tls(&s("a.crt"), &s("/k")).unwrap_err().to_string();
        assert!(e.contains(VAR_CERT) && e.contains("absolute"), "{e}");
    }

    #[test]
    fn addresses() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            http_addr(&None, false).unwrap(),
            Some("[::]:10668".parse().unwrap())
        );
        assert_eq!(http_addr(&None, true).unwrap(), None);
        assert_eq!(http_addr(&s("off"), false).unwrap(), None);
        assert_eq!(
            http_addr(&s("127.0.0.3:0"), true).unwrap(),
            Some("127.0.0.3:0".parse().unwrap())
        );
        assert_eq!(
            http_addr(&s("[fd00::7]:9999"), false).unwrap(),
            Some("[fd00::7]:9999".parse().unwrap())
        );
        for bad in [
            "10668",
            "localhost:10668",
            "0.0.0.0:70000",
            "fd00::7:9999",
            "on",
        ] {
            let e = http_addr(&s(bad), false).unwrap_err().to_string();
            assert!(e.contains(VAR) && e.contains(bad), "{bad}: {e}");
        }
    }
}

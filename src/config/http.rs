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

#[cfg(test)]
mod tests {
    use super::*;

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

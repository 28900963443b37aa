//! The one error type of configuration: what was wrong with which variable.
//!
//! Invariant: every message names the variable (or variables) to change and, for a rejected
//! value, the value and what is accepted, so the operator can fix the manifest from the log
//! line alone. It lives apart from [`super::Config`] so that [`super::paths`] can use it without
//! depending on the module that depends on it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{var}={value:?} is invalid: expected {expected}")]
    Invalid {
        var: &'static str,
        value: String,
        expected: String,
    },
    #[error("no OVN Southbound address: set OVN_SB_ADDR, OVN_DB_IPS, or OVN_SB_SERVICE_HOST and OVN_SB_SERVICE_PORT (or use --sandbox for an embedded one)")]
    NoSouthbound,
    #[error("{path}: unix socket path {socket} is {len} bytes, over the kernel's limit of 107; use a shorter {var}")]
    SocketPathTooLong {
        var: &'static str,
        path: PathBuf,
        socket: PathBuf,
        len: usize,
    },
}

impl ConfigError {
    /// `var` holds `value`, which is not what `expected` describes.
    pub fn invalid(var: &'static str, value: &str, expected: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            var,
            value: value.to_string(),
            expected: expected.into(),
        }
    }
}

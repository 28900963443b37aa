//! Commands to a daemon's unixctl socket (`NAME.PID.ctl`): the same JSON-RPC 1.0 as OVSDB,
//! method = command, params = array of strings, result = the text `ovs-appctl` would print.
//!
//! Invariant: one connection per command, closed afterwards; a daemon's reply is trimmed of
//! the trailing newline OVS adds.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::ovs::jsonrpc::{Client, RpcError};

pub async fn call(
    ctl: &Path,
    command: &str,
    args: &[&str],
    timeout: Duration,
) -> Result<String, RpcError> {
    let started = tokio::time::Instant::now();
    let client = Client::connect(ctl, timeout).await?;
    let left = timeout.saturating_sub(started.elapsed());
    let params = Value::from(args.iter().map(|a| Value::from(*a)).collect::<Vec<_>>());
    let result = client.call(command, params, left).await?;
    Ok(match result {
        Value::String(s) => s.trim_end().to_string(),
        Value::Null => String::new(),
        other => other.to_string(),
    })
}

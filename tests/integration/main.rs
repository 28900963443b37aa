//! The integration tests, one binary (as ripgrep's `tests/integration`): one module per area,
//! all sharing [`harness`]. Most run the real `ovs-ovn-supervisor` binary and the real Debian
//! OVS/OVN daemons, each test in its own temp dir and network namespace; the rest call the
//! library against real tools (`ovsdb_real`, `firewall_netns`, `reaper`) or check the manifest.
//! Tests of every module run at once on libtest's threads, so none may rely on running alone.
//!
//! One module: `cargo test --test integration kube_ovn::`; one test: `cargo test --test
//! integration takeover::a_second_instance`.

mod harness;

mod adversarial_ctl;
mod adversarial_fs;
mod adversarial_handover;
mod adversarial_start;
mod busy;
mod confdb_versions;
mod config_errors;
mod deadlines;
mod faults;
mod firewall_netns;
mod firewall_start;
mod hostprep;
mod http;
mod http_metrics;
mod http_tls;
mod http_verdicts;
mod kube_ovn;
mod limits;
mod manifest;
mod migrate;
mod ovsdb_real;
mod probes;
mod readiness;
mod reaper;
mod run_sandbox;
mod starved;
mod takeover;
mod takeover_late;
mod takeover_restore;
mod takeover_text;
mod termination;
mod tls_reload;
mod uninstall;
mod unread_log;
mod upgrade;
